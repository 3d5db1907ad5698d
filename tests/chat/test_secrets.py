"""An endpoint's API key never shows in a page, a websocket frame or a log line."""

import asyncio
import json
import logging
import os
import re
import sys

import httpx
import pytest
from django.urls import reverse
from websockets.sync.client import connect as ws_connect

from chat import catalog
from chat.models import ChatModel, Endpoint, Message
from tests.chat.websocket import connect, is_done, receive, receive_until, send_frame
from tests.mailbox import file_link
from tests.private_servers import PrivateRedis, start_web, start_worker
from tests.stack import ARTIFACTS, ManagedProcess, free_port

KEY_VARIABLE = "CHATSITE_TEST_SECRET_API_KEY"
SECRET = "sk-SECRET-do-not-leak-5678"
# A fragment that survives any masking that keeps a key's last four characters.
SECRET_BODY = "SECRET-do-not-leak"
# The only key the rejecting simulator accepts, so it rejects SECRET with a 401.
ACCEPTED_KEY = "sk-simulator-accepts-only-this-0000"

# The session's worker copies this process's environment when it starts, after collection,
# and reads endpoint keys from its own environment. Setting the variable at import is the one
# way to give the worker the key without starting a second worker.
os.environ[KEY_VARIABLE] = SECRET


def make_secret_model(base_url, slug="secret-model"):
    endpoint = Endpoint.objects.create(
        slug=f"{slug}-server",
        name="Keyed server",
        kind=Endpoint.Kind.DEEPSEEK,
        base_url=base_url,
        api_key_env=KEY_VARIABLE,
    )
    return ChatModel.objects.create(
        slug=slug, endpoint=endpoint, model_id="deepseek-flash", display_name="Keyed model"
    )


def assert_no_secret(text):
    assert SECRET not in text
    assert SECRET_BODY not in text


@pytest.fixture
def secret_in_environment(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, SECRET)


@pytest.fixture
def secret_model(db, secret_in_environment):
    return make_secret_model("http://127.0.0.1:9")


# Pages


def test_key_read_from_variable(secret_model):
    assert secret_model.endpoint.api_key() == SECRET


