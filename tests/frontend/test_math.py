"""Browser tests for TeX math in static/js/markdown.js (static/js/math.js and KaTeX)."""

import random
import re

import pytest

from tests.frontend.harness import CHROMIUM, open_harness

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found"),
]

RENDER = """
(source) => {
  const output = document.getElementById("output");
  output.replaceChildren(window.markdown.renderMarkdownFragment(source));
  const maths = [...output.querySelectorAll(".math")];
  return {
    html: output.innerHTML,
    text: output.textContent,
    maths: maths.map((element) => ({
      display: element.classList.contains("math-display"),
      label: element.getAttribute("aria-label"),
      tag: element.localName,
      katex: element.querySelector(".katex") !== null,
      insideParagraph: element.closest("p") !== null,
    })),
    tags: [...new Set([...output.querySelectorAll("*")].map((element) => element.localName))],
    leftover: output.querySelectorAll("[data-math-style]").length,
  };
}
"""


def render(page, source):
    return page.evaluate(RENDER, source)


DELIMITERS = {
    "dollar_inline": ("Area is $\\pi r^2$ here.", "\\pi r^2", False),
    "dollar_display_inline": ("Sum: $$\\sum_{i=1}^n i$$ done.", "\\sum_{i=1}^n i", True),
    "dollar_display_block": ("$$\n\\frac{a}{b}\n$$", "\\frac{a}{b}", True),
    "dollar_display_one_line": ("$$ e^{i\\pi} + 1 = 0 $$", "e^{i\\pi} + 1 = 0", True),
    "paren_inline": ("So \\(a^2 + b^2 = c^2\\) holds.", "a^2 + b^2 = c^2", False),
    "bracket_inline": ("Then \\[x = \\sqrt{2}\\] follows.", "x = \\sqrt{2}", True),
    "bracket_block": ("\\[\n\\int_0^1 x\\,dx\n\\]", "\\int_0^1 x\\,dx", True),
    "bracket_one_line": ("\\[ \\lim_{n\\to\\infty} 1/n \\]", "\\lim_{n\\to\\infty} 1/n", True),
}  # fmt: skip


@pytest.mark.parametrize(("source", "tex", "display"), DELIMITERS.values(), ids=DELIMITERS)
def test_math_delimiter_rendered(page, source, tex, display):
    result = render(page, source)

    assert len(result["maths"]) == 1
    math = result["maths"][0]
    assert math["katex"] is True
    assert math["label"] == tex
    assert math["display"] is display
    assert "katex-error" not in result["html"]
    assert result["leftover"] == 0


def test_math_backslash_forms_keep_backslashes(page):
    # CommonMark alone turns "\(" into "(" and "\\" into "\", which would break the TeX.
    result = render(page, "Matrix \\(\\begin{matrix} a \\\\ b \\end{matrix}\\) end")

    assert result["maths"][0]["label"] == "\\begin{matrix} a \\\\ b \\end{matrix}"
    assert "katex-error" not in result["html"]


def test_math_multiline_block_in_list(page):
    result = render(page, "- item\n\n  $$\n  a = b\n  $$\n")

    assert len(result["maths"]) == 1
    assert result["maths"][0]["display"] is True
    assert result["tags"][:2] == ["ul", "li"]


def test_math_block_interrupts_paragraph(page):
    result = render(page, "Consider\n$$\nx^2\n$$\nafter")

    assert [m["label"] for m in result["maths"]] == ["x^2"]
    assert page.locator("#output > p").count() == 2
    assert page.locator("#output > div.math-display").count() == 1


NOT_MATH = {
    "prices": "It costs $5 and $10 today.",
    "price_range": "Between $3.50 and $4, roughly.",
    "escaped_dollars": "Use \\$x\\$ for a literal dollar.",
    "space_after_opener": "A $ x$ is not math.",
    "space_before_closer": "A $x $ is not math.",
    "inline_code": "Run `echo $HOME $PATH` now.",
    "code_fence": "```bash\necho $$ \\(x\\) $y$\n```",
    "unclosed_paren": "An \\(unclosed opener stays text.",
    "blank_line_inside_display": "$$\na\n\nb\n$$",
    "empty_parens": "Empty \\(\\) and \\[ \\] stay text.",
}


@pytest.mark.parametrize("source", NOT_MATH.values(), ids=NOT_MATH)
def test_math_not_detected(page, source):
    result = render(page, source)

    assert result["maths"] == []


