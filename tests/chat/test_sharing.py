"""Share links: who may make and revoke them, and what the public page contains."""

import json
import re

import pytest

from chat.models import ShareLink
from chat.sharing import newest_branch
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def branched_conversation(owner):
    """Return a conversation whose question has two replies, the second the newest."""
    conversation = make_conversation(owner, "Shared title")
    question = make_message(conversation, "user", "What is 2 + 2?")
    make_message(conversation, "assistant", "Old answer", parent=question, reasoning="old thought")
    make_message(conversation, "assistant", "New answer", parent=question, reasoning="new thought")
    return conversation


def post_json(client, url, body):
    return client.post(url, json.dumps(body), content_type="application/json")


def share_url(conversation, suffix=""):
    return f"/chat/api/conversations/{conversation.id}/share/{suffix}"


def test_newest_branch_follows_newest_version(owner):
    conversation = branched_conversation(owner)

    branch = newest_branch(conversation)

    assert [(m["role"], m["content"]) for m in branch] == [
        ("user", "What is 2 + 2?"),
        ("assistant", "New answer"),
    ]


def test_create_link_token_unguessable(owner_client, owner):
    conversation = branched_conversation(owner)

    state = post_json(owner_client, share_url(conversation), {"show_reasoning": True}).json()

    link = ShareLink.objects.get(conversation=conversation)
    assert state["url"].endswith(f"/chat/shared/{link.token}/")
    assert len(link.token) >= 43
    assert re.fullmatch(r"[A-Za-z0-9_-]+", link.token)
    assert state["show_reasoning"] is True
    # The URL carries the token only, never text of the conversation.
    assert "Shared" not in state["url"]
    assert "answer" not in state["url"]


def test_change_reasoning_keeps_token(owner_client, owner):
    conversation = branched_conversation(owner)
    first = post_json(owner_client, share_url(conversation), {"show_reasoning": True}).json()

    second = post_json(owner_client, share_url(conversation), {"show_reasoning": False}).json()

    assert second["url"] == first["url"]
    assert second["show_reasoning"] is False
    assert owner_client.get(share_url(conversation)).json() == second


def test_share_rejects_bad_body(owner_client, owner):
    conversation = branched_conversation(owner)

    response = post_json(owner_client, share_url(conversation), {"show_reasoning": "yes"})

    assert response.status_code == 400
    assert "show_reasoning" in response.json()["error"]
    assert not ShareLink.objects.exists()


def test_other_user_cannot_share(client, owner, outsider):
    conversation = branched_conversation(owner)
    client.force_login(outsider)

    created = post_json(client, share_url(conversation), {"show_reasoning": True})
    read = client.get(share_url(conversation))

    assert created.status_code == 404
    assert read.status_code == 404
    assert not ShareLink.objects.exists()


def test_other_user_cannot_revoke(client, owner, outsider):
    conversation = branched_conversation(owner)
    ShareLink.objects.create(conversation=conversation)
    client.force_login(outsider)

    response = client.post(share_url(conversation, "revoke/"))

    assert response.status_code == 404
    assert ShareLink.objects.filter(conversation=conversation).exists()


def test_public_page_anonymous(client, owner):
    conversation = branched_conversation(owner)
    link = ShareLink.objects.create(conversation=conversation, show_reasoning=False)

    response = client.get(f"/chat/shared/{link.token}/")

    assert response.status_code == 200
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    assert '<meta name="robots" content="noindex, nofollow">' in body
    assert "New answer" in body
    assert "Old answer" not in body
    # Hidden reasoning is not even in the page source.
    assert "new thought" not in body


def test_public_page_shows_reasoning_when_chosen(client, owner):
    conversation = branched_conversation(owner)
    link = ShareLink.objects.create(conversation=conversation, show_reasoning=True)

    body = client.get(f"/chat/shared/{link.token}/").content.decode()

    assert "new thought" in body
    assert "old thought" not in body


def test_revoked_link_answers_404(owner_client, client, owner):
    conversation = branched_conversation(owner)
    token = post_json(owner_client, share_url(conversation), {}).json()["url"].split("/")[-2]

    state = owner_client.post(share_url(conversation, "revoke/")).json()
    owner_client.logout()
    response = client.get(f"/chat/shared/{token}/")

    assert state == {"url": None, "show_reasoning": False}
    assert response.status_code == 404
    assert "not available" in response.content.decode()
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_deleted_conversation_link_404(client, owner):
    from django.utils import timezone

    conversation = branched_conversation(owner)
    link = ShareLink.objects.create(conversation=conversation)
    conversation.deleted_at = timezone.now()
    conversation.save()

    assert client.get(f"/chat/shared/{link.token}/").status_code == 404


def test_reshare_after_revoke_new_token(owner_client, owner):
    conversation = branched_conversation(owner)
    first = post_json(owner_client, share_url(conversation), {}).json()["url"]
    owner_client.post(share_url(conversation, "revoke/"))

    second = post_json(owner_client, share_url(conversation), {}).json()["url"]

    assert second != first
    assert owner_client.get(first.replace("http://testserver", "")).status_code == 404


def test_share_without_csrf_rejected(owner):
    from django.test import Client

    conversation = branched_conversation(owner)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    created = post_json(client, share_url(conversation), {"show_reasoning": True})

    assert created.status_code == 403
    assert not ShareLink.objects.exists()
