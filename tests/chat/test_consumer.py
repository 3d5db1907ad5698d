"""The chat websocket, driven in-process against a real worker, Redis and simulator."""

import asyncio
import json
import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from chat.models import Message
from tests.chat.websocket import (
    communicator_for,
    connect,
    is_done,
    receive,
    receive_until,
    send_frame,
)
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


async def test_anonymous_socket_closed():
    communicator = communicator_for(cookie=None)
    connected, code = await communicator.connect()
    assert connected is False
    assert code == 4401


async def test_foreign_origin_rejected(owner_cookie):
    communicator = communicator_for(owner_cookie, origin="http://evil.example")
    connected, _ = await communicator.connect()
    assert connected is False


async def test_outsider_open_not_found(owner, outsider_cookie):
    conversation = await asyncio.to_thread(make_conversation, owner)
    communicator = await connect(outsider_cookie)
    await communicator.send_json_to(
        {"type": "conversation.open", "conversation": str(conversation.id)}
    )
    frame = await receive(communicator)
    assert frame["type"] == "error"
    assert frame["code"] == "not_found"
    await communicator.disconnect()


async def test_outsider_send_not_found(owner, outsider_cookie):
    conversation = await asyncio.to_thread(make_conversation, owner)
    communicator = await connect(outsider_cookie)
    client_id = uuid.uuid4()
    await communicator.send_json_to(send_frame("hi", str(conversation.id), client_id))
    frame = await receive(communicator)
    assert frame == {
        "type": "error",
        "code": "not_found",
        "detail": "That conversation or message does not exist.",
        "retry_after": None,
        "client_id": str(client_id),
    }
    assert await asyncio.to_thread(Message.objects.count) == 0
    await communicator.disconnect()


async def test_outsider_stop_not_found(live_stack, owner_cookie, outsider_cookie):
    owner_socket = await connect(owner_cookie)
    await owner_socket.send_json_to(send_frame("[sim rate=20 reasoning=40 answer=10]\nslow"))
    accepted = await receive(owner_socket)
    reply_id = accepted["assistant_message"]["id"]

    outsider_socket = await connect(outsider_cookie)
    await outsider_socket.send_json_to({"type": "message.stop", "message": reply_id})
    frame = await receive(outsider_socket)
    assert frame["code"] == "not_found"

    frames = await receive_until(owner_socket, is_done)
    assert frames[-1]["status"] == "complete"
    await owner_socket.disconnect()
    await outsider_socket.disconnect()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "nope"}', "Unknown frame type"),
        ('{"type": "conversation.open", "conversation": 5}', "must be a UUID"),
        ('{"type": "message.send", "content": "x", "client_id": "abc"}', "must be a UUID"),
    ],
)
async def test_bad_frame_error_socket_stays_open(owner_cookie, raw, expected):
    communicator = await connect(owner_cookie)
    await communicator.send_to(text_data=raw)
    frame = await receive(communicator)
    assert frame["type"] == "error"
    assert frame["code"] == "invalid_input"
    assert expected in frame["detail"]
    # The socket still works after the error.
    await communicator.send_to(text_data='{"type": "nope"}')
    assert (await receive(communicator))["type"] == "error"
    await communicator.disconnect()


async def test_send_streams_reasoning_then_answer(live_stack, owner_cookie):
    communicator = await connect(owner_cookie)
    client_id = uuid.uuid4()
    await communicator.send_json_to(send_frame("[sim rate=0]\nWhat is 2 + 2?", client_id=client_id))
    accepted = await receive(communicator)
    assert accepted["type"] == "message.accepted"
    assert accepted["client_id"] == str(client_id)
    assert accepted["user_message"]["role"] == "user"
    assert accepted["assistant_message"]["status"] == "queued"

    frames = await receive_until(communicator, is_done)
    deltas = [f for f in frames if f["type"].endswith(".delta")]
    assert [f["seq"] for f in deltas] == list(range(1, len(deltas) + 1))
    kinds = [f["type"] for f in deltas]
    assert kinds[0] == "reasoning.delta"
    # All reasoning comes before the answer.
    assert kinds == sorted(kinds, key=lambda kind: kind != "reasoning.delta")
    done = frames[-1]
    assert done["status"] == "complete"
    assert done["error"] is None
    assert done["usage"]["completion_tokens"] > 0

    reply = await asyncio.to_thread(Message.objects.get, pk=accepted["assistant_message"]["id"])
    assert reply.reasoning == "".join(f["text"] for f in deltas if f["type"] == "reasoning.delta")
    assert reply.content == "".join(f["text"] for f in deltas if f["type"] == "content.delta")
    assert reply.status == Message.Status.COMPLETE
    assert reply.seq == deltas[-1]["seq"]
    assert reply.first_token_at is not None and reply.finished_at is not None
    await communicator.disconnect()


async def test_duplicate_client_id_not_second_message(live_stack, owner_cookie):
    communicator = await connect(owner_cookie)
    frame = send_frame("[sim rate=0]\nhello")
    await communicator.send_json_to(frame)
    first = await receive(communicator)
    await receive_until(communicator, is_done)

    await communicator.send_json_to(frame)
    second = await receive(communicator)
    assert second["type"] == "message.accepted"
    assert second["duplicate"] is True
    assert second["user_message"]["id"] == first["user_message"]["id"]
    assert second["assistant_message"]["id"] == first["assistant_message"]["id"]
    assert await asyncio.to_thread(Message.objects.count) == 2
    await communicator.disconnect()


