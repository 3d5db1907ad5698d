"""The simulator's HTTP/1.1 server: connection handling and routing."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import uuid

from . import completions
from .connection import (
    MAX_BODY_BYTES,
    READ_SIZE,
    Connection,
    HttpError,
    Request,
    ResponseWriter,
)
from .errors import ApiError, authentication_error
from .script import ServerDefaults

logger = logging.getLogger("chat.simulator")

# Idle persistent connections are closed after this many seconds, as real servers do.
IDLE_TIMEOUT = 120.0
REQUEST_LOG_SIZE = 200
MODELS = ("deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro")

COMPLETION_PATHS = ("/chat/completions", "/v1/chat/completions")
MODEL_PATHS = ("/models", "/v1/models")
ROUTE_METHODS = {
    **{path: "POST" for path in COMPLETION_PATHS},
    **{path: "GET" for path in MODEL_PATHS},
    "/_sim/requests": "GET, DELETE",
    "/_sim/health": "GET",
}


class SimulatorServer:
    """The simulator: `await start()`, then use `url`; `await close()` stops it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        defaults: ServerDefaults | None = None,
    ):
        self.host = host
        self.port = port
        self.api_key = api_key
        self.defaults = defaults or ServerDefaults()
        self.request_log: collections.deque[dict] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.engine = completions.CompletionEngine(self.defaults)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=READ_SIZE, backlog=2048
        )
        self.port = self._server.sockets[0].getsockname()[1]
        # The command line prints the address itself; the log line is for embedders.
        logger.debug("simulator listening on %s", self.url)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        logger.info("simulator on %s stopped", self.url)

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        conn = Connection(reader, writer)
        try:
            await self._serve_connection(conn)
        except HttpError as exc:
            logger.info("rejected malformed HTTP request (%d): %s", exc.status, exc.message)
            with contextlib.suppress(OSError):
                error = ApiError(exc.status, exc.message)
                await ResponseWriter(conn, uuid.uuid4().hex).send_error(error, close=True)
        except OSError as exc:
            logger.debug("client connection failed: %r", exc)
        except asyncio.CancelledError:
            # Only close() cancels these tasks. Ending normally matters on Python 3.11, where
            # asyncio's stream callback logs an error for a connection task that ends cancelled.
            pass
        except Exception:
            logger.exception("simulator connection handler failed")
        finally:
            self._connections.discard(task)
            if not conn.aborted:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _serve_connection(self, conn: Connection) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    head = await conn.read_head()
            except TimeoutError:
                return
            if head is None:
                return
            request = await self._read_request(conn, head)
            if request is None:
                return
            keep_open = await self._dispatch(conn, request)
            if not keep_open or not request.keep_alive:
                return

    async def _read_request(self, conn: Connection, head: bytes) -> Request | None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise HttpError(400, f"Malformed request line: {lines[0][:200]!r}")
        method, target, version = parts

        if version not in ("HTTP/1.0", "HTTP/1.1"):
            raise HttpError(505, f"HTTP version {version} is not supported; use HTTP/1.1.")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(400, f"Malformed header line: {line[:200]!r}")
            headers[name.lower()] = value.strip()

        if "transfer-encoding" in headers:
            raise HttpError(411, "Chunked request bodies are not supported; send Content-Length.")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise HttpError(400, f"Invalid Content-Length: {length_text!r}")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise HttpError(
                413,
                f"Request body of {length} bytes is too large; the maximum is "
                f"{MAX_BODY_BYTES} bytes.",
            )

        body = await conn.read_body(length)
        if body is None:
            return None
        path = target.split("?", 1)[0]
        return Request(method, path, version, headers, body)

    def _bearer_key(self, request: Request) -> str | None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        return key.strip()

    def check_auth(self, request: Request) -> str:
        """Return the request's API key or raise the 401 DeepSeek sends."""
        key = self._bearer_key(request)
        if key is None:
            # NOTE: DeepSeek's reply to a missing header was not captured; this reuses the
            # wrong-key text with an empty key.
            raise authentication_error("")
        if self.api_key is not None and key != self.api_key:
            raise authentication_error(key)
        return key

    async def _dispatch(self, conn: Connection, request: Request) -> bool:
        """Route one request; return False when the connection must be closed."""
        allowed = ROUTE_METHODS.get(request.path)
        out = ResponseWriter(conn, uuid.uuid4().hex)
        if allowed is None:
            await out.send_error(ApiError(404, f"Not found: {request.method} {request.path}"))
            return True
        if request.method not in allowed.split(", "):
            message = f"Method {request.method} is not allowed on {request.path}; use {allowed}."
            await out.send_error(ApiError(405, message))
            return True

        if request.path in COMPLETION_PATHS:
            return await self.engine.handle(self, conn, request)
        if request.path in MODEL_PATHS:
            try:
                self.check_auth(request)
            except ApiError as error:
                await out.send_error(error)
                return True
            models = [{"id": name, "object": "model", "owned_by": "deepseek"} for name in MODELS]
            await out.send_json(200, {"object": "list", "data": models})
            return True
        if request.path == "/_sim/requests":
            if request.method == "DELETE":
                cleared = len(self.request_log)
                self.request_log.clear()
                await out.send_json(200, {"cleared": cleared})
            else:
                await out.send_json(200, list(self.request_log))
            return True
        await out.send_json(200, {"ok": True})
        return True
