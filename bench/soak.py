"""Soak the whole site: simulated users over real websockets, workers killed on the way.

Starts its own processes on this machine: a private redis-server, the
upstream simulator, the web server, two Celery workers and the beat process
(sweep). Creates `--users` accounts on a plan of their own, and each user
chats over a real websocket until `--minutes` have passed or `--max-messages`
were sent: mostly complete replies, some stopped by the user, some failing
upstream (HTTP 500 after the retries) and some cut by the length limit.
A worker is killed with SIGKILL and started again at 30 % and 60 % of the run.

Then it checks the database:
- every accepted message reached a terminal state;
- every `complete` reply equals, byte for byte, what the simulator sends for
  its question (the simulator's output is a deterministic function of it);
- each user's quota counter equals the replies that count by the outcome
  table (complete, truncated, stopped after output), no reservation is left
  open, and the usage ledger has one row per reply;
- every `message.done` a client saw carries the status stored in the database.

It prints a JSON summary and exits non-zero when a check fails.

Usage (the database must exist; it gets migrated):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/chatsite_soak \\
      .venv/bin/python bench/soak.py --users 100 --minutes 10

Everything listens on 127.0.0.1; the lost-worker timeouts are scaled down
(stale heartbeat 10 s, sweep every 2 s) so a 10-minute run shows them.
"""

import argparse
import asyncio
import collections
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "test-artifacts" / "soak"
IN_FLIGHT = {"queued", "streaming"}

