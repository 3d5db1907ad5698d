// The chat page: composer, message list and the live stream of replies.

import { copyText, createStreamRenderer, installCopyHandler, setLabels } from "./markdown.js";
import { ChatSocket } from "./socket.js";

const data = JSON.parse(document.getElementById("chat-data").textContent);
const strings = data.strings;
const IN_FLIGHT = new Set(["queued", "streaming"]);

const root = document.querySelector("[data-chat-root]");
const list = root.querySelector("[data-messages]");
const form = root.querySelector("[data-composer]");
const input = root.querySelector("[data-composer-input]");
const sendButton = root.querySelector("[data-send]");
const stopButton = root.querySelector("[data-stop]");
const composerError = root.querySelector("[data-composer-error]");
const charCount = root.querySelector("[data-char-count]");
const connectionState = root.querySelector("[data-connection-state]");
const titleElement = root.querySelector("[data-chat-title]");
const welcome = root.querySelector("[data-welcome]");
const conversationList = root.querySelector("[data-conversation-list]");
const modelSelect = root.querySelector("[data-model-select]");
// Present for members of a team: the team the conversation is billed to.
const teamSelect = root.querySelector("[data-team-select]");
const simulatorNotice = root.querySelector("[data-simulator-notice]");
const quotaElement = root.querySelector("[data-quota]");
// A polite live region: a reply is announced once when it ends, never token by token,
// because the message list itself is not live.
const announcer = root.querySelector("[data-announcer]");

setLabels({ copy: strings.copy, copied: strings.copied });
installCopyHandler(list);

// Milliseconds to add to this browser's clock to get the server's, so a timer that
// counts from a server timestamp shows the same seconds whatever the local clock says.
let clockOffset = data.serverTime ? Date.parse(data.serverTime) - Date.now() : 0;

function serverNow() {
  return Date.now() + clockOffset;
}

function serverMs(iso) {
  return iso ? Date.parse(iso) : null;
}

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

const state = {
  quotas: { ...data.quota }, // model class -> {limit, remaining, resets_at}
  blockedUntil: 0, // no send before this time (ms), after a quota or rate error
  conversation: data.conversation,
  messages: new Map(), // id -> view of one message
  // The conversation's tree: parent id ("root" for first messages) -> child ids, oldest
  // first, and the child shown for each parent. The page shows one branch.
  children: new Map(),
  shownChild: new Map(),
  pending: null, // {clientId, content, kind, ...} until the server accepts or rejects it
};

// ---- Rendering one message -------------------------------------------------

function createMessageView(message) {
  const article = document.createElement("article");
  article.className = `message ${message.role}`;
  article.dataset.messageId = message.id;

  const view = {
    id: message.id,
    role: message.role,
    element: article,
    status: message.status,
    seq: message.seq ?? 0,
    reasoning: message.reasoning ?? "",
    content: message.content ?? "",
    thinkingSeconds: message.thinking_seconds,
    // Server times (ms) of the first reasoning token and the first answer token.
    reasoningStartedAt: serverMs(message.reasoning_started_at),
    answerStartedAt: serverMs(message.answer_started_at),
    timer: null,
    lastFrameAt: Date.now(), // the resync watchdog's clock (ms, this browser's)
  };

  view.parentKey = message.parent ?? "root";
  if (message.role === "user") {
    const body = document.createElement("div");
    body.className = "user-text";
    body.textContent = view.content;
    article.append(body);
    view.body = body;
    article.append(createActions(view));
    return view;
  }

  const details = document.createElement("details");
  details.className = "reasoning";
  details.hidden = true;
  const summary = document.createElement("summary");
  const reasoningBody = document.createElement("div");
  reasoningBody.className = "reasoning-body";
  const reasoningCopy = document.createElement("button");
  reasoningCopy.type = "button";
  reasoningCopy.className = "reasoning-copy";
  reasoningCopy.dataset.copyReasoning = "";
  reasoningCopy.textContent = strings.copyReasoning;
  reasoningCopy.addEventListener("click", () => copyText(reasoningCopy, view.reasoning));
  details.append(summary, reasoningBody, reasoningCopy);

  const answer = document.createElement("div");
  answer.className = "answer markdown";
  const status = document.createElement("div");
  status.className = "message-status";
  status.setAttribute("role", "status");

  article.append(details, answer, status, createActions(view));
  Object.assign(view, {
    details,
    summary,
    reasoningBody,
    answer,
    statusElement: status,
    renderer: createStreamRenderer(answer),
  });
  return view;
}

