"""The chat page shows the messages of forms posted from it, such as sharing with a team.

The team part of the Share dialog posts to teams.views.share, which redirects back to the
chat page and adds an error message (django.contrib.messages) when sharing fails.
"""

import re

import pytest
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from accounts.models import User
from teams.models import Membership, Team
from tests.e2e.test_chat_browser import DESKTOP, PHONE, new_page, screenshot, sign_up
from tests.e2e.test_conversation_list_browser import seed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

# WCAG 2.x relative luminance and contrast ratio of the text against its background.
CONTRAST_SCRIPT = """(element) => {
  const channels = (color) => color.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const luminance = (color) => {
    const [r, g, b] = channels(color).map((value) => {
      const c = value / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const style = getComputedStyle(element);
  const [light, dark] = [luminance(style.color), luminance(style.backgroundColor)].sort(
    (a, b) => b - a,
  );
  return (light + 0.05) / (dark + 0.05);
}"""


def member_with_conversation(page, email):
    """Sign up `email` into a team owned by someone else, with one stored conversation."""
    sign_up(page, email)
    member = User.objects.get(email=email)
    owner = User.objects.create_user(email=f"owner-{email}", password="unused-passphrase-42")
    team = Team.objects.create(name="Research", created_by=owner)
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    Membership.objects.create(team=team, user=member, role=Membership.Role.MEMBER)
    conversation = seed(member, "Quarter plan", 0)
    return team, conversation


def apply_team_share(page, conversation, value):
    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.click("[data-share-open]")
    page.select_option("#share-team", value)
    with page.expect_navigation():
        page.click("[data-team-share-apply]")
    expect(page).to_have_url(re.compile(rf"/chat/{conversation.id}/$"))


def assert_readable(page, flash):
    assert flash.evaluate(CONTRAST_SCRIPT) >= 4.5
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0


@pytest.mark.parametrize(
    ("locale", "language", "viewport", "scheme", "name"),
    [
        ("en-US", "en", DESKTOP, "light", "desktop-en-light"),
        ("zh-CN", "zh-hans", PHONE, "dark", "phone-zh-dark"),
    ],
)
def test_team_share_error_shown(browser, web_server, locale, language, viewport, scheme, name):
    page = new_page(browser, web_server, locale=locale, viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    email = f"share-error-{name}@example.com"
    team, conversation = member_with_conversation(page, email)
    page.goto(f"/chat/{conversation.id}/")
    # The owner removes the member while the page is open in the member's browser.
    Membership.objects.filter(team=team, user__email=email).delete()
    page.click("[data-share-open]")
    page.select_option("#share-team", str(team.pk))
    with page.expect_navigation():
        page.click("[data-team-share-apply]")

    with translation.override(language):
        expected = gettext("You can share only with a team you belong to.")
    flash = page.locator(".flash-messages .flash.error")
    expect(flash).to_have_text(expected)
    expect(flash).to_be_visible()
    assert_readable(page, flash)
    screenshot(page, f"chat-flash-error-{name}")
    conversation.refresh_from_db()
    assert conversation.shared_with_team is None

    # The message is shown once: the next page has no trace of it.
    page.reload()
    expect(page.locator(".flash-messages")).to_have_count(0)
    assert page.js_errors == []


@pytest.mark.parametrize(
    ("viewport", "scheme", "name"),
    [(DESKTOP, "dark", "desktop-dark"), (PHONE, "light", "phone-light")],
)
def test_team_share_success_shown(browser, web_server, viewport, scheme, name):
    page = new_page(browser, web_server, viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    team, conversation = member_with_conversation(page, f"share-done-{name}@example.com")

    apply_team_share(page, conversation, str(team.pk))
    flash = page.locator(".flash-messages .flash.success")
    expect(flash).to_have_count(1)
    expect(flash).to_contain_text(re.compile("shared", re.IGNORECASE))
    assert_readable(page, flash)
    screenshot(page, f"chat-flash-shared-{name}")
    conversation.refresh_from_db()
    assert conversation.shared_with_team == team
    assert page.js_errors == []
