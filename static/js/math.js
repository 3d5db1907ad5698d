// TeX math for markdown-it, typeset by KaTeX.
//
// Four delimiters are recognised, the two TeX forms and the two dollar forms that models
// write: \(inline\), \[display\], $inline$ and $$display$$. The backslash forms need rules
// of their own, because CommonMark reads "\(" as an escaped "(" and would drop the
// backslash before any math renderer saw it.
//
// KaTeX writes its layout into style attributes, which the page's Content-Security-Policy
// (style-src 'self', no 'unsafe-inline') would block. mathHtml() renames them to
// data-math-style, the sanitizer keeps only checked declarations inside math (see
// checkedMathStyle), and applyMathStyles() sets them through the CSSOM, which the policy
// allows.
import { katex } from "../vendor/chat-vendor.js";

const KATEX_OPTIONS = {
  throwOnError: false,
  output: "html",
  // trust: false keeps \href, \url, \includegraphics and \htmlClass from making links,
  // images or attributes out of model output.
  trust: false,
  strict: "ignore",
  maxSize: 50,
  maxExpand: 500,
};

function escapeAttribute(text) {
  return text
    .replace(/&/g, "&amp;")
    .replace(/"/g, "&quot;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;");
}

/** Typeset `tex` to an HTML string; the TeX source becomes the accessible name. */
export function mathHtml(tex, display) {
  // KaTeX escapes quotes in text, so ' style="' only occurs as its own attribute. Renaming
  // it before any parse keeps the browser from ever seeing (and reporting) inline styles.
  const html = katex
    .renderToString(tex, { ...KATEX_OPTIONS, displayMode: display })
    .replaceAll(' style="', ' data-math-style="');
  const label = escapeAttribute(tex.trim());
  if (display) {
    return `<div class="math math-display" role="img" aria-label="${label}">${html}</div>\n`;
  }
  return `<span class="math math-inline" role="img" aria-label="${label}">${html}</span>`;
}

// Return the index of `closer` in `source` between `from` and `end`, skipping backslash
// escapes such as "\\" and "\$", or -1.
function findCloser(source, from, closer, end) {
  for (let index = from; index + closer.length <= end; index++) {
    if (source.startsWith(closer, index)) {
      return index;
    }
    if (source[index] === "\\") {
      index++;
    }
  }
  return -1;
}

const WHITESPACE = /\s/;
const DIGIT = /[0-9]/;

// A single dollar opens math only when a non-space follows it, and closes it only after a
// non-space and before a non-digit, so prices like "$5 and $10" stay text.
function findDollarCloser(source, from, end) {
  for (let index = from; index < end; index++) {
    const char = source[index];
    if (char === "\\") {
      index++;
      continue;
    }
    if (char !== "$") {
      continue;
    }
    if (source[index + 1] === "$") {
      return -1;
    }
    if (!WHITESPACE.test(source[index - 1]) && !DIGIT.test(source[index + 1] ?? "")) {
      return index;
    }
  }
  return -1;
}

function inlineMath(state, silent) {
  const { src, pos, posMax } = state;
  let opener;
  let closer;
  if (src.startsWith("\\(", pos)) {
    [opener, closer] = ["\\(", "\\)"];
  } else if (src.startsWith("\\[", pos)) {
    [opener, closer] = ["\\[", "\\]"];
  } else if (src.startsWith("$$", pos)) {
    [opener, closer] = ["$$", "$$"];
  } else if (src[pos] === "$") {
    [opener, closer] = ["$", "$"];
  } else {
    return false;
  }

  const start = pos + opener.length;
  let close;
  if (opener === "$") {
    if (start >= posMax || WHITESPACE.test(src[start]) || DIGIT.test(src[pos - 1] ?? "")) {
      return false;
    }
    close = findDollarCloser(src, start, posMax);
  } else {
    close = findCloser(src, start, closer, posMax);
  }
  if (close < 0 || !src.slice(start, close).trim()) {
    return false;
  }
  if (!silent) {
    const token = state.push("math_inline", "", 0);
    token.content = src.slice(start, close);
    token.markup = opener;
    token.meta = { display: opener === "$$" || opener === "\\[" };
  }
  state.pos = close + closer.length;
  return true;
}

// A display block starts with $$ or \[ on a line of its own (or with the formula on the
// same line) and ends at the first line that ends with the matching closer. It never
// spans a blank line, so a paragraph that a blank line ended cannot become math later,
// which the stream renderer relies on.
function blockMath(state, startLine, endLine, silent) {
  const lineStart = state.bMarks[startLine] + state.tShift[startLine];
  const lineEnd = state.eMarks[startLine];
  if (state.sCount[startLine] - state.blkIndent >= 4) {
    return false;
  }
  const first = state.src.slice(lineStart, lineEnd);
  let closer;
  if (first.startsWith("$$")) {
    closer = "$$";
  } else if (first.startsWith("\\[")) {
    closer = "\\]";
  } else {
    return false;
  }

  const rest = first.slice(2);
  let content;
  let lastLine = startLine;
  if (rest.trimEnd().endsWith(closer) && rest.trim().length > closer.length - 1) {
    // The whole formula on one line: $$ x^2 $$.
    const inner = rest.trimEnd().slice(0, -closer.length);
    if (!inner.trim()) {
      return false;
    }
    content = inner;
  } else {
    if (rest.includes(closer)) {
      // Text after the closer on the same line: leave it to the paragraph's inline rule.
      return false;
    }
    const lines = [rest];
    let found = false;
    for (let line = startLine + 1; line < endLine; line++) {
      const text = state.src.slice(state.bMarks[line] + state.tShift[line], state.eMarks[line]);
      if (!text.trim()) {
        break;
      }
      if (text.trimEnd().endsWith(closer)) {
        lines.push(text.trimEnd().slice(0, -closer.length));
        lastLine = line;
        found = true;
        break;
      }
      if (text.includes(closer)) {
        break;
      }
      lines.push(text);
    }
    if (!found) {
      return false;
    }
    content = lines.join("\n");
    if (!content.trim()) {
      return false;
    }
  }
  if (silent) {
    return true;
  }
  const token = state.push("math_block", "math", 0);
  token.block = true;
  token.content = content;
  token.markup = first.slice(0, 2);
  token.map = [startLine, lastLine + 1];
  state.line = lastLine + 1;
  return true;
}

/** markdown-it plugin: math tokens rendered with KaTeX. */
export function mathPlugin(md) {
  // Before "escape", which would otherwise turn \( into a plain parenthesis.
  md.inline.ruler.before("escape", "math_inline", inlineMath);
  md.block.ruler.before("paragraph", "math_block", blockMath, {
    alt: ["paragraph", "reference", "blockquote", "list"],
  });
  md.renderer.rules.math_inline = (tokens, idx) =>
    mathHtml(tokens[idx].content, tokens[idx].meta.display);
  md.renderer.rules.math_block = (tokens, idx) => mathHtml(tokens[idx].content, true);
}

// CSS properties KaTeX writes, and the value shapes it uses for them: lengths in em
// (sometimes two, for margin), colours, and a few keywords.
const MATH_STYLE_PROPERTIES = new Set([
  "background-color",
  "border-bottom-width",
  "border-color",
  "border-right-style",
  "border-right-width",
  "border-style",
  "border-top-width",
  "border-width",
  "bottom",
  "color",
  "height",
  "left",
  "margin",
  "margin-left",
  "margin-right",
  "min-width",
  "padding-left",
  "position",
  "top",
  "vertical-align",
  "width",
]);
const LENGTH = /^-?(?:\d+\.?\d*|\.\d+)(?:em|ex|pt|px|mu|%)?$/;
const COLOR = /^(?:#[0-9a-f]{3,8}|[a-z]{3,20}|rgba?\(\s*[\d.]+%?(?:\s*,\s*[\d.]+%?){2,3}\s*\))$/i;
const KEYWORDS = new Set(["solid", "relative", "absolute", "auto", "inherit", "none"]);

function checkedValue(property, value) {
  if (property.endsWith("color")) {
    return COLOR.test(value) ? value : null;
  }
  const parts = value.split(/\s+/);
  if (parts.length > 4) {
    return null;
  }
  const valid = parts.every((part) => LENGTH.test(part) || KEYWORDS.has(part));
  return valid ? value : null;
}

/**
 * Return `style` reduced to the declarations KaTeX writes, each property and value checked
 * against an allow-list, as "property:value;..." (possibly empty).
 */
export function checkedMathStyle(style) {
  const declarations = [];
  for (const declaration of String(style).split(";")) {
    const colon = declaration.indexOf(":");
    if (colon < 0) {
      continue;
    }
    const property = declaration.slice(0, colon).trim().toLowerCase();
    const value = checkedValue(property, declaration.slice(colon + 1).trim());
    if (MATH_STYLE_PROPERTIES.has(property) && value !== null) {
      declarations.push(`${property}:${value}`);
    }
  }
  return declarations.join(";");
}

/**
 * Apply the data-math-style attributes under `root` through the CSSOM and remove them.
 * The values are checked again here, so a forged attribute can set nothing else.
 */
export function applyMathStyles(root) {
  for (const element of root.querySelectorAll("[data-math-style]")) {
    const style = checkedMathStyle(element.getAttribute("data-math-style"));
    element.removeAttribute("data-math-style");
    if (!element.closest(".math")) {
      continue;
    }
    for (const declaration of style.split(";").filter(Boolean)) {
      const colon = declaration.indexOf(":");
      element.style.setProperty(declaration.slice(0, colon), declaration.slice(colon + 1));
    }
  }
  return root;
}
