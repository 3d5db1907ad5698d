"""Fixtures for fault tests: the site's processes on a private Redis, with short timeouts.

The timeouts a real site keeps at a minute or more are scaled down through
settings (environment variables), never by sleeping in the tests.
"""

import json
import time
import uuid

import pytest
from websockets.sync.client import connect as ws_connect

from tests.private_servers import PrivateRedis, start_beat, start_web, start_worker

# The fault scenarios, scaled down: a reply silent for 3 s has lost its
# worker, the sweep runs every second, and an unacknowledged task returns to
# the queue after 3 s.
FAST_FAULTS = {
    "CHAT_STALE_HEARTBEAT_SECONDS": "3",
    "CHAT_SWEEP_SECONDS": "1",
    "CHAT_REQUEUE_AFTER_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT_SECONDS": "3",
}


@pytest.fixture
def private_redis():
    server = PrivateRedis()
    yield server
    server.stop()


@pytest.fixture
def fault_env(stack_env, private_redis):
    return {**stack_env, "REDIS_URL": private_redis.url, **FAST_FAULTS}


class Site:
    """Web, worker and beat processes of one fault test; every one is stopped at the end."""

    def __init__(self, env):
        self.env = env
        self.processes = []
        self.worker = self.add(start_worker("fault-worker", env))
        self.beat = self.add(start_beat("fault-beat", env))
        self.web = self.add(start_web("fault-web", env))

    def add(self, process):
        self.processes.append(process)
        return process

    def stop(self):
        for process in self.processes:
            process.stop()


@pytest.fixture
def site(fault_env):
    running = Site(fault_env)
    yield running
    running.stop()


class Socket:
    """A real websocket to the web server, as the page uses it."""

    def __init__(self, base_url, cookie):
        self.base_url = base_url
        self.cookie = cookie
        self.frames = []
        self.connection = None
        self.open()

    def open(self):
        self.connection = ws_connect(
            self.base_url.replace("http://", "ws://") + "/ws/chat/",
            additional_headers={"Cookie": self.cookie, "Origin": self.base_url},
            open_timeout=10,
        )

    def send(self, frame):
        self.connection.send(json.dumps(frame))

    def send_message(self, content, conversation=None):
        self.send(
            {
                "type": "message.send",
                "conversation": conversation,
                "content": content,
                "client_id": str(uuid.uuid4()),
            }
        )

    def receive_until(self, predicate, timeout=30):
        """Return the first frame matching `predicate`; every frame read is kept in `frames`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame in {timeout} s; last: {self.frames[-3:]}")
            frame = json.loads(self.connection.recv(timeout=left))
            self.frames.append(frame)
            if predicate(frame):
                return frame

    def close(self):
        self.connection.close()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
