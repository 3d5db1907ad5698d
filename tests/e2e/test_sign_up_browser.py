"""Sign-up by emailed link and password reset in a real browser, in English and Chinese.

The web process writes mail to files (chatsite.test_settings), where the
test reads the links as a person would read their inbox. Screenshots go to
test-artifacts/screenshots/.
"""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.e2e.test_chat_browser import DESKTOP, PASSWORD, PHONE, new_page, screenshot
from tests.mailbox import RESET_LINK, file_link, newest_file_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

TEXT = {
    "en": {
        "inbox": "Check your inbox",
        "choose": "Choose a password",
        "exists": "already has an account",
        "subject": "Finish signing up",
    },
    "zh": {
        "inbox": "请查看收件箱",
        "choose": "设置密码",
        "exists": "已有账户",
        "subject": "完成 chatsite 注册",
    },
}


def fits_viewport(page, selector):
    box = page.locator(selector).bounding_box()
    return box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
@pytest.mark.parametrize(("viewport", "width"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_sign_up_by_link_flow(browser, web_server, locale, viewport, width):
    language = locale[:2]
    text = TEXT[language]
    email = f"newcomer-{language}-{width}@example.com"
    page = new_page(browser, web_server, locale, viewport)

    page.goto("/accounts/sign-up/")
    expect(page.locator("input[name=password1]")).to_have_count(0)
    screenshot(page, f"sign-up-{width}-{language}")
    page.fill("input[name=email]", email)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(text["inbox"])
    assert fits_viewport(page, "[data-check-inbox] .button")
    screenshot(page, f"sign-up-sent-{width}-{language}")

    message = newest_file_message(email)
    assert text["subject"] in message["Subject"]
    page.goto(file_link(email))
    expect(page.locator("h1")).to_have_text(text["choose"])
    expect(page.locator("[data-sign-up-email]")).to_have_text(email)
    assert fits_viewport(page, "button[type=submit]")
    screenshot(page, f"sign-up-choose-password-{width}-{language}")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    assert User.objects.get(email=email).is_guest is False
    assert page.js_errors == []

    # The same link again, now that the address has an account: a 409 page,
    # which chromium also reports as a console error.
    page.goto(file_link(email))
    expect(page.locator("[role=alert]")).to_contain_text(text["exists"])
    screenshot(page, f"sign-up-account-exists-{width}-{language}")


def test_existing_address_gets_note_and_resets(browser, web_server):
    page = new_page(browser, web_server)
    User.objects.create_user("known@example.com", PASSWORD)

    page.goto("/accounts/sign-up/")
    page.fill("input[name=email]", "known@example.com")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    note = newest_file_message("known@example.com").get_body(("plain",)).get_content()
    assert "already has an account" in note
    assert "/accounts/sign-up/confirm/" not in note

    page.goto("/accounts/sign-in/")
    page.click("text=Forgot your password?")
    page.fill("input[name=email]", "known@example.com")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Check your inbox")
    screenshot(page, "password-reset-sent-en")
    page.goto(file_link("known@example.com", RESET_LINK))
    page.fill("input[name=new_password1]", "a-brand-new-pass-phrase-3")
    page.fill("input[name=new_password2]", "a-brand-new-pass-phrase-3")
    screenshot(page, "password-reset-choose-en")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Password changed")

    page.get_by_role("link", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/accounts/sign-in/$"))
    page.fill("input[name=username]", "known@example.com")
    page.fill("input[name=password]", "a-brand-new-pass-phrase-3")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/chat/$"))
    assert page.js_errors == []
