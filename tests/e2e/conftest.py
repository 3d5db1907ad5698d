from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Playwright's `expect` waits 5 s by default. On a busy 2-core machine a page's
# socket has taken longer than that to connect, so the wait is longer here.
EXPECT_TIMEOUT_MS = 20_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


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


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright; skips where it is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
