"""Helpers for driving the chat websocket in-process with Channels' communicator."""

import asyncio
import json
import uuid

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from chatsite.asgi import application

EVENT_TIMEOUT = 20


def session_cookie(user) -> str:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def communicator_for(cookie=None, origin="http://localhost", language=None):
    headers = [(b"host", b"localhost")]
    if origin:
        headers.append((b"origin", origin.encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if language:
        headers.append((b"accept-language", language.encode()))
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


async def connect(cookie, language=None):
    communicator = communicator_for(cookie, language=language)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator, timeout=EVENT_TIMEOUT):
    return json.loads(await communicator.receive_from(timeout=timeout))


async def receive_until(communicator, predicate, timeout=EVENT_TIMEOUT):
    """Return every frame up to and including the first one matching `predicate`."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await receive(communicator, timeout)
            frames.append(frame)
            if predicate(frame):
                return frames


def is_done(frame):
    return frame["type"] == "message.done"


def send_frame(content, conversation=None, client_id=None):
    return {
        "type": "message.send",
        "conversation": conversation,
        "content": content,
        "client_id": str(client_id or uuid.uuid4()),
    }
