"""A reply whose `message.done` never reaches the page is resynced by the page's watchdog.

Each test stores a conversation with the ORM whose reply is `streaming`, with no
worker behind it, and opens it in the browser. It then changes the row without
any broadcast, as when a worker is killed after storing the outcome but before
announcing it. No frame about the reply arrives any more, so only the page's
watchdog (static/js/chat.js, 20 s of silence) can bring the stored state.
"""

import json
import re
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import expect

from chat.errors import reply_error_message
from chat.models import Message
from tests.e2e.test_chat_browser import last_reply, new_page, screenshot, sign_up
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

PARTIAL_ANSWER = "Merge sort splits the list"
FINAL_ANSWER = "Merge sort splits the list in halves, sorts each half and merges them."
# The watchdog resyncs 20 to 25 s after the last frame, and the rest is margin for a busy machine.
RESYNC_TIMEOUT_MS = 30_000
# The page's first snapshot follows its socket's open, which a busy server handles late.
FIRST_SNAPSHOT_TIMEOUT_S = 20


def open_streaming_reply(browser, web_server, email):
    """Sign up, store a conversation whose reply is streaming, and open it.

    Returns the page, the stored reply and the list of frames the page sent.
    """
    page = new_page(browser, web_server)
    sent_frames = []
    received_frames = []

    def record_frames(socket):
        socket.on("framesent", lambda payload: sent_frames.append(payload))
        socket.on("framereceived", lambda payload: received_frames.append(payload))

    page.on("websocket", record_frames)
    sign_up(page, email)

    user = get_user_model().objects.get(email=email)
    conversation = make_conversation(user, title="Sorting")
    question = make_message(conversation, Message.Role.USER, "How does merge sort work?")
    now = timezone.now()
    reply = make_message(
        conversation,
        Message.Role.ASSISTANT,
        PARTIAL_ANSWER,
        status=Message.Status.STREAMING,
        parent=question,
        started_at=now,
        heartbeat_at=now,
    )

    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    reply_view = last_reply(page)
    expect(reply_view).to_have_class(re.compile(r"\bin-flight\b"))
    expect(reply_view.locator(".answer")).to_have_text(PARTIAL_ANSWER)
    expect(page.locator("[data-stop]")).to_be_visible()
    # The server handles the page's first conversation.open, which also ends stale
    # replies, some time after the socket opens. The row may change only after that,
    # or that first open, not the watchdog, would bring the new state.
    wait_for_snapshot(page, received_frames, reply)
    return page, reply, sent_frames


def wait_for_snapshot(page, received_frames, reply):
    """Wait until the page has received a snapshot of `reply`."""
    deadline = time.monotonic() + FIRST_SNAPSHOT_TIMEOUT_S
    while not frames_about(received_frames, "snapshot", reply):
        assert time.monotonic() < deadline, f"no snapshot of {reply.id}: {received_frames}"
        page.wait_for_timeout(100)  # lets Playwright deliver the frame events


def frames_about(frames, frame_type, reply):
    """Return the frames of `frame_type` among the JSON `frames` that name `reply`."""
    decoded = [json.loads(frame) for frame in frames]
    return [
        frame
        for frame in decoded
        if frame.get("type") == frame_type and frame.get("message") == str(reply.id)
    ]


def test_lost_done_resynced_to_complete(browser, web_server):
    page, reply, sent_frames = open_streaming_reply(browser, web_server, "resync@example.com")

    # The outcome is stored, but no `message.done` is broadcast.
    Message.objects.filter(pk=reply.pk).update(
        status=Message.Status.COMPLETE, content=FINAL_ANSWER, finished_at=timezone.now()
    )

    reply_view = last_reply(page)
    expect(reply_view).not_to_have_class(re.compile(r"\bin-flight\b"), timeout=RESYNC_TIMEOUT_MS)
    expect(reply_view.locator(".answer")).to_have_text(FINAL_ANSWER)
    expect(reply_view.locator(".message-status")).to_be_hidden()
    expect(reply_view.locator("[data-regenerate]")).to_be_visible()
    expect(reply_view.locator("[data-regenerate]")).to_be_enabled()
    expect(reply_view.locator("[data-copy-answer]")).to_be_visible()
    expect(page.locator("[data-stop]")).to_be_hidden()
    expect(page.locator("[data-send]")).to_be_visible()
    screenshot(page, "resync-complete")

    assert len(frames_about(sent_frames, "conversation.open", reply)) >= 1, sent_frames
    assert page.js_errors == []


def test_lost_worker_resynced_to_interrupted(browser, web_server):
    page, reply, sent_frames = open_streaming_reply(browser, web_server, "lost@example.com")

    # The worker died: its last heartbeat is older than the 60 s that mark a lost worker.
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=90))

    reply_view = last_reply(page)
    expect(reply_view).not_to_have_class(re.compile(r"\bin-flight\b"), timeout=RESYNC_TIMEOUT_MS)
    expect(reply_view.locator(".message-status")).to_have_text(
        str(reply_error_message("interrupted"))
    )
    expect(reply_view.locator(".answer")).to_have_text(PARTIAL_ANSWER)
    expect(reply_view.locator("[data-retry]")).to_be_visible()
    expect(page.locator("[data-stop]")).to_be_hidden()
    screenshot(page, "resync-interrupted")

    reply.refresh_from_db()
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.content == PARTIAL_ANSWER
    assert len(frames_about(sent_frames, "conversation.open", reply)) >= 1, sent_frames
    assert page.js_errors == []
