// Tools for the open conversation in the chat header: the public share link and export.

const data = JSON.parse(document.getElementById("chat-data").textContent);
const strings = data.strings;

const tools = document.querySelector("[data-conversation-tools]");
const dialog = document.querySelector("[data-share-dialog]");
const openButton = document.querySelector("[data-share-open]");
const reasoningBox = dialog.querySelector("[data-share-reasoning]");
const urlRow = dialog.querySelector("[data-share-url-row]");
const urlInput = dialog.querySelector("[data-share-url]");
const copyButton = dialog.querySelector("[data-share-copy]");
const createButton = dialog.querySelector("[data-share-create]");
const revokeButton = dialog.querySelector("[data-share-revoke]");
const status = dialog.querySelector("[data-share-status]");
// Present when the reader belongs to a team and the page opened with a conversation.
const teamForm = document.getElementById("team-share-form");
const teamSelect = dialog.querySelector("#share-team");

let conversation = data.conversation;
let share = data.share ?? { url: null, show_reasoning: false };

function shareUrl(suffix = "") {
  return `/chat/api/conversations/${conversation}/share/${suffix}`;
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRFToken": data.csrfToken, "Content-Type": "application/json" },
    body: JSON.stringify(body ?? {}),
    credentials: "same-origin",
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(payload.error || `HTTP ${response.status}`);
  return payload;
}

function paint() {
  const linked = share.url !== null;
  reasoningBox.checked = share.show_reasoning;
  urlRow.hidden = !linked;
  urlInput.value = share.url ?? "";
  createButton.hidden = linked;
  revokeButton.hidden = !linked;
}

async function run(action, message) {
  status.textContent = "";
  try {
    share = await action();
    paint();
    status.textContent = message;
  } catch (error) {
    status.textContent = strings.actionFailed.replace("%(error)s", error.message);
  }
}

openButton.addEventListener("click", () => {
  status.textContent = "";
  paint();
  dialog.showModal();
});

createButton.addEventListener("click", async () => {
  await run(() => post(shareUrl(), { show_reasoning: reasoningBox.checked }), strings.shareCreated);
  if (share.url) urlInput.select();
});

// With a link in place, the reasoning choice applies to it at once.
reasoningBox.addEventListener("change", () => {
  if (share.url === null) return;
  run(() => post(shareUrl(), { show_reasoning: reasoningBox.checked }), strings.shareUpdated);
});

revokeButton.addEventListener("click", async () => {
  await run(() => post(shareUrl("revoke/")), strings.shareRevoked);
  createButton.focus();
});

copyButton.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(urlInput.value);
    status.textContent = strings.linkCopied;
  } catch {
    // Without clipboard access the selected text can still be copied by hand.
    urlInput.select();
  }
});

// A conversation started on this page gets its tools once the server accepts it.
document.addEventListener("chat:conversation-created", (event) => {
  if (conversation === event.detail.id) return;
  const previous = conversation;
  conversation = event.detail.id;
  share = { url: null, show_reasoning: false };
  tools.hidden = false;
  for (const link of document.querySelectorAll("[data-export-link]")) {
    link.href = `/chat/${conversation}/export.${link.dataset.exportLink}`;
  }
  // The team form is rendered for the conversation the page opened with.
  if (teamForm && previous) {
    teamForm.action = teamForm.action.replace(previous, conversation);
    teamSelect.value = "";
  }
});

// The open conversation was deleted from the list: the page shows a new chat, without tools.
document.addEventListener("chat:conversation-deleted", (event) => {
  if (conversation !== event.detail.id) return;
  if (dialog.open) dialog.close();
  exportMenu.open = false;
  tools.hidden = true;
});

// The export menu closes on a click elsewhere, on a chosen link, or on Escape.
const exportMenu = document.querySelector("[data-export-menu]");
document.addEventListener("click", (event) => {
  if (exportMenu.open && !exportMenu.contains(event.target)) exportMenu.open = false;
});
for (const link of exportMenu.querySelectorAll("a")) {
  link.addEventListener("click", () => {
    exportMenu.open = false;
  });
}
exportMenu.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && exportMenu.open) {
    event.stopPropagation();
    exportMenu.open = false;
    exportMenu.querySelector("summary").focus();
  }
});
