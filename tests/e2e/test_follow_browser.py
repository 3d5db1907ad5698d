"""The message list follows a streaming reply, also after the page is reloaded mid-reply.

A long, slow reply from the simulator grows below the fold. The list must keep its end in
view until the reader scrolls up, and then stay where the reader put it.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_chat_browser import last_reply, new_page, screenshot, send, sign_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

# Long enough at 40 tokens a second to reload mid-answer and watch the answer grow.
LONG_SLOW_REPLY = "Explain sorting at length.\n[sim rate=40 reasoning=10 answer=1000]"

# Pixels between the bottom of the visible part of the list and the end of its content.
GAP_SCRIPT = """() => {
  const list = document.querySelector("[data-messages]");
  return list.scrollHeight - list.scrollTop - list.clientHeight;
}"""


def list_metrics(page):
    return page.evaluate(
        """() => {
          const list = document.querySelector("[data-messages]");
          return { top: list.scrollTop, height: list.scrollHeight, view: list.clientHeight };
        }"""
    )


def wait_for_growth(page, pixels):
    """Wait until the list's content has grown by `pixels` from now."""
    start = list_metrics(page)["height"]
    page.wait_for_function(
        "(target) => document.querySelector('[data-messages]').scrollHeight > target",
        arg=start + pixels,
        timeout=20_000,
    )


def largest_gap_while_growing(page, samples=8):
    """Return the largest gap to the end seen in `samples` checks while the reply grows."""
    gaps = []
    for _ in range(samples):
        wait_for_growth(page, 40)
        gaps.append(page.evaluate(GAP_SCRIPT))
    return max(gaps)


def test_list_follows_reply_after_reload(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "follower@example.com")
    send(page, LONG_SLOW_REPLY)
    reply = last_reply(page)
    # Before the reload the list follows the reply as it grows past the fold.
    expect(reply.locator(".answer")).not_to_be_empty(timeout=20_000)
    wait_for_growth(page, 700)
    assert largest_gap_while_growing(page, samples=3) < 80

    page.reload()
    reply = last_reply(page)
    expect(reply).to_have_class(re.compile(r"in-flight"))
    expect(reply.locator(".answer")).not_to_be_empty()
    metrics = list_metrics(page)
    assert metrics["height"] > metrics["view"] * 1.5, metrics
    assert largest_gap_while_growing(page) < 80
    screenshot(page, "follow-after-reload")

    # Scrolling up stops the following: the reader's place stays put while text arrives.
    page.hover("[data-messages]")
    page.mouse.wheel(0, -600)
    page.wait_for_function(f"() => ({GAP_SCRIPT})() > 300")
    top = list_metrics(page)["top"]
    wait_for_growth(page, 200)
    assert list_metrics(page)["top"] == top
    assert page.evaluate(GAP_SCRIPT) > 300

    # Scrolling back to the end turns the following on again.
    page.mouse.wheel(0, 100_000)
    page.wait_for_function(f"() => ({GAP_SCRIPT})() < 80")
    assert largest_gap_while_growing(page, samples=3) < 80
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    assert page.js_errors == []
