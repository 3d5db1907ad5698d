import asyncio
import io
import logging
import re
import socket
import sys

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from chat import health
from chat.models import ChatModel, Endpoint
from chat.upstream import UpstreamError
from tests.factories import make_user
from tests.stack import ManagedProcess

pytestmark = pytest.mark.django_db

RIGHT_KEY = "sk-right"
SECRET_KEY = "sk-SECRET-do-not-leak-1234"
KEY_VARIABLE = "HEALTH_TEST_API_KEY"
HEALTH_URL = "/chat/staff/endpoints/"


@pytest.fixture(autouse=True)
def environment_on_simulator(settings, simulator):
    """Point the `environment` endpoint at the test simulator, never at a real server."""
    settings.SIMULATOR_URL = simulator
    settings.DEEPSEEK_BASE_URL = simulator
    settings.UPSTREAM_IS_SIMULATOR = True
    settings.DEEPSEEK_API_KEY = "sk-simulator"
    settings.DEEPSEEK_MODEL = "deepseek-flash"
    return simulator


def start_simulator(name, *options):
    """Start a simulator subprocess on a free port; return it and its base URL."""
    command = [sys.executable, "-m", "chat.simulator", "--host", "127.0.0.1", "--port", "0"]
    process = ManagedProcess(name, [*command, *options], None)
    process.wait_until(lambda: "listening on" in process.log(), "its listening line")
    match = re.search(r"chat\.simulator listening on (http://\S+)", process.log())
    return process, match.group(1)


@pytest.fixture(scope="module")
def key_simulator():
    """A simulator that accepts only RIGHT_KEY; yields its base URL."""
    process, base_url = start_simulator("simulator-health-key", "--api-key", RIGHT_KEY)
    yield base_url
    process.stop()


@pytest.fixture(scope="module")
def queued_simulator():
    """A simulator that sends keep-alive comments for 5 s before each reply."""
    process, base_url = start_simulator(
        "simulator-health-queue", "--queue-delay", "5", "--keepalive-interval", "0.2"
    )
    yield base_url
    process.stop()


@pytest.fixture
def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return port


@pytest.fixture
def staff(db):
    return make_user("staff@example.com", is_staff=True)


def make_endpoint(slug, base_url, model_id="deepseek-flash", api_key_env=""):
    endpoint = Endpoint.objects.create(
        slug=slug,
        name=f"Endpoint {slug}",
        kind=Endpoint.Kind.OPENAI,
        base_url=base_url,
        api_key_env=api_key_env,
    )
    ChatModel.objects.create(
        slug=f"{slug}-model", endpoint=endpoint, model_id=model_id, display_name=model_id
    )
    return endpoint


# check_all and check_endpoint


def test_environment_checks_ok():
    results = health.check_all()

    assert [item.slug for item in results] == ["environment"]
    environment = results[0]
    assert environment.ok
    assert environment.listing.ok
    assert environment.listing.status == 200
    assert environment.listing.target == "/models"
    assert environment.listing.latency_ms is not None
    assert "deepseek-flash" in environment.listed_model_ids
    assert len(environment.models) == 1
    reply = environment.models[0]
    assert reply.ok
    assert reply.target == "deepseek-flash"
    assert reply.model_slug == "environment"
    assert reply.problem == ""
    # The simulator reasons for 60 tokens, so 16 end in the middle of the reasoning.
    assert reply.detail == "finish_reason length"
    assert reply.first_event_ms is not None
    assert reply.latency_ms >= reply.first_event_ms


def test_check_endpoint_async_api():
    (endpoint,) = health.active_endpoints("environment")

    async def run():
        async with httpx.AsyncClient() as client:
            return await health.check_endpoint(endpoint, client)

    result = asyncio.run(run())

    assert result.slug == "environment"
    assert result.ok


def test_wrong_key_rejected(key_simulator, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, "sk-wrong-key-0000000")
    make_endpoint("keyed", key_simulator, api_key_env=KEY_VARIABLE)

    result = health.check_all("keyed")[0]

    assert not result.ok
    for check in result.checks:
        assert not check.ok
        assert check.problem_code == "auth_failed"
        assert str(check.problem) == "API key rejected"
        assert check.status == 401
        assert "****0000" in check.detail
    assert result.listed_model_ids is None


def test_right_key_accepted(key_simulator, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, RIGHT_KEY)
    make_endpoint("keyed", key_simulator, api_key_env=KEY_VARIABLE)

    result = health.check_all("keyed")[0]

    assert result.listing.ok
    assert result.models[0].ok


def test_missing_key_sends_no_header(simulator):
    # The simulator returns 401 for a request without an Authorization header.
    make_endpoint("keyless", simulator)

    result = health.check_all("keyless")[0]

    assert result.listing.problem_code == "auth_failed"
    assert result.models[0].problem_code == "auth_failed"


