"""The conversation list in a real browser: groups, search, rename, pin, delete, scroll."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from chat.models import Conversation, Message
from tests.e2e.test_chat_browser import DESKTOP, PHONE, new_page, screenshot, sign_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def seed(owner, title, days_ago, text="", hours=0):
    conversation = Conversation.objects.create(owner=owner, title=title)
    question = Message.objects.create(
        conversation=conversation, role="user", status="complete", content=text or title
    )
    Message.objects.create(
        conversation=conversation, parent=question, role="assistant", status="complete",
        content=f"Answer about {title}.",
    )  # fmt: skip
    moment = timezone.now() - timedelta(days=days_ago, hours=hours)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=moment)
    return conversation


def group_titles(page):
    return page.locator("[data-conversation-list] .conversation-group").evaluate_all(
        """(groups) => groups.map((group) => [
             group.querySelector("h2").textContent,
             [...group.querySelectorAll("a")].map((link) => link.firstChild.textContent),
           ])"""
    )


@pytest.mark.parametrize(
    ("locale", "viewport", "scheme", "name"),
    [
        ("en-US", DESKTOP, "light", "list-desktop-en-light"),
        ("zh-CN", DESKTOP, "dark", "list-desktop-zh-dark"),
    ],
)
def test_list_grouped_and_searched(browser, web_server, locale, viewport, scheme, name):
    page = new_page(browser, web_server, locale=locale, viewport=viewport, timezone_id="UTC")
    page.emulate_media(color_scheme=scheme)
    sign_up(page, f"{name}@example.com")
    owner = User.objects.get(email=f"{name}@example.com")
    seed(owner, "Binary search basics", 0, "How does binary search work?")
    seed(owner, "二分查找", 1, "二分查找是怎么工作的？请举例说明。")
    seed(owner, "Hash tables", 3, "Explain hash tables and collisions.")
    seed(owner, "Old question", 40, "Something from long ago about sorting.")

    page.reload()
    groups = group_titles(page)
    if locale == "en-US":
        assert groups == [
            ["Today", ["Binary search basics"]],
            ["Yesterday", ["二分查找"]],
            ["Previous 7 days", ["Hash tables"]],
            ["Older", ["Old question"]],
        ]
    else:
        assert [title for _, title in groups] == [
            ["Binary search basics"], ["二分查找"], ["Hash tables"], ["Old question"],
        ]  # fmt: skip
        assert groups[0][0] == "今天"
    screenshot(page, name)

    # Message text, not only titles; English, then Chinese without spaces.
    page.fill("[data-conversation-search]", "collisions")
    expect(page.locator("[data-conversation-list] a")).to_have_count(1)
    expect(page.locator("[data-conversation-list] a")).to_contain_text("Hash tables")
    expect(page.locator(".conversation-snippet")).to_contain_text("collisions")

    page.fill("[data-conversation-search]", "怎么工作")
    expect(page.locator("[data-conversation-list] a")).to_have_count(1)
    expect(page.locator("[data-conversation-list] a")).to_contain_text("二分查找")
    screenshot(page, f"{name}-search")

    page.fill("[data-conversation-search]", "nothing like this")
    expect(page.locator("[data-empty-list]")).to_be_visible()
    page.fill("[data-conversation-search]", "")
    expect(page.locator("[data-conversation-list] a")).to_have_count(4)
    assert page.js_errors == []


def test_rename_pin_delete_undo(browser, web_server):
    page = new_page(browser, web_server, viewport=PHONE)
    sign_up(page, "organiser@example.com")
    owner = User.objects.get(email="organiser@example.com")
    first = seed(owner, "First topic", 0, hours=1)
    second = seed(owner, "Second topic", 2)
    page.goto(f"/chat/{first.id}/")
    page.click("[data-sidebar-open]")

    item = page.locator(f"[data-item-id='{second.id}']")
    item.get_by_role("button", name=re.compile("More actions")).click()
    page.get_by_role("menuitem", name="Rename").click()
    page.keyboard.press("Control+A")
    page.keyboard.type("Renamed 重命名")
    page.keyboard.press("Enter")
    expect(item.locator("a")).to_have_text("Renamed 重命名")
    second.refresh_from_db()
    assert second.title == "Renamed 重命名"

    item.get_by_role("button", name=re.compile("More actions")).click()
    page.get_by_role("menuitem", name="Pin").click()
    expect(page.locator(".conversation-group").first.locator("h2")).to_have_text("Pinned")
    expect(page.locator(".conversation-group").first.locator("a")).to_have_text("Renamed 重命名")
    second.refresh_from_db()
    assert second.pinned_at is not None
    screenshot(page, "list-phone-en-pinned")

    item.get_by_role("button", name=re.compile("More actions")).click()
    page.get_by_role("menuitem", name="Delete").click()
    expect(page.locator("[data-toast]")).to_contain_text("deleted")
    expect(item).to_have_count(0)
    second.refresh_from_db()
    assert second.deleted_at is not None
    assert page.request.get(f"/chat/{second.id}/").status == 404

    page.locator("[data-toast] [data-undo]").click()
    expect(page.locator(f"[data-item-id='{second.id}']")).to_have_count(1)
    second.refresh_from_db()
    assert second.deleted_at is None
    assert page.js_errors == []


def test_list_loads_more_on_scroll(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "scroller@example.com")
    owner = User.objects.get(email="scroller@example.com")
    for index in range(75):
        seed(owner, f"Topic {index:02d}", 0, hours=index % 20)

    page.reload()
    links = page.locator("[data-conversation-list] a")
    expect(links).to_have_count(30)
    for expected in (60, 75):
        page.locator(".list-sentinel").scroll_into_view_if_needed()
        expect(links).to_have_count(expected)
    expect(page.locator(".list-sentinel")).to_have_count(0)
    titles = links.evaluate_all("(nodes) => nodes.map((node) => node.textContent)")
    assert len(set(titles)) == 75
    assert page.js_errors == []
