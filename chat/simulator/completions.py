"""The chat-completions endpoint: options, faults, token pacing and the request log."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import hashlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING

from .clock import Ticker
from .connection import Connection, Request, ResponseWriter
from .content import count_tokens, generate
from .errors import ApiError, scripted_error
from .flavors import DONE, Flavor, Usage, dumps, make_flavor
from .script import HTTP_FAULTS, DirectiveError, Options, ServerDefaults, apply_directives
from .validation import parse_body, validate

if TYPE_CHECKING:
    from .server import SimulatorServer

logger = logging.getLogger("chat.simulator")

# DeepSeek's context cache works in units of 64 tokens; only whole units count as hits.
CACHE_UNIT = 64
CACHE_CAPACITY = 20_000
ATTEMPT_CAPACITY = 20_000
# Fixed per-message overhead of the chat template, in tokens (an estimate).
MESSAGE_OVERHEAD = 4

NOT_SSE_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>Service Unavailable</title></head>\n"
    b"<body><h1>Service temporarily unavailable</h1><p>Please try again later.</p></body>"
    b"</html>\n"
)


class Step(enum.Enum):
    REASONING = "reasoning"
    END_REASONING = "end_reasoning"
    ANSWER = "answer"


class Outcome(enum.Enum):
    KEEP = "keep"  # response complete, connection reusable
    CLOSE = "close"  # close the connection without finishing the body
    RESET = "reset"  # connection already aborted with an RST


@dataclasses.dataclass
class Plan:
    """The tokens one response will carry and how it finishes."""

    steps: list[tuple[Step, str]]
    finish_reason: str
    reasoning: tuple[str, ...]
    answer: tuple[str, ...]

    @property
    def token_count(self) -> int:
        return len(self.reasoning) + len(self.answer)


def build_plan(question: str, options: Options, thinking: bool, max_tokens: int | None) -> Plan:
    reasoning, answer = generate(question, options.reasoning if thinking else 0, options.answer)
    finish_reason = "stop"
    reasoning_complete = thinking
    if options.fault == "length":
        finish_reason = "length"
        if thinking and reasoning:
            # Since V3.1 max_tokens counts the chain of thought, so the cut can come mid-thought.
            answer = ()
            reasoning_complete = False
        else:
            answer = answer[: len(answer) // 2]
    elif options.fault in ("insufficient_system_resource", "content_filter"):
        finish_reason = options.fault
        answer = answer[: max(1, len(answer) // 2)]
    if max_tokens is not None and len(reasoning) + len(answer) > max_tokens:
        finish_reason = "length"
        if len(reasoning) >= max_tokens:
            reasoning = reasoning[:max_tokens]
            answer = ()
            reasoning_complete = False
        else:
            answer = answer[: max_tokens - len(reasoning)]

    steps = [(Step.REASONING, token) for token in reasoning]
    if reasoning_complete:
        steps.append((Step.END_REASONING, ""))
    steps.extend((Step.ANSWER, token) for token in answer)
    return Plan(steps, finish_reason, reasoning, answer)


class PrefixCache:
    """Remembers prompt prefixes by hash, like DeepSeek's best-effort context cache."""

    def __init__(self, capacity: int = CACHE_CAPACITY):
        self.capacity = capacity
        self._tokens: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    def measure(self, messages: list[dict]) -> tuple[int, int]:
        """Return (prompt tokens, cached tokens) and remember every prefix of `messages`."""
        digest = b""
        total = 0
        cached = 0
        prefixes = []
        for message in messages:
            encoded = dumps([message["role"], message.get("content")]).encode()
            digest = hashlib.sha256(digest + encoded).digest()
            total += count_tokens(message.get("content") or "") + MESSAGE_OVERHEAD
            if digest in self._tokens:
                cached = self._tokens[digest]
            prefixes.append((digest, total))
        for key, tokens in prefixes:
            self._tokens[key] = tokens
            self._tokens.move_to_end(key)
        while len(self._tokens) > self.capacity:
            self._tokens.popitem(last=False)
        return total, cached // CACHE_UNIT * CACHE_UNIT