def test_closed_port_connection_refused(closed_port):
    make_endpoint("closed", f"http://127.0.0.1:{closed_port}")

    result = health.check_all("closed")[0]

    assert not result.ok
    for check in result.checks:
        assert check.problem_code == "connect_failed"
        assert str(check.problem) == "connection refused"
        assert check.status is None
        assert check.detail.startswith("connection failed")


def test_base_url_without_scheme_invalid():
    make_endpoint("typo", "127.0.0.1:8000/v1")

    result = health.check_all("typo")[0]

    for check in result.checks:
        assert check.problem_code == "invalid_url"
        assert str(check.problem) == "invalid base URL"


def test_unlisted_model_fails(simulator, monkeypatch):
    # The simulator accepts any model id but lists only DeepSeek's.
    monkeypatch.setenv(KEY_VARIABLE, "sk-any")
    make_endpoint("distill", simulator, "deepseek-r1-distill-missing", KEY_VARIABLE)

    result = health.check_all("distill")[0]

    assert result.listing.ok
    reply = result.models[0]
    assert not reply.ok
    assert reply.problem_code == "model_not_listed"
    assert str(reply.problem) == "model not listed by the server"
    assert "deepseek-r1-distill-missing" in reply.detail


def test_queued_reply_timed_out(queued_simulator, monkeypatch):
    # Keep-alive comments reset the read timeout, so only the deadline ends the wait.
    monkeypatch.setattr(health, "CHECK_DEADLINE_SECONDS", 1.0)
    monkeypatch.setenv(KEY_VARIABLE, "sk-any")
    make_endpoint("queued", queued_simulator, api_key_env=KEY_VARIABLE)

    result = health.check_all("queued")[0]

    assert result.listing.ok
    reply = result.models[0]
    assert reply.problem_code == "timeout"
    assert str(reply.problem) == "timed out"
    assert reply.detail == "no complete reply within 1 s"
    assert reply.first_event_ms is None


def test_inactive_rows_skipped(closed_port):
    make_endpoint("off", f"http://127.0.0.1:{closed_port}")
    Endpoint.objects.filter(slug="off").update(is_active=False)
    ChatModel.objects.filter(slug="environment").update(is_active=False)

    results = health.check_all()

    assert [item.slug for item in results] == ["environment"]
    assert results[0].models == ()
    assert results[0].listing.ok


def test_unknown_slug_checks_nothing():
    assert health.check_all("no-such-endpoint") == []


PROBLEM_CASES = [
    # (code, status, detail, model id, expected problem code)
    ("auth_failed", 401, "Authentication Fails", "m", "auth_failed"),
    ("auth_failed", 403, "Forbidden", None, "auth_failed"),
    ("insufficient_balance", 402, "Insufficient Balance", "m", "insufficient_balance"),
    ("invalid_request", 404, "The model `m` does not exist.", "m", "model_not_found"),
    ("invalid_request", 404, "HTTP 404 Not Found", None, "no_model_list"),
    ("invalid_request", 400, "Model Not Exist", "deepseek-reasoner", "model_not_found"),
    (
        "invalid_request",
        400,
        "model 'deepseek-r1:7b' not found",
        "deepseek-r1:7b",
        "model_not_found",
    ),
    ("invalid_request", 400, "Invalid max_tokens value", "deepseek-flash", "invalid_request"),
    (
        "connect_failed",
        None,
        "connection failed: [Errno 111] Connection refused",
        "m",
        "connect_failed",
    ),
    ("connect_failed", None, "timed out connecting: ", "m", "timeout"),
    ("connect_failed", None, "invalid upstream URL: 'ftp://x'", None, "invalid_url"),
    ("timeout", None, "timed out waiting for the response: ", "m", "timeout"),
    ("rate_limited", 429, "Rate Limit Reached", "m", "overloaded"),
    ("overloaded", 503, "Server Overloaded", "m", "overloaded"),
    ("server_error", 500, "Server Error", "m", "server_error"),
    ("server_error", 502, "Bad Gateway", None, "server_error"),
    ("bad_response", 200, "expected an event stream, got text/html", "m", "bad_response"),
    ("stream_interrupted", 200, "connection lost during the stream", "m", "stream_interrupted"),
    ("upstream_error", 200, "Provider returned error (code 502)", "m", "upstream_error"),
]


@pytest.mark.parametrize(("code", "status", "detail", "model_id", "expected"), PROBLEM_CASES)
def test_problem_code_for(code, status, detail, model_id, expected):
    error = UpstreamError(code, detail, status=status)
    assert health.problem_code_for(error, model_id) == expected


