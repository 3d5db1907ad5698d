"""A team's whole life in a real browser: create, invite, join, chat, share, budget, usage.

Two browser contexts stand for two people. Replies run on the real worker
against the simulator. Screenshots go to test-artifacts/screenshots/.
"""

import re

import pytest
from playwright.sync_api import expect

from chat.models import Conversation, UsageRecord
from teams.models import Invite, Membership, Team
from tests.e2e.test_chat_browser import (
    DESKTOP,
    PASSWORD,
    PHONE,
    last_reply,
    new_page,
    screenshot,
    send,
    sign_up,
)
from tests.mailbox import file_link
from tests.teams.helpers import add_member

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]


def create_team(page, name):
    page.goto("/teams/")
    page.fill("input[name=name]", name)
    page.click("text=Create team")
    expect(page).to_have_url(re.compile(r"/teams/\d+/$"))
    return Team.objects.get(name=name)


def create_invite(page, role="member", uses="1"):
    page.select_option("select[name=role]", role)
    page.fill("input[name=max_uses]", uses)
    page.click("text=Create invite link")
    expect(page.locator("[data-invite-link]").first).to_be_visible()
    return page.locator("[data-invite-link]").first.input_value()


def wait_for_reply(page):
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)


def test_team_flow(browser, web_server):
    owner = new_page(browser, web_server)
    sign_up(owner, "lead@example.com")
    team = create_team(owner, "Research")
    owner.select_option("select[name=budget_unit]", "tokens")
    owner.fill("input[name=monthly_budget]", "1000000")
    owner.click("text=Save settings")
    expect(owner.locator(".flash")).to_contain_text("Team settings saved.")
    link = create_invite(owner)
    assert link.startswith(web_server + "/teams/invite/")
    owner.context.grant_permissions(["clipboard-read", "clipboard-write"])
    owner.click("[data-copy-invite]")
    expect(owner.locator("[data-copy-invite]")).to_have_text("Copied")
    assert owner.evaluate("navigator.clipboard.readText()") == link

    # A second person opens the link, signs up from it and lands in the team.
    member = new_page(browser, web_server)
    member.goto(link)
    expect(member.locator("h1")).to_have_text("Join Research")
    member.click("text=Sign up and join")
    member.fill("input[name=email]", "analyst@example.com")
    member.click("button[type=submit]")
    expect(member.locator("[data-check-inbox]")).to_be_visible()
    member.goto(file_link("analyst@example.com"))
    member.fill("input[name=password1]", PASSWORD)
    member.fill("input[name=password2]", PASSWORD)
    member.click("button[type=submit]")
    # The link carried the invite page, so choosing the password leads back to it.
    expect(member).to_have_url(link)
    member.click("text=Join the team")
    expect(member).to_have_url(re.compile(rf"/teams/{team.pk}/$"))
    assert Membership.objects.get(user__email="analyst@example.com").role == "member"
    assert Invite.objects.get(team=team).uses == 1

    # The used-up link is refused to a third person.
    third = new_page(browser, web_server)
    third.goto(link)
    expect(third.locator("[role=alert]")).to_contain_text("used as often as allowed")

    # The member chats; the conversation is billed to the team.
    member.goto("/chat/")
    expect(member.locator("[data-team-select]")).to_have_value(str(team.pk))
    send(member, "Plan the quarter\n[sim rate=0 reasoning=20 answer=30]")
    wait_for_reply(member)
    conversation = Conversation.objects.get(owner__email="analyst@example.com")
    assert conversation.team == team
    record = UsageRecord.objects.get(user__email="analyst@example.com")
    assert record.team == team
    assert record.completion_tokens > 0

    # The member shares it; the owner finds it in the sidebar and reads it.
    member.reload()
    member.click("[data-share-open]")
    member.select_option("#share-team", str(team.pk))
    with member.expect_navigation():
        member.click("[data-team-share-apply]")
    conversation.refresh_from_db()
    assert conversation.shared_with_team == team
    owner.goto("/chat/")
    shared = owner.locator("[data-team-shared] a")
    expect(shared).to_have_count(1)
    shared.click()
    # The page script renders the messages once the Markdown bundle has loaded.
    expect(owner.locator(".shared-messages .message.assistant")).to_have_count(1, timeout=20_000)
    expect(owner.locator(".shared-messages .message.user")).to_contain_text("Plan the quarter")
    screenshot(owner, "teams-shared-conversation-en")

    # The owner sees the month's usage per member.
    owner.goto(f"/teams/{team.pk}/")
    used = record.prompt_cache_hit_tokens + record.prompt_cache_miss_tokens
    used += record.completion_tokens
    expect(owner.locator("[data-member='analyst@example.com']")).to_contain_text(f"{used:,}")
    screenshot(owner, "teams-detail-en")

    # With the budget used up, the member's send is refused naming the team; the text stays.
    Team.objects.filter(pk=team.pk).update(monthly_budget=used)
    side = Team.objects.create(name="Side project")
    Membership.objects.create(team=side, user=conversation.owner)
    member.goto("/chat/")
    send(member, "One more question")
    error = member.locator("[data-composer-error]")
    expect(error).to_contain_text("Research")
    expect(error).to_contain_text("monthly budget")
    expect(member.locator("[data-composer-input]")).to_have_value("One more question")
    expect(member.locator("[data-send]")).to_be_disabled()
    screenshot(member, "teams-budget-refused-en")

    # Billing another team unblocks the same text without a reload.
    member.select_option("[data-team-select]", str(side.pk))
    expect(error).to_be_hidden()
    expect(member.locator("[data-send]")).to_be_enabled()
    member.click("[data-send]")
    wait_for_reply(member)
    assert Conversation.objects.get(title="One more question").team == side

    # The owner opens the team's usage: one reply and one refused send, both the member's.
    owner.goto(f"/teams/{team.pk}/")
    owner.click("[data-team-usage]")
    expect(owner.locator("[data-total=messages]")).to_have_text("1")
    expect(owner.locator("[data-total=blocks]")).to_have_text("1")
    expect(owner.locator("[data-total=completion]")).to_have_text(f"{record.completion_tokens:,}")
    screenshot(owner, "teams-usage-en")
    owner.goto("/dashboard/users/")
    expect(owner.locator("[data-user-row]")).to_have_count(1)
    expect(owner.locator("[data-user-row]")).to_contain_text("analyst@example.com")
    csv = owner.request.get(owner.locator("[data-users-csv]").get_attribute("href"))
    assert csv.ok
    assert "analyst@example.com" in csv.text()

    # Leaving keeps the member's conversation and ends access to the shared list.
    member.goto(f"/teams/{team.pk}/")
    member.click("form[action$='/leave/'] button")
    expect(member).to_have_url(re.compile(r"/teams/$"))
    conversation.refresh_from_db()
    assert conversation.owner.email == "analyst@example.com"
    assert conversation.team is None
    assert conversation.shared_with_team is None
    assert owner.js_errors == []
    assert member.js_errors == []


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
@pytest.mark.parametrize(("viewport", "width"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_team_screens(browser, web_server, locale, viewport, width):
    language = "en" if locale == "en-US" else "zh"
    page = new_page(browser, web_server, locale, viewport)
    sign_up(page, f"owner-{language}-{width}@example.com")
    page.goto("/teams/")
    screenshot(page, f"teams-list-empty-{width}-{language}")
    page.fill("input[name=name]", "设计组" if language == "zh" else "Design")
    page.click("form[action$='/teams/new/'] button")
    expect(page).to_have_url(re.compile(r"/teams/\d+/$"))
    page.click("form[action$='/invites/'] button")
    expect(page.locator("[data-invite-link]")).to_have_count(1)
    # A member's row brings the role and cap forms, whose hidden labels once
    # widened the whole page on phones.
    team = Team.objects.get(memberships__user__email=f"owner-{language}-{width}@example.com")
    add_member(team, f"member-{language}-{width}@example.com")
    page.reload()
    expect(page.locator("[data-members] tbody tr")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") == viewport["width"]
    screenshot(page, f"teams-detail-{width}-{language}")
    expect(page.locator("html")).to_have_attribute("lang", "en" if language == "en" else "zh-hans")
    if language == "zh":
        expect(page.locator("#members-heading")).to_have_text("成员")
    link = page.locator("[data-invite-link]").input_value()

    visitor = new_page(browser, web_server, locale, viewport)
    visitor.goto(link)
    screenshot(visitor, f"teams-invite-{width}-{language}")
    page.goto("/chat/")
    expect(page.locator("[data-team-select]")).to_be_visible()
    screenshot(page, f"teams-chat-{width}-{language}")

    # A team member's conversation header keeps its title and tools inside the screen.
    send(page, "Header check\n[sim rate=0 reasoning=5 answer=5]")
    wait_for_reply(page)
    # The team part of the share dialog comes with the conversation's own page.
    page.reload()
    expect(page.locator("[data-share-open]")).to_be_visible()
    header = page.locator(".chat-header").bounding_box()
    viewport_width = page.viewport_size["width"]
    for control in ["[data-share-open]", "[data-shortcuts-open]", "[data-chat-title]"]:
        box = page.locator(control).bounding_box()
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= viewport_width
    assert header["width"] <= viewport_width
    page.click("[data-share-open]")
    expect(page.locator("[data-team-share]")).to_be_visible()
    screenshot(page, f"teams-share-dialog-{width}-{language}")
    assert page.js_errors == []
