"""A worker killed or stopped mid-reply, with real processes.

Each test runs its own web server, worker and beat on a private Redis, with
the lost-worker timeouts scaled down (tests/faults/conftest.py).
"""

import signal

import pytest

from accounts.models import QuotaCounter
from chat.models import Message, UsageRecord
from tests.chat.websocket import session_cookie
from tests.factories import make_user
from tests.faults.conftest import Socket, wait_for
from tests.private_servers import start_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

# About 25 s of streaming at 20 tokens a second: long enough to be cut.
LONG = "[sim rate=20 reasoning=400 answer=100]\nExplain consensus protocols."


def used_today(user):
    counters = QuotaCounter.objects.filter(subject=f"user:{user.pk}")
    return sum(counters.values_list("used", flat=True))


def is_delta_after(seq):
    return lambda frame: frame["type"].endswith(".delta") and frame["seq"] >= seq


def is_done(frame):
    return frame["type"] == "message.done"


def test_sigkill_mid_reply_interrupted_once(site, fault_env):
    user = make_user("killed@example.com")
    socket = Socket(site.web.base_url, session_cookie(user))
    socket.send_message(LONG)
    accepted = socket.receive_until(lambda frame: frame["type"] == "message.accepted")
    reply_id = accepted["assistant_message"]["id"]
    # A checkpoint is written about once a second; wait for two.
    socket.receive_until(is_delta_after(40), timeout=15)
    wait_for(lambda: Message.objects.get(pk=reply_id).seq >= 20, timeout=10, what="a checkpoint")

    site.worker.kill()

    done = socket.receive_until(is_done, timeout=20)
    assert done["message"] == reply_id
    assert done["status"] == "interrupted"
    assert done["error"]["code"] == "interrupted"
    assert done["quota"]["remaining"] == done["quota"]["limit"]
    reply = Message.objects.get(pk=reply_id)
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.reasoning  # the checkpointed text stays
    assert reply.quota_state == Message.QuotaState.REFUNDED
    assert used_today(user) == 0
    kept = (reply.reasoning, reply.content, reply.seq, reply.finished_at)

    # A new worker gets the killed worker's task back from the broker (acks_late)
    # and must not write a second reply or change the first.
    second = site.add(start_worker("fault-worker-2", fault_env))
    wait_for(
        lambda: "is not queued any more" in second.log(),
        timeout=45,
        what="the redelivered task in the new worker's log",
    )
    reply = Message.objects.get(pk=reply_id)
    assert (reply.reasoning, reply.content, reply.seq, reply.finished_at) == kept
    assert reply.status == Message.Status.INTERRUPTED
    assert Message.objects.filter(role=Message.Role.ASSISTANT).count() == 1
    assert UsageRecord.objects.filter(message_id=reply_id).count() == 1
    assert [frame["status"] for frame in socket.frames if is_done(frame)] == ["interrupted"]

    # The conversation is not blocked: the next question gets a complete reply.
    socket.send_message("[sim rate=0]\nAnd now?", conversation=accepted["conversation"])
    assert socket.receive_until(is_done, timeout=30)["status"] == "complete"
    socket.close()


def test_sigterm_mid_reply_completes(site):
    user = make_user("graceful@example.com")
    socket = Socket(site.web.base_url, session_cookie(user))
    socket.send_message("[sim rate=40 reasoning=80 answer=80]\nDescribe a graceful shutdown.")
    accepted = socket.receive_until(lambda frame: frame["type"] == "message.accepted")
    socket.receive_until(is_delta_after(5), timeout=15)

    site.worker.process.send_signal(signal.SIGTERM)

    done = socket.receive_until(is_done, timeout=30)
    assert done["status"] == "complete"
    reply = Message.objects.get(pk=accepted["assistant_message"]["id"])
    assert reply.status == Message.Status.COMPLETE
    assert reply.finish_reason == "stop"
    assert reply.quota_state == Message.QuotaState.COUNTED
    # The worker finished the reply, then left by itself.
    assert site.worker.process.wait(timeout=30) == 0
    socket.close()
