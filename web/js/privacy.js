// Whether our private messages are kept, as the page tells people near the private
// message controls (docs/rooms-design.md, "Private messages kept in direct rooms").
// DOM-free.
//
// The server keeps a private message in the two people's direct room, for its history
// time (`historyMaxAgeSeconds`, one hour by default), when `directRooms` is on (the
// default) and both people have a lasting identity (sign-in, or a client key: this page
// sends one for the tab); otherwise nothing is stored. The page is not told the
// settings, so it says what it knows:
//
// - before anything is known: both cases;
// - on an older server (protocol v1.1): nothing is stored (only v2 servers store them);
// - per person, once a message says so: a sendPrivate ack with `room` (their direct
//   room), or a `directMessage` from them, means kept; an ack without `room`, or an
//   incoming `privateMessage` on a v2 connection, means not kept.

import { foldName } from "./protocol.js";

/** The history time as the page can state it (the server does not send its setting). */
export const HISTORY_TIME = "the chat's history time (one hour unless its operator changed it)";

export class PrivateKeeping {
  constructor() {
    this.protocol = null; // null: not known yet; 1: an older server; 2: rooms
    this.known = new Map(); // folded name -> true (kept) | false (not kept)
  }

  /** The protocol this connection agreed (null while unknown). */
  agreed(protocol) {
    this.protocol = protocol;
  }

  /**
   * One server frame on this connection. Returns true when it taught us something
   * about a person (the line may change).
   */
  see(frame) {
    if (frame === null || typeof frame !== "object") return false;
    if (frame.ack === "sendPrivate" && typeof frame.to === "string") {
      return this.learn(frame.to, typeof frame.room === "string");
    }
    if (typeof frame.directMessage === "string" && typeof frame.from === "string") {
      return this.learn(frame.from, true);
    }
    if (this.protocol === 2 && frame.privateMessage != null && typeof frame.from === "string") {
      return this.learn(frame.from, false);
    }
    return false;
  }

  /** Whether messages with `name` are kept: true, false, or null (not known). */
  kept(name) {
    if (this.protocol === 1) return false;
    if (typeof name !== "string" || name.trim() === "") return null;
    return this.known.get(foldName(name.trim())) ?? null;
  }

  /**
   * The sentence for people, about messages with `name` (or in general, for none).
   * `wrap` isolates the name in the text (format.js `isolate`).
   */
  line(name = null, wrap = (s) => s) {
    const kept = this.kept(name);
    const who = typeof name === "string" ? wrap(name.trim()) : "";
    if (this.protocol === 1) {
      return "Private messages are not stored: only the two of you receive them.";
    }
    if (kept === true) {
      return `Private messages with ${who} are kept in your direct conversation for ${HISTORY_TIME}; both of you can read them again.`;
    }
    if (kept === false) {
      return `Private messages with ${who} are not stored: only the two of you receive them.`;
    }
    return (
      "Private messages are kept in a direct conversation for " +
      `${HISTORY_TIME} when both of you have a lasting identity (sign-in, or this tab's key), ` +
      "and both of you can read them again; otherwise they are not stored."
    );
  }

  learn(name, kept) {
    const key = foldName(name);
    if (this.known.get(key) === kept) return false;
    this.known.set(key, kept);
    return true;
  }
}
