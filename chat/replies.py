"""Stream one assistant reply: upstream call, live relay, checkpoints, final state.

`run_reply` is the body of the Celery task. It claims the queued reply, sends
the history upstream, relays coalesced deltas to the conversation's channel
group, checkpoints partial text to the database about once a second, and
stores the final state. A stop request closes the upstream response, so no
more tokens are generated or billed.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from accounts import quotas

from . import accounting, batching, catalog, live
from .errors import reply_error_message
from .events import broadcast, done_event
from .history import HistoryItem, build_history, path_items
from .models import Endpoint, Message
from .stream_parser import ContentDelta, Finish, ReasoningDelta, Usage
from .upstream import Retrying, UpstreamConfig, UpstreamError, stream_chat
from .upstream_config import http_client

logger = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 0.25

# finish_reason -> (status, error code)
FINISH_OUTCOMES = {
    "stop": (Message.Status.COMPLETE, ""),
    "tool_calls": (Message.Status.COMPLETE, ""),
    "length": (Message.Status.TRUNCATED, ""),
    "content_filter": (Message.Status.FAILED, "content_filter"),
    "insufficient_system_resource": (Message.Status.FAILED, "upstream_capacity"),
}


def db(function):
    """Run an ORM function off the event loop, in a pool thread with a usable connection."""

    def call(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)


def _claim(message_id):
    """Move a queued reply to streaming; return it, or None if it is not queued."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Message.objects.filter(pk=message_id, status=Message.Status.QUEUED).update(
            status=Message.Status.STREAMING, started_at=now, heartbeat_at=now
        )
        if not claimed:
            return None
        return Message.objects.select_related("conversation__owner", "chat_model__endpoint").get(
            pk=message_id
        )


@dataclass(frozen=True)
class UpstreamCall:
    """Everything the worker sends upstream for one reply, read before streaming starts."""

    config: UpstreamConfig
    messages: list[dict]
    max_tokens: int | None
    user_id: str | None


def _prepare_call(reply: Message) -> UpstreamCall | None:
    """Build the upstream request of a reply, or return None when its model is gone."""
    model = reply.chat_model
    if model is None:
        return None

    # The branch that ends at this reply's question; other versions are not sent.
    # A reply stored without a parent (made outside accept_message) gets every
    # earlier message, as before messages had parents.
    earlier = Message.objects.filter(
        conversation_id=reply.conversation_id, created_at__lt=reply.created_at
    ).order_by("created_at")
    if reply.parent_id is not None:
        items = path_items(earlier.only("id", "parent_id", "role", "content"), reply.parent_id)
    else:
        items = [
            HistoryItem(role, content) for role, content in earlier.values_list("role", "content")
        ]
    messages = build_history(
        items, model.context_budget_tokens, trim_step=settings.CHAT_CONTEXT_TRIM_STEP
    )

    # DeepSeek isolates abuse per end user by `user_id`; other servers get nothing.
    user_id = None
    if model.endpoint.kind == Endpoint.Kind.DEEPSEEK:
        user_id = catalog.upstream_user_id(reply.conversation.owner_id)

    # The smallest of the model's, the plan's and the site's output caps applies.
    limit = quotas.limit_for(reply.conversation.owner, model.model_class)
    caps = [
        model.max_output_tokens,
        limit.max_output_tokens if limit else None,
        settings.CHAT_MAX_OUTPUT_TOKENS,
    ]
    max_tokens = min((cap for cap in caps if cap), default=None)

    return UpstreamCall(
        config=catalog.upstream_config(model),
        messages=messages,
        max_tokens=max_tokens,
        user_id=user_id,
    )


def _checkpoint(message_id, fields: dict) -> None:
    Message.objects.filter(pk=message_id, status=Message.Status.STREAMING).update(
        heartbeat_at=timezone.now(), **fields
    )


def _finish(reply: Message, fields: dict, usage: Usage | None) -> Message:
    fields["cost_usd"] = catalog.reply_cost(reply.chat_model, reply.started_at, usage)
    # Only a reply still streaming takes the outcome: one the sweeper already
    # ended `interrupted` (its heartbeat stopped, for example while the
    # database was away) keeps that state, so it never ends twice.
    # One transaction with the settlement: a worker killed in between leaves
    # the reply streaming (the sweep ends it), never ended with its quota open.
    with transaction.atomic():
        ended = Message.objects.filter(pk=reply.pk, status=Message.Status.STREAMING).update(
            **fields
        )
        finished = Message.objects.select_related("conversation__owner__plan").get(pk=reply.pk)
        if not ended:
            logger.warning(
                "Reply %s was already %s; its outcome %s is not stored",
                reply.pk,
                finished.status,
                fields["status"],
            )
        accounting.settle(finished)
    return finished


