"""Bad input on every socket event: an `error` naming what was wrong, the socket stays open.

Each case goes through the real consumer (Channels' communicator, the
database and Redis), then checks that nothing was stored and that the
socket still answers a good frame.
"""

import asyncio
import json
import uuid

import pytest

from chat.models import Conversation, Message
from tests.chat.websocket import connect, receive
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ID = "6f1c2f4e-1d7a-4c57-9a51-0a3d5b0c9e11"
MISSING = "00000000-0000-4000-8000-000000000000"


def send(**fields):
    frame = {"type": "message.send", "conversation": None, "content": "hi", "client_id": CLIENT_ID}
    frame.update(fields)
    return json.dumps(frame)


def without(field, frame_type="message.send"):
    frame = json.loads(send())
    frame["type"] = frame_type
    del frame[field]
    return json.dumps(frame)


# (case id, raw text frame, expected code, a fragment of the detail)
TEXT_CASES = [
    ("not-json", "not json", "invalid_input", "not valid JSON"),
    ("truncated-json", '{"type": "message.send", "content": "x', "invalid_input", "not valid JSON"),
    ("empty-frame", "", "invalid_input", "not valid JSON"),
    ("deeply-nested", "[" * 100_000 + "]" * 100_000, "invalid_input", "not valid JSON"),
    ("array", "[1, 2]", "invalid_input", "JSON object"),
    ("string", '"message.send"', "invalid_input", "JSON object"),
    ("null", "null", "invalid_input", "JSON object"),
    ("no-type", '{"content": "hi"}', "invalid_input", "Unknown frame type"),
    ("unknown-type", '{"type": "message.delete"}', "invalid_input", "Unknown frame type"),
    ("type-number", '{"type": 7}', "invalid_input", "Unknown frame type"),
    ("type-list", '{"type": ["message.send"]}', "invalid_input", "Unknown frame type"),
    ("type-object", '{"type": {"a": 1}}', "invalid_input", "Unknown frame type"),
    ("send-no-client-id", without("client_id"), "invalid_input", "`client_id` must be a UUID"),
    ("send-client-id-int", send(client_id=5), "invalid_input", "`client_id` must be a UUID"),
    ("send-client-id-junk", send(client_id="abc"), "invalid_input", "`client_id` must be a UUID"),
    ("send-no-content", without("content"), "invalid_input", "`content` must be a string"),
    ("send-content-number", send(content=42), "invalid_input", "`content` must be a string"),
    ("send-content-list", send(content=["hi"]), "invalid_input", "`content` must be a string"),
    ("send-content-empty", send(content=" \n "), "invalid_input", "The message is empty"),
    ("send-content-nul", send(content="a\x00b"), "invalid_input", "NUL character"),
    (
        "send-content-1mb",
        send(content="x" * 1_048_576),
        "invalid_input",
        "has 1048576 characters; the limit is 20000",
    ),
    (
        "send-content-surrogate",
        '{"type": "message.send", "conversation": null, "content": "a\\ud800b", '
        f'"client_id": "{CLIENT_ID}"}}',
        "invalid_input",
        "`content` is not valid Unicode",
    ),
    ("send-conversation-int", send(conversation=3), "invalid_input", "`conversation` must be"),
    ("send-conversation-junk", send(conversation="x"), "invalid_input", "`conversation` must be"),
    ("send-conversation-missing", send(conversation=MISSING), "not_found", "does not exist"),
    ("send-model-number", send(model=1), "invalid_input", "`model` must be a string"),
    ("send-model-nul", send(model="deep\x00seek"), "invalid_input", "`model` contains a NUL"),
    (
        "send-key-surrogate",
        '{"type": "message.send", "\\udc80": "\\udc80", "content": "x", '
        f'"client_id": "{CLIENT_ID}"}}',
        "invalid_input",
        "`\\udc80` is not valid Unicode",
    ),
    ("send-model-unknown", send(model="no-such-model"), "model_unavailable", "not available"),
    ("open-no-conversation", '{"type": "conversation.open"}', "invalid_input", "`conversation`"),
    (
        "open-conversation-null",
        '{"type": "conversation.open", "conversation": null}',
        "invalid_input",
        "`conversation` must be a UUID",
    ),
    (
        "open-conversation-missing",
        json.dumps({"type": "conversation.open", "conversation": MISSING}),
        "not_found",
        "does not exist",
    ),
    ("stop-no-message", '{"type": "message.stop"}', "invalid_input", "`message` must be a UUID"),
    (
        "stop-message-list",
        '{"type": "message.stop", "message": []}',
        "invalid_input",
        "`message` must be a UUID",
    ),
    (
        "stop-message-missing",
        json.dumps({"type": "message.stop", "message": MISSING}),
        "not_found",
        "does not exist",
    ),
]


async def assert_still_open(communicator):
    await communicator.send_to(text_data='{"type": "ping"}')
    frame = await receive(communicator)
    assert frame["type"] == "error"
    assert "Unknown frame type" in frame["detail"]


