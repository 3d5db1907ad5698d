"""The periodic sweep: replies of lost workers end `interrupted`, unclaimed ones are requeued."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from accounts.models import QuotaCounter
from chat import replies, runner, services, sweeper, tasks
from chat.events import group_name
from chat.models import Message, UsageRecord
from tests.chat.websocket import connect, is_done, receive_until
from tests.factories import make_conversation, make_message


def accept(user, content="[sim rate=0]\nHello", conversation_id=None):
    return services.accept_message(
        user,
        conversation_id=conversation_id,
        new_conversation_id=uuid.uuid4(),
        content=content,
        client_id=uuid.uuid4(),
    )


def lose_worker(reply, *, seconds_ago=61, content="half an ans"):
    """Make `reply` look claimed by a worker that died `seconds_ago`."""
    then = timezone.now() - timedelta(seconds=seconds_ago)
    Message.objects.filter(pk=reply.pk).update(
        status=Message.Status.STREAMING,
        started_at=then,
        heartbeat_at=then,
        content=content,
        seq=3,
    )


def used_today(user):
    return sum(
        QuotaCounter.objects.filter(subject=f"user:{user.pk}").values_list("used", flat=True)
    )


@pytest.mark.django_db
def test_sweep_interrupts_lost_worker_refunds(owner):
    accepted = accept(owner)
    reply = accepted.assistant_message
    assert used_today(owner) == 1
    lose_worker(reply)

    result = sweeper.sweep()

    assert [r.id for r in result.interrupted] == [reply.id]
    reply.refresh_from_db()
    assert reply.status == Message.Status.INTERRUPTED
    assert reply.error_code == "interrupted"
    assert reply.content == "half an ans"  # the checkpointed text stays
    assert reply.quota_state == Message.QuotaState.REFUNDED
    assert used_today(owner) == 0
    assert UsageRecord.objects.get(message=reply).outcome == "interrupted"
    [(conversation_id, event)] = result.events
    assert conversation_id == accepted.conversation.id
    assert event["type"] == "message.done"
    assert event["status"] == "interrupted"
    assert event["quota"]["remaining"] == event["quota"]["limit"]


@pytest.mark.django_db
def test_sweep_leaves_live_replies_alone(owner, outsider):
    live_reply = accept(owner).assistant_message
    lose_worker(live_reply, seconds_ago=5)
    fresh_queued = accept(outsider, "another").assistant_message

    result = sweeper.sweep()

    assert result.interrupted == []
    live_reply.refresh_from_db()
    fresh_queued.refresh_from_db()
    assert live_reply.status == Message.Status.STREAMING
    assert fresh_queued.status == Message.Status.QUEUED
    assert used_today(owner) == used_today(outsider) == 1


@pytest.mark.django_db
def test_sweep_twice_ends_reply_once(owner):
    reply = accept(owner).assistant_message
    lose_worker(reply)

    assert len(sweeper.sweep().interrupted) == 1
    assert sweeper.sweep().interrupted == []
    assert used_today(owner) == 0
    assert UsageRecord.objects.filter(message=reply).count() == 1


@pytest.mark.django_db
def test_sweep_gives_up_long_queued(owner):
    reply = accept(owner).assistant_message
    Message.objects.filter(pk=reply.pk).update(created_at=timezone.now() - timedelta(minutes=11))

    result = sweeper.sweep()

    assert [r.id for r in result.interrupted] == [reply.id]
    assert used_today(owner) == 0


@pytest.mark.django_db
def test_heartbeat_during_sweep_keeps_reply(owner):
    reply = accept(owner).assistant_message
    lose_worker(reply)
    stale = list(Message.objects.filter(pk=reply.pk))
    # The worker writes a heartbeat between the sweep's read and its update.
    Message.objects.filter(pk=reply.pk).update(heartbeat_at=timezone.now())

    class Snapshot:
        """A queryset stand-in that returns the rows as the sweep read them."""

        def filter(self, *args, **kwargs):
            return self

        def select_related(self, *args):
            return stale

    assert sweeper.interrupt_stale(Snapshot()) == []
    reply.refresh_from_db()
    assert reply.status == Message.Status.STREAMING


@pytest.mark.django_db
def test_worker_outcome_after_sweep_not_stored(owner):
    reply = accept(owner).assistant_message
    lose_worker(reply)
    sweeper.sweep()
    reply = Message.objects.select_related("chat_model").get(pk=reply.pk)

    # The worker was only cut off from the database and comes back with its outcome.
    finished = replies._finish(
        reply,
        {"status": Message.Status.COMPLETE, "content": "the whole answer", "seq": 9},
        None,
    )

    assert finished.status == Message.Status.INTERRUPTED
    assert finished.content == "half an ans"
    assert finished.quota_state == Message.QuotaState.REFUNDED
    assert used_today(owner) == 0


@pytest.mark.django_db
def test_send_accepted_when_broker_refuses(owner, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(tasks.generate_reply, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        accepted = accept(owner)

    assert len(callbacks) == 1
    assert accepted.duplicate is False
    assert accepted.assistant_message.status == Message.Status.QUEUED


# With the real worker, Redis and simulator.


def broker_down(**kwargs):
    raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def lost_enqueue(user, seconds_ago):
    """A send accepted while the broker refused its task, `seconds_ago`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks.generate_reply, "delay", broker_down)
        accepted = accept(user, "[sim rate=0]\nrequeue me")
    reply = accepted.assistant_message
    Message.objects.filter(conversation=accepted.conversation).update(
        created_at=F("created_at") - timedelta(seconds=seconds_ago)
    )
    return accepted.conversation, reply


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_sweep_requeues_unclaimed_reply_once(live_stack, owner, owner_cookie):
    conversation, reply = await asyncio.to_thread(lost_enqueue, owner, 45)
    socket = await connect(owner_cookie)
    await socket.send_json_to({"type": "conversation.open", "conversation": str(conversation.id)})

    result = await asyncio.to_thread(sweeper.sweep)
    assert [r.id for r in result.requeued] == [reply.id]
    assert cache.get(f"{sweeper.REQUEUE_MARK_PREFIX}{reply.pk}") == 1

    frames = await receive_until(socket, lambda f: is_done(f) and f["message"] == str(reply.id))
    assert frames[-1]["status"] == "complete"
    stored = await asyncio.to_thread(Message.objects.get, pk=reply.pk)
    assert stored.status == Message.Status.COMPLETE
    assert stored.content
    # A second sweep does not enqueue it again.
    assert (await asyncio.to_thread(sweeper.sweep)).requeued == []
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_sweep_task_tells_open_tabs(owner):
    def make_lost():
        conversation = make_conversation(owner)
        make_message(conversation, "user", "q")
        reply = make_message(
            conversation,
            "assistant",
            "partial",
            status=Message.Status.STREAMING,
            heartbeat_at=timezone.now() - timedelta(minutes=2),
        )
        return conversation, reply

    conversation, reply = await asyncio.to_thread(make_lost)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation.id), channel)

    counts = await asyncio.to_thread(tasks.sweep_replies)

    assert counts == {"interrupted": 1, "requeued": 0}
    message = await asyncio.wait_for(layer.receive(channel), 10)
    assert message["event"]["type"] == "message.done"
    assert message["event"]["message"] == str(reply.id)
    assert message["event"]["status"] == "interrupted"


