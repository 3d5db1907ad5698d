"""Screenshots of every screen of the chat experience, for a person to look at.

Each combination of width (desktop, phone), theme (light, dark) and language
(English, Chinese) photographs the chat, the conversation list with a search,
the share page, the preferences, the shortcuts dialog and the import form
under test-artifacts/screenshots/screen-*.png. The checks are the ones a
screenshot cannot show: no sideways overflow and no CSP violation.
"""

import re

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message, ShareLink
from tests.e2e.test_chat_browser import DESKTOP, PHONE, screenshot, sign_up
from tests.e2e.test_experience_browser import SCREEN_ANSWER, store_exchange, user_of, watched_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def seed(owner):
    """Store a few conversations, in both languages, and return the main one."""
    store_exchange(owner, "二分查找是怎么工作的？", "每次把区间缩小一半。", title="二分查找")
    store_exchange(owner, "Sorting a list", "Use `sorted()`.", title="Sorting in Python")
    pinned = store_exchange(owner, "Plan the trip", "Day one: …", title="Trip plan")
    Conversation.objects.filter(pk=pinned.pk).update(pinned_at=pinned.created_at)
    conversation = store_exchange(owner, "Area of a circle?", SCREEN_ANSWER, title="Circles")
    question = conversation.messages.get(role="user")
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status="complete",
        content="A second version: $A = \\pi r^2$.",
        reasoning="Shorter.",
    )
    return conversation


def no_overflow(page):
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


@pytest.mark.parametrize("width", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_screen(browser, web_server, width, scheme, locale):
    suffix = f"{width}-{locale[:2]}-{scheme}"
    viewport = DESKTOP if width == "desktop" else PHONE
    page = watched_page(browser, web_server, locale=locale, viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    email = f"screens-{suffix}@example.com"
    sign_up(page, email)
    conversation = seed(user_of(email))
    link = ShareLink.objects.create(conversation=conversation, show_reasoning=True)
    overflowing = []

    # Chat.
    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.locator("article.message.assistant").last.locator(".version-switcher button").first.click()
    expect(page.locator("article.message.assistant").last.locator(".math")).to_have_count(5)
    screenshot(page, f"screen-chat-{suffix}")
    if not no_overflow(page):
        overflowing.append("chat")

    # Conversation list and search.
    if width == "phone":
        page.click("[data-sidebar-open]")
        page.wait_for_function(
            "() => document.getElementById('sidebar').getBoundingClientRect().left >= 0"
        )
    screenshot(page, f"screen-list-{suffix}")
    query = "查找" if locale == "zh-CN" else "sort"
    page.fill("#conversation-search", query)
    expect(page.locator("[data-group=searchResults] li")).to_have_count(1)
    page.wait_for_timeout(100)
    screenshot(page, f"screen-search-{suffix}")
    if width == "phone":
        page.keyboard.press("Escape")
        page.keyboard.press("Escape")

    # Shortcuts dialog.
    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.locator("[data-shortcuts-open]").click()
    expect(page.locator("[data-shortcuts-dialog]")).to_be_visible()
    screenshot(page, f"screen-shortcuts-{suffix}")
    page.keyboard.press("Escape")

    # Share dialog on the chat page, then the share page signed out.
    page.locator("[data-share-open]").click()
    expect(page.locator("[data-share-url]")).to_have_value(re.compile(link.token))
    screenshot(page, f"screen-share-dialog-{suffix}")
    page.keyboard.press("Escape")
    visitor = watched_page(browser, web_server, locale=locale, viewport=viewport)
    visitor.emulate_media(color_scheme=scheme)
    visitor.goto(f"/chat/shared/{link.token}/")
    expect(visitor.locator("[data-shared-messages] .math")).to_have_count(1)
    screenshot(visitor, f"screen-share-page-{suffix}")
    if not no_overflow(visitor):
        overflowing.append("share page")

    # Preferences and import.
    for name, path in (("preferences", "/chat/preferences/"), ("import", "/chat/import/")):
        page.goto(path)
        expect(page.locator("form button[type=submit]")).to_be_visible()
        screenshot(page, f"screen-{name}-{suffix}")
        if not no_overflow(page):
            overflowing.append(name)

    assert overflowing == []
    assert page.evaluate("window.__cspViolations") == []
    assert visitor.evaluate("window.__cspViolations") == []
    assert page.js_errors == []
    assert visitor.js_errors == []
