"""Per-request options for the simulator: server defaults plus `[sim key=value ...]` directives.

A directive is written into the last user message, for example::

    Explain quicksort
    [sim rate=0 reasoning=5 fault=http_429 times=2]

Keys and their values are checked strictly, so a typo in a test script fails with HTTP 400
instead of silently running the default scenario.
"""

from __future__ import annotations

import dataclasses
import re

from .flavors import FLAVOR_CLASSES

FLAVORS = tuple(FLAVOR_CLASSES)

HTTP_FAULTS = {
    "http_400": 400,
    "http_401": 401,
    "http_402": 402,
    "http_422": 422,
    "http_429": 429,
    "http_500": 500,
    "http_503": 503,
}

# Faults that change the finish of an otherwise normal stream.
FINISH_FAULTS = ("length", "insufficient_system_resource", "content_filter")

FAULTS = (*HTTP_FAULTS, "no_done", *FINISH_FAULTS, "not_sse", "trickle")

DIRECTIVE_RE = re.compile(r"\[sim(?:[ \t]+([^\]\n]*))?\]")


class DirectiveError(ValueError):
    """An invalid `[sim ...]` directive; the message is sent back as an HTTP 400 body."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


@dataclasses.dataclass(frozen=True)
class ServerDefaults:
    """Server-wide defaults, set from the command line."""

    token_rate: float = 30.0
    queue_delay: float = 0.0
    keepalive_interval: float = 5.0
    flavor: str = "deepseek"


@dataclasses.dataclass
class Options:
    """Scenario for one completion request.

    Times are in seconds and counts in tokens (one emitted delta each).
    """

    rate: float = 30.0
    reasoning: int = 60
    answer: int = 120
    flavor: str = "deepseek"
    queue: float = 0.0
    keepalive: float = 5.0
    pause_after: int | None = None
    pause: float = 0.0
    fault: str | None = None
    times: int | None = None
    reset_after: int | None = None
    eof_after: int | None = None
    queue_close: float | None = None
    trickle_interval: float = 1.0

    @classmethod
    def from_defaults(cls, defaults: ServerDefaults) -> Options:
        return cls(
            rate=defaults.token_rate,
            queue=defaults.queue_delay,
            keepalive=defaults.keepalive_interval,
            flavor=defaults.flavor,
        )

    def has_fault(self) -> bool:
        """Return whether any fault is scripted, which is what `times` counts attempts for."""
        return (
            self.fault is not None
            or self.reset_after is not None
            or self.eof_after is not None
            or self.queue_close is not None
        )

    def clear_faults(self) -> None:
        self.fault = None
        self.reset_after = None
        self.eof_after = None
        self.queue_close = None


def _non_negative_float(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise DirectiveError(
            f"Invalid simulator directive: {key}={raw!r} is not a number.", key
        ) from None
    if not value >= 0 or value == float("inf"):
        raise DirectiveError(
            f"Invalid simulator directive: {key}={raw!r} must be a finite number >= 0.", key
        )
    return value


def _positive_float(key: str, raw: str) -> float:
    value = _non_negative_float(key, raw)
    if value == 0:
        raise DirectiveError(f"Invalid simulator directive: {key}={raw!r} must be > 0.", key)
    return value


def _non_negative_int(key: str, raw: str) -> int:
    if not raw.isdigit():
        raise DirectiveError(
            f"Invalid simulator directive: {key}={raw!r} must be a whole number >= 0.", key
        )
    return int(raw)


def _positive_int(key: str, raw: str) -> int:
    value = _non_negative_int(key, raw)
    if value == 0:
        raise DirectiveError(f"Invalid simulator directive: {key}={raw!r} must be >= 1.", key)
    return value


def _choice(key: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise DirectiveError(
            f"Invalid simulator directive: unknown {key} {raw!r}; expected one of "
            f"{', '.join(allowed)}.",
            key,
        )
    return raw


_PARSERS = {
    "rate": _non_negative_float,
    "reasoning": _non_negative_int,
    "answer": _non_negative_int,
    "flavor": lambda key, raw: _choice(key, raw, FLAVORS),
    "queue": _non_negative_float,
    "keepalive": _positive_float,
    "pause_after": _non_negative_int,
    "pause": _non_negative_float,
    "fault": lambda key, raw: _choice(key, raw, FAULTS),
    "times": _positive_int,
    "reset_after": _non_negative_int,
    "eof_after": _non_negative_int,
    "queue_close": _non_negative_float,
    "trickle_interval": _non_negative_float,
}

DIRECTIVE_KEYS = tuple(_PARSERS)


def _apply_pair(options: Options, key: str, raw: str) -> None:
    if key == "fault" and "=" in raw:
        # `fault=reset_after=3` reads naturally, so accept it as `reset_after=3`.
        key, raw = raw.split("=", 1)
    parser = _PARSERS.get(key)
    if parser is None:
        raise DirectiveError(
            f"Invalid simulator directive: unknown key {key!r}; known keys are "
            f"{', '.join(DIRECTIVE_KEYS)}.",
            key,
        )
    setattr(options, key, parser(key, raw))


def apply_directives(text: str, options: Options) -> str:
    """Apply the last `[sim ...]` directive in `text` to `options`; return the text without any.

    Only the last one counts because a chat site may join several user turns
    into one message (after a failed reply), each with its own directive.
    Raises DirectiveError on an unknown key, a malformed pair or an invalid value.
    """
    matches = list(DIRECTIVE_RE.finditer(text))
    for match in matches[-1:]:
        for pair in (match.group(1) or "").split():
            key, sep, raw = pair.partition("=")
            if not sep or not key or not raw:
                raise DirectiveError(
                    f"Invalid simulator directive: {pair!r} in {match.group(0)!r} is not "
                    "key=value.",
                    key or None,
                )
            _apply_pair(options, key, raw)
    if options.pause_after is not None and options.pause == 0:
        raise DirectiveError(
            "Invalid simulator directive: pause_after needs pause=SECONDS as well.", "pause"
        )
    kept_lines = []
    for line in text.split("\n"):
        if DIRECTIVE_RE.search(line):
            line = DIRECTIVE_RE.sub("", line).rstrip()
            if not line.strip():
                continue
        kept_lines.append(line)
    return "\n".join(kept_lines).strip()
