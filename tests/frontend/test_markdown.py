"""Browser tests for static/js/markdown.js, run in Debian's Chromium through Playwright.

A static HTTP server on 127.0.0.1 serves the repository, and tests/frontend/harness.html
loads the module and exposes it as window.markdown.
"""

import random
import re

import pytest

from tests.frontend.harness import CHROMIUM, open_harness

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found. Install Debian's package: apt-get install chromium",
    ),
]

SAFE_URL = re.compile(r"^(?:https?|mailto):", re.IGNORECASE)
ALLOWED_TAGS = {
    "a", "blockquote", "br", "button", "code", "del", "div", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"class", "data-copy", "href", "rel", "start", "target", "title", "type"}
DARK_BACKGROUND = "rgb(13, 17, 23)"
LIGHT_BACKGROUND = "rgb(255, 255, 255)"


RENDER_AND_INSPECT = """
(source) => {
  const output = document.getElementById("output");
  const html = window.markdown.renderMarkdown(source);
  output.innerHTML = html;
  const elements = [...output.querySelectorAll("*")];
  const attributes = elements.flatMap((element) => [...element.attributes]);
  const urlNames = ["href", "src", "action", "formaction", "xlink:href", "srcset", "poster"];
  return {
    html,
    text: output.textContent,
    tags: [...new Set(elements.map((element) => element.localName))],
    attributeNames: [...new Set(attributes.map((attribute) => attribute.name))],
    urls: attributes.filter((a) => urlNames.includes(a.name)).map((a) => a.value),
  };
}
"""


def render(page, source):
    return page.evaluate(RENDER_AND_INSPECT, source)


XSS_PAYLOADS = {
    "script_tag": "<script>window.__xss = 1</script>",
    "script_in_paragraph": "Hello <script>window.__xss = 1</script> world",
    "img_onerror": '<img src="x" onerror="window.__xss = 1">',
    "img_onerror_unquoted": "<img src=x onerror=window.__xss=1>",
    "svg_onload": '<svg onload="window.__xss = 1"></svg>',
    "svg_nested_script": "<svg><script>window.__xss = 1</script></svg>",
    "iframe_javascript": '<iframe src="javascript:window.__xss = 1"></iframe>',
    "iframe_srcdoc": '<iframe srcdoc="<script>parent.__xss = 1</script>"></iframe>',
    "style_attribute": '<p style="background:url(javascript:window.__xss=1)">styled</p>',
    "style_tag": "<style>body { background: url(javascript:window.__xss=1) }</style>",
    "raw_anchor": '<a href="javascript:window.__xss = 1">click</a>',
    "form_action": '<form action="javascript:window.__xss=1"><button>go</button></form>',
    "details_ontoggle": "<details open ontoggle=window.__xss=1>x</details>",
    "object_data": '<object data="javascript:window.__xss=1"></object>',
    "math_mxss": "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "link_javascript": "[click](javascript:window.__xss=1)",
    "link_javascript_upper": "[click](JAVASCRIPT:window.__xss=1)",
    "link_javascript_entity": "[click](&#106;avascript:window.__xss=1)",
    "link_javascript_hex_entity": "[click](jav&#x61;script:window.__xss=1)",
    "link_javascript_tab": "[click](java&#9;script:window.__xss=1)",
    "link_javascript_angle": "[click](<javascript:window.__xss=1>)",
    "link_javascript_escaped_colon": "[click](javascript&#58;window.__xss=1)",
    "link_vbscript": "[click](vbscript:msgbox(1))",
    "link_data_html": "[click](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    "link_attribute_breakout": '[click](https://example.com/" onmouseover="window.__xss=1)',
    "link_title_breakout": '[click](https://example.com "t\\" onmouseover=\\"window.__xss=1")',
    "link_reference_javascript": "[click][evil]\n\n[evil]: javascript:window.__xss=1",
    "autolink_javascript": "<javascript:window.__xss=1>",
    "autolink_data": "<data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==>",
    "bare_javascript": "javascript:window.__xss=1 and javascript://example.com/%0Awindow.__xss=1",
    "image_javascript": "![pic](javascript:window.__xss=1)",
    "image_data_png": "![pic](data:image/png;base64,iVBORw0KGgo=)",
    "image_onerror_title": '![pic](x "a\\" onerror=\\"window.__xss=1")',
    "image_in_link": "[![pic](javascript:window.__xss=1)](javascript:window.__xss=1)",
    "entity_script": "&lt;script&gt;window.__xss = 1&lt;/script&gt;",
    "entity_in_code": "`&lt;img src=x onerror=window.__xss=1&gt;`",
    "inline_code_script": "`<script>window.__xss = 1</script>`",
    "fence_closing_tags": "```\n</code></pre><script>window.__xss = 1</script>\n```",
    "fence_nested": "````\n```\n<img src=x onerror=window.__xss=1>\n```\n````",
    "fence_language_breakout": '```python" onmouseover="window.__xss=1\nprint(1)\n```',
    "fence_language_html": "```<img/src=x/onerror=window.__xss=1>\ncode\n```",
    "fence_html_highlighted": "```html\n<img src=x onerror=window.__xss=1>\n```",
    "fence_unclosed": "```js\n</code><script>window.__xss = 1</script>",
    "table_cell_html": (
        "| a | b |\n|---|---|\n| <img src=x onerror=window.__xss=1> | <script>x</script> |"
    ),
}


