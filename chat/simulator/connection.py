"""HTTP/1.1 building blocks on asyncio streams: request parsing, buffered reads, responses."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import http
import socket
import struct
import time

from .errors import ApiError
from .flavors import dumps

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024
READ_SIZE = 64 * 1024
# Bytes queued in the transport before a writer waits for the client to read.
WRITE_BUFFER_LIMIT = 64 * 1024


class HttpError(Exception):
    """A request that cannot be parsed; the connection is closed after the error response."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


class Connection:
    """One client connection with its own read buffer.

    Request parsing and the disconnect watcher share the buffer, so bytes that arrive while a
    response is streaming are kept for the next request.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()
        self.eof = False
        self.aborted = False

    async def fill(self) -> None:
        try:
            data = await self.reader.read(READ_SIZE)
        except OSError:
            data = b""
        if data:
            self.buffer += data
        else:
            self.eof = True

    async def read_head(self) -> bytes | None:
        """Return the request line and headers, or None when the client closed between requests."""
        while True:
            # RFC 9112 lets a server ignore empty lines before a request line.
            while self.buffer[:2] == b"\r\n":
                del self.buffer[:2]
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buffer[:end])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise HttpError(431, f"Request headers exceed {MAX_HEAD_BYTES} bytes.")
            if self.eof:
                if self.buffer:
                    raise HttpError(400, "Connection closed in the middle of the request headers.")
                return None
            await self.fill()

    async def read_body(self, length: int) -> bytes | None:
        while len(self.buffer) < length:
            if self.eof:
                return None
            await self.fill()
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return body

    async def wait_closed_by_client(self) -> None:
        """Return once the client has closed or reset the connection."""
        while not self.eof:
            if len(self.buffer) > MAX_BODY_BYTES + MAX_HEAD_BYTES:
                # A client flooding us mid-response is not going away; stop buffering.
                await asyncio.Event().wait()
            await self.fill()

    def abort_with_reset(self) -> None:
        """Close the socket with a TCP RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()
        self.aborted = True


class ResponseWriter:
    """Writes one response. Body bytes go out one per `trickle` seconds when `trickle` is set."""

    def __init__(self, conn: Connection, trace_id: str, entry: dict | None = None):
        self.conn = conn
        self.trace_id = trace_id
        self.entry = entry
        self.trickle: float | None = None
        self.status: int | None = None

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        self.status = status
        if self.entry is not None:
            self.entry["status"] = status
        lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}"]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        lines.extend(f"{name}: {value}" for name, value in headers)
        lines.append(f"x-ds-trace-id: {self.trace_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _mark_first_byte(self) -> None:
        if self.entry is not None and self.entry["first_byte"] is None:
            self.entry["first_byte"] = time.time()

    async def _send(self, data: bytes) -> None:
        self.conn.writer.write(data)
        await self.conn.writer.drain()

    async def _send_body(self, data: bytes, *, chunked: bool) -> None:
        self._mark_first_byte()
        if self.trickle is None:
            await self._send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            return
        for index in range(len(data)):
            byte = data[index : index + 1]
            await self._send(b"1\r\n" + byte + b"\r\n" if chunked else byte)
            await asyncio.sleep(self.trickle)

    async def send_full(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        close: bool = False,
    ) -> None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        headers.append(("Connection", "close" if close else "keep-alive"))
        await self._send(self._head(status, headers))
        await self._send_body(body, chunked=False)

    async def send_json(self, status: int, value: object, *, close: bool = False) -> None:
        await self.send_full(status, dumps(value).encode(), close=close)

    async def send_error(self, error: ApiError, *, close: bool = False) -> None:
        await self.send_full(error.status, error.body(), close=close)

    async def start_chunked(self, status: int, content_type: str, *, event_stream: bool) -> None:
        headers = [("Content-Type", content_type), ("Transfer-Encoding", "chunked")]
        headers.append(("Connection", "keep-alive"))
        if event_stream:
            headers.append(("Cache-Control", "no-cache"))
        await self._send(self._head(status, headers))

    async def write_chunk(self, data: bytes) -> None:
        """Send `data` as one HTTP chunk."""
        if self.trickle is not None:
            await self._send_body(data, chunked=True)
            return
        # Fast path for token events: one write, and a drain only when the socket backs up,
        # because awaiting drain() for every event costs more than the write itself.
        self._mark_first_byte()
        transport = self.conn.writer.transport
        if transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        transport.write(b"%x\r\n%s\r\n" % (len(data), data))
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            await self.conn.writer.drain()

    async def write_raw_body(self, data: bytes) -> None:
        await self._send_body(data, chunked=False)

    async def end_chunked(self) -> None:
        await self._send(b"0\r\n\r\n")
