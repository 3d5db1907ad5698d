// Exposes the Markdown module to Playwright tests, which call it through page.evaluate.
import * as markdown from "/static/js/markdown.js";

window.markdown = markdown;
document.documentElement.dataset.ready = "true";