@pytest.mark.parametrize("source", XSS_PAYLOADS.values(), ids=XSS_PAYLOADS.keys())
def test_render_xss_payload(page, source):
    result = render(page, source)

    assert set(result["tags"]) <= ALLOWED_TAGS
    assert [name for name in result["attributeNames"] if name.startswith("on")] == []
    assert set(result["attributeNames"]) <= ALLOWED_ATTRIBUTES
    assert [url for url in result["urls"] if not SAFE_URL.match(url)] == []
    assert "<script" not in result["html"].lower()
    assert "<iframe" not in result["html"].lower()
    assert "<style" not in result["html"].lower()

    # Event handlers such as onerror fire asynchronously after insertion.
    page.wait_for_timeout(150)
    assert page.evaluate("window.__xss") is None


def test_xss_detector_sees_unsanitized_html(page):
    page.evaluate(
        """() => {
          document.getElementById("output").innerHTML =
            '<img src="missing.png" onerror="window.__xss = 1">';
        }"""
    )
    page.wait_for_function("window.__xss === 1")
    assert page.evaluate("window.__xss") == 1


def test_render_raw_html_as_text(page):
    result = render(page, "Use <b>bold</b> and <script>alert(1)</script> here.")

    assert result["tags"] == ["p"]
    assert result["text"] == "Use <b>bold</b> and <script>alert(1)</script> here.\n"


SANITIZER_CASES = {
    "style_attribute": ('<p style="color:red">x</p>', "<p>x</p>"),
    "event_handler": ('<p onclick="alert(1)">x</p>', "<p>x</p>"),
    "form": ('<form action="https://example.com"><input name="q"></form>', ""),
    "iframe": ('<iframe src="https://example.com"></iframe>', ""),
    "script": ("<script>alert(1)</script><p>x</p>", "<p>x</p>"),
    "img": ('<img src="https://example.com/a.png" alt="a">', ""),
    "javascript_href": ('<a href="javascript:alert(1)">x</a>', "<a>x</a>"),
    "data_href": ('<a href="data:text/html,x">x</a>', "<a>x</a>"),
    "relative_href": ('<a href="/accounts/logout/">x</a>', "<a>x</a>"),
    "id_attribute": ('<p id="output">x</p>', "<p>x</p>"),
    "other_data_attribute": ('<button type="button" data-x="1" data-copy="">C</button>', None),
    "mailto_href": (
        '<a href="mailto:someone@example.com">mail</a>',
        '<a href="mailto:someone@example.com" target="_blank" '
        'rel="noopener noreferrer nofollow">mail</a>',
    ),
}


@pytest.mark.parametrize(("html", "expected"), SANITIZER_CASES.values(), ids=SANITIZER_CASES.keys())
def test_sanitize_html_case(page, html, expected):
    if expected is None:
        expected = '<button type="button" data-copy="">C</button>'

    assert page.evaluate("(html) => window.markdown.sanitizeHtml(html)", html) == expected


