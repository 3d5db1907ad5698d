"""Removal for good of conversations their owners deleted long enough ago.

Deleting a conversation only hides it (`Conversation.deleted_at`), so the
chat page can offer undo and staff can restore one from the admin on
request. After `CONVERSATION_PURGE_DAYS` the sweep deletes it with its
messages and share link. Usage records stay, without their message, so
the ledger, the quotas and the dashboard keep every figure.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Conversation

logger = logging.getLogger(__name__)

# Conversations deleted per transaction, so one purge never holds locks long.
BATCH_SIZE = 200


def purge_deleted(now=None) -> int:
    """Delete the conversations hidden for longer than the purge delay and return how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.CONVERSATION_PURGE_DAYS)
    expired = Conversation.objects.filter(deleted_at__lt=cutoff)
    purged = 0
    while True:
        batch = list(expired.values_list("pk", flat=True)[:BATCH_SIZE])
        if not batch:
            break
        with transaction.atomic():
            Conversation.objects.filter(pk__in=batch).delete()
        purged += len(batch)
    if purged:
        logger.warning("Purged %d conversations deleted before %s", purged, cutoff.isoformat())
    return purged
