"""Dashboard figures on a seeded ledger equal the same figures computed here in Python."""

import statistics
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from accounts import quotas
from accounts.models import QuotaBlock, SpendCap
from dashboard import queries
from dashboard.filters import Filters, period_for
from tests.dashboard.seed import quota_day_of, seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    return seed()


@pytest.fixture
def staff_client(client, ledger):
    client.force_login(ledger.users["staff"])
    return client


def today(ledger):
    return quotas.quota_day(ledger.now)


def last_30(ledger):
    return ledger.rows_between(today(ledger) - timedelta(days=29), today(ledger))


def sums(rows):
    return {
        "messages": len(rows),
        "cache_hit": sum(r.prompt_cache_hit_tokens for r in rows),
        "cache_miss": sum(r.prompt_cache_miss_tokens for r in rows),
        "completion": sum(r.completion_tokens for r in rows),
        "reasoning": sum(r.reasoning_tokens for r in rows),
        "cost": sum((r.cost_usd for r in rows), Decimal(0)),
        "errors": sum(1 for r in rows if r.error_code),
    }


def percentile_cont(values, fraction):
    """PostgreSQL's percentile_cont, by statistics.quantiles' inclusive method."""
    values = sorted(values)
    if len(values) == 1:
        return float(values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def test_totals_for_30_days(staff_client, ledger):
    rows = last_30(ledger)
    first = today(ledger) - timedelta(days=29)
    blocks = ledger.blocks_between(first, today(ledger))
    expected = sums(rows)

    response = staff_client.get(reverse("dashboard:overview"), {"range": "30d"})

    assert response.status_code == 200
    totals = response.context["totals"]
    assert 0 < len(rows) < len(ledger.rows), "the seed must put rows outside the range"
    for name, value in expected.items():
        assert totals[name] == value, name
    assert totals["answer"] == expected["completion"] - expected["reasoning"]
    assert totals["active_users"] == len({r.user_id for r in rows if r.plan != "guest"})
    assert totals["active_guests"] == len({r.user_id for r in rows if r.plan == "guest"})
    assert totals["blocks"] == len(blocks)
    ratio = expected["cache_hit"] / (expected["cache_hit"] + expected["cache_miss"])
    assert totals["cache_hit_ratio"] == pytest.approx(ratio)
    assert totals["cost_cny"] == expected["cost"] * settings.USD_TO_CNY_RATE


def test_cost_keeps_price_of_each_row(ledger):
    before = [r for r in ledger.rows if r.chat_model_id == ledger.models["deep"].pk]
    before = [r for r in before if r.created_at < ledger.price_change]
    after = [
        r
        for r in ledger.rows
        if r.chat_model_id == ledger.models["deep"].pk and r.created_at >= ledger.price_change
    ]
    assert before and after, "the seed must have rows on both sides of the price change"
    period = period_for("custom", quota_day_of(ledger.now - timedelta(days=41)), today(ledger))
    filters = Filters(period=period, model=ledger.models["deep"])

    row = queries.model_rows(filters)[0]

    expected = sum((r.cost_usd for r in before + after), Decimal(0))
    assert row["cost"] == expected
    # Priced at the newer price throughout, the same tokens would cost less.
    new_price = ledger.models["deep"].price_at(ledger.now)
    repriced = sum(
        (
            new_price.cost(
                r.created_at,
                cache_hit=r.prompt_cache_hit_tokens,
                cache_miss=r.prompt_cache_miss_tokens,
                output=r.completion_tokens,
            )
            for r in before + after
        ),
        Decimal(0),
    )
    assert row["cost"] != repriced


def test_daily_series_match_rows(staff_client, ledger):
    rows = last_30(ledger)
    per_day = defaultdict(list)
    for row in rows:
        per_day[quota_day_of(row.created_at)].append(row)

    response = staff_client.get(reverse("dashboard:overview"), {"range": "30d"})

    series = queries.usage_series(response.context["filters"])
    assert len(series) == 30
    for point in series:
        expected = sums(per_day.get(point["bucket"], []))
        for name, value in expected.items():
            assert point[name] == value, (point["bucket"], name)
    charts = {chart.slug: chart for chart in response.context["charts"]}
    bars = {bar.bucket: bar.raw for bar in charts["messages"].bars}
    assert sum(bars.values()) == len(rows)
    assert set(charts) == {"messages", "tokens", "cost", "blocks", "errors"}


@override_settings(QUOTA_TIME_ZONE="Asia/Shanghai", QUOTA_RESET_AT="04:00")
def test_days_follow_quota_time_zone(ledger):
    first = quota_day_of(ledger.now) - timedelta(days=6)
    period = period_for("7d", None, None, now=ledger.now)
    rows = ledger.rows_between(first, quota_day_of(ledger.now))
    per_day = defaultdict(int)
    for row in rows:
        per_day[quota_day_of(row.created_at)] += 1

    series = queries.usage_series(Filters(period=period))

    assert period.first_day == first
    assert {point["bucket"]: point["messages"] for point in series if point["messages"]} == dict(
        per_day
    )


def test_today_is_hourly(staff_client, ledger):
    rows = ledger.rows_between(today(ledger), today(ledger))

    response = staff_client.get(reverse("dashboard:overview"), {"range": "today"})

    assert response.context["filters"].period.hourly
    series = queries.usage_series(response.context["filters"])
    assert len(series) == 24
    assert sum(point["messages"] for point in series) == len(rows) > 0
    for point in series:
        hour_rows = [
            r
            for r in rows
            if r.created_at >= point["bucket"]
            and r.created_at < point["bucket"] + timedelta(hours=1)
        ]
        assert point["messages"] == len(hour_rows), point["bucket"]


def test_per_user_rows(staff_client, ledger):
    rows = last_30(ledger)
    first = today(ledger) - timedelta(days=29)
    blocks = ledger.blocks_between(first, today(ledger))
    expected = defaultdict(lambda: {"messages": 0, "tokens": 0, "cost": Decimal(0), "blocks": 0})
    for row in rows:
        entry = expected[row.user_id]
        entry["messages"] += 1
        entry["tokens"] += (
            row.prompt_cache_hit_tokens + row.prompt_cache_miss_tokens + row.completion_tokens
        )
        entry["cost"] += row.cost_usd
    for block in blocks:
        expected[block.user_id]["blocks"] += 1

    response = staff_client.get(reverse("dashboard:users"), {"range": "30d"})

    listed = {row["id"]: row for row in response.context["rows"]}
    assert response.context["total"] == len(expected)
    assert set(listed) == set(expected)
    for user_id, entry in expected.items():
        for name, value in entry.items():
            assert listed[user_id][name] == value, (user_id, name)
    # Sorted by cost, largest first, by default.
    costs = [row["cost"] for row in response.context["rows"]]
    assert costs == sorted(costs, reverse=True)
    # Someone who was only ever blocked is listed with no replies.
    assert listed[ledger.users["blocked"].pk]["messages"] == 0
    assert listed[ledger.users["blocked"].pk]["blocks"] > 0


def test_users_sort_search_and_pages(staff_client, ledger):
    url = reverse("dashboard:users")

    by_email = staff_client.get(url, {"range": "30d", "sort": "email"})
    emails = [row["email"] for row in by_email.context["rows"]]
    assert emails == sorted(emails)
    by_messages = staff_client.get(url, {"range": "30d", "sort": "messages"})
    counts = [row["messages"] for row in by_messages.context["rows"]]
    assert counts == sorted(counts)

    found = staff_client.get(url, {"range": "30d", "q": "ALICE"})
    assert [row["email"] for row in found.context["rows"]] == ["alice@example.com"]
    wildcard = staff_client.get(url, {"range": "30d", "q": "%"})
    assert wildcard.context["rows"] == []

    page = queries.user_rows(
        by_email.context["filters"], sort="email", descending=False, page=2, per_page=2
    )
    assert [row["email"] for row in page.rows] == emails[2:4]
    assert page.total == len(emails)


def test_per_model_rows(staff_client, ledger):
    rows = last_30(ledger)

    response = staff_client.get(reverse("dashboard:models"), {"range": "30d"})

    listed = {row["chat_model_id"]: row for row in response.context["rows"]}
    for slug, model in ledger.models.items():
        mine = [r for r in rows if r.chat_model_id == model.pk]
        row = listed[model.pk]
        assert row["replies"] == len(mine), slug
        for outcome in ("complete", "truncated", "stopped", "failed", "interrupted"):
            assert row[outcome] == sum(1 for r in mine if r.outcome == outcome), (slug, outcome)
        assert row["cost"] == sum((r.cost_usd for r in mine), Decimal(0))
        first_tokens = [r.time_to_first_token_ms for r in mine if r.time_to_first_token_ms]
        assert row["ttft_p50"] == pytest.approx(percentile_cont(first_tokens, 0.5))
        assert row["ttft_p95"] == pytest.approx(percentile_cont(first_tokens, 0.95))
        streamed = [r for r in mine if r.completion_tokens and r.time_to_first_token_ms]
        seconds = sum(r.duration_ms - r.time_to_first_token_ms for r in streamed) / 1000
        tokens = sum(r.completion_tokens for r in streamed)
        assert row["tokens_per_second"] == pytest.approx(tokens / seconds)


def test_percentile_matches_known_values():
    # percentile_cont interpolates: the median of 1..4 is 2.5 and p95 of 1..4 is 3.85.
    assert percentile_cont([1, 2, 3, 4], 0.5) == pytest.approx(2.5)
    assert percentile_cont([1, 2, 3, 4], 0.95) == pytest.approx(3.85)


def test_filters_narrow_every_figure(staff_client, ledger):
    rows = last_30(ledger)
    url = reverse("dashboard:overview")
    cases = {
        "plan": ({"plan": "team"}, [r for r in rows if r.plan == "team"]),
        "team": (
            {"team": ledger.other_team.pk},
            [r for r in rows if r.team_id == ledger.other_team.pk],
        ),
        "model": (
            {"model": ledger.models["quick"].pk},
            [r for r in rows if r.chat_model_id == ledger.models["quick"].pk],
        ),
    }
    for name, (params, expected_rows) in cases.items():
        response = staff_client.get(url, {"range": "30d", **params})
        totals = response.context["totals"]
        assert expected_rows, name
        assert totals["messages"] == len(expected_rows), name
        assert totals["cost"] == sum((r.cost_usd for r in expected_rows), Decimal(0)), name


def test_custom_range(staff_client, ledger):
    first = today(ledger) - timedelta(days=20)
    last = today(ledger) - timedelta(days=10)
    rows = ledger.rows_between(first, last)

    response = staff_client.get(
        reverse("dashboard:overview"),
        {"range": "custom", "start": first.isoformat(), "end": last.isoformat()},
    )

    assert response.context["totals"]["messages"] == len(rows)
    assert len(queries.usage_series(response.context["filters"])) == 11


def test_custom_range_errors_are_shown(staff_client, ledger):
    url = reverse("dashboard:overview")
    first = today(ledger)
    last = today(ledger) - timedelta(days=3)

    swapped = staff_client.get(
        url, {"range": "custom", "start": first.isoformat(), "end": last.isoformat()}
    )
    missing = staff_client.get(url, {"range": "custom", "start": first.isoformat()})
    garbage = staff_client.get(url, {"range": "custom", "start": "yesterday", "end": "x"})

    assert swapped.status_code == 200
    assert "The From date is after the To date; swap them." in swapped.text
    assert "A custom range needs both dates, From and To." in missing.text
    assert "Enter a valid date." in garbage.text
    # The page falls back to today and still renders.
    assert garbage.context["filters"].period.first_day == today(ledger)


def test_errors_page(staff_client, ledger):
    rows = [r for r in last_30(ledger) if r.error_code]
    by_code = defaultdict(int)
    for row in rows:
        by_code[row.error_code] += 1

    response = staff_client.get(reverse("dashboard:errors"), {"range": "30d"})

    assert {row["error_code"]: row["count"] for row in response.context["codes"]} == by_code
    latest = response.context["latest"]
    newest = sorted(
        [r for r in last_30(ledger) if r.error_code or r.outcome in ("failed", "interrupted")],
        key=lambda r: r.created_at,
        reverse=True,
    )[:20]
    assert [row["created_at"] for row in latest] == [r.created_at for r in newest]
    assert latest[0]["conversation_id"] == newest[0].message.conversation_id
    # Codes and details are shown, the reply text never.
    assert "secret reply text" not in response.text
    assert f"detail of {newest[0].error_code}" in response.text or not newest[0].error_code
    chart = response.context["chart"]
    assert sum(bar.raw for bar in chart.bars) == len(rows)


def test_spend_today_and_forecast(staff_client, ledger):
    SpendCap.objects.create(name="Site", amount_usd=Decimal("1000.00"))
    start = quotas._day_start(ledger.now)
    spent = sum((r.cost_usd for r in ledger.rows if r.created_at >= start), Decimal(0))

    response = staff_client.get(reverse("dashboard:overview"))

    spend = response.context["spend"]
    site, cap = spend.lines
    assert site.spent == spent
    assert cap.spent == spent
    assert cap.cap == Decimal("1000.00")
    assert float(cap.forecast) == pytest.approx(float(spent) / spend.elapsed_share, rel=1e-3)
    assert spend.day_start == start
    # The same sum the send check compares with the cap.
    assert quotas._spend_since(start, []) == spent


def test_blocks_chart_counts(staff_client, ledger):
    first = today(ledger) - timedelta(days=6)
    blocks = ledger.blocks_between(first, today(ledger))

    response = staff_client.get(reverse("dashboard:overview"), {"range": "7d"})

    charts = {chart.slug: chart for chart in response.context["charts"]}
    assert sum(bar.raw for bar in charts["blocks"].bars) == len(blocks)
    by_code = {row["code"]: row["count"] for row in response.context["blocks_by_code"]}
    assert sum(by_code.values()) == len(blocks)
    assert QuotaBlock.objects.count() == len(ledger.blocks)