def _quota_after(reply: Message) -> dict | None:
    return quotas.status_dict(reply.conversation.owner, reply.quota_class)


@dataclass
class Outcome:
    status: str
    error_code: str = ""
    error_detail: str = ""
    finish_reason: str = ""


@dataclass(frozen=True, slots=True)
class PendingDelta:
    """Text taken from a reply's pending lists by one flush, with its numbered events."""

    previous_seq: int
    seq: int
    reasoning: str
    content: str
    events: list[dict]


@dataclass
class ReplyStream:
    """The state of one reply while it streams."""

    reply: Message
    reasoning: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    pending_reasoning: list[str] = field(default_factory=list)
    pending_content: list[str] = field(default_factory=list)
    seq: int = 0
    usage: Usage | None = None
    finish_reason: str = ""
    first_token_at: object = None
    answer_started_at: object = None
    checkpointed_seq: int = 0
    closing: bool = False
    has_pending: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when CHAT_COALESCE_MAX_CHARS characters are pending.
    pending_full: asyncio.Event = field(default_factory=asyncio.Event)
    pending_chars: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    # Called when `pending_full` is set; the process's delta relay then flushes early.
    on_pending_full: Callable[[], None] | None = None

    @property
    def message_id(self):
        return self.reply.id

    @property
    def conversation_id(self):
        return self.reply.conversation_id

    def add(self, event) -> None:
        if isinstance(event, ReasoningDelta) and event.text:
            self.first_token_at = self.first_token_at or timezone.now()
            self.pending_reasoning.append(event.text)
            self._pending_grew(len(event.text))
        elif isinstance(event, ContentDelta) and event.text:
            now = timezone.now()
            self.first_token_at = self.first_token_at or now
            self.answer_started_at = self.answer_started_at or now
            self.pending_content.append(event.text)
            self._pending_grew(len(event.text))
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finish):
            self.finish_reason = event.reason

    def _pending_grew(self, chars: int) -> None:
        self.has_pending.set()
        self.pending_chars += chars
        limit = settings.CHAT_COALESCE_MAX_CHARS
        if limit and self.pending_chars >= limit:
            self.pending_full.set()
            if self.on_pending_full is not None:
                self.on_pending_full()

    def take_pending(self) -> "PendingDelta | None":
        """Move the pending text into the reply and number its events; None when there is none."""
        self.has_pending.clear()
        self.pending_full.clear()
        self.pending_chars = 0
        reasoning = "".join(self.pending_reasoning)
        content = "".join(self.pending_content)
        self.pending_reasoning.clear()
        self.pending_content.clear()
        if not reasoning and not content:
            return None
        self.reasoning.append(reasoning)
        self.content.append(content)
        parts = [(kind, text) for kind, text in (("reasoning", reasoning), ("content", content))]
        parts = [(kind, text) for kind, text in parts if text]
        previous_seq = self.seq
        self.seq += len(parts)
        events = [
            {
                "type": f"{kind}.delta",
                "message": str(self.message_id),
                "seq": previous_seq + 1 + index,
                "text": text,
            }
            for index, (kind, text) in enumerate(parts)
        ]
        return PendingDelta(previous_seq, self.seq, reasoning, content, events)

    def live_state(self) -> live.LiveState:
        """Return the whole live buffer as the worker knows it."""
        return live.LiveState(
            seq=self.seq, reasoning="".join(self.reasoning), content="".join(self.content)
        )

    async def flush(self) -> None:
        """Send pending text as one event per kind, after storing it in the live buffer.

        The worker owns the sequence numbers and the full text. When Redis
        fails, the text stays here and goes into the next checkpoint. When
        Redis lost the buffer (a restart), the whole buffer is written again.
        Sockets that missed deltas see the gap in `seq` and ask for a snapshot.
        """
        delta = self.take_pending()
        if delta is None:
            return
        try:
            if not await live.append(
                self.message_id, delta.reasoning, delta.content, delta.previous_seq, delta.seq
            ):
                logger.warning("Reply %s: live buffer lost; writing it again", self.message_id)
                await live.restore(self.message_id, self.live_state())
            for event in delta.events:
                await broadcast(self.conversation_id, event)
        except RedisError as error:
            logger.warning("Reply %s: Redis failed, deltas not relayed: %s", self.message_id, error)

    def checkpoint_fields(self) -> dict:
        fields = {
            "reasoning": "".join(self.reasoning),
            "content": "".join(self.content),
            "seq": self.seq,
        }
        if self.first_token_at:
            fields["first_token_at"] = self.first_token_at
        if self.answer_started_at:
            fields["answer_started_at"] = self.answer_started_at
        return fields

    async def relay(self) -> None:
        """Flush coalesced deltas and checkpoint to the database until `close()`.

        The loop is never cancelled inside `flush()`: text taken from the
        pending lists must reach the live buffer and the sockets. With
        `CHAT_CHECKPOINT_BATCH` the process's checkpoint writer stores this
        reply's checkpoints together with every other reply's, and with
        `CHAT_RELAY_BATCH` the process's delta relay also sends its deltas
        together with every other reply's (and checkpoints are batched too).
        """
        if settings.CHAT_CHECKPOINT_BATCH or settings.CHAT_RELAY_BATCH:
            writer = batching.checkpoint_writer(db)
            writer.add(self)
            try:
                if settings.CHAT_RELAY_BATCH:
                    await self._relay_with_process()
                else:
                    while not self.closing:
                        await self.has_pending.wait()
                        await self.gather()
                        await self.flush()
            finally:
                writer.discard(self)
            return

        last_checkpoint = time.monotonic()
        while not self.closing:
            try:
                await asyncio.wait_for(self.has_pending.wait(), settings.CHAT_CHECKPOINT_SECONDS)
            except TimeoutError:
                pass
            else:
                await self.gather()
                await self.flush()
            if not self.closing and (
                time.monotonic() - last_checkpoint >= settings.CHAT_CHECKPOINT_SECONDS
            ):
                last_checkpoint = time.monotonic()
                seq = self.seq
                fields = self.checkpoint_fields() if seq != self.checkpointed_seq else {}
                try:
                    await db(_checkpoint)(self.message_id, fields)
                except DatabaseError as error:
                    # The text stays here for the next checkpoint; a database
                    # down for longer than the stale heartbeat lets the sweeper
                    # end the reply.
                    logger.warning("Reply %s: checkpoint failed: %s", self.message_id, error)
                else:
                    self.checkpointed_seq = seq

    async def _relay_with_process(self) -> None:
        relay = batching.delta_relay()
        relay.add(self)
        self.on_pending_full = relay.wakeup.set
        try:
            await self.closed.wait()
        finally:
            self.on_pending_full = None
            relay.discard(self)
            # A flush of this reply's deltas may be in flight; the caller's last
            # flush must not overtake it.
            await relay.wait_idle()

    async def gather(self) -> None:
        """Let more deltas gather, so one event carries tens of milliseconds of text.

        Waits `CHAT_COALESCE_SECONDS`, or less once `CHAT_COALESCE_MAX_CHARS`
        characters are pending (0: no size limit).
        """
        if self.closing:
            return
        if not settings.CHAT_COALESCE_MAX_CHARS:
            await asyncio.sleep(settings.CHAT_COALESCE_SECONDS)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.CHAT_COALESCE_SECONDS):
                await self.pending_full.wait()

    def close(self) -> None:
        """Make `relay()` flush what is pending and return."""
        self.closing = True
        self.has_pending.set()
        self.closed.set()

    async def consume(self, call: UpstreamCall) -> Outcome:
        try:
            async with contextlib.aclosing(
                stream_chat(
                    http_client(),
                    call.config,
                    call.messages,
                    max_tokens=call.max_tokens,
                    user_id=call.user_id,
                )
            ) as events:
                async for event in events:
                    if isinstance(event, Retrying):
                        await self._announce_retry(event)
                    else:
                        self.add(event)
        except UpstreamError as error:
            logger.warning(
                "Reply %s failed upstream: %s (status %s): %s",
                self.message_id,
                error.code,
                error.status,
                error.detail,
            )
            return Outcome(Message.Status.FAILED, error.code, error.detail)

        status, error_code = FINISH_OUTCOMES.get(self.finish_reason, (Message.Status.COMPLETE, ""))
        return Outcome(status, error_code, finish_reason=self.finish_reason)

    async def _announce_retry(self, event: Retrying) -> None:
        logger.info(
            "Reply %s: upstream %s, retry %d in %.1f s",
            self.message_id,
            event.error.code,
            event.attempt,
            event.delay,
        )
        await _without_redis_errors(
            "waiting status",
            self.message_id,
            broadcast(
                self.conversation_id,
                {
                    "type": "message.status",
                    "message": str(self.message_id),
                    "status": "waiting",
                    "reason": event.error.code,
                    "attempt": event.attempt,
                    "retry_in": round(event.delay, 1),
                },
            ),
        )


