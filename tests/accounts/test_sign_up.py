"""Sign-up by emailed link: one page for every address, the link makes the account."""

import time
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.test import Client
from django.urls import reverse

from accounts import signup
from accounts.models import User
from tests.factories import make_user
from tests.mailbox import SIGN_UP_LINK, outbox_link, outbox_to

from .signing_up import choose_password, request_link, sign_up_by_link, without_csrf

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-sign-up-pass-phrase"


def test_sent_page_same_for_new_and_existing(client):
    make_user("taken@example.com")

    new = request_link(client, "fresh@example.com")
    existing = request_link(client, "Taken@Example.com")

    assert new.status_code == existing.status_code == 200
    assert without_csrf(new) == without_csrf(existing)
    assert "Check your inbox" in without_csrf(new)
    assert User.objects.count() == 1


def test_sent_page_same_in_chinese(client):
    make_user("taken@example.com")

    new = request_link(client, "fresh@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN")
    existing = request_link(client, "taken@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN")

    assert without_csrf(new) == without_csrf(existing)
    assert "查看" in without_csrf(new)


def test_each_address_gets_one_email(client):
    make_user("taken@example.com")

    request_link(client, "Fresh@Example.com")
    request_link(client, "TAKEN@example.com")

    fresh = outbox_to("fresh@example.com")
    taken = outbox_to("taken@example.com")
    assert len(mail.outbox) == 2
    assert len(fresh) == 1
    assert len(taken) == 1
    assert SIGN_UP_LINK.search(fresh[0].body)
    assert not SIGN_UP_LINK.search(taken[0].body)
    assert "already has an account" in taken[0].body
    assert reverse("accounts:login") in taken[0].body
    assert reverse("accounts:password_reset") in taken[0].body


def test_email_in_visitor_language(client):
    make_user("taken@example.com")

    request_link(client, "fresh@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN")
    request_link(client, "taken@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN")

    fresh, taken = mail.outbox
    assert "chatsite" in fresh.subject
    assert "注册" in fresh.subject
    assert "密码" in fresh.body
    assert "已有账户" in taken.body


def test_link_page_shows_address(client):
    request_link(client, "Fresh@Example.com")

    page = client.get(outbox_link("fresh@example.com"))

    assert page.status_code == 200
    assert "fresh@example.com" in page.content.decode()
    assert 'name="password1"' in page.content.decode()
    assert User.objects.count() == 0


def test_link_creates_account_and_signs_in(client):
    response = sign_up_by_link(client, "Fresh@Example.com", PASSWORD)

    assert response.status_code == 302
    assert response.url == reverse("chat:index")
    user = User.objects.get()
    assert user.email == "fresh@example.com"
    assert user.is_guest is False
    assert user.check_password(PASSWORD)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.get(reverse("chat:index")).status_code == 200


def test_link_used_twice_says_account_exists(client, settings):
    request_link(client, "fresh@example.com")
    link = outbox_link("fresh@example.com")
    choose_password(client, link, PASSWORD)
    client.post(reverse("accounts:logout"))

    again = client.get(link)
    posted = choose_password(client, link, "another-long-pass-phrase")

    for response in (again, posted):
        assert response.status_code == 409
        assert "already has an account" in response.content.decode()
        assert reverse("accounts:login") in response.content.decode()
    assert User.objects.get().check_password(PASSWORD)
    assert "_auth_user_id" not in client.session


def test_second_link_after_first_used(client):
    request_link(client, "fresh@example.com")
    first = outbox_link("fresh@example.com")
    request_link(client, "fresh@example.com")
    second = outbox_link("fresh@example.com")
    choose_password(client, first, PASSWORD)

    response = choose_password(client, second, "another-long-pass-phrase")

    assert response.status_code == 409
    assert User.objects.count() == 1


def old_timestamp(age: timedelta):
    """Return a TimestampSigner.timestamp that signs as if `age` had passed since."""
    return lambda signer: signing.b62_encode(int(time.time() - age.total_seconds()))


