"""CSV exports of the dashboard tables, and the Prometheus endpoint /metrics."""

import csv
import io
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from accounts import quotas
from accounts.models import QuotaBlock
from chat.models import Message
from dashboard import metrics as dashboard_metrics
from tests.dashboard.seed import quota_day_of, seed
from tests.factories import make_conversation, make_message

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"


@pytest.fixture
def ledger():
    return seed(rows=120)


def read_csv(response):
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_users_csv_content(client, ledger):
    client.force_login(ledger.users["staff"])
    today = quotas.quota_day(ledger.now)
    rows = ledger.rows_between(today - timedelta(days=6), today)
    blocks = ledger.blocks_between(today - timedelta(days=6), today)
    expected = defaultdict(lambda: {"replies": 0, "tokens": 0, "cost": Decimal(0), "blocks": 0})
    for row in rows:
        expected[row.user_id]["replies"] += 1
        expected[row.user_id]["tokens"] += (
            row.prompt_cache_hit_tokens + row.prompt_cache_miss_tokens + row.completion_tokens
        )
        expected[row.user_id]["cost"] += row.cost_usd
    for block in blocks:
        expected[block.user_id]["blocks"] += 1

    response = client.get(reverse("dashboard:users_csv"), {"range": "7d", "sort": "email"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="usage-users-')
    lines = read_csv(response)
    assert [line["email"] for line in lines] == sorted(line["email"] for line in lines)
    assert {int(line["user_id"]) for line in lines} == set(expected)
    for line in lines:
        entry = expected[int(line["user_id"])]
        assert int(line["replies"]) == entry["replies"]
        assert int(line["tokens"]) == entry["tokens"]
        assert Decimal(line["cost_usd"]) == entry["cost"]
        assert int(line["quota_blocks"]) == entry["blocks"]
    guest_line = next(line for line in lines if line["email"].startswith("guest-"))
    assert guest_line["guest"] == "yes"


def test_days_csv_content(client, ledger):
    client.force_login(ledger.users["staff"])
    today = quotas.quota_day(ledger.now)
    rows = ledger.rows_between(today - timedelta(days=29), today)
    per_day = defaultdict(list)
    for row in rows:
        per_day[quota_day_of(row.created_at)].append(row)

    response = client.get(reverse("dashboard:days_csv"), {"range": "30d"})

    lines = read_csv(response)
    assert len(lines) == 30
    assert lines[-1]["day"] == today.isoformat()
    for line in lines:
        mine = per_day.get(date.fromisoformat(line["day"]), [])
        assert int(line["replies"]) == len(mine), line["day"]
        assert Decimal(line["cost_usd"]) == sum((r.cost_usd for r in mine), Decimal(0))
        answer = sum(r.completion_tokens - r.reasoning_tokens for r in mine)
        assert int(line["answer_tokens"]) == answer


def test_csv_email_never_runs_as_formula(client, ledger):
    client.force_login(ledger.users["staff"])
    sneaky = ledger.users["carol"]
    sneaky.email = "=cmd@example.com"
    sneaky.save()

    response = client.get(reverse("dashboard:users_csv"), {"range": "30d"})

    emails = [line["email"] for line in read_csv(response)]
    assert "'=cmd@example.com" in emails
    assert "=cmd@example.com" not in emails


def test_team_admin_csv_is_team_only(client, ledger):
    client.force_login(ledger.users["admin"])

    response = client.get(reverse("dashboard:users_csv"), {"range": "30d"})

    emails = {line["email"] for line in read_csv(response)}
    assert emails <= {"alice@example.com", "bob@example.com"}
    assert emails


# /metrics


def scrape(client, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", headers=headers)


def samples(response):
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@override_settings(METRICS_TOKEN="")
def test_metrics_off_without_token_setting(client, ledger):
    assert scrape(client).status_code == 404


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_token_checks(client, ledger):
    missing = scrape(client, token=None)
    wrong = scrape(client, token=TOKEN + "x")
    other_scheme = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    right = scrape(client)
    # Signing in as staff is no substitute for the token.
    client.force_login(ledger.users["staff"])
    session_only = scrape(client, token=None)

    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 403
    assert other_scheme.status_code == 401
    assert session_only.status_code == 401
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain")


@override_settings(METRICS_TOKEN=TOKEN)
def test_metrics_values(client, ledger):
    conversation = make_conversation(ledger.users["dave"])
    make_message(conversation, Message.Role.ASSISTANT, status=Message.Status.STREAMING)
    make_message(conversation, Message.Role.ASSISTANT, status=Message.Status.QUEUED)
    make_message(conversation, Message.Role.ASSISTANT, status=Message.Status.QUEUED)

    found = samples(scrape(client))

    for model in ledger.models.values():
        mine = [r for r in ledger.rows if r.model_id == model.model_id]
        by_outcome = defaultdict(int)
        for row in mine:
            by_outcome[row.outcome] += 1
        for outcome, count in by_outcome.items():
            key = ("chatsite_replies_total", (("model", model.model_id), ("outcome", outcome)))
            assert found[key] == count
        label = (("model", model.model_id),)
        assert found[("chatsite_cost_usd_total", label)] == pytest.approx(
            float(sum((r.cost_usd for r in mine), Decimal(0)))
        )
        reasoning = sum(r.reasoning_tokens for r in mine)
        assert found[("chatsite_tokens_total", (("kind", "reasoning"), *label))] == reasoning
        answer = sum(r.completion_tokens - r.reasoning_tokens for r in mine)
        assert found[("chatsite_tokens_total", (("kind", "answer"), *label))] == answer
        # Histogram buckets are cumulative counts of rows at or under each bound.
        first_tokens = [r.time_to_first_token_ms for r in mine if r.time_to_first_token_ms]
        for bound in dashboard_metrics.FIRST_TOKEN_BUCKETS:
            key = (
                "chatsite_time_to_first_token_seconds_bucket",
                (("le", f"{float(bound)}"), *label),
            )
            assert found[key] == sum(1 for ms in first_tokens if ms <= bound * 1000), bound
        inf = ("chatsite_time_to_first_token_seconds_bucket", (("le", "+Inf"), *label))
        assert found[inf] == len(first_tokens)
        assert found[("chatsite_time_to_first_token_seconds_sum", label)] == pytest.approx(
            sum(first_tokens) / 1000
        )
        durations = [r.duration_ms for r in mine]
        assert found[("chatsite_reply_duration_seconds_count", label)] == len(durations)

    errors = defaultdict(int)
    for row in ledger.rows:
        if row.error_code:
            errors[row.error_code] += 1
    for code, count in errors.items():
        assert found[("chatsite_reply_errors_total", (("code", code),))] == count
    blocks = defaultdict(int)
    for block in QuotaBlock.objects.all():
        blocks[block.code] += 1
    for code, count in blocks.items():
        assert found[("chatsite_quota_blocks_total", (("code", code),))] == count
    assert found[("chatsite_replies_in_flight", (("status", "queued"),))] == 2
    assert found[("chatsite_replies_in_flight", (("status", "streaming"),))] == 1
