"""Time `chat.services.accept_message` in one process, with no load around it.

Run with pytest, which creates and drops the test database:

    .venv/bin/pytest bench/accept_timing.py -s -p no:cacheprovider

Each case sends 10 messages to warm up, then times 200. Every send commits
its own transaction and enqueues its reply task on Redis, where nothing
consumes it. The reply is then marked complete so that the next send is
not busy, and that UPDATE is inside the timed span. Plan limits are raised so that no
send is refused but every check still runs. "CPU" is this process's CPU
time (Python, the ORM, the driver), not PostgreSQL's.
"""

import time

import pytest

from accounts.models import PlanLimit
from chat.models import Message
from teams.models import Membership, Team
from tests.factories import make_user
from tests.teams.helpers import send

pytestmark = pytest.mark.django_db(transaction=True)

WARM_UP = 10
TIMED = 200


def send_and_finish(user, conversation_id=None):
    accepted = send(user, conversation_id=conversation_id)
    Message.objects.filter(pk=accepted.assistant_message.pk).update(status=Message.Status.COMPLETE)
    return accepted


def report(label, send):
    for _ in range(WARM_UP):
        send()
    walls = []
    cpu_start = time.process_time()
    for _ in range(TIMED):
        started = time.perf_counter()
        send()
        walls.append(time.perf_counter() - started)
    cpu_ms = (time.process_time() - cpu_start) / TIMED * 1000
    walls.sort()
    p50 = walls[TIMED // 2] * 1000
    p95 = walls[int(TIMED * 0.95)] * 1000
    print(f"\n{label}: wall p50 {p50:.1f} ms, p95 {p95:.1f} ms; CPU {cpu_ms:.1f} ms a send")
    return p50


def test_accept_message_timing():
    PlanLimit.objects.update(messages_per_day=100_000, messages_per_minute=100_000, max_in_flight=5)
    user = make_user("timing@example.com")
    member = make_user("member@example.com")
    team = Team.objects.create(name="Timing", created_by=member)
    Membership.objects.create(team=team, user=member, role=Membership.Role.OWNER)
    conversation = send_and_finish(user).conversation

    timings = [
        report("new conversation", lambda: send_and_finish(user)),
        report("follow-up", lambda: send_and_finish(user, conversation.id)),
        report("team member, new conversation", lambda: send_and_finish(member)),
    ]

    assert all(timing > 0 for timing in timings)
