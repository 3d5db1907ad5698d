"""A delta lost on the way to the page (a full channel drops it) is recovered from a snapshot.

Playwright sits between the page and the server on the websocket and drops
one delta, as channels_redis does when a slow socket's channel is full. The
page must notice the gap in `seq`, ask for a snapshot, and end up showing
exactly the stored reply.
"""

import json
import re

import pytest
from playwright.sync_api import expect

from chat.models import Message
from tests.e2e.test_chat_browser import last_reply, new_page, send, sign_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def test_lost_delta_recovered_from_snapshot(browser, web_server):
    page = new_page(browser, web_server)
    from_page = []
    dropped = []

    def between(socket):
        server = socket.connect_to_server()

        def to_page(message):
            frame = json.loads(message)
            if frame.get("type") == "reasoning.delta" and frame["seq"] == 3 and not dropped:
                dropped.append(frame)  # lost, as a full channel loses it
                return
            socket.send(message)

        def to_server(message):
            from_page.append(json.loads(message))
            server.send(message)

        server.on_message(to_page)
        socket.on_message(to_server)

    page.route_web_socket(re.compile(r"/ws/chat/$"), between)
    sign_up(page, "gap@example.com")
    send(page, "[sim rate=30 reasoning=40 answer=30]\nFill the gap.")

    reply_view = last_reply(page)
    expect(reply_view.locator(".answer")).not_to_be_empty(timeout=30_000)
    expect(page.locator("[data-stop]")).to_be_hidden(timeout=30_000)  # the reply ended

    reply = Message.objects.filter(role=Message.Role.ASSISTANT).latest("created_at")
    assert reply.status == Message.Status.COMPLETE
    assert len(dropped) == 1
    snapshot_requests = [
        frame
        for frame in from_page
        if frame["type"] == "conversation.open" and frame.get("message") == str(reply.id)
    ]
    assert snapshot_requests, from_page
    # The page shows the whole stored reasoning: the dropped text came back.
    assert reply_view.locator(".reasoning-body").text_content() == reply.reasoning
    assert dropped[0]["text"] in reply.reasoning
    assert page.js_errors == []
