"""The first user journey in a real browser, on the real stack.

Headless Debian chromium (through Playwright) signs up, sends messages and
watches replies stream from the simulator through uvicorn, Channels, Redis,
a Celery worker and PostgreSQL. Screenshots go to test-artifacts/screenshots/.
"""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from chat.models import Message
from tests.mailbox import file_link
from tests.stack import wait_for_web

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "a-long-test-passphrase-42"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def new_page(browser, base_url, locale="en-US", viewport=DESKTOP, timezone_id=None):
    context = browser.new_context(
        base_url=base_url, locale=locale, viewport=viewport, timezone_id=timezone_id
    )
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.js_errors = errors
    return page


def sign_up(page, email):
    """Sign up as a person does: ask for the link, open it from the mail, choose a password."""
    page.goto("/accounts/sign-up/")
    page.fill("input[name=email]", email)
    page.click("button[type=submit]")
    expect(page.locator("[data-check-inbox]")).to_be_visible()
    page.goto(file_link(email))
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/chat/$"))


def send(page, text):
    # The composer works once the page script runs and the socket is open.
    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.fill("[data-composer-input]", text)
    page.keyboard.press("Enter")


def last_reply(page):
    return page.locator("article.message.assistant").last


def screenshot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def rendered_text(page, markdown):
    """Return the text the page's own renderer makes of `markdown`."""
    return page.evaluate(
        """async (source) => {
            const { renderMarkdown } = await import("/static/js/markdown.js");
            const element = document.createElement("div");
            element.innerHTML = renderMarkdown(source);
            return element.textContent;
        }""",
        markdown,
    )


def test_sign_up_send_and_watch_stream(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "reader@example.com")
    expect(page.locator(".simulator-notice")).to_be_visible()

    send(page, "How does binary search work?\n[sim rate=40 reasoning=80 answer=120]")
    reply = last_reply(page)
    reasoning = reply.locator(".reasoning-body")
    answer = reply.locator(".answer")

    # Reasoning streams first, in its own open panel, before any answer text.
    expect(reasoning).not_to_be_empty()
    assert answer.inner_text() == ""
    expect(reply.locator("details.reasoning")).to_have_attribute("open", "")
    expect(reply.locator("summary")).to_contain_text("Thinking for")
    expect(page.locator("[data-stop]")).to_be_visible()
    screenshot(page, "desktop-en-reasoning")

    # Then the answer, rendered as Markdown, and the panel collapses.
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    expect(answer.locator("table")).to_have_count(1)
    expect(answer.locator(".code-block pre code")).not_to_have_count(0)
    expect(reply.locator("details.reasoning")).not_to_have_attribute("open", "")
    expect(reply.locator("summary")).to_contain_text("Thought for")
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    expect(page.locator("[data-conversation-list] a[aria-current=page]")).to_have_text(
        "How does binary search work?"
    )
    screenshot(page, "desktop-en-answer")

    stored = Message.objects.get(role="assistant", conversation__owner__email="reader@example.com")
    assert stored.status == Message.Status.COMPLETE
    assert reasoning.text_content() == stored.reasoning
    assert answer.text_content() == rendered_text(page, stored.content)
    assert page.js_errors == []


def test_stop_long_reply(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "stopper@example.com")

    send(page, "Think about this for a long time.\n[sim rate=15 reasoning=600]")
    reply = last_reply(page)
    expect(reply.locator(".reasoning-body")).not_to_be_empty()
    page.click("[data-stop]")

    expect(reply.locator(".message-status")).to_have_text("Stopped.", timeout=5_000)
    expect(page.locator("[data-send]")).to_be_visible()
    stored = Message.objects.get(role="assistant", conversation__owner__email="stopper@example.com")
    assert stored.status == Message.Status.STOPPED
    assert stored.reasoning
    assert reply.locator(".reasoning-body").text_content() == stored.reasoning
    assert page.js_errors == []


def test_reload_mid_reply_loses_nothing(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "reloader@example.com")

    send(page, "Tell me about hash tables.\n[sim rate=30 reasoning=90 answer=90]")
    reply = last_reply(page)
    expect(reply.locator(".reasoning-body")).not_to_be_empty()
    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))

    page.reload()
    reply = last_reply(page)
    # After the reload the reply is still streaming, from the snapshot onwards.
    expect(reply).to_have_class(re.compile(r"in-flight"))
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)

    stored = Message.objects.get(
        role="assistant", conversation__owner__email="reloader@example.com"
    )
    assert stored.status == Message.Status.COMPLETE
    assert reply.locator(".reasoning-body").text_content() == stored.reasoning
    assert reply.locator(".answer").text_content() == rendered_text(page, stored.content)
    assert page.js_errors == []


def test_rejected_send_keeps_text(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "keeper@example.com")
    long_text = "x" * 20_001

    expect(page.locator("[data-connection-state]")).to_be_empty()
    page.fill("[data-composer-input]", long_text)
    page.keyboard.press("Enter")

    expect(page.locator("[data-composer-error]")).to_contain_text("the limit is 20000")
    assert page.input_value("[data-composer-input]") == long_text
    assert Message.objects.filter(conversation__owner__email="keeper@example.com").count() == 0


@pytest.mark.parametrize(
    ("locale", "viewport", "name"),
    [
        ("en-US", PHONE, "phone-en"),
        ("zh-CN", DESKTOP, "desktop-zh"),
        ("zh-CN", PHONE, "phone-zh"),
    ],
)
def test_chat_screens_by_language_and_width(browser, web_server, locale, viewport, name):
    page = new_page(browser, web_server, locale=locale, viewport=viewport)
    sign_up(page, f"{name}@example.com")
    prompt = "二分查找是怎么工作的？" if locale.startswith("zh") else "How does binary search work?"
    send(page, f"{prompt}\n[sim rate=0]")
    reply = last_reply(page)
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    expect(reply.locator(".answer table")).to_have_count(1)

    # Nothing is wider than the screen: code and tables scroll inside themselves.
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    if locale.startswith("zh"):
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        expect(page.locator("[data-send]")).to_have_text("发送")
    screenshot(page, name)
    assert page.js_errors == []


def test_web_restart_mid_reply_resumes(browser, web_process):
    page = new_page(browser, web_process.base_url)
    sign_up(page, "survivor@example.com")

    send(page, "Explain the CAP theorem.\n[sim rate=25 reasoning=80 answer=80]")
    reply = last_reply(page)
    expect(reply.locator(".reasoning-body")).not_to_be_empty()

    # The web server dies mid-reply; the worker goes on streaming into Redis.
    web_process.kill()
    expect(page.locator("[data-connection-state]")).to_have_text("Connection lost. Reconnecting…")
    web_process.start()
    wait_for_web(web_process)

    expect(page.locator("[data-connection-state]")).to_be_empty(timeout=15_000)
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    stored = Message.objects.get(
        role="assistant", conversation__owner__email="survivor@example.com"
    )
    assert stored.status == Message.Status.COMPLETE
    assert reply.locator(".reasoning-body").text_content() == stored.reasoning
    assert reply.locator(".answer").text_content() == rendered_text(page, stored.content)
