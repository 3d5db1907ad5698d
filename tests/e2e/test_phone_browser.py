"""The chat page on a phone: composer above the keyboard, drawer, wide code blocks."""

import pytest
from playwright.sync_api import expect

from chat.models import Message
from tests.e2e.test_chat_browser import PHONE, last_reply, new_page, screenshot, sign_up
from tests.e2e.test_experience_browser import SCREEN_ANSWER, store_exchange, user_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

# What is left of a 390 × 844 phone screen above an on-screen keyboard.
KEYBOARD_OPEN = {"width": 390, "height": 430}


def box(page, selector):
    return page.locator(selector).bounding_box()


def long_conversation(owner):
    conversation = store_exchange(owner, "Area of a circle?", SCREEN_ANSWER, title="Circles")
    parent = conversation.messages.get(role="assistant")
    for number in range(6):
        question = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role="user",
            status="complete",
            content=f"Follow-up question {number}",
        )
        parent = Message.objects.create(
            conversation=conversation,
            parent=question,
            role="assistant",
            status="complete",
            content="A paragraph of answer text. " * 12,
        )
    return conversation


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_composer_stays_above_keyboard(browser, web_server, locale):
    page = new_page(browser, web_server, locale=locale, viewport=PHONE)
    sign_up(page, f"phone-{locale[:2]}@example.com")
    conversation = long_conversation(user_of(f"phone-{locale[:2]}@example.com"))
    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.locator("[data-composer-input]").focus()

    # interactive-widget=resizes-content makes the keyboard shrink the layout viewport,
    # which a smaller window height reproduces.
    page.set_viewport_size(KEYBOARD_OPEN)
    page.wait_for_timeout(200)

    composer = box(page, "[data-composer]")
    header = box(page, ".chat-header")
    assert composer["y"] >= 0
    assert composer["y"] + composer["height"] <= KEYBOARD_OPEN["height"]
    assert header["y"] == 0
    expect(page.locator("[data-composer-input]")).to_be_focused()
    assert page.evaluate("document.scrollingElement.scrollTop") == 0
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # The messages scroll between the header and the composer.
    messages = page.locator("[data-messages]")
    assert messages.evaluate("(element) => element.scrollHeight > element.clientHeight")
    messages_box = messages.bounding_box()
    assert messages_box["y"] + messages_box["height"] <= composer["y"] + 1
    screenshot(page, f"phone-keyboard-{locale[:2]}-light")

    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)
    composer = box(page, "[data-composer]")
    assert composer["y"] + composer["height"] <= PHONE["height"]
    assert composer["y"] > KEYBOARD_OPEN["height"]
    assert page.js_errors == []


def test_code_block_scrolls_sideways(browser, web_server):
    page = new_page(browser, web_server, viewport=PHONE)
    sign_up(page, "wide-code@example.com")
    conversation = store_exchange(user_of("wide-code@example.com"), "Code?", SCREEN_ANSWER)
    page.goto(f"/chat/{conversation.id}/")

    pre = last_reply(page).locator(".code-block pre").first
    expect(pre).to_be_visible()
    assert pre.evaluate("(element) => element.scrollWidth > element.clientWidth")
    assert pre.evaluate("(element) => getComputedStyle(element).overflowX") in ("auto", "scroll")
    pre.evaluate("(element) => { element.scrollLeft = 100; }")
    assert pre.evaluate("(element) => element.scrollLeft") > 0
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert page.js_errors == []


def test_phone_header_fits(browser, web_server):
    page = new_page(browser, web_server, viewport=PHONE)
    sign_up(page, "phone-header@example.com")
    conversation = store_exchange(
        user_of("phone-header@example.com"), "Q", "A", title="A rather long conversation title"
    )
    page.goto(f"/chat/{conversation.id}/")

    for name in ("Open the conversation list", "Share", "Keyboard shortcuts"):
        button = page.get_by_role("button", name=name)
        expect(button).to_be_visible()
        bounds = button.bounding_box()
        assert bounds["x"] >= 0
        assert bounds["x"] + bounds["width"] <= PHONE["width"]
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(page, "phone-header-en-light")
    assert page.js_errors == []