function paintAssistant(view) {
  const hasReasoning = view.reasoning.length > 0;
  view.details.hidden = !hasReasoning;
  const shown = view.reasoningBody.textContent;
  if (shown !== view.reasoning) {
    // Append the new text only, so a long reasoning is not re-laid out on every delta.
    if (shown && view.reasoning.startsWith(shown)) {
      view.reasoningBody.append(view.reasoning.slice(shown.length));
    } else {
      view.reasoningBody.textContent = view.reasoning;
    }
  }
  view.renderer.update(view.content);
  paintThinkingLabel(view);
  paintStatus(view);
}

// The panel is open while the model reasons. When the answer starts it closes, unless
// the reader's preference (or the site default) keeps it open. A panel the reader
// opened or closed by hand is left alone.
function paintThinkingLabel(view) {
  const answering = view.content.length > 0 || !IN_FLIGHT.has(view.status);
  if (answering) {
    stopThinkingTimer(view);
    if (view.details.dataset.settled !== "1") {
      view.details.open = data.reasoningPanel === "expanded";
      view.details.dataset.settled = "1";
    }
    const seconds = view.thinkingSeconds ?? thoughtSeconds(view);
    view.summary.textContent =
      seconds === null ? strings.reasoning : format(strings.thoughtFor, { seconds });
    return;
  }
  if (view.reasoning.length > 0) {
    if (view.details.dataset.opened !== "1") {
      view.details.open = true;
      view.details.dataset.opened = "1";
    }
    view.reasoningStartedAt ??= serverNow();
    startThinkingTimer(view);
    view.summary.textContent = format(strings.thinkingFor, { seconds: elapsedSeconds(view) });
  }
}

function elapsedSeconds(view) {
  if (view.reasoningStartedAt === null) return null;
  return Math.max(0, Math.round((serverNow() - view.reasoningStartedAt) / 1000));
}

function thoughtSeconds(view) {
  if (view.reasoningStartedAt === null) return null;
  const end = view.answerStartedAt ?? serverNow();
  return Math.max(0, Math.round((end - view.reasoningStartedAt) / 1000));
}

function startThinkingTimer(view) {
  if (view.timer !== null) return;
  view.timer = window.setInterval(() => paintThinkingLabel(view), 1000);
}

function stopThinkingTimer(view) {
  if (view.timer === null) return;
  window.clearInterval(view.timer);
  view.timer = null;
  if (view.reasoningStartedAt !== null && view.thinkingSeconds == null) {
    view.thinkingSeconds = thoughtSeconds(view);
  }
}

function paintStatus(view, waiting) {
  const element = view.statusElement;
  element.className = `message-status status-${view.status}`;
  let text = "";
  if (waiting) {
    text = format(strings.waiting, { attempt: waiting.attempt, seconds: waiting.retry_in });
  } else if (view.status === "queued") {
    text = strings.queued;
  } else if (view.status === "streaming" && !view.reasoning && !view.content) {
    text = strings.thinking;
  } else if (view.status === "stopped") {
    text = strings.stopped;
  } else if (view.status === "truncated") {
    text = strings.truncated;
  } else if (view.status === "failed" || view.status === "interrupted") {
    const code = view.error?.code;
    text = (code && data.replyErrors[code]) || strings[view.status];
  }
  element.textContent = text;
  element.hidden = text === "";
  view.element.classList.toggle("in-flight", IN_FLIGHT.has(view.status));
  paintRetry(view);
}

// ---- Retry -------------------------------------------------------------------
// The last reply, when it was interrupted or failed for a reason a second try
// can fix, gets a Retry button that sends the question before it again.

