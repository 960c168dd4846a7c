// The order of the conversation log, and which messages it already shows.
// DOM-free: every entry is an opaque handle (app.js uses the element it
// rendered); the Timeline says where a new entry goes ("before this handle",
// or null for the end) and which entries fall off the top.
//
// Rules (issue "Nothing lost, duplicated or reordered"):
// - A message with a `messageId` already shown is dropped.
// - Messages with a `seq` are shown in `seq` order: a message goes before the
//   first shown message with a greater seq (history after a reconnect lands
//   between what was shown before and what came after).
// - Entries without a seq (join/leave notices, the client's own notices) go
//   at the end, at the moment they happen.
// - Our own messages that are not yet acknowledged ("pending") stay at the
//   very end, in the order typed, below everything else. Once acknowledged,
//   an entry takes its place by seq (settle); when the server's copy of it is
//   already shown (it came in a history frame before the acknowledgement),
//   the pending entry is a duplicate and goes.

import { MAX_IDS, RecentIds } from "./recent.js";

export const MAX_ENTRIES = 500;
/** How many shown messageIds to remember (more than the log holds). */
export { MAX_IDS };

export class Timeline {
  constructor({ maxEntries = MAX_ENTRIES, maxIds = MAX_IDS } = {}) {
    this.maxEntries = maxEntries;
    this.entries = []; // [{handle, seq, pending}], top to bottom
    this.ids = new RecentIds(maxIds); // messageIds shown
  }

  /** Whether a message with this id has been shown. */
  has(messageId) {
    return this.ids.has(messageId);
  }

  /** The handles, top to bottom (for tests and debugging). */
  get handles() {
    return this.entries.map((e) => e.handle);
  }

  /**
   * Add an entry. `seq` (may be fractional, for a notice that belongs between
   * two messages) and `messageId` may be null; `pending` marks our own
   * unacknowledged message. `create(before)` makes the entry's handle, to be
   * shown before the entry `before` (null: at the end); it is not called for
   * a duplicate. Returns
   *   {added: false}                      a messageId already shown
   *   {added: true, handle, evicted}      then remove the `evicted` handles
   */
  add(create, { seq = null, messageId = null, pending = false } = {}) {
    if (this.has(messageId)) return { added: false };
    this.remember(messageId);
    const index = pending ? this.entries.length : this.slotFor(seq);
    const handle = create(this.entries[index]?.handle ?? null);
    this.entries.splice(index, 0, { handle, seq, pending });
    return { added: true, handle, evicted: this.evict() };
  }

  /**
   * A pending entry was acknowledged with `seq` and `messageId`. Returns
   *   {duplicate: true}          that message is already shown: remove `handle`
   *   {duplicate: false, before} move `handle` before `before` (null: the end)
   */
  settle(handle, { seq = null, messageId = null } = {}) {
    const at = this.indexOf(handle);
    if (this.has(messageId)) {
      if (at >= 0) this.entries.splice(at, 1);
      return { duplicate: true };
    }
    this.remember(messageId);
    if (at >= 0) this.entries.splice(at, 1);
    const index = this.slotFor(seq);
    const before = this.entries[index]?.handle ?? null;
    this.entries.splice(index, 0, { handle, seq, pending: false });
    return { duplicate: false, before };
  }

  /** A pending entry will not be acknowledged (it failed): it stays where it is. */
  release(handle) {
    const at = this.indexOf(handle);
    if (at >= 0) this.entries[at].pending = false;
  }

  /** Forget an entry (its element was removed). */
  remove(handle) {
    const at = this.indexOf(handle);
    if (at >= 0) this.entries.splice(at, 1);
  }

  // ------------------------------------------------------------ internals

  indexOf(handle) {
    return this.entries.findIndex((e) => e.handle === handle);
  }

  /** The index for a settled entry: by seq, and always above the pending ones. */
  slotFor(seq) {
    let end = this.entries.findIndex((e) => e.pending);
    if (end < 0) end = this.entries.length;
    if (seq === null || seq === undefined) return end;
    // Scan from the bottom: new messages nearly always belong at the end.
    let index = end;
    for (let i = end - 1; i >= 0; i -= 1) {
      const s = this.entries[i].seq;
      if (s === null || s === undefined) continue;
      if (s > seq) index = i;
      else break;
    }
    return index;
  }

  remember(messageId) {
    this.ids.add(messageId);
  }

  evict() {
    const evicted = [];
    while (this.entries.length > this.maxEntries && !this.entries[0].pending) {
      evicted.push(this.entries.shift().handle);
    }
    return evicted;
  }
}
