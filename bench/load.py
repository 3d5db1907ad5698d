"""Load test: N concurrent streaming replies over real websockets, against a baseline.

For each client count N the script starts its own stack on loopback ports
(a private Redis, the upstream simulator, uvicorn web processes and Celery
worker processes, all against a database of its own), then:

1. Baseline: N clients post the same requests to the simulator directly
   (httpx, streaming) and record when each token arrives.
2. Site: N signed-in users each open a websocket, send one message with a
   simulator directive (30 tokens a second, 60 s of reasoning, then a
   10 s answer by default), and record every delta's arrival time and text.

Lateness of a token = its arrival time - the time the simulator was due to
send it (the request's first byte + i / rate, where i counts tokens from 1).
Token boundaries come from the simulator's deterministic text
(chat/simulator/content.py), matched against cumulative delta lengths. The
added latency is site lateness minus baseline lateness.

Also reported: send -> upstream request received, errors, CPU seconds and
share and peak RSS per process (/proc), Redis commands per reply (INFO
commandstats of the private Redis), database writes per reply
(pg_stat_user_tables n_tup_ins + n_tup_upd + n_tup_del), memory per reply in
flight, and, in a separate multi-turn phase, how much of each turn's request
the next turn repeats as an exact byte prefix.

Usage (see docs/benchmarks.md):
    .venv/bin/python bench/load.py --clients 50 200 500 1000
    .venv/bin/python bench/load.py --clients 20 --reasoning-seconds 5 --answer-seconds 2
Settings for the web and worker processes: --set CHAT_COALESCE_SECONDS=0.05 (repeatable).
Loopback only: PostgreSQL must be on this machine; every other server is started here.
"""

import argparse
import array
import asyncio
import bisect
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import uvloop
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat.simulator.content import generate  # noqa: E402
from chat.simulator.script import Options, apply_directives  # noqa: E402

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_CLIENTS = 2000
MAX_REPLY_SECONDS = 600
START_TIMEOUT_SECONDS = 60
SAMPLE_SECONDS = 2.0  # at most; short replies are sampled more often
# The simulator keeps this many requests in its log (its own default is 200).
SIMULATOR_LOG_SIZE = 20_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MODEL = "deepseek-flash"

SIMULATOR_CODE = (
    "import sys; import chat.simulator.server as server; "
    f"server.REQUEST_LOG_SIZE = {SIMULATOR_LOG_SIZE}; "
    "from chat.simulator.cli import main; main(sys.argv[1:])"
)

# Runs uvicorn under cProfile; SIGUSR1 writes the profile and ends the process
# (uvicorn re-raises SIGTERM after its shutdown, so an exit hook never runs).
PROFILE_CODE = """
import cProfile, os, runpy, signal, sys
profile = cProfile.Profile()
def dump(*_):
    profile.disable()
    profile.dump_stats({path!r})
    os._exit(0)
signal.signal(signal.SIGUSR1, dump)
sys.argv = sys.argv[1:]
profile.enable()
runpy.run_module("uvicorn", run_name="__main__")
"""

# Runs a Celery worker with cProfile on the shared reply loop (chat.runner), and
# writes the profile after the given seconds; Celery keeps SIGUSR1 for itself.
PROFILE_WORKER_CODE = """
import cProfile, os, sys, threading
import chat.runner as runner
profile = cProfile.Profile()
original = runner.get_loop
enabled = []
def get_loop():
    loop = original()
    if not enabled:
        enabled.append(loop)
        loop.call_soon_threadsafe(profile.enable)
    return loop
runner.get_loop = get_loop
def dump():
    def stop():
        profile.disable()
        profile.dump_stats({path!r})
    if enabled:
        enabled[0].call_soon_threadsafe(stop)
threading.Timer({seconds}, dump).start()
sys.argv = ["celery", *sys.argv[1:]]
from celery.__main__ import main
main()
"""


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A child process in its own session; `stop()` ends its whole process group."""

    def __init__(self, name, command, env, log_dir):
        self.name = name
        self.log_path = Path(log_dir) / f"{name}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self.popen.pid

    def log_tail(self, chars=3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_until(self, ready, what):
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise SystemExit(f"{self.name} exited early:\n{self.log_tail()}")
            if ready():
                return
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not become ready ({what}):\n{self.log_tail()}")

    def stop(self, timeout=15):
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait()
        self.log_file.close()


def read_proc(pid) -> tuple[float, int, int] | None:
    """Return (CPU seconds, RSS bytes, peak RSS bytes) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            fields = stat_file.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as status_file:
            status = status_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command name start at field 3; utime and stime are fields 14 and 15.
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return cpu, values.get("VmRSS", 0), values.get("VmHWM", 0)


