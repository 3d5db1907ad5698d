"""Accessibility of the chat page: names, keyboard reach, visible focus, live regions."""

import re

import pytest
from playwright.sync_api import expect

from chat.models import Message
from tests.e2e.test_chat_browser import last_reply, new_page, send, sign_up
from tests.e2e.test_experience_browser import store_exchange, user_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

INTERACTIVE_ROLES = {
    "button",
    "link",
    "textbox",
    "searchbox",
    "combobox",
    "checkbox",
    "radio",
    "menuitem",
    "listbox",
    "switch",
    "slider",
    "spinbutton",
    "tab",
    "DisclosureTriangle",
}

# Marks every element a keyboard user should reach, and records what Tab reaches.
MARK_FOCUSABLE = """() => {
  const selector = "a[href], button, input, select, textarea, summary";
  const shown = (element) => {
    const closed = "[hidden], dialog:not([open]), details:not([open]) > :not(summary)";
    if (element.disabled || element.closest(closed)) return false;
    const style = getComputedStyle(element);
    return element.getClientRects().length > 0 && style.visibility !== "hidden";
  };
  const expected = [];
  document.querySelectorAll(selector).forEach((element, index) => {
    element.dataset.a11yIndex = String(index);
    if (shown(element)) expected.push(index);
  });
  window.__reached = [];
  window.__unfocusedLook = [];
  document.addEventListener("focusin", (event) => {
    const element = event.target;
    if (element.dataset.a11yIndex === undefined) return;
    window.__reached.push(Number(element.dataset.a11yIndex));
    const style = getComputedStyle(element);
    const outlined = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
    // The composer's textarea shows focus on the composer's border instead.
    const composer = element.closest("[data-composer]");
    const framed = composer && element.tagName === "TEXTAREA" &&
      getComputedStyle(composer).borderTopColor !== getComputedStyle(document.body).color &&
      composer.matches(":focus-within");
    if (!outlined && !framed) window.__unfocusedLook.push(element.outerHTML.slice(0, 120));
  });
  return expected;
}"""


def stored_chat(page, email):
    sign_up(page, email)
    conversation = store_exchange(user_of(email), "Area of a circle?", "It is $\\pi r^2$.")
    question = conversation.messages.get(role="user")
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status="complete",
        content="```python\nprint('area')\n```",
        reasoning="Second thought.",
    )
    store_exchange(user_of(email), "Other question", "Other answer", title="Other")
    page.goto(f"/chat/{conversation.id}/")
    expect(page.locator("[data-connection-state]")).to_be_empty()
    expect(last_reply(page).locator(".version-position")).to_have_text("2 / 2")
    return conversation


def unnamed_controls(page):
    session = page.context.new_cdp_session(page)
    tree = session.send("Accessibility.getFullAXTree")["nodes"]
    missing = []
    for node in tree:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in INTERACTIVE_ROLES:
            continue
        name = (node.get("name", {}).get("value") or "").strip()
        if not name:
            missing.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    session.detach()
    return missing


def named_controls(page):
    session = page.context.new_cdp_session(page)
    tree = session.send("Accessibility.getFullAXTree")["nodes"]
    session.detach()
    return [
        node
        for node in tree
        if not node.get("ignored") and node.get("role", {}).get("value") in INTERACTIVE_ROLES
    ]


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_control_has_name(browser, web_server, locale):
    page = new_page(browser, web_server, locale=locale)
    stored_chat(page, f"names-{locale[:2]}@example.com")

    assert len(named_controls(page)) > 20
    assert unnamed_controls(page) == []
    # Controls that appear later: the conversation menu, the export menu and the dialogs.
    page.locator(".conversation-more").first.click()
    assert unnamed_controls(page) == []
    page.keyboard.press("Escape")
    page.locator("[data-export-menu] summary").click()
    assert unnamed_controls(page) == []
    page.locator("[data-export-menu] summary").click()
    page.locator("[data-share-open]").click()
    assert unnamed_controls(page) == []
    page.keyboard.press("Escape")
    page.locator("[data-shortcuts-open]").click()
    assert unnamed_controls(page) == []
    page.keyboard.press("Escape")
    page.locator("article.message.user .message-actions > .action-button").last.click()
    expect(page.locator(".edit-form textarea")).to_be_focused()
    assert unnamed_controls(page) == []
    assert page.js_errors == []


