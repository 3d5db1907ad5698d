"""Incremental decoder for Server-Sent Events framing (the `text/event-stream` body format).

Only what chat-completion streams use is kept: `data` fields and comment lines. The
`event`, `id` and `retry` fields are parsed and dropped.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Literal

# An SSE line ends with CRLF, LF or a bare CR. The CRLF alternative comes first so a pair
# inside one buffer counts as one line ending.
_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class SSEMessage:
    """One decoded unit of an event stream: a dispatched data event or a comment line."""

    kind: Literal["data", "comment"]
    # For data: the data lines of one event joined with "\n". For a comment: the line
    # without its ":" and without one space after it.
    text: str


class SSEDecoder:
    """Decode an event stream fed as arbitrary byte chunks into messages.

    Chunks may split lines, CRLF pairs and multi-byte UTF-8 characters anywhere. Invalid
    UTF-8 turns into U+FFFD replacement characters instead of raising.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        # A chunk that ended with CR leaves this set, so an LF that starts the next chunk
        # is read as the second half of a CRLF and not as an empty line.
        self._skip_lf = False
        self._partial_line = ""
        self._data_lines: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEMessage]:
        """Decode one network read and return the messages it completes."""
        return self._consume(self._decoder.decode(chunk))

    def close(self) -> list[SSEMessage]:
        """Finish the body: dispatch a last line or event that had no terminating blank line."""
        messages = self._consume(self._decoder.decode(b"", final=True))
        if self._partial_line:
            line, self._partial_line = self._partial_line, ""
            self._process_line(line, messages)
        self._dispatch(messages)
        return messages

    def _consume(self, text: str) -> list[SSEMessage]:
        messages: list[SSEMessage] = []
        if not text:
            return messages
        if not self._started:
            self._started = True
            if text.startswith(_BOM):
                text = text[1:]
        if self._skip_lf and text:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]

        buffer = self._partial_line + text
        start = 0
        for match in _LINE_END.finditer(buffer):
            self._process_line(buffer[start : match.start()], messages)
            start = match.end()
        self._partial_line = buffer[start:]
        if buffer.endswith("\r"):
            self._skip_lf = True
        return messages

    def _process_line(self, line: str, messages: list[SSEMessage]) -> None:
        if not line:
            self._dispatch(messages)
            return
        if line.startswith(":"):
            messages.append(SSEMessage("comment", _strip_one_space(line[1:])))
            return
        name, colon, value = line.partition(":")
        if name == "data":
            # A line "data" without a colon is a data field with an empty value.
            self._data_lines.append(_strip_one_space(value) if colon else "")

    def _dispatch(self, messages: list[SSEMessage]) -> None:
        if self._data_lines:
            messages.append(SSEMessage("data", "\n".join(self._data_lines)))
            self._data_lines = []


def _strip_one_space(value: str) -> str:
    return value[1:] if value.startswith(" ") else value
