import pytest


@pytest.fixture(scope="module", autouse=True)
def allow_sync_orm_beside_playwright():
    """Let these tests and their database fixtures use the ORM beside Playwright.

    Playwright's sync API runs an event loop in the test's thread, which makes
    Django refuse synchronous ORM calls there; the calls here are plain
    checks made while the browser waits. The variable is removed after the
    module, so no later test inherits it.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield
