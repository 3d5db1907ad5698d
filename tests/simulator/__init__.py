"""Helpers shared by the simulator tests."""

import contextlib
import json
import ssl

import httpx

from chat.simulator import ServerDefaults, SimulatorServer

API_KEY = "sk-test-0000abcd"
# The simulator speaks plain HTTP; one shared context spares each client loading CA certificates.
TLS_CONTEXT = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@contextlib.asynccontextmanager
async def running_simulator(api_key=None, **defaults):
    """Start a simulator on a free loopback port; tokens go out as fast as possible by default."""
    defaults.setdefault("token_rate", 0.0)
    server = SimulatorServer("127.0.0.1", 0, api_key=api_key, defaults=ServerDefaults(**defaults))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def client_for(server, key=API_KEY):
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10, verify=TLS_CONTEXT)


def completion_body(content, *, stream=True, include_usage=True, model="deepseek-flash", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body


def split_events(text):
    """Split an SSE body into its blocks, each without the blank line that ends it."""
    assert text.endswith("\n\n"), text[-200:]
    return text[:-2].split("\n\n")


def data_objects(text):
    """Decode every `data:` event except `[DONE]`."""
    return [
        json.loads(block[len("data: ") :])
        for block in split_events(text)
        if block.startswith("data: ") and block != "data: [DONE]"
    ]


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
