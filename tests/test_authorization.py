"""Who reaches what: every URL and every socket event, for each kind of visitor.

The visitors are the conversation's owner, an outsider, an anonymous
visitor, a guest of the public demo, the admin of the owner's team and a
staff member outside the team. Other people's conversations, replies and
teams answer "not found" to everyone but their owner, so an outsider
cannot tell a foreign id from a made-up one. Staff read conversations only
through the dashboard, where each opening is recorded.
"""

import asyncio
import uuid

import pytest
from django.urls import reverse

from accounts.models import User
from chat.events import broadcast
from chat.models import Message, ShareLink
from teams.models import Membership, Team
from tests.chat.websocket import connect, receive, send_frame, session_cookie
from tests.factories import make_conversation, make_message, make_user

VISITORS = ["anonymous", "guest", "outsider", "owner", "team_admin", "staff"]
SIGNED_IN = set(VISITORS) - {"anonymous"}


class World:
    """The owner's conversation with a reply, a share link and a team, plus every visitor."""

    def __init__(self):
        self.owner = make_user("owner@example.com")
        self.conversation = make_conversation(self.owner, "Private plans")
        self.question = make_message(self.conversation, Message.Role.USER, "Secret question")
        self.reply = make_message(
            self.conversation,
            Message.Role.ASSISTANT,
            "Secret answer",
            parent=self.question,
        )
        self.share = ShareLink.objects.create(conversation=self.conversation)
        self.team = Team.objects.create(name="Owner's team")
        Membership.objects.create(team=self.team, user=self.owner, role="owner")
        self.team_admin = make_user("admin@example.com")
        Membership.objects.create(team=self.team, user=self.team_admin, role="admin")
        self.visitors = {
            "anonymous": None,
            "guest": User.objects.create_guest(),
            "outsider": make_user("outsider@example.com"),
            "owner": self.owner,
            "team_admin": self.team_admin,
            "staff": make_user("staff@example.com", is_staff=True, is_superuser=True),
        }


@pytest.fixture
def world(db):
    return World()


def client_for(client, world, visitor):
    if world.visitors[visitor] is not None:
        client.force_login(world.visitors[visitor])
    return client


def goes_to_sign_in(response):
    return response.status_code == 302 and "/accounts/sign-in/" in response["Location"]


def goes_to_admin_sign_in(response):
    return response.status_code == 302 and "/admin/login/" in response["Location"]


# (name, URL builder, method, data, {visitor: expected}) where expected is a
# status code, "sign-in" or "admin-sign-in"; visitors not listed get `other`.
# The owner of the conversation is also its team's owner, so a team manager.
TEAM_MANAGERS_AND_STAFF = {
    "anonymous": "sign-in",
    "staff": 200,
    "owner": 200,
    "team_admin": 200,
    "other": 404,
}


def owner_only(ok=200):
    return {"anonymous": "sign-in", "owner": ok, "other": 404}


def any_signed_in(ok=200):
    return {"anonymous": "sign-in", "other": ok}


CASES = [
    ("chat index", lambda w: reverse("chat:index"), "get", None, any_signed_in()),
    (
        "conversation page",
        lambda w: reverse("chat:conversation", args=[w.conversation.pk]),
        "get",
        None,
        owner_only(),
    ),
    (
        "conversation list",
        lambda w: reverse("chat:conversation_list"),
        "get",
        None,
        any_signed_in(),
    ),
    (
        "rename",
        lambda w: reverse("chat:conversation_update", args=[w.conversation.pk]),
        "post",
        '{"title": "Taken over"}',
        owner_only(),
    ),
    (
        "delete",
        lambda w: reverse("chat:conversation_delete", args=[w.conversation.pk]),
        "post",
        {},
        owner_only(),
    ),
    (
        "share link",
        lambda w: reverse("chat:share_link", args=[w.conversation.pk]),
        "get",
        None,
        owner_only(),
    ),
    (
        "revoke share link",
        lambda w: reverse("chat:share_revoke", args=[w.conversation.pk]),
        "post",
        {},
        owner_only(),
    ),
    (
        "public share page",
        lambda w: reverse("chat:shared", args=[w.share.token]),
        "get",
        None,
        {"other": 200},
    ),
    (
        "export JSON",
        lambda w: reverse("chat:export_json", args=[w.conversation.pk]),
        "get",
        None,
        owner_only(),
    ),
    (
        "export Markdown",
        lambda w: reverse("chat:export_markdown", args=[w.conversation.pk]),
        "get",
        None,
        owner_only(),
    ),
    ("import form", lambda w: reverse("chat:import"), "get", None, any_signed_in()),
    ("preferences", lambda w: reverse("chat:preferences"), "get", None, any_signed_in()),
    (
        "endpoint health",
        lambda w: reverse("chat:endpoint_health"),
        "get",
        None,
        {"staff": 200, "other": "admin-sign-in"},
    ),
    (
        "team page",
        lambda w: reverse("teams:detail", args=[w.team.pk]),
        "get",
        None,
        {"anonymous": "sign-in", "owner": 200, "team_admin": 200, "other": 404},
    ),
    (
        "share with team",
        lambda w: reverse("teams:share", args=[w.conversation.pk]),
        "post",
        {"team": ""},
        owner_only(302),
    ),
    (
        "dashboard",
        lambda w: reverse("dashboard:overview"),
        "get",
        None,
        TEAM_MANAGERS_AND_STAFF,
    ),
    (
        "dashboard user page",
        lambda w: reverse("dashboard:user", args=[w.owner.pk]),
        "get",
        None,
        TEAM_MANAGERS_AND_STAFF,
    ),
    (
        "dashboard conversation",
        lambda w: reverse("dashboard:conversation", args=[w.conversation.pk]),
        "get",
        None,
        {"anonymous": "sign-in", "staff": 200, "other": 404},
    ),
    (
        "dashboard users CSV",
        lambda w: reverse("dashboard:users_csv"),
        "get",
        None,
        TEAM_MANAGERS_AND_STAFF,
    ),
    (
        "metrics without a token",
        lambda w: reverse("metrics"),
        "get",
        None,
        {"other": 404},
    ),
    (
        "admin",
        lambda w: reverse("admin:index"),
        "get",
        None,
        {"staff": 200, "other": "admin-sign-in"},
    ),
    (
        "admin conversation",
        lambda w: reverse("admin:chat_conversation_change", args=[w.conversation.pk]),
        "get",
        None,
        {"staff": 200, "other": "admin-sign-in"},
    ),
]


