"""Deleting conversations from the list while one of them is open on the chat page."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from chat.models import Conversation
from tests.e2e.test_chat_browser import last_reply, new_page, screenshot, send, sign_up
from tests.e2e.test_chat_flash_browser import member_with_conversation
from tests.e2e.test_conversation_list_browser import seed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def delete_from_list(page, conversation):
    item = page.locator(f"[data-item-id='{conversation.id}']")
    item.get_by_role("button", name=re.compile("More actions")).click()
    page.get_by_role("menuitem", name="Delete").click()
    expect(page.locator("[data-toast]")).to_contain_text("deleted")
    expect(item).to_have_count(0)


def open_chat(page, conversation):
    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    expect(page.locator("article.message")).to_have_count(2)


def test_delete_other_keeps_open_one(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "keeps-open@example.com")
    owner = User.objects.get(email="keeps-open@example.com")
    opened = seed(owner, "Opened topic", 0)
    other = seed(owner, "Other topic", 1)
    open_chat(page, opened)

    delete_from_list(page, other)
    expect(page).to_have_url(re.compile(rf"/chat/{opened.id}/$"))
    expect(page.locator("article.message")).to_have_count(2)
    expect(page.locator("[data-chat-title]")).to_have_text("Opened topic")
    expect(page.locator("[data-conversation-tools]")).to_be_visible()
    expect(page.locator("[data-welcome]")).to_be_hidden()
    assert page.js_errors == []


def test_delete_open_then_undo(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "undo-open@example.com")
    owner = User.objects.get(email="undo-open@example.com")
    opened = seed(owner, "Open topic", 0)
    open_chat(page, opened)

    delete_from_list(page, opened)
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect(page.locator("article.message")).to_have_count(0)
    expect(page.locator("[data-welcome]")).to_be_visible()
    expect(page.locator("[data-chat-title]")).to_have_text("New chat")
    expect(page.locator("[data-conversation-tools]")).to_be_hidden()
    expect(page.locator("[data-toast] [data-undo]")).to_be_visible()
    assert page.title() == "chatsite"
    screenshot(page, "delete-open-conversation")

    # Undo brings it back and opens it again.
    with page.expect_navigation():
        page.locator("[data-toast] [data-undo]").click()
    expect(page).to_have_url(re.compile(rf"/chat/{opened.id}/$"))
    expect(page.locator("article.message")).to_have_count(2)
    expect(page.locator(f"[data-item-id='{opened.id}'] a")).to_have_attribute(
        "aria-current", "page"
    )
    opened.refresh_from_db()
    assert opened.deleted_at is None
    assert page.js_errors == []


def test_send_after_deleting_open_one(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "fresh-start@example.com")
    owner = User.objects.get(email="fresh-start@example.com")
    opened = seed(owner, "Old topic", 0)
    open_chat(page, opened)

    delete_from_list(page, opened)
    send(page, "A fresh question\n[sim rate=0 reasoning=5 answer=10]")
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=20_000)
    fresh = Conversation.objects.exclude(pk=opened.pk).get(owner=owner)
    expect(page).to_have_url(re.compile(rf"/chat/{fresh.id}/$"))
    expect(page.locator("article.message")).to_have_count(2)
    expect(page.locator("article.message.user")).to_have_text(re.compile("A fresh question"))
    expect(page.locator("[data-conversation-tools]")).to_be_visible()
    assert fresh.messages.count() == 2
    opened.refresh_from_db()
    assert opened.deleted_at is not None
    assert opened.messages.count() == 2

    # Undo after starting another conversation restores the old one in the list only.
    page.locator("[data-toast] [data-undo]").click()
    expect(page.locator(f"[data-item-id='{opened.id}']")).to_have_count(1)
    expect(page).to_have_url(re.compile(rf"/chat/{fresh.id}/$"))
    opened.refresh_from_db()
    assert opened.deleted_at is None
    assert page.js_errors == []


def test_team_share_follows_new_conversation(browser, web_server):
    page = new_page(browser, web_server)
    team, old = member_with_conversation(page, "team-follow@example.com")
    open_chat(page, old)

    delete_from_list(page, old)
    send(page, "A new plan\n[sim rate=0 reasoning=5 answer=10]")
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=20_000)
    fresh = Conversation.objects.exclude(pk=old.pk).get(owner__email="team-follow@example.com")
    expect(page).to_have_url(re.compile(rf"/chat/{fresh.id}/$"))

    # The team form was rendered for the deleted conversation: it must share the new one.
    page.click("[data-share-open]")
    expect(page.locator("#share-team")).to_have_value("")
    page.select_option("#share-team", str(team.pk))
    with page.expect_navigation():
        page.click("[data-team-share-apply]")
    expect(page).to_have_url(re.compile(rf"/chat/{fresh.id}/$"))
    fresh.refresh_from_db()
    old.refresh_from_db()
    assert fresh.shared_with_team == team
    assert old.shared_with_team is None
    assert page.js_errors == []
