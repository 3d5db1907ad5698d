"""The worker's live relay: a lost Redis buffer is rewritten, a broken watcher is no stop."""

import asyncio
import uuid

import pytest

from chat import live, replies, tasks
from chat.models import Message
from chat.replies import ReplyStream
from chat.stream_parser import ContentDelta, ReasoningDelta
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)


def streaming_reply(owner):
    conversation = make_conversation(owner)
    make_message(conversation, "user", "q")
    return make_message(conversation, "assistant", status=Message.Status.STREAMING)


async def test_lost_buffer_written_again(owner):
    reply = await asyncio.to_thread(streaming_reply, owner)
    stream = ReplyStream(reply)
    await live.start(reply.id)
    stream.add(ReasoningDelta("think "))
    stream.add(ContentDelta("Hello "))
    await stream.flush()
    assert await live.read(reply.id) == live.LiveState(2, "think ", "Hello ")

    # Redis restarted without persistence: every key of the reply is gone.
    await live.client().delete(*live._keys(reply.id))
    stream.add(ContentDelta("world"))
    await stream.flush()

    assert stream.seq == 3
    assert await live.read(reply.id) == live.LiveState(3, "think ", "Hello world")
    await live.finish(reply.id)


async def test_flush_survives_redis_error(owner, monkeypatch):
    reply = await asyncio.to_thread(streaming_reply, owner)
    stream = ReplyStream(reply)
    await live.start(reply.id)

    async def redis_down(*args, **kwargs):
        from redis.exceptions import ConnectionError

        raise ConnectionError("Connection refused")

    monkeypatch.setattr(live, "append", redis_down)
    stream.add(ContentDelta("kept "))
    await stream.flush()
    monkeypatch.undo()
    stream.add(ContentDelta("anyway"))
    await stream.flush()

    # The text and the sequence numbers stay whole for the checkpoint and the buffer.
    assert stream.checkpoint_fields()["content"] == "kept anyway"
    assert stream.seq == 2
    assert await live.read(reply.id) == live.LiveState(2, "", "kept anyway")
    await live.finish(reply.id)


def accepted_reply(owner):
    from chat import services

    accepted = services.accept_message(
        owner,
        conversation_id=None,
        new_conversation_id=uuid.uuid4(),
        content="a question",
        client_id=uuid.uuid4(),
    )
    return accepted.assistant_message


async def test_broken_cancel_watch_not_a_stop(owner, monkeypatch):
    # This test runs the reply itself: keep the task from any worker of the session.
    monkeypatch.setattr(tasks.generate_reply, "delay", lambda **kwargs: None)
    reply = await asyncio.to_thread(accepted_reply, owner)

    async def watch_breaks(message_id):
        raise RuntimeError("the cancel watcher broke")

    async def upstream_silent(self, call):
        await asyncio.sleep(3600)

    monkeypatch.setattr(replies, "_watch_cancel", watch_breaks)
    monkeypatch.setattr(ReplyStream, "consume", upstream_silent)

    await replies.run_reply(reply.id)

    stored = await asyncio.to_thread(Message.objects.get, pk=reply.pk)
    # Nobody pressed Stop: the reply must not end as if someone had.
    assert stored.status == Message.Status.FAILED
    assert stored.error_code == "internal_error"
