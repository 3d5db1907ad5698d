"""The daily rollups stay equal to the ledger through inserts, updates, deletes and rebuilds."""

import random
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.test import override_settings

from accounts import quotas
from chat.models import UsageRecord
from dashboard import latency, metrics, queries, rollups
from dashboard.filters import Filters, period_for
from dashboard.models import LatencyDaily, RollupState, UsageDaily
from dashboard.scope import Scope
from tests.dashboard.seed import seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    return seed(rows=150, seed_value=11)


def month(ledger, **extra):
    today = quotas.quota_day(ledger.now)
    return Filters(period=period_for("custom", today - timedelta(days=45), today), **extra)


def ledger_only():
    return mock.patch.object(rollups, "is_current", return_value=False)


def rollup_matches_ledger():
    daily = UsageDaily.objects.aggregate(
        replies=Sum("reply_count"), cost=Sum("cost_usd"), completion=Sum("completion_tokens")
    )
    raw = UsageRecord.objects.aggregate(
        replies=Count("id"), cost=Sum("cost_usd"), completion=Sum("completion_tokens")
    )
    first_tokens = LatencyDaily.objects.filter(measure="ttft").aggregate(
        count=Sum("reply_count"), total=Sum("sum_ms")
    )
    raw_first = UsageRecord.objects.filter(time_to_first_token_ms__isnull=False).aggregate(
        count=Count("id"), total=Sum("time_to_first_token_ms")
    )
    return daily == raw and first_tokens == raw_first, (daily, raw, first_tokens, raw_first)


def test_rollups_are_current_in_tests(ledger):
    assert rollups.is_current()
    matches, detail = rollup_matches_ledger()
    assert matches, detail


def test_both_paths_give_same_figures(ledger):
    for extra in ({}, {"model": ledger.models["deep"]}, {"plan": "team"}):
        filters = month(ledger, **extra)
        from_rollups = (
            queries.totals(filters),
            queries.usage_series(filters),
            queries.error_series(filters),
            queries.code_totals(filters),
            queries.model_rows(filters),
        )
        with ledger_only():
            from_ledger = (
                queries.totals(filters),
                queries.usage_series(filters),
                queries.error_series(filters),
                queries.code_totals(filters),
                queries.model_rows(filters),
            )
        assert from_rollups[:4] == from_ledger[:4], extra
        for rolled, raw in zip(from_rollups[4], from_ledger[4], strict=True):
            for name in ("replies", "complete", "failed", "cost", "streamed_tokens", "name"):
                assert rolled[name] == raw[name], (extra, name)
            for name in ("ttft_p50", "ttft_p95", "tokens_per_second"):
                assert rolled[name] == pytest.approx(raw[name]), (extra, name)


def test_users_same_from_both_paths(ledger):
    for extra in ({}, {"plan": "free"}, {"team_id": ledger.team.pk}):
        filters = month(ledger, **extra)
        for sort in ("cost", "last_active", "email"):
            rolled = queries.user_rows(filters, sort=sort)
            with ledger_only():
                raw = queries.user_rows(filters, sort=sort)
            assert rolled == raw, (extra, sort)
        rolled_active = queries.active_accounts(filters)
        with ledger_only():
            assert queries.active_accounts(filters) == rolled_active, extra


def test_user_rollup_after_delete(ledger):
    dave = ledger.users["dave"]
    newest = max((r for r in ledger.rows if r.user_id == dave.pk), key=lambda r: r.created_at)
    filters = month(ledger)

    UsageRecord.objects.filter(pk=newest.pk).delete()

    rolled = {row["id"]: row for row in queries.user_rows(filters).rows}
    with ledger_only():
        raw = {row["id"]: row for row in queries.user_rows(filters).rows}
    assert rolled[dave.pk] == raw[dave.pk]
    # Dave has no quota blocks, so his last activity is his newest remaining reply.
    assert rolled[dave.pk]["blocks"] == 0
    assert rolled[dave.pk]["last_active"] < newest.created_at


