import pytest
from playwright.sync_api import sync_playwright

from tests.frontend.harness import CHROMIUM, open_harness, serve_repository


@pytest.fixture(scope="module")
def base_url():
    server, thread, url = serve_repository()
    yield url
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found. Install Debian's package: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            headless=True,
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    context, page, errors = open_harness(browser, base_url)
    yield page
    context.close()
    assert errors == []
