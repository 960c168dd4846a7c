// Typing indicators of protocol v2 (docs/rooms-design.md §3). DOM-free, the
// clock injected; not loaded by the page yet.
//
// - TypingThrottle: we send at most one {"action":"typing","room":…} per
//   `typingIntervalSeconds` (the server's setting, 3 s by default). The server
//   keeps one bucket per connection and silently drops what is over it, so the
//   throttle is per connection too, counted in whole milliseconds as the
//   server counts (chat.rooms.typing_allowed).
// - TypingRoster: who is typing in each room. A `typing` frame (never stored,
//   never acknowledged) puts its sender in the room's list until TYPING_SHOW_MS
//   pass without another one from them, or until their message arrives, or
//   they leave or are renamed.
// - typingLine(names): "Alice is typing…", "Alice and Bob are typing…",
//   "3 people are typing…".

import { sameName } from "./protocol.js";

/** The server's default `typingIntervalSeconds`. */
export const TYPING_INTERVAL_SECONDS = 3;
/** How long someone shows as typing after their last `typing` frame. */
export const TYPING_SHOW_MS = 6000;

export const typingAction = (room) => ({ action: "typing", room });

export class TypingThrottle {
  constructor({ intervalSeconds = TYPING_INTERVAL_SECONDS, now = () => Date.now() } = {}) {
    this.intervalMs = Math.round(intervalSeconds * 1000);
    this.now = now;
    this.lastSent = null;
  }

  /**
   * The user typed in `room`: the typing frame to send now, or null when one
   * went out less than an interval ago (it would be dropped by the server).
   */
  typed(room) {
    const t = this.now();
    if (this.lastSent !== null && t - this.lastSent < this.intervalMs) return null;
    this.lastSent = t;
    return typingAction(room);
  }

  /** The connection changed: the next keystroke may send at once. */
  reset() {
    this.lastSent = null;
  }
}

export class TypingRoster {
  constructor({ showMs = TYPING_SHOW_MS, now = () => Date.now() } = {}) {
    this.showMs = showMs;
    this.now = now;
    this.rooms = new Map(); // room -> Map(name -> until)
  }

  /** Apply a server frame; returns the room whose typing list may have changed, or null. */
  apply(frame) {
    if (frame === null || typeof frame !== "object" || typeof frame.room !== "string") return null;
    const { room } = frame;
    if (typeof frame.typing === "string") {
      this.typing(room, frame.typing);
      return room;
    }
    const sender = frame.publicMessage !== undefined || frame.directMessage !== undefined;
    if (sender && typeof frame.from === "string") return this.stopped(room, frame.from);
    if (frame.event === "leave" && typeof frame.name === "string") {
      return this.stopped(room, frame.name);
    }
    if (frame.event === "rename" && typeof frame.previous === "string") {
      return this.stopped(room, frame.previous);
    }
    return null;
  }

  /** `name` is typing in `room` (a `typing` frame just came). */
  typing(room, name) {
    let names = this.rooms.get(room);
    if (!names) {
      names = new Map();
      this.rooms.set(room, names);
    }
    for (const n of names.keys()) if (sameName(n, name) && n !== name) names.delete(n);
    names.delete(name); // the latest typist goes last
    names.set(name, this.now() + this.showMs);
  }

  /** `name` stopped typing in `room` (sent, left); returns room if it was shown. */
  stopped(room, name) {
    const names = this.rooms.get(room);
    if (!names) return null;
    let removed = false;
    for (const n of [...names.keys()]) {
      if (sameName(n, name)) removed = names.delete(n) || removed;
    }
    return removed ? room : null;
  }

  /** Who is typing in `room` now, in the order they started; expired ones are forgotten. */
  who(room) {
    const names = this.rooms.get(room);
    if (!names) return [];
    const t = this.now();
    for (const [n, until] of names) if (until <= t) names.delete(n);
    if (names.size === 0) this.rooms.delete(room);
    return [...names.keys()];
  }

  /** When the typing line of `room` next changes by itself (ms since epoch), or null. */
  nextExpiry(room) {
    const names = this.rooms.get(room);
    if (!names || names.size === 0) return null;
    return Math.min(...names.values());
  }

  /** The line to show under `room`'s log ("" when nobody is typing). */
  line(room, wrap) {
    return typingLine(this.who(room), wrap);
  }

  /** Forget everything (the connection closed). */
  reset() {
    this.rooms.clear();
  }
}

/**
 * The typing line for these names. `wrap` wraps each name (format.js
 * `isolate` inside a plain string, so a name's bidi controls stay in it).
 */
export function typingLine(names, wrap = (name) => name) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${wrap(names[0])} is typing…`;
  if (names.length === 2) return `${wrap(names[0])} and ${wrap(names[1])} are typing…`;
  return `${names.length} people are typing…`;
}
