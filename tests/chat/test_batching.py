"""Coalescing by size, batched checkpoints and batched stop flags (chat/batching.py)."""

import asyncio
import time
import uuid
import weakref
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.test import override_settings

from chat import batching, live
from chat.events import broadcast, group_name
from chat.models import Message
from chat.replies import ReplyStream, db
from chat.stream_parser import ContentDelta, ReasoningDelta
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)


def detached_stream():
    """A reply stream that touches no database row."""
    return ReplyStream(SimpleNamespace(id=uuid.uuid4(), conversation_id=uuid.uuid4()))


def streaming_reply(owner, status=Message.Status.STREAMING):
    conversation = make_conversation(owner)
    make_message(conversation, "user", "q")
    return make_message(conversation, "assistant", status=status)


async def test_coalesce_flushes_at_size(settings):
    settings.CHAT_COALESCE_SECONDS = 5.0
    settings.CHAT_COALESCE_MAX_CHARS = 10
    stream = detached_stream()
    stream.add(ReasoningDelta("12345"))
    stream.add(ContentDelta("67890"))

    started = time.monotonic()
    await asyncio.wait_for(stream.gather(), 2.0)

    assert time.monotonic() - started < 1.0


async def test_coalesce_waits_below_size(settings):
    settings.CHAT_COALESCE_SECONDS = 0.3
    settings.CHAT_COALESCE_MAX_CHARS = 10
    stream = detached_stream()
    stream.add(ReasoningDelta("123456789"))

    started = time.monotonic()
    await stream.gather()

    assert time.monotonic() - started >= 0.25


async def test_size_count_restarts_after_flush(settings, monkeypatch):
    settings.CHAT_COALESCE_MAX_CHARS = 10
    stream = detached_stream()

    async def no_redis(*args, **kwargs):
        return True

    monkeypatch.setattr(live, "append", no_redis)
    monkeypatch.setattr("chat.replies.broadcast", no_redis)
    stream.add(ContentDelta("0123456789"))
    assert stream.pending_full.is_set()
    await stream.flush()

    stream.add(ContentDelta("abc"))
    assert stream.pending_chars == 3
    assert not stream.pending_full.is_set()


async def test_writer_stores_text_and_heartbeat(owner):
    changed = await sync_to_async(streaming_reply)(owner)
    unchanged = await sync_to_async(streaming_reply)(owner)
    ended = await sync_to_async(streaming_reply)(owner, Message.Status.COMPLETE)
    writer = batching.CheckpointWriter(3600, db)
    streams = [ReplyStream(reply) for reply in (changed, unchanged, ended)]
    for stream in (streams[0], streams[2]):
        stream.add(ReasoningDelta("think"))
        stream.add(ContentDelta("answer"))
        stream.reasoning, stream.content, stream.seq = ["think"], ["answer"], 2
    for stream in streams:
        writer.streams[stream.message_id] = stream

    assert await writer.write() == 3

    stored = {
        message.id: message
        async for message in Message.objects.filter(id__in=[s.message_id for s in streams])
    }
    assert stored[changed.id].reasoning == "think"
    assert stored[changed.id].content == "answer"
    assert stored[changed.id].seq == 2
    assert stored[changed.id].first_token_at is not None
    assert stored[changed.id].heartbeat_at is not None
    assert stored[unchanged.id].heartbeat_at is not None
    assert stored[unchanged.id].seq == 0
    # A reply that already ended keeps its outcome.
    assert stored[ended.id].content == ""
    assert streams[0].checkpointed_seq == 2


async def test_writer_writes_once_per_interval(settings, monkeypatch):
    settings.CHAT_CHECKPOINT_SECONDS = 0.2
    calls = []

    def record(changed, unchanged):
        calls.append((time.monotonic(), set(changed) | set(unchanged)))

    monkeypatch.setattr(batching, "write_checkpoints", record)
    writer = batching.CheckpointWriter(settings.CHAT_CHECKPOINT_SECONDS, sync_to_async)
    streams = [detached_stream() for _ in range(3)]
    for stream in streams:
        writer.add(stream)

    # Every stream changes all the time; still one write an interval for all of them.
    deadline = time.monotonic() + 1.1
    while time.monotonic() < deadline:
        for stream in streams:
            stream.seq += 1
        await asyncio.sleep(0.01)
    for stream in streams:
        writer.discard(stream)
    await asyncio.sleep(0.3)

    assert 4 <= len(calls) <= 6
    for _when, ids in calls:
        assert ids == {stream.message_id for stream in streams}
    gaps = [later[0] - earlier[0] for earlier, later in zip(calls, calls[1:], strict=False)]
    assert min(gaps) >= 0.18
    assert writer.task.done()


