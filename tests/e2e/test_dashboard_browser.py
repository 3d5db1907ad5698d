"""The usage dashboard in a real browser: charts drawn from the seeded ledger, both languages.

Screenshots go to test-artifacts/screenshots/dashboard-*.png.
"""

import re
from datetime import timedelta

import pytest
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from accounts import quotas
from tests.dashboard.seed import seed
from tests.e2e.test_chat_browser import DESKTOP, PHONE, SCREENSHOTS, new_page, screenshot
from tests.factories import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

LANGUAGES = {"en-US": "en", "zh-CN": "zh-hans"}


def translated(locale, text):
    language = LANGUAGES[locale]
    with translation.override(language):
        result = gettext(text)
    if language != "en":
        assert result != text, f"{text!r} has no {language} translation"
    return result


def sign_in(page, email):
    page.goto("/accounts/sign-in/?next=/dashboard/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/dashboard/$"))


def bar_values(page, chart):
    return page.locator(f"[data-chart={chart}] rect.chart-bar").evaluate_all(
        "bars => bars.map(bar => Number(bar.dataset.value))"
    )


@pytest.mark.parametrize(
    ("locale", "viewport", "name"),
    [
        ("en-US", DESKTOP, "dashboard-en"),
        ("zh-CN", DESKTOP, "dashboard-zh"),
        ("en-US", PHONE, "dashboard-phone-en"),
        ("zh-CN", PHONE, "dashboard-phone-zh"),
    ],
)
def test_overview_charts(browser, web_server, locale, viewport, name):
    ledger = seed(rows=160)
    today = quotas.quota_day(ledger.now)
    week = ledger.rows_between(today - timedelta(days=6), today)
    week_blocks = ledger.blocks_between(today - timedelta(days=6), today)
    page = new_page(browser, web_server, locale=locale, viewport=viewport)
    sign_in(page, "staff@example.com")

    page.goto("/dashboard/?range=7d")

    expect(page.locator("h1")).to_have_text(translated(locale, "Usage overview"))
    expect(page.locator("[data-total=messages]")).to_have_text(str(len(week)))
    messages = bar_values(page, "messages")
    assert sum(messages) == len(week)
    assert 0 < len(messages) <= 7
    assert sum(bar_values(page, "blocks")) == len(week_blocks)
    assert sum(bar_values(page, "errors")) == sum(1 for row in week if row.error_code)
    # Tokens stack four series per day; their sum is every prompt and completion token.
    tokens = sum(r.prompt_cache_hit_tokens + r.prompt_cache_miss_tokens for r in week)
    tokens += sum(r.completion_tokens for r in week)
    assert sum(bar_values(page, "tokens")) == tokens
    chart = page.locator("[data-chart=messages] svg")
    expect(chart).to_have_attribute("role", "img")
    expect(page.locator("[data-chart=messages] svg title").first).to_have_text(
        translated(locale, "Replies per day")
    )
    # Every chart draws inside the page: nothing scrolls sideways, on a phone neither.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.locator("[data-chart=messages]").scroll_into_view_if_needed()
    screenshot(page, name)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, f"{name}-top")

    page.locator("[data-chart=messages] summary").click()
    table = page.locator("[data-chart=messages] table")
    expect(table).to_be_visible()
    assert table.locator("tbody tr").count() == 7
    assert page.js_errors == []


@pytest.mark.parametrize(
    ("locale", "viewport", "name"),
    [("en-US", DESKTOP, "dashboard-users-en"), ("zh-CN", PHONE, "dashboard-users-phone-zh")],
)
def test_users_and_user_page(browser, web_server, locale, viewport, name):
    ledger = seed(rows=80)
    page = new_page(browser, web_server, locale=locale, viewport=viewport)
    sign_in(page, "staff@example.com")

    page.goto("/dashboard/users/?range=30d")
    page.fill("#user-search", "alice")
    page.locator("form.dash-search button[type=submit]").click()
    rows = page.locator("[data-users-table] tbody tr")
    expect(rows).to_have_count(1)
    screenshot(page, name)
    rows.first.locator("a").click()

    expect(page.locator("[data-user-email]")).to_have_text("alice@example.com")
    alice_rows = [r for r in ledger.rows if r.user_id == ledger.users["alice"].pk]
    shown = sum(bar_values(page, "messages"))
    assert 0 < shown <= len(alice_rows)
    screenshot(page, f"{name}-user")
    # The whole page once, for the limits form and the audit trail below the charts.
    page.screenshot(path=str(SCREENSHOTS / f"{name}-user-full.png"), full_page=True)
    assert page.js_errors == []


def test_models_and_errors_pages(browser, web_server):
    seed(rows=80)
    page = new_page(browser, web_server, locale="zh-CN")
    sign_in(page, "staff@example.com")

    page.goto("/dashboard/models/?range=30d")
    expect(page.locator("[data-models-table] tbody tr")).to_have_count(2)
    screenshot(page, "dashboard-models-zh")
    page.goto("/dashboard/errors/?range=30d")
    expect(page.locator("[data-chart=errors-by-code] svg")).to_be_visible()
    assert "secret reply text" not in page.content()
    screenshot(page, "dashboard-errors-zh")
    assert page.js_errors == []
