"""Export and import in a real browser: the header's Export menu and the import form."""

import json
import re

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, Message
from tests.e2e.test_chat_browser import DESKTOP, PHONE, new_page, screenshot, sign_up
from tests.e2e.test_experience_browser import store_exchange, user_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def test_export_then_import(browser, web_server, tmp_path):
    page = new_page(browser, web_server)
    sign_up(page, "exporter@example.com")
    owner = user_of("exporter@example.com")
    conversation = store_exchange(owner, "Question one", "Answer one", title="Exported")
    question = conversation.messages.get(role="user")
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status="complete",
        content="Answer two",
    )

    page.goto(f"/chat/{conversation.id}/")
    page.get_by_text("Export", exact=True).click()
    with page.expect_download() as markdown_download:
        page.get_by_role("link", name="Markdown (.md)").click()
    markdown = markdown_download.value
    assert markdown.suggested_filename == "exported.md"
    text = open(markdown.path(), encoding="utf-8").read()
    assert "Answer two" in text
    assert "Answer one" not in text

    page.get_by_text("Export", exact=True).click()
    with page.expect_download() as json_download:
        page.get_by_role("link", name="JSON (.json), for import").click()
    saved = tmp_path / "exported.json"
    json_download.value.save_as(saved)
    assert len(json.loads(saved.read_text())["messages"]) == 3

    # A broken file is refused with the reason, and nothing is stored.
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "chatsite.conversation", "version": 1, "messages": [')
    page.get_by_role("link", name="Import a conversation").click()
    expect(page).to_have_url(re.compile(r"/chat/import/$"))
    page.get_by_label("JSON export").set_input_files(str(broken))
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".field-errors")).to_contain_text("The file is not valid JSON")
    assert Conversation.objects.filter(owner=owner).count() == 1
    screenshot(page, "import-error-desktop-en-light")

    page.get_by_label("JSON export").set_input_files(str(saved))
    page.get_by_role("button", name="Import").click()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    assert Conversation.objects.filter(owner=owner).count() == 2
    expect(page.locator("[data-chat-title]")).to_have_text("Exported")
    reply = page.locator("article.message.assistant").last
    expect(reply.locator(".version-position")).to_have_text("2 / 2")
    expect(reply.locator(".answer")).to_have_text("Answer two")
    # The refused upload answered 400, which the console reports; nothing else may fail.
    assert [error for error in page.js_errors if "400 (Bad Request)" not in error] == []


@pytest.mark.parametrize(
    ("viewport", "locale", "scheme", "name"),
    [
        (DESKTOP, "zh-CN", "dark", "import-desktop-zh-dark"),
        (PHONE, "en-US", "light", "import-phone-en-light"),
    ],
)
def test_import_form_screens(browser, web_server, viewport, locale, scheme, name):
    page = new_page(browser, web_server, locale=locale, viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    sign_up(page, f"{name}@example.com")
    page.goto("/chat/import/")
    expect(page.locator("input[type=file]")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(page, name)
    assert page.js_errors == []
