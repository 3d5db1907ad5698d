"""Password reset by emailed link: one page for every address, the link sets the password."""

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import User
from tests.factories import PASSWORD
from tests.mailbox import RESET_LINK, outbox_link

from .signing_up import without_csrf

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-long-pass-phrase-19"


def ask_reset(client, email, **extra):
    return client.post(reverse("accounts:password_reset"), {"email": email}, follow=True, **extra)


def test_sign_in_page_links_reset(client):
    page = client.get(reverse("accounts:login")).content.decode()

    assert "Forgot your password?" in page
    assert reverse("accounts:password_reset") in page


def test_reset_page_same_for_known_and_unknown(client, owner):
    known = ask_reset(client, "Owner@Example.com")
    unknown = ask_reset(client, "nobody@example.com")

    assert known.redirect_chain == unknown.redirect_chain
    assert known.redirect_chain == [(reverse("accounts:password_reset_done"), 302)]
    assert known.status_code == unknown.status_code == 200
    assert without_csrf(known) == without_csrf(unknown)
    assert "Check your inbox" in without_csrf(known)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@example.com"]


def test_reset_for_guest_sends_nothing(client, settings):
    settings.GUEST_ACCESS = True
    client.get(reverse("chat:index"))  # makes a guest, who has no password to reset
    guest_email = User.objects.get(is_guest=True).email

    response = ask_reset(client, guest_email)

    assert response.status_code == 200
    assert mail.outbox == []


def test_reset_link_sets_new_password(client, owner):
    ask_reset(client, "owner@example.com")
    link = outbox_link("owner@example.com", RESET_LINK)

    form_page = client.get(link, follow=True)
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(
        set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )

    assert 'name="new_password1"' in form_page.content.decode()
    assert done.redirect_chain[-1][0] == reverse("accounts:password_reset_complete")
    assert "Password changed" in done.content.decode()
    old = client.post(
        reverse("accounts:login"), {"username": "owner@example.com", "password": PASSWORD}
    )
    new = client.post(
        reverse("accounts:login"), {"username": "owner@example.com", "password": NEW_PASSWORD}
    )
    assert old.status_code == 200
    assert new.status_code == 302


def test_reset_link_works_once(client, owner):
    ask_reset(client, "owner@example.com")
    link = outbox_link("owner@example.com", RESET_LINK)
    set_url = client.get(link, follow=True).redirect_chain[-1][0]
    client.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    again = client.get(link, follow=True)

    assert "expired or was already used" in again.content.decode()
    assert reverse("accounts:password_reset") in again.content.decode()


def test_reset_email_in_visitor_language(client, owner):
    ask_reset(client, "owner@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN")

    message = mail.outbox[0]
    assert "重置" in message.subject
    assert "设置新密码" in message.body
    assert RESET_LINK.search(message.body)


def test_reset_bad_email_shows_error(client, owner):
    response = client.post(reverse("accounts:password_reset"), {"email": "not-an-email"})

    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert mail.outbox == []
