// Tracks which name this client holds, which it has asked for, and which it
// should re-claim after a reconnect. Pure state machine (no DOM, no timers).
//
// Protocol v1 has no direct acknowledgement of setName, so a request counts as
// accepted when the server broadcasts a join/rename event for that name, or
// when a members list newly contains it (a name that was not listed when we
// asked). It counts as refused on an error whose action is "setName".

import { foldName, sameName } from "./protocol.js";

const NAME_ERROR_CODES = new Set(["INVALID_NAME", "NAME_TAKEN"]);

export class NameClaim {
  constructor() {
    this.confirmed = null; // name the server accepted on the current connection
    this.wanted = null; // name to (re-)claim on the next connection
    this.wantedIsReclaim = false; // wanted was confirmed on an earlier connection
    this.pending = null; // {name, reclaim, knownBefore:Set<string>}
    this.members = [];
  }

  /** Sending public/private messages is allowed (the server has the last word). */
  get canChat() {
    return this.confirmed !== null || this.pending !== null;
  }

  /** Record that setName(name) is being sent now. */
  request(name, { reclaim = false } = {}) {
    this.pending = {
      name,
      reclaim,
      knownBefore: new Set(this.members.map(foldName)),
    };
    this.wanted = name;
    this.wantedIsReclaim = reclaim;
    return this.pending;
  }

  /** The user chose a name while offline: claim it once connected. */
  defer(name) {
    this.wanted = name;
    this.wantedIsReclaim = false;
  }

  /** The socket closed: the server forgets our name with the connection. */
  connectionLost() {
    if (this.confirmed !== null) {
      this.wanted = this.confirmed;
      this.wantedIsReclaim = true;
    }
    this.confirmed = null;
    this.pending = null;
    this.members = [];
  }

  /** The user gave up on the name (e.g. typed another one). */
  forgetWanted() {
    this.wanted = null;
    this.wantedIsReclaim = false;
  }

  /**
   * Feed normalised events; returns outcomes:
   *   {type:"confirmed", name, reclaim}
   *   {type:"rejected", name, code, message, reclaim}
   */
  handle(events) {
    const out = [];
    for (const ev of events) {
      if (ev.type === "members") {
        this.members = ev.members.slice();
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
          this.wanted = ev.name;
        }
      } else if (
        ev.type === "error" &&
        (ev.action === "setName" || (ev.action === null && NAME_ERROR_CODES.has(ev.code)))
      ) {
        const p = this.pending;
        this.pending = null;
        if (p && !p.reclaim) {
          // A refused name or rename: we keep whatever we had (maybe nothing).
          this.wanted = this.confirmed;
          this.wantedIsReclaim = false;
        }
        out.push({
          type: "rejected",
          name: p ? p.name : null,
          code: ev.code,
          message: ev.message,
          reclaim: p ? p.reclaim : false,
        });
      }
    }
    return out;
  }

  accept(name) {
    const reclaim = this.pending ? this.pending.reclaim : false;
    this.pending = null;
    this.confirmed = name;
    this.wanted = name;
    this.wantedIsReclaim = false;
    return { type: "confirmed", name, reclaim };
  }
}
