"""The HTTP client the worker's replies share."""

import asyncio
import weakref

import httpx

_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
