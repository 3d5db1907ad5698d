"""Replies whose worker was lost: find them, end them, tell the open tabs.

A streaming reply's worker writes a heartbeat about once a second. A reply
whose heartbeat is older than `CHAT_STALE_HEARTBEAT_SECONDS` has lost its
worker (killed, machine gone); it ends `interrupted` with the text of its
last checkpoint, and its quota reservation is refunded. A reply still
`queued` after `CHAT_REQUEUE_AFTER_SECONDS` gets its task enqueued once more
(the first enqueue may have been lost with Redis, or with a killed worker that
had prefetched it); one still queued after `CHAT_STALE_QUEUED_SECONDS` is
given up as `interrupted` too.

Two callers share this logic: opening or sending in a conversation checks
that conversation (`chat.services.interrupt_stale_replies`), and the periodic
`chat.sweep_replies` task, run by Celery beat, checks every conversation, so
a tab left open on a reply of a lost worker updates without a reload.

Every state change here is a conditional UPDATE that repeats the state it
read, so a worker that writes a heartbeat in the meantime keeps its reply,
and two sweepers running at once end each reply once.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import quotas

from . import accounting
from .errors import reply_error_message
from .events import broadcast, done_event
from .models import Message
from .tasks import generate_reply

logger = logging.getLogger(__name__)

REQUEUE_MARK_PREFIX = "chat:requeued:"


def stale_heartbeat() -> timedelta:
    return timedelta(seconds=settings.CHAT_STALE_HEARTBEAT_SECONDS)


def stale_queued() -> timedelta:
    return timedelta(seconds=settings.CHAT_STALE_QUEUED_SECONDS)


def stale_condition(now) -> Q:
    """Replies whose worker is taken as lost at `now`."""
    return Q(status=Message.Status.STREAMING, heartbeat_at__lt=now - stale_heartbeat()) | Q(
        status=Message.Status.QUEUED, created_at__lt=now - stale_queued()
    )


def interrupt_stale(messages) -> list[Message]:
    """End the stale replies among `messages` as `interrupted` and settle their quota.

    `messages` is a queryset of messages (one conversation's, or all). Returns
    the replies this call ended, so the caller can announce them.
    """
    now = timezone.now()
    stale = messages.filter(role=Message.Role.ASSISTANT).filter(stale_condition(now))
    interrupted = []
    for reply in stale.select_related("conversation"):
        with transaction.atomic():
            # The condition repeats the state read above, so a worker that wrote a
            # heartbeat in the meantime keeps its reply.
            updated = Message.objects.filter(
                pk=reply.pk, status=reply.status, heartbeat_at=reply.heartbeat_at
            ).update(
                status=Message.Status.INTERRUPTED,
                error_code="interrupted",
                error_detail=str(reply_error_message("interrupted")),
                finished_at=now,
            )
            if not updated:
                continue
            reply = Message.objects.select_related("conversation__owner").get(pk=reply.pk)
            accounting.settle(reply)
        logger.warning(
            "Reply %s interrupted: it was %s, last heartbeat %s",
            reply.pk,
            reply.status,
            reply.heartbeat_at,
        )
        interrupted.append(reply)
    return interrupted


def settle_unsettled() -> list[Message]:
    """Settle replies that ended more than a minute ago with their reservation still open.

    Every path that ends a reply settles it in the same transaction; this
    catches rows left by older code or by a hand edit, so the quota and the
    ledger always follow the outcome table.
    """
    cutoff = timezone.now() - timedelta(minutes=1)
    unsettled = Message.objects.filter(
        role=Message.Role.ASSISTANT,
        status__in=Message.TERMINAL,
        quota_state=Message.QuotaState.RESERVED,
        finished_at__lt=cutoff,
    ).select_related("conversation__owner")
    settled = []
    for reply in unsettled:
        accounting.settle(reply)
        logger.warning("Reply %s ended %s with its quota open; settled now", reply.pk, reply.status)
        settled.append(reply)
    return settled


def requeue_unclaimed() -> list[Message]:
    """Enqueue once more the task of each reply queued for longer than the requeue delay.

    A reply is requeued at most once: a mark in the cache (Redis) remembers
    it. A duplicate task is harmless because a worker claims a reply only
    while it is `queued`.
    """
    now = timezone.now()
    after = timedelta(seconds=settings.CHAT_REQUEUE_AFTER_SECONDS)
    waiting = Message.objects.filter(
        role=Message.Role.ASSISTANT,
        status=Message.Status.QUEUED,
        created_at__lt=now - after,
        created_at__gte=now - stale_queued(),
    )
    requeued = []
    for reply in waiting:
        mark = f"{REQUEUE_MARK_PREFIX}{reply.pk}"
        if not cache.add(mark, 1, timeout=settings.CHAT_STALE_QUEUED_SECONDS * 2):
            continue
        generate_reply.delay(message_id=str(reply.pk))
        logger.warning("Reply %s still queued after %s; task enqueued again", reply.pk, after)
        requeued.append(reply)
    return requeued


@dataclass
class Sweep:
    interrupted: list[Message] = field(default_factory=list)
    requeued: list[Message] = field(default_factory=list)
    settled: list[Message] = field(default_factory=list)
    # (conversation id, message.done event) for each interrupted reply.
    events: list[tuple] = field(default_factory=list)


def sweep() -> Sweep:
    """Check every conversation once; return what changed and the events to send."""
    result = Sweep()
    result.interrupted = interrupt_stale(Message.objects.all())
    for reply in result.interrupted:
        quota = quotas.status_dict(reply.conversation.owner, reply.quota_class)
        result.events.append((reply.conversation_id, done_event(reply, quota)))
    result.requeued = requeue_unclaimed()
    result.settled = settle_unsettled()
    return result


async def announce(events) -> None:
    """Send each `message.done` to the sockets showing its conversation."""
    for conversation_id, event in events:
        try:
            await broadcast(conversation_id, event)
        except Exception:
            # The state is stored; a tab that misses this sees it on its next open.
            logger.exception("Could not announce the end of reply %s", event["message"])
