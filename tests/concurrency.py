"""Sends that start at the same moment from several threads, each on its own database connection."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from chat import live, services
from chat.errors import ChatError
from chat.models import Message

REPLIES_TIMEOUT_SECONDS = 60
WORKER_GONE_SECONDS = 5


def send_from_threads(users, sends_per_thread):
    """Call accept_message from one thread per entry of `users`, all starting together.

    Returns the outcomes (Accepted or ChatError) thread by thread, in the
    order of `users`, each thread's in the order it sent them.
    """
    start = threading.Barrier(len(users))

    def send_batch(thread):
        start.wait()
        outcomes = []
        try:
            for n in range(sends_per_thread):
                try:
                    outcomes.append(
                        services.accept_message(
                            users[thread],
                            conversation_id=None,
                            new_conversation_id=uuid.uuid4(),
                            content=f"[sim rate=0]\nThread {thread} question {n}",
                            client_id=uuid.uuid4(),
                        )
                    )
                except ChatError as error:
                    outcomes.append(error)
        finally:
            connection.close()
        return outcomes

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        batches = list(pool.map(send_batch, range(len(users))))
    return [outcome for batch in batches for outcome in batch]


def wait_for_replies(owner, count):
    """Poll the database until `count` replies of `owner` (or of anyone, for None) have ended.

    Returns the replies. A test whose sends reach the session's worker waits here,
    so that no reply is still writing when the test's tables are emptied.
    """
    deadline = time.monotonic() + REPLIES_TIMEOUT_SECONDS
    replies = Message.objects.filter(role=Message.Role.ASSISTANT)
    if owner is not None:
        replies = replies.filter(conversation__owner=owner)
    while time.monotonic() < deadline:
        if replies.filter(status__in=Message.TERMINAL).count() >= count:
            break
        time.sleep(0.2)
    return list(replies)


def end_replies_in_flight(timeout=REPLIES_TIMEOUT_SECONDS):
    """Stop every queued or streaming reply and wait until no worker writes one.

    Queued replies are stopped in the database. Claimed ones get the cancel
    flag that Stop sets, so their worker ends them. A streaming row whose
    heartbeat has not moved for `WORKER_GONE_SECONDS` has no worker (a test
    made it, or killed its worker) and is left as it is.
    """
    flags = redis.Redis.from_url(settings.REDIS_URL)
    in_flight = Message.objects.filter(role=Message.Role.ASSISTANT, status__in=Message.IN_FLIGHT)
    for reply in in_flight:
        flags.set(live.cancel_key(reply.id), 1, ex=live.CANCEL_TTL_SECONDS)
        services.stop_queued_reply(reply)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stale_before = timezone.now() - timedelta(seconds=WORKER_GONE_SECONDS)
        worked_on = Q(status=Message.Status.QUEUED) | Q(heartbeat_at__gt=stale_before)
        if not in_flight.filter(worked_on).exists():
            return
        time.sleep(0.1)
    raise AssertionError(
        f"replies still in flight after {timeout} s: {list(in_flight)}; "
        "read the worker log in test-artifacts/ for the reply ids"
    )