async def test_relay_uses_writer(owner, settings):
    settings.CHAT_CHECKPOINT_BATCH = True
    settings.CHAT_CHECKPOINT_SECONDS = 0.1
    settings.CHAT_COALESCE_SECONDS = 0.01
    reply = await sync_to_async(streaming_reply)(owner)
    await live.start(reply.id)
    stream = ReplyStream(reply)
    relay = asyncio.create_task(stream.relay())
    stream.add(ContentDelta("kept in the database"))
    await asyncio.sleep(0.5)
    stream.close()
    await relay

    stored = await Message.objects.aget(pk=reply.id)
    assert stored.content == "kept in the database"
    assert stored.seq == 1
    await live.finish(reply.id)


async def test_stop_flags_end_only_stopped_reply():
    flags = batching.StopFlags(0.05)
    stopped, running = uuid.uuid4(), uuid.uuid4()
    waits = {
        message_id: asyncio.create_task(flags.wait(message_id)) for message_id in (stopped, running)
    }
    await asyncio.sleep(0.1)
    await live.request_cancel(stopped)

    await asyncio.wait_for(waits[stopped], 2.0)
    assert not waits[running].done()
    waits[running].cancel()
    await asyncio.gather(waits[running], return_exceptions=True)
    assert flags.waiters == {}
    await live.finish(stopped)


async def test_stop_flags_one_read_for_all(monkeypatch):
    flags = batching.StopFlags(3600)
    reads = []
    real_client = live.client()

    class CountingClient:
        async def mget(self, keys):
            reads.append(list(keys))
            return await real_client.mget(keys)

    monkeypatch.setattr(live, "client", CountingClient)
    ids = [uuid.uuid4() for _ in range(5)]
    for message_id in ids:
        flags.waiters[message_id] = asyncio.Event()

    await flags.check()

    assert reads == [[live.cancel_key(message_id) for message_id in ids]]


async def test_stop_flags_redis_error_is_no_stop(monkeypatch):
    from redis.exceptions import ConnectionError

    flags = batching.StopFlags(3600)

    class BrokenClient:
        async def mget(self, keys):
            raise ConnectionError("Connection refused")

    monkeypatch.setattr(live, "client", BrokenClient)
    monkeypatch.setattr(batching.asyncio, "sleep", _no_sleep)
    event = flags.waiters[uuid.uuid4()] = asyncio.Event()

    await flags.check()

    assert not event.is_set()


async def _no_sleep(seconds):
    return None


async def test_pubsub_layer_relays_group_message(settings):
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        layer = get_channel_layer()
        assert type(layer).__name__ == "RedisPubSubChannelLayer"
        conversation_id = uuid.uuid4()
        channel = await layer.new_channel()
        await layer.group_add(group_name(conversation_id), channel)
        event = {"type": "content.delta", "message": "m", "seq": 1, "text": "hi"}

        await broadcast(conversation_id, event)
        received = await asyncio.wait_for(layer.receive(channel), 5)

        assert received == {"type": "chat.event", "event": event}
        await layer.group_discard(group_name(conversation_id), channel)


def layer_settings(kind, redis_url):
    if kind == "pubsub":
        return {
            "default": {
                "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "CONFIG": {"hosts": [redis_url]},
            }
        }
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url]},
        }
    }


@pytest.mark.parametrize("kind", ["pubsub", "core"])
async def test_relay_sends_every_reply(settings, kind):
    with override_settings(CHANNEL_LAYERS=layer_settings(kind, settings.REDIS_URL)):
        layer = get_channel_layer()
        relay = batching.DeltaRelay(3600)
        streams = [detached_stream() for _ in range(3)]
        listeners = []
        for stream in streams:
            await live.start(stream.message_id)
            channel = await layer.new_channel()
            await layer.group_add(group_name(stream.conversation_id), channel)
            listeners.append(channel)
            relay.add(stream)
        streams[0].add(ReasoningDelta("think"))
        streams[0].add(ContentDelta("answer"))
        streams[1].add(ContentDelta("only"))

        assert await relay.flush() == 2

        first = [await asyncio.wait_for(layer.receive(listeners[0]), 5) for _ in range(2)]
        assert [(m["event"]["type"], m["event"]["seq"], m["event"]["text"]) for m in first] == [
            ("reasoning.delta", 1, "think"),
            ("content.delta", 2, "answer"),
        ]
        second = await asyncio.wait_for(layer.receive(listeners[1]), 5)
        assert second["event"]["text"] == "only"
        assert await live.read(streams[0].message_id) == live.LiveState(2, "think", "answer")
        assert await live.read(streams[2].message_id) == live.LiveState(0, "", "")
        for stream in streams:
            relay.discard(stream)
            await live.finish(stream.message_id)