def test_render_python_fence_highlighted(page):
    page.evaluate("window.markdown.setLabels({copy: 'Copy', copied: 'Copied'})")
    render(page, "```python\ndef add(a, b):\n    return a + b\n```")

    block = page.locator("#output > div.code-block")
    assert block.count() == 1
    assert block.locator(".code-head > span.code-lang").inner_text() == "python"
    assert block.locator(".code-head > button.code-copy[data-copy]").inner_text() == "Copy"
    assert block.locator(".code-head > button").get_attribute("type") == "button"
    code = block.locator("pre > code")
    assert code.get_attribute("class") == "hljs language-python"
    assert code.locator("span.hljs-keyword").first.inner_text() == "def"
    assert code.locator("span.hljs-title").first.inner_text() == "add"
    assert code.text_content() == "def add(a, b):\n    return a + b\n"


def test_render_alias_language_highlighted(page):
    render(page, "```sh\necho hi | grep h\n```")

    assert page.locator("code").get_attribute("class") == "hljs language-sh"
    assert page.locator("code span[class^='hljs-']").count() >= 1


def test_render_unknown_language_plain(page):
    result = render(page, "```klingon\n<b>qapla'</b> & more\n```")

    assert page.locator(".code-lang").inner_text() == "klingon"
    assert page.locator("pre > code").get_attribute("class") == "hljs"
    assert page.locator("pre > code *").count() == 0
    assert page.locator("pre > code").text_content() == "<b>qapla'</b> & more\n"
    assert "b" not in result["tags"]


def test_render_fence_without_language(page):
    render(page, "```\nplain text\n```")

    assert page.locator(".code-lang").inner_text() == ""
    assert page.locator("pre > code").get_attribute("class") == "hljs"
    assert page.locator("pre > code").text_content() == "plain text\n"


def test_render_indented_code_wrapped(page):
    render(page, "Intro:\n\n    x = 1\n    y = 2\n")

    assert page.locator(".code-block pre > code").text_content() == "x = 1\ny = 2\n"


def test_render_copy_label_translated(page):
    page.evaluate("window.markdown.setLabels({copy: 'Kopieren <b>', copied: 'Kopiert'})")
    result = render(page, "```\nx\n```")

    assert page.locator("button.code-copy").inner_text() == "Kopieren <b>"
    assert "b" not in result["tags"]


def test_render_table_wrapped(page):
    result = render(page, "| Name | Size |\n|:-----|-----:|\n| a | 1 |\n| b | 22 |\n")

    assert page.locator("#output > div.table-wrap > table").count() == 1
    assert page.locator("table th").first.get_attribute("class") == "align-left"
    assert page.locator("table td").nth(1).get_attribute("class") == "align-right"
    assert "style" not in result["attributeNames"]


def test_render_link_attributes(page):
    render(page, "See [docs](https://example.com/docs) or https://example.org/x.")

    links = page.locator("a")
    assert links.count() == 2
    for index in range(2):
        assert links.nth(index).get_attribute("target") == "_blank"
        assert links.nth(index).get_attribute("rel") == "noopener noreferrer nofollow"
    assert links.nth(0).get_attribute("href") == "https://example.com/docs"
    assert links.nth(1).get_attribute("href") == "https://example.org/x"


def test_render_image_as_link(page):
    result = render(page, '![A cat](https://example.com/cat.png "Cat")')

    assert "img" not in result["tags"]
    link = page.locator("a.image-link")
    assert link.get_attribute("href") == "https://example.com/cat.png"
    assert link.get_attribute("title") == "Cat"
    assert link.inner_text() == "A cat"


def test_render_ordered_list_start(page):
    render(page, "7. seven\n8. eight\n")

    assert page.locator("#output > ol").get_attribute("start") == "7"
    assert page.locator("#output li").count() == 2


def test_render_markdown_blocks(page):
    source = (
        "# Title\n\nSome *em*, **strong**, ~~gone~~ and `code`.\n\n"
        "> quoted\n\n1. one\n2. two\n\n- a\n- b\n\n---\n"
    )
    result = render(page, source)

    assert result["tags"] == [
        "h1", "p", "em", "strong", "s", "code", "blockquote", "ol", "li", "ul", "hr",
    ]  # fmt: skip