def test_every_problem_has_words():
    for case in PROBLEM_CASES:
        assert str(health.PROBLEMS[case[-1]])


# manage.py check_endpoints


def run_command(*args):
    out = io.StringIO()
    err = io.StringIO()
    error = None
    try:
        call_command("check_endpoints", *args, stdout=out, stderr=err)
    except CommandError as exc:
        error = exc
    return out.getvalue(), err.getvalue(), error


def test_command_all_ok():
    out, _, error = run_command()

    assert error is None
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("environment  /models  ok  ")
    assert lines[0].endswith(" models listed")
    assert lines[1].startswith("environment  deepseek-flash  ok  first event ")


def test_command_failure_exits_1(closed_port):
    make_endpoint("closed", f"http://127.0.0.1:{closed_port}")

    out, _, error = run_command()

    assert error is not None
    assert error.returncode == 1
    assert str(error) == "2 of 4 checks failed."
    lines = out.splitlines()
    assert len(lines) == 4
    failed = [line for line in lines if line.startswith("closed  ")]
    assert len(failed) == 2
    assert failed[0].startswith("closed  /models  FAILED  ")
    assert "  connection refused: connection failed" in failed[0]
    assert failed[1].startswith("closed  deepseek-flash  FAILED  ")


def test_command_endpoint_option(closed_port):
    make_endpoint("closed", f"http://127.0.0.1:{closed_port}")

    out, _, error = run_command("--endpoint", "environment")

    assert error is None
    assert all(line.startswith("environment  ") for line in out.splitlines())
    assert len(out.splitlines()) == 2


def test_command_unknown_endpoint():
    out, _, error = run_command("--endpoint", "missing")

    assert out == ""
    assert str(error) == "No active endpoint has the slug 'missing'."
    assert error.returncode == 1


# The staff page


def test_page_anonymous_redirected(client):
    response = client.get(HEALTH_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_page_non_staff_redirected(client, owner):
    client.force_login(owner)

    for response in (client.get(HEALTH_URL), client.post(HEALTH_URL)):
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_page_url_name():
    assert reverse("chat:endpoint_health") == HEALTH_URL


def test_page_staff_sees_endpoints(client, staff):
    client.force_login(staff)

    response = client.get(HEALTH_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Run checks" in html
    assert "<code>environment</code>" in html
    assert "(<code>deepseek-flash</code>)" in html
    assert "data-health-results" not in html


def test_page_simulator_key_not_needed(client, staff, key_simulator, monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, "sk-health-test")
    make_endpoint("keyed", key_simulator, api_key_env=KEY_VARIABLE)
    client.force_login(staff)

    html = client.get(HEALTH_URL).content.decode()

    # The environment endpoint is the simulator: its placeholder key is no key.
    assert html.count("not needed: the simulator takes any key") == 1
    assert html.count(f"set, from {KEY_VARIABLE}") == 1


def test_page_staff_post_shows_results(client, staff, closed_port):
    make_endpoint("closed", f"http://127.0.0.1:{closed_port}")
    client.force_login(staff)

    response = client.post(HEALTH_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "data-health-results" in html
    assert html.count("<td>Endpoint closed</td>") == 2
    assert html.count("<strong>failed</strong>") == 2
    assert html.count("<td>connection refused</td>") == 2
    assert html.count("<td>ok</td>") == 2
    assert "reply from deepseek-flash" in html


def test_page_post_requires_csrf(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post(HEALTH_URL)

    assert response.status_code == 403


def test_page_rejects_put(client, staff):
    client.force_login(staff)

    assert client.put(HEALTH_URL).status_code == 405


# The API key


def test_key_never_shown(client, staff, key_simulator, monkeypatch, caplog):
    for name in ("", "httpx", "httpcore", "chat"):
        caplog.set_level(logging.DEBUG, logger=name)
    monkeypatch.setenv(KEY_VARIABLE, SECRET_KEY)
    make_endpoint("leaky", key_simulator, api_key_env=KEY_VARIABLE)
    client.force_login(staff)

    page = client.post(HEALTH_URL).content.decode()
    form_page = client.get(HEALTH_URL).content.decode()
    out, err, error = run_command("--endpoint", "leaky")
    results = health.check_all("leaky")

    assert "API key rejected" in page
    assert "****1234" in page
    assert SECRET_KEY not in page
    assert SECRET_KEY not in form_page
    assert "API key rejected" in out
    assert SECRET_KEY not in out
    assert SECRET_KEY not in err
    assert SECRET_KEY not in str(error)
    assert SECRET_KEY not in repr(results)
    assert "Endpoint leaky check /models failed: auth_failed" in caplog.text
    assert SECRET_KEY not in caplog.text
