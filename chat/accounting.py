"""Settling a reply's quota reservation and writing its usage record when it ends."""

import logging

from django.db import transaction
from django.utils import timezone

from accounts import quotas

from .models import Message, UsageRecord

logger = logging.getLogger(__name__)


def settle(reply: Message) -> None:
    """Count or refund the reply's reservation by its outcome, once; write its usage record.

    Call after the reply reached its terminal state. A second call does nothing.
    """
    with transaction.atomic():
        produced_output = bool(reply.content or reply.reasoning)
        counted = quotas.counts(reply.status, produced_output)
        if reply.quota_state == Message.QuotaState.RESERVED:
            new_state = Message.QuotaState.COUNTED if counted else Message.QuotaState.REFUNDED
            settled = Message.objects.filter(
                pk=reply.pk, quota_state=Message.QuotaState.RESERVED
            ).update(quota_state=new_state)
            if settled and not counted:
                quotas.refund(reply.quota_subject, reply.quota_class, reply.quota_day)
                logger.info("Reply %s ended %s: quota refunded", reply.pk, reply.status)
        _record_usage(reply, counted)


def _record_usage(reply: Message, counted: bool) -> None:
    # NOTE: a stopped reply has no usage from the upstream (the stream closed
    # before the final chunk), so its record shows 0 tokens and $0 although
    # the provider bills what it generated until the disconnect.
    started = reply.started_at
    first_token_ms = duration_ms = None
    if started and reply.first_token_at:
        first_token_ms = round((reply.first_token_at - started).total_seconds() * 1000)
    if started:
        duration_ms = round(
            ((reply.finished_at or timezone.now()) - started).total_seconds() * 1000
        )
    UsageRecord.objects.get_or_create(
        message=reply,
        defaults={
            "user_id": reply.conversation.owner_id,
            "subject": reply.quota_subject,
            "plan": reply.conversation.owner.effective_plan_slug(),
            "team_id": reply.conversation.team_id,
            "chat_model_id": reply.chat_model_id,
            "model_id": reply.model,
            "model_class": reply.quota_class,
            "outcome": reply.status,
            "counted": counted,
            "prompt_cache_hit_tokens": reply.cache_hit_tokens or 0,
            "prompt_cache_miss_tokens": reply.cache_miss_tokens
            if reply.cache_miss_tokens is not None
            else max(0, (reply.prompt_tokens or 0) - (reply.cache_hit_tokens or 0)),
            "completion_tokens": reply.completion_tokens or 0,
            "reasoning_tokens": reply.reasoning_tokens or 0,
            "cost_usd": reply.cost_usd or 0,
            "time_to_first_token_ms": first_token_ms,
            "duration_ms": duration_ms,
            "error_code": reply.error_code,
        },
    )
