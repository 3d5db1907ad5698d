"""A small seeded ledger for the dashboard tests, with the expected figures computed in Python.

Rows are spread over the last 40 days before now, so the 30-day range leaves
some out. Each row's cost is priced at its own time with the model's prices,
one of which changes in the middle of the range, as chat.catalog.reply_cost does.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from accounts.models import Plan, QuotaBlock
from chat.models import ChatModel, Endpoint, Message, ModelPrice, UsageRecord
from teams.models import Membership, Team
from tests.factories import make_conversation, make_message, make_user

OUTCOMES = ["complete"] * 8 + ["truncated", "stopped", "failed", "interrupted"]
ERROR_CODES = ["overloaded", "timeout", "stream_interrupted"]


def quota_day_of(moment):
    """Return the quota day of `moment`, computed independently of the code under test."""
    hours, minutes = map(int, settings.QUOTA_RESET_AT.split(":"))
    local = moment.astimezone(ZoneInfo(settings.QUOTA_TIME_ZONE))
    return (local.replace(tzinfo=None) - timedelta(hours=hours, minutes=minutes)).date()


@dataclass
class Ledger:
    now: datetime
    models: dict
    users: dict
    team: Team
    other_team: Team
    rows: list = field(default_factory=list)
    blocks: list = field(default_factory=list)
    price_change: datetime | None = None

    def rows_between(self, first_day, last_day):
        return [row for row in self.rows if first_day <= quota_day_of(row.created_at) <= last_day]

    def blocks_between(self, first_day, last_day):
        return [b for b in self.blocks if first_day <= quota_day_of(b.created_at) <= last_day]


def _make_model(slug, model_class, endpoint, order):
    return ChatModel.objects.create(
        slug=slug,
        endpoint=endpoint,
        model_id=f"{slug}-upstream",
        display_name=slug.title(),
        model_class=model_class,
        sort_order=order,
    )


def seed(rows=240, seed_value=5, now=None) -> Ledger:
    """Create users, a team, two models with prices and `rows` ledger rows; return them all."""
    rng = random.Random(seed_value)
    now = now or timezone.now()
    today_start = datetime.combine(
        quota_day_of(now),
        time.fromisoformat(settings.QUOTA_RESET_AT),
        ZoneInfo(settings.QUOTA_TIME_ZONE),
    )
    today_so_far = min((now - today_start).total_seconds(), 5 * 3600)
    endpoint = Endpoint.objects.create(
        slug="dash-endpoint",
        name="Dash",
        kind=Endpoint.Kind.DEEPSEEK,
        base_url="http://127.0.0.1:9",
    )
    thinking = _make_model("deep", ChatModel.ModelClass.THINKING, endpoint, 1)
    instant = _make_model("quick", ChatModel.ModelClass.INSTANT, endpoint, 2)
    price_change = now - timedelta(days=12)
    ModelPrice.objects.create(
        model=thinking,
        effective_from=now - timedelta(days=400),
        input_cache_hit=Decimal("0.10"),
        input_cache_miss=Decimal("1.00"),
        output=Decimal("4.00"),
    )
    ModelPrice.objects.create(
        model=thinking,
        effective_from=price_change,
        input_cache_hit=Decimal("0.02"),
        input_cache_miss=Decimal("0.50"),
        output=Decimal("2.00"),
    )
    ModelPrice.objects.create(
        model=instant,
        effective_from=now - timedelta(days=400),
        input_cache_hit=Decimal("0.01"),
        input_cache_miss=Decimal("0.20"),
        output=Decimal("0.80"),
    )

    team_plan = Plan.objects.get(slug=Plan.TEAM)
    users = {
        "alice": make_user("alice@example.com", plan=team_plan),
        "bob": make_user("bob@example.com", plan=team_plan),
        "carol": make_user("carol@example.com"),
        "dave": make_user("dave@example.com"),
        "guest": make_user("guest-1@guest.invalid", is_guest=True),
        "blocked": make_user("blocked-only@example.com"),
        "admin": make_user("teamadmin@example.com"),
        "staff": make_user("staff@example.com", is_staff=True),
    }
    team = Team.objects.create(name="Red team")
    other_team = Team.objects.create(name="Blue team")
    Membership.objects.create(team=team, user=users["alice"])
    Membership.objects.create(team=team, user=users["bob"])
    Membership.objects.create(team=team, user=users["admin"], role=Membership.Role.ADMIN)
    Membership.objects.create(team=other_team, user=users["carol"])
    conversations = {name: make_conversation(user) for name, user in users.items()}

    ledger = Ledger(
        now=now,
        models={"deep": thinking, "quick": instant},
        users=users,
        team=team,
        other_team=other_team,
        price_change=price_change,
    )
    chatters = ["alice", "bob", "carol", "dave", "guest"]
    for index in range(rows):
        name = chatters[index % len(chatters)]
        user = users[name]
        model = thinking if rng.random() < 0.6 else instant
        # Spread over 40 days; every seventh row falls in today's quota day so far, so
        # today has rows whatever the time of day the tests run.
        if index % 7 == 3:
            age = timedelta(seconds=rng.uniform(0, today_so_far))
        else:
            age = timedelta(minutes=rng.randint(1, 40 * 24 * 60))
        created = now - age
        outcome = rng.choice(OUTCOMES)
        error = rng.choice(ERROR_CODES) if outcome in ("failed", "interrupted") else ""
        hit = rng.randint(0, 2000)
        miss = rng.randint(0, 3000)
        completion = rng.randint(0, 4000) if outcome != "failed" else 0
        reasoning = rng.randint(0, completion) if model is thinking else 0
        ttft = rng.randint(100, 9000) if completion else None
        duration = (ttft or 0) + rng.randint(200, 60_000)
        price = model.price_at(created)
        cost = price.cost(created, cache_hit=hit, cache_miss=miss, output=completion)
        team_of_row = None
        if name in ("alice", "bob"):
            team_of_row = team
        elif name == "carol":
            team_of_row = other_team
        message = make_message(
            conversations[name],
            Message.Role.ASSISTANT,
            content="secret reply text",
            status=outcome,
            error_code=error,
            error_detail=f"detail of {error}" if error else "",
        )
        record = UsageRecord.objects.create(
            message=message,
            user=user,
            plan=user.effective_plan_slug(),
            team=team_of_row,
            chat_model=model,
            model_id=model.model_id,
            model_class=model.model_class,
            outcome=outcome,
            counted=outcome in ("complete", "truncated"),
            prompt_cache_hit_tokens=hit,
            prompt_cache_miss_tokens=miss,
            completion_tokens=completion,
            reasoning_tokens=reasoning,
            cost_usd=cost,
            time_to_first_token_ms=ttft,
            duration_ms=duration,
            error_code=error,
        )
        # created_at is auto_now_add, so the seeded time is written afterwards.
        UsageRecord.objects.filter(pk=record.pk).update(created_at=created)
        record.created_at = created
        ledger.rows.append(record)

    block_users = ["alice", "carol", "blocked", "blocked", "guest", "bob"]
    for index, name in enumerate(block_users * 3):
        user = users[name]
        created = now - timedelta(hours=index * 13 + 1)
        team_of_block = team if name in ("alice", "bob") else None
        block = QuotaBlock.objects.create(
            user=user,
            team=team_of_block,
            plan=user.effective_plan_slug(),
            model_class=ChatModel.ModelClass.THINKING
            if index % 2
            else ChatModel.ModelClass.INSTANT,
            code="quota_exceeded" if index % 3 else "rate_limited",
        )
        QuotaBlock.objects.filter(pk=block.pk).update(created_at=created)
        block.created_at = created
        ledger.blocks.append(block)
    return ledger


def utc(*args):
    return datetime(*args, tzinfo=UTC)
