"""Regenerate and edit over the websocket, with the upstream request bodies checked.

Each reply runs through the Celery worker against the simulator, which logs
the body of every request; the bodies show which history went upstream.
"""

import asyncio
import uuid

import httpx
import pytest

from chat.history import path_items
from chat.models import Message
from tests.chat.websocket import connect, is_done, receive, receive_until, send_frame

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

FAST = "[sim rate=0 reasoning=3 answer=8]"


def upstream_bodies(simulator, marker):
    """Return the logged request bodies whose last message contains `marker`."""
    entries = httpx.get(f"{simulator}/_sim/requests").json()
    bodies = [entry["body"] for entry in entries if isinstance(entry["body"], dict)]
    return [body for body in bodies if marker in body["messages"][-1]["content"]]


def roles_and_texts(body):
    return [(message["role"], message["content"]) for message in body["messages"]]


async def exchange(communicator, frame):
    await communicator.send_json_to(frame)
    accepted = await receive(communicator)
    assert accepted["type"] == "message.accepted", accepted
    await receive_until(
        communicator,
        lambda f: is_done(f) and f["message"] == accepted["assistant_message"]["id"],
        timeout=30,
    )
    return accepted


async def stored(message_id):
    return await asyncio.to_thread(Message.objects.get, pk=message_id)


async def test_regenerate_sends_question_only(owner_cookie, live_stack):
    marker = uuid.uuid4().hex[:8]
    communicator = await connect(owner_cookie)
    first = await exchange(communicator, send_frame(f"Question {marker}\n{FAST}"))
    old_reply = await stored(first["assistant_message"]["id"])

    again = await exchange(
        communicator,
        {
            "type": "message.regenerate",
            "message": old_reply.id.hex,
            "client_id": str(uuid.uuid4()),
        },
    )
    await communicator.disconnect()

    new_reply = await stored(again["assistant_message"]["id"])
    assert again["user_message"]["id"] == first["user_message"]["id"]
    assert new_reply.parent_id == old_reply.parent_id
    assert new_reply.status == Message.Status.COMPLETE
    bodies = upstream_bodies(live_stack, marker)
    assert len(bodies) == 2
    # The regenerate request carries the question alone, not the old answer.
    assert roles_and_texts(bodies[1]) == [("user", f"Question {marker}\n{FAST}")]


async def test_edit_follows_edited_branch(owner_cookie, live_stack):
    marker = uuid.uuid4().hex[:8]
    communicator = await connect(owner_cookie)
    first = await exchange(communicator, send_frame(f"One {marker}\n{FAST}"))
    conversation = first["conversation"]
    second = await exchange(
        communicator,
        {
            **send_frame(f"Two {marker}\n{FAST}", conversation=conversation),
            "parent": first["assistant_message"]["id"],
        },
    )

    edited = await exchange(
        communicator,
        {
            "type": "message.edit",
            "message": second["user_message"]["id"],
            "content": f"Two edited {marker}\n{FAST}",
            "client_id": str(uuid.uuid4()),
        },
    )
    await communicator.disconnect()

    first_reply = await stored(first["assistant_message"]["id"])
    edited_question = await stored(edited["user_message"]["id"])
    assert edited_question.parent_id == first_reply.id
    assert edited["user_message"]["parent"] == str(first_reply.id)
    [body] = upstream_bodies(live_stack, f"Two edited {marker}")
    assert roles_and_texts(body) == [
        ("user", f"One {marker}\n{FAST}"),
        ("assistant", first_reply.content),
        ("user", f"Two edited {marker}\n{FAST}"),
    ]


async def test_send_follows_branch_on_screen(owner_cookie, live_stack):
    marker = uuid.uuid4().hex[:8]
    communicator = await connect(owner_cookie)
    first = await exchange(communicator, send_frame(f"Pick {marker}\n{FAST}"))
    version_one = await stored(first["assistant_message"]["id"])
    await exchange(
        communicator,
        {
            "type": "message.regenerate",
            "message": str(version_one.id),
            "client_id": str(uuid.uuid4()),
        },
    )

    # The reader switched back to version 1 and asks a follow-up there.
    await exchange(
        communicator,
        {
            **send_frame(f"Follow-up {marker}\n{FAST}", conversation=first["conversation"]),
            "parent": str(version_one.id),
        },
    )
    await communicator.disconnect()

    [body] = upstream_bodies(live_stack, f"Follow-up {marker}")
    assert roles_and_texts(body) == [
        ("user", f"Pick {marker}\n{FAST}"),
        ("assistant", version_one.content),
        ("user", f"Follow-up {marker}\n{FAST}"),
    ]