async def assert_nothing_stored():
    assert await asyncio.to_thread(Message.objects.count) == 0
    assert await asyncio.to_thread(Conversation.objects.count) == 0


@pytest.mark.parametrize(
    ("raw", "code", "detail"),
    [case[1:] for case in TEXT_CASES],
    ids=[case[0] for case in TEXT_CASES],
)
async def test_bad_text_frame(owner_cookie, raw, code, detail):
    communicator = await connect(owner_cookie)
    # send_input, not send_to, because the communicator rejects an empty frame.
    await communicator.send_input({"type": "websocket.receive", "text": raw})

    frame = await receive(communicator)

    assert frame["type"] == "error"
    assert frame["code"] == code
    assert detail in frame["detail"]
    if json.loads(send()).keys() <= _keys(raw) and frame["code"] != "invalid_input":
        assert frame["client_id"] == CLIENT_ID
    await assert_still_open(communicator)
    await assert_nothing_stored()
    await communicator.disconnect()


def _keys(raw):
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError):
        return set()
    return set(frame) if isinstance(frame, dict) else set()


@pytest.mark.parametrize(
    "payload",
    [b'{"type": "conversation.open"}', b"\xff\xfe\x00 not utf-8", b""],
    ids=["json-as-binary", "invalid-utf8", "empty"],
)
async def test_binary_frame_rejected(owner_cookie, payload):
    communicator = await connect(owner_cookie)
    await communicator.send_input({"type": "websocket.receive", "bytes": payload})

    frame = await receive(communicator)

    assert frame["type"] == "error"
    assert frame["code"] == "invalid_input"
    assert "binary" in frame["detail"]
    await assert_still_open(communicator)
    await communicator.disconnect()


async def test_other_users_conversation_not_found(owner, outsider_cookie):
    conversation = await asyncio.to_thread(make_conversation, owner)
    communicator = await connect(outsider_cookie)
    frames = [
        {"type": "conversation.open", "conversation": str(conversation.id)},
        json.loads(send(conversation=str(conversation.id), client_id=str(uuid.uuid4()))),
    ]
    for sent in frames:
        await communicator.send_json_to(sent)
        frame = await receive(communicator)
        assert frame["code"] == "not_found"
        assert frame["detail"] == "That conversation or message does not exist."
    assert await asyncio.to_thread(Message.objects.count) == 0
    await assert_still_open(communicator)
    await communicator.disconnect()


async def test_stop_other_users_reply_not_found(owner, outsider_cookie):
    def reply_of_owner():
        conversation = make_conversation(owner)
        make_message(conversation, "user", "q")
        return make_message(conversation, "assistant", status=Message.Status.QUEUED)

    reply = await asyncio.to_thread(reply_of_owner)
    communicator = await connect(outsider_cookie)
    await communicator.send_json_to({"type": "message.stop", "message": str(reply.id)})

    frame = await receive(communicator)

    assert frame["code"] == "not_found"
    reply = await asyncio.to_thread(Message.objects.get, pk=reply.pk)
    assert reply.status == Message.Status.QUEUED
    await assert_still_open(communicator)
    await communicator.disconnect()


async def test_stop_own_user_message_not_found(owner, owner_cookie):
    def question_of_owner():
        return make_message(make_conversation(owner), "user", "q")

    question = await asyncio.to_thread(question_of_owner)
    communicator = await connect(owner_cookie)
    await communicator.send_json_to({"type": "message.stop", "message": str(question.id)})

    frame = await receive(communicator)

    assert frame["code"] == "not_found"
    await communicator.disconnect()


# Through the real web server: frames the consumer never sees.


def real_socket(web_server, cookie):
    from websockets.sync.client import connect as ws_connect

    url = web_server.replace("http://", "ws://") + "/ws/chat/"
    return ws_connect(
        url, additional_headers={"Cookie": cookie, "Origin": web_server}, open_timeout=10
    )


@pytest.mark.e2e
def test_invalid_utf8_text_frame_closes(web_server, owner_cookie):
    from websockets.exceptions import ConnectionClosed

    with real_socket(web_server, owner_cookie) as socket:
        # A text frame whose bytes are not UTF-8; a browser cannot send one.
        with socket.send_context():
            socket.protocol.send_text(b"\xff\xfe{}")
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    # RFC 6455 section 8.1: the endpoint fails the connection with 1007.
    assert closed.value.rcvd.code == 1007


@pytest.mark.e2e
def test_large_frame_answered_not_closed(web_server, owner_cookie):
    with real_socket(web_server, owner_cookie) as socket:
        socket.send(send(content="y" * 1_048_576))
        frame = json.loads(socket.recv(timeout=10))
        assert frame["code"] == "invalid_input"
        assert "1048576 characters" in frame["detail"]
        socket.send('{"type": "ping"}')
        assert "Unknown frame type" in json.loads(socket.recv(timeout=10))["detail"]
