"""The dashboard's figures, each computed by aggregate SQL over the usage ledger.

No function here loops over ledger rows in Python; loops run over result
rows only (days, hours, users on one page, models, error codes).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DateField,
    DecimalField,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone

from accounts import quotas
from accounts.models import Plan, QuotaBlock, SpendCap, User
from chat.models import ChatModel, UsageRecord

from . import latency, rollups
from .filters import Filters, day_start, zone
from .models import UsageDaily, UserDaily

ZERO = Decimal(0)
OUTCOMES = ("complete", "truncated", "stopped", "failed", "interrupted")
FAILED_OUTCOMES = ("failed", "interrupted")
GUEST_PLAN = Plan.GUEST


class QuotaDay(Func):
    """The quota day a timestamp falls in: local date in QUOTA_TIME_ZONE, shifted by the reset.

    Matches accounts.quotas.quota_day, which moves times before QUOTA_RESET_AT
    to the day before.
    """

    output_field = DateField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"(({sql} AT TIME ZONE %s) - CAST(%s AS interval))::date",
            [*params, settings.QUOTA_TIME_ZONE, settings.QUOTA_RESET_AT],
        )


class Percentile(Aggregate):
    """PostgreSQL's percentile_cont: the continuous percentile, interpolating between rows.

    Rows where the expression is NULL are ignored, as by every aggregate.
    """

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction, **extra):
        if not 0 <= fraction <= 1:
            raise ValueError(f"A percentile fraction lies between 0 and 1, not {fraction}.")
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


def _sum(expression, **extra):
    return Coalesce(Sum(expression, **extra), Value(0), output_field=IntegerField())


def _cost(field="cost_usd", **extra):
    return Coalesce(
        Sum(field, **extra),
        Value(ZERO),
        output_field=DecimalField(max_digits=20, decimal_places=8),
    )


def usage_sums():
    """Return the aggregates every usage figure is made of, by name."""
    return {
        "messages": Count("id"),
        "cache_hit": _sum("prompt_cache_hit_tokens"),
        "cache_miss": _sum("prompt_cache_miss_tokens"),
        "completion": _sum("completion_tokens"),
        "reasoning": _sum("reasoning_tokens"),
        "cost": _cost(),
        "errors": Count("id", filter=~Q(error_code="")),
    }


def with_derived(row: dict) -> dict:
    """Add the figures computed from sums: prompt and answer tokens, ratio, CNY."""
    row["prompt"] = row["cache_hit"] + row["cache_miss"]
    row["answer"] = row["completion"] - row["reasoning"]
    row["tokens"] = row["prompt"] + row["completion"]
    row["cache_hit_ratio"] = row["cache_hit"] / row["prompt"] if row["prompt"] else None
    row["cache_hit_percent"] = (
        None if row["cache_hit_ratio"] is None else row["cache_hit_ratio"] * 100
    )
    row["cost_cny"] = row["cost"] * settings.USD_TO_CNY_RATE
    return row


def rollup_rows(filters: Filters):
    """Return the UsageDaily rows of the filters' whole days, or None to read the ledger.

    The ledger is read for one-day periods (charted by hour) and while the
    rollups were built with other QUOTA_* settings.
    """
    if filters.period.hourly or not rollups.is_current():
        return None
    q = Q(day__gte=filters.period.first_day, day__lte=filters.period.last_day)
    if filters.plan:
        q &= Q(plan=filters.plan)
    if filters.team_id is not None:
        q &= Q(team_key=filters.team_id)
    elif filters.team_ids is not None:
        q &= Q(team_key__in=filters.team_ids)
    if filters.model is not None:
        q &= Q(model_key=filters.model.pk)
    return UsageDaily.objects.filter(q)


def rollup_sums():
    """Return the aggregates of usage_sums, over UsageDaily rows."""
    return {
        "messages": _sum("reply_count"),
        "cache_hit": _sum("cache_hit_tokens"),
        "cache_miss": _sum("cache_miss_tokens"),
        "completion": _sum("completion_tokens"),
        "reasoning": _sum("reasoning_tokens"),
        "cost": _cost("cost_usd"),
        "errors": _sum("reply_count", filter=~Q(error_code="")),
    }


def user_rollup_rows(filters: Filters):
    """Return the UserDaily rows of the filters' whole days, or None to read the ledger.

    UserDaily has no model key, so a model filter reads the ledger too.
    """
    if filters.model is not None or filters.period.hourly or not rollups.is_current():
        return None
    q = Q(day__gte=filters.period.first_day, day__lte=filters.period.last_day)
    if filters.plan:
        q &= Q(plan=filters.plan)
    if filters.team_id is not None:
        q &= Q(team_key=filters.team_id)
    elif filters.team_ids is not None:
        q &= Q(team_key__in=filters.team_ids)
    return UserDaily.objects.filter(q)


def active_accounts(filters: Filters) -> tuple[int, int]:
    """Return how many accounts chatted in the period, not as guests and as guests.

    Counts distinct (user, plan) pairs first, which PostgreSQL does with one
    hash aggregate, instead of two COUNT(DISTINCT) sorts.
    """
    daily = user_rollup_rows(filters)
    if daily is not None:
        pairs = daily.filter(reply_count__gt=0).values("user_id", "plan").distinct().order_by()
    else:
        pairs = (
            UsageRecord.objects.filter(filters.usage_q(), user_id__isnull=False)
            .values("user_id", "plan")
            .distinct()
            .order_by()
        )
    sql, params = pairs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(DISTINCT user_id) FILTER (WHERE plan <> %s), "
            f"COUNT(DISTINCT user_id) FILTER (WHERE plan = %s) FROM ({sql}) AS pairs",
            [GUEST_PLAN, GUEST_PLAN, *params],
        )
        users, guests = cursor.fetchone()
    return users, guests


def totals(filters: Filters) -> dict:
    daily = rollup_rows(filters)
    if daily is not None:
        row = daily.aggregate(**rollup_sums())
    else:
        row = UsageRecord.objects.filter(filters.usage_q()).aggregate(**usage_sums())
    row = with_derived(row)
    row["active_users"], row["active_guests"] = active_accounts(filters)
    row["blocks"] = QuotaBlock.objects.filter(filters.block_q()).count()
    return row


def blocks_by_code(filters: Filters) -> list[dict]:
    return list(
        QuotaBlock.objects.filter(filters.block_q())
        .values("code")
        .annotate(count=Count("id"))
        .order_by("-count", "code")
    )


# Time series: one row per day of the period, or per hour when it is one day.


def _bucket(filters: Filters):
    if filters.period.hourly:
        return TruncHour("created_at", tzinfo=zone())
    return QuotaDay("created_at")


def bucket_keys(filters: Filters) -> list:
    """Return every bucket of the period in order, so days without rows still show as zero."""
    period = filters.period
    if not period.hourly:
        return period.days
    local = zone()
    first = period.start.astimezone(local).replace(minute=0, second=0, microsecond=0)
    keys = []
    moment = first
    while moment < period.end:
        keys.append(moment.astimezone(local))
        moment += timedelta(hours=1)
    return keys


def _key(value):
    """Return a bucket value in the form bucket_keys uses: a date, or an aware local hour."""
    if isinstance(value, datetime):
        return value.astimezone(zone())
    return value


def _usage_by_bucket(filters: Filters, extra_q: Q | None):
    daily = rollup_rows(filters) if extra_q is None else None
    if daily is not None:
        grouped = daily.values(bucket=F("day")).annotate(**rollup_sums())
    else:
        records = UsageRecord.objects.filter(filters.usage_q())
        if extra_q is not None:
            records = records.filter(extra_q)
        grouped = (
            records.annotate(bucket=_bucket(filters)).values("bucket").annotate(**usage_sums())
        )
    return {_key(row["bucket"]): row for row in grouped.order_by("bucket")}


def usage_series(filters: Filters, extra_q: Q | None = None) -> list[dict]:
    """Return per-bucket usage sums and quota blocks for the period, zeros included.

    `extra_q` narrows ledger and block rows alike, such as to one user.
    """
    rows = _usage_by_bucket(filters, extra_q)
    blocks = QuotaBlock.objects.filter(filters.block_q())
    if extra_q is not None:
        blocks = blocks.filter(extra_q)
    block_counts = {
        _key(row["bucket"]): row["count"]
        for row in blocks.annotate(bucket=_bucket(filters))
        .values("bucket")
        .annotate(count=Count("id"))
        .order_by("bucket")
    }
    empty = {name: 0 for name in usage_sums()} | {"cost": ZERO}
    series = []
    for key in bucket_keys(filters):
        row = dict(rows.get(key) or empty)
        row["bucket"] = key
        row["blocks"] = block_counts.get(key, 0)
        series.append(with_derived(row))
    return series


def _errors_grouped(filters: Filters, *fields):
    daily = rollup_rows(filters)
    if daily is not None:
        names = {"bucket": F("day")} if "bucket" in fields else {}
        plain = [name for name in fields if name != "bucket"]
        return (
            daily.exclude(error_code="")
            .values(*plain, **names)
            .annotate(count=_sum("reply_count"))
            .order_by()
        )
    records = UsageRecord.objects.filter(filters.usage_q()).exclude(error_code="")
    if "bucket" in fields:
        records = records.annotate(bucket=_bucket(filters))
    return records.values(*fields).annotate(count=Count("id")).order_by()


def error_series(filters: Filters) -> tuple[list[str], list[dict]]:
    """Return the error codes seen, most frequent first, and per bucket a count for each."""
    by_bucket: dict = {}
    code_totals: dict[str, int] = {}
    for row in _errors_grouped(filters, "bucket", "error_code"):
        if not row["count"]:
            continue
        counts = by_bucket.setdefault(_key(row["bucket"]), {})
        counts[row["error_code"]] = row["count"]
        code_totals[row["error_code"]] = code_totals.get(row["error_code"], 0) + row["count"]
    codes = sorted(code_totals, key=lambda code: (-code_totals[code], code))
    series = []
    for key in bucket_keys(filters):
        counts = by_bucket.get(key, {})
        series.append({"bucket": key, "counts": counts, "total": sum(counts.values())})
    return codes, series


def code_totals(filters: Filters) -> list[dict]:
    rows = [row for row in _errors_grouped(filters, "error_code") if row["count"]]
    return sorted(rows, key=lambda row: (-row["count"], row["error_code"]))


def latest_errors(filters: Filters, extra_q: Q | None = None, limit=20) -> list[dict]:
    """Return the newest failed replies: when, which conversation, code and detail, no text."""
    records = UsageRecord.objects.filter(filters.usage_q()).filter(
        ~Q(error_code="") | Q(outcome__in=FAILED_OUTCOMES)
    )
    if extra_q is not None:
        records = records.filter(extra_q)
    return list(
        records.order_by("-created_at").values(
            "created_at",
            "error_code",
            "outcome",
            "model_id",
            "user_id",
            "user__email",
            conversation_id=F("message__conversation_id"),
            detail=F("message__error_detail"),
        )[:limit]
    )


# Per-model table.


def _outcome_counts(count_of):
    counts = {outcome: count_of(Q(outcome=outcome)) for outcome in OUTCOMES}
    counts["other"] = count_of(~Q(outcome__in=OUTCOMES))
    return counts


def model_rows(filters: Filters) -> list[dict]:
    """Return one row per model: replies by outcome, first-token p50 and p95, speed, cost.

    From the rollups, the percentiles are found exactly by counting rows per
    latency bucket and reading the ledger rows of the one bucket that contains
    each wanted rank. With a team or plan filter, which the latency rollup
    does not key on, PostgreSQL's percentile_cont runs over the ledger rows.
    """
    daily = rollup_rows(filters)
    if daily is not None:
        rows = list(
            daily.values("model_key", "model_id")
            .annotate(
                replies=_sum("reply_count"),
                **_outcome_counts(lambda q: _sum("reply_count", filter=q)),
                streamed_tokens=_sum("streamed_completion_tokens"),
                streaming_ms=_sum("streaming_time_ms"),
                cost=_cost("cost_usd"),
            )
            .order_by("-replies", "model_id")
        )
        rows = [row for row in rows if row["replies"]]
        for row in rows:
            row["chat_model_id"] = row.pop("model_key") or None
        if filters.plan or filters.team_id is not None or filters.team_ids is not None:
            _add_ledger_percentiles(filters, rows)
        else:
            for row in rows:
                row.update(latency.first_token_percentiles(filters, row))
    else:
        streamed = Q(completion_tokens__gt=0, duration_ms__gt=F("time_to_first_token_ms"))
        rows = list(
            UsageRecord.objects.filter(filters.usage_q())
            .values("chat_model_id", "model_id")
            .annotate(
                replies=Count("id"),
                **_outcome_counts(lambda q: Count("id", filter=q)),
                ttft_p50=Percentile("time_to_first_token_ms", 0.5),
                ttft_p95=Percentile("time_to_first_token_ms", 0.95),
                streamed_tokens=_sum("completion_tokens", filter=streamed),
                streaming_ms=_sum(F("duration_ms") - F("time_to_first_token_ms"), filter=streamed),
                cost=_cost(),
            )
            .order_by("-replies", "model_id")
        )
    names = dict(ChatModel.objects.values_list("pk", "display_name"))
    for row in rows:
        row["name"] = names.get(row["chat_model_id"]) or row["model_id"]
        row["tokens_per_second"] = (
            row["streamed_tokens"] * 1000 / row["streaming_ms"] if row["streaming_ms"] else None
        )
        row["cost_cny"] = row["cost"] * settings.USD_TO_CNY_RATE
    return rows


def _add_ledger_percentiles(filters: Filters, rows: list[dict]):
    found = {
        (row["chat_model_id"], row["model_id"]): row
        for row in UsageRecord.objects.filter(filters.usage_q())
        .values("chat_model_id", "model_id")
        .annotate(
            ttft_p50=Percentile("time_to_first_token_ms", 0.5),
            ttft_p95=Percentile("time_to_first_token_ms", 0.95),
        )
        .order_by()
    }
    for row in rows:
        match = found.get((row["chat_model_id"], row["model_id"]), {})
        row["ttft_p50"] = match.get("ttft_p50")
        row["ttft_p95"] = match.get("ttft_p95")


# Per-user table.

USER_SORTS = {
    "email": "email",
    "messages": "messages",
    "tokens": "tokens",
    "cost": "cost",
    "blocks": "blocks",
    "last_active": "last_active",
}


@dataclass(frozen=True)
class UserPage:
    rows: list[dict]
    total: int


def user_rows(filters: Filters, *, search="", sort="cost", descending=True, page=1, per_page=50):
    """Return one page of users with their usage and blocks in the period, and the row count.

    A user appears when they have ledger rows or quota blocks in the period;
    the two grouped subqueries are joined with a FULL OUTER JOIN so a user
    who was only ever blocked is listed too.
    """
    daily = user_rollup_rows(filters)
    if daily is not None:
        usage = (
            daily.filter(reply_count__gt=0)
            .values("user_id")
            .annotate(
                messages=_sum("reply_count"),
                tokens_sum=_sum("tokens"),
                cost=_cost("cost_usd"),
                last_reply=Max("last_reply_at"),
            )
            .order_by()
        )
    else:
        usage = (
            UsageRecord.objects.filter(filters.usage_q(), user_id__isnull=False)
            .values("user_id")
            .annotate(
                messages=Count("id"),
                tokens_sum=_sum(
                    F("prompt_cache_hit_tokens")
                    + F("prompt_cache_miss_tokens")
                    + F("completion_tokens")
                ),
                cost=_cost(),
                last_reply=Max("created_at"),
            )
            .order_by()
        )
    blocks = (
        QuotaBlock.objects.filter(filters.block_q(), user_id__isnull=False)
        .values("user_id")
        .annotate(blocks=Count("id"), last_block=Max("created_at"))
        .order_by()
    )
    if search:
        # Narrowing both subqueries first spares aggregating everyone else's rows.
        matching = User.objects.filter(email__icontains=search).values("pk")
        usage = usage.filter(user_id__in=matching)
        blocks = blocks.filter(user_id__in=matching)
    usage_sql, usage_params = usage.query.sql_with_params()
    blocks_sql, blocks_params = blocks.query.sql_with_params()
    order = USER_SORTS.get(sort, "cost")
    direction = "DESC" if descending else "ASC"
    params = [*usage_params, *blocks_params]
    sql = f"""
        SELECT account.id, account.email, account.is_guest,
               COALESCE(u.messages, 0) AS messages,
               COALESCE(u.tokens_sum, 0) AS tokens,
               COALESCE(u.cost, 0) AS cost,
               COALESCE(b.blocks, 0) AS blocks,
               GREATEST(u.last_reply, b.last_block) AS last_active,
               COUNT(*) OVER () AS total
        FROM ({usage_sql}) AS u
        FULL OUTER JOIN ({blocks_sql}) AS b ON b.user_id = u.user_id
        JOIN accounts_user AS account ON account.id = COALESCE(u.user_id, b.user_id)
        ORDER BY {order} {direction} NULLS LAST, account.id
        LIMIT %s OFFSET %s
    """  # noqa: S608 - the only interpolations are compiled querysets and whitelisted names
    params += [per_page, (page - 1) * per_page]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    total = rows[0]["total"] if rows else 0
    if not rows and page > 1:
        # Past the last page the window count is unknown; count the rows alone.
        total = user_count(filters, search=search)
    for row in rows:
        row["cost_cny"] = row["cost"] * settings.USD_TO_CNY_RATE
    return UserPage(rows=rows, total=total)


def user_count(filters: Filters, *, search="") -> int:
    return user_rows(filters, search=search, page=1, per_page=1).total


# Spend today against the daily caps.


@dataclass(frozen=True)
class SpendLine:
    name: str
    plans: list[str]
    cap: Decimal | None
    spent: Decimal
    forecast: Decimal

    @property
    def share(self):
        return self.spent / self.cap if self.cap else None

    @property
    def forecast_share(self):
        return self.forecast / self.cap if self.cap else None


@dataclass(frozen=True)
class SpendToday:
    day_start: datetime
    day_end: datetime
    elapsed_share: float
    lines: list[SpendLine]


def spend_today(scope, now=None) -> SpendToday:
    """Return today's spend for each active spend cap (staff) or the viewer's teams.

    The day is the quota day, as the caps count it. The forecast assumes the
    rest of the day spends at the average rate so far: spend / elapsed x day.
    The sums come from the day's UsageDaily rows while the rollups are current.
    """
    now = now or timezone.now()
    day = quotas.quota_day(now)
    start = day_start(day)
    end = quotas.next_reset(now)
    elapsed = (now - start) / (end - start)
    if rollups.is_current():
        today = UsageDaily.objects.filter(day=day)
        team_field = "team_key"
    else:
        today = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        team_field = "team_id"

    def forecast(spent):
        if elapsed <= 0:
            return spent
        return (spent / Decimal(repr(elapsed))).quantize(Decimal("0.0001"))

    def spent_of(records):
        # Both tables name the column cost_usd.
        return records.aggregate(total=_cost("cost_usd"))["total"]

    lines = []
    if scope.is_staff:
        site = spent_of(today)
        lines.append(SpendLine("", [], None, site, forecast(site)))
        for cap in SpendCap.objects.filter(is_active=True).prefetch_related("plans"):
            plans = [plan.slug for plan in cap.plans.all()]
            records = today.filter(plan__in=plans) if plans else today
            spent = spent_of(records)
            lines.append(SpendLine(cap.name, plans, cap.amount_usd, spent, forecast(spent)))
    else:
        spent = spent_of(today.filter(**{f"{team_field}__in": scope.team_ids}))
        lines.append(SpendLine("", [], None, spent, forecast(spent)))
    return SpendToday(start, end, elapsed, lines)
