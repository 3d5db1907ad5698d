import pytest
import redis
from channels.layers import channel_layers
from django.conf import settings
from django.db import connection

from tests.chat.websocket import session_cookie
from tests.concurrency import end_replies_in_flight
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


@pytest.fixture(autouse=True)
def reset_sign_in_throttles():
    """Start each test with no sign-in or sign-up attempts counted in the shared cache."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match="*:rl:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def end_replies_before_teardown(request, django_db_blocker):
    """Stop the replies a test left to the session's worker before its tables are emptied.

    A worker writing a reply while pytest-django truncates the tables
    deadlocks the truncation. This teardown runs before that truncation
    because pytest-django's database fixtures are set up first.
    """
    yield
    if "worker" in request.fixturenames and "_django_db_helper" in request.fixturenames:
        with django_db_blocker.unblock():
            end_replies_in_flight()


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


@pytest.fixture(scope="session", autouse=True)
def end_stray_database_sessions(django_db_setup, django_db_blocker):
    """Close the test database's other sessions before pytest-django drops it.

    Threads that served async ORM calls keep their connections open, and a
    database with open sessions cannot be dropped.
    """
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