STREAM_TEXT = """# Streaming answer

Here is the plan, with `inline code`, **bold**, and a link: https://example.com/path.
This line continues the same paragraph.

1. First step, described loosely.

2. Second step, with a nested list:
   - nested *one*
   - nested two

   A continuation paragraph inside the second item.

3. Third step with code inside the item:

   ```python
   def inside():
       return 1
   ```

A paragraph right before a heading
## Heading without a blank line
#hashtag is not a heading
Setext heading
--------------

```python
import os


def main():
    # Blank lines above must stay inside the fence.
    print(os.getcwd())
```

~~~klingon
no highlighting here

still inside
~~~

| Column | Aligned |
|:------:|--------:|
| a | 1 |
| b | 2 |

> A quote
> over two lines
>
> and a second paragraph.

    indented code

    after a blank line

***

- tight
- list
* other marker
- back

7. starts at seven
8. eight

Final words with <b>html</b> shown as text and an unfinished fence:

```js
const x = 1;
"""


def _random_cuts(text, seed):
    rng = random.Random(seed)
    cuts = []
    position = 0
    while position < len(text):
        position = min(len(text), position + rng.randint(1, 40))
        cuts.append(position)
    return cuts


STREAM = """
async ({ text, cuts, checkEvery }) => {
  const { createStreamRenderer, renderMarkdown } = window.markdown;
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const normalize = (html) => {
    const element = document.createElement("div");
    element.innerHTML = html;
    return element.innerHTML;
  };
  const target = document.getElementById("output");
  const renderer = createStreamRenderer(target);
  const mismatches = [];
  for (const [index, cut] of cuts.entries()) {
    renderer.update(text.slice(0, cut));
    if (index % checkEvery === 0) {
      await nextFrame();
      if (target.innerHTML !== normalize(renderMarkdown(text.slice(0, cut)))) {
        mismatches.push(cut);
      }
    }
  }
  renderer.finish();
  return { actual: target.innerHTML, expected: normalize(renderMarkdown(text)), mismatches };
}
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stream_random_slices(page, seed):
    cuts = _random_cuts(STREAM_TEXT, seed)
    result = page.evaluate(STREAM, {"text": STREAM_TEXT, "cuts": cuts, "checkEvery": 1})

    assert result["mismatches"] == []
    assert result["actual"] == result["expected"]


FINISH_WITH_TEXT = """
async ({ early, final }) => {
  const { createStreamRenderer, renderMarkdown } = window.markdown;
  const target = document.getElementById("output");
  const renderer = createStreamRenderer(target);
  renderer.update(early);
  await new Promise((resolve) => requestAnimationFrame(resolve));
  renderer.finish(final);
  renderer.update(early);
  const normalize = (html) => {
    const element = document.createElement("div");
    element.innerHTML = html;
    return element.innerHTML;
  };
  return { actual: target.innerHTML, expected: normalize(renderMarkdown(final)) };
}
"""


def test_stream_finish_takes_final_text(page):
    # A reply ended by a snapshot or a done event is finished with its stored text.
    result = page.evaluate(
        FINISH_WITH_TEXT, {"early": "First *part", "final": "First *part* and **the rest**."}
    )

    assert "<strong>the rest</strong>" in result["actual"]
    assert result["actual"] == result["expected"]


def test_stream_skipped_frames(page):
    cuts = _random_cuts(STREAM_TEXT, 4)
    result = page.evaluate(STREAM, {"text": STREAM_TEXT, "cuts": cuts, "checkEvery": 7})

    assert result["mismatches"] == []
    assert result["actual"] == result["expected"]


def test_stream_every_character(page):
    text = (
        "para\n#hello\n# real\n\n- a\n\n- b\n\n  more b\n\ntext\n***\n"
        "```\nx\n\ny\n```\n| h |\n|---|\n| c |\n\n| d |\n\n> q\n\n> r\nlazy\n\n"
        "para\n\n===\n\n    code\n\n    more\n\n1. one\n\n   two\n3. three\n\nend"
    )
    cuts = list(range(1, len(text) + 1))
    result = page.evaluate(STREAM, {"text": text, "cuts": cuts, "checkEvery": 1})

    assert result["mismatches"] == []
    assert result["actual"] == result["expected"]


def test_stream_crlf_text(page):
    text = STREAM_TEXT.replace("\n", "\r\n")
    cuts = _random_cuts(text, 5)
    result = page.evaluate(STREAM, {"text": text, "cuts": cuts, "checkEvery": 1})

    assert result["mismatches"] == []
    assert result["actual"] == result["expected"]


def test_stream_link_reference_after_use(page):
    text = "See [the docs][docs].\n\nMore text.\n\n[docs]: https://example.com/docs\n\nEnd."
    cuts = list(range(5, len(text) + 1, 5)) + [len(text)]
    result = page.evaluate(STREAM, {"text": text, "cuts": cuts, "checkEvery": 100})

    assert result["actual"] == result["expected"]
    assert page.locator("#output a").get_attribute("href") == "https://example.com/docs"


def test_stream_keeps_stable_nodes(page):
    result = page.evaluate(
        """async () => {
          const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
          const target = document.getElementById("output");
          const renderer = window.markdown.createStreamRenderer(target);
          let text = "# Title\\n\\n```python\\nx = 1\\n```\\n\\nSecond";
          renderer.update(text);
          await nextFrame();
          target.querySelector("h1").keepTag = "heading";
          target.querySelector(".code-block").keepTag = "code";
          target.querySelector("p").keepTag = "tail";

          for (const more of [" paragraph", " grows.\\n\\n- item", "\\n- item 2\\n\\nEnd."]) {
            text += more;
            renderer.update(text);
            await nextFrame();
          }
          renderer.finish();
          return {
            heading: target.querySelector("h1").keepTag ?? null,
            code: target.querySelector(".code-block").keepTag ?? null,
            tail: target.querySelector("p").keepTag ?? null,
            paragraphs: target.querySelectorAll("p").length,
          };
        }"""
    )

    assert result["heading"] == "heading"
    assert result["code"] == "code"
    # The paragraph was still growing, so it was rendered again.
    assert result["tail"] is None
    assert result["paragraphs"] == 2


def test_stream_defers_to_frame(page):
    result = page.evaluate(
        """async () => {
          const target = document.getElementById("output");
          const renderer = window.markdown.createStreamRenderer(target);
          renderer.update("first");
          renderer.update("first second");
          const before = target.childNodes.length;
          await new Promise((resolve) => requestAnimationFrame(resolve));
          return { before, after: target.innerHTML };
        }"""
    )

    assert result["before"] == 0
    assert result["after"] == "<p>first second</p>\n"


def test_stream_replaces_placeholder(page):
    result = page.evaluate(
        """async () => {
          const target = document.getElementById("output");
          target.innerHTML = "<p class='placeholder'>Thinking</p>";
          const renderer = window.markdown.createStreamRenderer(target);
          renderer.update("Answer");
          const kept = target.innerHTML;
          await new Promise((resolve) => requestAnimationFrame(resolve));
          return { kept, after: target.innerHTML };
        }"""
    )

    assert result["kept"] == '<p class="placeholder">Thinking</p>'
    assert result["after"] == "<p>Answer</p>\n"


def test_stream_finish_renders_synchronously(page):
    html = page.evaluate(
        """() => {
          const target = document.getElementById("output");
          const renderer = window.markdown.createStreamRenderer(target);
          renderer.update("# Done\\n\\nAll **text**");
          renderer.finish();
          return target.innerHTML;
        }"""
    )

    assert html == "<h1>Done</h1>\n<p>All <strong>text</strong></p>\n"


def test_stream_ignores_update_after_finish(page):
    html = page.evaluate(
        """async () => {
          const target = document.getElementById("output");
          const renderer = window.markdown.createStreamRenderer(target);
          renderer.update("kept");
          renderer.finish();
          renderer.update("ignored");
          await new Promise((resolve) => requestAnimationFrame(resolve));
          return target.innerHTML;
        }"""
    )

    assert html == "<p>kept</p>\n"


def test_stream_restarts_on_changed_text(page):
    html = page.evaluate(
        """async () => {
          const target = document.getElementById("output");
          const renderer = window.markdown.createStreamRenderer(target);
          renderer.update("# Old\\n\\nold paragraph\\n\\nmore");
          await new Promise((resolve) => requestAnimationFrame(resolve));
          renderer.update("# New\\n\\nnew text");
          renderer.finish();
          return target.innerHTML;
        }"""
    )

    assert html == "<h1>New</h1>\n<p>new text</p>\n"


def test_copy_button_copies_code(browser, base_url):
    context, page, errors = open_harness(browser, base_url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page.evaluate(
        """() => {
          const output = document.getElementById("output");
          window.markdown.installCopyHandler(output);
          window.markdown.setLabels({copy: "Kopieren", copied: "Kopiert"});
          output.innerHTML = window.markdown.renderMarkdown(
            "Text\\n\\n```python\\nprint('a < b')\\n\\nx = 1\\n```"
          );
        }"""
    )

    page.click("button.code-copy")
    page.wait_for_function("document.querySelector('button.code-copy').textContent === 'Kopiert'")
    copied = page.evaluate("navigator.clipboard.readText()")
    page.wait_for_function("document.querySelector('button.code-copy').textContent === 'Kopieren'")
    context.close()

    assert copied == "print('a < b')\n\nx = 1"
    assert errors == []


def test_copy_handler_ignores_other_clicks(page):
    calls = page.evaluate(
        """() => {
          const calls = [];
          Object.defineProperty(navigator, "clipboard", {
            value: { writeText: async (text) => calls.push(text) },
            configurable: true,
          });
          const output = document.getElementById("output");
          window.markdown.installCopyHandler(output);
          window.markdown.installCopyHandler(output);
          output.innerHTML = window.markdown.renderMarkdown("para\\n\\n```\\ncode\\n```");
          output.querySelector("p").click();
          output.querySelector("button").click();
          return calls;
        }"""
    )

    assert calls == ["code"]


def test_layout_phone_width(browser, base_url):
    context, page, errors = open_harness(browser, base_url, viewport={"width": 375, "height": 700})
    long_line = "x = " + " + ".join(f"value_{index}" for index in range(60))
    wide_row = "| " + " | ".join(f"heading{index}" for index in range(12)) + " |"
    source = (
        f"```python\n{long_line}\n```\n\n{wide_row}\n|"
        + "---|" * 12
        + "\n\nA long URL https://example.com/"
        + "a" * 200
        + "\n\n`"
        + "b" * 120
        + "`"
    )
    sizes = page.evaluate(
        """(source) => {
          document.getElementById("output").innerHTML = window.markdown.renderMarkdown(source);
          const pre = document.querySelector("pre");
          const wrap = document.querySelector(".table-wrap");
          return {
            pageWidth: document.documentElement.scrollWidth,
            viewport: document.documentElement.clientWidth,
            preScrolls: pre.scrollWidth > pre.clientWidth,
            tableScrolls: wrap.scrollWidth > wrap.clientWidth,
          };
        }""",
        source,
    )
    context.close()

    assert sizes["pageWidth"] == sizes["viewport"]
    assert sizes["preScrolls"] is True
    assert sizes["tableScrolls"] is True
    assert errors == []


THEME_CASES = {
    "light_system": ("light", None, LIGHT_BACKGROUND),
    "dark_system": ("dark", None, DARK_BACKGROUND),
    "dark_attribute": ("light", "dark", DARK_BACKGROUND),
    "light_attribute_on_dark_system": ("dark", "light", LIGHT_BACKGROUND),
}


@pytest.mark.parametrize(("scheme", "theme", "background"), THEME_CASES.values(), ids=THEME_CASES)
def test_theme_code_background(page, scheme, theme, background):
    page.emulate_media(color_scheme=scheme)
    if theme:
        page.evaluate("(theme) => { document.documentElement.dataset.theme = theme; }", theme)
    render(page, "```python\nx = 1\n```")

    code = page.locator("pre > code")
    assert code.evaluate("(element) => getComputedStyle(element).backgroundColor") == background
    assert code.evaluate("(element) => getComputedStyle(element).paddingLeft") == "12.24px"
