"""Production settings, cookies, CSRF, the socket's Origin check and the strict CSP."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from chat.models import Message
from tests.accounts.signing_up import request_link
from tests.chat.websocket import communicator_for
from tests.factories import PASSWORD, make_conversation, make_message, make_user
from tests.mailbox import outbox_link
from tests.test_settings_env import load_settings

ROOT = Path(__file__).resolve().parent.parent
GOOD_KEY = secrets.token_urlsafe(50)
PRODUCTION = {"HTTPS": "true", "DEBUG": "false", "ALLOWED_HOSTS": "chat.example.com"}


# Production settings, loaded in a subprocess as the server would.


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"DEBUG": "true"}, "DEBUG=true is not allowed with HTTPS=true"),
        ({"DEBUG": "true", "SECRET_KEY": "short"}, "DEBUG=true is not allowed"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "django-insecure-" + "k" * 50}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "test-only-key-" + GOOD_KEY}, "looks like a placeholder"),
        ({"SECRET_KEY": "change-me-" + GOOD_KEY}, "looks like a placeholder"),
        ({"SECRET_KEY": "abcd" * 20}, "looks like a placeholder"),
    ],
)
def test_production_refuses_unsafe_start(overrides, expected):
    result = load_settings(**{**PRODUCTION, **overrides})
    assert result.returncode != 0
    assert expected in result.stderr


def test_production_starts_with_good_key():
    result = load_settings(**PRODUCTION, SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr


def test_production_cookie_settings():
    script = (
        "import json, chatsite.settings as s; print(json.dumps([s.SESSION_COOKIE_HTTPONLY, "
        "s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_SAMESITE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0]))"
    )
    env = load_settings.__globals__["os"].environ.copy()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(PRODUCTION, SECRET_KEY=GOOD_KEY)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True, "Lax", True, True, True]


@pytest.mark.django_db
def test_session_cookie_flags(settings):
    settings.SESSION_COOKIE_SECURE = True
    make_user("flags@example.com")
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"username": "flags@example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"] == "Lax"


# CSRF on every form.


def _callbacks(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _callbacks(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def test_no_view_exempt_from_csrf():
    exempt = [
        route for route, view in _callbacks(get_resolver()) if getattr(view, "csrf_exempt", False)
    ]
    assert exempt == []


def test_every_post_form_has_csrf_token():
    missing = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for form in re.findall(r"<form\b[^>]*>.*?</form>", text, re.S | re.I):
            opening = form[: form.index(">")]
            if re.search(r'method="post"', opening, re.I) and "{% csrf_token %}" not in form:
                missing.append(f"{template.relative_to(ROOT)}: {opening[:80]}")
    assert missing == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url_name", "data"),
    [
        ("accounts:login", {"username": "csrf@example.com", "password": PASSWORD}),
        ("accounts:logout", {}),
        ("accounts:password_change", {"old_password": PASSWORD}),
        ("set_language", {"language": "zh-hans"}),
    ],
)
def test_post_without_csrf_token_rejected(url_name, data):
    user = make_user("csrf@example.com")
    client = Client(enforce_csrf_checks=True)
    if url_name != "accounts:login":
        client.force_login(user)
    response = client.post(reverse(url_name), data)
    assert response.status_code == 403


# The socket's Origin check.


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin",
    [None, "http://evil.example", "http://localhost.evil.example", "null", "http://127.0.0.2"],
)
async def test_socket_foreign_origin_rejected(owner_cookie, origin):
    communicator = communicator_for(owner_cookie, origin=origin)
    connected, _ = await communicator.connect()
    assert connected is False


@pytest.mark.django_db(transaction=True)
async def test_socket_own_origin_accepted(owner_cookie):
    communicator = communicator_for(owner_cookie, origin="http://localhost:8000")
    connected, _ = await communicator.connect()
    assert connected is True
    await communicator.disconnect()


# No inline scripts or styles, and a strict policy, on every page.

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
EVENT_ATTRIBUTE = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def assert_strict_page(response, url):
    assert response.status_code == 200, url
    html = response.content.decode()
    assert INLINE_SCRIPT.findall(html) == [], url
    assert STYLE_ATTRIBUTE.findall(html) == [], url
    assert EVENT_ATTRIBUTE.findall(html) == [], url
    assert "<style" not in html.lower(), url
    assert "javascript:" not in html.lower(), url
    header = response.headers["Content-Security-Policy"]
    policy = dict(part.strip().split(" ", 1) for part in header.split(";"))
    assert policy["default-src"] == "'self'", url
    assert policy["script-src"] == "'self'", url
    assert policy["style-src"] == "'self'", url
    assert policy["object-src"] == "'none'", url
    assert policy["base-uri"] == "'none'", url
    assert policy["frame-ancestors"] == "'none'", url
    assert "unsafe" not in header, url


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url_name",
    [
        "accounts:login",
        "accounts:sign_up",
        "accounts:password_change_done",
        "accounts:password_reset",
        "accounts:password_reset_done",
    ],
)
def test_public_pages_strict(client, url_name, owner):
    if url_name == "accounts:password_change_done":
        client.force_login(owner)
    assert_strict_page(client.get(reverse(url_name)), url_name)


@pytest.mark.django_db
def test_sign_up_link_pages_strict(client):
    sent = request_link(client, "strict@example.com")
    assert_strict_page(sent, "sign-up sent")
    assert_strict_page(client.get(outbox_link("strict@example.com")), "choose password")


@pytest.mark.django_db
def test_signed_in_pages_strict(client, owner):
    conversation = make_conversation(owner, title='<img src=x onerror="alert(1)">')
    make_message(conversation, "user", '<script>alert("x")</script> style="color:red"')
    make_message(
        conversation,
        "assistant",
        "</script><script>alert(2)</script>",
        status=Message.Status.COMPLETE,
    )
    client.force_login(owner)
    urls = [
        reverse("chat:index"),
        reverse("chat:conversation", args=[conversation.id]),
        reverse("accounts:password_change"),
        reverse("teams:list"),
    ]
    for url in urls:
        assert_strict_page(client.get(url), url)


@pytest.mark.django_db
def test_staff_pages_strict(client):
    staff = make_user("staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    for url_name in ["chat:endpoint_health", "dashboard:overview", "dashboard:users"]:
        assert_strict_page(client.get(reverse(url_name)), url_name)
