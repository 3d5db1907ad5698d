"""Exact first-token percentiles from the latency rollup and a few ledger rows.

percentile_cont over a month of a busy ledger sorts every row (over 500 ms
for a million rows on the benchmark machine). The same value comes from
ranks instead: PostgreSQL's percentile_cont(f) over N values interpolates
between the values of rank floor(f * (N - 1)) and ceil(f * (N - 1)),
counting from 0. The rollup's counts per latency bucket tell which bucket
contains a rank, and the ledger index (chat_model, time_to_first_token_ms)
returns that bucket's rows in order, so only one bucket's rows are read.
"""

import math

from django.db.models import Q, Sum

from chat.models import UsageRecord

from .filters import Filters
from .models import LatencyDaily
from .rollups import bucket_range

FRACTIONS = {"ttft_p50": 0.5, "ttft_p95": 0.95}


def first_token_percentiles(filters: Filters, model_row: dict) -> dict:
    """Return {"ttft_p50": ..., "ttft_p95": ...} for one model row of the period, or Nones.

    `model_row` carries the rollup's keys: chat_model_id (None without a
    catalogue model) and model_id.
    """
    counts = list(
        LatencyDaily.objects.filter(
            measure="ttft",
            day__gte=filters.period.first_day,
            day__lte=filters.period.last_day,
            model_key=model_row["chat_model_id"] or 0,
            model_id=model_row["model_id"],
        )
        .values("bucket")
        .annotate(count=Sum("reply_count"))
        .filter(count__gt=0)
        .order_by("bucket")
    )
    total = sum(row["count"] for row in counts)
    if not total:
        return dict.fromkeys(FRACTIONS)
    ledger = UsageRecord.objects.filter(
        created_at__gte=filters.period.start,
        created_at__lt=filters.period.end,
        model_id=model_row["model_id"],
    )
    if model_row["chat_model_id"] is None:
        ledger = ledger.filter(chat_model__isnull=True)
    else:
        ledger = ledger.filter(chat_model_id=model_row["chat_model_id"])
    values: dict[int, int] = {}

    def value_at(rank):
        if rank not in values:
            values[rank] = _value_at_rank(ledger, counts, rank)
        return values[rank]

    result = {}
    for name, fraction in FRACTIONS.items():
        position = fraction * (total - 1)
        lower, upper = math.floor(position), math.ceil(position)
        low_value = value_at(lower)
        high_value = value_at(upper)
        result[name] = low_value + (position - lower) * (high_value - low_value)
    return result


def _value_at_rank(ledger, counts, rank) -> int:
    """Return the time to first token of rank `rank` (from 0) among the ledger rows counted."""
    before = 0
    for row in counts:
        if rank < before + row["count"]:
            low, high = bucket_range(row["bucket"])
            in_bucket = ledger.filter(
                Q(time_to_first_token_ms__gte=low) & Q(time_to_first_token_ms__lte=high)
            ).order_by("time_to_first_token_ms")
            return in_bucket.values_list("time_to_first_token_ms", flat=True)[rank - before]
        before += row["count"]
    raise ValueError(f"Rank {rank} is beyond the {before} counted rows.")