def test_chat_page_without_key(client, owner, secret_model):
    client.force_login(owner)
    response = client.get(reverse("chat:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Keyed model" in html
    assert_no_secret(html)


def test_admin_endpoint_page_shows_variable(admin_client, secret_model):
    url = reverse("admin:chat_endpoint_change", args=[secret_model.endpoint.pk])
    response = admin_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert KEY_VARIABLE in html
    assert_no_secret(html)


def test_admin_endpoint_list_without_key(admin_client, secret_model):
    response = admin_client.get(reverse("admin:chat_endpoint_changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    assert KEY_VARIABLE in html
    assert_no_secret(html)


def test_admin_model_page_without_key(admin_client, secret_model):
    url = reverse("admin:chat_chatmodel_change", args=[secret_model.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert_no_secret(response.content.decode())


# Logs


def test_request_cycle_logs_no_key(client, owner, secret_model, caplog):
    caplog.set_level(logging.DEBUG)
    client.force_login(owner)
    response = client.get(reverse("chat:index"))
    assert response.status_code == 200
    assert_no_secret(caplog.text)


def test_upstream_config_hides_key(secret_model, caplog):
    caplog.set_level(logging.DEBUG)
    config = catalog.upstream_config(secret_model)
    assert config.api_key == SECRET
    assert_no_secret(repr(config))
    assert_no_secret(str(config))
    assert_no_secret(caplog.text)


# A reply the upstream rejects, end to end


def is_healthy(base_url):
    try:
        return httpx.get(f"{base_url}/_sim/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def rejecting_simulator():
    """A simulator that accepts only ACCEPTED_KEY and echoes a masked key in its 401."""
    port = free_port()
    process = ManagedProcess(
        "simulator-rejecting",
        [
            sys.executable,
            "-m",
            "chat.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--api-key",
            ACCEPTED_KEY,
        ],
        dict(os.environ),
    )
    base_url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: is_healthy(base_url), "health check")
    yield base_url
    process.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_rejected_key_not_in_frames(
    live_stack, worker, owner_cookie, rejecting_simulator, caplog, client, owner
):
    caplog.set_level(logging.DEBUG)
    await asyncio.to_thread(make_secret_model, rejecting_simulator)
    communicator = await connect(owner_cookie)
    frame = send_frame("[sim rate=0]\nThis reply cannot start.")
    frame["model"] = "secret-model"

    await communicator.send_json_to(frame)
    texts = [await communicator.receive_from(timeout=30)]
    accepted = json.loads(texts[0])
    frames = await receive_until(communicator, is_done, timeout=30)
    texts.extend(json.dumps(frame) for frame in frames)
    await communicator.disconnect()

    done = frames[-1]
    assert accepted["type"] == "message.accepted"
    assert done["status"] == "failed"
    assert done["error"]["code"] == "auth_failed"
    # The simulator saw the key, as its masked echo shows, and the site passed on only that.
    assert "****5678" in done["error"]["detail"]
    for text in texts:
        assert_no_secret(text)

    reply = await asyncio.to_thread(Message.objects.get, pk=accepted["assistant_message"]["id"])
    assert_no_secret(reply.error_detail)
    assert_no_secret(json.dumps(reply.as_event_dict()))
    assert_no_secret(worker.log())
    assert_no_secret(caplog.text)

    await asyncio.to_thread(client.force_login, owner)
    page = await asyncio.to_thread(client.get, f"/chat/{accepted['conversation']}/")
    assert page.status_code == 200
    assert "****5678" in page.content.decode()
    assert_no_secret(page.content.decode())


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_reopened_reply_not_leaking(live_stack, owner_cookie, rejecting_simulator):
    await asyncio.to_thread(make_secret_model, rejecting_simulator)
    communicator = await connect(owner_cookie)
    frame = send_frame("[sim rate=0]\nFails, then is reopened.")
    frame["model"] = "secret-model"
    await communicator.send_json_to(frame)
    accepted = await receive(communicator)
    await receive_until(communicator, is_done, timeout=30)

    await communicator.send_json_to(
        {
            "type": "conversation.open",
            "conversation": accepted["conversation"],
            "message": accepted["assistant_message"]["id"],
        }
    )
    snapshot = await communicator.receive_from(timeout=30)
    await communicator.disconnect()

    assert json.loads(snapshot)["type"] == "snapshot"
    assert json.loads(snapshot)["error"]["code"] == "auth_failed"
    assert_no_secret(snapshot)


# A whole run with its own processes and every log captured


def csrf_of(response) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
    assert match, response.text[:500]
    return match.group(1)


def post_form(http, path, data):
    page = http.get(path)
    token = csrf_of(page)
    response = http.post(
        path,
        data={**data, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{http.base_url}{path}"},
    )
    return token, response


@pytest.fixture
def logged_stack(stack_env, simulator):
    """Web and worker on a private Redis, logging at DEBUG; yields the web process."""
    redis_server = PrivateRedis("redis-secrets")
    env = {**stack_env, "REDIS_URL": redis_server.url, "LOG_LEVEL": "DEBUG"}
    worker = start_worker("secrets-worker", env)
    web = start_web("secrets-web", env)
    web.worker = worker
    yield web
    web.stop()
    worker.stop()
    redis_server.stop()


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
def test_full_run_logs_no_secrets(logged_stack, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    # The test's own websocket client logs its request headers, cookie included, at DEBUG.
    caplog.set_level(logging.INFO, logger="websockets")
    make_secret_model(simulator)
    old_password = "first-Passphrase-for-logs-4711"
    new_password = "second-Passphrase-for-logs-0815"
    secrets_seen = {SECRET, SECRET_BODY, old_password, new_password}
    web = logged_stack

    with httpx.Client(base_url=web.base_url, timeout=30) as http:
        token, response = post_form(http, "/accounts/sign-up/", {"email": "logs@example.com"})
        assert response.status_code == 200, response.text[:500]
        secrets_seen.add(token)
        # The link itself reaches the access log as a request path, so it is not
        # one of the secrets checked here; the password chosen through it is.
        token, response = post_form(
            http,
            file_link("logs@example.com"),
            {"password1": old_password, "password2": old_password},
        )
        assert response.status_code == 302, response.text[:500]
        secrets_seen |= {token, http.cookies["csrftoken"], http.cookies["sessionid"]}

        # Chat with the keyed model over a real websocket.
        url = web.base_url.replace("http://", "ws://") + "/ws/chat/"
        cookie = f"sessionid={http.cookies['sessionid']}"
        with ws_connect(
            url, additional_headers={"Cookie": cookie, "Origin": web.base_url}
        ) as socket:
            frame = send_frame("[sim rate=0]\nTell me a secret.")
            frame["model"] = "secret-model"
            socket.send(json.dumps(frame))
            while (event := json.loads(socket.recv(timeout=30)))["type"] != "message.done":
                pass
        assert event["status"] == "complete", event

        token, response = post_form(
            http,
            "/accounts/password/",
            {
                "old_password": old_password,
                "new_password1": new_password,
                "new_password2": new_password,
            },
        )
        assert response.status_code == 302, response.text[:500]
        secrets_seen |= {token, http.cookies["sessionid"]}

        http.post(
            "/accounts/sign-out/",
            data={"csrfmiddlewaretoken": http.cookies["csrftoken"]},
            headers={"Referer": f"{web.base_url}/chat/"},
        )
        token, response = post_form(
            http, "/accounts/sign-in/", {"username": "logs@example.com", "password": new_password}
        )
        assert response.status_code == 302, response.text[:500]
        secrets_seen |= {token, http.cookies["csrftoken"], http.cookies["sessionid"]}

    web.stop()
    web.worker.stop()
    logs = {
        "web": web.log(),
        "worker": web.worker.log(),
        "simulator": (ARTIFACTS / "simulator.log").read_text(errors="replace"),
        "pytest": caplog.text,
    }
    # The logs are not empty: the run really went through these processes.
    assert "Accepted message" in logs["web"]
    assert "ended complete" in logs["worker"]
    for name, text in logs.items():
        for secret in secrets_seen:
            assert secret not in text, f"{name} log contains {secret[:6]}…"