async def test_stop_closes_upstream(live_stack, owner_cookie):
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(send_frame("[sim rate=10 reasoning=300]\nthink long"))
    accepted = await receive(communicator)
    reply_id = accepted["assistant_message"]["id"]
    await receive_until(communicator, lambda f: f["type"] == "reasoning.delta")

    await communicator.send_json_to({"type": "message.stop", "message": reply_id})
    frames = await receive_until(communicator, is_done, timeout=5)
    assert frames[-1]["status"] == "stopped"

    reply = await asyncio.to_thread(Message.objects.get, pk=reply_id)
    assert reply.status == Message.Status.STOPPED
    assert reply.reasoning  # what arrived is kept
    requests = httpx.get(f"{live_stack}/_sim/requests").json()
    assert any(r["client_disconnected"] for r in requests if "think long" in json.dumps(r["body"]))
    await communicator.disconnect()


async def test_stop_before_first_token(live_stack, owner_cookie):
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(send_frame("[sim queue=30 keepalive=1]\nqueued for long"))
    accepted = await receive(communicator)
    reply_id = accepted["assistant_message"]["id"]
    await receive_until(communicator, lambda f: f.get("status") == "streaming")

    await communicator.send_json_to({"type": "message.stop", "message": reply_id})
    frames = await receive_until(communicator, is_done, timeout=5)
    assert frames[-1]["status"] == "stopped"
    reply = await asyncio.to_thread(Message.objects.get, pk=reply_id)
    assert reply.content == ""
    assert reply.reasoning == ""
    await communicator.disconnect()


async def test_open_mid_stream_snapshot_then_deltas(live_stack, owner_cookie):
    first = await connect(owner_cookie)
    await first.send_json_to(send_frame("[sim rate=40 reasoning=60 answer=40]\nstream it"))
    accepted = await receive(first)
    reply_id = accepted["assistant_message"]["id"]
    await receive_until(first, lambda f: f["type"] == "reasoning.delta" and f["seq"] >= 3)

    second = await connect(owner_cookie)
    await second.send_json_to(
        {"type": "conversation.open", "conversation": accepted["conversation"]}
    )
    frames = await receive_until(second, is_done)
    snapshot = frames[0]
    assert snapshot["type"] == "snapshot"
    assert snapshot["message"] == reply_id
    assert snapshot["seq"] >= 3

    # What the second tab shows: the snapshot, then each delta it has not seen.
    reasoning, content, seq = snapshot["reasoning"], snapshot["content"], snapshot["seq"]
    for frame in frames[1:]:
        if frame["type"].endswith(".delta") and frame["seq"] > seq:
            assert frame["seq"] == seq + 1
            seq = frame["seq"]
            if frame["type"] == "reasoning.delta":
                reasoning += frame["text"]
            else:
                content += frame["text"]

    reply = await asyncio.to_thread(Message.objects.get, pk=reply_id)
    assert reasoning == reply.reasoning
    assert content == reply.content
    assert frames[-1]["seq"] == seq
    await first.disconnect()
    await second.disconnect()


async def test_error_detail_in_page_language(owner_cookie):
    communicator = await connect(owner_cookie, language="zh-CN,zh;q=0.9,en;q=0.5")
    await communicator.send_json_to(send_frame("   "))
    frame = await receive(communicator)
    assert frame["code"] == "invalid_input"
    assert frame["detail"] == "消息为空，请输入内容后再发送。"
    await communicator.disconnect()


async def test_open_interrupts_reply_of_lost_worker(owner, owner_cookie):
    def make_stale_reply():
        conversation = make_conversation(owner)
        make_message(conversation, "user", "q")
        reply = make_message(
            conversation,
            "assistant",
            "half an ans",
            status=Message.Status.STREAMING,
            heartbeat_at=timezone.now() - timedelta(minutes=5),
        )
        return conversation, reply

    conversation, reply = await asyncio.to_thread(make_stale_reply)
    communicator = await connect(owner_cookie)
    await communicator.send_json_to(
        {"type": "conversation.open", "conversation": str(conversation.id)}
    )
    frame = await receive(communicator)
    assert frame["type"] == "message.done"
    assert frame["message"] == str(reply.id)
    assert frame["status"] == "interrupted"
    assert frame["error"]["code"] == "interrupted"
    await communicator.disconnect()


async def test_second_tab_sees_new_exchange(live_stack, owner_cookie):
    first = await connect(owner_cookie)
    await first.send_json_to(send_frame("hello\n[sim rate=0]"))
    accepted = await receive(first)
    await receive_until(first, is_done)

    second = await connect(owner_cookie)
    await second.send_json_to(
        {"type": "conversation.open", "conversation": accepted["conversation"]}
    )
    await first.send_json_to(
        send_frame("and again\n[sim rate=0]", conversation=accepted["conversation"])
    )
    frames = await receive_until(second, is_done)
    # The open may be handled after the send, then a snapshot comes first.
    seen = next(frame for frame in frames if frame["type"] == "message.accepted")
    assert seen["user_message"]["content"] == "and again\n[sim rate=0]"
    assert frames[-1]["message"] == seen["assistant_message"]["id"]
    assert frames[-1]["status"] == "complete"
    await first.disconnect()
    await second.disconnect()