def test_metrics_same_from_both_paths(ledger):
    from_rollups = [(f.name, f.samples) for f in metrics.LedgerCollector().collect()]
    with ledger_only():
        from_ledger = [(f.name, f.samples) for f in metrics.LedgerCollector().collect()]
    assert from_rollups == from_ledger


def test_update_and_delete_keep_rollups_exact(ledger):
    first, second, third = ledger.rows[:3]
    UsageRecord.objects.filter(pk=first.pk).update(
        team=ledger.other_team, cost_usd=Decimal("9.5"), time_to_first_token_ms=123
    )
    UsageRecord.objects.filter(pk=second.pk).update(created_at=first.created_at - timedelta(days=3))
    UsageRecord.objects.filter(pk=third.pk).delete()
    # A change the rollups do not key on leaves them alone.
    UsageRecord.objects.filter(pk=ledger.rows[4].pk).update(user=None)

    matches, detail = rollup_matches_ledger()
    assert matches, detail
    filters = month(ledger, team_id=ledger.other_team.pk)
    rolled = queries.totals(filters)
    with ledger_only():
        raw = queries.totals(filters)
    assert rolled == raw


def test_stale_settings_fall_back_and_rebuild(ledger):
    filters = month(ledger)
    with override_settings(QUOTA_TIME_ZONE="Asia/Shanghai", QUOTA_RESET_AT="04:00"):
        assert not rollups.is_current()
        raw_series = queries.usage_series(filters)

        rollups.rebuild()

        assert rollups.is_current()
        assert RollupState.objects.get().time_zone == "Asia/Shanghai"
        assert queries.usage_series(filters) == raw_series
        matches, detail = rollup_matches_ledger()
        assert matches, detail
    assert not rollups.is_current()


def test_bucket_function_matches_sql():
    values = [0, 1, 99, 100, 101, 199, 200, 9_999, 10_000, 10_001, 10_999, 11_000, 11_001]
    values += [119_999, 120_000, 120_001, 129_999, 130_000, 130_001, 3_600_000]
    with connection.cursor() as cursor:
        for value in values:
            cursor.execute("SELECT dashboard_latency_bucket(%s)", [value])
            bucket = cursor.fetchone()[0]
            assert bucket == rollups.bucket_of(value), value
            low, high = rollups.bucket_range(bucket)
            assert low <= value <= high, (value, bucket, low, high)


def test_percentiles_with_ties_and_edges(ledger):
    # Many equal values and values on bucket edges, where a rank lands on a boundary.
    rng = random.Random(3)
    model = ledger.models["quick"]
    UsageRecord.objects.filter(chat_model=model).delete()
    values = [rng.choice([100, 101, 200, 200, 200, 10_000, 10_001, 55_555]) for _ in range(97)]
    for value in values:
        UsageRecord.objects.create(
            user=ledger.users["dave"],
            plan="free",
            chat_model=model,
            model_id=model.model_id,
            outcome="complete",
            counted=True,
            completion_tokens=10,
            time_to_first_token_ms=value,
            duration_ms=value + 1000,
        )
    filters = month(ledger, model=model)
    row = {"chat_model_id": model.pk, "model_id": model.model_id}

    found = latency.first_token_percentiles(filters, row)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY time_to_first_token_ms), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY time_to_first_token_ms) "
            "FROM chat_usagerecord WHERE chat_model_id = %s",
            [model.pk],
        )
        p50, p95 = cursor.fetchone()
    assert found["ttft_p50"] == pytest.approx(p50)
    assert found["ttft_p95"] == pytest.approx(p95)


def test_spend_today_same_from_both_paths(ledger):
    staff = Scope(is_staff=True, team_ids=frozenset())
    team_admin = Scope(is_staff=False, team_ids=frozenset({ledger.team.pk}))
    for scope in (staff, team_admin):
        rolled = queries.spend_today(scope, now=ledger.now)
        with ledger_only():
            raw = queries.spend_today(scope, now=ledger.now)
        assert rolled == raw
        assert rolled.lines[0].spent > 0
