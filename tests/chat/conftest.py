import pytest
from channels.layers import channel_layers

from tests.chat.websocket import session_cookie


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


@pytest.fixture
def live_stack(worker, simulator):
    """The worker and simulator processes; returns the simulator's base URL."""
    return simulator
