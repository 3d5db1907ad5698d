"""The preferences page in a real browser: language, theme, reasoning panel, send key."""

import re

import pytest
from playwright.sync_api import expect

from chat.models import Message, Preferences
from tests.e2e.test_chat_browser import last_reply, new_page, screenshot, sign_up
from tests.e2e.test_experience_browser import user_of, watched_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

DARK_BACKGROUND = "rgb(20, 22, 26)"
LIGHT_BACKGROUND = "rgb(255, 255, 255)"


def body_background(page):
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def test_preferences_language_and_theme(browser, web_server):
    page = watched_page(browser, web_server)
    page.emulate_media(color_scheme="light")
    sign_up(page, "prefs@example.com")

    page.get_by_role("link", name="Preferences").click()
    expect(page).to_have_url(re.compile(r"/chat/preferences/$"))
    page.get_by_label("Interface language").select_option("zh-hans")
    page.get_by_label("Theme").select_option("dark")
    page.get_by_role("button", name="Save").click()

    expect(page.locator(".flash")).to_have_text("偏好设置已保存。")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert body_background(page) == DARK_BACKGROUND
    cookies = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}
    assert cookies["django_language"] == "zh-hans"
    stored = Preferences.objects.get(user=user_of("prefs@example.com"))
    assert (stored.language, stored.theme) == ("zh-hans", "dark")

    # The theme is in the HTML the server sends, so the first paint is already dark:
    # the colours apply before any script runs, even with scripts off.
    no_script = browser.new_context(
        base_url=web_server, java_script_enabled=False, storage_state=page.context.storage_state()
    )
    bare = no_script.new_page()
    bare.emulate_media(color_scheme="light")
    bare.goto("/chat/")
    assert body_background(bare) == DARK_BACKGROUND
    assert bare.locator("html").get_attribute("lang") == "zh-hans"
    no_script.close()

    page.goto("/chat/")
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    page.get_by_role("link", name="偏好设置").click()
    page.get_by_label("主题").select_option("system")
    page.get_by_role("button", name="保存").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "system")
    assert body_background(page) == LIGHT_BACKGROUND
    page.emulate_media(color_scheme="dark")
    assert body_background(page) == DARK_BACKGROUND
    assert page.evaluate("window.__cspViolations") == []
    assert page.js_errors == []


def test_ctrl_enter_preference_sends(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "ctrl@example.com")
    page.goto("/chat/preferences/")
    page.get_by_label("Key that sends a message").select_option("ctrl_enter")
    page.get_by_label("Reasoning panel when the answer starts").select_option("expanded")
    page.get_by_role("button", name="Save").click()
    page.goto("/chat/")

    expect(page.locator("#composer-hint")).to_have_text("Ctrl+Enter sends, Enter adds a line.")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    composer = page.locator("[data-composer-input]")
    composer.fill("Line one")
    composer.press("Enter")
    composer.type("[sim rate=0 reasoning=5 answer=5]")
    assert composer.input_value() == "Line one\n[sim rate=0 reasoning=5 answer=5]"
    assert page.locator("article.message").count() == 0

    composer.press("Control+Enter")
    reply = last_reply(page)
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    expect(composer).to_have_value("")
    question = Message.objects.get(role="user", conversation__owner__email="ctrl@example.com")
    assert question.content == "Line one\n[sim rate=0 reasoning=5 answer=5]"
    # The reasoning panel stays open, as chosen.
    expect(reply.locator("details.reasoning")).to_have_attribute("open", "")
    screenshot(page, "preferences-ctrl-enter-desktop-en-light")
    assert page.js_errors == []
