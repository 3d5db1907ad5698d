"""Parse an OpenAI-style chat-completion event stream into reasoning and answer events.

Servers deliver a reasoning model's chain of thought in one of three ways: a separate
`reasoning_content` field (DeepSeek, vLLM, llama.cpp), a separate `reasoning` field
(OpenRouter, Ollama), or inline in `content` between `<think>` and `</think>`
(R1 distills behind servers that do not split reasoning out). `StreamParser` turns all
three into `ReasoningDelta` and `ContentDelta` events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .sse import SSEDecoder, SSEMessage

_OPEN_TAG = "<think>"
_CLOSE_TAG = "</think>"
_ERROR_PAYLOAD_CHARS = 200

# How much tag-less `content` to hold back while it is unknown whether it is reasoning
# whose opening tag was in the prompt. About 200 to 300 tokens of English text, so a plain
# chat model's answer still starts streaming early.
DEFAULT_MAX_UNDECIDED_CHARS = 1024


class ReasoningFormat(StrEnum):
    """Source of the model's reasoning in the upstream response."""

    AUTO = "auto"
    REASONING_CONTENT = "reasoning_content"
    REASONING = "reasoning"
    THINK_TAGS = "think_tags"


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finish:
    # stop, length, content_filter, tool_calls, insufficient_system_resource, or any
    # other string the server sends.
    reason: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_cache_hit_tokens: int | None
    prompt_cache_miss_tokens: int | None
    reasoning_tokens: int | None
    # Price of the request in US dollars, sent only by OpenRouter (`usage.cost`).
    cost: float | None


@dataclass(frozen=True, slots=True)
class KeepAlive:
    comment: str


@dataclass(frozen=True, slots=True)
class Done:
    """The `data: [DONE]` end marker."""


Event = ReasoningDelta | ContentDelta | Finish | Usage | KeepAlive | Done


class StreamProtocolError(Exception):
    """A data event that is not a JSON object."""


class StreamErrorEvent(Exception):
    """An `{"error": {...}}` object sent as a data event, as OpenRouter does mid-stream."""

    def __init__(self, message: str, code: str | int | None = None) -> None:
        super().__init__(message if code is None else f"{message} (code {code})")
        self.message = message
        self.code = code


