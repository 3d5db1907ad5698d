"""Fixtures that start the real processes: upstream simulator, Celery worker, web server.

Each runs as a subprocess against the test database and the test Redis
database, exactly as in production except that the upstream is the
project's simulator. Their output goes to test-artifacts/<name>.log.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.mailbox import MAIL_DIR

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
START_TIMEOUT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ManagedProcess:
    def __init__(self, name, command, env):
        ARTIFACTS.mkdir(exist_ok=True)
        self.name = name
        self.command = command
        self.env = env
        self.log_path = ARTIFACTS / f"{name}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self):
        """Stop the process at once, as a crash or a lost machine would."""
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, ready, what):
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            if ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready ({what}):\n{self.log()[-3000:]}")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def _answers(url) -> bool:
    try:
        httpx.get(url, timeout=1.0)
        return True
    except httpx.HTTPError:
        return False


def test_database_url() -> str:
    database = settings.DATABASES["default"]
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    port = database.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{database['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def simulator():
    port = free_port()
    process = ManagedProcess(
        "simulator",
        [sys.executable, "-m", "chat.simulator", "--host", "127.0.0.1", "--port", str(port)],
        dict(os.environ),
    )
    base_url = f"http://127.0.0.1:{port}"
    process.wait_until(lambda: _answers(f"{base_url}/_sim/health"), "health check")
    yield base_url
    process.stop()


@pytest.fixture(scope="session")
def stack_env(django_db_setup, simulator):
    """Environment for worker and web processes: the test database, Redis and simulator."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEEPSEEK_", "PYTEST_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="chatsite.test_settings",
        DATABASE_URL=test_database_url(),
        REDIS_URL=settings.REDIS_URL,
        SIMULATOR_URL=simulator,
        UPSTREAM_BACKOFF_SECONDS="0.05",
        PYTHONUNBUFFERED="1",
        # A key the worker can send to the simulator for endpoints of test catalogues.
        CHATSITE_TEST_API_KEY="sk-test-endpoint",
        # Mail goes to files of this session, where tests/mailbox.py reads it.
        EMAIL_FILE_PATH=str(MAIL_DIR),
    )
    shutil.rmtree(MAIL_DIR, ignore_errors=True)
    MAIL_DIR.mkdir(parents=True)
    yield env
    shutil.rmtree(MAIL_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def worker(stack_env):
    process = start_worker("worker", stack_env, concurrency=20)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def web_process(stack_env, worker):
    """The uvicorn process; `.base_url` is where it serves."""
    process = start_web("web", stack_env)
    yield process
    process.stop()


def start_worker(name, env, concurrency=10):
    process = ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "chatsite",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h",
        ],
        env,
    )
    process.wait_until(lambda: " ready." in process.log(), "'ready.' in its log")
    return process


def start_web(name, env):
    port = free_port()
    process = ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "chatsite.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ws-max-size",
            "2097152",
        ],
        env,
    )
    process.base_url = f"http://127.0.0.1:{port}"
    wait_for_web(process)
    return process


def wait_for_web(process):
    process.wait_until(lambda: _answers(f"{process.base_url}/accounts/sign-in/"), "sign-in page")


@pytest.fixture(scope="session")
def web_server(web_process):
    return web_process.base_url


@pytest.fixture
def live_stack(worker, simulator):
    """The worker and simulator processes; returns the simulator's base URL."""
    return simulator
