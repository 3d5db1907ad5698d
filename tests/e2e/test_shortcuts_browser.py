"""Keyboard shortcuts and their help dialog in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from chat.models import Message
from tests.e2e.test_chat_browser import PHONE, last_reply, new_page, screenshot, send, sign_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def test_shortcuts_act_on_chat(browser, web_server):
    page = new_page(browser, web_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server)
    sign_up(page, "keys@example.com")
    composer = page.locator("[data-composer-input]")

    send(page, "Short one.\n[sim rate=0 reasoning=3 answer=8]")
    reply = last_reply(page)
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)

    # Copy the last answer, from inside the composer.
    composer.focus()
    page.keyboard.press("Alt+C")
    expect(reply.locator("[data-copy-answer]")).to_have_text("Copied")
    stored = Message.objects.get(role="assistant", conversation__owner__email="keys@example.com")
    assert page.evaluate("navigator.clipboard.readText()") == stored.content
    assert composer.input_value() == ""

    # Regenerate: a second version of the answer.
    page.keyboard.press("Alt+R")
    expect(last_reply(page).locator(".version-position")).to_have_text("2 / 2")
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)

    # Stop a long reply.
    send(page, "Long one.\n[sim rate=15 reasoning=600]")
    expect(page.locator("article.message.assistant")).to_have_count(2)
    expect(last_reply(page).locator(".reasoning-body")).not_to_be_empty()
    expect(page.locator("[data-stop]")).to_be_visible()
    page.keyboard.press("Alt+X")
    expect(last_reply(page).locator(".message-status")).to_have_text("Stopped.", timeout=5_000)

    # Search, then back to the composer.
    page.keyboard.press("Alt+K")
    expect(page.locator("#conversation-search")).to_be_focused()
    page.keyboard.press("Alt+M")
    expect(composer).to_be_focused()

    # New chat.
    page.keyboard.press("Alt+O")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect(page.locator("[data-welcome]")).to_be_visible()
    assert page.js_errors == []


def test_help_dialog_opens_three_ways(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "help@example.com")
    dialog = page.locator("[data-shortcuts-dialog]")
    expect(page.locator("[data-connection-state]")).to_be_empty()

    # "?" outside a text box.
    page.locator("[data-chat-title]").click()
    page.keyboard.press("Shift+Slash")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    rows = dialog.locator("tbody tr")
    expect(rows).to_have_count(8)
    expect(rows.nth(0)).to_contain_text("New chat")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # "?" typed in the composer is text, not a shortcut.
    composer = page.locator("[data-composer-input]")
    composer.focus()
    page.keyboard.type("why?")
    expect(dialog).to_be_hidden()
    assert composer.input_value() == "why?"

    # Ctrl+/ works while typing; the button works too and focus returns to it.
    page.keyboard.press("Control+Slash")
    expect(dialog).to_be_visible()
    page.keyboard.press("Control+Slash")
    expect(dialog).to_be_hidden()
    button = page.get_by_role("button", name="Keyboard shortcuts")
    button.click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    expect(button).to_be_focused()
    assert page.js_errors == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_help_dialog_chinese_phone(browser, web_server, scheme):
    page = new_page(browser, web_server, locale="zh-CN", viewport=PHONE)
    page.emulate_media(color_scheme=scheme)
    sign_up(page, f"help-zh-{scheme}@example.com")

    # The page's scripts have run once the socket is open.
    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.get_by_role("button", name="键盘快捷键").click()
    dialog = page.get_by_role("dialog", name="键盘快捷键")
    expect(dialog).to_be_visible()
    expect(dialog.locator("tbody tr").nth(0)).to_contain_text("新对话")
    expect(dialog).to_contain_text("复制最后一个回答")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(page, f"shortcuts-phone-zh-{scheme}")

    # Alt+K on a phone opens the drawer to reach the search box.
    page.keyboard.press("Escape")
    page.keyboard.press("Alt+K")
    expect(page.locator("#sidebar")).to_have_class(re.compile(r"open"))
    expect(page.locator("#conversation-search")).to_be_focused()
    assert page.js_errors == []
