"""The chat page's rendering and versions in a real browser on the real stack.

Stored conversations are written with the ORM and opened in headless
chromium under the site's strict Content-Security-Policy; live replies come
from the simulator through the worker. Screenshots go to
test-artifacts/screenshots/.
"""

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from accounts.models import User
from chat.models import Conversation, Message, Preferences
from tests.e2e.test_chat_browser import (
    DESKTOP,
    PHONE,
    last_reply,
    new_page,
    screenshot,
    send,
    sign_up,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e, pytest.mark.browser]

# Records what must never happen: a script from content running, a dialog opening, or
# the page's CSP refusing something the page itself needs.
WATCH_SCRIPT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""

MATH_ANSWER = r"""Inline dollars $a^2 + b^2 = c^2$, inline parentheses \(\alpha + \beta\), and
display inside a line $$\sum_{k=1}^{n} k = \frac{n(n+1)}{2}$$ here.

$$
\int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}
$$

\[
\begin{pmatrix} 1 & 0 \\ 0 & 1 \end{pmatrix} \sqrt{x^2 + 1}
\]

It costs $5, not $10.
"""

XSS_CORPUS = [
    "<script>window.__xss = 1</script>",
    '<img src="x" onerror="window.__xss = 1">',
    '<svg onload="window.__xss = 1"></svg>',
    "<svg><script>window.__xss = 1</script></svg>",
    '<iframe src="javascript:window.__xss = 1"></iframe>',
    "<details open ontoggle=window.__xss=1>x</details>",
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "[click](javascript:window.__xss=1)",
    "[click](JAVASCRIPT:window.__xss=1)",
    "<a href='javascript:window.__xss=1'>raw</a>",
    '![pic](x "a\\" onerror=\\"window.__xss=1")',
    "```html\n<img src=x onerror=window.__xss=1>\n```",
    "<p style='background:url(javascript:window.__xss=1)'>styled",
    "<<script>script>window.__xss=1<</script>/script>",
    "<img src=x onerror=window.__xss=1//",
    "$\\href{javascript:window.__xss=1}{x}$",
    "\\(\\text{<img src=x onerror=window.__xss=1>}\\)",
]


def user_of(email):
    return User.objects.get(email=email)


def store_exchange(owner, question, answer, title="Stored", reasoning="Some reasoning."):
    conversation = Conversation.objects.create(owner=owner, title=title)
    asked = Message.objects.create(
        conversation=conversation, role="user", status="complete", content=question
    )
    Message.objects.create(
        conversation=conversation,
        parent=asked,
        role="assistant",
        status="complete",
        content=answer,
        reasoning=reasoning,
    )
    return conversation


def watched_page(browser, base_url, **options):
    page = new_page(browser, base_url, **options)
    page.add_init_script(WATCH_SCRIPT)
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def upstream_bodies(simulator, marker):
    entries = httpx.get(f"{simulator}/_sim/requests").json()
    bodies = [entry["body"] for entry in entries if isinstance(entry["body"], dict)]
    return [body for body in bodies if marker in body["messages"][-1]["content"]]


