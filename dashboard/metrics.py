"""The Prometheus endpoint /metrics: ledger totals read from the database at scrape time.

Counters are sums over the whole usage ledger, which only grows, so they
only go up as Prometheus expects. Every web process returns the same figures,
because none is kept in process memory. Histogram buckets are
counted in SQL.
"""

import logging

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.utils import floatToGoString

from accounts.models import QuotaBlock
from chat.models import Message, UsageRecord

from . import rollups
from .models import LatencyDaily, UsageDaily

logger = logging.getLogger(__name__)

# Bucket bounds in seconds. Thinking models often take tens of seconds to
# their first token and minutes to finish, hence the long tails.
FIRST_TOKEN_BUCKETS = (0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200)
for _bound in FIRST_TOKEN_BUCKETS + DURATION_BUCKETS:
    # The rollups count whole latency buckets, so each bound must be a bucket's upper edge.
    _edge = round(_bound * 1000)
    if rollups.bucket_edge(rollups.bucket_of(_edge) + 1) != _edge:
        raise ValueError(f"Histogram bound {_bound} s is not a latency bucket edge.")
TOKEN_KINDS = ("prompt_cache_hit", "prompt_cache_miss", "reasoning", "answer")


class LedgerCollector:
    """Collect the site's reply, token, cost, block and latency figures with a few queries.

    Reads the daily rollups while they are current (dashboard.rollups), and
    the ledger itself otherwise; both give the same numbers.
    """

    def collect(self):
        replies = CounterMetricFamily(
            "chatsite_replies",
            "Replies that ended, by model and outcome.",
            labels=["model", "outcome"],
        )
        tokens = CounterMetricFamily(
            "chatsite_tokens",
            "Tokens used by replies, by model and kind.",
            labels=["model", "kind"],
        )
        cost = CounterMetricFamily(
            "chatsite_cost_usd", "Cost of replies in US dollars, by model.", labels=["model"]
        )
        errors = CounterMetricFamily(
            "chatsite_reply_errors",
            "Replies that ended with an error, by error code.",
            labels=["code"],
        )
        use_rollups = rollups.is_current()
        per_model: dict[str, dict] = {}
        for row in _usage_rows(use_rollups):
            model = row["model_id"]
            replies.add_metric([model, row["outcome"]], row["replies"])
            totals = per_model.setdefault(model, dict.fromkeys(USAGE_FIELDS, 0))
            for name in USAGE_FIELDS:
                totals[name] += row[name] or 0
        for model, totals in per_model.items():
            answer = totals["completion"] - totals["reasoning"]
            kinds = (totals["cache_hit"], totals["cache_miss"], totals["reasoning"], answer)
            for kind, value in zip(TOKEN_KINDS, kinds, strict=True):
                tokens.add_metric([model, kind], value)
            cost.add_metric([model], float(totals["cost"]))
        for code, count in _error_rows(use_rollups):
            errors.add_metric([code], count)

        blocks = CounterMetricFamily(
            "chatsite_quota_blocks", "Sends rejected by a limit, by error code.", labels=["code"]
        )
        for row in QuotaBlock.objects.values("code").annotate(count=Count("id")).order_by("code"):
            blocks.add_metric([row["code"]], row["count"])

        in_flight = GaugeMetricFamily(
            "chatsite_replies_in_flight", "Replies queued or streaming now.", labels=["status"]
        )
        statuses = dict.fromkeys(Message.IN_FLIGHT, 0)
        statuses.update(
            Message.objects.filter(role=Message.Role.ASSISTANT, status__in=Message.IN_FLIGHT)
            .values_list("status")
            .annotate(count=Count("id"))
            .order_by()
        )
        for status, count in sorted(statuses.items()):
            in_flight.add_metric([str(status)], count)

        first_token = HistogramMetricFamily(
            "chatsite_time_to_first_token_seconds",
            "Time from the upstream request to the first token, by model.",
            labels=["model"],
        )
        duration = HistogramMetricFamily(
            "chatsite_reply_duration_seconds",
            "Time from the upstream request to the end of the reply, by model.",
            labels=["model"],
        )
        for family, measure, field, bounds in (
            (first_token, "ttft", "time_to_first_token_ms", FIRST_TOKEN_BUCKETS),
            (duration, "duration", "duration_ms", DURATION_BUCKETS),
        ):
            for model, buckets, total_ms in _histograms(use_rollups, measure, field, bounds):
                family.add_metric([model], buckets, total_ms / 1000)

        yield from (replies, tokens, cost, errors, blocks, in_flight, first_token, duration)