async def _without_redis_errors(what, message_id, awaitable) -> None:
    """Await a live-relay step; a Redis failure is logged, and the reply goes on.

    The database keeps the reply's state, so a lost event costs only
    liveness: sockets catch up from a snapshot.
    """
    try:
        await awaitable
    except RedisError as error:
        logger.warning("Reply %s: %s not sent, Redis failed: %s", message_id, what, error)


async def _watch_cancel(message_id) -> None:
    """Return when the user asked to stop the reply; a Redis failure is not a stop."""
    if settings.CHAT_CANCEL_POLL_BATCH:
        await batching.stop_flags(CANCEL_POLL_SECONDS).wait(message_id)
        return
    while True:
        try:
            if await live.is_cancelled(message_id):
                return
        except RedisError as error:
            logger.warning("Reply %s: cancel flag unreadable, Redis failed: %s", message_id, error)
            await asyncio.sleep(1)
        await asyncio.sleep(CANCEL_POLL_SECONDS)


def _claim_and_prepare(message_id):
    """Claim a queued reply and build its upstream request, in one call off the event loop.

    Returns None when the reply is not queued, else (reply, call, error): `call`
    is None when the model is gone, and `error` is what building it raised.
    """
    reply = _claim(message_id)
    if reply is None:
        return None
    try:
        return reply, _prepare_call(reply), None
    except Exception as error:  # run_reply ends the reply internal_error with it
        return reply, None, error


