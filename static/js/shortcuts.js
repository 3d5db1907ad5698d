// Keyboard shortcuts of the chat page and their help dialog.
//
// Alt+letter (Option on a Mac) is matched by `event.code`, the physical key, so it
// works whatever the keyboard layout or the character Option would type. The letters
// avoid the browsers' own Alt keys (Firefox's menus F, E, V, S, B, T, H, Chrome's D,
// E, F) and the Mac's dead keys (E, I, N, U), which would start an accent.

const root = document.querySelector("[data-chat-root]");
const input = root.querySelector("[data-composer-input]");
const search = root.querySelector("[data-conversation-search]");
const help = document.querySelector("[data-shortcuts-dialog]");

function visible(element) {
  return element !== null && !element.hidden && element.getClientRects().length > 0;
}

function lastReplyButton(selector) {
  const replies = root.querySelectorAll("[data-messages] article.message.assistant");
  const button = replies[replies.length - 1]?.querySelector(selector);
  return button && !button.hidden && !button.disabled ? button : null;
}

function focusSearch() {
  // On a phone the list is a closed drawer: open it first.
  const opener = root.querySelector("[data-sidebar-open]");
  if (!visible(search) || search.getBoundingClientRect().right <= 0) {
    if (visible(opener)) opener.click();
  }
  search.focus();
  search.select();
}

const ALT_SHORTCUTS = {
  KeyO: () => root.querySelector("[data-new-chat]").click(),
  KeyM: () => input.focus(),
  KeyX: () => {
    const stop = root.querySelector("[data-stop]");
    if (!stop.hidden) stop.click();
  },
  KeyR: () => lastReplyButton("[data-regenerate]")?.click(),
  KeyC: () => lastReplyButton("[data-copy-answer]")?.click(),
  KeyK: focusSearch,
};

function isTyping(target) {
  return target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]");
}

function toggleHelp() {
  if (help.open) {
    help.close();
  } else {
    document.querySelector("dialog[open]")?.close();
    help.showModal();
  }
}

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.isComposing) return;
  const ctrl = event.ctrlKey || event.metaKey;
  if (ctrl && !event.altKey && (event.code === "Slash" || event.key === "/")) {
    event.preventDefault();
    toggleHelp();
    return;
  }
  if (event.key === "?" && !ctrl && !event.altKey && !isTyping(event.target)) {
    event.preventDefault();
    toggleHelp();
    return;
  }
  if (!event.altKey || ctrl || event.shiftKey) return;
  const action = ALT_SHORTCUTS[event.code];
  // Shortcuts act on the page behind a dialog only once the dialog is closed.
  if (!action || document.querySelector("dialog[open]")) return;
  event.preventDefault();
  action();
});

document.querySelector("[data-shortcuts-open]").addEventListener("click", toggleHelp);
