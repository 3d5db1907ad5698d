"""Settling a reply's quota reservation and writing its usage record when it ends."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts import quotas

from . import catalog
from .history import estimate_tokens
from .models import Message, UsageRecord
from .stream_parser import Usage

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


def _estimated_usage(reply: Message) -> Usage:
    """Estimate the usage of a reply whose stream ended before the upstream reported it.

    The provider bills what it generated until the disconnect: the text
    received, plus the prompt, estimated from the conversation's earlier
    messages (at most the history budget), all counted as cache misses.
    """
    earlier = reply.conversation.messages.filter(created_at__lt=reply.created_at).values_list(
        "content", flat=True
    )
    prompt = min(
        sum(estimate_tokens(text) for text in earlier), settings.CHAT_CONTEXT_BUDGET_TOKENS
    )
    reasoning = estimate_tokens(reply.reasoning)
    completion = reasoning + estimate_tokens(reply.content)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_cache_hit_tokens=0,
        prompt_cache_miss_tokens=prompt,
        reasoning_tokens=reasoning,
        cost=None,
    )


def _record_usage(reply: Message, counted: bool) -> None:
    started = reply.started_at
    first_token_ms = duration_ms = None
    if started and reply.first_token_at:
        first_token_ms = round((reply.first_token_at - started).total_seconds() * 1000)
    if started:
        duration_ms = round(
            ((reply.finished_at or timezone.now()) - started).total_seconds() * 1000
        )
    usage_fields = {
        "prompt_cache_hit_tokens": reply.cache_hit_tokens or 0,
        "prompt_cache_miss_tokens": reply.cache_miss_tokens
        if reply.cache_miss_tokens is not None
        else max(0, (reply.prompt_tokens or 0) - (reply.cache_hit_tokens or 0)),
        "completion_tokens": reply.completion_tokens or 0,
        "reasoning_tokens": reply.reasoning_tokens or 0,
        "cost_usd": reply.cost_usd or 0,
        "usage_estimated": False,
    }
    if reply.completion_tokens is None and (reply.content or reply.reasoning):
        usage = _estimated_usage(reply)
        usage_fields = {
            "prompt_cache_hit_tokens": 0,
            "prompt_cache_miss_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cost_usd": catalog.reply_cost(reply.chat_model, started, usage) or 0,
            "usage_estimated": True,
        }
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
            **usage_fields,
            "time_to_first_token_ms": first_token_ms,
            "duration_ms": duration_ms,
            "error_code": reply.error_code,
        },
    )
