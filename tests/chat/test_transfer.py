"""Export as Markdown and JSON, and import of the JSON export."""

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chat import transfer
from chat.models import Conversation, Message, UsageRecord
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def tree_conversation(owner, title="二分查找 Binary search"):
    """Return a conversation with a regenerated reply and an edited follow-up question."""
    conversation = make_conversation(owner, title)
    question = make_message(conversation, "user", "How does binary search work?")
    make_message(conversation, "assistant", "First answer", parent=question, reasoning="r1")
    second = make_message(
        conversation,
        "assistant",
        "Second answer with `code`",
        parent=question,
        reasoning="line one\nline two",
        model="deepseek-flash",
        cost_usd="0.00100000",
    )
    follow = make_message(conversation, "user", "And in Chinese?", parent=second)
    make_message(conversation, "assistant", "二分查找……", parent=follow)
    edited = make_message(conversation, "user", "And in French?", parent=second)
    make_message(conversation, "assistant", "La recherche…", parent=edited, status="stopped")
    return conversation


def export_json(client, conversation):
    response = client.get(f"/chat/{conversation.id}/export.json")
    assert response.status_code == 200
    return json.loads(response.content)


def upload(client, payload, name="export.json"):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/chat/import/", {"file": SimpleUploadedFile(name, raw)})


def without_ids_and_times(export):
    """Return the export with ids replaced by positions and times dropped."""
    positions = {message["id"]: index for index, message in enumerate(export["messages"])}
    messages = []
    for message in export["messages"]:
        copy = {k: v for k, v in message.items() if k not in ("id", "created_at")}
        copy["parent"] = positions.get(message["parent"])
        messages.append(copy)
    rest = {k: v for k, v in export.items() if k not in ("messages", "exported_at")}
    return {**rest, "messages": messages}


def test_json_export_download_headers(owner_client, owner):
    conversation = tree_conversation(owner)

    response = owner_client.get(f"/chat/{conversation.id}/export.json")

    assert response["Content-Type"] == "application/json; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=utf-8''" in disposition
    assert ".json" in disposition
    data = json.loads(response.content)
    assert data["format"] == "chatsite.conversation"
    assert data["version"] == 1
    assert len(data["messages"]) == 7


def test_markdown_export_newest_branch(owner_client, owner):
    conversation = tree_conversation(owner)

    response = owner_client.get(f"/chat/{conversation.id}/export.md")

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    text = response.content.decode()
    assert text.startswith("# 二分查找 Binary search\n")
    assert "Second answer with `code`" in text
    assert "> line one\n> line two" in text
    assert "And in French?" in text
    assert "First answer" not in text
    assert "And in Chinese?" not in text


def test_export_owner_only(client, owner, outsider):
    conversation = tree_conversation(owner)
    client.force_login(outsider)

    for suffix in ("export.json", "export.md"):
        assert client.get(f"/chat/{conversation.id}/{suffix}").status_code == 404


def test_export_signed_out_redirects(client, owner):
    conversation = tree_conversation(owner)

    response = client.get(f"/chat/{conversation.id}/export.json")

    assert response.status_code == 302
    assert "/accounts/" in response["Location"]


def test_round_trip_equal(owner_client, owner):
    original = export_json(owner_client, tree_conversation(owner))

    response = upload(owner_client, original)
    assert response.status_code == 302
    imported = Conversation.objects.exclude(pk__in=[]).order_by("-created_at").first()
    again = export_json(owner_client, imported)

    assert response["Location"] == f"/chat/{imported.id}/"
    assert imported.owner == owner
    expected = without_ids_and_times(original)
    # An import marks every reply complete, so the stopped one comes back complete.
    expected["messages"][6]["status"] = "complete"
    assert without_ids_and_times(again) == expected
    assert {m["id"] for m in again["messages"]}.isdisjoint({m["id"] for m in original["messages"]})


