"""Each way a reply ends counts or refunds its reserved message, by the table in accounts.quotas.

| outcome | counts |
| --- | --- |
| complete, truncated | yes |
| stopped after the first token | yes |
| stopped before any output | no |
| failed, interrupted (upstream out of capacity included) | no |

The replies go through the real path: websocket, database, Celery worker and
the simulator. The owner is on the free plan: 50 thinking messages a day.
"""

import asyncio
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts import quotas
from accounts.models import ModelClass, QuotaCounter
from chat.history import estimate_tokens
from chat.models import ChatModel, Message, UsageRecord
from tests.chat.websocket import (
    connect,
    is_done,
    receive,
    receive_until,
    send_frame,
)
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

FREE_DAILY_CAP = 50


def counter_used(user) -> int:
    return (
        QuotaCounter.objects.filter(
            subject=quotas.subject_for(user),
            model_class=ModelClass.THINKING,
            day=quotas.quota_day(timezone.now()),
        )
        .values_list("used", flat=True)
        .first()
    )


def is_type(kind):
    return lambda frame: frame["type"] == kind


async def send_and_accept(communicator, owner, text):
    """Send `text` in a new conversation, check that it reserved one message, return the accept."""
    await communicator.send_json_to(send_frame(text))
    accepted = await receive(communicator)
    assert accepted["type"] == "message.accepted", accepted
    assert accepted["quota"]["remaining"] == FREE_DAILY_CAP - 1
    assert await asyncio.to_thread(counter_used, owner) == 1
    return accepted


async def run_reply(cookie, owner, text):
    communicator = await connect(cookie)
    accepted = await send_and_accept(communicator, owner, text)
    frames = await receive_until(communicator, is_done, timeout=30)
    await communicator.disconnect()
    return frames[-1], await stored_reply(accepted["assistant_message"]["id"])


async def stored_reply(reply_id):
    return await asyncio.to_thread(Message.objects.select_related("conversation").get, pk=reply_id)


async def check_settled(owner, done, reply, *, counted):
    """Check the counter and the reply's quota state, then the quota the done event reports."""
    used = await asyncio.to_thread(counter_used, owner)
    assert used == (1 if counted else 0)
    expected_state = Message.QuotaState.COUNTED if counted else Message.QuotaState.REFUNDED
    assert reply.quota_state == expected_state
    assert done["quota"] is not None, "message.done carries no quota"
    assert done["quota"]["model_class"] == ModelClass.THINKING
    assert done["quota"]["remaining"] == FREE_DAILY_CAP - used


def check_usage(reply, *, counted):
    """Check the reply's usage record: written whatever the outcome, with the reply's tokens."""
    record = UsageRecord.objects.get(message=reply)
    assert record.outcome == reply.status
    assert record.counted is counted
    assert record.user_id == reply.conversation.owner_id
    assert record.subject == reply.quota_subject
    assert record.model_class == ModelClass.THINKING
    assert record.error_code == reply.error_code
    if reply.completion_tokens is None and (reply.content or reply.reasoning):
        # No usage came from the upstream: the tokens are estimated from the text.
        assert record.usage_estimated is True
        expected = estimate_tokens(reply.reasoning) + estimate_tokens(reply.content)
        assert record.completion_tokens == expected
        assert record.completion_tokens > 0
        return record
    assert record.usage_estimated is False
    assert record.completion_tokens == (reply.completion_tokens or 0)
    assert record.reasoning_tokens == (reply.reasoning_tokens or 0)
    assert record.prompt_cache_hit_tokens == (reply.cache_hit_tokens or 0)
    assert record.prompt_cache_hit_tokens + record.prompt_cache_miss_tokens == (
        reply.prompt_tokens or 0
    )
    return record


async def test_complete_counted(live_stack, owner, owner_cookie):
    done, reply = await run_reply(owner_cookie, owner, "[sim rate=0]\nWhat is a monad?")

    assert done["status"] == "complete"
    record = await asyncio.to_thread(check_usage, reply, counted=True)
    await check_settled(owner, done, reply, counted=True)
    assert record.completion_tokens > 0
    assert record.completion_tokens == done["usage"]["completion_tokens"]


async def test_truncated_counted(live_stack, owner, owner_cookie):
    done, reply = await run_reply(owner_cookie, owner, "[sim fault=length rate=0]\nGo on.")

    assert done["status"] == "truncated"
    record = await asyncio.to_thread(check_usage, reply, counted=True)
    await check_settled(owner, done, reply, counted=True)
    assert record.completion_tokens > 0


async def test_stopped_after_token_counted(live_stack, owner, owner_cookie):
    communicator = await connect(owner_cookie)
    accepted = await send_and_accept(
        communicator, owner, "[sim rate=10 reasoning=300]\nThink for a long time."
    )
    reply_id = accepted["assistant_message"]["id"]
    await receive_until(communicator, is_type("reasoning.delta"))

    await communicator.send_json_to({"type": "message.stop", "message": reply_id})
    frames = await receive_until(communicator, is_done)
    await communicator.disconnect()
    reply = await stored_reply(reply_id)

    assert frames[-1]["status"] == "stopped"
    assert reply.reasoning
    await asyncio.to_thread(check_usage, reply, counted=True)
    await check_settled(owner, frames[-1], reply, counted=True)


