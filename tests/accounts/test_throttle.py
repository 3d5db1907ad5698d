"""Sign-in, sign-up and reset throttles: per account and per address, alike for unknown accounts."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts import throttle
from accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

BLOCKED = "Too many attempts from this address or for this account."
RATES = {
    "accounts.sign_in": {"account": "3/15m", "ip": "5/15m"},
    "accounts.sign_up": {"account": "3/15m", "ip": "4/h"},
}


@pytest.fixture(autouse=True)
def small_rates(settings):
    settings.AUTH_THROTTLE_RATES = RATES


def sign_in(client, email, password="wrong password", **extra):
    return client.post(
        reverse("accounts:login"), {"username": email, "password": password}, **extra
    )


def sign_up(client, email, **extra):
    return client.post(reverse("accounts:sign_up"), {"email": email}, **extra)


def reset(client, email, **extra):
    return client.post(reverse("accounts:password_reset"), {"email": email}, **extra)


def errors(response):
    """Return the form's error block, without the CSRF token that differs per response."""
    html = response.content.decode()
    match = re.search(r'<div class="form-errors".*?</div>', html, re.S)
    return match.group(0) if match else ""


def without_minutes(text):
    # Each key's window starts at its own offset (django-ratelimit staggers them
    # by key), so the minutes left differ with the email typed, never with the account.
    return re.sub(r"\d+ min", "N min", text)


def test_sign_in_blocked_after_failures(client, owner):
    for _ in range(3):
        assert sign_in(client, "owner@example.com").status_code == 200

    response = sign_in(client, "OWNER@example.com ", PASSWORD)  # right password, other spelling

    assert response.status_code == 429
    assert BLOCKED in errors(response)
    assert "Wait 15 min" in errors(response) or "min, then try again" in errors(response)
    assert "_auth_user_id" not in client.session
    # The typed address stays in the form.
    assert 'value="OWNER@example.com' in response.content.decode()


def test_blocked_answer_same_for_unknown_account(client, owner):
    for email in ("owner@example.com", "nobody@example.com"):
        for _ in range(3):
            sign_in(client, email, REMOTE_ADDR=f"10.0.0.{len(email)}")
    known = sign_in(client, "owner@example.com", REMOTE_ADDR="10.0.0.17")
    unknown = sign_in(client, "nobody@example.com", REMOTE_ADDR="10.0.0.18")

    assert known.status_code == unknown.status_code == 429
    assert without_minutes(errors(known)) == without_minutes(errors(unknown))
    assert BLOCKED in errors(known)


def test_failures_on_unknown_accounts_equal_known(client, owner):
    unknown = sign_in(client, "nobody@example.com")
    known = sign_in(client, "owner@example.com")

    assert unknown.status_code == known.status_code == 200
    assert errors(unknown) == errors(known)


def test_sign_in_success_not_counted(client, owner):
    for _ in range(5):
        assert sign_in(client, "owner@example.com", PASSWORD).status_code == 302
        client.post(reverse("accounts:logout"))

    assert sign_in(client, "owner@example.com", PASSWORD).status_code == 302


def test_sign_in_blocked_per_address(client, owner):
    for number in range(5):
        sign_in(client, f"guess{number}@example.com")

    response = sign_in(client, "owner@example.com", PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address may still sign in.
    assert sign_in(client, "owner@example.com", PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 302


def test_address_from_trusted_proxy(client, owner, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for number in range(5):
        sign_in(client, f"guess{number}@example.com", HTTP_X_FORWARDED_FOR="203.0.113.9")

    blocked = sign_in(client, "owner@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9")
    other = sign_in(client, "owner@example.com", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.4")

    assert blocked.status_code == 429
    assert other.status_code == 302


def test_sign_up_blocked_per_address(client, db):
    for number in range(4):
        assert sign_up(client, f"new{number}@example.com").status_code == 200

    response = sign_up(client, "one-more@example.com")

    assert response.status_code == 429
    assert BLOCKED in errors(response)
    assert 'value="one-more@example.com"' in response.content.decode()
    # The blocked attempt sent nothing: the throttle bounds the mail a visitor causes.
    assert len(mail.outbox) == 4
    assert not [message for message in mail.outbox if "one-more@example.com" in message.to]


def test_sign_up_blocked_per_account(client, owner):
    for number in range(3):
        response = sign_up(client, "owner@example.com", REMOTE_ADDR=f"10.2.0.{number}")
        assert response.status_code == 200
    existing = sign_up(client, "owner@example.com", REMOTE_ADDR="10.2.0.9")
    for number in range(3):
        sign_up(client, "someone@example.com", REMOTE_ADDR=f"10.3.0.{number}")
    unknown = sign_up(client, "someone@example.com", REMOTE_ADDR="10.3.0.9")

    assert existing.status_code == unknown.status_code == 429
    assert without_minutes(errors(existing)) == without_minutes(errors(unknown))
    assert len([message for message in mail.outbox if "owner@example.com" in message.to]) == 3
    assert len([message for message in mail.outbox if "someone@example.com" in message.to]) == 3
    assert not User.objects.filter(email="someone@example.com").exists()


def test_password_reset_blocked_per_account(client, owner):
    for number in range(3):
        response = reset(client, "owner@example.com", REMOTE_ADDR=f"10.4.0.{number}")
        assert response.status_code == 302
    existing = reset(client, "owner@example.com", REMOTE_ADDR="10.4.0.9")
    for number in range(3):
        reset(client, "someone@example.com", REMOTE_ADDR=f"10.5.0.{number}")
    unknown = reset(client, "someone@example.com", REMOTE_ADDR="10.5.0.9")

    assert existing.status_code == unknown.status_code == 429
    assert BLOCKED in errors(existing)
    assert without_minutes(errors(existing)) == without_minutes(errors(unknown))
    assert 'value="owner@example.com"' in existing.content.decode()
    assert len(mail.outbox) == 3  # only the owner's address has an account


def test_password_reset_blocked_per_address(client, owner):
    for number in range(4):
        assert reset(client, f"guess{number}@example.com").status_code == 302

    response = reset(client, "owner@example.com")

    assert response.status_code == 429
    assert mail.outbox == []
    # Another client address may still ask.
    assert reset(client, "owner@example.com", REMOTE_ADDR="10.6.0.1").status_code == 302
    assert len(mail.outbox) == 1


def test_blocked_message_translated(client, owner):
    for _ in range(3):
        sign_in(client, "owner@example.com")

    response = sign_in(client, "owner@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert response.status_code == 429
    assert "尝试次数过多" in errors(response)


def test_redis_down_signs_in_unthrottled(client, owner, monkeypatch):
    def redis_down(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(throttle, "get_usage", redis_down)

    assert sign_in(client, "owner@example.com").status_code == 200
    assert sign_in(client, "owner@example.com", PASSWORD).status_code == 302
