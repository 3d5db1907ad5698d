import asyncio
import json

import httpx
import pytest

from . import API_KEY, client_for, completion_body, data_objects, running_simulator, split_events

HTTP_FAULTS = [
    (
        "http_400",
        400,
        {
            "message": "Invalid max_tokens value, the valid range of max_tokens is [1, 393216]",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        },
    ),
    (
        "http_401",
        401,
        {
            "message": "Authentication Fails, Your api key: ****abcd is invalid",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_request_error",
        },
    ),
    (
        "http_402",
        402,
        {
            "message": "Insufficient Balance",
            "type": "unknown_error",
            "param": None,
            "code": "invalid_request_error",
        },
    ),
    (
        "http_422",
        422,
        {
            "message": "Failed to deserialize the JSON body into the target type: messages[3]: "
            "invalid type: sequence, expected a string at line 1 column 4521",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_request_error",
        },
    ),
    (
        "http_429",
        429,
        {
            "message": "Your current concurrency is 26, which exceeds your concurrency limit of "
            "25 based on your remaining balance. Please top up your balance to restore your "
            "concurrency.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        },
    ),
    (
        "http_500",
        500,
        {
            "message": "Internal server error",
            "type": "api_error",
            "param": None,
            "code": "internal_error",
        },
    ),
    (
        "http_503",
        503,
        {
            "message": "Server overloaded, please try again later.",
            "type": "service_unavailable_error",
            "param": None,
            "code": "service_unavailable",
        },
    ),
]


def deltas_of(text):
    return [chunk["choices"][0]["delta"] for chunk in data_objects(text) if chunk["choices"]]


@pytest.mark.parametrize(("fault", "status", "error"), HTTP_FAULTS)
async def test_http_fault_body(fault, status, error):
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body(f"hi [sim fault={fault}]")
        response = await client.post("/chat/completions", json=body)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert len(response.headers["x-ds-trace-id"]) == 32
    assert "retry-after" not in response.headers
    assert response.content == json.dumps({"error": error}, separators=(",", ":")).encode()


async def test_times_fails_then_succeeds():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim fault=http_429 times=2 reasoning=1 answer=1]")
        statuses = []
        for _ in range(3):
            response = await client.post("/chat/completions", json=body)
            statuses.append(response.status_code)
        other = completion_body("other [sim fault=http_429 times=2]")
        other_status = (await client.post("/chat/completions", json=other)).status_code
    assert statuses == [429, 429, 200]
    assert response.text.endswith("data: [DONE]\n\n")
    assert other_status == 429


async def test_fault_without_times_always_fails():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim fault=http_503]")
        statuses = [(await client.post("/chat/completions", json=body)).status_code for _ in "abc"]
    assert statuses == [503, 503, 503]


async def test_reset_after_breaks_connection():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim reset_after=3 reasoning=5 answer=5]")
        received = []
        with pytest.raises(httpx.ReadError):
            async with client.stream("POST", "/chat/completions", json=body) as response:
                async for piece in response.aiter_raw():
                    received.append(piece)
    assert response.status_code == 200
    text = b"".join(received).decode()
    assert "[DONE]" not in text
    assert 'finish_reason":"stop' not in text


async def test_reset_after_times_recovers():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim fault=reset_after=2 times=1 reasoning=2 answer=2]")
        with pytest.raises(httpx.ReadError):
            await client.post("/chat/completions", json=body)
        response = await client.post("/chat/completions", json=body)
    assert response.text.endswith("data: [DONE]\n\n")


async def test_no_done_ends_cleanly():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim fault=no_done reasoning=2 answer=2]")
        response = await client.post("/chat/completions", json=body)
    blocks = split_events(response.text)
    assert "data: [DONE]" not in blocks
    last = data_objects(response.text)[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 4


async def test_eof_after_ends_without_finish():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim eof_after=3 reasoning=2 answer=4]")
        response = await client.post("/chat/completions", json=body)
        followup = await client.get("/_sim/health")
    chunks = data_objects(response.text)
    assert "data: [DONE]" not in split_events(response.text)
    # role chunk, 2 reasoning tokens, 1 answer token
    assert len(chunks) == 4
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks)
    assert chunks[-1]["choices"][0]["delta"]["content"] is not None
    assert followup.json() == {"ok": True}