def _try_json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _last_user_content(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message["role"] == "user":
            return message["content"]
    return ""


class CompletionEngine:
    """Serves `POST /chat/completions` for one SimulatorServer."""

    def __init__(self, defaults: ServerDefaults):
        self.defaults = defaults
        self.prefix_cache = PrefixCache()
        self.ticker = Ticker()
        # Attempts per request body, for `times=N` faults that fail only the first N attempts.
        self._attempts: collections.OrderedDict[bytes, int] = collections.OrderedDict()

    async def handle(self, server: SimulatorServer, conn: Connection, request: Request) -> bool:
        """Handle one completion request; return False when the connection must be closed."""
        trace_id = uuid.uuid4().hex
        entry = {
            "id": trace_id,
            "body": _try_json(request.body),
            "started": time.time(),
            "first_byte": None,
            "ended": None,
            "client_disconnected": False,
            "events_sent": 0,
            "status": None,
        }
        server.request_log.append(entry)
        out = ResponseWriter(conn, trace_id, entry)
        try:
            return await self._handle(server, conn, request, out, entry)
        finally:
            entry["ended"] = time.time()
            logger.debug(
                "completion %s status=%s events=%d disconnected=%s",
                trace_id,
                entry["status"],
                entry["events_sent"],
                entry["client_disconnected"],
            )

    def _count_attempt(self, body: bytes) -> int:
        key = hashlib.sha256(body).digest()
        attempt = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempt
        self._attempts.move_to_end(key)
        while len(self._attempts) > ATTEMPT_CAPACITY:
            self._attempts.popitem(last=False)
        return attempt

    async def _handle(
        self,
        server: SimulatorServer,
        conn: Connection,
        request: Request,
        out: ResponseWriter,
        entry: dict,
    ) -> bool:
        options = Options.from_defaults(self.defaults)
        try:
            api_key = server.check_auth(request)
            data = validate(parse_body(request.body), request.body)
            question = apply_directives(_last_user_content(data["messages"]), options)
        except DirectiveError as exc:
            await out.send_error(ApiError(400, str(exc), param=exc.key))
            return True
        except ApiError as error:
            await out.send_error(error)
            return True

        if options.has_fault() and options.times is not None:
            if self._count_attempt(request.body) > options.times:
                options.clear_faults()

        if options.fault in HTTP_FAULTS:
            await out.send_error(scripted_error(HTTP_FAULTS[options.fault], api_key))
            return True
        if options.fault == "not_sse":
            await out.send_full(200, NOT_SSE_BODY, "text/html; charset=utf-8")
            return True
        if options.fault == "trickle":
            out.trickle = options.trickle_interval

        thinking_field = data.get("thinking")
        if isinstance(thinking_field, dict):
            thinking = thinking_field["type"] == "enabled"
        else:
            # deepseek-chat is DeepSeek's non-thinking alias.
            thinking = data["model"] != "deepseek-chat"
        include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
        plan = build_plan(question, options, thinking, data.get("max_tokens"))
        prompt_tokens, cached_tokens = self.prefix_cache.measure(data["messages"])
        flavor = make_flavor(
            options.flavor,
            model=data["model"],
            created=int(time.time()),
            include_usage=include_usage,
            thinking=thinking,
        )
        response = _Response(
            out, flavor, plan, options, entry, prompt_tokens, cached_tokens, self.ticker
        )
        if data.get("stream"):
            producer = asyncio.ensure_future(response.stream())
        else:
            producer = asyncio.ensure_future(response.respond())
        return await self._run_watched(conn, producer, entry)

    async def _run_watched(self, conn: Connection, producer: asyncio.Future, entry: dict) -> bool:
        """Run the response while watching for the client to hang up (a pressed stop button)."""
        watcher = asyncio.ensure_future(conn.wait_closed_by_client())
        try:
            await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (producer, watcher):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if not producer.cancelled():
            try:
                outcome = producer.result()
            except OSError:
                outcome = None
            if outcome is not None:
                return outcome is Outcome.KEEP
        entry["client_disconnected"] = True
        return False


class _Response:
    """Writes one completion response according to its plan and options."""

    def __init__(
        self,
        out: ResponseWriter,
        flavor: Flavor,
        plan: Plan,
        options: Options,
        entry: dict,
        prompt_tokens: int,
        cached_tokens: int,
        ticker: Ticker,
    ):
        self.out = out
        self.flavor = flavor
        self.plan = plan
        self.options = options
        self.entry = entry
        self.prompt_tokens = prompt_tokens
        self.cached_tokens = cached_tokens
        self.ticker = ticker
        self.loop = asyncio.get_running_loop()

    def _usage(self, started: float) -> Usage:
        return Usage(
            prompt=self.prompt_tokens,
            cached=self.cached_tokens,
            reasoning=len(self.plan.reasoning),
            answer=len(self.plan.answer),
            generation_seconds=self.loop.time() - started,
        )

    async def _keepalive(self, block: bytes, duration: float) -> None:
        """Send `block` now and every keepalive interval until `duration` seconds have passed."""
        end = self.loop.time() + duration
        while True:
            await self.out.write_chunk(block)
            remaining = end - self.loop.time()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self.options.keepalive, remaining))
            if self.loop.time() >= end:
                return

    async def _send_event(self, data: bytes) -> None:
        await self.out.write_chunk(data)
        self.entry["events_sent"] += 1

    async def stream(self) -> Outcome:
        options = self.options
        flavor = self.flavor
        await self.out.start_chunked(200, "text/event-stream; charset=utf-8", event_stream=True)
        for block in flavor.preamble():
            await self.out.write_chunk(block)
        if options.queue_close is not None:
            # DeepSeek's queue timeout: keep-alives, then the connection closes with no data.
            await self._keepalive(flavor.keepalive, options.queue_close)
            return Outcome.CLOSE
        if options.queue > 0:
            await self._keepalive(flavor.keepalive, options.queue)

        started = self.loop.time()
        for event in flavor.start():
            await self._send_event(event)

        interval = 1 / options.rate if options.rate > 0 else 0.0
        next_at = self.loop.time()
        sent = 0
        for step, text in self.plan.steps:
            if step is Step.END_REASONING:
                for event in flavor.reasoning_done():
                    await self._send_event(event)
                continue
            if sent == options.reset_after:
                self.out.conn.abort_with_reset()
                return Outcome.RESET
            if sent == options.eof_after:
                await self.out.end_chunked()
                return Outcome.KEEP
            if sent == options.pause_after:
                await asyncio.sleep(options.pause)
                next_at += options.pause
            if interval:
                next_at += interval
                now = self.loop.time()
                if next_at > now:
                    await self.ticker.sleep_until(next_at)
                else:
                    # Fell behind (trickle, a slow reader): restart the schedule, no burst.
                    next_at = now
            elif sent % 32 == 31:
                # Let other streams run when tokens are sent as fast as possible.
                await asyncio.sleep(0)
            if step is Step.REASONING:
                await self._send_event(flavor.reasoning(text))
            else:
                await self._send_event(flavor.answer(text))
            sent += 1

        # Thresholds past the last token apply before the finish chunk.
        if options.reset_after is not None and options.reset_after >= sent:
            self.out.conn.abort_with_reset()
            return Outcome.RESET
        if options.eof_after is not None and options.eof_after >= sent:
            await self.out.end_chunked()
            return Outcome.KEEP
        if options.pause_after is not None and options.pause_after >= sent:
            await asyncio.sleep(options.pause)

        for event in flavor.finish(self.plan.finish_reason, self._usage(started)):
            await self._send_event(event)
        if options.fault != "no_done":
            await self._send_event(DONE)
        await self.out.end_chunked()
        return Outcome.KEEP

    async def _generation_delay(self, tokens: int) -> None:
        options = self.options
        delay = tokens / options.rate if options.rate > 0 else 0.0
        if options.pause_after is not None and options.pause_after <= tokens:
            delay += options.pause
        if delay > 0:
            await asyncio.sleep(delay)

    async def respond(self) -> Outcome:
        """Send a non-streaming `chat.completion` body after the simulated generation time."""
        options = self.options
        total = self.plan.token_count
        chunked = (
            options.queue > 0 or options.queue_close is not None or options.eof_after is not None
        )
        if chunked:
            await self.out.start_chunked(200, "application/json", event_stream=False)
        # Non-streaming requests are kept alive with bare newlines instead of SSE comments.
        if options.queue_close is not None:
            await self._keepalive(b"\n", options.queue_close)
            return Outcome.CLOSE
        if options.queue > 0:
            await self._keepalive(b"\n", options.queue)

        started = self.loop.time()
        if options.reset_after is not None:
            await self._generation_delay(min(options.reset_after, total))
            self.out.conn.abort_with_reset()
            return Outcome.RESET
        await self._generation_delay(total)
        body = self.flavor.completion(
            "".join(self.plan.reasoning),
            "".join(self.plan.answer),
            self.plan.finish_reason,
            self._usage(started),
        )
        if options.eof_after is not None:
            # A body cut in proportion to the tokens, ended cleanly: invalid JSON for the client.
            cut = len(body) * min(options.eof_after, total) // max(total, 1)
            if cut:
                await self.out.write_chunk(body[:cut])
            await self.out.end_chunked()
            return Outcome.KEEP
        if chunked:
            await self.out.write_chunk(body)
            await self.out.end_chunked()
        else:
            await self.out.send_full(200, body)
        return Outcome.KEEP
