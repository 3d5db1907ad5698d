"""A reply that ended interrupted offers Retry, which asks the same question again."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from chat.models import Message
from tests.e2e.test_chat_browser import PHONE, last_reply, new_page, screenshot, sign_up
from tests.factories import make_conversation, make_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

QUESTION = "[sim rate=0]\nWhy is the sky blue?"


def interrupted_exchange(email):
    conversation = make_conversation(User.objects.get(email=email), title="Why is the sky blue?")
    make_message(conversation, "user", QUESTION)
    make_message(
        conversation,
        "assistant",
        "Light from the sun",
        status=Message.Status.INTERRUPTED,
        error_code="interrupted",
        error_detail="The worker writing this reply was lost.",
        finished_at=timezone.now(),
    )
    return conversation


@pytest.mark.parametrize(
    ("locale", "label", "viewport"),
    [("en-US", "Retry", None), ("zh-CN", "重试", PHONE)],
)
def test_retry_after_interrupted_reply(browser, web_server, locale, label, viewport):
    email = f"retry-{locale.lower()}@example.com"
    options = {"viewport": viewport} if viewport else {}
    page = new_page(browser, web_server, locale=locale, **options)
    sign_up(page, email)
    conversation = interrupted_exchange(email)

    page.goto(f"/chat/{conversation.id}/")
    button = last_reply(page).get_by_role("button", name=label)
    expect(button).to_be_visible()
    expect(last_reply(page)).to_contain_text("Light from the sun")  # the partial text stays
    screenshot(page, f"retry-{locale}")
    page.fill("[data-composer-input]", "a draft I am still writing")

    button.click()

    expect(page.locator("article.message.user")).to_have_count(2)
    expect(page.locator("article.message.user").last).to_contain_text("Why is the sky blue?")
    expect(last_reply(page).locator(".answer")).not_to_be_empty()
    expect(page.locator("[data-stop]")).to_be_hidden()  # the new reply ended
    expect(last_reply(page).locator(".message-status")).to_be_hidden()
    # The old reply's button is gone, and the draft in the composer is untouched.
    expect(page.locator("[data-retry]:visible")).to_have_count(0)
    expect(page.locator("[data-composer-input]")).to_have_value("a draft I am still writing")
    replies = Message.objects.filter(conversation=conversation, role="assistant")
    assert [reply.status for reply in replies.order_by("created_at")] == [
        Message.Status.INTERRUPTED,
        Message.Status.COMPLETE,
    ]
    assert page.js_errors == []