const RETRYABLE = new Set([
  "interrupted",
  "rate_limited",
  "server_error",
  "overloaded",
  "connect_failed",
  "timeout",
  "stream_interrupted",
  "upstream_error",
  "upstream_capacity",
  "internal_error",
]);

function paintRetry(view) {
  const show =
    (view.status === "interrupted" || view.status === "failed") &&
    RETRYABLE.has(view.error?.code ?? view.status) &&
    list.lastElementChild === view.element;
  if (show && !view.retryButton) {
    view.retryButton = document.createElement("button");
    view.retryButton.type = "button";
    view.retryButton.className = "button retry-button";
    view.retryButton.dataset.retry = "";
    view.retryButton.textContent = strings.retry;
    view.retryButton.addEventListener("click", () => retry(view));
    view.element.append(view.retryButton);
  }
  if (view.retryButton) view.retryButton.hidden = !show;
}

function retry(view) {
  const question = view.element.previousElementSibling;
  const asked = question && state.messages.get(question.dataset.messageId);
  if (!asked || asked.role !== "user") return;
  if (state.pending !== null || activeReply() !== null) return;
  showComposerError("");
  state.pending = {
    clientId: crypto.randomUUID(),
    content: asked.content,
    model: modelSelect?.value ?? null,
    retry: true, // the composer's own text is not this message: keep it
  };
  view.retryButton.hidden = true;
  sendPending();
  refreshControls();
}

// ---- Versions: regenerate, edit, and the "2 / 3" switcher --------------------

function createActions(view) {
  const bar = document.createElement("div");
  bar.className = "message-actions";
  const switcher = document.createElement("span");
  switcher.className = "version-switcher";
  switcher.hidden = true;
  const previous = symbolButton("‹", strings.previousVersion, () => showSibling(view, -1));
  const next = symbolButton("›", strings.nextVersion, () => showSibling(view, 1));
  const position = document.createElement("span");
  position.className = "version-position";
  switcher.append(previous, position, next);
  bar.append(switcher);
  Object.assign(view, { actions: bar, switcher, position, previous, next });

  if (view.role === "user") {
    view.editButton = actionButton(strings.edit, strings.editLabel, () => startEdit(view));
    bar.append(view.editButton);
  } else {
    view.copyButton = actionButton(strings.copy, strings.copyAnswer, () =>
      copyText(view.copyButton, view.content),
    );
    view.regenerateButton = actionButton(strings.regenerate, strings.regenerateLabel, () =>
      regenerate(view),
    );
    // The keyboard shortcuts (shortcuts.js) find these buttons by their data attributes.
    view.copyButton.dataset.copyAnswer = "";
    view.regenerateButton.dataset.regenerate = "";
    bar.append(view.copyButton, view.regenerateButton);
  }
  return bar;
}

// A button named by its visible word. The longer text becomes its tooltip and accessible
// description, so the accessible name starts with the visible label (WCAG 2.5.3).
function actionButton(text, description, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "action-button";
  button.textContent = text;
  if (description && description !== text) button.title = description;
  button.addEventListener("click", onClick);
  return button;
}

// A button that shows only a symbol, so its accessible name is the label.
function symbolButton(symbol, label, onClick) {
  const button = actionButton(symbol, null, onClick);
  button.setAttribute("aria-label", label);
  return button;
}

function registerInTree(view) {
  const siblings = state.children.get(view.parentKey) ?? [];
  if (!siblings.includes(view.id)) siblings.push(view.id);
  state.children.set(view.parentKey, siblings);
}

// The branch on screen: from the first message, the shown child of each message
// (the newest version unless the reader picked another).
function shownPath() {
  const path = [];
  let key = "root";
  for (;;) {
    const siblings = state.children.get(key);
    if (!siblings?.length) return path;
    const id = state.shownChild.get(key) ?? siblings[siblings.length - 1];
    const view = state.messages.get(id);
    if (!view || path.includes(view)) return path;
    path.push(view);
    key = id;
  }
}