async def run_reply(message_id) -> None:
    claimed = await db(_claim_and_prepare)(message_id)
    if claimed is None:
        logger.info("Reply %s is not queued any more; nothing to do", message_id)
        return

    reply, call, prepare_error = claimed
    stream = ReplyStream(reply)
    try:
        if prepare_error is not None:
            raise prepare_error
        outcome = await _stream(stream, call)
    except Exception:
        logger.exception("Reply %s failed with an internal error", message_id)
        outcome = Outcome(Message.Status.FAILED, "internal_error")
    await _store_outcome(stream, outcome)


async def _announce_streaming(stream: ReplyStream) -> None:
    message_id = stream.message_id
    await _without_redis_errors("live buffer start", message_id, live.start(message_id))
    await _without_redis_errors(
        "streaming status",
        stream.message_id,
        broadcast(
            stream.conversation_id,
            {"type": "message.status", "message": str(stream.message_id), "status": "streaming"},
        ),
    )


async def _relay_after(announced: asyncio.Task, stream: ReplyStream) -> None:
    await announced
    await stream.relay()


async def _stream(stream: ReplyStream, call: UpstreamCall | None) -> Outcome:
    # The live buffer and the status event go out while the upstream request
    # starts; the relay sends no delta before them.
    announced = asyncio.create_task(_announce_streaming(stream))
    if call is None:
        await announced
        return Outcome(Message.Status.FAILED, "model_unavailable")

    relay = asyncio.create_task(_relay_after(announced, stream))
    consume = asyncio.create_task(stream.consume(call))
    watch = asyncio.create_task(_watch_cancel(stream.message_id))
    try:
        await asyncio.wait({consume, watch}, return_when=asyncio.FIRST_COMPLETED)
        if consume.done():
            return consume.result()
        if watch.exception() is not None:
            # The watcher broke (not a stop request): raise it, the reply ends internal_error.
            raise watch.exception()
        # Cancelling the consumer closes the upstream response at once.
        consume.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consume
        logger.info("Reply %s stopped by the user", stream.message_id)
        return Outcome(Message.Status.STOPPED)
    finally:
        for task in (watch, consume):
            task.cancel()
        stream.close()
        await asyncio.gather(relay, watch, consume, return_exceptions=True)
        await stream.flush()


async def _store_outcome(stream: ReplyStream, outcome: Outcome) -> None:
    fields = stream.checkpoint_fields()
    usage = stream.usage
    detail = outcome.error_detail
    if outcome.error_code:
        detail = str(reply_error_message(outcome.error_code))
        if outcome.error_detail:
            detail = f"{detail} ({outcome.error_detail})"
    now = timezone.now()
    fields.update(
        status=outcome.status,
        finish_reason=outcome.finish_reason,
        error_code=outcome.error_code,
        error_detail=detail,
        finished_at=now,
        heartbeat_at=now,
    )
    if usage is not None:
        fields.update(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_hit_tokens=usage.prompt_cache_hit_tokens,
            cache_miss_tokens=usage.prompt_cache_miss_tokens,
        )
    reply = await db(_finish)(stream.reply, fields, usage)
    quota = await db(_quota_after)(reply)
    await _without_redis_errors(
        "message.done", reply.id, broadcast(stream.conversation_id, done_event(reply, quota))
    )
    await _without_redis_errors("live buffer cleanup", reply.id, live.finish(stream.message_id))
    logger.info("Reply %s ended %s", reply.id, reply.status)