async def test_regenerate_resend_not_duplicated(owner_cookie, live_stack):
    communicator = await connect(owner_cookie)
    first = await exchange(communicator, send_frame(f"Once\n{FAST}"))
    frame = {
        "type": "message.regenerate",
        "message": first["assistant_message"]["id"],
        "client_id": str(uuid.uuid4()),
    }
    again = await exchange(communicator, frame)

    await communicator.send_json_to(frame)
    repeat = await receive(communicator)
    await communicator.disconnect()

    assert repeat["type"] == "message.accepted"
    assert repeat["duplicate"] is True
    assert repeat["assistant_message"]["id"] == again["assistant_message"]["id"]
    count = await asyncio.to_thread(
        Message.objects.filter(conversation_id=first["conversation"]).count
    )
    assert count == 3


async def test_regenerate_counts_against_quota(owner_cookie, live_stack):
    communicator = await connect(owner_cookie)
    first = await exchange(communicator, send_frame(f"Count me\n{FAST}"))
    again = await exchange(
        communicator,
        {
            "type": "message.regenerate",
            "message": first["assistant_message"]["id"],
            "client_id": str(uuid.uuid4()),
        },
    )
    await communicator.disconnect()

    before = first["quota"]["remaining"]
    after = again["quota"]["remaining"]
    assert before is not None
    assert after == before - 1


async def test_regenerate_other_users_reply_not_found(owner_cookie, outsider_cookie, live_stack):
    owner_socket = await connect(owner_cookie)
    first = await exchange(owner_socket, send_frame(f"Mine\n{FAST}"))
    await owner_socket.disconnect()

    outsider_socket = await connect(outsider_cookie)
    client_id = str(uuid.uuid4())
    await outsider_socket.send_json_to(
        {
            "type": "message.regenerate",
            "message": first["assistant_message"]["id"],
            "client_id": client_id,
        }
    )
    error = await receive(outsider_socket)
    await outsider_socket.disconnect()

    assert error["type"] == "error"
    assert error["code"] == "not_found"
    assert error["client_id"] == client_id


async def test_send_parent_must_be_reply(owner_cookie, live_stack):
    communicator = await connect(owner_cookie)
    first = await exchange(communicator, send_frame(f"Parent check\n{FAST}"))
    client_id = str(uuid.uuid4())
    await communicator.send_json_to(
        {
            **send_frame("next", conversation=first["conversation"], client_id=client_id),
            "parent": first["user_message"]["id"],
        }
    )
    error = await receive(communicator)
    await communicator.disconnect()

    assert error["code"] == "invalid_input"
    assert "parent" in error["detail"]
    assert error["client_id"] == client_id


class Node:
    def __init__(self, id, parent_id, role, content):
        self.id, self.parent_id, self.role, self.content = id, parent_id, role, content


def test_path_items_follow_parents():
    messages = [
        Node(1, None, "user", "q1"),
        Node(2, 1, "assistant", "a1"),
        Node(3, 1, "assistant", "a1 again"),
        Node(4, 3, "user", "q2"),
        Node(5, 2, "user", "q2 on the first branch"),
    ]

    items = path_items(messages, 4)

    assert [(item.role, item.content) for item in items] == [
        ("user", "q1"),
        ("assistant", "a1 again"),
        ("user", "q2"),
    ]


def test_path_items_stop_at_cycle():
    messages = [Node(1, 2, "user", "a"), Node(2, 1, "assistant", "b")]

    assert len(path_items(messages, 2)) == 2


def test_page_links_parentless_messages():
    from chat.tree import with_parents

    messages = [
        {"id": "q1", "role": "user", "parent": None},
        {"id": "a1", "role": "assistant", "parent": None},
        {"id": "q2", "role": "user", "parent": None},
        {"id": "a2", "role": "assistant", "parent": None},
    ]

    linked = with_parents(messages)

    assert [message["parent"] for message in linked] == [None, "q1", "a1", "q2"]


def test_page_keeps_edited_first_question_root():
    from chat.tree import with_parents

    messages = [
        {"id": "q1", "role": "user", "parent": None},
        {"id": "a1", "role": "assistant", "parent": "q1"},
        {"id": "q1b", "role": "user", "parent": None},
        {"id": "a1b", "role": "assistant", "parent": "q1b"},
    ]

    linked = with_parents(messages)

    assert [message["parent"] for message in linked] == [None, "q1", None, "q1b"]
