import pytest
import redis
from channels.layers import channel_layers
from django.conf import settings

from tests.chat.websocket import session_cookie
from tests.factories import make_user

# Process fixtures live in tests/stack.py; importing them here shares them.
from tests.stack import (  # noqa: F401
    live_stack,
    simulator,
    stack_env,
    web_process,
    web_server,
    worker,
)


@pytest.fixture(scope="session", autouse=True)
def clean_redis():
    """Start every run with an empty test Redis database (broker, channel layer, buffers)."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def owner(db):
    return make_user("owner@example.com")


@pytest.fixture
def outsider(db):
    return make_user("outsider@example.com")


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Give each test's event loop its own channel layer; one must not cross loops."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def owner_cookie(owner):
    return session_cookie(owner)


@pytest.fixture
def outsider_cookie(outsider):
    return session_cookie(outsider)
