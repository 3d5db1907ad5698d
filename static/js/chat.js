// The chat page: composer, message list and the live stream of replies.

import { createStreamRenderer, installCopyHandler, setLabels } from "./markdown.js";
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
const conversationList = root.querySelector("[data-conversation-list]");
const modelSelect = root.querySelector("[data-model-select]");
// Present for members of a team: the team the conversation is billed to.
const teamSelect = root.querySelector("[data-team-select]");
const simulatorNotice = root.querySelector("[data-simulator-notice]");
const quotaElement = root.querySelector("[data-quota]");

setLabels({ copy: strings.copy, copied: strings.copied });
installCopyHandler(list);

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
}

const state = {
  quotas: { ...data.quota }, // model class -> {limit, remaining, resets_at}
  blockedUntil: 0, // no send before this time (ms), after a quota or rate error
  conversation: data.conversation,
  messages: new Map(), // id -> view of one message
  pending: null, // {clientId, content} until the server accepts or rejects it
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
    reasoningStartedAt: null,
    timer: null,
  };

  if (message.role === "user") {
    const body = document.createElement("div");
    body.className = "user-text";
    body.textContent = view.content;
    article.append(body);
    return view;
  }

  const details = document.createElement("details");
  details.className = "reasoning";
  details.hidden = true;
  const summary = document.createElement("summary");
  const reasoningBody = document.createElement("div");
  reasoningBody.className = "reasoning-body";
  details.append(summary, reasoningBody);

  const answer = document.createElement("div");
  answer.className = "answer markdown";
  const status = document.createElement("div");
  status.className = "message-status";
  status.setAttribute("role", "status");

  article.append(details, answer, status);
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
  if (view.reasoningBody.textContent !== view.reasoning) {
    view.reasoningBody.textContent = view.reasoning;
  }
  view.renderer.update(view.content);
  paintThinkingLabel(view);
  paintStatus(view);
}

function paintThinkingLabel(view) {
  const answering = view.content.length > 0 || !IN_FLIGHT.has(view.status);
  if (answering) {
    stopThinkingTimer(view);
    if (view.details.dataset.autoCollapsed !== "1") {
      view.details.open = false;
      view.details.dataset.autoCollapsed = "1";
    }
    const seconds = view.thinkingSeconds ?? elapsedSeconds(view);
    view.summary.textContent =
      seconds === null ? strings.reasoning : format(strings.thoughtFor, { seconds });
    return;
  }
  if (view.reasoning.length > 0) {
    view.details.open = true;
    view.reasoningStartedAt ??= Date.now();
    startThinkingTimer(view);
    view.summary.textContent = format(strings.thinkingFor, { seconds: elapsedSeconds(view) });
  }
}