USAGE_FIELDS = ("cache_hit", "cache_miss", "completion", "reasoning", "cost")


def _usage_rows(use_rollups):
    if use_rollups:
        source = UsageDaily.objects.values("model_id", "outcome").annotate(
            replies=Sum("reply_count"),
            cache_hit=Sum("cache_hit_tokens"),
            cache_miss=Sum("cache_miss_tokens"),
            completion=Sum("completion_tokens"),
            reasoning=Sum("reasoning_tokens"),
            cost=Sum("cost_usd"),
        )
    else:
        source = UsageRecord.objects.values("model_id", "outcome").annotate(
            replies=Count("id"),
            cache_hit=Sum("prompt_cache_hit_tokens"),
            cache_miss=Sum("prompt_cache_miss_tokens"),
            completion=Sum("completion_tokens"),
            reasoning=Sum("reasoning_tokens"),
            cost=Sum("cost_usd"),
        )
    # Rollup rows netted to zero by deletions are left out, as the ledger has no such rows.
    return [row for row in source.order_by("model_id", "outcome") if row["replies"]]


def _error_rows(use_rollups):
    if use_rollups:
        rows = (
            UsageDaily.objects.exclude(error_code="")
            .values_list("error_code")
            .annotate(count=Sum("reply_count"))
        )
    else:
        rows = (
            UsageRecord.objects.exclude(error_code="")
            .values_list("error_code")
            .annotate(count=Count("id"))
        )
    return [(code, count) for code, count in rows.order_by("error_code") if count]


def _histograms(use_rollups, measure, field, bounds):
    """Return (model, cumulative buckets, sum in ms) for one latency measure, per model."""
    edges = [round(bound * 1000) for bound in bounds]
    if use_rollups:
        # Every bound is a bucket's upper edge (dashboard.rollups), so whole buckets add up.
        counts = {
            f"le_{index}": Sum("reply_count", filter=Q(bucket__lte=rollups.bucket_of(edge)))
            for index, edge in enumerate(edges)
        }
        rows = (
            LatencyDaily.objects.filter(measure=measure)
            .values("model_id")
            .annotate(**counts, total=Sum("reply_count"), total_ms=Sum("sum_ms"))
        )
    else:
        counts = {
            f"le_{index}": Count("id", filter=Q(**{f"{field}__lte": edge}))
            for index, edge in enumerate(edges)
        }
        rows = (
            UsageRecord.objects.filter(**{f"{field}__isnull": False})
            .values("model_id")
            .annotate(**counts, total=Count("id"), total_ms=Sum(field))
        )
    result = []
    for row in rows.order_by("model_id"):
        if not row["total"]:
            continue
        buckets = [
            (floatToGoString(bound), row[f"le_{index}"] or 0) for index, bound in enumerate(bounds)
        ]
        buckets.append(("+Inf", row["total"]))
        result.append((row["model_id"], buckets, row["total_ms"] or 0))
    return result


def _unauthorized(status):
    response = HttpResponse(status=status)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics(request):
    """Serve the metrics to a caller with the bearer token METRICS_TOKEN.

    Without the setting the endpoint does not exist (404). A missing token
    gets 401 and a wrong one 403; the comparison takes constant time.
    """
    expected = settings.METRICS_TOKEN
    if not expected:
        raise Http404("Metrics are off: set METRICS_TOKEN.")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _unauthorized(401)
    if not constant_time_compare(given.strip(), expected):
        logger.warning(
            "Metrics request with a wrong token from %s", request.META.get("REMOTE_ADDR")
        )
        return _unauthorized(403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
