// Renders a conversation shared with a team, read only, with the chat's sanitised Markdown.
import { installCopyHandler, renderMarkdownFragment, setLabels } from "./markdown.js";

const root = document.querySelector("[data-shared-messages]");
// The code blocks' copy buttons speak the page's language.
setLabels({ copy: root.dataset.copyLabel, copied: root.dataset.copiedLabel });
const messages = JSON.parse(document.getElementById("shared-messages-data").textContent);

for (const message of messages) {
  const article = document.createElement("article");
  article.className = `message ${message.role}`;
  if (message.reasoning) {
    const details = document.createElement("details");
    details.className = "reasoning";
    const summary = document.createElement("summary");
    summary.textContent = root.dataset.reasoningLabel;
    const body = document.createElement("div");
    body.className = "markdown";
    body.replaceChildren(renderMarkdownFragment(message.reasoning));
    details.append(summary, body);
    article.append(details);
  }
  const content = document.createElement("div");
  content.className = "markdown";
  if (message.role === "user") {
    // People's own text is shown as typed, never as Markdown.
    content.textContent = message.content;
    content.classList.add("plain");
  } else {
    content.replaceChildren(renderMarkdownFragment(message.content));
  }
  article.append(content);
  root.append(article);
}
installCopyHandler(root);
