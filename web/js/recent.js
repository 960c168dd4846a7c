// A bounded memory of ids already applied: the last `max` of them, oldest
// forgotten first. One kind of memory for every repeat the client drops:
// timeline.js keeps the `messageId`s of the messages it has shown, and
// conversation.js keeps the (`eventId`, `part`) of the other frames that go to
// more than one member (join/leave/rename notices, `members` lists and
// `memberList` parts), so that a frame the server delivers twice is applied once.

/** How many ids to remember (far more than a conversation shows at once). */
export const MAX_IDS = 5000;

export class RecentIds {
  constructor(max = MAX_IDS) {
    this.max = max;
    this.ids = new Set(); // insertion order: oldest first
  }

  get size() {
    return this.ids.size;
  }

  /** Whether `id` is remembered (null and undefined never are). */
  has(id) {
    return id !== null && id !== undefined && this.ids.has(id);
  }

  /** Remember `id` (null and undefined are ignored), forgetting the oldest beyond `max`. */
  add(id) {
    if (id === null || id === undefined) return;
    this.ids.delete(id); // a refreshed id becomes the newest
    this.ids.add(id);
    while (this.ids.size > this.max) this.ids.delete(this.ids.values().next().value);
  }

  /** Remember `id`; false when it was already remembered (a repeat). */
  first(id) {
    if (this.has(id)) return false;
    this.add(id);
    return true;
  }
}
