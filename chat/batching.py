"""Relaying, checkpoint writes and stop-flag reads shared by every reply of a worker process.

Without these, each streaming reply writes its own checkpoint once a second,
with a pool thread and a database connection each time. It also reads its
own stop flag four times a second and sends each coalesced delta with two or
more Redis round trips. A worker streaming a thousand replies then makes a
thousand transactions and tens of thousands of Redis round trips a second.
With `CHAT_CHECKPOINT_BATCH` one transaction a second writes the
checkpoints of every reply of the process, with `CHAT_CANCEL_POLL_BATCH` one
MGET reads every stop flag, and with `CHAT_RELAY_BATCH` one pipeline a tick
sends every reply's pending deltas.

Each helper belongs to one event loop (the worker's shared loop, see
`chat.runner`), like the Redis and HTTP clients.
"""

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable

from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from . import live
from .events import broadcast, group_name

logger = logging.getLogger(__name__)

_writers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_flags: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

# One statement updates every changed reply; `status = 'streaming'` keeps an
# outcome the sweeper stored first. COALESCE keeps a first-token time that
# this checkpoint does not know yet.
_UPDATE_TEXT = """
UPDATE chat_message AS m
SET reasoning = v.reasoning, content = v.content, seq = v.seq, heartbeat_at = %s,
    first_token_at = COALESCE(v.first_token_at, m.first_token_at),
    answer_started_at = COALESCE(v.answer_started_at, m.answer_started_at)
FROM UNNEST(%s::uuid[], %s::text[], %s::text[], %s::integer[],
            %s::timestamptz[], %s::timestamptz[])
     AS v(id, reasoning, content, seq, first_token_at, answer_started_at)
WHERE m.id = v.id AND m.status = 'streaming'
"""
_UPDATE_HEARTBEAT = """
UPDATE chat_message SET heartbeat_at = %s WHERE id = ANY(%s::uuid[]) AND status = 'streaming'
"""


def write_checkpoints(changed: dict, unchanged: list) -> None:
    """Store the checkpoint fields of `changed` replies and a heartbeat for `unchanged` ones.

    `changed` maps a message id to `ReplyStream.checkpoint_fields()`. One
    transaction; on PostgreSQL one statement for each of the two groups.
    """
    from .models import Message

    now = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if changed:
                    ids = list(changed)
                    cursor.execute(
                        _UPDATE_TEXT,
                        [
                            now,
                            ids,
                            [changed[key]["reasoning"] for key in ids],
                            [changed[key]["content"] for key in ids],
                            [changed[key]["seq"] for key in ids],
                            [changed[key].get("first_token_at") for key in ids],
                            [changed[key].get("answer_started_at") for key in ids],
                        ],
                    )
                if unchanged:
                    cursor.execute(_UPDATE_HEARTBEAT, [now, list(unchanged)])
            return
        streaming = Message.objects.filter(status=Message.Status.STREAMING)
        for message_id, fields in changed.items():
            streaming.filter(pk=message_id).update(heartbeat_at=now, **fields)
        if unchanged:
            streaming.filter(pk__in=unchanged).update(heartbeat_at=now)


class CheckpointWriter:
    """Writes the checkpoints of every registered reply stream once an interval.

    A stream is any object with `message_id`, `seq`, `checkpointed_seq` and
    `checkpoint_fields()`. A stream whose `seq` moved since its last stored
    checkpoint has its text written, the others a heartbeat, so each reply
    gets at most one write an interval.
    """

    def __init__(self, interval: float, run_sync: Callable):
        self.interval = interval
        # Runs `write_checkpoints` off the event loop; `chat.replies.db` in the worker.
        self.run_sync = run_sync
        self.streams: dict = {}
        self.task: asyncio.Task | None = None

    def add(self, stream) -> None:
        self.streams[stream.message_id] = stream
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, stream) -> None:
        if self.streams.get(stream.message_id) is stream:
            del self.streams[stream.message_id]

    async def _run(self) -> None:
        while self.streams:
            await asyncio.sleep(self.interval)
            await self.write()

    async def write(self) -> int:
        """Write one checkpoint of every registered stream; return how many were written."""
        streams = list(self.streams.values())
        if not streams:
            return 0
        changed = {}
        seqs = {}
        unchanged = []
        for stream in streams:
            seq = stream.seq
            if seq != stream.checkpointed_seq:
                changed[stream.message_id] = stream.checkpoint_fields()
                seqs[stream.message_id] = seq
            else:
                unchanged.append(stream.message_id)
        try:
            await self.run_sync(write_checkpoints)(changed, unchanged)
        except DatabaseError as error:
            # The text stays in the streams for the next interval; a database
            # away for longer than the stale heartbeat lets the sweeper end them.
            logger.warning("Checkpoint of %d replies failed: %s", len(streams), error)
            return 0
        for stream in streams:
            if stream.message_id in seqs:
                stream.checkpointed_seq = seqs[stream.message_id]
        return len(streams)