class StreamParser:
    """Turn response body bytes, split anywhere, into `Event` objects.

    `reasoning_format` picks the reasoning source. The explicit formats read only the
    source they name: REASONING_CONTENT and REASONING pass `content` through unchanged,
    and THINK_TAGS ignores both reasoning fields. AUTO reads both fields and also splits
    think tags out of `content`.

    Tag-less `content` at the start of a reply may be reasoning whose opening `<think>`
    was already in the prompt, which is known only once `</think>` arrives. AUTO and
    THINK_TAGS therefore hold such text back until `</think>` or the end of the reply
    (it is answer text if no `</think>` came). At most `max_undecided_chars` characters
    are held. Beyond that, AUTO releases the text as answer, because plain chat models
    are the common tag-less case. THINK_TAGS releases it as reasoning, because the
    operator declared a tag-emitting model. AUTO holds nothing back once a reasoning
    field has appeared, even an empty one, because the server separates reasoning.
    """

    def __init__(
        self,
        reasoning_format: ReasoningFormat = ReasoningFormat.AUTO,
        *,
        max_undecided_chars: int = DEFAULT_MAX_UNDECIDED_CHARS,
    ) -> None:
        self._format = ReasoningFormat(reasoning_format)
        self._decoder = SSEDecoder()
        self._tags: _ThinkTagSplitter | None = None
        if self._format in (ReasoningFormat.AUTO, ReasoningFormat.THINK_TAGS):
            self._tags = _ThinkTagSplitter(
                max_undecided_chars=max_undecided_chars,
                overflow_is_reasoning=self._format is ReasoningFormat.THINK_TAGS,
            )
        self._last_finish: str | None = None
        self._done = False

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse one network read.

        Raises StreamProtocolError for a data event that is not a JSON object and
        StreamErrorEvent for an error object. Events parsed earlier in the same call are
        lost in that case, because the stream cannot continue anyway.
        """
        events: list[Event] = []
        for message in self._decoder.feed(chunk):
            self._handle_message(message, events)
        return _merge_deltas(events)

    def close(self) -> list[Event]:
        """Finish the body: parse a last unterminated event and release held-back text."""
        events: list[Event] = []
        for message in self._decoder.close():
            self._handle_message(message, events)
        self._flush_tags(events)
        return _merge_deltas(events)

    def _handle_message(self, message: SSEMessage, events: list[Event]) -> None:
        # [DONE] ends the stream, so anything a server sends after it is ignored.
        if self._done:
            return
        if message.kind == "comment":
            events.append(KeepAlive(message.text))
            return
        payload = message.text
        if not payload.strip():
            return
        if payload.strip() == "[DONE]":
            self._flush_tags(events)
            events.append(Done())
            self._done = True
            return
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise StreamProtocolError(
                f"data event is not valid JSON ({exc}): {payload[:_ERROR_PAYLOAD_CHARS]!r}"
            ) from None
        if not isinstance(chunk, dict):
            raise StreamProtocolError(
                f"data event is JSON but not an object: {payload[:_ERROR_PAYLOAD_CHARS]!r}"
            )
        _raise_for_error(chunk)
        self._handle_chunk(chunk, events)

    def _handle_chunk(self, chunk: dict[str, Any], events: list[Event]) -> None:
        # A usage-only chunk has "choices": [], and some servers send null.
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                # Only the first completion is shown, because requests never ask for n > 1.
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._handle_choice(choice, events)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            events.append(_parse_usage(usage))

    def _handle_choice(self, choice: dict[str, Any], events: list[Event]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._handle_reasoning(delta, events)
            content = delta.get("content")
            if isinstance(content, str) and content:
                if self._tags is None:
                    events.append(ContentDelta(content))
                else:
                    events.extend(self._tags.feed(content))

        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            # The reply's content is complete, so held-back text goes out before Finish.
            self._flush_tags(events)
            if reason != self._last_finish:
                events.append(Finish(reason))
                self._last_finish = reason

    def _handle_reasoning(self, delta: dict[str, Any], events: list[Event]) -> None:
        if self._format is ReasoningFormat.THINK_TAGS:
            return
        if self._format is ReasoningFormat.AUTO:
            fields = ("reasoning_content", "reasoning")
        else:
            fields = (self._format.value,)
        present = [delta[name] for name in fields if isinstance(delta.get(name), str)]
        if not present:
            return
        if self._tags is not None:
            events.extend(self._tags.disable_implicit_reasoning())
        # Only the first non-empty field counts, so a server that mirrors the same text
        # into both fields is not shown twice.
        text = next((value for value in present if value), "")
        if text:
            events.append(ReasoningDelta(text))

    def _flush_tags(self, events: list[Event]) -> None:
        if self._tags is not None:
            events.extend(self._tags.flush())


def _raise_for_error(chunk: dict[str, Any]) -> None:
    error = chunk.get("error")
    if not error:
        return
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code")
        if not isinstance(code, str | int) or isinstance(code, bool):
            code = None
        raise StreamErrorEvent(str(message) if message else json.dumps(error), code)
    raise StreamErrorEvent(str(error))


def _parse_usage(usage: dict[str, Any]) -> Usage:
    prompt_tokens = _int_or_none(usage.get("prompt_tokens")) or 0
    hit = _int_or_none(usage.get("prompt_cache_hit_tokens"))
    miss = _int_or_none(usage.get("prompt_cache_miss_tokens"))
    if hit is None:
        # OpenAI-style servers report cached prompt tokens only here, and their
        # prompt_tokens includes them, so the rest missed the cache.
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict):
            hit = _int_or_none(details.get("cached_tokens"))
            if hit is not None and miss is None:
                miss = max(prompt_tokens - hit, 0)

    reasoning_tokens = None
    completion_details = usage.get("completion_tokens_details")
    if isinstance(completion_details, dict):
        reasoning_tokens = _int_or_none(completion_details.get("reasoning_tokens"))

    cost = usage.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, int | float):
        cost = None

    return Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=_int_or_none(usage.get("completion_tokens")) or 0,
        total_tokens=_int_or_none(usage.get("total_tokens")) or 0,
        prompt_cache_hit_tokens=hit,
        prompt_cache_miss_tokens=miss,
        reasoning_tokens=reasoning_tokens,
        cost=None if cost is None else float(cost),
    )


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _merge_deltas(events: list[Event]) -> list[Event]:
    merged: list[Event] = []
    for event in events:
        previous = merged[-1] if merged else None
        if isinstance(event, ReasoningDelta) and isinstance(previous, ReasoningDelta):
            merged[-1] = ReasoningDelta(previous.text + event.text)
        elif isinstance(event, ContentDelta) and isinstance(previous, ContentDelta):
            merged[-1] = ContentDelta(previous.text + event.text)
        else:
            merged.append(event)
    return merged


class _Mode(StrEnum):
    START = "start"  # nothing but whitespace or part of an opening tag seen yet
    UNDECIDED = "undecided"  # tag-less text that may be reasoning whose opening tag is missing
    THINK = "think"  # inside a think block
    ANSWER = "answer"  # after the think block, or no think block at all


class _ThinkTagSplitter:
    """Split `<think>` blocks out of `content` text that arrives in arbitrary pieces.

    Only one think block at the start of the reply is recognized; tags later in the answer
    stay literal text. Whitespace right after either tag is dropped. Text is released as
    soon as it cannot be part of a tag, except in UNDECIDED mode (see StreamParser).
    """

    def __init__(self, *, max_undecided_chars: int, overflow_is_reasoning: bool) -> None:
        self._max_undecided_chars = max_undecided_chars
        self._overflow_is_reasoning = overflow_is_reasoning
        self._implicit_allowed = True
        self._mode = _Mode.START
        self._pending = ""
        self._skip_whitespace = False

    def feed(self, text: str) -> list[Event]:
        self._pending += text
        return self._advance(final=False)

    def flush(self) -> list[Event]:
        """Release everything held back, as at the end of the reply."""
        return self._advance(final=True)

    def disable_implicit_reasoning(self) -> list[Event]:
        """Treat tag-less text as answer from now on and release what was held for it."""
        self._implicit_allowed = False
        return self._advance(final=False)

    def _advance(self, *, final: bool) -> list[Event]:
        events: list[Event] = []
        while True:
            if self._skip_whitespace:
                stripped = self._pending.lstrip()
                if not stripped:
                    self._pending = ""
                    return events
                self._pending = stripped
                self._skip_whitespace = False

            if self._mode is _Mode.START:
                if not self._leave_start(final):
                    return events
            elif self._mode is _Mode.UNDECIDED:
                if self._close_think_block(events):
                    continue
                if final or not self._implicit_allowed:
                    self._mode = _Mode.ANSWER
                elif len(self._pending) > self._max_undecided_chars:
                    self._mode = _Mode.THINK if self._overflow_is_reasoning else _Mode.ANSWER
                else:
                    return events
            elif self._mode is _Mode.THINK:
                if self._close_think_block(events):
                    continue
                keep = 0 if final else _partial_tag_length(self._pending, _CLOSE_TAG)
                cut = len(self._pending) - keep
                _append(events, ReasoningDelta, self._pending[:cut])
                self._pending = self._pending[cut:]
                return events
            else:
                _append(events, ContentDelta, self._pending)
                self._pending = ""
                return events

    def _leave_start(self, final: bool) -> bool:
        """Pick the mode for the text at the start of the reply, or return False to wait."""
        head = self._pending.lstrip()
        if head.startswith(_OPEN_TAG):
            self._pending = head[len(_OPEN_TAG) :]
            self._mode = _Mode.THINK
            self._skip_whitespace = True
            return True
        if not head or _OPEN_TAG.startswith(head):
            if not final:
                return False
            self._mode = _Mode.ANSWER
            return True
        self._mode = _Mode.UNDECIDED if self._implicit_allowed else _Mode.ANSWER
        return True

    def _close_think_block(self, events: list[Event]) -> bool:
        index = self._pending.find(_CLOSE_TAG)
        if index < 0:
            return False
        _append(events, ReasoningDelta, self._pending[:index])
        self._pending = self._pending[index + len(_CLOSE_TAG) :]
        self._mode = _Mode.ANSWER
        self._skip_whitespace = True
        return True


def _append(events: list[Event], kind: type[ReasoningDelta | ContentDelta], text: str) -> None:
    if text:
        events.append(kind(text))


def _partial_tag_length(text: str, tag: str) -> int:
    """Return the length of the longest end of `text` that is a proper prefix of `tag`."""
    for length in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:length]):
            return length
    return 0
