"""Private Redis and PostgreSQL servers that a test may stop and restart.

The machine's shared servers (Redis on 6379, PostgreSQL on 5432) are never
stopped by a test. A test that restarts Redis or PostgreSQL starts its own
server here, on a free loopback port, with its data in a temporary directory.
"""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from tests.stack import ARTIFACTS, ROOT, ManagedProcess, free_port, start_web, start_worker

START_TIMEOUT_SECONDS = 30


def _wait_for_port(port, what):
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


class PrivateRedis:
    """A redis-server without persistence; `restart()` loses every key, as a crash would."""

    def __init__(self, name="redis-private"):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.name = name
        self.process = None
        self.start()

    def start(self):
        ARTIFACTS.mkdir(exist_ok=True)
        log = open(ARTIFACTS / f"{self.name}.log", "a")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_for_port(self.port, "redis-server")
        redis.Redis.from_url(self.url).ping()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self, down_seconds=0.0):
        self.stop()
        time.sleep(down_seconds)
        self.start()


def postgres_bin(name) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql/*/bin")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster made with initdb in a temporary directory, trust auth, loopback only."""

    def __init__(self):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="chatsite-pg-"))
        self.data = self.directory / "data"
        # Inside the directory the server's user owns; copied to test-artifacts at the end.
        self.log = self.directory / "postgres.log"
        self._as_owner(
            [postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"]
        )
        self.start()

    def _as_owner(self, command):
        # PostgreSQL refuses to run as root; run as the owner of the temp directory.
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -F"
        self._as_owner(
            [postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
             "-w", "start"]
        )  # fmt: skip

    def stop(self, mode="immediate"):
        self._as_owner([postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def restart(self, down_seconds=0.0):
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def url(self, database):
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        ARTIFACTS.mkdir(exist_ok=True)
        if self.log.exists():
            shutil.copy(self.log, ARTIFACTS / "postgres-private.log")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_beat(name, env):
    schedule = Path(tempfile.mkdtemp(prefix="chatsite-beat-")) / "schedule"
    process = ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "chatsite",
            "worker",
            "--beat",
            "--queues",
            "sweep",
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "--hostname",
            f"{name}-{os.getpid()}-{time.monotonic_ns()}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--schedule",
            str(schedule),
        ],
        env,
    )
    process.wait_until(lambda: " ready." in process.log(), "'ready.' in its log")
    return process


__all__ = ["ROOT", "PrivatePostgres", "PrivateRedis", "start_beat", "start_web", "start_worker"]
