"""Checkpoint writes and stop-flag reads shared by every reply of a worker process.

Without these, each streaming reply writes its own checkpoint once a second
(a pool thread and a database connection each time) and reads its own stop
flag four times a second (one Redis command each). A worker streaming a
thousand replies then makes a thousand transactions and four thousand Redis
reads a second. With `CHAT_CHECKPOINT_BATCH` one transaction a second writes
the checkpoints of every reply of the process, and with
`CHAT_CANCEL_POLL_BATCH` one MGET reads every stop flag.

Each helper belongs to one event loop (the worker's shared loop, see
`chat.runner`), like the Redis and HTTP clients.
"""

import asyncio
import logging
import weakref
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from . import live

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
    `checkpoint_fields()`; a stream whose `seq` moved since its last stored
    checkpoint has its text written, the others a heartbeat. So each reply
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
