// Our outgoing chat messages, under protocol v1.1's acknowledgement rule
// (docs/protocol.md, "Delivery guarantees"). DOM-free; the send function, the
// id source and the timers are injected (defaults: the globals, looked up at
// call time so that Playwright's page.clock can drive them).
//
// - One message in flight: the next one goes out only when the previous one
//   is acknowledged (or has failed), so the server delivers them to everyone
//   in the order typed. The others wait in the queue.
// - Each message gets its own `id` when it is queued, and keeps it: every
//   resend carries the same id, so the server (which de-duplicates the ids of
//   one name for 10 minutes) delivers it once and answers with the same ack.
// - Acknowledgements: the sender's own copy of a public message with our
//   `id`; {"ack":"sendPrivate","id":…} for a private one.
// - Failure is exact: an error frame whose `id` is the message's id.
//   RATE_LIMITED is not a failure: the message is resent (same id) after the
//   error's `retryAfterMs`. NOT_CONNECTED means the server forgot this
//   connection: the message waits for the next one.
// - Resent with the same id when no acknowledgement came within the ack
//   timeout (ACK_TIMEOUT_MS, doubling up to MAX_ACK_TIMEOUT_MS), and when a
//   new connection is ready (named) after a reconnect.
// - Messages are sent only while the outbox is "ready": the connection is
//   open and the server has granted our name on it (sendPublic/sendPrivate
//   need a name). Until then they wait.
//
// Item states: queued (waiting its turn or for a connection), sending (sent,
// awaiting its ack), waiting (rate-limited, resent at `retryAt`), sent, failed.

import { sendPrivateAction, sendPublicAction } from "./protocol.js";

/** Resend after this long without an acknowledgement (the Lambda's default timeout is 20 s). */
export const ACK_TIMEOUT_MS = 15000;
export const MAX_ACK_TIMEOUT_MS = 60000;
/** Added to `retryAfterMs`, so the token bucket has surely refilled. */
export const RATE_LIMIT_MARGIN_MS = 100;

export class Outbox {
  constructor({
    send,
    nextId,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    ackTimeoutMs = ACK_TIMEOUT_MS,
    maxAckTimeoutMs = MAX_ACK_TIMEOUT_MS,
    onChange = () => {},
  }) {
    Object.assign(this, {
      send,
      nextId,
      now,
      setTimer,
      clearTimer,
      ackTimeoutMs,
      maxAckTimeoutMs,
      onChange,
    });
    this.queue = []; // not yet acknowledged, oldest first; queue[0] is the one in flight
    this.ready = false;
    this.timer = null; // the head's ack timeout or rate-limit wait
  }

  /** The messages not yet acknowledged nor failed, oldest first. */
  get items() {
    return this.queue.slice();
  }

  /**
   * Queue a message: {kind: "public"|"private", to, text, room}. `room` (protocol v2, a
   * public message in a room other than the lobby) goes out with every send. Returns the item.
   */
  enqueue({ kind, to = null, text, room = null }) {
    const item = {
      id: this.nextId(),
      kind,
      to,
      text,
      room,
      state: "queued",
      attempts: 0,
      retryAt: null,
    };
    this.queue.push(item);
    this.pump();
    return item;
  }

  /**
   * Whether messages can go out now (connection open and our name granted).
   * Going unready stops the head's timers: it is resent, same id, once ready.
   */
  setReady(ready) {
    this.ready = ready;
    if (!ready) {
      this.cancelTimer();
      const head = this.queue[0];
      if (head && (head.state === "sending" || head.state === "waiting")) {
        head.state = "queued";
        head.retryAt = null;
      }
      return;
    }
    this.pump();
  }

  /**
   * Feed one normalised event (protocol.js). Returns null when it is not about
   * the message in flight, else one of
   *   {type: "sent", item, seq, messageId, ts}   acknowledged (the next one goes out)
   *   {type: "failed", item, code, message}      refused for good (the next one goes out)
   *   {type: "waiting", item, retryAfterMs}      RATE_LIMITED: resent after the wait
   *   {type: "reconnect", item}                  NOT_CONNECTED: resent on the next connection
   */
  handle(ev) {
    const head = this.queue[0];
    if (!head || !ev || ev.id === null || ev.id === undefined || ev.id !== head.id) return null;
    const isAck =
      (ev.type === "public" && head.kind === "public") ||
      (ev.type === "ack" && ev.ack === "sendPrivate" && head.kind === "private");
    if (isAck) {
      this.finish("sent");
      return { type: "sent", item: head, seq: ev.seq, messageId: ev.messageId, ts: ev.ts };
    }
    if (ev.type !== "error") return null;
    if (ev.code === "RATE_LIMITED") {
      const wait = Math.max(0, ev.retryAfterMs ?? 1000) + RATE_LIMIT_MARGIN_MS;
      this.cancelTimer();
      head.state = "waiting";
      head.retryAt = this.now() + wait;
      this.timer = this.setTimer(() => {
        this.timer = null;
        head.state = "queued";
        head.retryAt = null;
        this.pump();
        this.onChange(head);
      }, wait);
      return { type: "waiting", item: head, retryAfterMs: wait };
    }
    if (ev.code === "NOT_CONNECTED") {
      this.cancelTimer();
      head.state = "queued";
      return { type: "reconnect", item: head };
    }
    this.finish("failed");
    return { type: "failed", item: head, code: ev.code, message: ev.message };
  }

  /** Give up on every message not yet acknowledged; returns them (now failed). */
  failAll() {
    this.cancelTimer();
    const items = this.queue;
    this.queue = [];
    for (const item of items) item.state = "failed";
    return items;
  }

  // ------------------------------------------------------------ internals

  /** The head is settled: drop it and send the next one. */
  finish(state) {
    this.cancelTimer();
    const head = this.queue.shift();
    head.state = state;
    head.retryAt = null;
    this.pump();
  }

  /** Send the head if it is waiting for its turn and we can. */
  pump() {
    const head = this.queue[0];
    if (!head || !this.ready || head.state !== "queued") return;
    const frame =
      head.kind === "private"
        ? sendPrivateAction(head.to, head.text, { id: head.id })
        : sendPublicAction(head.text, { id: head.id });
    if (head.room !== null) frame.room = head.room;
    if (!this.send(frame)) return; // the socket is closing; resent once ready again
    head.state = "sending";
    head.attempts += 1;
    const timeout = Math.min(this.maxAckTimeoutMs, this.ackTimeoutMs * 2 ** (head.attempts - 1));
    this.cancelTimer();
    this.timer = this.setTimer(() => {
      this.timer = null;
      if (this.queue[0] !== head || head.state !== "sending") return;
      head.state = "queued";
      this.pump(); // the same id again
      this.onChange(head);
    }, timeout);
  }

  cancelTimer() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }
}