@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize(
    ("url", "method", "data", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_url_access(client, world, visitor, url, method, data, expected):
    want = expected.get(visitor, expected.get("other"))
    visitor_client = client_for(client, world, visitor)
    if isinstance(data, str):
        response = visitor_client.post(url(world), data, content_type="application/json")
    else:
        response = getattr(visitor_client, method)(url(world), data or {})

    if want == "sign-in":
        assert goes_to_sign_in(response), response.status_code
    elif want == "admin-sign-in":
        assert goes_to_admin_sign_in(response), response.status_code
    else:
        assert response.status_code == want
    if want != 200 or visitor not in ("owner", "staff"):
        # Nobody but the owner, and staff through their own pages, sees the text.
        body = b"".join(response) if response.streaming else response.content
        if url(world) != reverse("chat:shared", args=[world.share.token]):
            assert b"Secret answer" not in body


def test_foreign_conversation_unchanged(client, world):
    for visitor in SIGNED_IN - {"owner"}:
        client.force_login(world.visitors[visitor])
        client.post(
            reverse("chat:conversation_update", args=[world.conversation.pk]),
            '{"title": "Taken over"}',
            content_type="application/json",
        )
        client.post(reverse("chat:conversation_delete", args=[world.conversation.pk]))
    world.conversation.refresh_from_db()
    assert world.conversation.title == "Private plans"
    assert world.conversation.messages.count() == 2
    assert ShareLink.objects.filter(pk=world.share.pk).exists()


def test_unknown_id_looks_like_foreign_id(client, world):
    client.force_login(world.visitors["outsider"])
    foreign = client.get(reverse("chat:conversation", args=[world.conversation.pk]))
    made_up = client.get(reverse("chat:conversation", args=[uuid.uuid4()]))
    assert foreign.status_code == made_up.status_code == 404
    assert foreign.content == made_up.content


# Socket events


def socket_frames(world):
    return {
        "conversation.open": {
            "type": "conversation.open",
            "conversation": str(world.conversation.pk),
        },
        "message.send": send_frame("Let me in", str(world.conversation.pk), uuid.uuid4()),
        "message.stop": {"type": "message.stop", "message": str(world.reply.pk)},
        "message.regenerate": {
            "type": "message.regenerate",
            "message": str(world.reply.pk),
            "client_id": str(uuid.uuid4()),
        },
        "message.edit": {
            "type": "message.edit",
            "message": str(world.question.pk),
            "content": "Edited by someone else",
            "client_id": str(uuid.uuid4()),
        },
    }


EVENTS = ["conversation.open", "message.send", "message.stop", "message.regenerate", "message.edit"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("visitor", ["guest", "outsider", "team_admin", "staff"])
@pytest.mark.parametrize("event", EVENTS)
async def test_socket_event_foreign_not_found(visitor, event):
    world = await asyncio.to_thread(World)
    cookie = await asyncio.to_thread(session_cookie, world.visitors[visitor])
    frame = socket_frames(world)[event]
    communicator = await connect(cookie)

    await communicator.send_json_to(frame)
    answer = await receive(communicator)
    # Whatever the socket tried, it must not now hear the owner's conversation.
    await broadcast(world.conversation.pk, {"type": "reasoning.delta", "text": "Secret"})
    overheard = await communicator.receive_nothing(timeout=0.5)

    assert answer["type"] == "error"
    assert answer["code"] == "not_found"
    assert overheard is True
    counts = await asyncio.to_thread(
        lambda: (world.conversation.messages.count(), Message.objects.count())
    )
    assert counts == (2, 2)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_socket_owner_open_hears_conversation():
    # The control for the test above: the owner's socket does hear the broadcast.
    world = await asyncio.to_thread(World)
    cookie = await asyncio.to_thread(session_cookie, world.owner)
    communicator = await connect(cookie)

    await communicator.send_json_to(socket_frames(world)["conversation.open"])
    # Frames are handled in order, so the answer to this one means the open is done.
    await communicator.send_json_to({"type": "ping"})
    assert (await receive(communicator))["code"] == "invalid_input"
    await broadcast(world.conversation.pk, {"type": "reasoning.delta", "text": "Secret"})
    heard = await receive(communicator)

    assert heard == {"type": "reasoning.delta", "text": "Secret"}
    await communicator.disconnect()