def test_math_prices_text_kept(page):
    result = render(page, "It costs $5 and $10 today.")

    assert result["text"] == "It costs $5 and $10 today.\n"


def test_math_parse_error_shown_as_text(page):
    result = render(page, "Broken $\\frac{a$ here")

    assert len(result["maths"]) == 1
    assert "katex-error" in result["html"]
    assert "\\frac{a" in result["text"]


def test_math_styles_applied_through_cssom(page):
    result = page.evaluate(
        """() => {
          const output = document.getElementById("output");
          output.replaceChildren(window.markdown.renderMarkdownFragment("$$\\\\frac{a}{b}$$"));
          const styled = [...output.querySelectorAll(".math [style]")];
          const vlist = output.querySelector(".vlist");
          return {
            styled: styled.length,
            outside: output.querySelectorAll(":not(.math *)[style]").length,
            vlistHeight: vlist ? vlist.style.height : null,
            font: getComputedStyle(output.querySelector(".katex")).fontFamily,
          };
        }"""
    )

    assert result["styled"] > 0
    assert result["outside"] == 0
    assert result["vlistHeight"]
    assert "KaTeX_Main" in result["font"]


def test_math_fonts_served_locally(page):
    page.evaluate(
        """() => {
          const output = document.getElementById("output");
          output.replaceChildren(window.markdown.renderMarkdownFragment("$x + \\\\mathbb{R}$"));
        }"""
    )
    # Fonts load after layout; wait until both families have come from the local server.
    page.wait_for_function(
        """() => ["KaTeX_Main", "KaTeX_AMS"].every((name) =>
             [...document.fonts].some((f) => f.family.includes(name) && f.status === "loaded"))"""
    )
    sources = page.evaluate(
        """() => performance.getEntriesByType("resource")
             .map((entry) => entry.name).filter((name) => name.endsWith(".woff2"))"""
    )

    assert sources
    assert all(source.startswith(page.url.split("/tests/")[0]) for source in sources)


MATH_XSS = {
    "href_javascript": "$\\href{javascript:window.__xss=1}{click}$",
    "url_javascript": "\\(\\url{javascript:window.__xss=1}\\)",
    "html_class": "$$\\htmlClass{x}{y}\\htmlStyle{background:url(javascript:1)}{z}$$",
    "html_data": "$\\htmlData{onload=window.__xss=1}{x}$",
    "include_graphics": "\\[\\includegraphics{javascript:window.__xss=1}\\]",
    "raw_html_in_math": "$<img src=x onerror=window.__xss=1>$",
    "text_html_in_math": "$\\text{<script>window.__xss=1</script>}$",
    "svg_in_math": '$$\\text{<svg onload="window.__xss=1">}$$',
    "color_injection": "$\\color{red;background:url(javascript:1)}{x}$",
    "closing_tags": "\\(</span></span><img src=x onerror=window.__xss=1>\\)",
}
SAFE_MATH_TAGS = {"span", "svg", "path", "line", "p", "div"}


@pytest.mark.parametrize("source", MATH_XSS.values(), ids=MATH_XSS)
def test_math_xss_payload(page, source):
    result = render(page, source)

    assert set(result["tags"]) <= SAFE_MATH_TAGS
    attributes = page.evaluate(
        """() => [...document.querySelectorAll("#output *")].flatMap(
             (element) => [...element.attributes].map((attribute) => attribute.name))"""
    )
    assert [name for name in attributes if name.startswith("on")] == []
    assert "href" not in attributes
    assert "src" not in attributes
    assert "url(" not in page.evaluate(
        """() => [...document.querySelectorAll("#output [style]")]
             .map((element) => element.getAttribute("style")).join(" ")"""
    )
    page.wait_for_timeout(150)
    assert page.evaluate("window.__xss") is None


FORGED = {
    "data_style_outside_math": (
        '<p data-math-style="color:red">x</p>',
        "<p>x</p>",
    ),
    "style_outside_math": ('<p style="color:red">x</p>', "<p>x</p>"),
    "role_outside_math": ('<p role="img" aria-label="x" width="5">x</p>', "<p>x</p>"),
    "style_in_math": (
        '<span class="math"><span style="height:1em">x</span></span>',
        '<span class="math"><span>x</span></span>',
    ),
    "url_in_math_style": (
        '<span class="math"><span data-math-style="background-image:url(https://e.example/x)">'
        "x</span></span>",
        '<span class="math"><span>x</span></span>',
    ),
    "expression_in_math_style": (
        '<span class="math"><span data-math-style="width:expression(alert(1));height:1em">'
        "x</span></span>",
        '<span class="math"><span data-math-style="height:1em">x</span></span>',
    ),
}


