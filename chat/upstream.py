"""Async client for an OpenAI-compatible `/chat/completions` endpoint in streaming mode.

`stream_chat` posts one request, retries the failures that happen before the response
starts, and yields parsed stream events. Every failure reaches the caller as an
`UpstreamError` with a stable `code`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import json
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from .stream_parser import (
    Done,
    Event,
    Finish,
    ReasoningFormat,
    StreamErrorEvent,
    StreamParser,
    StreamProtocolError,
)

logger = logging.getLogger(__name__)

MAX_ERROR_BODY_BYTES = 64 * 1024
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 60.0
BACKOFF_JITTER = 0.25
_DETAIL_SNIPPET_CHARS = 500

# Statuses worth retrying at once. 502 and 504 come from gateways in front of the model
# server (OpenRouter, nginx) and are as transient as 500 and 503.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Bearer tokens of the usual providers: "sk-..." (DeepSeek, OpenAI) and "sk-or-v1-..."
# (OpenRouter). Masked even when they are not the configured key.
_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}")

# The jitter source is module state so tests can replace it with a fixed one.
_jitter_random = random.Random()


@dataclass(frozen=True)
class Timeouts:
    """Per-request timeouts in seconds.

    `read` is long on purpose. DeepSeek's rate-limit page (2026) allows a request to wait
    in its queue, with only keep-alive comments, for up to 10 minutes, and a thinking
    model can be silent for tens of seconds.
    """

    connect: float = 10.0
    read: float = 600.0
    write: float = 30.0
    pool: float = 10.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class UpstreamConfig:
    # Base URL without the endpoint, e.g. https://api.deepseek.com or http://127.0.0.1:8300.
    base_url: str
    # Empty for servers without authentication, and then no Authorization header is sent.
    api_key: str = field(repr=False)
    model: str
    reasoning_format: ReasoningFormat = ReasoningFormat.AUTO
    # Merged into the request JSON, e.g. {"thinking": {"type": "enabled"}}.
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # Retries of 429, 500, 502, 503, 504 and connection failures before the response starts.
    max_retries: int = 3
    # Seconds before the first retry. Each further retry doubles it.
    backoff_base: float = 1.0

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"


# Error codes, with whether trying again later could help.
_RETRYABLE_CODES = {
    "auth_failed": False,
    "insufficient_balance": False,
    "invalid_request": False,
    "rate_limited": True,
    "server_error": True,
    "overloaded": True,
    "connect_failed": True,
    "timeout": True,
    "stream_interrupted": True,
    "bad_response": False,
    "upstream_error": True,
}


class UpstreamError(Exception):
    """A failed chat-completion request.

    `code` is one of auth_failed, insufficient_balance, invalid_request, rate_limited,
    server_error, overloaded, connect_failed, timeout, stream_interrupted, bad_response
    or upstream_error. `detail` is the upstream's message with API keys masked.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.status = status
        self.detail = detail
        self.retryable = _RETRYABLE_CODES.get(code, False) if retryable is None else retryable
        # Seconds the server asked us to wait (Retry-After), already capped.
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{status}: {self.detail}"

    def __repr__(self) -> str:
        return f"UpstreamError(code={self.code!r}, status={self.status!r}, detail={self.detail!r})"


@dataclass(frozen=True, slots=True)
class Retrying:
    """Yielded before `stream_chat` sleeps and tries again; `attempt` counts from 1."""

    attempt: int
    delay: float
    error: UpstreamError


