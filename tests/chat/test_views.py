import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import make_conversation, make_message


def test_chat_anonymous_redirected_to_sign_in(client, db):
    response = client.get(reverse("chat:index"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_conversation_outsider_not_found(client, owner, outsider):
    conversation = make_conversation(owner, title="Private plans")
    client.force_login(outsider)
    response = client.get(conversation.get_absolute_url())
    assert response.status_code == 404
    assert b"Private plans" not in response.content


def test_conversation_owner_sees_history(client, owner):
    conversation = make_conversation(owner, title="My chat")
    make_message(conversation, "user", "What is <script>alert(1)</script>?")
    client.force_login(owner)
    response = client.get(conversation.get_absolute_url())
    assert response.status_code == 200
    # Message text travels as JSON data, never as markup.
    assert b"<script>alert(1)</script>" not in response.content
    assert b"\\u003Cscript\\u003Ealert(1)\\u003C/script\\u003E" in response.content


def test_sidebar_lists_only_own_conversations(client, owner, outsider):
    make_conversation(owner, title="Mine")
    make_conversation(outsider, title="Theirs")
    client.force_login(owner)
    response = client.get(reverse("chat:index"))
    assert b"Mine" in response.content
    assert b"Theirs" not in response.content


def notice_tag(response):
    html = response.content.decode()
    start = html.index('<p class="simulator-notice"')
    return html[start : html.index(">", start)]


def test_simulator_notice_shown(client, owner, settings):
    settings.UPSTREAM_IS_SIMULATOR = True
    client.force_login(owner)
    response = client.get(reverse("chat:index"))
    assert "hidden" not in notice_tag(response)


def test_simulator_notice_hidden_with_api(client, owner, settings):
    settings.UPSTREAM_IS_SIMULATOR = False
    client.force_login(owner)
    response = client.get(reverse("chat:index"))
    assert "hidden" in notice_tag(response)


@pytest.mark.parametrize("url_name", ["accounts:login", "accounts:sign_up"])
def test_pages_send_strict_csp(client, db, url_name):
    response = client.get(reverse(url_name))
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_sign_up_form_requires_csrf(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        reverse("accounts:sign_up"),
        {"email": "x@example.com"},
    )
    assert response.status_code == 403
    assert mail.outbox == []