function paintBranch() {
  const path = shownPath();
  const shown = [...list.querySelectorAll(":scope > article.message")];
  const same = path.length === shown.length && path.every((v, i) => v.element === shown[i]);
  if (!same) {
    for (const element of shown) element.remove();
    list.append(...path.map((view) => view.element));
  }
  const reply = activeReply();
  const last = path[path.length - 1];
  for (const view of path) {
    const siblings = state.children.get(view.parentKey) ?? [view.id];
    const index = siblings.indexOf(view.id);
    view.switcher.hidden = siblings.length < 2;
    view.position.textContent = format(strings.versionOf, {
      index: (index + 1).toLocaleString(document.documentElement.lang),
      count: siblings.length.toLocaleString(document.documentElement.lang),
    });
    view.previous.disabled = index <= 0 || reply !== null;
    view.next.disabled = index >= siblings.length - 1 || reply !== null;
    if (view.role === "assistant") {
      const ended = !IN_FLIGHT.has(view.status);
      view.copyButton.hidden = !ended || !view.content;
      view.regenerateButton.hidden = !ended || view !== last || reply !== null;
    } else {
      view.editButton.hidden = reply !== null || view.editing === true;
    }
    if (view.role === "assistant") paintRetry(view);
  }
}

function showSibling(view, step) {
  const siblings = state.children.get(view.parentKey) ?? [];
  const target = siblings[siblings.indexOf(view.id) + step];
  if (!target) return;
  state.shownChild.set(view.parentKey, target);
  paintBranch();
  state.messages.get(target)?.[step < 0 ? "previous" : "next"].focus();
}

// The last message on screen: a new question follows it.
function shownLeaf() {
  const path = shownPath();
  return path.length ? path[path.length - 1] : null;
}

function regenerate(view) {
  if (state.pending !== null || activeReply() !== null) return;
  showComposerError("");
  state.pending = {
    kind: "regenerate",
    clientId: crypto.randomUUID(),
    message: view.id,
    model: modelSelect?.value ?? null,
    retry: true, // the composer's text is not part of this send: keep it
  };
  sendPending();
  refreshControls();
}

function startEdit(view) {
  if (view.editing) return;
  view.editing = true;
  const editor = document.createElement("form");
  editor.className = "edit-form";
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.textContent = strings.editLabel;
  const area = document.createElement("textarea");
  area.value = view.content;
  area.rows = Math.min(10, view.content.split("\n").length + 1);
  label.htmlFor = area.id = `edit-${view.id}`;
  const error = document.createElement("div");
  error.className = "composer-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  const buttons = document.createElement("div");
  buttons.className = "edit-buttons";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "button";
  cancel.textContent = strings.cancel;
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "button primary";
  save.textContent = strings.saveAndSend;
  buttons.append(cancel, save);
  editor.append(label, area, error, buttons);
  view.body.hidden = true;
  view.element.insertBefore(editor, view.actions);
  view.editor = { form: editor, area, error };
  paintBranch();
  area.focus();

  const close = () => {
    editor.remove();
    view.body.hidden = false;
    view.editing = false;
    view.editor = null;
    paintBranch();
    view.editButton.focus();
  };
  cancel.addEventListener("click", close);
  area.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  editor.addEventListener("submit", (event) => {
    event.preventDefault();
    const content = area.value;
    if (!content.trim() || state.pending !== null || activeReply() !== null) return;
    if (content.length > inputLimit()) {
      error.textContent = format(strings.tooLong, { count: content.length, limit: inputLimit() });
      error.hidden = false;
      return;
    }
    state.pending = {
      kind: "edit",
      clientId: crypto.randomUUID(),
      message: view.id,
      content,
      model: modelSelect?.value ?? null,
      retry: true,
      view,
      close,
    };
    sendPending();
    refreshControls();
  });
}

function addMessage(message) {
  if (state.messages.has(message.id)) return state.messages.get(message.id);
  const view = createMessageView(message);
  view.error = message.error;
  state.messages.set(message.id, view);
  welcome.hidden = true;
  for (const button of list.querySelectorAll("[data-retry]")) button.hidden = true;
  registerInTree(view);
  paintBranch();
  if (view.role === "assistant") {
    if (view.status !== "streaming" && view.status !== "queued") {
      view.renderer.finish(view.content);
    }
    paintAssistant(view);
  }
  return view;
}

// ---- Scrolling -------------------------------------------------------------

