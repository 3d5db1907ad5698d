// Markdown rendering for chat messages: markdown-it, highlight.js and KaTeX, then
// DOMPurify.
//
// Model output is untrusted. markdown-it runs with `html: false`, so raw HTML in the
// source is shown as text, and DOMPurify then removes anything outside a small
// allow-list as a second, independent layer.
import { DOMPurify, hljs, markdownit } from "../vendor/chat-vendor.js";
import { applyMathStyles, checkedMathStyle, mathPlugin } from "./math.js";

export { applyMathStyles };

const labels = { copy: "Copy", copied: "Copied" };

// How long a copy button shows the "copied" label, in milliseconds.
const COPIED_LABEL_MS = 1500;

/**
 * Set the translated button labels. Call it with gettext'd strings before rendering,
 * because code blocks already in the page keep the label they were rendered with.
 */
export function setLabels({ copy, copied } = {}) {
  if (typeof copy === "string") {
    labels.copy = copy;
  }
  if (typeof copied === "string") {
    labels.copied = copied;
  }
}

const md = markdownit({
  html: false,
  linkify: true,
  breaks: false,
  typographer: false,
});
md.use(mathPlugin);
const escapeHtml = md.utils.escapeHtml;

function codeBlockHtml(code, info) {
  const lang = info ? md.utils.unescapeAll(info).trim().split(/\s+/)[0] : "";
  let body = escapeHtml(code);
  let codeClass = "hljs";
  if (lang && hljs.getLanguage(lang)) {
    body = hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
    codeClass += ` language-${escapeHtml(lang)}`;
  }
  return (
    '<div class="code-block"><div class="code-head">' +
    `<span class="code-lang">${escapeHtml(lang)}</span>` +
    `<button type="button" class="code-copy" data-copy>${escapeHtml(labels.copy)}</button>` +
    `</div><pre><code class="${codeClass}">${body}</code></pre></div>\n`
  );
}

md.renderer.rules.fence = (tokens, idx) => codeBlockHtml(tokens[idx].content, tokens[idx].info);
md.renderer.rules.code_block = (tokens, idx) => codeBlockHtml(tokens[idx].content, "");

md.renderer.rules.table_open = () => '<div class="table-wrap"><table>\n';
md.renderer.rules.table_close = () => "</table></div>\n";

// markdown-it aligns table cells with a style attribute, which the sanitizer removes,
// so alignment is carried by a class instead.
const ALIGN_STYLE = /^text-align:(left|center|right)$/;
md.core.ruler.push("align_classes", (state) => {
  for (const token of state.tokens) {
    if (token.type !== "th_open" && token.type !== "td_open") {
      continue;
    }
    const match = ALIGN_STYLE.exec(token.attrGet("style") ?? "");
    if (match) {
      token.attrs = token.attrs.filter(([name]) => name !== "style");
      token.attrJoin("class", `align-${match[1]}`);
    }
  }
});

// Images become plain links. An <img> would load as soon as the message renders,
// so model output could send conversation data to any host through the image URL.
md.renderer.rules.image = (tokens, idx, options, env, renderer) => {
  const token = tokens[idx];
  const src = token.attrGet("src") ?? "";
  const alt = renderer.renderInlineAsText(token.children, options, env) || src;
  const title = token.attrGet("title");
  const titleAttr = title ? ` title="${escapeHtml(title)}"` : "";
  return `<a class="image-link" href="${escapeHtml(src)}"${titleAttr}>${escapeHtml(alt)}</a>`;
};

// A private instance, so these hooks and settings never affect other DOMPurify users.
const purifier = DOMPurify(window);

// svg, path and line are KaTeX's drawings (square roots, arrows, braces); markdown-it
// never emits them, because raw HTML in the source is escaped.
const MATH_ATTRIBUTES = [
  "aria-hidden", "aria-label", "d", "data-math-style", "height", "preserveAspectRatio",
  "role", "stroke-width", "viewBox", "width", "x1", "x2", "xmlns", "y1", "y2",
];  // prettier-ignore

const SANITIZE_CONFIG = {
  ALLOWED_TAGS: [
    "a", "blockquote", "br", "button", "code", "del", "div", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "li", "line", "ol", "p", "path", "pre", "s", "span", "strong", "svg",
    "table", "tbody", "td", "th", "thead", "tr", "ul",
  ],
  ALLOWED_ATTR: ["class", "data-copy", "href", "start", "title", "type", ...MATH_ATTRIBUTES],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  // Only absolute http, https and mailto URLs: relative links would point into this site.
  ALLOWED_URI_REGEXP: /^(?:https?|mailto):/i,
  // DOMPurify checks every attribute that is not URI-safe against ALLOWED_URI_REGEXP, so
  // these would otherwise be dropped for not looking like http URLs.
  ADD_URI_SAFE_ATTR: ["data-copy", "start", "type", ...MATH_ATTRIBUTES],
};

