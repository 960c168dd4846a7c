// Which private message an error frame refers to. DOM-free: each sent copy is
// an opaque handle (app.js uses the log entry it rendered).
//
// The server sends the sender no copy and no acknowledgement of a private
// message, only an error frame when it fails, and that frame says which action
// failed ({"error":{…,"action":"sendPrivate"}}) but not which message. So an
// error for sendPrivate is taken to refer to the most recent private message
// sent in the last PRIVATE_FAILURE_WINDOW_MS on this connection; each sent
// message is matched at most once, and copies older than the window are never
// marked. A new connection starts afresh (errors never outlive their
// connection).

/** How long after sending a private message an error can still refer to it. */
export const PRIVATE_FAILURE_WINDOW_MS = 30 * 1000;

export class PrivateSends {
  constructor({ now = () => Date.now(), windowMs = PRIVATE_FAILURE_WINDOW_MS } = {}) {
    this.now = now;
    this.windowMs = windowMs;
    this.sent = []; // [{handle, to, at}], oldest first
  }

  /** A private message to `to` was sent; `handle` comes back from failed(). */
  record(handle, { to = null } = {}) {
    this.prune();
    this.sent.push({ handle, to, at: this.now() });
  }

  /**
   * An error event (protocol.js's normalised {type:"error", action, code, …})
   * arrived. Returns the handle of the sent message it refers to, or null
   * (not a sendPrivate error, or nothing recent to blame).
   */
  failed(ev) {
    if (!ev || ev.action !== "sendPrivate") return null;
    this.prune();
    const last = this.sent.pop();
    return last ? last.handle : null;
  }

  /** The connection closed: nothing sent on it can fail any more. */
  clear() {
    this.sent = [];
  }

  prune() {
    const now = this.now();
    this.sent = this.sent.filter((p) => now - p.at < this.windowMs);
  }
}