async def test_relay_restores_lost_buffer(settings):
    with override_settings(CHANNEL_LAYERS=layer_settings("pubsub", settings.REDIS_URL)):
        layer = get_channel_layer()
        relay = batching.DeltaRelay(3600)
        stream = detached_stream()
        channel = await layer.new_channel()
        await layer.group_add(group_name(stream.conversation_id), channel)
        relay.add(stream)
        await live.start(stream.message_id)
        stream.add(ContentDelta("Hello "))
        await relay.flush()
        await asyncio.wait_for(layer.receive(channel), 5)

        # Redis restarted without persistence: every key of the reply is gone.
        await live.client().delete(*live._keys(stream.message_id))
        stream.add(ContentDelta("world"))
        await relay.flush()

        received = await asyncio.wait_for(layer.receive(channel), 5)
        assert (received["event"]["seq"], received["event"]["text"]) == (2, "world")
        assert await live.read(stream.message_id) == live.LiveState(2, "", "Hello world")
        relay.discard(stream)
        await live.finish(stream.message_id)


async def test_relay_batch_streams_reply(owner, settings):
    settings.CHAT_RELAY_BATCH = True
    settings.CHAT_CHECKPOINT_SECONDS = 0.1
    settings.CHAT_COALESCE_SECONDS = 0.02
    reply = await sync_to_async(streaming_reply)(owner)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(reply.conversation_id), channel)
    await live.start(reply.id)
    stream = ReplyStream(reply)
    relay = asyncio.create_task(stream.relay())
    stream.add(ContentDelta("first "))
    await asyncio.sleep(0.3)
    stream.add(ContentDelta("second"))
    stream.close()
    await relay
    await stream.flush()

    texts = [(await asyncio.wait_for(layer.receive(channel), 5))["event"] for _ in range(2)]
    assert [(event["seq"], event["text"]) for event in texts] == [(1, "first "), (2, "second")]
    stored = await Message.objects.aget(pk=reply.id)
    # The checkpoint writer ran while the reply streamed.
    assert stored.content == "first "
    await live.finish(reply.id)


async def test_relayed_event_skips_connection_cleanup(owner, owner_cookie, monkeypatch):
    import channels.consumer

    from tests.chat.websocket import connect, receive

    cleanups = []

    async def count_cleanup():
        cleanups.append(1)

    conversation = await sync_to_async(make_conversation)(owner)
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(
        {"type": "conversation.open", "conversation": str(conversation.id)}
    )
    await asyncio.sleep(0.5)
    monkeypatch.setattr(channels.consumer, "aclose_old_connections", count_cleanup)

    event = {"type": "content.delta", "message": "m", "seq": 1, "text": "hi"}
    await broadcast(conversation.id, event)
    assert await receive(communicator) == event
    assert cleanups == []

    # A frame from the browser still gets the cleanup before its handler.
    await communicator.send_json_to({"type": "message.stop", "message": str(uuid.uuid4())})
    assert (await receive(communicator))["type"] == "error"
    assert cleanups == [1]
    await communicator.disconnect()


async def test_relay_ticks_early_at_size(settings, monkeypatch):
    settings.CHAT_RELAY_BATCH = True
    settings.CHAT_COALESCE_SECONDS = 5.0
    settings.CHAT_COALESCE_MAX_CHARS = 10
    flushed = []
    monkeypatch.setattr(batching, "_relays", weakref.WeakKeyDictionary())

    async def record(self):
        flushed.append(time.monotonic())
        for stream in list(self.streams.values()):
            stream.take_pending()
        return 1

    monkeypatch.setattr(batching.DeltaRelay, "flush", record)
    stream = detached_stream()
    relay = asyncio.create_task(stream._relay_with_process())
    await asyncio.sleep(0.05)
    started = time.monotonic()
    stream.add(ContentDelta("0123456789"))
    await asyncio.sleep(0.3)

    assert flushed and flushed[0] - started < 0.25
    stream.close()
    await relay


def test_relay_tick_stretches_with_limit(settings):
    settings.CHAT_RELAY_MAX_DELTAS_PER_SECOND = 1000
    relay = batching.DeltaRelay(0.04)
    for _ in range(10):
        stream = detached_stream()
        relay.streams[stream.message_id] = stream
    assert relay.tick_seconds() == 0.04

    for _ in range(90):
        stream = detached_stream()
        relay.streams[stream.message_id] = stream
    assert relay.tick_seconds() == pytest.approx(0.1)

    settings.CHAT_RELAY_MAX_DELTAS_PER_SECOND = 0
    assert relay.tick_seconds() == 0.04
