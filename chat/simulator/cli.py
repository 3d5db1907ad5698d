"""Command-line options shared by `python -m chat.simulator` and `manage.py runsimulator`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .script import FLAVORS, ServerDefaults
from .server import SimulatorServer

logger = logging.getLogger("chat.simulator")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind to (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8300, help="TCP port; 0 picks a free one (default: 8300)"
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="accept only this bearer key (default: accept any non-empty key)",
    )
    parser.add_argument(
        "--token-rate",
        type=float,
        default=30.0,
        help="tokens per second; 0 sends as fast as possible (default: 30)",
    )
    parser.add_argument(
        "--queue-delay",
        type=float,
        default=0.0,
        help="seconds of keep-alive comments before the first data event (default: 0)",
    )
    parser.add_argument(
        "--keepalive-interval",
        type=float,
        default=5.0,
        help="seconds between keep-alive comments while queued (default: 5)",
    )
    parser.add_argument(
        "--flavor",
        choices=FLAVORS,
        default="deepseek",
        help="wire format of streamed responses (default: deepseek)",
    )


def defaults_from_arguments(
    token_rate: float, queue_delay: float, keepalive_interval: float, flavor: str
) -> ServerDefaults:
    """Build server defaults, raising ValueError on values a directive would also reject."""
    if token_rate < 0 or queue_delay < 0:
        raise ValueError("--token-rate and --queue-delay must be >= 0")
    if keepalive_interval <= 0:
        raise ValueError("--keepalive-interval must be > 0")
    if flavor not in FLAVORS:
        raise ValueError(f"unknown --flavor {flavor!r}; expected one of {', '.join(FLAVORS)}")
    return ServerDefaults(
        token_rate=token_rate,
        queue_delay=queue_delay,
        keepalive_interval=keepalive_interval,
        flavor=flavor,
    )


async def _serve(server: SimulatorServer) -> None:
    await server.start()
    # Tests started as subprocesses read the chosen port from this line.
    print(f"chat.simulator listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


def run(host: str, port: int, api_key: str | None, defaults: ServerDefaults) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = SimulatorServer(host, port, api_key=api_key, defaults=defaults)
    asyncio.run(_serve(server))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m chat.simulator",
        description="Local stand-in for DeepSeek's streaming chat-completions API.",
    )
    add_server_arguments(parser)
    parser.add_argument(
        "--log-level", default="INFO", help="logging level, e.g. DEBUG (default: INFO)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        defaults = defaults_from_arguments(
            args.token_rate, args.queue_delay, args.keepalive_interval, args.flavor
        )
    except ValueError as exc:
        parser.error(str(exc))
    run(args.host, args.port, args.api_key, defaults)