def checkpoint_writer(run_sync: Callable) -> CheckpointWriter:
    """Return the checkpoint writer of the running event loop."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = CheckpointWriter(settings.CHAT_CHECKPOINT_SECONDS, run_sync)
    return writer


class StopFlags:
    """Reads the stop flags of every waiting reply with one MGET an interval."""

    def __init__(self, interval: float):
        self.interval = interval
        self.waiters: dict = {}
        self.task: asyncio.Task | None = None

    async def wait(self, message_id) -> None:
        """Return once the user asked to stop `message_id`."""
        event = asyncio.Event()
        self.waiters[message_id] = event
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())
        try:
            await event.wait()
        finally:
            if self.waiters.get(message_id) is event:
                del self.waiters[message_id]

    async def _run(self) -> None:
        while self.waiters:
            await self.check()
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        ids = list(self.waiters)
        try:
            flags = await live.client().mget([live.cancel_key(message_id) for message_id in ids])
        except RedisError as error:
            # A Redis failure is not a stop; try again a little later.
            logger.warning("Stop flags of %d replies unreadable: %s", len(ids), error)
            await asyncio.sleep(1)
            return
        for message_id, flag in zip(ids, flags, strict=True):
            event = self.waiters.get(message_id)
            if flag is not None and event is not None:
                event.set()


def stop_flags(interval: float) -> StopFlags:
    """Return the stop-flag reader of the running event loop."""
    loop = asyncio.get_running_loop()
    flags = _flags.get(loop)
    if flags is None:
        flags = _flags[loop] = StopFlags(interval)
    return flags


# Append one coalesced delta to the live buffer, as live._APPEND does, and
# publish its events to the conversation's pub/sub group channel (KEYS[4],
# when given), so one command relays a reply's delta. Returns 0, changing
# nothing, when the buffer is not at the sequence number the worker
# checked.
_APPEND_PUBLISH = """
local stored = redis.call('GET', KEYS[3])
if stored == false or tonumber(stored) ~= tonumber(ARGV[3]) then
  return 0
end
if ARGV[1] ~= '' then redis.call('APPEND', KEYS[1], ARGV[1]) end
if ARGV[2] ~= '' then redis.call('APPEND', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[3], ARGV[4], 'KEEPTTL')
if #KEYS == 4 then
  for i = 5, #ARGV do redis.call('PUBLISH', KEYS[4], ARGV[i]) end
end
return 1
"""


def pubsub_group_channel(layer, conversation_id) -> str | None:
    """Return the Redis channel of a conversation's group on a pub/sub layer, else None."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    # NOTE: a private method of channels_redis 4.3; tests/chat/test_batching.py
    # checks that a message published here reaches a group member.
    return layer._get_layer()._get_group_channel_name(group_name(conversation_id))


class DeltaRelay:
    """Flushes the pending deltas of every registered reply once a tick, in one pipeline.

    Each reply with pending text costs one EVAL in the pipeline: it appends to
    the live buffer and, on the pub/sub channel layer, publishes the events.
    On the default channel layer the events go out with `group_send` after
    the pipeline. A tick that takes longer than the interval delays the next
    one, so a busy process sends fewer, larger deltas.
    """

    def __init__(self, interval: float):
        self.interval = interval
        self.streams: dict = {}
        self.task: asyncio.Task | None = None
        self.lock = asyncio.Lock()
        # Set by a reply with CHAT_COALESCE_MAX_CHARS pending: the tick comes early.
        self.wakeup = asyncio.Event()

    def add(self, stream) -> None:
        self.streams[stream.message_id] = stream
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, stream) -> None:
        if self.streams.get(stream.message_id) is stream:
            del self.streams[stream.message_id]

    def tick_seconds(self) -> float:
        """Return the time to the next tick: the interval, longer when the relay is busy.

        With `CHAT_RELAY_MAX_DELTAS_PER_SECOND` the tick stretches so that the
        process sends at most that many deltas a second in all, which bounds
        the events each web process must relay.
        """
        limit = settings.CHAT_RELAY_MAX_DELTAS_PER_SECOND
        if not limit:
            return self.interval
        return max(self.interval, len(self.streams) / limit)

    async def wait_idle(self) -> None:
        """Return once no flush is in flight."""
        async with self.lock:
            pass

    async def _run(self) -> None:
        while self.streams:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.tick_seconds()):
                    await self.wakeup.wait()
            self.wakeup.clear()
            try:
                await self.flush()
            except Exception:
                # The loop must outlive any one tick, or every reply stops relaying.
                logger.exception("Relay of %d replies failed", len(self.streams))

    async def flush(self) -> int:
        """Send the pending deltas of every registered reply; return how many replies had some."""
        async with self.lock:
            taken = []
            for stream in list(self.streams.values()):
                delta = stream.take_pending()
                if delta is not None:
                    taken.append((stream, delta))
            if not taken:
                return 0
            layer = get_channel_layer()
            try:
                await self._send(layer, taken)
            except RedisError as error:
                # The text stays in the replies for their checkpoints and final
                # state; sockets see the gap in `seq` and ask for a snapshot.
                logger.warning(
                    "Redis failed, deltas of %d replies not relayed: %s", len(taken), error
                )
            return len(taken)

    async def _send(self, layer, taken) -> None:
        pipe = live.client().pipeline(transaction=False)
        published = []
        for stream, delta in taken:
            keys = list(live._keys(stream.message_id))
            payloads = []
            channel = pubsub_group_channel(layer, stream.conversation_id)
            if channel is not None:
                keys.append(channel)
                payloads = [
                    layer.serialize({"type": "chat.event", "event": event})
                    for event in delta.events
                ]
            published.append(channel is not None)
            pipe.eval(
                _APPEND_PUBLISH,
                len(keys),
                *keys,
                delta.reasoning,
                delta.content,
                delta.previous_seq,
                delta.seq,
                *payloads,
            )
        results = await pipe.execute()
        for (stream, delta), done, was_published in zip(taken, results, published, strict=True):
            if not done:
                logger.warning("Reply %s: live buffer lost; writing it again", stream.message_id)
                await live.restore(stream.message_id, stream.live_state())
            if not done or not was_published:
                for event in delta.events:
                    await broadcast(stream.conversation_id, event)


_relays: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def delta_relay() -> DeltaRelay:
    """Return the delta relay of the running event loop."""
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None:
        relay = _relays[loop] = DeltaRelay(settings.CHAT_COALESCE_SECONDS)
    return relay