def build_payload(
    config: UpstreamConfig,
    messages: list[dict],
    *,
    max_tokens: int | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    """Build the request JSON. Keys in `config.extra_body` override the defaults."""
    payload: dict[str, Any] = {
        "model": config.model,
        "messages": list(messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    # A deep copy, so later edits to the payload never reach the shared config.
    payload.update(copy.deepcopy(dict(config.extra_body)))
    if max_tokens is not None:
        payload["max_tokens"] = max_tokens
    if user_id is not None:
        payload["user_id"] = user_id
    return payload


async def stream_chat(
    client: httpx.AsyncClient,
    config: UpstreamConfig,
    messages: list[dict],
    *,
    max_tokens: int | None = None,
    user_id: str | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> AsyncIterator[Event | Retrying]:
    """Stream one chat completion, yielding parsed events and `Retrying` notices.

    Retries happen only before the response starts, so no event is ever yielded twice.
    Raises UpstreamError for every failure. Closing the generator (aclose() or task
    cancellation) closes the HTTP response at once, which stops the upstream reply.
    """
    payload = build_payload(config, messages, max_tokens=max_tokens, user_id=user_id)
    headers = {"Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    timeout = config.timeouts.to_httpx()

    retries = 0
    while True:
        streaming = False
        try:
            async with client.stream(
                "POST", config.url, json=payload, headers=headers, timeout=timeout
            ) as response:
                error = await _check_response(response, config.api_key)
                if error is None:
                    logger.debug("Upstream %s accepted the request", config.url)
                    streaming = True
                    async with contextlib.aclosing(_read_events(response, config)) as events:
                        async for event in events:
                            yield event
                    return
        except httpx.HTTPError as exc:
            # _read_events converts its own transport errors. One that still arrives after
            # streaming started comes from closing the response and is not retried.
            if streaming:
                raise _error_from_exception(exc, config.api_key, before_response=False) from exc
            error = _error_from_exception(exc, config.api_key, before_response=True)
            error.__cause__ = exc
        except httpx.InvalidURL as exc:
            error = UpstreamError(
                "connect_failed",
                _mask_secrets(f"invalid upstream URL {config.url!r}: {exc}", config.api_key),
                retryable=False,
            )
            error.__cause__ = exc

        if not _should_retry(error) or retries >= config.max_retries:
            raise error
        retries += 1
        delay = _retry_delay(config.backoff_base, retries, error.retry_after)
        logger.info(
            "Upstream %s failed with %s (status %s): %s; retry %d of %d in %.1f s",
            config.url,
            error.code,
            error.status,
            error.detail,
            retries,
            config.max_retries,
            delay,
        )
        yield Retrying(attempt=retries, delay=delay, error=error)
        await sleep(delay)


async def _check_response(response: httpx.Response, api_key: str) -> UpstreamError | None:
    """Return the error a response stands for, or None if it is an event stream."""
    status = response.status_code
    if not 200 <= status < 300:
        body = await _read_capped(response)
        retry_after = _parse_retry_after(response.headers.get("retry-after"))
        return UpstreamError(
            _code_for_status(status),
            _mask_secrets(_error_detail(response, body), api_key),
            status=status,
            retry_after=retry_after,
        )

    media_type = _media_type(response)
    # A missing Content-Type is read as an event stream, because the parser rejects
    # anything else anyway.
    if media_type in ("text/event-stream", ""):
        return None
    body = await _read_capped(response)
    envelope = _error_envelope(body)
    if envelope is not None:
        message, code = envelope
        mapped = _code_for_status(code) if isinstance(code, int) else "upstream_error"
        detail = message if code is None else f"{message} (code {code})"
        return UpstreamError(mapped, _mask_secrets(detail, api_key), status=status)
    return UpstreamError(
        "bad_response", f"expected an event stream, got {media_type}", status=status
    )


async def _read_events(response: httpx.Response, config: UpstreamConfig) -> AsyncIterator[Event]:
    parser = StreamParser(config.reasoning_format)
    finished = False
    try:
        async for chunk in response.aiter_bytes():
            for event in parser.feed(chunk):
                yield event
                if isinstance(event, Done):
                    return
                finished = finished or isinstance(event, Finish)
        try:
            tail = parser.close()
        except StreamProtocolError:
            if finished:
                raise
            # A body cut off in the middle of an event leaves half a JSON object.
            raise UpstreamError(
                "stream_interrupted", "the response ended in the middle of an event"
            ) from None
        for event in tail:
            yield event
            if isinstance(event, Done):
                return
            finished = finished or isinstance(event, Finish)
    except httpx.HTTPError as exc:
        raise _error_from_exception(exc, config.api_key, before_response=False) from exc
    except StreamProtocolError as exc:
        raise UpstreamError(
            "bad_response", _mask_secrets(str(exc), config.api_key), status=response.status_code
        ) from exc
    except StreamErrorEvent as exc:
        retryable = not _is_client_error(exc.code)
        raise UpstreamError(
            "upstream_error",
            _mask_secrets(str(exc), config.api_key),
            status=response.status_code,
            retryable=retryable,
        ) from exc

    if not finished:
        # A Finish without [DONE] is a complete reply. A body with neither means the
        # connection closed early, e.g. when DeepSeek drops a request queued too long.
        raise UpstreamError(
            "stream_interrupted", "the response ended without [DONE] and without finish_reason"
        )


def _should_retry(error: UpstreamError) -> bool:
    if error.code == "connect_failed":
        return error.retryable
    return error.status in _RETRY_STATUSES


def _retry_delay(backoff_base: float, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    delay = backoff_base * 2 ** (attempt - 1)
    delay *= 1 + _jitter_random.uniform(0, BACKOFF_JITTER)
    return min(delay, MAX_BACKOFF_SECONDS)


def _code_for_status(status: int) -> str:
    if status in (400, 422):
        return "invalid_request"
    if status in (401, 403):
        return "auth_failed"
    if status == 402:
        return "insufficient_balance"
    if status == 408:
        return "timeout"
    if status == 429:
        return "rate_limited"
    if status == 503:
        return "overloaded"
    if 500 <= status < 600:
        return "server_error"
    if 400 <= status < 500:
        return "invalid_request"
    return "bad_response"


def _is_client_error(code: str | int | None) -> bool:
    return isinstance(code, int) and 400 <= code < 500 and code not in (408, 429)


def _error_from_exception(
    exc: httpx.HTTPError, api_key: str, *, before_response: bool
) -> UpstreamError:
    text = _mask_secrets(str(exc) or type(exc).__name__, api_key)
    if isinstance(exc, httpx.ConnectTimeout):
        return UpstreamError("connect_failed", f"timed out connecting: {text}")
    if isinstance(exc, httpx.ConnectError):
        return UpstreamError("connect_failed", f"connection failed: {text}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UpstreamError("connect_failed", f"invalid upstream URL: {text}", retryable=False)
    if isinstance(exc, httpx.TimeoutException):
        where = "waiting for the response" if before_response else "reading the stream"
        return UpstreamError("timeout", f"timed out {where}: {text}")
    if isinstance(exc, httpx.TransportError):
        where = "before the response" if before_response else "during the stream"
        return UpstreamError("stream_interrupted", f"connection lost {where}: {text}")
    # httpx.DecodingError and other response-handling failures.
    return UpstreamError("bad_response", f"unreadable response: {text}")


async def _read_capped(response: httpx.Response) -> bytes:
    """Read at most MAX_ERROR_BODY_BYTES of a body that is not an event stream."""
    body = bytearray()
    try:
        async with contextlib.aclosing(response.aiter_bytes()) as chunks:
            async for chunk in chunks:
                body += chunk
                if len(body) >= MAX_ERROR_BODY_BYTES:
                    break
    except httpx.HTTPError as exc:
        # The status code identifies the failure, so a partial body is enough.
        logger.debug("Reading the upstream error body failed: %s", type(exc).__name__)
    return bytes(body[:MAX_ERROR_BODY_BYTES])


def _error_envelope(body: bytes) -> tuple[str, str | int | None] | None:
    """Return (message, code) from an `{"error": {...}}` body, or None for other bodies."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("error"):
        return None
    error = data["error"]
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return str(error), None
    message = error.get("message")
    code = error.get("code")
    if isinstance(code, bool) or not isinstance(code, str | int):
        code = None
    return (str(message) if message else json.dumps(error)), code


def _error_detail(response: httpx.Response, body: bytes) -> str:
    envelope = _error_envelope(body)
    if envelope is not None:
        return envelope[0]
    status_line = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    text = " ".join(body.decode("utf-8", errors="replace").split())
    # An HTML error page from a proxy adds nothing to its status line.
    if not text or "html" in _media_type(response):
        return status_line
    return f"{status_line}: {text[:_DETAIL_SNIPPET_CHARS]}"


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _parse_retry_after(value: str | None) -> float | None:
    """Read Retry-After as seconds or an HTTP date, capped at MAX_RETRY_AFTER_SECONDS."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _mask_secrets(text: str, api_key: str) -> str:
    """Replace the configured API key and key-like tokens with "****" plus the last 4 chars."""
    if api_key:
        text = text.replace(api_key, _masked(api_key))
    text = _KEY_PATTERN.sub(lambda match: _masked(match.group()), text)
    if api_key and api_key in text:
        # Only a key so short that it also occurs inside the mask gets here.
        return "(message withheld because it contained the API key)"
    return text


def _masked(secret: str) -> str:
    # The last 4 characters identify a key without exposing it, as in DeepSeek's own
    # messages. Keys too short for that are hidden completely.
    return "****" + secret[-4:] if len(secret) >= 12 else "****"