async def test_stopped_before_output_refunded(live_stack, owner, owner_cookie):
    communicator = await connect(owner_cookie)
    accepted = await send_and_accept(
        communicator, owner, "[sim queue=30 keepalive=1]\nWait before answering."
    )
    reply_id = accepted["assistant_message"]["id"]
    await receive_until(
        communicator,
        lambda frame: frame["type"] == "message.status" and frame["status"] == "streaming",
    )

    await communicator.send_json_to({"type": "message.stop", "message": reply_id})
    frames = await receive_until(communicator, is_done)
    await communicator.disconnect()
    reply = await stored_reply(reply_id)

    assert frames[-1]["status"] == "stopped"
    assert reply.reasoning == ""
    assert reply.content == ""
    await asyncio.to_thread(check_usage, reply, counted=False)
    await check_settled(owner, frames[-1], reply, counted=False)


async def test_failed_refunded(live_stack, owner, owner_cookie):
    done, reply = await run_reply(owner_cookie, owner, "[sim fault=http_500]\nHello?")

    assert done["status"] == "failed"
    assert done["error"]["code"] == "server_error"
    record = await asyncio.to_thread(check_usage, reply, counted=False)
    await check_settled(owner, done, reply, counted=False)
    assert record.error_code == "server_error"


async def test_upstream_capacity_refunded(live_stack, owner, owner_cookie):
    done, reply = await run_reply(
        owner_cookie, owner, "[sim fault=insufficient_system_resource rate=0]\nExplain TCP."
    )

    assert done["status"] == "failed"
    assert done["error"]["code"] == "upstream_capacity"
    # Text arrived before the provider ran out of capacity, and the message is still refunded.
    assert reply.content
    record = await asyncio.to_thread(check_usage, reply, counted=False)
    await check_settled(owner, done, reply, counted=False)
    assert record.error_code == "upstream_capacity"
    assert record.completion_tokens > 0
    assert record.completion_tokens == reply.completion_tokens


def make_reserved_reply(owner, status, **fields):
    """Store a reply with one reserved message, without enqueueing it for the worker."""
    conversation = make_conversation(owner)
    make_message(conversation, Message.Role.USER, "Explain quicksort.")
    with transaction.atomic():
        reservation = quotas.reserve(
            owner,
            ModelClass.THINKING,
            in_flight_count=lambda _user: 0,
            recent_sends=lambda _user, _since: [],
            content_length=len("Explain quicksort."),
        )
        reply = make_message(
            conversation,
            Message.Role.ASSISTANT,
            status=status,
            chat_model=ChatModel.objects.get(slug="environment"),
            quota_subject=reservation.subject,
            quota_class=reservation.model_class,
            quota_day=reservation.day,
            quota_state=Message.QuotaState.RESERVED,
            **fields,
        )
    return conversation, reply


def make_stale_reply(owner):
    """Store a streaming reply whose worker died four minutes ago, after some text."""
    now = timezone.now()
    return make_reserved_reply(
        owner,
        Message.Status.STREAMING,
        content="Quicksort picks a pivot",
        reasoning="The user wants quicksort.",
        started_at=now - timedelta(minutes=5),
        first_token_at=now - timedelta(minutes=5),
        heartbeat_at=now - timedelta(minutes=4),
        seq=4,
    )


async def test_interrupted_refunded(live_stack, owner, owner_cookie):
    conversation, stale = await asyncio.to_thread(make_stale_reply, owner)
    assert await asyncio.to_thread(counter_used, owner) == 1
    communicator = await connect(owner_cookie)

    await communicator.send_json_to(
        {"type": "conversation.open", "conversation": str(conversation.id)}
    )
    frames = await receive_until(communicator, is_done)
    await communicator.disconnect()
    reply = await stored_reply(stale.id)

    assert frames[-1]["status"] == "interrupted"
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.content == "Quicksort picks a pivot"
    await asyncio.to_thread(check_usage, reply, counted=False)
    await check_settled(owner, frames[-1], reply, counted=False)


async def test_stopped_while_queued_refunded(live_stack, owner, owner_cookie):
    # No task is enqueued, so the reply stays queued and the web process stops it itself.
    conversation, queued = await asyncio.to_thread(
        make_reserved_reply, owner, Message.Status.QUEUED
    )
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(
        {"type": "conversation.open", "conversation": str(conversation.id)}
    )
    snapshot = await receive(communicator)
    assert snapshot["type"] == "snapshot"

    await communicator.send_json_to({"type": "message.stop", "message": str(queued.id)})
    frames = await receive_until(communicator, is_done)
    await communicator.disconnect()
    reply = await stored_reply(queued.id)

    assert frames[-1]["status"] == "stopped"
    assert reply.status == Message.Status.STOPPED
    await asyncio.to_thread(check_usage, reply, counted=False)
    await check_settled(owner, frames[-1], reply, counted=False)
