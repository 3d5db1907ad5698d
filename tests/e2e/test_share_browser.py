"""Share links in a real browser: made on the chat page, read signed out, revoked."""

import re

import pytest
from playwright.sync_api import expect

from chat.models import Message, ShareLink
from tests.e2e.test_chat_browser import DESKTOP, PHONE, new_page, screenshot, sign_up
from tests.e2e.test_experience_browser import (
    SCREEN_ANSWER,
    XSS_CORPUS,
    store_exchange,
    user_of,
    watched_page,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def add_version(conversation, content, reasoning):
    question = conversation.messages.get(role="user")
    return Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status="complete",
        content=content,
        reasoning=reasoning,
    )


def test_share_create_read_revoke(browser, web_server):
    page = new_page(browser, web_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server)
    sign_up(page, "sharer@example.com")
    conversation = store_exchange(
        user_of("sharer@example.com"), "Area of a circle?", "Old answer", reasoning="Old thought"
    )
    add_version(conversation, "New answer $A = \\pi r^2$", "Newest thought")

    page.goto(f"/chat/{conversation.id}/")
    page.get_by_role("button", name="Share").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Show the model's reasoning").check()
    dialog.get_by_role("button", name="Create link").click()
    url_box = dialog.get_by_label("Link", exact=True)
    expect(url_box).to_have_value(re.compile(r"/chat/shared/[A-Za-z0-9_-]{43}/$"))
    url = url_box.input_value()
    assert ShareLink.objects.get(conversation=conversation).show_reasoning is True
    dialog.get_by_role("button", name="Copy link").click()
    expect(dialog.locator("[data-share-status]")).to_have_text("Link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url
    screenshot(page, "share-dialog-desktop-en-light")

    # A visitor who is not signed in reads the newest version, reasoning included.
    visitor = watched_page(browser, web_server)
    visitor.goto(url)
    messages = visitor.locator("[data-shared-messages] article.message")
    expect(messages).to_have_count(2)
    expect(messages.nth(1)).to_contain_text("New answer")
    expect(messages.nth(1).locator(".math")).to_have_count(1)
    assert "Old answer" not in visitor.content()
    messages.nth(1).locator("summary").click()
    expect(messages.nth(1).locator("details")).to_contain_text("Newest thought")
    assert visitor.locator("meta[name=robots]").get_attribute("content") == "noindex, nofollow"
    assert visitor.evaluate("window.__cspViolations") == []

    # The owner hides the reasoning: the same link no longer carries it.
    dialog.get_by_label("Show the model's reasoning").uncheck()
    expect(dialog.locator("[data-share-status]")).to_have_text("Saved. The link stays the same.")
    visitor.reload()
    expect(visitor.locator("[data-shared-messages] article.message")).to_have_count(2)
    assert visitor.locator("[data-shared-messages] details").count() == 0
    assert "Newest thought" not in visitor.content()

    assert visitor.js_errors == []

    dialog.get_by_role("button", name="Revoke link").click()
    expect(dialog.get_by_role("button", name="Create link")).to_be_visible()
    response = visitor.goto(url)
    assert response.status == 404
    expect(visitor.get_by_role("heading", level=1)).to_have_text(
        "This shared conversation is not available"
    )
    assert not ShareLink.objects.filter(conversation=conversation).exists()
    assert page.js_errors == []


def test_share_page_xss_corpus(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "xss-sharer@example.com")
    corpus = "\n\n".join(XSS_CORPUS)
    title = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
    conversation = store_exchange(
        user_of("xss-sharer@example.com"), corpus, corpus, title=title, reasoning=corpus
    )
    link = ShareLink.objects.create(conversation=conversation, show_reasoning=True)

    visitor = watched_page(browser, web_server)
    visitor.goto(f"/chat/shared/{link.token}/")
    root = visitor.locator("[data-shared-messages]")
    expect(root.locator("article.message")).to_have_count(2)
    root.locator("summary").click()
    visitor.wait_for_timeout(500)

    assert visitor.evaluate("window.__xss") is None
    assert visitor.dialogs == []
    assert root.locator("script, iframe, img, [onerror]").count() == 0
    assert root.locator("a[href^='javascript' i]").count() == 0
    assert root.locator("article.message.user .markdown").inner_text() == corpus
    expect(visitor.get_by_role("heading", level=1)).to_have_text(title)
    assert visitor.evaluate("window.__cspViolations") == []
    assert visitor.js_errors == []


@pytest.mark.parametrize(
    ("viewport", "locale", "scheme", "name"),
    [
        (DESKTOP, "en-US", "light", "share-page-desktop-en-light"),
        (PHONE, "zh-CN", "dark", "share-page-phone-zh-dark"),
    ],
)
def test_share_page_screens(browser, web_server, viewport, locale, scheme, name):
    page = new_page(browser, web_server)
    sign_up(page, f"{name}@example.com")
    conversation = store_exchange(
        user_of(f"{name}@example.com"), "Area of a circle?", SCREEN_ANSWER, title="Circles"
    )
    link = ShareLink.objects.create(conversation=conversation, show_reasoning=True)

    visitor = watched_page(browser, web_server, locale=locale, viewport=viewport)
    visitor.emulate_media(color_scheme=scheme)
    visitor.goto(f"/chat/shared/{link.token}/")
    expect(visitor.locator("[data-shared-messages] .math")).to_have_count(5)
    overflow = visitor.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(visitor, name)
    assert visitor.js_errors == []