@pytest.mark.parametrize(("html", "expected"), FORGED.values(), ids=FORGED)
def test_math_sanitizer_case(page, html, expected):
    assert page.evaluate("(html) => window.markdown.sanitizeHtml(html)", html) == expected


def test_math_apply_styles_checks_again(page):
    style = page.evaluate(
        """() => {
          const root = document.getElementById("output");
          root.innerHTML = '<span class="math"><span data-math-style="height:1em;' +
            'background-image:url(https://e.example/x)">x</span></span>' +
            '<span data-math-style="height:9em">outside</span>';
          window.markdown.applyMathStyles(root);
          return {
            inside: root.querySelector(".math span").getAttribute("style"),
            outside: root.querySelector(":scope > span:last-child").getAttribute("style"),
            left: root.querySelectorAll("[data-math-style]").length,
          };
        }"""
    )

    assert style == {"inside": "height: 1em;", "outside": None, "left": 0}


MATH_STREAM_TEXT = r"""# Math while streaming

Inline $a^2 + b^2 = c^2$ and \(\alpha\) in one line, a price of $5, and $$x$$ too.

$$
\int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}
$$

\[
\begin{aligned}
  f(x) &= x^2 \\
  f'(x) &= 2x
\end{aligned}
\]

- a list with \[ y = mx + b \] inside
- and $\sum_{k=1}^{n} k$

| x | $x^2$ |
|---|-------|
| 2 | $4$ |

Paragraph before
$$
\lim_{n \to \infty} \left(1 + \frac{1}{n}\right)^n = e
$$
after it, then an unclosed \[ display
"""

STREAM = """
async ({ text, cuts }) => {
  const { createStreamRenderer, renderMarkdownFragment } = window.markdown;
  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const expected = (source) => {
    const element = document.createElement("div");
    element.append(renderMarkdownFragment(source));
    return element.innerHTML;
  };
  const target = document.getElementById("output");
  const renderer = createStreamRenderer(target);
  const mismatches = [];
  for (const cut of cuts) {
    renderer.update(text.slice(0, cut));
    await nextFrame();
    if (target.innerHTML !== expected(text.slice(0, cut))) {
      mismatches.push(cut);
    }
  }
  renderer.finish();
  return { actual: target.innerHTML, expected: expected(text), mismatches };
}
"""


@pytest.mark.parametrize("seed", [11, 12])
def test_math_stream_random_slices(page, seed):
    rng = random.Random(seed)
    cuts = []
    position = 0
    while position < len(MATH_STREAM_TEXT):
        position = min(len(MATH_STREAM_TEXT), position + rng.randint(1, 25))
        cuts.append(position)
    result = page.evaluate(STREAM, {"text": MATH_STREAM_TEXT, "cuts": cuts})

    assert result["mismatches"] == []
    assert result["actual"] == result["expected"]
    assert len(re.findall(r'class="math ', result["actual"])) == 10


def test_math_stream_every_character(page):
    text = "a\n$$\nx\n- y\n$$\n\nb\n\\[\nz\n\\]\nc $d$ e"
    cuts = list(range(1, len(text) + 1))
    result = page.evaluate(STREAM, {"text": text, "cuts": cuts})

    assert result["mismatches"] == []
    assert result["actual"] == result["expected"]


def test_math_display_scrolls_on_phone(browser, base_url):
    context, page, errors = open_harness(browser, base_url, viewport={"width": 360, "height": 700})
    long_sum = " + ".join(f"x_{{{index}}}^2" for index in range(60))
    sizes = page.evaluate(
        """(source) => {
          const output = document.getElementById("output");
          output.replaceChildren(window.markdown.renderMarkdownFragment(source));
          const display = output.querySelector(".math-display");
          return {
            pageWidth: document.documentElement.scrollWidth,
            viewport: document.documentElement.clientWidth,
            scrolls: display.scrollWidth > display.clientWidth,
          };
        }""",
        f"$$\n{long_sum}\n$$",
    )
    context.close()

    assert sizes["pageWidth"] == sizes["viewport"]
    assert sizes["scrolls"] is True
    assert errors == []
