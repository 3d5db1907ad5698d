"""Redis restarted mid-reply: web and worker reconnect by themselves, nothing is lost.

The test's Redis is private and runs without persistence, so a restart
loses every key: the Celery queue, the channel layer's groups and the live
reply buffers, as a crash of a production Redis would.
"""

import time

import pytest
from websockets.exceptions import ConnectionClosed

from chat.models import Message
from tests.chat.websocket import session_cookie
from tests.factories import make_user
from tests.faults.conftest import Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


class Page:
    """Applies frames as static/js/chat.js does: snapshots replace, deltas append by seq."""

    def __init__(self, reply_id):
        self.reply_id = reply_id
        self.seq = 0
        self.reasoning = ""
        self.content = ""
        self.done = None
        self.snapshots = 0

    def apply(self, frame, socket, conversation):
        if frame.get("message") != self.reply_id:
            return
        if frame["type"] == "snapshot":
            self.snapshots += 1
            self.seq = frame["seq"]
            self.reasoning, self.content = frame["reasoning"], frame["content"]
            if frame["status"] not in ("queued", "streaming"):
                self.done = frame
        elif frame["type"].endswith(".delta"):
            if frame["seq"] <= self.seq:
                return
            if frame["seq"] != self.seq + 1:
                ask_snapshot(socket, conversation, self.reply_id)
                return
            self.seq = frame["seq"]
            if frame["type"] == "reasoning.delta":
                self.reasoning += frame["text"]
            else:
                self.content += frame["text"]
        elif frame["type"] == "message.done":
            if frame["seq"] > self.seq:
                ask_snapshot(socket, conversation, self.reply_id)
            else:
                self.done = frame


def ask_snapshot(socket, conversation, reply_id):
    socket.send({"type": "conversation.open", "conversation": conversation, "message": reply_id})


def reconnect(socket, conversation, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.open()
            socket.send({"type": "conversation.open", "conversation": conversation})
            return
        except (OSError, ConnectionClosed):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_redis_restart_mid_reply_loses_nothing(site, private_redis):
    user = make_user("redis-restart@example.com")
    socket = Socket(site.web.base_url, session_cookie(user))
    socket.send_message("[sim rate=30 reasoning=240 answer=90]\nWhat survives a restart?")
    accepted = socket.receive_until(lambda frame: frame["type"] == "message.accepted")
    conversation = accepted["conversation"]
    page = Page(accepted["assistant_message"]["id"])
    socket.receive_until(lambda frame: frame["type"].endswith(".delta") and frame["seq"] >= 20)

    private_redis.restart(down_seconds=1.0)

    reconnects = 0
    deadline = time.monotonic() + 60
    while page.done is None:
        assert time.monotonic() < deadline, f"reply never ended; frames: {socket.frames[-5:]}"
        try:
            frame = socket.receive_until(lambda frame: True, timeout=5)
        except TimeoutError:
            # A quiet socket may have lost its group with Redis: open the conversation again.
            ask_snapshot(socket, conversation, page.reply_id)
            continue
        except (ConnectionClosed, OSError):
            reconnects += 1
            reconnect(socket, conversation)
            continue
        page.apply(frame, socket, conversation)

    reply = Message.objects.get(pk=page.reply_id)
    assert reply.status == Message.Status.COMPLETE
    assert page.done["status"] == "complete"
    assert page.reasoning == reply.reasoning
    assert page.content == reply.content
    assert reply.finish_reason == "stop"
    assert not Message.objects.filter(status__in=Message.IN_FLIGHT).exists()

    # Both processes work on the restarted Redis without a restart of their own.
    socket.send_message("[sim rate=0]\nStill there?", conversation=conversation)
    done = socket.receive_until(lambda frame: frame["type"] == "message.done", timeout=30)
    assert done["status"] == "complete"
    socket.close()