function elapsedSeconds(view) {
  if (view.reasoningStartedAt === null) return null;
  return Math.max(0, Math.round((Date.now() - view.reasoningStartedAt) / 1000));
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
    view.thinkingSeconds = elapsedSeconds(view);
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

function addMessage(message) {
  if (state.messages.has(message.id)) return state.messages.get(message.id);
  const view = createMessageView(message);
  view.error = message.error;
  state.messages.set(message.id, view);
  list.querySelector("[data-welcome]")?.remove();
  for (const button of list.querySelectorAll("[data-retry]")) button.hidden = true;
  list.append(view.element);
  if (view.role === "assistant") {
    if (view.status !== "streaming" && view.status !== "queued") {
      view.renderer.update(view.content);
      view.renderer.finish();
    }
    paintAssistant(view);
  }
  return view;
}

// ---- Scrolling -------------------------------------------------------------

function isNearBottom() {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function keepScrolled(wasNearBottom) {
  if (wasNearBottom) list.scrollTop = list.scrollHeight;
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
  socket.send({
    type: "message.send",
    conversation: state.conversation,
    content: state.pending.content,
    client_id: state.pending.clientId,
    model: state.pending.model,
    ...(teamSelect ? { team: Number(teamSelect.value) } : {}),
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});

input.addEventListener("keydown", (event) => {
  // Enter during IME composition picks a candidate (Chinese input); it must not send.
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
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
  addMessage(frame.user_message);
  addMessage(frame.assistant_message);
  updateQuota(frame.quota);
  // Sending always brings the new exchange into view.
  keepScrolled(true);
  refreshControls();
}

function addToSidebar(id, title) {
  conversationList.querySelector("[data-empty-list]")?.remove();
  for (const link of conversationList.querySelectorAll("[aria-current]")) {
    link.removeAttribute("aria-current");
  }
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = `/chat/${id}/`;
  link.dataset.conversationId = id;
  link.setAttribute("aria-current", "page");
  link.textContent = title || strings.untitled;
  item.append(link);
  conversationList.prepend(item);
}

function requestSnapshot(messageId) {
  if (!state.conversation) return;
  socket.send({ type: "conversation.open", conversation: state.conversation, message: messageId });
}

function onDelta(frame, kind) {
  const view = state.messages.get(frame.message);
  if (!view) return;
  if (frame.seq <= view.seq) return; // already shown (from a snapshot)
  if (frame.seq !== view.seq + 1) {
    // A delta was lost, for example a full channel dropped it: resync.
    requestSnapshot(view.id);
    return;
  }
  const wasNearBottom = isNearBottom();
  view.seq = frame.seq;
  if (view.status === "queued") view.status = "streaming";
  if (kind === "reasoning") {
    view.reasoning += frame.text;
    view.reasoningStartedAt ??= Date.now();
  } else {
    view.content += frame.text;
  }
  paintAssistant(view);
  keepScrolled(wasNearBottom);
  refreshControls();
}

function onSnapshot(frame) {
  const view = state.messages.get(frame.message);
  if (!view) return;
  if (frame.seq < view.seq && IN_FLIGHT.has(frame.status)) return; // older than what is shown
  const wasNearBottom = isNearBottom();
  view.seq = frame.seq;
  view.reasoning = frame.reasoning;
  view.content = frame.content;
  view.status = frame.status;
  if (frame.error !== undefined) view.error = frame.error;
  if (frame.thinking_seconds !== undefined) view.thinkingSeconds = frame.thinking_seconds;
  if (!IN_FLIGHT.has(view.status)) view.renderer.finish();
  paintAssistant(view);
  keepScrolled(wasNearBottom);
  refreshControls();
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

function onDone(frame) {
  updateQuota(frame.quota);
  const view = state.messages.get(frame.message);
  if (!view) return;
  view.status = frame.status;
  view.error = frame.error;
  if (frame.thinking_seconds != null) view.thinkingSeconds = frame.thinking_seconds;
  if (frame.seq > view.seq) {
    // Some text never arrived here: fetch the stored reply.
    requestSnapshot(view.id);
  } else {
    view.renderer.update(view.content);
    view.renderer.finish();
  }
  paintAssistant(view);
  refreshControls();
}

function onError(frame) {
  if (frame.client_id && state.pending?.clientId === frame.client_id) {
    // The message was not accepted: its text is still in the composer.
    state.pending = null;
    showComposerError(frame.detail || data.requestErrors[frame.code] || frame.code);
    if (frame.code === "quota_exceeded") {
      const quota = selectedQuota();
      if (quota) {
        quota.remaining = 0;
        // Name the reset on the reader's clock, as the counter line does.
        showComposerError(format(strings.notSentQuota, { time: resetTime(quota) }));
      }
      paintQuota();
    }
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
  const handler = handlers[event.detail.type];
  if (handler) handler(event.detail);
});

window.addEventListener("online", () => {
  if (!socket.isOpen) setConnectionState(strings.reconnecting);
});

// ---- Start-up ------------------------------------------------------------------

for (const message of data.messages) addMessage(message);
list.scrollTop = list.scrollHeight;
paintQuota();
const startQuota = selectedQuota();
if (startQuota?.remaining === 0) {
  blockSending(Math.max(1, (new Date(startQuota.resets_at).getTime() - Date.now()) / 1000));
}
refreshControls();
input.focus();