def test_import_costs_nothing(owner_client, owner):
    original = export_json(owner_client, tree_conversation(owner))
    records_before = UsageRecord.objects.count()

    upload(owner_client, original)

    imported = Conversation.objects.order_by("-created_at").first()
    replies = imported.messages.filter(role="assistant")
    assert replies.count() == 4
    for reply in replies:
        assert reply.status == Message.Status.COMPLETE
        assert reply.cost_usd is None
        assert reply.quota_state == Message.QuotaState.NONE
        assert reply.prompt_tokens is None
    assert UsageRecord.objects.count() == records_before


def valid_export():
    return {
        "format": "chatsite.conversation",
        "version": 1,
        "title": "T",
        "messages": [
            {"id": "a", "parent": None, "role": "user", "content": "Hi"},
            {"id": "b", "parent": "a", "role": "assistant", "content": "Hello", "reasoning": ""},
            {"id": "c", "parent": "b", "role": "user", "content": "More"},
        ],
    }


def broken(change):
    data = valid_export()
    change(data)
    return data


BAD_FILES = [
    ("not json", b"{not json", "not valid JSON"),
    ("not utf-8", "标题".encode("gbk"), "not UTF-8"),
    ("wrong format", broken(lambda d: d.update(format="other")), "`format`"),
    ("wrong version", broken(lambda d: d.update(version=9)), "version 9"),
    ("no messages", broken(lambda d: d.update(messages=[])), "`messages`"),
    ("bad role", broken(lambda d: d["messages"][1].update(role="system")), "Message 2: `role`"),
    ("missing id", broken(lambda d: d["messages"][0].pop("id")), "Message 1: `id`"),
    ("duplicate id", broken(lambda d: d["messages"][2].update(id="a")), "used twice"),
    (
        "unknown parent",
        broken(lambda d: d["messages"][2].update(parent="zz")),
        "Message 3: `parent` “zz”",
    ),
    (
        "reply without question",
        broken(lambda d: d["messages"][1].update(parent=None)),
        "Message 2: a reply's `parent` must be a question",
    ),
    (
        "question after question",
        broken(lambda d: d["messages"][2].update(parent="a")),
        "Message 3: a question's `parent`",
    ),
    (
        "content not text",
        broken(lambda d: d["messages"][1].update(content=5)),
        "Message 2: `content` must be text",
    ),
    (
        "empty question",
        broken(lambda d: d["messages"][2].update(content=" ")),
        "Message 3: a question has no `content`",
    ),
    ("title not text", broken(lambda d: d.update(title=["x"])), "`title`"),
]


@pytest.mark.parametrize(("case", "payload", "expected"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_import_rejects_bad_file(owner_client, case, payload, expected):
    response = upload(owner_client, payload)

    assert response.status_code == 400
    assert expected in html.unescape(response.content.decode())
    # Nothing is stored half-way.
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0


def test_import_rejects_large_file(owner_client, monkeypatch):
    monkeypatch.setattr(transfer, "IMPORT_MAX_BYTES", 100)

    response = upload(owner_client, {**valid_export(), "title": "x" * 150})

    assert response.status_code == 400
    assert "the limit is 100 bytes" in response.content.decode()
    assert Conversation.objects.count() == 0


def test_import_without_file(owner_client):
    response = owner_client.post("/chat/import/", {})

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()


def test_import_valid_minimal(owner_client, owner):
    response = upload(owner_client, valid_export())

    conversation = Conversation.objects.get(owner=owner)
    assert response["Location"] == conversation.get_absolute_url()
    assert conversation.title == "T"
    rows = list(conversation.messages.order_by("created_at"))
    assert [row.role for row in rows] == ["user", "assistant", "user"]
    assert rows[1].parent_id == rows[0].id
    assert rows[2].parent_id == rows[1].id


def test_import_far_too_large_rejected_early(owner_client, monkeypatch):
    monkeypatch.setattr(transfer, "IMPORT_MAX_BYTES", 1000)

    response = upload(owner_client, {**valid_export(), "title": "x" * 150_000})

    assert response.status_code == 413
    assert "larger than the limit of 1000 bytes" in response.content.decode()
    assert Conversation.objects.count() == 0
