"""Slow upstreams, scaled down through UPSTREAM_READ_TIMEOUT_SECONDS instead of waited out.

DeepSeek keeps a queued request open for up to 10 minutes with keep-alive
comments, against a read timeout of 600 s. Here the read timeout is 1.5 s
and the simulator's waits are seconds, which keeps the same proportions.
"""

import pytest

from tests.chat.websocket import session_cookie
from tests.factories import make_user
from tests.faults.conftest import Site, Socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


def is_done(frame):
    return frame["type"] == "message.done"


@pytest.fixture
def slow_site(fault_env):
    site = Site({**fault_env, "UPSTREAM_READ_TIMEOUT_SECONDS": "1.5"})
    yield site
    site.stop()


def test_upstream_waits_scaled_down(slow_site):
    user = make_user("slow-upstream@example.com")
    socket = Socket(slow_site.web.base_url, session_cookie(user))

    # Only keep-alives for longer than the read timeout: each one resets it.
    socket.send_message("[sim queue=4 keepalive=0.5 rate=0 reasoning=5 answer=5]\nQueued?")
    done = socket.receive_until(is_done, timeout=30)
    assert done["status"] == "complete"

    # The same wait without keep-alives: the read timeout ends it with a clear code.
    conversation = socket.frames[0]["conversation"]
    socket.send_message(
        "[sim queue=4 keepalive=10 rate=0 reasoning=5 answer=5]\nSilent?", conversation
    )
    done = socket.receive_until(is_done, timeout=30)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "timeout"
    assert "stopped responding" in done["error"]["detail"]

    # A trickle of single bytes, each sooner than the read timeout, is slow, not broken.
    socket.send_message(
        "[sim fault=trickle trickle_interval=0.004 rate=0 reasoning=2 answer=2]\nTrickle?",
        conversation,
    )
    done = socket.receive_until(is_done, timeout=60)
    assert done["status"] == "complete"
    assert done["usage"]["completion_tokens"] > 0
    socket.close()