// Math attributes are kept only inside KaTeX's output. Style attributes are dropped
// everywhere (the page's CSP would block them anyway), and data-math-style keeps only
// checked declarations.
const MATH_ONLY_ATTRIBUTES = MATH_ATTRIBUTES.filter((name) => name !== "xmlns");
purifier.addHook("beforeSanitizeAttributes", (node) => {
  if (node.nodeType !== 1) {
    return;
  }
  node.removeAttribute("style");
  const inMath = node.closest?.(".math") != null;
  if (!inMath) {
    for (const name of MATH_ONLY_ATTRIBUTES) {
      node.removeAttribute(name);
    }
    return;
  }
  if (node.hasAttribute("data-math-style")) {
    const style = checkedMathStyle(node.getAttribute("data-math-style"));
    if (style) {
      node.setAttribute("data-math-style", style);
    } else {
      node.removeAttribute("data-math-style");
    }
  }
});

purifier.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** Sanitize an HTML string with the same allow-list that renderMarkdown uses. */
export function sanitizeHtml(html) {
  return purifier.sanitize(html, SANITIZE_CONFIG);
}

// markdown-it applies the same normalization before parsing. The stream renderer does it
// up front so that its offsets into the text match markdown-it's line numbers.
function normalizeSource(text) {
  return String(text ?? "").replace(/\r\n?/g, "\n").replace(/\0/g, "\uFFFD");
}

/** Render Markdown source to a sanitized HTML string. */
export function renderMarkdown(text) {
  return sanitizeHtml(md.render(normalizeSource(text)));
}

function htmlToFragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return applyMathStyles(template.content);
}

/** Render Markdown source to a sanitized DocumentFragment, math styles applied. */
export function renderMarkdownFragment(text) {
  return htmlToFragment(renderMarkdown(text));
}

// Block types that no later line can extend once a blank line follows them. Lists and
// indented code are missing on purpose: both continue past blank lines.
const ENDED_BY_BLANK_LINE = new Set([
  "blockquote_open",
  "fence",
  "heading_open",
  "hr",
  "math_block",
  "paragraph_open",
  "table_open",
]);