@pytest.mark.parametrize(
    ("scheme", "locale", "viewport", "name"),
    [
        ("light", "en-US", DESKTOP, "math-desktop-en-light"),
        ("dark", "zh-CN", PHONE, "math-phone-zh-dark"),
    ],
)
def test_math_every_delimiter_under_csp(browser, web_server, scheme, locale, viewport, name):
    page = watched_page(browser, web_server, locale=locale, viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    sign_up(page, f"{name}@example.com")
    conversation = store_exchange(user_of(f"{name}@example.com"), "Show me math", MATH_ANSWER)

    page.goto(f"/chat/{conversation.id}/")
    answer = last_reply(page).locator(".answer")

    expect(answer.locator(".math")).to_have_count(5)
    labels = answer.locator(".math").evaluate_all(
        "(nodes) => nodes.map((node) => node.getAttribute('aria-label'))"
    )
    assert labels[:2] == ["a^2 + b^2 = c^2", "\\alpha + \\beta"]
    assert answer.locator(".math-display").count() == 3
    assert answer.locator(".katex-error").count() == 0
    assert "It costs $5, not $10." in answer.inner_text()
    # KaTeX's layout reached the elements through the CSSOM, under style-src 'self'.
    heights = answer.locator(".vlist").evaluate_all(
        "(nodes) => nodes.map((node) => node.style.height)"
    )
    assert heights
    assert all(heights)
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    assert page.evaluate("window.__cspViolations") == []
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(page, name)
    assert page.js_errors == []


def test_xss_corpus_never_runs(browser, web_server):
    page = watched_page(browser, web_server)
    sign_up(page, "xss@example.com")
    owner = user_of("xss@example.com")
    corpus = "\n\n".join(XSS_CORPUS)
    title = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'
    conversation = store_exchange(owner, corpus, corpus, title=title, reasoning=corpus)

    page.goto(f"/chat/{conversation.id}/")
    reply = last_reply(page)
    expect(reply.locator(".answer")).not_to_be_empty()
    reply.locator("summary").click()
    page.wait_for_timeout(500)

    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []
    assert page.locator("[data-messages] script, [data-messages] iframe").count() == 0
    assert page.locator("[data-messages] img, [data-messages] [onerror]").count() == 0
    assert page.locator("[data-messages] a[href^='javascript' i]").count() == 0
    # The user's text and the title are shown as typed.
    assert page.locator("article.message.user .user-text").inner_text() == corpus
    assert page.locator("[data-chat-title]").inner_text() == title
    expect(page.locator(f"[data-conversation-id='{conversation.id}']")).to_contain_text(
        "<img src=x"
    )
    assert reply.locator(".reasoning-body").inner_text() == corpus
    assert page.js_errors == []

    # A question typed now goes through the live path: the socket and the stream renderer.
    send(page, "<img src=x onerror=window.__xss=1> $\\href{javascript:alert(1)}{x}$\n[sim rate=0]")
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.dialogs == []


def test_regenerate_and_edit_follow_branch(browser, web_server, simulator):
    page = new_page(browser, web_server)
    sign_up(page, "brancher@example.com")
    marker = str(int(time.time() * 1000))

    send(page, f"First {marker}\n[sim rate=0 reasoning=3 answer=20]")
    first = last_reply(page)
    expect(first).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    first_answer = first.locator(".answer").inner_text()

    first.get_by_role("button", name="Regenerate", exact=True).click()
    expect(page.locator("article.message.assistant")).to_have_count(1)
    second = last_reply(page)
    expect(second.locator(".version-position")).to_have_text("2 / 2")
    expect(second).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    regenerated = Message.objects.filter(
        role="assistant", conversation__owner__email="brancher@example.com"
    ).order_by("created_at")
    assert regenerated.count() == 2
    [body] = upstream_bodies(simulator, f"First {marker}")[-1:]
    assert [m["role"] for m in body["messages"]] == ["user"]
    screenshot(page, "versions-desktop-en")

    # Back to version 1, then a follow-up there: the history is version 1's answer.
    second.get_by_role("button", name="Previous version").click()
    expect(last_reply(page).locator(".version-position")).to_have_text("1 / 2")
    assert last_reply(page).locator(".answer").inner_text() == first_answer
    send(page, f"Follow {marker}\n[sim rate=0 reasoning=3 answer=10]")
    expect(page.locator("article.message.assistant")).to_have_count(2)
    expect(page.locator("[data-composer-error]")).to_be_hidden()
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    [body] = upstream_bodies(simulator, f"Follow {marker}")
    stored_first = regenerated.first()
    assert [(m["role"], m["content"]) for m in body["messages"]][:2] == [
        ("user", f"First {marker}\n[sim rate=0 reasoning=3 answer=20]"),
        ("assistant", stored_first.content),
    ]

    # Edit the follow-up: a second version of the question, and its own reply.
    question = page.locator("article.message.user").last
    question.get_by_role("button", name="Edit", exact=True).click()
    editor = question.locator(".edit-form textarea")
    editor.fill(f"Follow edited {marker}\n[sim rate=0 reasoning=3 answer=10]")
    question.get_by_role("button", name="Save and send").click()
    edited = page.locator("article.message.user").last
    expect(edited.locator(".version-position")).to_have_text("2 / 2")
    expect(last_reply(page)).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)
    [body] = upstream_bodies(simulator, f"Follow edited {marker}")
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == stored_first.content
    assert f"Follow {marker}" not in str(body)
    screenshot(page, "versions-edited-desktop-en")
    assert page.js_errors == []


