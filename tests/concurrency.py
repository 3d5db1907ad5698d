"""Sends that start at the same moment from several threads, each on its own database connection."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from chat import services
from chat.errors import ChatError
from chat.models import Message

REPLIES_TIMEOUT_SECONDS = 60


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
