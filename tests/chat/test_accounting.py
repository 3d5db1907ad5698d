"""Ledger rows of replies whose stream ended before the upstream reported usage."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from chat import accounting
from chat.history import estimate_tokens
from chat.models import ChatModel, Message, ModelPrice, UsageRecord
from teams import budgets
from tests.factories import make_conversation, make_message
from tests.teams.helpers import make_team

pytestmark = pytest.mark.django_db

QUESTION = "Explain binary search step by step."
REASONING = "Okay, the user asks about binary search. " * 20
ANSWER = "## Binary search\n\nHalve the range each step."


def stopped_reply(owner, *, reasoning=REASONING, content=ANSWER, **fields):
    conversation = make_conversation(owner)
    make_message(conversation, Message.Role.USER, QUESTION)
    model = ChatModel.objects.get(slug="environment")
    return make_message(
        conversation,
        Message.Role.ASSISTANT,
        content,
        status=Message.Status.STOPPED,
        reasoning=reasoning,
        chat_model=model,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        **fields,
    )


def test_stopped_reply_usage_estimated(owner):
    reply = stopped_reply(owner)

    accounting.settle(reply)

    record = UsageRecord.objects.get(message=reply)
    assert record.usage_estimated is True
    assert record.reasoning_tokens == estimate_tokens(REASONING)
    assert record.completion_tokens == estimate_tokens(REASONING) + estimate_tokens(ANSWER)
    assert record.prompt_cache_miss_tokens == estimate_tokens(QUESTION)
    assert record.prompt_cache_hit_tokens == 0


def test_estimated_usage_priced(owner):
    model = ChatModel.objects.get(slug="environment")
    price = model.price_at(timezone.now())
    reply = stopped_reply(owner)

    accounting.settle(reply)

    record = UsageRecord.objects.get(message=reply)
    expected = price.cost(
        reply.started_at,
        cache_hit=0,
        cache_miss=estimate_tokens(QUESTION),
        output=record.completion_tokens,
    )
    assert price is not None
    assert record.cost_usd == expected
    assert record.cost_usd > 0


def test_reported_usage_not_estimated(owner):
    reply = stopped_reply(owner, completion_tokens=7, prompt_tokens=5, cost_usd=Decimal("0.01"))

    accounting.settle(reply)

    record = UsageRecord.objects.get(message=reply)
    assert record.usage_estimated is False
    assert record.completion_tokens == 7
    assert record.cost_usd == Decimal("0.01")


def test_stopped_before_output_costs_nothing(owner):
    reply = stopped_reply(owner, reasoning="", content="")

    accounting.settle(reply)

    record = UsageRecord.objects.get(message=reply)
    assert record.usage_estimated is False
    assert record.completion_tokens == 0
    assert record.cost_usd == 0


def test_stopped_reply_counts_against_team_budget(owner):
    team = make_team(owner, budget_unit="tokens", monthly_budget=10_000)
    reply = stopped_reply(owner)
    reply.conversation.team = team
    reply.conversation.save()

    accounting.settle(reply)

    spent = budgets.team_status(team).spent
    assert spent == estimate_tokens(QUESTION) + estimate_tokens(REASONING) + estimate_tokens(ANSWER)


def test_price_model_is_seeded():
    # The estimate is priced with the seeded price of the environment model.
    model = ChatModel.objects.get(slug="environment")
    assert ModelPrice.objects.filter(model=model).exists()
    assert model.price_at(datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC"))) is not None
