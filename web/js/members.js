// The member list: who is in the room, as the server last told us. DOM-free.
//
// Up to the server's `memberListThreshold` every join, rename and leave comes
// with the whole list in a `members` frame. Above it (docs/protocol.md, "Member
// list of a big room") the joiner gets the list once, sorted, in `memberList`
// parts ({"memberList":[…],"part":1,"parts":3}, the parts of one list sharing
// one `eventId`), and everyone then gets only the join, leave and rename
// notices, which this list applies to what it has.
//
// - A `members` frame replaces the list.
// - `memberList` parts are collected; when every part of one list (one
//   `eventId`; without an `eventId`, the parts since the last part 1) has
//   arrived, they replace the list. A part of another list starts over.
// - Join, leave and rename notices are applied to the list at once (the same
//   notice applied to a list that already shows it changes nothing, so small
//   rooms, whose notices follow or precede a full list, are unaffected). While
//   a list is being collected they are also kept, and applied again to it once
//   it is complete: the list was read before they happened, or they change nothing.
// Repeated frames are dropped before they get here (conversation.js `fresh`).

import { foldName, sameName } from "./protocol.js";

/** Case-insensitive order, ties broken by the exact text (as the server sorts). */
export function compareNames(a, b) {
  const fa = foldName(a);
  const fb = foldName(b);
  if (fa !== fb) return fa < fb ? -1 : 1;
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

export class MemberList {
  constructor() {
    this.names = [];
    this.collecting = null; // {eventId, parts, got: Map<part, names[]>, notices: []}
  }

  /** Forget everything (the connection closed: the next one sends the list again). */
  reset() {
    this.names = [];
    this.collecting = null;
  }

  /**
   * Apply one normalised event (protocol.js). Returns
   *   {changed, replaced}   changed: the list differs; replaced: a whole list arrived
   */
  apply(ev) {
    switch (ev.type) {
      case "members":
        this.collecting = null;
        return this.replace(ev.members);
      case "memberList":
        return this.part(ev);
      case "system":
        if (ev.event !== "join" && ev.event !== "leave" && ev.event !== "rename") break;
        if (this.collecting) this.collecting.notices.push(ev);
        return { changed: this.notice(ev), replaced: false };
      default:
        break;
    }
    return { changed: false, replaced: false };
  }

  // ------------------------------------------------------------ internals

  replace(names) {
    const changed =
      names.length !== this.names.length || names.some((n, i) => n !== this.names[i]);
    this.names = names.slice();
    return { changed, replaced: true };
  }

  part({ members, part, parts, eventId = null }) {
    let c = this.collecting;
    const another =
      c === null ||
      c.parts !== parts ||
      (eventId !== null ? c.eventId !== eventId : part === 1 || c.eventId !== null);
    if (another) {
      c = { eventId, parts, got: new Map(), notices: [] };
      this.collecting = c;
    }
    if (part > parts) return { changed: false, replaced: false };
    c.got.set(part, members);
    if (c.got.size < parts) return { changed: false, replaced: false };
    this.collecting = null;
    const before = this.names;
    const whole = [];
    for (let i = 1; i <= parts; i += 1) whole.push(...c.got.get(i));
    this.names = whole;
    for (const notice of c.notices) this.notice(notice);
    const changed =
      before.length !== this.names.length || before.some((n, i) => n !== this.names[i]);
    return { changed, replaced: true };
  }

  /** Apply a join, leave or rename notice; returns whether the list changed. */
  notice({ event, name, previous = null }) {
    if (typeof name !== "string" || !name) return false;
    if (event === "join") return this.add(name);
    if (event === "leave") return this.remove(name);
    // A rename: the previous name goes, the new one comes (either may already be so).
    const removed = typeof previous === "string" && previous ? this.remove(previous) : false;
    const added = this.add(name);
    return removed || added;
  }

  add(name) {
    const at = this.names.findIndex((n) => sameName(n, name));
    if (at >= 0) {
      if (this.names[at] === name) return false;
      this.names.splice(at, 1); // the same person, now spelt differently
    }
    let index = this.names.findIndex((n) => compareNames(n, name) > 0);
    if (index < 0) index = this.names.length;
    this.names.splice(index, 0, name);
    return true;
  }

  remove(name) {
    const at = this.names.findIndex((n) => sameName(n, name));
    if (at < 0) return false;
    this.names.splice(at, 1);
    return true;
  }
}