# (kind, weight, directive): every reply is short, so a user sends often.
KINDS = [
    ("complete", 80, "[sim rate=80 reasoning=30 answer=40]"),
    ("stop", 8, "[sim rate=20 reasoning=60 answer=40]"),
    ("fail", 6, "[sim fault=http_500 rate=80]"),
    ("truncate", 6, "[sim fault=length rate=80 reasoning=30 answer=40]"),
]
TOPICS = [
    "binary search",
    "TCP handshakes",
    "garbage collection",
    "hash maps",
    "B-trees",
    "leader election",
    "memoisation",
    "unicode normalisation",
    "backpressure",
    "CRDTs",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    started = []  # every process of this run, for the clean-up after a failed start

    def __init__(self, name, command, env):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = open(LOGS / f"{name}.log", "a")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        Process.started.append(self)

    def kill(self):
        self.popen.kill()
        self.popen.wait()

    def stop(self):
        if self.log.closed:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up in {timeout} s; see {LOGS}")


class Site:
    """The processes of one soak run."""

    def __init__(self, database_url):
        try:
            self._start(database_url)
        except BaseException:
            # A process that failed to come up must not leave the others running.
            for process in Process.started:
                process.stop()
            raise

    def _start(self, database_url):
        python = sys.executable
        self.redis_port = free_port()
        self.redis = Process(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            dict(os.environ),
        )  # fmt: skip
        simulator_port, web_port = free_port(), free_port()
        self.simulator_url = f"http://127.0.0.1:{simulator_port}"
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DEEPSEEK_")},
            # The test settings serve static files without collectstatic; the rest is
            # the production configuration.
            "DJANGO_SETTINGS_MODULE": "chatsite.test_settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SIMULATOR_URL": self.simulator_url,
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "CHAT_STALE_HEARTBEAT_SECONDS": "10",
            "CHAT_SWEEP_SECONDS": "2",
            "CHAT_REQUEUE_AFTER_SECONDS": "10",
            "CELERY_VISIBILITY_TIMEOUT_SECONDS": "30",
            "UPSTREAM_BACKOFF_SECONDS": "0.05",
            "LOG_LEVEL": os.environ.get("SOAK_LOG_LEVEL", "WARNING"),
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(self.env)
        wait_until(lambda: _redis_ping(self.redis_port), 20, "redis-server")
        self.simulator = Process(
            "simulator",
            [python, "-m", "chat.simulator", "--host", "127.0.0.1", "--port", str(simulator_port)],
            self.env,
        )
        wait_until(
            lambda: httpx.get(f"{self.simulator_url}/_sim/health").status_code == 200,
            30,
            "simulator",
        )
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env,
            check=True,
        )  # fmt: skip
        self.worker_count = 0
        self.workers = [self.start_worker(), self.start_worker()]
        self.beat = Process(
            "beat",
            [python, "-m", "celery", "--app", "chatsite", "worker", "--beat", "--queues",
             "sweep", "--pool", "threads", "--concurrency", "2", "--hostname", "soak-beat@%h",
             "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
             "--schedule", str(LOGS / "beat-schedule")],
            self.env,
        )  # fmt: skip
        self.web = Process(
            "web",
            [python, "-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1",
             "--port", str(web_port), "--ws-max-size", "2097152", "--no-access-log",
             "--log-level", "warning"],
            self.env,
        )  # fmt: skip
        wait_until(
            lambda: httpx.get(f"{self.web_url}/accounts/sign-in/").status_code == 200, 60, "web"
        )

    def start_worker(self):
        self.worker_count += 1
        return Process(
            f"worker-{self.worker_count}",
            [sys.executable, "-m", "celery", "--app", "chatsite", "worker", "--pool", "threads",
             "--concurrency", "60", "--hostname", f"soak-{self.worker_count}@%h",
             "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
            self.env,
        )  # fmt: skip

    def stop(self):
        for process in [self.web, self.beat, *self.workers, self.simulator, self.redis]:
            process.stop()


def _redis_ping(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
        probe.sendall(b"PING\r\n")
        return probe.recv(16).startswith(b"+PONG")


# ---- Users -----------------------------------------------------------------------


class Stats:
    def __init__(self):
        self.sent = 0
        self.accepted = 0
        self.refused = collections.Counter()
        self.client_done = {}  # reply id -> status seen by the client
        self.reconnects = 0
        self.timeouts = 0
        self.first_delta_seconds = []  # send -> first delta seen by the client
        self.stop_outcomes = collections.Counter()  # status of replies the client stopped


class User:
    def __init__(self, number, cookie, site, stats, rng, deadline, max_messages):
        self.number = number
        self.cookie = cookie
        self.site = site
        self.stats = stats
        self.rng = rng
        self.deadline = deadline
        self.max_messages = max_messages
        self.connection = None
        self.kinds = KINDS

    async def connect(self):
        url = self.site.web_url.replace("http://", "ws://") + "/ws/chat/"
        while True:
            try:
                self.connection = await websockets.connect(
                    url,
                    additional_headers={"Cookie": self.cookie, "Origin": self.site.web_url},
                    open_timeout=20,
                    max_size=4 * 2**20,
                )
                return
            except (OSError, websockets.WebSocketException, TimeoutError):
                await asyncio.sleep(1 + self.rng.random())

    async def send(self, frame):
        await self.connection.send(json.dumps(frame))

    async def receive(self, timeout):
        return json.loads(await asyncio.wait_for(self.connection.recv(), timeout))

    async def run(self):
        await asyncio.sleep(self.rng.uniform(0, 10))  # users arrive over ten seconds
        await self.connect()
        conversation = None
        count = 0
        while time.monotonic() < self.deadline and self.stats.sent < self.max_messages:
            kind, directive = self.pick()
            question = (
                f"{directive}\nSoak {self.number}-{count}: explain "
                f"{self.rng.choice(TOPICS)} briefly."
            )
            self.stats.sent += 1
            count += 1
            reply_id, conversation = await self.exchange(kind, question, conversation)
            if count % 5 == 0:
                conversation = None  # a new conversation now and then
            if reply_id is None:
                await asyncio.sleep(2)
                continue
            await asyncio.sleep(self.rng.uniform(3, 9))
        await self.connection.close()

    def pick(self):
        kinds, weights, directives = zip(*self.kinds, strict=True)
        index = self.rng.choices(range(len(kinds)), weights=weights)[0]
        return kinds[index], directives[index]

    async def exchange(self, kind, question, conversation):
        client_id = str(uuid.uuid4())
        frame = {
            "type": "message.send",
            "conversation": conversation,
            "content": question,
            "client_id": client_id,
        }
        reply_id = None
        stop_sent = False
        first_delta = False
        sent_at = time.monotonic()
        give_up = sent_at + 180
        await self.safe_send(frame)
        while time.monotonic() < give_up:
            try:
                event = await self.receive(timeout=15)
            except TimeoutError:
                # Quiet for long: ask again where the reply is (a lost event or socket).
                if reply_id is None:
                    await self.safe_send(frame)  # the same client_id is never stored twice
                else:
                    await self.safe_send(
                        {"type": "conversation.open", "conversation": conversation,
                         "message": reply_id}
                    )  # fmt: skip
                continue
            except websockets.ConnectionClosed:
                self.stats.reconnects += 1
                await self.connect()
                if reply_id is None:
                    await self.safe_send(frame)
                else:
                    await self.safe_send(
                        {"type": "conversation.open", "conversation": conversation,
                         "message": reply_id}
                    )  # fmt: skip
                continue
            kind_of_event = event.get("type")
            if kind_of_event == "error" and event.get("client_id") == client_id:
                self.stats.refused[event["code"]] += 1
                return None, conversation if event["code"] != "not_found" else None
            if kind_of_event == "message.accepted" and event["client_id"] == client_id:
                if reply_id is None:
                    self.stats.accepted += 1
                reply_id = event["assistant_message"]["id"]
                conversation = event["conversation"]
                continue
            if reply_id is None or event.get("message") != reply_id:
                continue
            if kind_of_event.endswith(".delta") and not first_delta:
                first_delta = True
                self.stats.first_delta_seconds.append(time.monotonic() - sent_at)
            if kind == "stop" and not stop_sent and kind_of_event.endswith(".delta"):
                stop_sent = True
                await self.safe_send({"type": "message.stop", "message": reply_id})
            status = event.get("status")
            if kind_of_event in ("message.done", "snapshot") and status not in IN_FLIGHT:
                self.stats.client_done[reply_id] = status
                if stop_sent:
                    self.stats.stop_outcomes[status] += 1
                return reply_id, conversation
        self.stats.timeouts += 1
        return reply_id, conversation

    async def safe_send(self, frame):
        try:
            await self.send(frame)
        except websockets.ConnectionClosed:
            self.stats.reconnects += 1
            await self.connect()
            await self.send(frame)


async def kill_workers(site, start, duration, log):
    for fraction in (0.3, 0.6):
        await asyncio.sleep(max(0.0, start + duration * fraction - time.monotonic()))
        victim = site.workers.pop(0)
        victim.kill()
        log.append({"at_seconds": round(time.monotonic() - start, 1), "killed": victim.name})
        await asyncio.sleep(5)
        site.workers.append(site.start_worker())


# ---- Setup and checks (Django ORM) ------------------------------------------------


def setup_users(count):
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import Plan, PlanLimit, QuotaCounter, User

    User.objects.filter(email__startswith="soak-").delete()
    QuotaCounter.objects.filter(subject__startswith="user:").exclude(
        subject__in=[f"user:{pk}" for pk in User.objects.values_list("pk", flat=True)]
    ).delete()
    plan, _ = Plan.objects.get_or_create(slug="soak", defaults={"name": "Soak"})
    for model_class in ("thinking", "instant"):
        PlanLimit.objects.update_or_create(
            plan=plan,
            model_class=model_class,
            defaults={"messages_per_day": 100_000, "messages_per_minute": None, "max_in_flight": 1},
        )
    cookies = []
    for number in range(count):
        user = User.objects.create_user(
            email=f"soak-{number}@example.com", password=secrets.token_urlsafe(16), plan=plan
        )
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        cookies.append(f"sessionid={session.session_key}")
    return cookies


def expected_texts(question):
    from chat.simulator.completions import build_plan
    from chat.simulator.script import Options, apply_directives

    options = Options()
    text = apply_directives(question, options)
    plan = build_plan(text, options, thinking=True, max_tokens=None)
    return "".join(plan.reasoning), "".join(plan.answer)


def check_database(stats):
    from django.db.models import Sum

    from accounts import quotas
    from accounts.models import QuotaCounter, User
    from chat.models import Message, UsageRecord

    users = list(User.objects.filter(email__startswith="soak-"))
    replies = list(
        Message.objects.filter(conversation__owner__in=users, role="assistant").select_related(
            "conversation"
        )
    )
    questions = {
        (m.conversation_id, m.created_at): m.content
        for m in Message.objects.filter(conversation__owner__in=users, role="user")
    }
    by_conversation = collections.defaultdict(list)
    for created_at_key, content in questions.items():
        by_conversation[created_at_key[0]].append((created_at_key[1], content))

    outcomes = collections.Counter(reply.status for reply in replies)
    not_terminal = [str(r.id) for r in replies if r.status in IN_FLIGHT]
    mismatched, compared = [], 0
    counted = collections.Counter()
    open_reservations = 0
    for reply in replies:
        earlier = [item for item in by_conversation[reply.conversation_id]
                   if item[0] < reply.created_at]  # fmt: skip
        question = max(earlier)[1] if earlier else ""
        if reply.status == "complete":
            compared += 1
            if (reply.reasoning, reply.content) != expected_texts(question):
                mismatched.append(str(reply.id))
        if quotas.counts(reply.status, bool(reply.content or reply.reasoning)):
            counted[reply.conversation.owner_id] += 1
        if reply.quota_state == Message.QuotaState.RESERVED:
            open_reservations += 1

    quota_mismatches = []
    for user in users:
        used = (
            QuotaCounter.objects.filter(subject=f"user:{user.pk}").aggregate(total=Sum("used"))[
                "total"
            ]
            or 0
        )
        if used != counted[user.pk]:
            quota_mismatches.append(
                {"user": user.email, "counter": used, "counted": counted[user.pk]}
            )

    ledger_rows = UsageRecord.objects.filter(message__in=[r.id for r in replies]).count()
    ledger_counted = UsageRecord.objects.filter(
        message__in=[r.id for r in replies], counted=True
    ).count()
    stored = {str(r.id): r.status for r in replies}
    client_disagrees = {
        reply_id: (status, stored.get(reply_id))
        for reply_id, status in stats.client_done.items()
        if stored.get(reply_id) != status
    }
    return {
        "replies": len(replies),
        "outcomes": dict(outcomes),
        "not_terminal": not_terminal,
        "complete_compared": compared,
        "complete_mismatched": mismatched,
        "quota_mismatches": quota_mismatches,
        "open_reservations": open_reservations,
        "counted_total": sum(counted.values()),
        "ledger_rows": ledger_rows,
        "ledger_counted": ledger_counted,
        "client_status_disagrees": client_disagrees,
    }


def wait_for_settled(timeout):
    from chat.models import Message

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = Message.objects.filter(
            conversation__owner__email__startswith="soak-", status__in=IN_FLIGHT
        ).count()
        if left == 0:
            return 0
        time.sleep(1)
    return left


async def drive(site, cookies, minutes, max_messages, seed, only=None):
    stats = Stats()
    start = time.monotonic()
    duration = minutes * 60
    deadline = start + duration
    rng = random.Random(seed)
    kills = []
    users = [
        User(number, cookie, site, stats, random.Random(rng.random()), deadline, max_messages)
        for number, cookie in enumerate(cookies)
    ]
    if only:
        for user in users:
            user.kinds = [kind for kind in KINDS if kind[0] == only]
    killer = asyncio.create_task(kill_workers(site, start, duration, kills))
    await asyncio.gather(*(user.run() for user in users))
    await killer
    return stats, kills, time.monotonic() - start


def percentiles(values):
    if not values:
        return {}
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)  # noqa: E731
    return {"count": len(ordered), "p50": pick(0.5), "p95": pick(0.95), "max": ordered[-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--max-messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the summary to this file")
    parser.add_argument(
        "--only", choices=[kind[0] for kind in KINDS], help="send only this kind of message"
    )
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    if not database_url or "127.0.0.1" not in database_url and "localhost" not in database_url:
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database on this machine.")

    sys.path.insert(0, str(ROOT))
    site = Site(database_url)
    try:
        cookies = setup_users(args.users)
        stats, kills, elapsed = asyncio.run(
            drive(site, cookies, args.minutes, args.max_messages, args.seed, args.only)
        )
        left = wait_for_settled(90)
        summary = {
            "users": args.users,
            "minutes": args.minutes,
            "elapsed_seconds": round(elapsed, 1),
            "sent": stats.sent,
            "accepted": stats.accepted,
            "refused": dict(stats.refused),
            "client_reconnects": stats.reconnects,
            "client_timeouts": stats.timeouts,
            "worker_kills": kills,
            "first_delta_seconds": percentiles(stats.first_delta_seconds),
            "stop_requests_by_outcome": dict(stats.stop_outcomes),
            "in_flight_after_settle_wait": left,
            **check_database(stats),
        }
    finally:
        site.stop()
    failed = (
        summary["not_terminal"]
        or summary["complete_mismatched"]
        or summary["quota_mismatches"]
        or summary["open_reservations"]
        or summary["ledger_rows"] != summary["replies"]
        or summary["ledger_counted"] != summary["counted_total"]
        or summary["client_status_disagrees"]
    )
    summary["result"] = "FAILED" if failed else "passed"
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
