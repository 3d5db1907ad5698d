"""Each upstream failure, played by the simulator, ends the reply in the right state.

These go through the real path: websocket, database, Celery worker, httpx
client and the simulator's wire protocol.
"""

import asyncio

import pytest

from chat.models import Message
from tests.chat.websocket import connect, is_done, receive, receive_until, send_frame

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def run_reply(cookie, directive, prompt="Explain recursion briefly."):
    communicator = await connect(cookie)
    await communicator.send_json_to(send_frame(f"{directive}\n{prompt}"))
    accepted = await receive(communicator)
    assert accepted["type"] == "message.accepted", accepted
    frames = await receive_until(communicator, is_done, timeout=30)
    await communicator.disconnect()
    reply = await asyncio.to_thread(Message.objects.get, pk=accepted["assistant_message"]["id"])
    return frames, reply


@pytest.mark.parametrize(
    ("fault", "code", "upstream_text"),
    [
        ("http_400", "invalid_request", ""),
        ("http_401", "auth_failed", "Authentication Fails"),
        ("http_402", "insufficient_balance", "Insufficient Balance"),
        ("http_422", "invalid_request", ""),
        ("http_500", "server_error", ""),
        ("http_503", "overloaded", "Server overloaded"),
        ("http_429", "rate_limited", ""),
        ("not_sse", "bad_response", ""),
    ],
)
async def test_http_failure_maps_to_code(live_stack, owner_cookie, fault, code, upstream_text):
    frames, reply = await run_reply(owner_cookie, f"[sim fault={fault}]")

    done = frames[-1]
    assert done["status"] == "failed"
    assert done["error"]["code"] == code
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == code
    assert upstream_text in reply.error_detail
    assert "sk-simulator" not in reply.error_detail


@pytest.mark.parametrize("fault", ["http_429", "http_503"])
async def test_capacity_error_retried_then_completes(live_stack, owner_cookie, fault):
    frames, reply = await run_reply(owner_cookie, f"[sim fault={fault} times=2 rate=0]")

    waiting = [f for f in frames if f["type"] == "message.status" and f["status"] == "waiting"]
    assert [f["attempt"] for f in waiting] == [1, 2]
    assert frames[-1]["status"] == "complete"
    assert reply.status == Message.Status.COMPLETE
    assert reply.content


async def test_retries_exhausted_fail(live_stack, owner_cookie):
    frames, reply = await run_reply(owner_cookie, "[sim fault=http_503]")
    waiting = [f for f in frames if f["type"] == "message.status" and f["status"] == "waiting"]
    assert len(waiting) == 3
    assert reply.error_code == "overloaded"


async def test_connection_reset_keeps_partial_text(live_stack, owner_cookie):
    frames, reply = await run_reply(owner_cookie, "[sim reset_after=20 rate=0]")
    assert frames[-1]["status"] == "failed"
    assert reply.error_code == "stream_interrupted"
    assert reply.reasoning  # the tokens before the reset are kept


async def test_body_ends_without_finish(live_stack, owner_cookie):
    frames, reply = await run_reply(owner_cookie, "[sim eof_after=10 rate=0]")
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "stream_interrupted"


async def test_length_cut_truncated(live_stack, owner_cookie):
    frames, reply = await run_reply(owner_cookie, "[sim fault=length rate=0]")
    assert frames[-1]["status"] == "truncated"
    assert reply.status == Message.Status.TRUNCATED
    assert reply.finish_reason == "length"
    assert reply.error_code == ""
    assert reply.reasoning


async def test_insufficient_resource_fails_keeps_text(live_stack, owner_cookie):
    frames, reply = await run_reply(owner_cookie, "[sim fault=insufficient_system_resource rate=0]")
    assert reply.status == Message.Status.FAILED
    assert reply.error_code == "upstream_capacity"
    assert reply.finish_reason == "insufficient_system_resource"
    assert reply.content
    assert reply.completion_tokens > 0


async def test_missing_done_still_complete(live_stack, owner_cookie):
    frames, reply = await run_reply(owner_cookie, "[sim fault=no_done rate=0]")
    assert reply.status == Message.Status.COMPLETE
    assert reply.content


async def test_silent_pause_not_a_failure(live_stack, owner_cookie):
    # A thinking model may go quiet mid-reasoning; only the read timeout ends that.
    frames, reply = await run_reply(owner_cookie, "[sim pause_after=5 pause=3 rate=0]")
    assert reply.status == Message.Status.COMPLETE


async def test_history_sent_without_reasoning(live_stack, owner_cookie):
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(send_frame("[sim rate=0]\nfirst question"))
    accepted = await receive(communicator)
    await receive_until(communicator, is_done)
    await communicator.send_json_to(
        send_frame("[sim rate=0]\nsecond question", conversation=accepted["conversation"])
    )
    await receive(communicator)
    frames = await receive_until(communicator, is_done)
    await communicator.disconnect()
    # The simulator rejects reasoning_content in history and two user turns in a row,
    # as DeepSeek's reasoner does, so a complete second reply shows the history was valid.
    assert frames[-1]["status"] == "complete"


async def test_history_after_failed_reply_accepted(live_stack, owner_cookie):
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(send_frame("[sim fault=http_500]\nthis one fails"))
    accepted = await receive(communicator)
    failed = await receive_until(communicator, is_done)
    assert failed[-1]["status"] == "failed"
    await communicator.send_json_to(
        send_frame("[sim rate=0]\ntry again", conversation=accepted["conversation"])
    )
    await receive(communicator)
    frames = await receive_until(communicator, is_done)
    await communicator.disconnect()
    assert frames[-1]["status"] == "complete"