// Whether the list follows the end of the conversation as replies grow. Scrolling up
// turns it off, and scrolling back to the bottom or sending turns it on again.
let following = true;

function isNearBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

list.addEventListener("scroll", () => {
  following = isNearBottom();
});

// Scroll to the end while following. The Markdown renderer draws new text in the next
// animation frame, so the list scrolls again in a frame callback requested after the
// renderer's, which therefore runs after the text is drawn.
function keepScrolled() {
  if (!following) return;
  list.scrollTop = list.scrollHeight;
  window.requestAnimationFrame(() => {
    if (following) list.scrollTop = list.scrollHeight;
  });
}

// ---- Composer --------------------------------------------------------------

function activeReply() {
  for (const view of state.messages.values()) {
    if (view.role === "assistant" && IN_FLIGHT.has(view.status)) return view;
  }
  return null;
}

// The site's limit, or the plan's for the selected model when it is smaller.
function inputLimit() {
  const planLimit = selectedQuota()?.max_input_chars;
  return planLimit ? Math.min(planLimit, data.maxInputChars) : data.maxInputChars;
}

function selectedQuota() {
  const model = data.models.find((entry) => entry.slug === modelSelect?.value);
  return model ? state.quotas[model.class] : undefined;
}

function paintQuota() {
  const quota = selectedQuota();
  if (!quota || quota.remaining === null) {
    quotaElement.textContent = "";
    return;
  }
  let template = strings.quotaLeft;
  if (quota.remaining === 1) template = strings.quotaLeftOne;
  if (quota.remaining === 0) template = strings.quotaNone;
  quotaElement.textContent = format(template, {
    count: quota.remaining,
    time: resetTime(quota),
  });
}

