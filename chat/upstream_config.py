"""The upstream model server the site talks to, built from settings."""

import asyncio
import weakref

import httpx
from django.conf import settings

from .upstream import Timeouts, UpstreamConfig

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def default_config() -> UpstreamConfig:
    extra_body = {}
    if settings.DEEPSEEK_THINKING:
        extra_body["thinking"] = {"type": "enabled"}
    return UpstreamConfig(
        base_url=settings.DEEPSEEK_BASE_URL,
        api_key=settings.DEEPSEEK_API_KEY,
        model=settings.DEEPSEEK_MODEL,
        extra_body=extra_body,
        timeouts=Timeouts(read=settings.UPSTREAM_READ_TIMEOUT_SECONDS),
        max_retries=settings.UPSTREAM_MAX_RETRIES,
        backoff_base=settings.UPSTREAM_BACKOFF_SECONDS,
    )


def http_client() -> httpx.AsyncClient:
    """Return the HTTP client of the running event loop, shared by its replies."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200),
        )
        _clients[loop] = client
    return client
