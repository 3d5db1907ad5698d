"""The conversation list API: pages, search, and that nobody acts on another's list."""

import json

import pytest
from django.db import connection

from chat.models import Conversation, Message
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_search_matches_chinese_substring(owner_client, owner):
    conversation = make_conversation(owner, "算法")
    make_message(conversation, "user", "二分查找是怎么工作的？")
    make_conversation(owner, "Other")

    items = owner_client.get("/chat/api/conversations/", {"q": "查找"}).json()["items"]

    assert [item["id"] for item in items] == [str(conversation.id)]
    assert "查找" in items[0]["snippet"]


def test_search_case_insensitive_title(owner_client, owner):
    conversation = make_conversation(owner, "Binary Search")

    items = owner_client.get("/chat/api/conversations/", {"q": "binary"}).json()["items"]

    assert [item["id"] for item in items] == [str(conversation.id)]


def test_search_skips_other_users(owner_client, outsider):
    make_message(make_conversation(outsider, "secret"), "user", "secret text")

    items = owner_client.get("/chat/api/conversations/", {"q": "secret"}).json()["items"]

    assert items == []


def test_search_uses_trigram_index():
    if connection.vendor != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM chat_message WHERE UPPER(content::text) LIKE UPPER(%s)",
            ["%二分查找%"],
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")

    assert "chat_msg_content_trgm" in plan


def test_other_users_conversation_not_found(owner_client, outsider):
    conversation = make_conversation(outsider, "theirs")

    for url in (
        f"/chat/api/conversations/{conversation.id}/",
        f"/chat/api/conversations/{conversation.id}/delete/",
    ):
        response = owner_client.post(url, json.dumps({"title": "mine"}), "application/json")
        assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "theirs"
    assert conversation.deleted_at is None


def test_rename_rejects_empty_title(owner_client, owner):
    conversation = make_conversation(owner, "Keep")

    response = owner_client.post(
        f"/chat/api/conversations/{conversation.id}/",
        json.dumps({"title": "   "}),
        "application/json",
    )

    assert response.status_code == 400
    assert "empty" in response.json()["error"]


def test_write_needs_csrf_token(client, owner):
    client.handler.enforce_csrf_checks = True
    client.force_login(owner)
    conversation = make_conversation(owner, "Keep")

    response = client.post(f"/chat/api/conversations/{conversation.id}/delete/")

    assert response.status_code == 403
    conversation.refresh_from_db()
    assert conversation.deleted_at is None


def test_deleted_hidden_and_restored(owner_client, owner):
    conversation = make_conversation(owner, "Gone")
    owner_client.post(f"/chat/api/conversations/{conversation.id}/delete/")

    listed = owner_client.get("/chat/api/conversations/").json()["items"]
    page = owner_client.get(f"/chat/{conversation.id}/")
    owner_client.post(f"/chat/api/conversations/{conversation.id}/restore/")
    restored = owner_client.get("/chat/api/conversations/").json()["items"]

    assert listed == []
    assert page.status_code == 404
    assert [item["id"] for item in restored] == [str(conversation.id)]


def test_pages_cover_all_once(owner_client, owner):
    for index in range(65):
        make_conversation(owner, f"c{index}")
    Conversation.objects.filter(title="c3").update(pinned_at="2026-01-01T00:00:00Z")

    seen = []
    cursor = None
    while True:
        params = {"before": cursor} if cursor else {}
        page = owner_client.get("/chat/api/conversations/", params).json()
        seen.extend(item["title"] for item in page["items"])
        cursor = page["next"]
        if not cursor:
            break

    assert seen[0] == "c3"
    assert sorted(seen) == sorted(f"c{index}" for index in range(65))


def test_bad_cursor_rejected(owner_client):
    response = owner_client.get("/chat/api/conversations/", {"before": "nonsense"})

    assert response.status_code == 400
    assert "cursor" in response.json()["error"]


def test_message_rows_unaffected_by_delete(owner_client, owner):
    conversation = make_conversation(owner, "Kept rows")
    make_message(conversation, "user", "text")

    owner_client.post(f"/chat/api/conversations/{conversation.id}/delete/")

    assert Message.objects.filter(conversation=conversation).count() == 1
