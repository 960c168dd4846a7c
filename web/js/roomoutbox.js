// Our messages in rooms other than the lobby (protocol v2), under the lobby's
// acknowledgement rule (outbox.js): one Outbox per room, so each room's messages
// go out one at a time, in the order typed. DOM-free; the send function, ids and
// timers are injected.
//
// - A message is shown at once as "sending" and keeps its `id` for every resend:
//   after the ack timeout, and on the next connection once the room is joined
//   again (the server de-duplicates ids per client key, so it is delivered once).
// - A room's outbox is ready only while the room is joined on this connection
//   (`joined(room)`): the server refuses a message to a room not joined.
// - The acknowledgement is the sender's own copy, with our `id`: a
//   `publicMessage` (or, in a direct room, a `directMessage`) naming the room.
// - Failure is exact: an error of `sendPublic` with our `id`; RATE_LIMITED waits
//   `retryAfterMs` and sends again; NOT_CONNECTED waits for the next connection.
// - Leaving a room fails what is still waiting in it ("you left the room").

import { frameIds, randomToken } from "./ids.js";
import { Outbox } from "./outbox.js";
import { roomKey } from "./rooms.js";

/** How many failed messages a room keeps showing (oldest dropped first). */
export const MAX_FAILED = 20;

/** Ids of room frames: "room-" (negotiate.js routes their errors to the rooms UI) + page token. */
export const roomFrameIds = () => frameIds({ prefix: `room-${randomToken(10)}` });

/** What a pending or failed item shows: {delivery, note}. */
export function deliveryOf(item, now) {
  if (item.state === "failed") {
    return { delivery: "failed", note: `Not delivered${item.reason ? `: ${item.reason}` : ""}` };
  }
  if (item.state === "waiting" && item.retryAt !== null) {
    const s = Math.max(1, Math.ceil((item.retryAt - now) / 1000));
    return { delivery: "sending", note: `Sending too fast; retrying in ${s} s…` };
  }
  return { delivery: "sending", note: "Sending…" };
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

export class RoomOutboxes {
  constructor({
    send,
    nextId = roomFrameIds(),
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    onChange = () => {},
    onReconnectNeeded = () => {},
  }) {
    Object.assign(this, { send, nextId, now, setTimer, clearTimer, onChange, onReconnectNeeded });
    this.boxes = new Map(); // roomKey -> {outbox, failed: [items]}
    this.sent = new Set(); // messageIds of our messages acknowledged on this page
  }

  /** Queue `text` for `room`; returns the item (shown as sending at once). */
  enqueue(room, text) {
    return this.box(room).outbox.enqueue({ kind: "public", text, room });
  }

  /** The room was joined on this connection: its messages may go out. */
  joined(room) {
    this.box(room).outbox.setReady(true);
  }

  /** We left the room: what still waits in it fails. */
  left(room) {
    const box = this.boxes.get(roomKey(room));
    if (!box) return;
    box.outbox.setReady(false);
    for (const item of box.outbox.failAll()) this.fail(box, item, "you left the room");
    this.onChange(room);
  }

  /** The connection closed: every room waits for the next one (same ids). */
  closed() {
    for (const box of this.boxes.values()) box.outbox.setReady(false);
  }

  /** Whether `messageId` is one of our messages, acknowledged. */
  wasSent(messageId) {
    return this.sent.has(messageId);
  }

  /** A room's failed messages, then those not yet acknowledged, oldest first. */
  pending(room) {
    const box = this.boxes.get(roomKey(room));
    return box ? [...box.failed, ...box.outbox.items] : [];
  }

  /** Drop a room's failed messages from view. */
  dismissFailed(room) {
    const box = this.boxes.get(roomKey(room));
    if (box) box.failed = [];
  }

  /**
   * A raw v2 frame from the server. Returns null when it is not about one of
   * our room messages, else {room, type} with type "sent", "failed", "waiting"
   * or "reconnect" (outbox.js's outcomes).
   */
  handle(frame) {
    if (!isObject(frame)) return null;
    if (isObject(frame.error)) {
      const err = frame.error;
      if (err.action !== "sendPublic" || typeof err.id !== "string") return null;
      for (const [key, box] of this.boxes) {
        const head = box.outbox.items[0];
        if (!head || head.id !== err.id) continue;
        const ev = { type: "error", id: err.id, code: err.code, message: err.message, retryAfterMs: err.retryAfterMs };
        return this.outcome(key, box, box.outbox.handle(ev));
      }
      return null;
    }
    const isCopy = typeof frame.publicMessage === "string" || typeof frame.directMessage === "string";
    if (!isCopy || typeof frame.room !== "string" || typeof frame.id !== "string") return null;
    const key = roomKey(frame.room);
    const box = this.boxes.get(key);
    if (!box) return null;
    const ev = { type: "public", id: frame.id, seq: frame.seq, messageId: frame.messageId, ts: frame.ts };
    return this.outcome(key, box, box.outbox.handle(ev));
  }

  // ------------------------------------------------------------ internals

  box(room) {
    const key = roomKey(room);
    let box = this.boxes.get(key);
    if (!box) {
      box = { failed: [], outbox: null };
      box.outbox = new Outbox({
        send: this.send,
        nextId: this.nextId,
        now: this.now,
        setTimer: this.setTimer,
        clearTimer: this.clearTimer,
        onChange: () => this.onChange(room),
      });
      this.boxes.set(key, box);
    }
    return box;
  }

  outcome(key, box, out) {
    if (out === null) return null;
    const room = out.item.room;
    if (out.type === "sent" && typeof out.messageId === "string") this.sent.add(out.messageId);
    if (out.type === "failed") this.fail(box, out.item, out.message || out.code);
    if (out.type === "reconnect") this.onReconnectNeeded();
    return { ...out, room, key };
  }

  fail(box, item, reason) {
    item.state = "failed";
    item.reason = reason ?? null;
    box.failed.push(item);
    while (box.failed.length > MAX_FAILED) box.failed.shift();
  }
}
