"""Conversations deleted long enough ago are removed for good; the usage ledger stays whole."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from chat import purge, tasks
from chat.models import Conversation, Message, ShareLink, UsageRecord
from dashboard.models import ConversationAccess, UsageDaily, UserDaily
from tests.factories import make_conversation, make_message, make_user

pytestmark = pytest.mark.django_db


def deleted_conversation(owner, days_ago, title="Deleted"):
    """Return a conversation with a billed reply and a share link, deleted `days_ago` days ago."""
    conversation = make_conversation(owner, title=title)
    make_message(conversation, "user", "a question")
    reply = make_message(conversation, "assistant", "an answer")
    UsageRecord.objects.create(
        message=reply,
        user=owner,
        plan="free",
        model_id="deepseek-flash",
        outcome="complete",
        counted=True,
        prompt_cache_miss_tokens=12,
        completion_tokens=34,
    )
    ShareLink.objects.create(conversation=conversation)
    Conversation.objects.filter(pk=conversation.pk).update(
        deleted_at=timezone.now() - timedelta(days=days_ago)
    )
    return conversation


def test_purge_removes_expired_only(owner, settings):
    settings.CONVERSATION_PURGE_DAYS = 30
    expired = deleted_conversation(owner, 31, "expired")
    recent = deleted_conversation(owner, 29, "recent")
    kept = make_conversation(owner, title="kept")
    make_message(kept, "user", "still here")

    purged = purge.purge_deleted()

    assert purged == 1
    remaining = set(Conversation.objects.values_list("title", flat=True))
    assert remaining == {"recent", "kept"}
    assert not Message.objects.filter(conversation_id=expired.pk).exists()
    assert not ShareLink.objects.filter(conversation_id=expired.pk).exists()
    assert Message.objects.filter(conversation=recent).count() == 2


def test_purge_keeps_usage_ledger(owner, settings):
    settings.CONVERSATION_PURGE_DAYS = 30
    conversation = deleted_conversation(owner, 40)
    ConversationAccess.objects.create(
        viewer=make_user("staff@example.com", is_staff=True),
        conversation=conversation,
        conversation_uuid=conversation.pk,
        owner=owner,
    )
    rollups_before = [list(model.objects.values()) for model in (UsageDaily, UserDaily)]
    assert all(rollups_before)

    purge.purge_deleted()

    record = UsageRecord.objects.get(user=owner)
    assert record.message_id is None
    assert (record.prompt_cache_miss_tokens, record.completion_tokens) == (12, 34)
    assert record.counted is True
    # The dashboard's rollups, kept by a trigger on the ledger, do not move either.
    assert [list(model.objects.values()) for model in (UsageDaily, UserDaily)] == rollups_before
    access = ConversationAccess.objects.get()
    assert access.conversation_id is None
    assert access.conversation_uuid == conversation.pk


def test_purge_zero_days_removes_every_deleted(owner, settings):
    settings.CONVERSATION_PURGE_DAYS = 0
    deleted_conversation(owner, 0)
    make_conversation(owner, title="kept")

    assert tasks.purge_deleted_conversations() == 1
    assert list(Conversation.objects.values_list("title", flat=True)) == ["kept"]


def test_purge_works_in_batches(owner, settings, monkeypatch):
    settings.CONVERSATION_PURGE_DAYS = 30
    monkeypatch.setattr(purge, "BATCH_SIZE", 2)
    for number in range(5):
        deleted_conversation(owner, 31, f"old {number}")

    assert purge.purge_deleted() == 5
    assert Conversation.objects.count() == 0


def test_purge_scheduled_on_sweep_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-deleted-conversations"]

    assert entry["task"] == tasks.purge_deleted_conversations.name
    assert settings.CELERY_TASK_ROUTES[entry["task"]] == {"queue": settings.SWEEP_QUEUE}


def test_admin_restores_deleted(admin_client, owner):
    conversation = deleted_conversation(owner, 3)
    changelist = reverse("admin:chat_conversation_changelist")

    response = admin_client.post(
        changelist,
        {"action": "restore", "_selected_action": [str(conversation.pk)]},
        follow=True,
    )

    assert "1 conversation restored." in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.deleted_at is None