def machine_cpu() -> tuple[float, float]:
    """Return (busy seconds, total seconds) summed over all CPUs since boot."""
    with open("/proc/stat") as stat_file:
        values = [int(value) for value in stat_file.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


# ----------------------------------------------------------------------------- settings


def require_loopback(url, what):
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise SystemExit(
            f"{what} {url!r} is not on a loopback address; this benchmark runs locally only."
        )


def parse_settings(pairs) -> dict:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isupper():
            raise SystemExit(f"--set {pair!r} is invalid; use NAME=VALUE, such as CHAT_X=1.")
        if key.startswith("DEEPSEEK_") or key in ("DATABASE_URL", "REDIS_URL", "SIMULATOR_URL"):
            raise SystemExit(f"--set {key} is not allowed: the benchmark sets it itself.")
        settings[key] = value
    return settings


@dataclass
class Stack:
    """The processes of one run, and what the clients need to reach them."""

    simulator_url: str
    web_urls: list[str]
    processes: dict[str, Process] = field(default_factory=dict)
    profiled: bool = False

    def stop(self, names=None):
        for name, process in list(self.processes.items()):
            if names is None or name in names:
                if self.profiled and name.startswith("web") and process.popen.poll() is None:
                    os.kill(process.pid, signal.SIGUSR1)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.popen.wait(timeout=30)
                process.stop()


def base_env(args, database_url, redis_url, simulator_url) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEEPSEEK_", "PYTEST_", "CHAT_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        SECRET_KEY=args.secret_key,
        DEBUG="false",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SIMULATOR_URL=simulator_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(args.settings)
    return env


def start_redis(log_dir) -> tuple[Process, str]:
    port = free_port()
    redis_dir = tempfile.mkdtemp(prefix="bench-redis-", dir=log_dir)
    command = [
        shutil.which("redis-server") or "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        redis_dir,
    ]
    process = Process("redis", command, dict(os.environ), log_dir)
    url = f"redis://127.0.0.1:{port}/0"

    def answers():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    process.wait_until(answers, "PING")
    return process, url


def start_stack(args, database_url, redis_url, log_dir, clients) -> Stack:
    sim_port = free_port()
    simulator_url = f"http://127.0.0.1:{sim_port}"
    env = base_env(args, database_url, redis_url, simulator_url)
    stack = Stack(simulator_url=simulator_url, web_urls=[], profiled=args.profile_web)
    try:
        simulator = Process(
            "simulator",
            [
                sys.executable,
                "-c",
                SIMULATOR_CODE,
                "--host",
                "127.0.0.1",
                "--port",
                str(sim_port),
                "--log-level",
                "WARNING",
            ],
            env,
            log_dir,
        )
        stack.processes["simulator"] = simulator
        simulator.wait_until(lambda: answers(f"{simulator_url}/_sim/health"), "health check")

        concurrency = args.worker_concurrency or (math.ceil(clients / args.worker_processes) + 20)
        for index in range(args.worker_processes):
            launcher = ["-m", "celery"]
            if args.profile_worker:
                seconds = args.ramp_seconds + 0.8 * (args.reasoning_seconds + args.answer_seconds)
                if args.baseline:
                    seconds += args.ramp_seconds + 1.5 * (
                        args.reasoning_seconds + args.answer_seconds
                    )
                path = str(Path(log_dir) / f"worker{index + 1}.prof")
                launcher = ["-c", PROFILE_WORKER_CODE.format(path=path, seconds=seconds + 10)]
            worker = Process(
                f"worker{index + 1}",
                [
                    sys.executable,
                    *launcher,
                    "--app",
                    "chatsite",
                    "worker",
                    "--pool",
                    args.pool,
                    "--concurrency",
                    str(concurrency),
                    "--loglevel",
                    "INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--hostname",
                    f"bench{index + 1}-{os.getpid()}@%h",
                ],
                env,
                log_dir,
            )
            stack.processes[worker.name] = worker
        for index in range(args.web_processes):
            port = free_port()
            launcher = ["-m", "uvicorn"]
            if args.profile_web:
                profile_path = Path(log_dir) / f"web{index + 1}.prof"
                launcher = ["-c", PROFILE_CODE.format(path=str(profile_path)), "uvicorn"]
            command = [
                sys.executable,
                *launcher,
                "chatsite.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws-max-size",
                "2097152",
                "--lifespan",
                "off",
                "--no-access-log",
                *args.uvicorn_option,
            ]
            web = Process(f"web{index + 1}", command, env, log_dir)
            stack.processes[web.name] = web
            stack.web_urls.append(f"http://127.0.0.1:{port}")
        for index, url in enumerate(stack.web_urls):
            stack.processes[f"web{index + 1}"].wait_until(
                lambda url=url: answers(f"{url}/accounts/sign-in/"), "sign-in page"
            )
        for index in range(args.worker_processes):
            worker = stack.processes[f"worker{index + 1}"]
            worker.wait_until(
                lambda worker=worker: " ready." in worker.log_tail(), "'ready.' in its log"
            )
    except BaseException:
        stack.stop()
        raise
    return stack


def answers(url) -> bool:
    try:
        httpx.get(url, timeout=1.0)
        return True
    except httpx.HTTPError:
        return False


# ----------------------------------------------------------------------------- database


def admin_url(database_url) -> str:
    parts = urlsplit(database_url)
    return parts._replace(path="/postgres").geturl()


def create_database(database_url, name):
    with psycopg.connect(admin_url(database_url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url, name):
    with psycopg.connect(admin_url(database_url), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(env, log_dir):
    with open(Path(log_dir) / "migrate.log", "w") as log:
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    if result.returncode:
        raise SystemExit(f"migrate failed; see {log_dir}/migrate.log")


def make_users(count, staff=False) -> list[str]:
    """Create `count` users with sessions; return their session cookies.

    Staff users have no per-minute cap, which the multi-turn phase needs.
    """
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import User

    users = []
    for index in range(count):
        user = User(email=f"load-{index}-{uuid.uuid4().hex[:8]}@example.com", is_staff=staff)
        user.set_unusable_password()
        users.append(user)
    users = User.objects.bulk_create(users)
    cookies = []
    for user in users:
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={session.session_key}")
    return cookies


def table_writes(database_url) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
        ).fetchall()
    return {name: int(count) for name, count in rows}


def backend_pids(database_url, name) -> list[int]:
    with psycopg.connect(admin_url(database_url), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return [row[0] for row in rows]


def redis_command_calls(redis_url) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


# ----------------------------------------------------------------------------- measurement


class Sampler:
    """Samples CPU and RSS of the stack's processes (and PostgreSQL backends) every few seconds."""

    def __init__(self, pids: dict[str, int], database_url, database_name, interval):
        self.interval = interval
        self.pids = pids
        self.database_url = database_url
        self.database_name = database_name
        self.samples = []  # (wall time, {name: (cpu, rss, hwm)}, machine busy, machine total)
        self.backend_cpu = {}  # pid -> (first cpu seen, last cpu seen)
        self.task = None

    def sample(self):
        values = {}
        for name, pid in self.pids.items():
            reading = read_proc(pid)
            if reading is not None:
                values[name] = reading
        busy, total = machine_cpu()
        self.samples.append((time.time(), values, busy, total))

    def sample_backends(self):
        if not self.database_url:
            return
        try:
            pids = backend_pids(self.database_url, self.database_name)
        except psycopg.Error:
            return
        for pid in pids:
            reading = read_proc(pid)
            if reading is None:
                continue
            first, _last = self.backend_cpu.get(pid, (reading[0], reading[0]))
            self.backend_cpu[pid] = (first, reading[0])

    async def run(self):
        while True:
            self.sample()
            await asyncio.to_thread(self.sample_backends)
            await asyncio.sleep(self.interval)

    def start(self):
        self.sample()
        self.task = asyncio.create_task(self.run())

    async def stop(self):
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sample()

    def window(self, start, end):
        """Return per-process CPU share (cores), machine CPU share and RSS between two times."""
        inside = [sample for sample in self.samples if start <= sample[0] <= end]
        if len(inside) < 2:
            # A short run: take the two samples around the middle of the window.
            middle = (start + end) / 2
            later = [sample for sample in self.samples if sample[0] >= middle][:1]
            earlier = [sample for sample in self.samples if sample[0] < middle][-1:]
            inside = earlier + later
            if len(inside) < 2:
                return None
        first, last = inside[0], inside[-1]
        seconds = last[0] - first[0]
        shares = {}
        for name in self.pids:
            if name in first[1] and name in last[1]:
                shares[name] = (last[1][name][0] - first[1][name][0]) / seconds
        machine = (last[2] - first[2]) / seconds
        rss = {}
        for name in self.pids:
            values = [sample[1][name][1] for sample in inside if name in sample[1]]
            if values:
                rss[name] = sorted(values)[len(values) // 2]
        return {"seconds": seconds, "cores": shares, "machine_cores": machine, "rss": rss}


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Reply:
    """The deltas, times and outcome that one client received for one reply."""

    question: str
    sent_at: float = 0.0
    accepted_at: float = 0.0
    status: str = ""
    error: str = ""
    # Per delta: arrival time, kind (0 reasoning, 1 answer), cumulative length of that kind.
    times: array.array = field(default_factory=lambda: array.array("d"))
    kinds: array.array = field(default_factory=lambda: array.array("b"))
    ends: array.array = field(default_factory=lambda: array.array("l"))
    texts: tuple[list, list] = field(default_factory=lambda: ([], []))
    lengths: list = field(default_factory=lambda: [0, 0])
    seq_gaps: int = 0

    def add(self, when, kind, text):
        self.lengths[kind] += len(text)
        self.times.append(when)
        self.kinds.append(kind)
        self.ends.append(self.lengths[kind])
        self.texts[kind].append(text)


def question_text(run_id, index, args):
    directive = (
        f"[sim rate={args.rate:g} reasoning={args.reasoning_tokens} answer={args.answer_tokens}]"
    )
    return f"Load test {run_id} client {index}: how do streaming caches behave?\n{directive}"


def expected_tokens(question):
    options = Options()
    stripped = apply_directives(question, options)
    return generate(stripped, options.reasoning, options.answer)


def lateness(reply: Reply, first_byte: float, rate: float, tokens) -> tuple[list[float], int]:
    """Return each token's lateness in seconds and the number of tokens never received."""
    reasoning, answer = tokens
    result = []
    missing = 0
    offset = 0
    for kind, kind_tokens in ((0, reasoning), (1, answer)):
        times = [t for t, k in zip(reply.times, reply.kinds, strict=True) if k == kind]
        ends = [e for e, k in zip(reply.ends, reply.kinds, strict=True) if k == kind]
        position = 0
        for index, token in enumerate(kind_tokens):
            position += len(token)
            found = bisect.bisect_left(ends, position)
            if found == len(ends):
                missing += len(kind_tokens) - index
                break
            due = first_byte + (offset + index + 1) / rate
            result.append(times[found] - due)
        offset += len(kind_tokens)
    return result, missing


# ----------------------------------------------------------------------------- clients


async def site_client(url, cookie, reply: Reply, start_at, deadline):
    ws_url = url.replace("http", "ws", 1) + "/ws/chat/"
    try:
        async with websockets.connect(
            ws_url,
            additional_headers={"Cookie": cookie, "Origin": url},
            max_size=2**22,
            open_timeout=60,
            compression=None if NO_DEFLATE else "deflate",
        ) as socket_:
            await asyncio.sleep(max(0.0, start_at - time.time()))
            frame = {
                "type": "message.send",
                "conversation": None,
                "content": reply.question,
                "client_id": str(uuid.uuid4()),
            }
            reply.sent_at = time.time()
            await socket_.send(json.dumps(frame))
            last_seq = 0
            async with asyncio.timeout(max(1.0, deadline - time.time())):
                async for raw in socket_:
                    now = time.time()
                    event = json.loads(raw)
                    kind = event["type"]
                    if kind == "reasoning.delta" or kind == "content.delta":
                        seq = event["seq"]
                        if seq != last_seq + 1:
                            reply.seq_gaps += 1
                        last_seq = seq
                        reply.add(now, 0 if kind == "reasoning.delta" else 1, event["text"])
                    elif kind == "message.accepted":
                        reply.accepted_at = now
                    elif kind == "message.done":
                        reply.status = event["status"]
                        if event.get("error"):
                            reply.error = str(event["error"])[:200]
                        return
                    elif kind == "error":
                        reply.status = "rejected"
                        reply.error = f"{event.get('code')}: {event.get('detail')}"[:200]
                        return
    except TimeoutError:
        reply.error = reply.error or "timed out"
    except (OSError, websockets.WebSocketException) as error:
        reply.error = f"socket: {error!r}"[:200]


def baseline_body(question):
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": question}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "thinking": {"type": "enabled"},
    }


async def baseline_client(client, url, reply: Reply, start_at, deadline):
    await asyncio.sleep(max(0.0, start_at - time.time()))
    reply.sent_at = time.time()
    buffer = b""
    try:
        async with asyncio.timeout(max(1.0, deadline - time.time())):
            async with client.stream(
                "POST",
                f"{url}/chat/completions",
                json=baseline_body(reply.question),
                headers={"Authorization": "Bearer sk-simulator"},
            ) as response:
                if response.status_code != 200:
                    reply.error = f"HTTP {response.status_code}"
                    return
                async for chunk in response.aiter_raw():
                    now = time.time()
                    buffer += chunk
                    *events, buffer = buffer.split(b"\n\n")
                    add_sse_events(reply, events, now)
    except TimeoutError:
        reply.error = "timed out"
    except httpx.HTTPError as error:
        reply.error = f"http: {error!r}"[:200]


def add_sse_events(reply: Reply, events, now) -> None:
    """Record the tokens of complete SSE events (`data: {...}` blocks) that arrived at `now`."""
    for block in events:
        if not block.startswith(b"data: {"):
            if block.startswith(b"data: [DONE]"):
                reply.status = "complete"
            continue
        choices = json.loads(block[6:]).get("choices") or [{}]
        delta = choices[0].get("delta") or {}
        if delta.get("reasoning_content"):
            reply.add(now, 0, delta["reasoning_content"])
        if delta.get("content"):
            reply.add(now, 1, delta["content"])


class RawStreamReader(asyncio.Protocol):
    """Reads one streamed completion over HTTP/1.1 with chunked encoding, without a client library.

    httpx costs about 85 us of CPU per event when each event arrives on its
    own (measured on the benchmark machine). A thousand streams at 30 events
    a second would need 2.5 cores, so the baseline would measure its own
    backlog. This reader costs a few microseconds per event.
    """

    def __init__(self, reply: Reply, request: bytes, finished: asyncio.Future):
        self.reply = reply
        self.request = request
        self.finished = finished
        self.buffer = b""
        self.body = b""
        self.headers_done = False
        self.chunk_left = None  # bytes of the current chunk still to read, None: a size line

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        now = time.time()
        self.buffer += data
        if not self.headers_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.buffer[: self.buffer.find(b"\r\n")]
            if b" 200 " not in status:
                self.fail(f"HTTP {status.decode('latin-1')}")
                return
            self.buffer = self.buffer[end + 4 :]
            self.headers_done = True
        while True:
            if self.chunk_left is None:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    break
                size = int(self.buffer[:end], 16)
                self.buffer = self.buffer[end + 2 :]
                if size == 0:
                    self.take_events(now)
                    self.done()
                    return
                self.chunk_left = size + 2  # the data and its trailing CRLF
            taken = self.buffer[: self.chunk_left]
            self.buffer = self.buffer[self.chunk_left :]
            self.chunk_left -= len(taken)
            self.body += taken
            if self.chunk_left:
                break
            self.body = self.body[:-2]
            self.chunk_left = None
        self.take_events(now)

    def take_events(self, now):
        *events, self.body = self.body.split(b"\n\n")
        add_sse_events(self.reply, events, now)

    def fail(self, error):
        self.reply.error = self.reply.error or error
        self.done()

    def done(self):
        if not self.finished.done():
            self.finished.set_result(None)
        self.transport.close()

    def connection_lost(self, exc):
        if not self.finished.done():
            self.reply.error = self.reply.error or f"connection lost: {exc!r}"
            self.finished.set_result(None)


async def raw_baseline_client(url, reply: Reply, start_at, deadline):
    await asyncio.sleep(max(0.0, start_at - time.time()))
    parts = urlsplit(url)
    body = json.dumps(baseline_body(reply.question)).encode()
    request = (
        f"POST /chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Authorization: Bearer sk-simulator\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    reply.sent_at = time.time()
    try:
        transport, _protocol = await loop.create_connection(
            lambda: RawStreamReader(reply, request, finished), parts.hostname, parts.port
        )
    except OSError as error:
        reply.error = f"connect: {error!r}"
        return
    try:
        async with asyncio.timeout(max(1.0, deadline - time.time())):
            await finished
    except TimeoutError:
        reply.error = "timed out"
    finally:
        transport.close()


NO_DEFLATE = False


# ----------------------------------------------------------------------------- phases


async def watch_loop_lag(lags: list, interval=0.01):
    """Record how late the clients' event loop wakes up: their own share of the lateness."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        lags.append(loop.time() - due)


def lag_summary(lags) -> dict:
    return {
        "client_loop_lag_p50_ms": percentile(lags, 0.5) * 1000,
        "client_loop_lag_p99_ms": percentile(lags, 0.99) * 1000,
    }


def ramp_times(count, ramp_seconds, start):
    return [start + ramp_seconds * index / max(1, count) for index in range(count)]


async def fetch_log(simulator_url) -> list[dict]:
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(f"{simulator_url}/_sim/requests")
        response.raise_for_status()
        return response.json()


def last_user_content(body) -> str:
    for message in reversed((body or {}).get("messages") or []):
        if message.get("role") == "user":
            return message.get("content") or ""
    return ""


def analyse(replies: list[Reply], log: list[dict], rate: float, with_send=True) -> dict:
    by_question = {}
    for entry in log:
        by_question.setdefault(last_user_content(entry.get("body")), entry)
    late = []
    missing_tokens = 0
    upstream_seconds = []
    to_upstream = []
    to_accepted = []
    errors = []
    mismatched = 0
    gaps = 0
    for reply in replies:
        entry = by_question.get(reply.question)
        complete = reply.status == "complete"
        if entry is None or entry.get("first_byte") is None:
            errors.append(reply.error or "no upstream request")
            continue
        tokens = expected_tokens(reply.question)
        if ("".join(reply.texts[0]), "".join(reply.texts[1])) != (
            "".join(tokens[0]),
            "".join(tokens[1]),
        ):
            mismatched += 1
        if entry.get("ended"):
            upstream_seconds.append(entry["ended"] - entry["first_byte"])
        values, missing = lateness(reply, entry["first_byte"], rate, tokens)
        late.extend(values)
        missing_tokens += missing
        gaps += reply.seq_gaps
        if with_send:
            to_upstream.append(entry["started"] - reply.sent_at)
            if reply.accepted_at:
                to_accepted.append(reply.accepted_at - reply.sent_at)
        if not complete:
            errors.append(reply.error or reply.status or "not complete")
    result = {
        "replies": len(replies),
        "errors": len(errors),
        "error_share": len(errors) / max(1, len(replies)),
        "error_examples": sorted(set(errors))[:5],
        "text_mismatches": mismatched,
        "seq_gaps": gaps,
        "tokens_measured": len(late),
        "tokens_missing": missing_tokens,
        "lateness_p50_ms": percentile(late, 0.5) * 1000,
        "lateness_p99_ms": percentile(late, 0.99) * 1000,
        "lateness_max_ms": (max(late) * 1000) if late else float("nan"),
        # How long the simulator took to send a whole reply; it falls behind 30 tokens
        # a second when it does not get enough CPU.
        "upstream_seconds_p50": percentile(upstream_seconds, 0.5),
        "upstream_seconds_max": max(upstream_seconds, default=float("nan")),
    }
    if with_send:
        result["send_to_upstream_p50_ms"] = percentile(to_upstream, 0.5) * 1000
        result["send_to_upstream_p95_ms"] = percentile(to_upstream, 0.95) * 1000
        result["send_to_upstream_p99_ms"] = percentile(to_upstream, 0.99) * 1000
        result["send_to_accepted_p50_ms"] = percentile(to_accepted, 0.5) * 1000
        result["send_to_accepted_p95_ms"] = percentile(to_accepted, 0.95) * 1000
    return result


async def run_baseline(args, stack, run_id, count) -> dict:
    replies = [Reply(question_text(f"{run_id}b", index, args)) for index in range(count)]
    reply_seconds = args.reasoning_seconds + args.answer_seconds
    start = time.time() + 1.0
    deadline = start + args.ramp_seconds + reply_seconds * 1.5 + 30
    starts = ramp_times(count, args.ramp_seconds, start)
    lags = []
    watcher = asyncio.create_task(watch_loop_lag(lags))
    if args.baseline_client == "raw":
        await asyncio.gather(
            *(
                raw_baseline_client(stack.simulator_url, reply, at, deadline)
                for reply, at in zip(replies, starts, strict=True)
            )
        )
    else:
        limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
        timeout = httpx.Timeout(60.0, read=120.0)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            await asyncio.gather(
                *(
                    baseline_client(client, stack.simulator_url, reply, at, deadline)
                    for reply, at in zip(replies, starts, strict=True)
                )
            )
    watcher.cancel()
    log = await fetch_log(stack.simulator_url)
    return {**analyse(replies, log, args.rate, with_send=False), **lag_summary(lags)}


async def run_site(args, stack, run_id, cookies, sampler) -> dict:
    count = len(cookies)
    replies = [Reply(question_text(f"{run_id}s", index, args)) for index in range(count)]
    reply_seconds = args.reasoning_seconds + args.answer_seconds
    # Sockets connect first (spread over a second or two), then sends follow the ramp.
    start = time.time() + 2.0 + count / 500
    deadline = start + args.ramp_seconds + reply_seconds * 1.5 + 30
    starts = ramp_times(count, args.ramp_seconds, start)
    tasks = [
        site_client(stack.web_urls[index % len(stack.web_urls)], cookie, reply, at, deadline)
        for index, (cookie, reply, at) in enumerate(zip(cookies, replies, starts, strict=True))
    ]
    lags = []
    watcher = asyncio.create_task(watch_loop_lag(lags))
    await asyncio.gather(*tasks)
    watcher.cancel()
    ended = time.time()
    log = await fetch_log(stack.simulator_url)
    result = {**analyse(replies, log, args.rate), **lag_summary(lags)}
    # Steady state: every reply has started and none has ended.
    last_send = max((reply.sent_at for reply in replies), default=start)
    first_end = start + reply_seconds
    result["steady_window"] = (last_send + 3, min(first_end, ended))
    return result


async def run_prefix(stack, marker, cookies, turns) -> dict:
    """Send several turns per conversation; measure how much of each request the next repeats."""
    url = stack.web_urls[0]
    ws_url = url.replace("http", "ws", 1) + "/ws/chat/"

    async def conversation(cookie, index):
        conversation_id = None
        async with websockets.connect(
            ws_url, additional_headers={"Cookie": cookie, "Origin": url}, open_timeout=60
        ) as socket_:
            for turn in range(turns):
                content = (
                    f"{marker}conversation {index} turn {turn}: "
                    "explain it once more, with an example.\n"
                    "[sim rate=0 reasoning=20 answer=60]"
                )
                await socket_.send(
                    json.dumps(
                        {
                            "type": "message.send",
                            "conversation": conversation_id,
                            "content": content,
                            "client_id": str(uuid.uuid4()),
                        }
                    )
                )
                async with asyncio.timeout(60):
                    async for raw in socket_:
                        event = json.loads(raw)
                        if event["type"] == "message.accepted":
                            conversation_id = event["conversation"]
                        elif event["type"] == "message.done":
                            break
                        elif event["type"] == "error":
                            raise SystemExit(f"prefix phase: send rejected: {event}")

    await asyncio.gather(*(conversation(cookie, i) for i, cookie in enumerate(cookies)))
    log = await fetch_log(stack.simulator_url)
    return prefix_shares(log, marker)


def serialize_messages(messages) -> bytes:
    """Serialize a messages array as httpx sends it (json.dumps, default separators)."""
    return json.dumps(messages).encode()


def prefix_shares(log, marker) -> dict:
    turns = {}
    for entry in log:
        body = entry.get("body") or {}
        last = last_user_content(body)
        if not last.startswith(marker):
            continue
        # "... conversation C turn T: ..."
        words = last[len(marker) :].split()
        turns.setdefault(words[1], {})[int(words[3].rstrip(":"))] = body["messages"]
    shares = []
    of_next = []
    for by_turn in turns.values():
        for turn in sorted(by_turn):
            if turn + 1 not in by_turn:
                continue
            # Without the closing bracket: a longer array continues where this one ends.
            earlier = serialize_messages(by_turn[turn])[:-1]
            later = serialize_messages(by_turn[turn + 1])
            common = 0
            for left, right in zip(earlier, later, strict=False):
                if left != right:
                    break
                common += 1
            shares.append(common / len(earlier))
            of_next.append(common / len(later))
    return {
        "pairs": len(shares),
        "share_of_turn_n_min": min(shares, default=float("nan")),
        "share_of_turn_n_mean": sum(shares) / max(1, len(shares)),
        "share_of_turn_n1_mean": sum(of_next) / max(1, len(of_next)),
    }


# ----------------------------------------------------------------------------- one N


def summarize_processes(sampler: Sampler, start, end, idle) -> dict:
    window = sampler.window(start, end)
    whole = sampler.window(sampler.samples[0][0], sampler.samples[-1][0])
    result = {"processes": {}}
    for name in sampler.pids:
        first = next((s[1][name] for s in sampler.samples if name in s[1]), None)
        last = next((s[1][name] for s in reversed(sampler.samples) if name in s[1]), None)
        if first is None:
            continue
        result["processes"][name] = {
            "cpu_seconds": last[0] - first[0],
            "peak_rss_mb": last[2] / 2**20,
            "idle_rss_mb": idle.get(name, 0) / 2**20,
            "steady_rss_mb": (window or {}).get("rss", {}).get(name, 0) / 2**20,
            "steady_cores": (window or {}).get("cores", {}).get(name, float("nan")),
        }
    result["postgres_backends_cpu_seconds"] = sum(
        last - first for first, last in sampler.backend_cpu.values()
    )
    result["machine_cores_steady"] = (window or {}).get("machine_cores", float("nan"))
    result["machine_cores_whole"] = (whole or {}).get("machine_cores", float("nan"))
    result["steady_seconds"] = (window or {}).get("seconds", 0)
    return result


def run_one(args, count, database_url, database_name, redis_url, cookies, log_dir, run_id):
    print(f"\n== {count} clients ==", flush=True)
    stack = start_stack(args, database_url, redis_url, log_dir / f"n{count}", count)
    try:
        result = {"clients": count}
        if args.baseline:
            print("baseline: clients read the simulator directly ...", flush=True)
            result["baseline"] = asyncio.run(run_baseline(args, stack, run_id, count))
            print(json.dumps(result["baseline"]), flush=True)
            # Let the simulator settle before the site phase.
            time.sleep(2)

        pids = {name: process.pid for name, process in stack.processes.items()}
        pids["redis"] = args.redis_process.pid if args.redis_process else None
        pids["bench client"] = os.getpid()
        pids = {name: pid for name, pid in pids.items() if pid}
        idle = {name: (read_proc(pid) or (0, 0, 0))[1] for name, pid in pids.items()}
        writes_before = table_writes(database_url)
        redis_before = redis_command_calls(redis_url)

        async def site():
            interval = min(SAMPLE_SECONDS, (args.reasoning_seconds + args.answer_seconds) / 10)
            sampler = Sampler(pids, database_url, database_name, interval)
            sampler.start()
            try:
                outcome = await run_site(args, stack, run_id, cookies[:count], sampler)
            finally:
                await sampler.stop()
            return outcome, sampler

        print("site: clients stream replies over websockets ...", flush=True)
        site_result, sampler = asyncio.run(site())
        redis_after = redis_command_calls(redis_url)
        start, end = site_result.pop("steady_window")
        result["site"] = site_result
        result.update(summarize_processes(sampler, start, end, idle))
        memory = sum(
            info["steady_rss_mb"] - info["idle_rss_mb"]
            for name, info in result["processes"].items()
            if name.startswith(("web", "worker"))
        )
        result["memory_per_reply_kb"] = memory * 1024 / count
        result["redis_commands_per_reply"] = (
            sum(redis_after.values()) - sum(redis_before.values())
        ) / count
        result["redis_commands"] = {
            name: (calls - redis_before.get(name, 0)) / count
            for name, calls in sorted(redis_after.items())
            if calls - redis_before.get(name, 0)
        }
    finally:
        # Stopping the stack closes its database connections, which flushes their statistics.
        stack.stop()
    time.sleep(1.5)
    writes_after = table_writes(database_url)
    result["db_writes_per_reply"] = (
        sum(writes_after.values()) - sum(writes_before.values())
    ) / count
    result["db_writes"] = {
        name: (value - writes_before.get(name, 0)) / count
        for name, value in sorted(writes_after.items())
        if value - writes_before.get(name, 0)
    }
    return result


def run_prefix_phase(args, database_url, redis_url, cookies, log_dir, run_id) -> dict:
    """Measure prompt prefix stability: short conversations, then long ones past the budget."""
    from chat.models import ChatModel

    print("\n== prefix: multi-turn conversations ==", flush=True)
    (log_dir / "prefix").mkdir(exist_ok=True)
    count = args.prefix_conversations
    stack = start_stack(args, database_url, redis_url, log_dir / "prefix", count)
    result = {}
    try:
        short = cookies[-count:]
        result["short"] = asyncio.run(
            run_prefix(stack, f"Prefix check {run_id} ", short, args.prefix_turns)
        )
        if args.prefix_long_turns:
            # A small context budget makes the long conversations outgrow it quickly.
            models = ChatModel.objects.filter(slug="environment")
            budget = models.get().context_budget_tokens
            models.update(context_budget_tokens=args.prefix_long_budget)
            try:
                long_cookies = short[: max(1, count // 2)]
                result["long"] = asyncio.run(
                    run_prefix(
                        stack, f"Long prefix {run_id} ", long_cookies, args.prefix_long_turns
                    )
                )
            finally:
                models.update(context_budget_tokens=budget)
    finally:
        stack.stop()
    return result


# ----------------------------------------------------------------------------- report


def print_table(results, args):
    print(
        "\n| N | errors | site p50 / p99 ms | baseline p50 / p99 ms | added p50 / p99 ms "
        "| send->upstream p50 / p95 ms | Redis cmds/reply | DB writes/reply | KB/reply |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for result in results:
        site = result["site"]
        base = result.get("baseline") or {}
        added50 = site["lateness_p50_ms"] - base.get("lateness_p50_ms", float("nan"))
        added99 = site["lateness_p99_ms"] - base.get("lateness_p99_ms", float("nan"))
        print(
            f"| {result['clients']} | {site['error_share']:.1%} "
            f"| {site['lateness_p50_ms']:.0f} / {site['lateness_p99_ms']:.0f} "
            f"| {base.get('lateness_p50_ms', float('nan')):.0f} / "
            f"{base.get('lateness_p99_ms', float('nan')):.0f} "
            f"| {added50:.0f} / {added99:.0f} "
            f"| {site['send_to_upstream_p50_ms']:.0f} / {site['send_to_upstream_p95_ms']:.0f} "
            f"(accepted {site['send_to_accepted_p50_ms']:.0f} / "
            f"{site['send_to_accepted_p95_ms']:.0f}) "
            f"| {result['redis_commands_per_reply']:.0f} "
            f"| {result['db_writes_per_reply']:.1f} "
            f"| {result['memory_per_reply_kb']:.0f} |"
        )
    print("\nCPU (cores at steady state; CPU seconds over the site phase; peak RSS MB):")
    for result in results:
        parts = []
        for name, info in result["processes"].items():
            parts.append(
                f"{name} {info['steady_cores']:.2f} / {info['cpu_seconds']:.0f} s"
                f" / {info['peak_rss_mb']:.0f} MB"
            )
        print(
            f"N={result['clients']}: "
            + "; ".join(parts)
            + f"; postgres backends {result['postgres_backends_cpu_seconds']:.0f} s"
            + f"; machine {result['machine_cores_steady']:.2f} cores"
        )
    for result in results:
        for part, prefix in result.get("prefix", {}).items():
            print(
                f"\nPrompt prefix ({part}): {prefix['pairs']} turn pairs; turn n+1 repeats "
                f"{prefix['share_of_turn_n_mean']:.1%} of turn n's request on average "
                f"(minimum {prefix['share_of_turn_n_min']:.1%})"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[50])
    parser.add_argument("--rate", type=float, default=30.0, help="tokens a second (default 30)")
    parser.add_argument("--reasoning-seconds", type=float, default=60.0)
    parser.add_argument("--answer-seconds", type=float, default=10.0)
    parser.add_argument(
        "--ramp-seconds",
        type=float,
        default=None,
        help="sends are spread over this many seconds (default: 40%% of a reply's duration)",
    )
    parser.add_argument("--web-processes", type=int, default=1)
    parser.add_argument("--worker-processes", type=int, default=1)
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=0,
        help="Celery pool size per worker (default: clients / workers + 20)",
    )
    parser.add_argument("--pool", default="threads", choices=["threads"])
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        help="NAME=VALUE environment setting for web and worker processes (repeatable)",
    )
    parser.add_argument(
        "--uvicorn-option", action="append", default=[], help="extra uvicorn argument"
    )
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    parser.add_argument(
        "--baseline-client",
        choices=["raw", "httpx"],
        default="raw",
        help="how baseline clients read the simulator (default raw: asyncio protocol)",
    )
    parser.add_argument(
        "--profile-web", action="store_true", help="run web processes under cProfile (slower)"
    )
    parser.add_argument(
        "--profile-worker",
        action="store_true",
        help="profile the reply loop of worker processes with cProfile (slower)",
    )
    parser.add_argument("--no-deflate", action="store_true", help="clients refuse compression")
    parser.add_argument("--prefix-conversations", type=int, default=10)
    parser.add_argument("--prefix-turns", type=int, default=3)
    parser.add_argument(
        "--prefix-long-turns",
        type=int,
        default=40,
        help="turns of the long conversations, past the context budget (0: none)",
    )
    parser.add_argument(
        "--prefix-long-budget",
        type=int,
        default=2000,
        help="context budget in tokens while the long conversations run",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server to create the benchmark database on (its own name is ignored)",
    )
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()

    global NO_DEFLATE
    NO_DEFLATE = args.no_deflate
    # The clients stand in for browsers on other machines; uvloop keeps their share of
    # this machine's CPU small.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    for count in args.clients:
        if not 1 <= count <= MAX_CLIENTS:
            raise SystemExit(f"--clients {count} is out of range; use 1 to {MAX_CLIENTS}.")
    reply_seconds = args.reasoning_seconds + args.answer_seconds
    if not 0 < reply_seconds <= MAX_REPLY_SECONDS or args.rate <= 0:
        raise SystemExit(
            f"A reply must last 0 to {MAX_REPLY_SECONDS} s at a positive --rate; "
            "check --reasoning-seconds, --answer-seconds and --rate."
        )
    if args.ramp_seconds is None:
        args.ramp_seconds = 0.4 * reply_seconds
    args.reasoning_tokens = round(args.reasoning_seconds * args.rate)
    args.answer_tokens = max(1, round(args.answer_seconds * args.rate))
    args.settings = parse_settings(args.settings)
    args.secret_key = secrets.token_urlsafe(50)
    require_loopback(args.database_url, "--database-url")

    run_id = uuid.uuid4().hex[:8]
    database_name = f"chatsite_bench_{run_id}"
    database_url = urlsplit(args.database_url)._replace(path=f"/{database_name}").geturl()
    log_dir = ROOT / "var" / f"bench-load-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    for count in args.clients:
        (log_dir / f"n{count}").mkdir(exist_ok=True)
    print(f"run {run_id}: logs in {log_dir}", flush=True)

    # SIGTERM ends the run like Ctrl+C, so the finally blocks stop every process.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    args.redis_process = None
    results = []
    try:
        create_database(args.database_url, database_name)
        args.redis_process, redis_url = start_redis(log_dir)
        env = base_env(args, database_url, redis_url, "http://127.0.0.1:9")
        print("migrating ...", flush=True)
        migrate(env, log_dir)
        os.environ.update(
            DJANGO_SETTINGS_MODULE="chatsite.settings",
            SECRET_KEY=args.secret_key,
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
        )
        import django

        django.setup()
        cookies = make_users(max(args.clients))
        cookies += make_users(args.prefix_conversations, staff=True)
        from django.db import connections

        connections.close_all()
        for count in args.clients:
            # A fresh Redis for every N, so no queue or key of the last run is left.
            import redis

            redis.Redis.from_url(redis_url).flushall()
            results.append(
                run_one(
                    args, count, database_url, database_name, redis_url, cookies, log_dir, run_id
                )
            )
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=str))
        if args.prefix_conversations:
            results[-1]["prefix"] = run_prefix_phase(
                args, database_url, redis_url, cookies, log_dir, run_id
            )
            if args.json:
                args.json.write_text(json.dumps(results, indent=1, default=str))
        print_table(results, args)
    except KeyboardInterrupt:
        print("interrupted; stopping every process", file=sys.stderr)
    finally:
        if args.redis_process:
            args.redis_process.stop()
        if not args.keep_database:
            with contextlib.suppress(psycopg.Error):
                drop_database(args.database_url, database_name)


if __name__ == "__main__":
    main()
