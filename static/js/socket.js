// A websocket that sends and receives JSON frames and reconnects on its own.

const CLOSE_UNAUTHENTICATED = 4401;
const MAX_DELAY_MS = 10000;

export class ChatSocket extends EventTarget {
  constructor(path) {
    super();
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    this.url = `${scheme}://${window.location.host}${path}`;
    this.attempt = 0;
    this.socket = null;
    this.connect();
  }

  get isOpen() {
    return this.socket?.readyState === WebSocket.OPEN;
  }

  connect() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.dispatchEvent(new Event("open"));
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        console.error("Ignored a frame that is not JSON", event.data);
        return;
      }
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    });
    socket.addEventListener("close", (event) => {
      if (event.code === CLOSE_UNAUTHENTICATED) {
        this.dispatchEvent(new Event("unauthenticated"));
        return;
      }
      this.dispatchEvent(new Event("close"));
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    // Exponential backoff with jitter, so a restarted server is not stampeded.
    const base = Math.min(MAX_DELAY_MS, 500 * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    window.setTimeout(() => this.connect(), delay);
  }

  send(frame) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }
}
