"""Time every usage dashboard page on a ledger of 1,000,000 rows and 10,000 users.

Creates its own PostgreSQL database (chatsite_bench_dash by default), applies
the migrations, seeds it with COPY, then requests each page in-process with
Django's test client (middleware, queries and templates included; no
network) several times and prints p50 and p95 per page as a Markdown table.
The database is dropped at the end unless --keep is given.

Usage: .venv/bin/python bench/dashboard.py [--rows 1000000] [--users 10000]
           [--days 30] [--runs 9] [--keep] [--reuse]
Loopback only: the script refuses a PostgreSQL server on another host.
"""

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
OUTCOMES = (
    ["complete"] * 90 + ["truncated"] * 3 + ["stopped"] * 3 + ["failed"] * 3 + ["interrupted"]
)
ERRORS = ["overloaded", "timeout", "stream_interrupted", "server_error", "rate_limited"]
BLOCK_CODES = ["quota_exceeded", "rate_limited", "busy", "budget_exhausted"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="chatsite_bench_dash")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=30, help="days the rows spread over")
    parser.add_argument("--runs", type=int, default=9, help="timed requests per page")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time an already seeded database")
    return parser.parse_args()


def admin_connection(server):
    import psycopg

    return psycopg.connect(f"{server}/postgres", autocommit=True)


def create_database(args):
    with admin_connection(args.server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}"')
        conn.execute(f'CREATE DATABASE "{args.database}"')


def drop_database(args):
    from django.db import connections

    connections.close_all()
    with admin_connection(args.server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def setup_django(args):
    os.environ["DATABASE_URL"] = f"{args.server}/{args.database}"
    # The quota day starts 30 minutes from now, so "today" holds 23.5 hours of the
    # seeded rows whenever the script runs, and no day boundary falls within the run.
    reset = datetime.now(UTC) + timedelta(minutes=30)
    os.environ["QUOTA_TIME_ZONE"] = "UTC"
    os.environ["QUOTA_RESET_AT"] = reset.strftime("%H:%M")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/11")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.test_settings")
    import django

    django.setup()