def names_and_labels(page, selector):
    """Return (accessible name, visible text) of each shown element matching `selector`."""
    texts = page.locator(selector).evaluate_all(
        "(nodes) => nodes.map((node) => node.innerText.trim())"
    )
    session = page.context.new_cdp_session(page)
    root = session.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node_ids = session.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})
    pairs = []
    for node_id, text in zip(node_ids["nodeIds"], texts, strict=True):
        backend_id = session.send("DOM.describeNode", {"nodeId": node_id})["node"]["backendNodeId"]
        tree = session.send(
            "Accessibility.getPartialAXTree", {"nodeId": node_id, "fetchRelatives": False}
        )
        node = next(node for node in tree["nodes"] if node.get("backendDOMNodeId") == backend_id)
        if not node.get("ignored"):
            pairs.append((node.get("name", {}).get("value", ""), text))
    session.detach()
    return pairs


@pytest.mark.parametrize(("locale", "regenerate"), [("en-US", "Regenerate"), ("zh-CN", "重新生成")])
def test_button_names_start_with_label(browser, web_server, locale, regenerate):
    """Speech input users say what they see (WCAG 2.5.3, label in name)."""
    page = new_page(browser, web_server, locale=locale)
    stored_chat(page, f"label-in-name-{locale[:2]}@example.com")

    pairs = names_and_labels(page, "button, summary")
    # Buttons that show only a symbol (‹ › ⋯ × ?) carry their name in aria-label.
    worded = [(name, text) for name, text in pairs if re.search(r"\w", text)]
    assert len(worded) > 8
    assert (regenerate, regenerate) in worded
    mismatched = [(name, text) for name, text in worded if not name.startswith(text)]
    assert mismatched == []
    assert page.js_errors == []


@pytest.mark.parametrize("path", ["/chat/preferences/", "/chat/import/"])
def test_form_pages_controls_named(browser, web_server, path):
    page = new_page(browser, web_server)
    sign_up(page, f"forms{path.count('p')}@example.com")
    page.goto(path)

    assert unnamed_controls(page) == []


def test_keyboard_reaches_everything_visibly(browser, web_server):
    page = new_page(browser, web_server)
    stored_chat(page, "keyboard@example.com")
    expected = page.evaluate(MARK_FOCUSABLE)
    assert len(expected) > 15

    page.locator("body").focus()
    page.evaluate("document.activeElement.blur()")
    for _ in range(len(expected) + 20):
        page.keyboard.press("Tab")
    reached = set(page.evaluate("window.__reached"))

    missed = [
        page.locator(f"[data-a11y-index='{index}']").evaluate("(e) => e.outerHTML.slice(0, 120)")
        for index in expected
        if index not in reached
    ]
    assert missed == []
    assert page.evaluate("window.__unfocusedLook") == []
    assert page.js_errors == []


def test_reply_announced_once_when_done(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "announce@example.com")
    page.evaluate(
        """() => {
          window.__announced = [];
          const region = document.querySelector("[data-announcer]");
          new MutationObserver(() => {
            if (region.textContent) window.__announced.push(region.textContent);
          }).observe(region, { childList: true, characterData: true, subtree: true });
        }"""
    )

    send(page, "Stream many deltas.\n[sim rate=40 reasoning=40 answer=120]")
    reply = last_reply(page)
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    page.wait_for_timeout(300)

    assert page.evaluate("window.__announced") == ["The answer is complete."]
    # The answer itself is in no live region, so its tokens are never read one by one.
    live_ancestors = reply.locator(".answer").evaluate(
        """(element) => {
          const found = [];
          for (let node = element; node; node = node.parentElement) {
            const live = node.getAttribute("aria-live");
            const role = node.getAttribute("role");
            if ((live && live !== "off") || ["status", "log", "alert"].includes(role)) {
              found.push(node.tagName);
            }
          }
          return found;
        }"""
    )
    assert live_ancestors == []
    assert page.locator("[data-announcer]").get_attribute("aria-live") == "polite"

    # A stopped reply is announced with its state.
    send(page, "Stop me.\n[sim rate=15 reasoning=600]")
    expect(page.locator("[data-stop]")).to_be_visible()
    expect(last_reply(page).locator(".reasoning-body")).not_to_be_empty()
    page.click("[data-stop]")
    expect(page.locator("[data-announcer]")).to_have_text("Stopped.", timeout=5_000)
    assert page.js_errors == []
