"""Concurrent sends by one user never pass the daily or per-minute cap.

The sends come from sockets in this process, from sockets in this process and
the uvicorn process at once, and from threads that call the service directly.
Each send starts a new conversation, so only the quota can reject it. The
replies run on the real worker against the simulator.
"""

import asyncio
import json
import time

import pytest
import websockets
from django.utils import timezone

from accounts import quotas
from accounts.models import ModelClass, Plan, PlanLimit, QuotaCounter
from chat import services
from chat.errors import ChatError
from chat.models import Conversation, Message
from tests import concurrency
from tests.chat.websocket import EVENT_TIMEOUT, connect, receive, send_frame, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

DAILY_CAP = 10


@pytest.fixture
def capped_owner(owner):
    """The owner with 10 thinking messages a day, and no per-minute or in-flight cap in the way."""
    updated = PlanLimit.objects.filter(
        plan__slug=Plan.FREE, model_class=ModelClass.THINKING
    ).update(messages_per_day=DAILY_CAP, messages_per_minute=None, max_in_flight=100)
    assert updated == 1
    return owner


class InProcessSocket:
    """A chat socket served by this test process, through Channels' communicator."""

    where = "in-process"

    def __init__(self, communicator):
        self.communicator = communicator

    @classmethod
    async def open(cls, cookie):
        return cls(await connect(cookie))

    async def send(self, frame):
        await self.communicator.send_json_to(frame)

    async def receive(self):
        return await receive(self.communicator)

    async def close(self):
        await self.communicator.disconnect()


class ServerSocket:
    """A chat socket served by the uvicorn subprocess, over a real TCP connection."""

    where = "uvicorn"

    def __init__(self, connection):
        self.connection = connection

    @classmethod
    async def open(cls, cookie, base_url):
        connection = await websockets.connect(
            base_url.replace("http://", "ws://") + "/ws/chat/",
            origin=base_url,
            additional_headers={"Cookie": cookie},
            # The server is on loopback, so a proxy from the environment must not be used.
            proxy=None,
        )
        return cls(connection)

    async def send(self, frame):
        await self.connection.send(json.dumps(frame))

    async def receive(self):
        async with asyncio.timeout(EVENT_TIMEOUT):
            return json.loads(await self.connection.recv())

    async def close(self):
        await self.connection.close()


async def collect_verdicts(socket, client_ids):
    """Read frames until each send has its `message.accepted` or `error`, and return them by id.

    A sender also hears its own `message.accepted` a second time through the
    conversation's group, so only the first one per client_id is kept.
    """
    verdicts = {}
    while len(verdicts) < len(client_ids):
        frame = await socket.receive()
        if frame["type"] in ("message.accepted", "error"):
            assert frame.get("client_id") in client_ids, frame
            verdicts.setdefault(frame["client_id"], (socket.where, frame))
    return verdicts


async def race(sockets, sends_per_socket):
    """Send every message on every socket at once, and return the verdicts and seconds taken."""
    batches = [
        [send_frame(f"[sim rate=0]\nRace question {n}") for n in range(sends_per_socket)]
        for _ in sockets
    ]
    started = time.perf_counter()
    sends = [
        socket.send(frame)
        for socket, batch in zip(sockets, batches, strict=True)
        for frame in batch
    ]
    await asyncio.gather(*sends)
    results = await asyncio.gather(
        *(
            collect_verdicts(socket, [frame["client_id"] for frame in batch])
            for socket, batch in zip(sockets, batches, strict=True)
        )
    )
    seconds = time.perf_counter() - started
    verdicts = {}
    for result in results:
        verdicts.update(result)
    return verdicts, seconds


def counter_used(owner):
    return list(
        QuotaCounter.objects.filter(
            subject=quotas.subject_for(owner), model_class=ModelClass.THINKING
        ).values_list("used", flat=True)
    )


def check_verdicts(verdicts, total):
    assert len(verdicts) == total
    accepted = [frame for _, frame in verdicts.values() if frame["type"] == "message.accepted"]
    rejected = [frame for _, frame in verdicts.values() if frame["type"] == "error"]
    assert len(accepted) == DAILY_CAP
    assert len(rejected) == total - DAILY_CAP
    assert {frame["duplicate"] for frame in accepted} == {False}
    assert {frame["code"] for frame in rejected} == {"quota_exceeded"}

    reset = quotas.next_reset(timezone.now()).strftime("%H:%M")
    for frame in rejected:
        assert frame["retry_after"] > 0
        assert frame["retry_after"] <= 24 * 3600
        assert f"You have used all {DAILY_CAP} messages" in frame["detail"]
        assert f"resets at {reset}" in frame["detail"]
    return accepted