def seed(args):
    """Insert users, teams, models, conversations, failed-reply messages, ledger rows and blocks."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction

    from accounts.models import Plan, User
    from chat.models import ChatModel, Conversation, Endpoint, Message, ModelPrice
    from dashboard import rollups
    from teams.models import Membership, Team

    rng = random.Random(1)
    now = datetime.now(UTC)
    started = time.perf_counter()

    plans = {plan.slug: plan for plan in Plan.objects.all()}
    password = make_password(None)
    users = [
        User(
            email=f"user{index:05d}@example.com",
            password=password,
            plan=plans["team"] if index % 3 == 0 else None,
            is_guest=index % 10 == 9,
        )
        for index in range(args.users)
    ]
    User.objects.bulk_create(users, batch_size=2000)
    staff = User.objects.create_user("staff@example.com", "bench-password", is_staff=True)
    user_ids = list(User.objects.exclude(pk=staff.pk).order_by("pk").values_list("pk", flat=True))
    teams = Team.objects.bulk_create([Team(name=f"Team {i:02d}") for i in range(args.teams)])
    members = []
    team_of = {}
    for index, user_id in enumerate(user_ids[: len(user_ids) // 3]):
        team = teams[index % len(teams)]
        team_of[user_id] = team.pk
        role = Membership.Role.ADMIN if index < len(teams) else Membership.Role.MEMBER
        members.append(Membership(team=team, user_id=user_id, role=role))
    Membership.objects.bulk_create(members, batch_size=2000)

    endpoint = Endpoint.objects.create(
        slug="bench", name="Bench", kind=Endpoint.Kind.OPENAI, base_url="http://127.0.0.1:9"
    )
    models = []
    for index, (slug, model_class) in enumerate(
        [
            ("flash", "thinking"),
            ("flash-instant", "instant"),
            ("r1", "thinking"),
            ("qwen", "instant"),
        ]
    ):
        model = ChatModel.objects.create(
            slug=slug,
            endpoint=endpoint,
            model_id=slug,
            display_name=slug,
            model_class=model_class,
            sort_order=index,
        )
        ModelPrice.objects.create(
            model=model,
            effective_from=now - timedelta(days=365),
            input_cache_hit=Decimal("0.03"),
            input_cache_miss=Decimal("0.30"),
            output=Decimal("1.20"),
        )
        models.append(model)

    conversations = Conversation.objects.bulk_create(
        [Conversation(owner_id=user_id, title="bench") for user_id in user_ids], batch_size=2000
    )
    conversation_of = {c.owner_id: c.pk for c in conversations}
    guest_ids = set(User.objects.filter(is_guest=True).values_list("pk", flat=True))
    print(f"users, teams, conversations: {time.perf_counter() - started:.1f} s", flush=True)

    span = args.days * 24 * 3600
    failed_messages = []
    columns = (
        "message_id, user_id, subject, plan, team_id, chat_model_id, model_id, model_class, "
        "outcome, counted, prompt_cache_hit_tokens, prompt_cache_miss_tokens, completion_tokens, "
        "reasoning_tokens, cost_usd, time_to_first_token_ms, duration_ms, error_code, created_at"
    )
    # The rollup trigger is off while COPY loads a million rows, and the rollups are built
    # once afterwards; row by row the trigger would add minutes to the seeding.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE chat_usagerecord DISABLE TRIGGER dashboard_rollup")
    # One transaction: the ledger's message keys are checked at commit, after the messages.
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.copy(f"COPY chat_usagerecord ({columns}) FROM STDIN") as copy:
            for index in range(args.rows):
                # Squaring a uniform number skews usage to a few heavy users; all take part.
                user_id = user_ids[int(len(user_ids) * rng.random() ** 2)]
                model = models[rng.randrange(len(models))]
                outcome = OUTCOMES[rng.randrange(len(OUTCOMES))]
                error = (
                    ERRORS[rng.randrange(len(ERRORS))]
                    if outcome in ("failed", "interrupted")
                    else ""
                )
                hit = rng.randrange(0, 6000)
                miss = rng.randrange(0, 3000)
                completion = 0 if outcome == "failed" else rng.randrange(0, 4000)
                reasoning = (
                    rng.randrange(0, completion + 1) if model.model_class == "thinking" else 0
                )
                ttft = rng.randrange(200, 20_000) if completion else None
                duration = (ttft or 0) + rng.randrange(500, 120_000)
                cost = (
                    Decimal(hit) * Decimal("0.03")
                    + Decimal(miss) * Decimal("0.30")
                    + Decimal(completion) * Decimal("1.20")
                ) / Decimal(1_000_000)
                # Oldest first, as replies end: a day's rows sit together in the table.
                created = now - timedelta(seconds=span * (1 - (index + rng.random()) / args.rows))
                message_id = None
                if error:
                    message_id = uuid.uuid4()
                    failed_messages.append((message_id, conversation_of[user_id], error, created))
                plan = "team" if user_id in team_of else "free"
                if user_id in guest_ids:
                    plan = "guest"
                copy.write_row(
                    (
                        message_id,
                        user_id,
                        f"user:{user_id}",
                        plan,
                        team_of.get(user_id),
                        model.pk,
                        model.model_id,
                        model.model_class,
                        outcome,
                        outcome in ("complete", "truncated"),
                        hit,
                        miss,
                        completion,
                        reasoning,
                        cost.quantize(Decimal("0.00000001")),
                        ttft,
                        duration,
                        error,
                        created,
                    )
                )
                if index and index % 200_000 == 0:
                    print(
                        f"  {index} ledger rows: {time.perf_counter() - started:.1f} s", flush=True
                    )
        print(f"ledger rows: {time.perf_counter() - started:.1f} s", flush=True)
        # Messages only for failed replies: the errors page joins them for the detail.
        Message.objects.bulk_create(
            [
                Message(
                    id=message_id,
                    conversation_id=conversation_id,
                    role="assistant",
                    status="failed",
                    error_code=error,
                    error_detail=f"upstream said {error}",
                )
                for message_id, conversation_id, error, _created in failed_messages
            ],
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY accounts_quotablock (user_id, team_id, plan, model_class, code, created_at) "
            "FROM STDIN"
        ) as copy:
            for _index in range(args.blocks):
                user_id = user_ids[rng.randrange(len(user_ids))]
                copy.write_row(
                    (
                        user_id,
                        team_of.get(user_id),
                        "team" if user_id in team_of else "free",
                        "thinking",
                        BLOCK_CODES[rng.randrange(len(BLOCK_CODES))],
                        now - timedelta(seconds=rng.random() * span),
                    )
                )
        cursor.execute("ALTER TABLE chat_usagerecord ENABLE TRIGGER dashboard_rollup")
    rebuild_started = time.perf_counter()
    rollups.rebuild()
    print(f"rollups rebuilt in {time.perf_counter() - rebuild_started:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)


def trigger_cost(inserts=1000, rounds=3):
    """Return the mean milliseconds of one ledger insert, without and with the rollup trigger.

    Each insert is its own transaction, as when a reply ends. The two states
    alternate for `rounds` rounds after a warm-up, so a busy moment on the
    machine does not land on one state only. Every row is deleted again in
    the trigger state it was inserted in, so the rollups stay exact.
    """
    from django.db import connection

    from chat.models import ChatModel, UsageRecord

    model = ChatModel.objects.get(slug="flash")
    user_id = UsageRecord.objects.values_list("user_id", flat=True).first()

    def insert_rows(count):
        return [
            UsageRecord.objects.create(
                user_id=user_id,
                plan="free",
                chat_model=model,
                model_id=model.model_id,
                model_class=model.model_class,
                outcome="complete",
                counted=True,
                prompt_cache_miss_tokens=100,
                completion_tokens=200,
                cost_usd=Decimal("0.0003"),
                time_to_first_token_ms=900,
                duration_ms=5000,
            ).pk
            for _index in range(count)
        ]

    def set_trigger(state):
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE chat_usagerecord {state} TRIGGER dashboard_rollup")

    UsageRecord.objects.filter(pk__in=insert_rows(200)).delete()
    spent = {"DISABLE": 0.0, "ENABLE": 0.0}
    for _round in range(rounds):
        for state in spent:
            set_trigger(state)
            started = time.perf_counter()
            created = insert_rows(inserts)
            spent[state] += time.perf_counter() - started
            UsageRecord.objects.filter(pk__in=created).delete()
    set_trigger("ENABLE")
    per_insert = {state: total * 1000 / (inserts * rounds) for state, total in spent.items()}
    return per_insert["DISABLE"], per_insert["ENABLE"]


def pages(some_user):
    from django.urls import reverse

    from chat.models import ChatModel

    model = str(ChatModel.objects.get(slug="flash").pk)
    overview = reverse("dashboard:overview")
    users = reverse("dashboard:users")
    return [
        ("overview, today", overview, {"range": "today"}),
        ("overview, 7 days", overview, {"range": "7d"}),
        ("overview, 30 days", overview, {"range": "30d"}),
        ("overview, 30 days, one model", overview, {"range": "30d", "model": model}),
        ("users, 30 days, by cost", users, {"range": "30d"}),
        (
            "users, 30 days, by email, page 50",
            users,
            {"range": "30d", "sort": "email", "page": "50"},
        ),
        ("users, 30 days, search", users, {"range": "30d", "q": "user0001"}),
        ("one user, 30 days", reverse("dashboard:user", args=[some_user]), {"range": "30d"}),
        ("models, 30 days", reverse("dashboard:models"), {"range": "30d"}),
        ("errors, 30 days", reverse("dashboard:errors"), {"range": "30d"}),
        ("daily CSV, 30 days", reverse("dashboard:days_csv"), {"range": "30d"}),
        ("users CSV, 30 days", reverse("dashboard:users_csv"), {"range": "30d"}),
    ]


def time_pages(args):
    from django.test import Client, override_settings

    from accounts.models import User
    from teams.models import Membership

    staff = User.objects.get(email="staff@example.com")
    team_admin = Membership.objects.filter(role="admin").select_related("user").first().user
    results = []
    with override_settings(ALLOWED_HOSTS=["testserver"], METRICS_TOKEN="bench-token"):
        heavy_user = User.objects.get(email="user00000@example.com").pk
        team_member = Membership.objects.filter(team__memberships__user=team_admin).exclude(
            user=team_admin
        )
        viewers = [
            ("staff", staff, heavy_user),
            ("team admin", team_admin, team_member.values_list("user_id", flat=True)[0]),
        ]
        for viewer_name, viewer, some_user in viewers:
            client = Client()
            client.force_login(viewer)
            for name, url, params in pages(some_user):
                if viewer_name == "team admin" and "CSV" in name:
                    continue
                results.append((f"{name} ({viewer_name})", measure(client, url, params, args.runs)))
        client = Client(headers={"Authorization": "Bearer bench-token"})
        results.append(("/metrics", measure(client, "/metrics", {}, args.runs)))
    return results


def measure(client, url, params, runs):
    response = client.get(url, params)  # warm-up: connections, templates, caches
    if response.status_code != 200:
        raise SystemExit(f"{url} {params} returned status {response.status_code}")
    timings = []
    for _run in range(runs):
        started = time.perf_counter()
        response = client.get(url, params)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    timings.sort()
    p95 = statistics.quantiles(timings, n=20, method="inclusive")[18]
    return statistics.median(timings), p95, max(timings)


def main():
    args = parse_args()
    if urlsplit(args.server).hostname not in LOOPBACK:
        raise SystemExit(f"{args.server} is not on this machine; the benchmark runs locally only.")
    if not args.reuse:
        create_database(args)
    setup_django(args)
    from django.core.management import call_command
    from django.db import connection

    try:
        if not args.reuse:
            call_command("migrate", verbosity=0)
            seed(args)
        else:
            from dashboard import rollups

            # The day boundary moved since the database was seeded.
            rollups.rebuild()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM chat_usagerecord")
            rows = cursor.fetchone()[0]
        print(f"\n{rows} ledger rows over {args.days} days, {args.runs} timed runs per page")
        # Other work on the machine slows the pages down; the load shows how much there was.
        print("load average before: {:.1f} {:.1f} {:.1f}\n".format(*os.getloadavg()))
        print("| page | p50 ms | p95 ms | max ms |")
        print("| --- | --- | --- | --- |")
        for name, (p50, p95, worst) in time_pages(args):
            print(f"| {name} | {p50:.0f} | {p95:.0f} | {worst:.0f} |", flush=True)
        print("\nload average after: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
        without, with_trigger = trigger_cost()
        print(
            f"\nOne ledger insert: {without:.2f} ms without the rollup trigger, "
            f"{with_trigger:.2f} ms with it (mean of 3000 each, one transaction each)"
        )
    finally:
        if not args.keep:
            drop_database(args)


if __name__ == "__main__":
    main()