def test_link_expires_after_max_age(client, monkeypatch):
    with monkeypatch.context() as shifted:
        shifted.setattr(
            signing.TimestampSigner,
            "timestamp",
            old_timestamp(signup.SIGN_UP_MAX_AGE + timedelta(minutes=1)),
        )
        request_link(client, "late@example.com")
    link = outbox_link("late@example.com")

    page = client.get(link)
    posted = choose_password(client, link, PASSWORD)

    for response in (page, posted):
        assert response.status_code == 410
        assert "has expired" in response.content.decode()
        assert reverse("accounts:sign_up") in response.content.decode()
    assert User.objects.count() == 0
    assert "_auth_user_id" not in client.session


def test_link_valid_just_before_max_age(client, monkeypatch):
    with monkeypatch.context() as shifted:
        shifted.setattr(
            signing.TimestampSigner,
            "timestamp",
            old_timestamp(signup.SIGN_UP_MAX_AGE - timedelta(minutes=1)),
        )
        request_link(client, "prompt@example.com")

    response = choose_password(client, outbox_link("prompt@example.com"), PASSWORD)

    assert response.status_code == 302
    assert User.objects.filter(email="prompt@example.com").exists()


def test_tampered_link_rejected(client):
    request_link(client, "fresh@example.com")
    link = outbox_link("fresh@example.com")
    token = link.rstrip("/").rsplit("/", 1)[1]
    # Another address under the same signature.
    forged_payload = signing.b64_encode(b'{"email":"boss@example.com","guest":null,"next":""}')
    forged = token.replace(token.split(":", 1)[0], forged_payload.decode())
    broken = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")

    for bad in (forged, broken, "not-a-token"):
        url = reverse("accounts:sign_up_confirm", args=[bad])
        page = client.get(url)
        posted = choose_password(client, url, PASSWORD)
        for response in (page, posted):
            assert response.status_code == 410, bad
            assert "not valid" in response.content.decode()
            assert reverse("accounts:sign_up") in response.content.decode()
    assert User.objects.count() == 0


def test_bad_password_stores_nothing(client):
    request_link(client, "fresh@example.com")
    link = outbox_link("fresh@example.com")

    short = choose_password(client, link, "x7!")
    differ = choose_password(client, link, PASSWORD, PASSWORD + "x")
    like_email = choose_password(client, link, "fresh@example.com1")

    assert "too short" in short.content.decode()
    assert "too short" in str(short.context["form"].errors["password1"])
    assert "password2" not in short.context["form"].errors
    assert "The two password fields didn" in differ.content.decode()
    assert "too similar" in like_email.content.decode()
    for response in (short, differ, like_email):
        assert response.status_code == 200
    assert User.objects.count() == 0
    assert "_auth_user_id" not in client.session


def test_next_kept_through_link(client):
    response = sign_up_by_link(client, "fresh@example.com", PASSWORD, next_url="/teams/")

    assert response.status_code == 302
    assert response.url == "/teams/"


def test_offsite_next_ignored(client):
    response = sign_up_by_link(
        client, "fresh@example.com", PASSWORD, next_url="https://elsewhere.invalid/"
    )

    assert response.status_code == 302
    assert response.url == reverse("chat:index")
    assert "elsewhere.invalid" not in mail.outbox[0].body


def test_signed_in_user_redirected_from_sign_up(client, owner):
    client.force_login(owner)

    response = request_link(client, "fresh@example.com")

    assert response.status_code == 302
    assert response.url == reverse("chat:index")
    assert mail.outbox == []


def test_guest_link_in_other_browser_makes_new_account(client, settings):
    settings.GUEST_ACCESS = True
    client.get(reverse("chat:index"))
    guest = User.objects.get()
    request_link(client, "joined@example.com")
    # The link opened in another browser, where the guest is not signed in.
    other_browser = Client()

    response = choose_password(other_browser, outbox_link("joined@example.com"), PASSWORD)

    assert response.status_code == 302
    guest.refresh_from_db()
    assert guest.is_guest is True
    account = User.objects.get(email="joined@example.com")
    assert account.pk != guest.pk
    assert account.is_guest is False
