// The conversation list: groups by date, search, rename, pin, delete with undo, and
// loading older conversations as the list scrolls.

const data = JSON.parse(document.getElementById("chat-data").textContent);
const strings = data.strings;

const nav = document.querySelector("[data-conversation-nav]");
const list = nav.querySelector("[data-conversation-list]");
const search = document.querySelector("[data-conversation-search]");
const toast = document.querySelector("[data-toast]");

const UNDO_SECONDS = 10;
const SEARCH_DELAY_MS = 250;
const DAY_MS = 24 * 3600 * 1000;

const state = {
  items: [], // conversation items in list order
  next: data.sidebar.next, // cursor of the next page, or null
  query: "",
  loading: false,
  current: data.conversation,
};

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

function csrfHeaders() {
  return { "X-CSRFToken": data.csrfToken, "Content-Type": "application/json" };
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: csrfHeaders(),
    body: JSON.stringify(body ?? {}),
    credentials: "same-origin",
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(payload.error || `HTTP ${response.status}`);
  return payload;
}

// ---- Grouping by date, on the reader's own calendar ---------------------------

function startOfDay(date) {
  return new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime();
}

function groupOf(item, today) {
  if (item.pinned && !state.query) return "groupPinned";
  const day = startOfDay(new Date(item.updated_at));
  if (day >= today) return "groupToday";
  if (day >= today - DAY_MS) return "groupYesterday";
  if (day >= today - 7 * DAY_MS) return "groupWeek";
  return "groupOlder";
}

function itemElement(item) {
  const li = document.createElement("li");
  li.className = "conversation-item";
  li.dataset.itemId = item.id;
  const link = document.createElement("a");
  link.href = `/chat/${item.id}/`;
  link.dataset.conversationId = item.id;
  link.textContent = item.title || strings.untitled;
  if (item.id === state.current) link.setAttribute("aria-current", "page");
  if (item.snippet) {
    const snippet = document.createElement("span");
    snippet.className = "conversation-snippet";
    snippet.textContent = item.snippet;
    link.append(snippet);
  }
  const more = document.createElement("button");
  more.type = "button";
  more.className = "icon-button conversation-more";
  more.textContent = "⋯";
  more.setAttribute("aria-label", format(strings.moreActions, { title: link.firstChild.textContent }));
  more.setAttribute("aria-haspopup", "true");
  more.setAttribute("aria-expanded", "false");
  more.addEventListener("click", () => toggleMenu(li, item, more));
  li.append(link, more);
  return li;
}

function paint() {
  const today = startOfDay(new Date());
  list.replaceChildren();
  if (state.items.length === 0) {
    const empty = document.createElement("li");
    empty.className = "empty";
    empty.dataset.emptyList = "";
    empty.textContent = state.query
      ? format(strings.noMatches, { query: state.query })
      : list.dataset.emptyText;
    list.append(empty);
  }
  let group = null;
  let groupList = null;
  for (const item of state.items) {
    const name = state.query ? "searchResults" : groupOf(item, today);
    if (name !== group) {
      group = name;
      const section = document.createElement("li");
      section.className = "conversation-group";
      const heading = document.createElement("h2");
      heading.className = "sidebar-heading";
      heading.id = `group-${name}`;
      heading.textContent = strings[name];
      groupList = document.createElement("ul");
      groupList.setAttribute("aria-labelledby", heading.id);
      section.append(heading, groupList);
      section.dataset.group = name;
      list.append(section);
    }
    groupList.append(itemElement(item));
  }
  if (state.next) {
    const sentinel = document.createElement("li");
    sentinel.className = "list-sentinel";
    sentinel.textContent = strings.loadingMore;
    list.append(sentinel);
    observer.observe(sentinel);
  }
}

// ---- Loading pages and searching ------------------------------------------------

async function fetchPage(cursor) {
  const params = new URLSearchParams();
  if (state.query) params.set("q", state.query);
  if (cursor) params.set("before", cursor);
  const response = await fetch(`/chat/api/conversations/?${params}`, {
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function loadMore() {
  if (state.loading || !state.next) return;
  state.loading = true;
  const query = state.query;
  try {
    const page = await fetchPage(state.next);
    if (query !== state.query) return; // the search changed meanwhile
    const known = new Set(state.items.map((item) => item.id));
    state.items.push(...page.items.filter((item) => !known.has(item.id)));
    state.next = page.next;
    paint();
  } finally {
    state.loading = false;
  }
}

const observer = new IntersectionObserver(
  (entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadMore();
  },
  { root: nav, rootMargin: "200px" },
);

let searchTimer = 0;
search?.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, SEARCH_DELAY_MS);
});
search?.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && search.value) {
    event.stopPropagation();
    search.value = "";
    runSearch();
  }
});

async function runSearch() {
  const query = search.value.trim();
  if (query === state.query) return;
  state.query = query;
  const page = await fetchPage(null);
  if (query !== state.query) return;
  state.items = page.items;
  state.next = page.next;
  paint();
}

// ---- Rename, pin, delete ------------------------------------------------------------

let openMenu = null;

function closeMenu() {
  if (!openMenu) return;
  openMenu.menu.remove();
  openMenu.button.setAttribute("aria-expanded", "false");
  openMenu = null;
}

