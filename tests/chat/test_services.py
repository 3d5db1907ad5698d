import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from chat import services
from chat.errors import ChatError
from chat.models import Conversation, Message
from tests.factories import make_conversation, make_message


def send(user, content="Hello there", conversation_id=None, client_id=None):
    return services.accept_message(
        user,
        conversation_id=conversation_id,
        new_conversation_id=uuid.uuid4(),
        content=content,
        client_id=client_id or uuid.uuid4(),
    )


def test_accept_creates_conversation_and_queued_reply(owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        accepted = send(owner, "What is 17 × 23?\nShow the steps.")

    assert accepted.duplicate is False
    assert accepted.conversation.owner == owner
    assert accepted.conversation.title == "What is 17 × 23?"
    assert accepted.user_message.role == Message.Role.USER
    assert accepted.user_message.content == "What is 17 × 23?\nShow the steps."
    assert accepted.assistant_message.status == Message.Status.QUEUED
    assert len(callbacks) == 1


def test_accept_same_client_id_returns_stored(owner, django_capture_on_commit_callbacks):
    client_id = uuid.uuid4()
    first = send(owner, client_id=client_id)
    with django_capture_on_commit_callbacks() as callbacks:
        second = send(owner, client_id=client_id)

    assert second.duplicate is True
    assert second.user_message.id == first.user_message.id
    assert second.assistant_message.id == first.assistant_message.id
    assert Message.objects.count() == 2
    assert callbacks == []


def test_accept_client_id_of_other_user_rejected(owner, outsider):
    client_id = uuid.uuid4()
    send(owner, client_id=client_id)
    with pytest.raises(ChatError) as raised:
        send(outsider, client_id=client_id)
    assert raised.value.code == "invalid_input"


def test_accept_outsider_conversation_not_found(owner, outsider):
    conversation = make_conversation(owner)
    with pytest.raises(ChatError) as raised:
        send(outsider, conversation_id=conversation.id)
    assert raised.value.code == "not_found"
    assert conversation.messages.count() == 0


def test_accept_while_reply_in_flight_busy(owner):
    conversation = make_conversation(owner)
    make_message(conversation, "user", "q")
    make_message(conversation, "assistant", status=Message.Status.STREAMING)
    with pytest.raises(ChatError) as raised:
        send(owner, conversation_id=conversation.id)
    assert raised.value.code == "busy"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        (None, "must be a string"),
        (42, "must be a string"),
        ("a\x00b", "NUL"),
        ("x" * 20_001, "the limit is 20000"),
    ],
)
def test_accept_invalid_content_stores_nothing(owner, content, expected):
    with pytest.raises(ChatError) as raised:
        send(owner, content=content)
    assert raised.value.code == "invalid_input"
    assert expected in raised.value.detail
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0


def test_title_long_first_line_shortened():
    title = services.title_from_content("\n\n" + "word " * 40)
    assert len(title) == services.TITLE_MAX_CHARS
    assert title.endswith("…")


def test_stop_queued_reply_marks_stopped(owner):
    conversation = make_conversation(owner)
    reply = make_message(conversation, "assistant", status=Message.Status.QUEUED)
    stopped = services.stop_queued_reply(reply)
    assert stopped.status == Message.Status.STOPPED
    assert stopped.finished_at is not None


def test_stop_claimed_reply_left_to_worker(owner):
    conversation = make_conversation(owner)
    reply = make_message(conversation, "assistant", status=Message.Status.STREAMING)
    assert services.stop_queued_reply(reply) is None
    reply.refresh_from_db()
    assert reply.status == Message.Status.STREAMING


def test_stale_streaming_reply_interrupted(owner):
    conversation = make_conversation(owner)
    make_message(conversation, "user", "q")
    stale = make_message(
        conversation,
        "assistant",
        "partial",
        status=Message.Status.STREAMING,
        heartbeat_at=timezone.now() - timedelta(seconds=61),
    )
    fresh_conversation = make_conversation(owner)
    fresh = make_message(
        fresh_conversation,
        "assistant",
        status=Message.Status.STREAMING,
        heartbeat_at=timezone.now() - timedelta(seconds=5),
    )

    interrupted = services.interrupt_stale_replies(conversation)

    assert [reply.id for reply in interrupted] == [stale.id]
    stale.refresh_from_db()
    assert stale.status == Message.Status.INTERRUPTED
    assert stale.error_code == "interrupted"
    assert stale.content == "partial"
    assert services.interrupt_stale_replies(fresh_conversation) == []
    fresh.refresh_from_db()
    assert fresh.status == Message.Status.STREAMING


def test_send_after_lost_worker_accepted(owner):
    conversation = make_conversation(owner)
    make_message(conversation, "user", "q")
    make_message(conversation, "assistant", status=Message.Status.QUEUED)
    Message.objects.filter(status=Message.Status.QUEUED).update(
        created_at=timezone.now() - timedelta(minutes=11)
    )

    accepted = send(owner, conversation_id=conversation.id)

    assert accepted.assistant_message.status == Message.Status.QUEUED
    assert conversation.messages.filter(status=Message.Status.INTERRUPTED).count() == 1