// A line that opens display math ($$ or \[), possibly after list or quote markers.
const MATH_OPENER = /^[\s>]*(?:(?:[-*+]|\d{1,9}[.)])\s+)*(?:\$\$|\\\[)/;

// Return the first line below `completeLines` that opens display math still unclosed at
// the end of the complete lines, or -1. Until its closer or a blank line arrives, the
// math block rule may later claim the lines below it, so they are not final yet.
function unresolvedMathLine(lines, completeLines) {
  for (let line = 0; line < completeLines; line++) {
    const match = MATH_OPENER.exec(lines[line]);
    if (!match) {
      continue;
    }
    const closer = match[0].endsWith("$") ? "$$" : "\\]";
    const after = lines[line].slice(match[0].length);
    if (after.includes(closer)) {
      continue;
    }
    let resolved = false;
    for (let next = line + 1; next < completeLines; next++) {
      if (!lines[next].trim() || lines[next].includes(closer)) {
        resolved = true;
        break;
      }
    }
    if (!resolved) {
      return line;
    }
  }
  return -1;
}

// Return the length of the prefix of `source` that holds complete top-level blocks.
//
// Only complete lines are parsed, because a partial last line can still change what it
// is ("#" is an empty heading that interrupts a paragraph, "#x" is not). Of the blocks
// found, all but the last are complete: markdown-it decides where a block ends while
// reading forward, so once a later block has started on a complete line, no further text
// can change the earlier ones. The last block is complete only if it is of a type in
// ENDED_BY_BLANK_LINE and blank lines follow it. An unclosed code fence never passes that
// test, because it takes in every line up to the end of the text.
function completeBlocksLength(source) {
  const end = source.lastIndexOf("\n") + 1;
  if (end === 0) {
    return 0;
  }
  const lines = source.slice(0, end).split("\n");
  const lineCount = lines.length - 1;
  const tokens = [];
  md.block.parse(source.slice(0, end), md, {}, tokens);
  const blocks = tokens.filter((token) => token.level === 0 && token.map);
  if (blocks.length === 0) {
    return 0;
  }

  const last = blocks[blocks.length - 1];
  const [lastStart, lastEnd] = last.map;
  const followedByBlankLines =
    lastEnd < lineCount && lines.slice(lastEnd, lineCount).every((line) => /^[ \t]*$/.test(line));
  let completeLines =
    ENDED_BY_BLANK_LINE.has(last.type) && followedByBlankLines ? lineCount : lastStart;
  const mathLine = unresolvedMathLine(lines, completeLines);
  if (mathLine >= 0) {
    completeLines = Math.min(completeLines, blockStartOf(blocks, mathLine));
  }

  let offset = 0;
  for (let line = 0; line < completeLines; line++) {
    offset += lines[line].length + 1;
  }
  return offset;
}

// Return the first line of the top-level block that contains `line`.
function blockStartOf(blocks, line) {
  const block = blocks.find((token) => token.map[0] <= line && line < token.map[1]);
  return block ? block.map[0] : line;
}

function hasLinkReferences(source) {
  const env = {};
  md.block.parse(source, md, env, []);
  return Object.keys(env.references ?? {}).length > 0;
}

/**
 * Render a message that grows while it streams into `element`.
 *
 * update(fullText) takes the whole text so far and renders at most once per animation
 * frame. Complete top-level blocks are rendered once and appended, and only the last,
 * still growing block is rendered again. finish(fullText) takes the final text (or,
 * without it, the last text given to update) and renders synchronously, after which
 * the element holds the same markup as renderMarkdown(fullText). Text that does not
 * start with the blocks already rendered as complete (an edited or restarted message)
 * starts over. Whatever the element contained before, such as a placeholder, stays until
 * the first render replaces it.
 */
export function createStreamRenderer(element) {
  let source = "";
  // Source of the blocks already in the element, which are never rendered again.
  let stableSource = "";
  let tailNodes = [];
  let frame = 0;
  let rendered = false;
  let finished = false;

  function reset() {
    element.replaceChildren();
    stableSource = "";
    tailNodes = [];
  }

  function render() {
    if (!rendered || !source.startsWith(stableSource)) {
      reset();
      rendered = true;
    }
    for (const node of tailNodes) {
      node.remove();
    }
    tailNodes = [];

    const rest = source.slice(stableSource.length);
    const completeLength = completeBlocksLength(rest);
    if (completeLength > 0) {
      const complete = rest.slice(0, completeLength);
      element.append(htmlToFragment(renderMarkdown(complete)));
      stableSource += complete;
    }

    const tail = htmlToFragment(renderMarkdown(source.slice(stableSource.length)));
    tailNodes = [...tail.childNodes];
    element.append(tail);
  }

  function onFrame() {
    frame = 0;
    render();
  }

  return {
    update(fullText) {
      if (finished) {
        return;
      }
      source = normalizeSource(fullText);
      if (!frame) {
        frame = requestAnimationFrame(onFrame);
      }
    },

    finish(fullText) {
      if (finished) {
        return;
      }
      finished = true;
      if (fullText !== undefined) {
        source = normalizeSource(fullText);
      }
      if (frame) {
        cancelAnimationFrame(frame);
        frame = 0;
      }
      // A link reference definition applies to the whole message, including blocks
      // rendered before the definition arrived, and markdown-it only resolves it when
      // the definition and its uses are rendered together.
      if (hasLinkReferences(source)) {
        reset();
        tailNodes = [...htmlToFragment(renderMarkdown(source)).childNodes];
        element.append(...tailNodes);
        return;
      }
      render();
    },
  };
}

function selectContents(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

const copyResetTimers = new WeakMap();
const restingLabels = new WeakMap();

function showCopied(button) {
  if (!restingLabels.has(button)) {
    restingLabels.set(button, button.textContent);
  }
  button.textContent = labels.copied;
  clearTimeout(copyResetTimers.get(button));
  copyResetTimers.set(
    button,
    setTimeout(() => {
      button.textContent = restingLabels.get(button);
    }, COPIED_LABEL_MS),
  );
}

/**
 * Copy `text` to the clipboard and show the "copied" label on `button` for a moment.
 * Returns whether the clipboard took the text.
 */
export async function copyText(button, text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    return false;
  }
  showCopied(button);
  return true;
}

async function copyCode(button) {
  const code = button.closest(".code-block")?.querySelector("pre code");
  if (!code) {
    return;
  }
  // markdown-it keeps the newline before the closing fence, which the copy leaves out.
  const text = code.textContent.replace(/\n$/, "");
  try {
    await navigator.clipboard.writeText(text);
    showCopied(button);
  } catch {
    // navigator.clipboard is missing outside secure contexts, and writeText can be
    // denied. Selecting the code lets the user copy it with the keyboard instead.
    selectContents(code);
  }
}

const installedRoots = new WeakSet();

/**
 * Install one delegated click listener on `root` for the copy buttons of all code
 * blocks inside it, including blocks rendered later. Returns a function that removes it.
 */
export function installCopyHandler(root) {
  if (installedRoots.has(root)) {
    return () => {};
  }
  const onClick = (event) => {
    const button = event.target.closest?.("[data-copy]");
    if (button && root.contains(button)) {
      copyCode(button);
    }
  };
  root.addEventListener("click", onClick);
  installedRoots.add(root);
  return () => {
    root.removeEventListener("click", onClick);
    installedRoots.delete(root);
  };
}