async def check_stored(owner, reply_ids):
    # The counter is checked before the replies end and again after, because
    # every reply completes and settling must not move it.
    assert await asyncio.to_thread(counter_used, owner) == [DAILY_CAP]
    replies = await asyncio.to_thread(concurrency.wait_for_replies, owner, DAILY_CAP)

    assert len(replies) == DAILY_CAP
    assert {str(reply.id) for reply in replies} == set(reply_ids)
    assert {reply.status for reply in replies} == {Message.Status.COMPLETE}
    assert {reply.quota_state for reply in replies} == {Message.QuotaState.COUNTED}
    user_messages = Message.objects.filter(conversation__owner=owner, role=Message.Role.USER)
    assert await asyncio.to_thread(user_messages.count) == DAILY_CAP
    conversations = Conversation.objects.filter(owner=owner)
    assert await asyncio.to_thread(conversations.count) == DAILY_CAP
    assert await asyncio.to_thread(counter_used, owner) == [DAILY_CAP]


async def test_fifty_sends_ten_accepted(live_stack, capped_owner):
    cookie = await asyncio.to_thread(session_cookie, capped_owner)
    sockets = [await InProcessSocket.open(cookie) for _ in range(5)]

    verdicts, seconds = await race(sockets, sends_per_socket=10)

    print(f"\nquota race, 5 in-process sockets x 10 sends: 50 verdicts in {seconds:.2f} s")
    accepted = check_verdicts(verdicts, total=50)
    await check_stored(capped_owner, [frame["assistant_message"]["id"] for frame in accepted])
    for socket in sockets:
        await socket.close()


async def test_cap_holds_across_processes(web_server, capped_owner):
    # database_sync_to_async runs all of a process's calls on one shared thread
    # (asgiref's thread-sensitive mode), so sends within one process never
    # reserve at the same moment. Half of the sockets go
    # through uvicorn, so two processes with their own connections compete
    # for the same user row and counter.
    cookie = await asyncio.to_thread(session_cookie, capped_owner)
    sockets = [await InProcessSocket.open(cookie) for _ in range(5)]
    sockets += [await ServerSocket.open(cookie, web_server) for _ in range(5)]

    verdicts, seconds = await race(sockets, sends_per_socket=5)

    accepted_where = [
        where for where, frame in verdicts.values() if frame["type"] == "message.accepted"
    ]
    print(
        f"\nquota race, 5 in-process + 5 uvicorn sockets x 5 sends: 50 verdicts in "
        f"{seconds:.2f} s; accepted in-process {accepted_where.count('in-process')}, "
        f"over uvicorn {accepted_where.count('uvicorn')}"
    )
    accepted = check_verdicts(verdicts, total=50)
    await check_stored(capped_owner, [frame["assistant_message"]["id"] for frame in accepted])
    for socket in sockets:
        await socket.close()


def send_from_threads(owner, threads, sends_per_thread):
    """Send from `threads` threads at once as `owner`, and return the outcomes."""
    return concurrency.send_from_threads([owner] * threads, sends_per_thread)


async def test_threaded_sends_ten_accepted(live_stack, capped_owner):
    # Each thread has its own database connection, so ten transactions wait
    # on the user's row lock at once, more than the two processes above.
    started = time.perf_counter()
    outcomes = await asyncio.to_thread(send_from_threads, capped_owner, 10, 5)
    seconds = time.perf_counter() - started

    print(f"\nquota race, 10 threads x 5 accept_message calls: 50 outcomes in {seconds:.2f} s")
    accepted = [outcome for outcome in outcomes if isinstance(outcome, services.Accepted)]
    rejected = [outcome for outcome in outcomes if isinstance(outcome, ChatError)]
    assert len(outcomes) == 50
    assert len(accepted) == DAILY_CAP
    assert len(rejected) == 50 - DAILY_CAP
    assert {error.code for error in rejected} == {"quota_exceeded"}
    assert min(error.retry_after for error in rejected) > 0
    await check_stored(capped_owner, [str(a.assistant_message.id) for a in accepted])


async def test_threaded_minute_cap_holds(live_stack, capped_owner):
    # The daily counter alone would not stop these sends, because only the
    # user's row lock keeps two sends from counting the same recent messages.
    updated = await asyncio.to_thread(
        PlanLimit.objects.filter(plan__slug=Plan.FREE, model_class=ModelClass.THINKING).update,
        messages_per_minute=3,
    )
    assert updated == 1

    outcomes = await asyncio.to_thread(send_from_threads, capped_owner, 10, 5)

    accepted = [outcome for outcome in outcomes if isinstance(outcome, services.Accepted)]
    rejected = [outcome for outcome in outcomes if isinstance(outcome, ChatError)]
    assert len(accepted) == 3
    assert len(rejected) == 47
    assert {error.code for error in rejected} == {"rate_limited"}
    assert min(error.retry_after for error in rejected) > 0
    assert await asyncio.to_thread(counter_used, capped_owner) == [3]
    replies = await asyncio.to_thread(concurrency.wait_for_replies, capped_owner, 3)
    assert {reply.status for reply in replies} == {Message.Status.COMPLETE}
    # No counted send is more than a minute from leaving the window, so a send
    # that waited for the row lock must not be told to wait longer.
    assert max(error.retry_after for error in rejected) <= 60