@pytest.mark.django_db(transaction=True)
@pytest.mark.e2e
async def test_redelivered_task_makes_no_second_reply(live_stack, owner_cookie):
    socket = await connect(owner_cookie)
    await socket.send_json_to(
        {
            "type": "message.send",
            "conversation": None,
            "content": "[sim rate=0]\nonce",
            "client_id": str(uuid.uuid4()),
        }
    )
    frames = await receive_until(socket, is_done)
    reply_id = frames[-1]["message"]
    before = await asyncio.to_thread(Message.objects.get, pk=reply_id)

    # The broker hands the same task over again, as after a lost acknowledgement.
    await asyncio.to_thread(runner.run, replies.run_reply(reply_id))

    after = await asyncio.to_thread(Message.objects.get, pk=reply_id)
    assert after.status == before.status == Message.Status.COMPLETE
    assert after.content == before.content
    assert after.finished_at == before.finished_at
    assert await asyncio.to_thread(Message.objects.count) == 2
    assert await asyncio.to_thread(UsageRecord.objects.filter(message_id=reply_id).count) == 1
    await socket.disconnect()


@pytest.mark.django_db
def test_worker_dies_before_settle_nothing_half_stored(owner, monkeypatch):
    reply = accept(owner).assistant_message
    lose_worker(reply, seconds_ago=0)
    reply = Message.objects.select_related("chat_model").get(pk=reply.pk)

    def killed(*args, **kwargs):
        raise SystemExit("worker killed between storing the outcome and settling it")

    monkeypatch.setattr(replies.accounting, "settle", killed)
    with pytest.raises(SystemExit):
        replies._finish(reply, {"status": Message.Status.COMPLETE, "content": "all"}, None)
    monkeypatch.undo()

    reply.refresh_from_db()
    # The outcome rolled back with the settlement: the reply is still streaming,
    # so the sweep ends it later and refunds, instead of a complete reply with
    # its quota left reserved.
    assert reply.status == Message.Status.STREAMING
    assert reply.quota_state == Message.QuotaState.RESERVED


@pytest.mark.django_db
def test_sweep_settles_ended_unsettled_reply(owner):
    reply = accept(owner).assistant_message
    Message.objects.filter(pk=reply.pk).update(
        status=Message.Status.COMPLETE,
        content="done",
        finished_at=timezone.now() - timedelta(minutes=2),
    )

    result = sweeper.sweep()

    assert [r.id for r in result.settled] == [reply.id]
    reply.refresh_from_db()
    assert reply.quota_state == Message.QuotaState.COUNTED
    assert used_today(owner) == 1
    assert UsageRecord.objects.filter(message=reply, counted=True).count() == 1
    assert sweeper.sweep().settled == []