// The reset time on the reader's clock, 24-hour like the server's messages.
function resetTime(quota) {
  return new Intl.DateTimeFormat(document.documentElement.lang, {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(new Date(quota.resets_at));
}

function updateQuota(quota) {
  if (!quota) return;
  state.quotas[quota.model_class] = quota;
  paintQuota();
}

function blockSending(seconds) {
  state.blockedUntil = Date.now() + seconds * 1000;
  window.setTimeout(() => {
    // The server's count has reset or the minute has passed: allow a new try.
    const quota = selectedQuota();
    if (quota && quota.remaining === 0 && Date.now() >= new Date(quota.resets_at).getTime()) {
      quota.remaining = quota.limit;
      paintQuota();
    }
    refreshControls();
  }, seconds * 1000 + 50);
}

function refreshControls() {
  const reply = activeReply();
  const quota = selectedQuota();
  const blocked = Date.now() < state.blockedUntil || quota?.remaining === 0;
  stopButton.hidden = reply === null;
  sendButton.hidden = reply !== null;
  sendButton.disabled = state.pending !== null || modelSelect === null || blocked;
  input.readOnly = state.pending !== null;
  const length = input.value.length;
  const limit = inputLimit();
  charCount.textContent = length > limit * 0.8 ? `${length} / ${limit}` : "";
  charCount.classList.toggle("over", length > limit);
  paintBranch();
}

function showComposerError(text) {
  composerError.textContent = text;
  composerError.hidden = !text;
}

function autoGrow() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
}

function submit() {
  const content = input.value;
  if (!content.trim() || state.pending !== null || activeReply() !== null) return;
  if (sendButton.disabled) {
    // Say why nothing happens; the text stays in the composer.
    const quota = selectedQuota();
    if (quota?.remaining === 0) {
      showComposerError(format(strings.notSentQuota, { time: resetTime(quota) }));
    } else {
      const seconds = Math.ceil((state.blockedUntil - Date.now()) / 1000);
      if (seconds > 0) showComposerError(format(strings.blockedFor, { seconds }));
    }
    return;
  }
  if (content.length > inputLimit()) {
    showComposerError(format(strings.tooLong, { count: content.length, limit: inputLimit() }));
    return;
  }
  showComposerError("");
  // The text stays in the composer until the server accepts it.
  state.pending = { clientId: crypto.randomUUID(), content, model: modelSelect?.value ?? null };
  sendPending();
  refreshControls();
}

function sendPending() {
  if (state.pending === null) return;
  const { kind, clientId, message, content, model } = state.pending;
  if (kind === "regenerate") {
    socket.send({ type: "message.regenerate", message, client_id: clientId, model });
    return;
  }
  if (kind === "edit") {
    socket.send({ type: "message.edit", message, content, client_id: clientId, model });
    return;
  }
  // The question follows the last message on screen, so the history sent upstream
  // is the branch the reader sees. It is fixed at the first try, for resends.
  state.pending.parent ??= shownLeaf()?.role === "assistant" ? shownLeaf().id : null;
  socket.send({
    type: "message.send",
    conversation: state.conversation,
    content,
    client_id: clientId,
    model,
    ...(state.conversation && state.pending.parent ? { parent: state.pending.parent } : {}),
    ...(teamSelect ? { team: Number(teamSelect.value) } : {}),
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

// The reader's preference: Enter sends (Shift+Enter adds a line), or Ctrl+Enter
// (Cmd+Enter on a Mac) sends and Enter adds a line.
function isSendKey(event) {
  if (event.key !== "Enter" || event.isComposing || event.keyCode === 229) return false;
  if (data.sendKey === "ctrl_enter") return event.ctrlKey || event.metaKey;
  return !event.shiftKey;
}

input.addEventListener("keydown", (event) => {
  // Enter during IME composition picks a candidate (Chinese input); it must not send.
  if (isSendKey(event)) {
    event.preventDefault();
    submit();
  }
});

input.addEventListener("input", () => {
  autoGrow();
  refreshControls();
  if (input.value.length <= inputLimit()) showComposerError("");
});

function showSimulatorNotice() {
  const model = data.models.find((entry) => entry.slug === modelSelect?.value);
  if (simulatorNotice) simulatorNotice.hidden = !model?.simulator;
}

teamSelect?.addEventListener("change", () => {
  if (!state.blockedByTeam) return;
  state.blockedByTeam = false;
  state.blockedUntil = 0;
  showComposerError("");
  refreshControls();
});

modelSelect?.addEventListener("change", () => {
  showSimulatorNotice();
  paintQuota();
  refreshControls();
});

stopButton.addEventListener("click", () => {
  const reply = activeReply();
  if (reply) socket.send({ type: "message.stop", message: reply.id });
});

// ---- Server frames ----------------------------------------------------------

function onAccepted(frame) {
  if (state.pending?.clientId === frame.client_id) {
    const retried = state.pending.retry;
    state.pending.close?.();
    state.pending = null;
    if (!retried) {
      input.value = "";
      autoGrow();
    }
  }
  if (state.conversation !== frame.conversation) {
    state.conversation = frame.conversation;
    window.history.replaceState(null, "", `/chat/${frame.conversation}/`);
    titleElement.textContent = frame.title || strings.untitled;
    document.title = `${frame.title || strings.untitled} · chatsite`;
    addToSidebar(frame.conversation, frame.title);
  }
  // A new version is shown at once, whichever version was on screen before.
  for (const message of [frame.user_message, frame.assistant_message]) {
    state.shownChild.set(message.parent ?? "root", message.id);
    addMessage(message);
  }
  paintBranch();
  updateQuota(frame.quota);
  // Sending always brings the new exchange into view.
  following = true;
  keepScrolled();
  refreshControls();
}

// The conversation list (sidebar.js) adds the new conversation under "Today".
function addToSidebar(id, title) {
  document.dispatchEvent(
    new CustomEvent("chat:conversation-created", {
      detail: { id, title, updated_at: new Date(serverNow()).toISOString(), pinned: false },
    }),
  );
}

// The conversation list (sidebar.js) deleted the open conversation: show a new, empty
// chat in its place. A reply still being written is stopped, because it would go unread.
document.addEventListener("chat:conversation-deleted", (event) => {
  if (event.detail.id !== state.conversation) return;
  const reply = activeReply();
  if (reply) socket.send({ type: "message.stop", message: reply.id });
  for (const view of state.messages.values()) stopThinkingTimer(view);
  state.conversation = null;
  state.pending = null;
  state.messages.clear();
  state.children.clear();
  state.shownChild.clear();
  for (const element of list.querySelectorAll(":scope > article.message")) element.remove();
  welcome.hidden = false;
  following = true;
  titleElement.textContent = strings.newChat;
  document.title = "chatsite";
  window.history.replaceState(null, "", "/chat/");
  showComposerError("");
  refreshControls();
});

function requestSnapshot(messageId) {
  if (!state.conversation) return;
  socket.send({ type: "conversation.open", conversation: state.conversation, message: messageId });
}

// ---- Resync watchdog ----------------------------------------------------------
// A reply's end reaches the page as one `message.done` event. When that event is lost
// (a worker killed between storing the outcome and broadcasting it, a Redis pub/sub
// blip), the reply would look in flight until a reload. So a reply that is queued or
// streaming and has had no frame about it for RESYNC_SECONDS gets a snapshot request.
// The server sends the stored state back, and its conversation.open also ends a
// reply whose worker is lost as `interrupted`. One page-wide timer checks every
// WATCHDOG_CHECK_SECONDS, so a resync comes 20 to 25 s after the last frame.

const RESYNC_SECONDS = 20;
const WATCHDOG_CHECK_SECONDS = 5;

// Called when a frame about the reply arrives or a snapshot of it is requested.
function restartSilenceTimer(view) {
  view.lastFrameAt = Date.now();
}

function resyncSilentReplies() {
  // While the socket is down, the reconnect sends conversation.open for the whole
  // conversation, which brings a snapshot of every in-flight reply.
  if (!socket.isOpen) return;
  const now = Date.now();
  for (const view of state.messages.values()) {
    if (view.role !== "assistant" || !IN_FLIGHT.has(view.status)) continue;
    if (now - view.lastFrameAt < RESYNC_SECONDS * 1000) continue;
    restartSilenceTimer(view);
    requestSnapshot(view.id);
  }
}

window.setInterval(resyncSilentReplies, WATCHDOG_CHECK_SECONDS * 1000);

function onDelta(frame, kind) {
  const view = state.messages.get(frame.message);
  if (!view) return;
  if (frame.seq <= view.seq) return; // already shown (from a snapshot)
  if (frame.seq !== view.seq + 1) {
    // A delta was lost, for example a full channel dropped it: resync.
    requestSnapshot(view.id);
    return;
  }
  view.seq = frame.seq;
  if (view.status === "queued") view.status = "streaming";
  if (kind === "reasoning") {
    view.reasoning += frame.text;
    view.reasoningStartedAt ??= serverNow();
  } else {
    if (!view.content) view.answerStartedAt ??= serverNow();
    view.content += frame.text;
  }
  paintAssistant(view);
  keepScrolled();
  refreshControls();
}

function onSnapshot(frame) {
  const view = state.messages.get(frame.message);
  if (!view) return;
  if (frame.seq < view.seq && IN_FLIGHT.has(frame.status)) return; // older than what is shown
  // A snapshot ends the reply on screen when its `message.done` was lost.
  const ends = IN_FLIGHT.has(view.status) && !IN_FLIGHT.has(frame.status);
  view.seq = frame.seq;
  view.reasoning = frame.reasoning;
  view.content = frame.content;
  view.status = frame.status;
  if (frame.error !== undefined) view.error = frame.error;
  if (frame.thinking_seconds !== undefined) view.thinkingSeconds = frame.thinking_seconds;
  if (frame.server_time) clockOffset = Date.parse(frame.server_time) - Date.now();
  if (frame.reasoning_started_at) view.reasoningStartedAt = serverMs(frame.reasoning_started_at);
  if (frame.answer_started_at) view.answerStartedAt = serverMs(frame.answer_started_at);
  if (!IN_FLIGHT.has(view.status)) view.renderer.finish(view.content);
  paintAssistant(view);
  keepScrolled();
  refreshControls();
  if (ends) announceEnd(view);
}

function onStatus(frame) {
  const view = state.messages.get(frame.message);
  if (!view) return;
  if (frame.status === "waiting") {
    paintStatus(view, frame);
    return;
  }
  view.status = frame.status;
  paintStatus(view);
  refreshControls();
}

function announceEnd(view) {
  let text = strings.replyComplete;
  if (view.status !== "complete") {
    text = view.statusElement.textContent || strings[view.status] || strings.failed;
  }
  // Clearing first makes a repeated text be announced again.
  announcer.textContent = "";
  window.setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

function onDone(frame) {
  updateQuota(frame.quota);
  const view = state.messages.get(frame.message);
  if (!view) return;
  const wasInFlight = IN_FLIGHT.has(view.status);
  view.status = frame.status;
  view.error = frame.error;
  if (frame.thinking_seconds != null) view.thinkingSeconds = frame.thinking_seconds;
  if (frame.seq > view.seq) {
    // Some text never arrived here: fetch the stored reply.
    requestSnapshot(view.id);
  } else {
    view.renderer.finish(view.content);
  }
  paintAssistant(view);
  keepScrolled();
  refreshControls();
  if (wasInFlight) announceEnd(view);
}

function onError(frame) {
  if (frame.client_id && state.pending?.clientId === frame.client_id) {
    // The message was not accepted: its text is still in the composer (or the editor).
    const editor = state.pending.view?.editor;
    state.pending = null;
    showComposerError(frame.detail || data.requestErrors[frame.code] || frame.code);
    if (editor) {
      editor.error.textContent = composerError.textContent;
      editor.error.hidden = false;
    }
    if (frame.code === "quota_exceeded") {
      const quota = selectedQuota();
      if (quota) {
        quota.remaining = 0;
        // Name the reset on the reader's clock, as the counter line does.
        showComposerError(format(strings.notSentQuota, { time: resetTime(quota) }));
      }
      paintQuota();
    }
    // A team's budget blocks only sends billed to that team; picking another team unblocks.
    state.blockedByTeam = frame.code === "team_budget_exhausted" || frame.code === "team_member_cap";
    if (frame.retry_after) blockSending(frame.retry_after);
    refreshControls();
    input.focus();
    return;
  }
  console.warn("Server error", frame.code, frame.detail);
  showComposerError(frame.detail || data.requestErrors[frame.code] || frame.code);
}

const handlers = {
  "message.accepted": onAccepted,
  "reasoning.delta": (frame) => onDelta(frame, "reasoning"),
  "content.delta": (frame) => onDelta(frame, "content"),
  snapshot: onSnapshot,
  "message.status": onStatus,
  "message.done": onDone,
  error: onError,
};

// ---- Connection --------------------------------------------------------------

const socket = new ChatSocket("/ws/chat/");

function setConnectionState(text) {
  connectionState.textContent = text;
  connectionState.hidden = text === "";
}

setConnectionState(strings.connecting);

socket.addEventListener("open", () => {
  setConnectionState("");
  if (state.conversation) {
    socket.send({ type: "conversation.open", conversation: state.conversation });
    // That request brings a snapshot of every in-flight reply, so no resync is due yet.
    for (const view of state.messages.values()) restartSilenceTimer(view);
  }
  // A send that was cut off by the drop is repeated with the same client_id;
  // the server recognises it and does not store it twice.
  sendPending();
});

socket.addEventListener("close", () => setConnectionState(strings.reconnecting));

socket.addEventListener("unauthenticated", () => {
  window.location.assign(`/accounts/sign-in/?next=${encodeURIComponent(window.location.pathname)}`);
});

socket.addEventListener("frame", (event) => {
  const messageView = state.messages.get(event.detail.message);
  if (messageView) restartSilenceTimer(messageView);
  const handler = handlers[event.detail.type];
  if (handler) handler(event.detail);
});

window.addEventListener("online", () => {
  if (!socket.isOpen) setConnectionState(strings.reconnecting);
});

// ---- Start-up ------------------------------------------------------------------

for (const message of data.messages) addMessage(message);
keepScrolled();
paintQuota();
const startQuota = selectedQuota();
if (startQuota?.remaining === 0) {
  blockSending(Math.max(1, (new Date(startQuota.resets_at).getTime() - Date.now()) / 1000));
}
refreshControls();
input.focus();
