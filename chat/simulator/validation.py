"""Request checks with the error texts DeepSeek's API returns.

The message-order rules are the strict ones of the DeepSeek-R1 era (deepseek-reasoner,
January to August 2025): they are always enforced here so the site's history builder is tested
against the strictest API it may meet.
"""

from __future__ import annotations

import json

from .errors import ApiError

ROLES = ("system", "user", "assistant", "tool", "latest_reminder")
MAX_TOKENS_LIMIT = 393216

E3 = (
    "deepseek-reasoner does not support successive user or assistant messages "
    "(messages[{first}] and messages[{second}] in your input). You should interleave the "
    "user/assistant messages in the message sequence."
)
E4 = (
    "The first message (except the system message) of deepseek-reasoner must be a user message, "
    "but {article} {role} message detected."
)
E5 = (
    "The last message of deepseek-reasoner must be a user message, or an assistant message with "
    "prefix mode on (refer to https://api-docs.deepseek.com/guides/chat_prefix_completion)."
)
E6 = "The system message of deepseek-reasoner must be put on the beginning of the message sequence"
E7 = (
    "The reasoning_content is an intermediate result for display purposes only and will not be "
    "included in the context for inference. Please remove the reasoning_content from your "
    "message to reduce network traffic."
)


def _kind(value: object) -> str:
    """Describe a JSON value the way serde's `invalid type` errors do."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


class _Body:
    """The raw body text, for the `at line L column C` suffix of deserialize errors."""

    def __init__(self, text: str):
        lines = text.rstrip().split("\n")
        self.line = len(lines)
        self.column = len(lines[-1])

    def error(self, detail: str, param: str | None = None) -> ApiError:
        # NOTE: serde reports where it found the problem, but this reports the end of the
        # body. The line and column differ from DeepSeek's; the rest of the text matches.
        return ApiError(
            400,
            "Failed to deserialize the JSON body into the target type: "
            f"{detail} at line {self.line} column {self.column}",
            param=param,
        )


def parse_body(raw: bytes) -> object:
    """Decode the request body or raise the 400 that DeepSeek sends for malformed JSON."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, f"Failed to parse the request body as JSON: invalid UTF-8 at byte {exc.start}"
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            f"Failed to parse the request body as JSON: {exc.msg.lower()} at line {exc.lineno} "
            f"column {exc.colno}",
        ) from None


def _check_message(body: _Body, index: int, message: object) -> None:
    path = f"messages[{index}]"
    if not isinstance(message, dict):
        raise body.error(f"{path}: invalid type: {_kind(message)}, expected a map")
    if "role" not in message:
        raise body.error(f"{path}: missing field `role`")
    role = message["role"]
    if not isinstance(role, str):
        raise body.error(f"{path}.role: invalid type: {_kind(role)}, expected a string")
    if role not in ROLES:
        expected = ", ".join(f"`{name}`" for name in ROLES)
        raise body.error(f"{path}.role: unknown variant `{role}`, expected one of {expected}")
    content = message.get("content")
    if content is None:
        # Only an assistant turn that calls tools may come without text.
        if role == "assistant" and message.get("tool_calls"):
            return
        if "content" not in message:
            raise body.error(f"{path}: missing field `content`")
    if not isinstance(content, str):
        raise body.error(f"{path}: invalid type: {_kind(content)}, expected a string")


def _check_fields(body: _Body, data: dict) -> None:
    if "model" not in data:
        raise body.error("missing field `model`", "model")
    if not isinstance(data["model"], str):
        raise body.error(f"model: invalid type: {_kind(data['model'])}, expected a string")
    if "messages" not in data:
        raise body.error("missing field `messages`", "messages")
    messages = data["messages"]
    if not isinstance(messages, list):
        raise body.error(f"messages: invalid type: {_kind(messages)}, expected a sequence")
    if not messages:
        # NOTE: DeepSeek's text for an empty list was never captured; this one is ours.
        raise ApiError(400, "Invalid request: messages must contain at least one message.")
    for index, message in enumerate(messages):
        _check_message(body, index, message)

    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise body.error(f"stream: invalid type: {_kind(stream)}, expected a boolean")
    stream_options = data.get("stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise body.error(
                f"stream_options: invalid type: {_kind(stream_options)}, expected a map"
            )
        include_usage = stream_options.get("include_usage")
        if include_usage is not None and not isinstance(include_usage, bool):
            raise body.error(
                "stream_options.include_usage: invalid type: "
                f"{_kind(include_usage)}, expected a boolean"
            )
    thinking = data.get("thinking")
    if thinking is not None:
        thinking_type = thinking.get("type") if isinstance(thinking, dict) else None
        if thinking_type not in ("enabled", "disabled"):
            raise body.error(
                f"thinking.type: unknown variant `{thinking_type}`, expected `enabled` or "
                "`disabled`"
            )
    max_tokens = data.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise body.error(f"max_tokens: invalid type: {_kind(max_tokens)}, expected u32")
        if not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise ApiError(
                400,
                "Invalid max_tokens value, the valid range of max_tokens is "
                f"[1, {MAX_TOKENS_LIMIT}]",
            )


def _check_order(messages: list[dict]) -> None:
    roles = [message["role"] for message in messages]

    seen_other = False
    for role in roles:
        if role == "system" and seen_other:
            raise ApiError(400, E6)
        seen_other = seen_other or role != "system"

    first = next((role for role in roles if role != "system"), None)
    if first is not None and first != "user":
        article = "an" if first[0] in "aeiou" else "a"
        raise ApiError(400, E4.format(article=article, role=first))

    for index in range(len(roles) - 1):
        if roles[index] == roles[index + 1] and roles[index] in ("user", "assistant"):
            raise ApiError(400, E3.format(first=index, second=index + 1))

    last = messages[-1]
    prefix_mode = last["role"] == "assistant" and last.get("prefix") is True
    if last["role"] != "user" and not prefix_mode:
        raise ApiError(400, E5)

    for index, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("reasoning_content") is None:
            continue
        # Chat-prefix completion may carry the reasoning of the turn being continued.
        if prefix_mode and index == len(messages) - 1:
            continue
        raise ApiError(400, E7)


def validate(data: object, raw: bytes) -> dict:
    """Check a parsed request body and return it; raise ApiError with DeepSeek's 400 text."""
    body = _Body(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise body.error(f"invalid type: {_kind(data)}, expected a map")
    _check_fields(body, data)
    _check_order(data["messages"])
    return data
