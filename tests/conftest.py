import pytest
import redis
from django.conf import settings

from tests.factories import make_user

# Process fixtures live in tests/stack.py; importing them here shares them.
from tests.stack import simulator, stack_env, web_process, web_server, worker  # noqa: F401


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