def test_reload_mid_reasoning_keeps_timer(browser, web_server):
    page = new_page(browser, web_server)
    sign_up(page, "timer@example.com")

    send(page, "Think slowly.\n[sim rate=8 reasoning=60 answer=15]")
    reply = last_reply(page)
    expect(reply.locator("summary")).to_contain_text("Thinking for")
    page.wait_for_timeout(3500)
    page.reload()

    reply = last_reply(page)
    summary = reply.locator("summary")
    expect(summary).to_contain_text("Thinking for")
    seconds = int(re.search(r"(\d+)", summary.inner_text()).group(1))
    # The timer counts from the first reasoning token on the server, not from the reload.
    assert seconds >= 3
    screenshot(page, "reasoning-after-reload-desktop-en")

    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=40_000)
    stored = Message.objects.get(role="assistant", conversation__owner__email="timer@example.com")
    expect(summary).to_have_text(f"Thought for {stored.thinking_seconds()} s")
    expect(reply.locator("details.reasoning")).not_to_have_attribute("open", "")
    assert page.js_errors == []


def test_reasoning_expanded_preference_and_copy(browser, web_server):
    page = new_page(browser, web_server)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=web_server)
    sign_up(page, "opener@example.com")
    Preferences.objects.create(user=user_of("opener@example.com"), reasoning_panel="expanded")
    page.reload()

    send(page, "Keep it open.\n[sim rate=0 reasoning=10 answer=10]")
    reply = last_reply(page)
    expect(reply).not_to_have_class(re.compile(r"in-flight"), timeout=30_000)

    expect(reply.locator("summary")).to_contain_text("Thought for")
    expect(reply.locator("details.reasoning")).to_have_attribute("open", "")
    reply.get_by_role("button", name="Copy reasoning").click()
    expect(reply.get_by_role("button", name="Copied")).to_be_visible()
    stored = Message.objects.get(role="assistant", conversation__owner__email="opener@example.com")
    assert page.evaluate("navigator.clipboard.readText()") == stored.reasoning
    assert page.js_errors == []


SCREEN_ANSWER = (
    MATH_ANSWER
    + """
```python
def area(radius):
    return 3.14159 * radius ** 2  # a long comment that makes this line wider than a phone
```

| n | n² |
|---|----|
| 2 | 4 |
"""
)


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_chat_screens_matrix(browser, web_server, viewport_name, scheme, locale):
    name = f"chat-{viewport_name}-{locale[:2]}-{scheme}"
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    page = watched_page(browser, web_server, locale=locale, viewport=viewport)
    page.emulate_media(color_scheme=scheme)
    sign_up(page, f"{name}@example.com")
    owner = user_of(f"{name}@example.com")
    conversation = store_exchange(owner, "Area of a circle?", SCREEN_ANSWER, title="Circles")
    question = conversation.messages.get(role="user")
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        status="complete",
        content="A second version: $A = \\pi r^2$.",
        reasoning="Shorter.",
    )

    page.goto(f"/chat/{conversation.id}/")
    reply = last_reply(page)
    expect(reply.locator(".version-position")).to_have_text("2 / 2")
    reply.locator(".version-switcher button").first.click()
    expect(last_reply(page).locator(".math")).to_have_count(5)
    last_reply(page).locator("summary").click()

    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    assert page.evaluate("window.__cspViolations") == []
    screenshot(page, name)
    if viewport_name == "phone":
        page.click("[data-sidebar-open]")
        expect(page.locator("#sidebar")).to_have_class(re.compile(r"open"))
        # The drawer slides in; wait until it rests at the left edge.
        page.wait_for_function(
            "() => document.getElementById('sidebar').getBoundingClientRect().left >= 0"
        )
        page.wait_for_timeout(100)
        screenshot(page, f"{name}-drawer")
    assert page.js_errors == []
