"""The daily message counter and the blocked composer, in a real browser on the real stack.

The browser runs in the quota time zone, so the reset time on the page is
the server's. Screenshots go to test-artifacts/screenshots/.
"""

import re

import pytest
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from accounts import quotas
from accounts.models import ModelClass, PlanLimit, QuotaCounter, User
from chat.models import Message
from tests.e2e import test_chat_browser as chat_browser
from tests.e2e.test_chat_browser import (
    DESKTOP,
    PHONE,
    last_reply,
    screenshot,
    send,
    sign_up,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

FREE_DAILY_CAP = 50
QUOTA_LEFT = "%(count)s messages left today, resets at %(time)s"
QUOTA_NONE = "No messages left today; the count resets at %(time)s"
LANGUAGES = {"en-US": "en", "zh-CN": "zh-hans"}


def new_page(browser, base_url, locale="en-US", viewport=DESKTOP):
    """Open a page with the browser's clock in the quota's time zone."""
    return chat_browser.new_page(
        browser, base_url, locale, viewport, timezone_id=settings.QUOTA_TIME_ZONE
    )


def translated(locale, text):
    """Return `text` in the page language of a browser locale. Fail when it has no translation."""
    language = LANGUAGES[locale]
    with translation.override(language):
        result = gettext(text)
    if language != "en":
        assert result != text, f"{text!r} has no {language} translation in django.po"
    return result


def reset_time():
    return quotas.next_reset(timezone.now()).strftime("%H:%M")


def any_time(template, **values):
    """Match `template` filled with `values` and any reset time, however the page writes it."""
    marker = "\x00"
    pattern = re.escape(template % {**values, "time": marker})
    return re.compile("^" + pattern.replace(re.escape(marker), ".+") + "$")


def use_up_quota(email):
    """Use up today's thinking messages of the account with `email`."""
    user = User.objects.get(email=email)
    QuotaCounter.objects.update_or_create(
        subject=quotas.subject_for(user),
        model_class=ModelClass.THINKING,
        day=quotas.quota_day(timezone.now()),
        defaults={"used": FREE_DAILY_CAP},
    )


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_counter_after_sign_up_and_reply(browser, web_server, locale):
    page = new_page(browser, web_server, locale=locale)
    email = f"counter-{locale.lower()}@example.com"
    sign_up(page, email)
    template = translated(locale, QUOTA_LEFT)
    counter = page.locator("[data-quota]")

    expect(counter).to_be_visible()
    expect(counter).to_have_text(any_time(template, count=FREE_DAILY_CAP))

    send(page, "What is a hash map?\n[sim rate=0]")
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)

    expect(counter).to_have_text(any_time(template, count=FREE_DAILY_CAP - 1))
    stored = Message.objects.get(role=Message.Role.ASSISTANT, conversation__owner__email=email)
    assert stored.quota_state == Message.QuotaState.COUNTED
    assert page.js_errors == []
    # The page names the reset as HH:MM, like the server's messages.
    expect(counter).to_have_text(template % {"count": FREE_DAILY_CAP - 1, "time": reset_time()})


@pytest.mark.parametrize(
    ("locale", "viewport", "name"),
    [
        ("en-US", DESKTOP, "quota-blocked-en"),
        ("zh-CN", DESKTOP, "quota-blocked-zh"),
        ("en-US", PHONE, "quota-blocked-phone-en"),
    ],
)
def test_blocked_after_reload(browser, web_server, locale, viewport, name):
    page = new_page(browser, web_server, locale=locale, viewport=viewport)
    email = f"{name}@example.com"
    sign_up(page, email)
    use_up_quota(email)
    page.reload()
    typed = "One more question, please."
    template = translated(locale, QUOTA_NONE)
    counter = page.locator("[data-quota]")

    expect(page.locator("[data-connection-state]")).to_be_empty()
    expect(counter).to_have_text(any_time(template))
    page.fill("[data-composer-input]", typed)
    page.keyboard.press("Enter")
    screenshot(page, name)

    assert page.input_value("[data-composer-input]") == typed
    expect(page.locator("[data-send]")).to_be_disabled()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert Message.objects.filter(conversation__owner__email=email).count() == 0
    assert page.js_errors == []
    expect(counter).to_have_text(template % {"time": reset_time()})
    # Enter on a blocked composer must show why nothing was sent, and until when.
    error = page.locator("[data-composer-error]")
    expect(error).to_be_visible()
    expect(error).to_contain_text(reset_time())


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_blocked_by_server_error(browser, web_server, locale):
    # The page still shows messages left, so only the server's rejection can block it.
    page = new_page(browser, web_server, locale=locale)
    email = f"stale-{locale.lower()}@example.com"
    sign_up(page, email)
    use_up_quota(email)
    typed = "Is anything left?"
    template = translated(locale, QUOTA_NONE)
    # The page names the reset on the reader's clock, like the counter line.
    detail = translated(
        locale,
        "Not sent: today's messages are used up. Your text stays here; send it after %(time)s.",
    ) % {"time": reset_time()}
    counter = page.locator("[data-quota]")

    send(page, typed)

    expect(page.locator("[data-composer-error]")).to_have_text(detail)
    assert page.input_value("[data-composer-input]") == typed
    expect(page.locator("[data-send]")).to_be_disabled()
    expect(counter).to_have_text(any_time(template))
    screenshot(page, f"quota-refused-{LANGUAGES[locale]}")
    assert Message.objects.filter(conversation__owner__email=email).count() == 0
    assert page.js_errors == []
    expect(counter).to_have_text(template % {"time": reset_time()})


def test_plan_input_limit_checked_before_send(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "short-plan@example.com")
    PlanLimit.objects.filter(plan__slug="free", model_class="thinking").update(max_input_chars=100)
    page.reload()
    expect(page.locator("[data-connection-state]")).to_be_empty()
    text = "y" * 150

    page.fill("[data-composer-input]", text)
    page.keyboard.press("Enter")

    expect(page.locator("[data-composer-error]")).to_contain_text("the limit is 100")
    assert page.input_value("[data-composer-input]") == text
    assert not Message.objects.filter(conversation__owner__email="short-plan@example.com").exists()
