"""PostgreSQL restarted under a running site: a clear error meanwhile, then back by itself.

The cluster is private (initdb in a temporary directory, trust auth, a free
loopback port), so stopping it touches no one else's database.
"""

import re
import subprocess
import sys
import time

import httpx
import psycopg
import pytest

from tests.faults.conftest import FAST_FAULTS, Site, Socket
from tests.mailbox import file_link
from tests.private_servers import ROOT, PrivatePostgres

pytestmark = pytest.mark.e2e

PASSWORD = "a-long-test-passphrase-42"


@pytest.fixture
def private_postgres(stack_env):
    cluster = PrivatePostgres()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as connection:
        connection.execute("CREATE DATABASE chatsite_faults")
    url = cluster.url("chatsite_faults")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**stack_env, "DATABASE_URL": url},
        check=True,
        timeout=180,
    )
    cluster.database_url = url
    yield cluster
    cluster.destroy()


def post_form(http, path, data):
    page = http.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return http.post(
        path,
        data={"csrfmiddlewaretoken": token, **data},
        headers={"Referer": f"{http.base_url}{path}"},
    )


def sign_up(http, email):
    """Sign up through the emailed link; returns the session cookie header."""
    sent = post_form(http, "/accounts/sign-up/", {"email": email})
    assert sent.status_code == 200, sent.text[:300]
    response = post_form(http, file_link(email), {"password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302, response.text[:300]
    return f"sessionid={http.cookies['sessionid']}"


def test_postgres_restart_clear_error_then_recovers(fault_env, private_postgres):
    env = {
        **fault_env,
        "DATABASE_URL": private_postgres.database_url,
        # The outage is shorter than this, so the reply's worker is not taken as lost.
        "CHAT_STALE_HEARTBEAT_SECONDS": "30",
    }
    assert FAST_FAULTS["CHAT_SWEEP_SECONDS"] == env["CHAT_SWEEP_SECONDS"]
    site = Site(env)
    try:
        with httpx.Client(base_url=site.web.base_url, timeout=30) as http:
            socket = Socket(site.web.base_url, sign_up(http, "pg-restart@example.com"))
            socket.send_message("[sim rate=30 reasoning=150 answer=90]\nOutlast the database.")
            accepted = socket.receive_until(lambda frame: frame["type"] == "message.accepted")
            socket.receive_until(lambda frame: frame["type"].endswith(".delta"), timeout=15)

            private_postgres.stop()
            down = http.get("/chat/")
            down_zh = http.get("/chat/", headers={"Accept-Language": "zh-CN"})
            time.sleep(1.0)  # the outage lasts a little while, as a restart does
            private_postgres.start()
            up = http.get("/chat/")

        assert down.status_code == 503
        assert "cannot reach its database" in down.text
        assert down.headers["Retry-After"] == "30"
        assert "无法连接数据库" in down_zh.text
        assert up.status_code == 200

        # The reply that streamed through the outage ends, stored as complete.
        done = socket.receive_until(lambda frame: frame["type"] == "message.done", timeout=60)
        assert done["message"] == accepted["assistant_message"]["id"]
        assert done["status"] == "complete"
        with psycopg.connect(private_postgres.database_url) as connection:
            status, content = connection.execute(
                "SELECT status, content FROM chat_message WHERE id = %s",
                [accepted["assistant_message"]["id"]],
            ).fetchone()
            in_flight = connection.execute(
                "SELECT count(*) FROM chat_message WHERE status IN ('queued', 'streaming')"
            ).fetchone()[0]
        assert status == "complete"
        assert content
        assert in_flight == 0

        # A new send works without restarting any process.
        socket.send_message("[sim rate=0]\nBack?", conversation=accepted["conversation"])
        done = socket.receive_until(lambda frame: frame["type"] == "message.done", timeout=30)
        assert done["status"] == "complete"
        socket.close()
    finally:
        site.stop()
