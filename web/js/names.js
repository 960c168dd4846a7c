// Tracks which name this client holds on the current connection and which it
// has asked for. Pure state machine (no DOM, no timers). Which name to claim
// when a connection opens, and re-claiming it after a reconnect, is
// reclaim.js's job.
//
// A request counts as accepted on its v1.1 acknowledgement
// ({"ack":"setName","name":…}), or (protocol v1 has no acknowledgement, and the
// v1.1 one comes after the member list and history) as soon as the server
// broadcasts a join/rename event for that name, or a members list newly
// contains it (a name that was not listed when we asked). It counts as refused
// on an error whose action is "setName".
//
// It also keeps the member list (members.js): a `members` frame, the
// `memberList` parts of a big room, and the join/leave/rename notices.

import { MemberList } from "./members.js";
import { foldName, sameName } from "./protocol.js";

const NAME_ERROR_CODES = new Set(["INVALID_NAME", "NAME_TAKEN"]);

export class NameClaim {
  constructor() {
    this.confirmed = null; // name the server accepted on the current connection
    this.pending = null; // {name, knownBefore:Set<string>}
    this.roster = new MemberList();
  }

  /** Who is in the room (the server's last list, with the notices since applied). */
  get members() {
    return this.roster.names;
  }

  /** Sending public/private messages is allowed (the server has the last word). */
  get canChat() {
    return this.confirmed !== null || this.pending !== null;
  }

  /** Record that setName(name) is being sent now. */
  request(name) {
    this.pending = {
      name,
      knownBefore: new Set(this.members.map(foldName)),
    };
    return this.pending;
  }

  /** The setName recorded by request() could not be sent after all. */
  withdraw() {
    this.pending = null;
  }

  /**
   * The socket closed: the server forgets our name with the connection.
   * Returns the name we held (null if none).
   */
  connectionLost() {
    const held = this.confirmed;
    this.confirmed = null;
    this.pending = null;
    this.roster.reset();
    return held;
  }

  /**
   * Feed normalised events; returns outcomes:
   *   {type:"confirmed", name}
   *   {type:"rejected", name, code, message, retryAfterMs}   (name: null if nothing was pending)
   *   {type:"members"}        the member list changed (once per call, after the others)
   */
  handle(events) {
    const out = [];
    let changed = false;
    for (const ev of events) {
      const list = this.roster.apply(ev);
      changed ||= list.changed;
      if (list.replaced) {
        const p = this.pending;
        if (p && !p.knownBefore.has(foldName(p.name))) {
          const listed = this.members.find((m) => sameName(m, p.name));
          if (listed !== undefined) out.push(this.accept(listed));
        }
      } else if (ev.type === "system" && (ev.event === "join" || ev.event === "rename")) {
        const p = this.pending;
        if (p && ev.name && sameName(ev.name, p.name)) {
          out.push(this.accept(ev.name));
        } else if (
          ev.event === "rename" &&
          this.confirmed !== null &&
          ev.previous &&
          sameName(ev.previous, this.confirmed) &&
          ev.name
        ) {
          // Our own rename confirmed after the pending entry was already settled.
          this.confirmed = ev.name;
        }
      } else if (ev.type === "ack" && ev.ack === "setName") {
        const p = this.pending;
        if (p && ev.name && sameName(ev.name, p.name)) out.push(this.accept(ev.name));
      } else if (
        ev.type === "error" &&
        (ev.action === "setName" || (ev.action === null && NAME_ERROR_CODES.has(ev.code)))
      ) {
        // A refused name or rename: we keep whatever we had (maybe nothing).
        const p = this.pending;
        this.pending = null;
        out.push({
          type: "rejected",
          name: p ? p.name : null,
          code: ev.code,
          message: ev.message,
          retryAfterMs: ev.retryAfterMs ?? null,
        });
      }
    }
    if (changed) out.push({ type: "members" });
    return out;
  }

  accept(name) {
    this.pending = null;
    this.confirmed = name;
    return { type: "confirmed", name };
  }
}