async def test_length_cuts_during_reasoning():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim fault=length reasoning=6 answer=9]")
        response = await client.post("/chat/completions", json=body)
    deltas = deltas_of(response.text)
    assert all(delta["content"] is None for delta in deltas[1:-1])
    last = data_objects(response.text)[-1]
    assert last["choices"][0]["finish_reason"] == "length"
    assert last["usage"]["completion_tokens"] == 6
    assert last["usage"]["completion_tokens_details"] == {"reasoning_tokens": 6}
    assert response.text.endswith("data: [DONE]\n\n")


@pytest.mark.parametrize("fault", ["insufficient_system_resource", "content_filter"])
async def test_finish_fault_after_some_answer(fault):
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body(f"hi [sim fault={fault} reasoning=4 answer=10]")
        response = await client.post("/chat/completions", json=body)
    answer = [delta for delta in deltas_of(response.text)[1:-1] if delta["content"] is not None]
    assert len(answer) == 5
    last = data_objects(response.text)[-1]
    assert last["choices"][0]["finish_reason"] == fault
    assert last["usage"]["completion_tokens"] == 9
    assert response.text.endswith("data: [DONE]\n\n")


async def test_not_sse_sends_html():
    async with running_simulator() as sim, client_for(sim) as client:
        response = await client.post(
            "/chat/completions", json=completion_body("hi [sim fault=not_sse]")
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.startswith("<!DOCTYPE html>")


async def test_trickle_sends_single_bytes():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim fault=trickle trickle_interval=0.01]")
        pieces = []
        async with client.stream("POST", "/chat/completions", json=body) as response:
            async for piece in response.aiter_raw():
                pieces.append(piece)
                if len(pieces) == 20:
                    break
    assert response.status_code == 200
    assert [len(piece) for piece in pieces] == [1] * 20
    assert b"".join(pieces).startswith(b'data: {"id":"')


async def test_queue_close_sends_no_data():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim queue_close=0.05 keepalive=0.02]")
        received = []
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", "/chat/completions", json=body) as response:
                async for piece in response.aiter_raw():
                    received.append(piece)
    text = b"".join(received).decode()
    assert text.startswith(": keep-alive\n\n")
    assert set(text.split("\n\n")) == {": keep-alive", ""}


async def test_pause_after_still_completes():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim pause_after=2 pause=0.01 reasoning=2 answer=2]")
        response = await client.post("/chat/completions", json=body)
    assert len(deltas_of(response.text)) == 6
    assert response.text.endswith("data: [DONE]\n\n")


async def test_disconnect_is_recorded():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("stop me [sim pause_after=2 pause=60 reasoning=5 answer=5]")
        async with client.stream("POST", "/chat/completions", json=body) as response:
            seen = ""
            async for text in response.aiter_text():
                seen += text
                if seen.count("\n\n") == 3:
                    break
        entry = None
        for _ in range(200):
            entries = (await client.get("/_sim/requests")).json()
            entry = entries[-1]
            if entry["ended"] is not None:
                break
            await asyncio.sleep(0.01)
    assert entry["client_disconnected"] is True
    assert entry["events_sent"] == 3
    assert entry["ended"] >= entry["first_byte"] >= entry["started"]
    assert entry["body"] == body


async def test_request_log_and_clear():
    async with running_simulator() as sim, client_for(sim) as client:
        body = completion_body("hi [sim reasoning=1 answer=1]")
        response = await client.post("/chat/completions", json=body)
        entries = (await client.get("/_sim/requests")).json()
        cleared = (await client.delete("/_sim/requests")).json()
        after = (await client.get("/_sim/requests")).json()
    assert len(entries) == 1
    entry = entries[0]
    assert entry["id"] == response.headers["x-ds-trace-id"]
    assert entry["body"] == body
    assert entry["client_disconnected"] is False
    # role chunk, one reasoning token, one answer token, finish chunk, [DONE]
    assert entry["events_sent"] == 5
    assert entry["ended"] >= entry["first_byte"] >= entry["started"]
    assert cleared == {"cleared": 1}
    assert after == []


async def test_request_log_keeps_last_200():
    async with running_simulator() as sim, client_for(sim) as client:
        for index in range(205):
            body = completion_body(f"q{index} [sim fault=http_500]")
            await client.post("/chat/completions", json=body)
        entries = (await client.get("/_sim/requests")).json()
    assert len(entries) == 200
    assert entries[0]["body"]["messages"][0]["content"].startswith("q5 ")


def test_api_key_constant_ends_in_abcd():
    # The http_401 expectation above masks all but the last four characters of this key.
    assert API_KEY.endswith("abcd")