function toggleMenu(li, item, button) {
  const wasOpen = openMenu?.button === button;
  closeMenu();
  if (wasOpen) return;
  const menu = document.createElement("div");
  menu.className = "conversation-menu";
  menu.setAttribute("role", "menu");
  const entries = [
    [strings.rename, () => startRename(li, item)],
    [item.pinned ? strings.unpin : strings.pin, () => setPinned(item, !item.pinned)],
    [strings.delete, () => remove(item)],
  ];
  for (const [label, action] of entries) {
    const entry = document.createElement("button");
    entry.type = "button";
    entry.setAttribute("role", "menuitem");
    entry.textContent = label;
    entry.addEventListener("click", () => {
      closeMenu();
      action();
    });
    menu.append(entry);
  }
  menu.addEventListener("keydown", (event) => {
    const buttons = [...menu.querySelectorAll("button")];
    const index = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown") buttons[(index + 1) % buttons.length].focus();
    else if (event.key === "ArrowUp") buttons[(index - 1 + buttons.length) % buttons.length].focus();
    else if (event.key === "Escape") {
      closeMenu();
      button.focus();
    } else return;
    event.preventDefault();
  });
  li.append(menu);
  button.setAttribute("aria-expanded", "true");
  openMenu = { menu, button };
  menu.querySelector("button").focus();
}

document.addEventListener("click", (event) => {
  if (openMenu && !openMenu.menu.contains(event.target) && event.target !== openMenu.button) {
    closeMenu();
  }
});

function startRename(li, item) {
  const link = li.querySelector("a");
  const input = document.createElement("input");
  input.type = "text";
  input.className = "rename-input";
  input.value = item.title;
  input.setAttribute("aria-label", strings.renameLabel);
  input.maxLength = 200;
  link.hidden = true;
  li.prepend(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== item.title) {
      try {
        const updated = await postJson(`/chat/api/conversations/${item.id}/`, { title });
        item.title = updated.title;
        if (item.id === state.current) {
          const heading = document.querySelector("[data-chat-title]");
          if (heading) heading.textContent = updated.title;
          document.title = `${updated.title} · chatsite`;
        }
      } catch (error) {
        showToast(format(strings.actionFailed, { error: error.message }));
      }
    }
    paint();
    list.querySelector(`[data-item-id="${item.id}"] .conversation-more`)?.focus();
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      finish(true);
    } else if (event.key === "Escape") {
      event.stopPropagation();
      finish(false);
    }
  });
  input.addEventListener("blur", () => finish(true));
}

async function setPinned(item, pinned) {
  try {
    await postJson(`/chat/api/conversations/${item.id}/`, { pinned });
  } catch (error) {
    showToast(format(strings.actionFailed, { error: error.message }));
    return;
  }
  item.pinned = pinned;
  // Pinned ones head the list, newest pin first; the others keep date order.
  state.items = state.items.filter((other) => other !== item);
  if (pinned) {
    state.items.unshift(item);
  } else {
    const index = state.items.findIndex(
      (other) => !other.pinned && other.updated_at < item.updated_at,
    );
    state.items.splice(index < 0 ? state.items.length : index, 0, item);
  }
  paint();
}

async function remove(item) {
  try {
    await postJson(`/chat/api/conversations/${item.id}/delete/`);
  } catch (error) {
    showToast(format(strings.actionFailed, { error: error.message }));
    return;
  }
  const index = state.items.indexOf(item);
  const wasOpen = item.id === state.current;
  state.items.splice(index, 1);
  if (wasOpen) state.current = null;
  paint();
  // The chat page (chat.js) and its header tools leave a deleted open conversation.
  document.dispatchEvent(
    new CustomEvent("chat:conversation-deleted", { detail: { id: item.id } }),
  );
  showToast(format(strings.deleted, { title: item.title || strings.untitled }), async () => {
    await postJson(`/chat/api/conversations/${item.id}/restore/`);
    // Reopen it, unless the reader has started another conversation since.
    if (wasOpen && state.current === null) {
      window.location.assign(`/chat/${item.id}/`);
      return;
    }
    state.items.splice(Math.min(index, state.items.length), 0, item);
    paint();
  });
}

let toastTimer = 0;

function showToast(text, undo) {
  clearTimeout(toastTimer);
  toast.replaceChildren();
  const message = document.createElement("span");
  message.textContent = text;
  toast.append(message);
  if (undo) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link-button";
    button.dataset.undo = "";
    button.textContent = strings.undo;
    button.addEventListener("click", async () => {
      clearTimeout(toastTimer);
      toast.hidden = true;
      try {
        await undo();
      } catch (error) {
        showToast(format(strings.actionFailed, { error: error.message }));
      }
    });
    toast.append(button);
  }
  toast.hidden = false;
  toastTimer = setTimeout(() => {
    toast.hidden = true;
  }, UNDO_SECONDS * 1000);
}

// ---- New conversations from the chat script -------------------------------------------

document.addEventListener("chat:conversation-created", (event) => {
  const item = event.detail;
  state.current = item.id;
  if (state.items.some((other) => other.id === item.id)) return;
  const firstUnpinned = state.items.findIndex((other) => !other.pinned);
  state.items.splice(firstUnpinned < 0 ? state.items.length : firstUnpinned, 0, item);
  if (!state.query) paint();
});

list.dataset.emptyText = list.querySelector("[data-empty-list]")?.textContent ?? "";
state.items = data.sidebar.items;
paint();
