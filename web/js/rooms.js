// Rooms of protocol v2 (docs/rooms-design.md §3), as the client keeps them.
// DOM-free and not loaded by the page yet: the v1 page is unchanged until the
// rooms UI uses it. It takes the server's v2 frames as they arrive (plain JSON
// objects, `apply(frame)`) and keeps:
//
// - the rooms this connection has joined (`joined` acks, `left` acks), the
//   public rooms and "my rooms" of the last `rooms` reply (a reply may come in
//   parts: every part but the last has `"final": false`), and the current room;
// - unread counts: a reply's `mine[].unread` (at most 100, meaning "100 or
//   more"), plus each live `publicMessage`/`directMessage` of another room
//   (someone else's, after the room's last-read seq, each messageId once);
//   opening a room sets its count to 0, a `markRead` ack drops what it covers;
// - invitations: the reply's `invited` list, then each `invited` frame; a
//   room's invitation goes when we join it;
// - each room's messages by messageId, with `messageEdited`/`messageDeleted`
//   applied to them (also when the event comes before the message);
// - moderation (js/moderation.js): each room's standing (our role from `joined`,
//   appointments, the topic) and its `moderation` events, kept among its messages
//   as notices (`notice: true`, filed under "moderation:<seq>") in seq order; a
//   moderator's delete keeps who removed the message (`deletedBy`);
// - recovery: per room, the seq up to which nothing is missing (each history
//   event names the room's previous one in `prev`), which is the `since` of
//   the next joinRoom or history request.

import { ModerationStanding } from "./moderation.js";
import { RecentIds } from "./recent.js";
import { foldName, sameName } from "./protocol.js";

/** A rooms reply counts unread messages up to this; the cap means "this many or more". */
export const UNREAD_CAP = 100;
/** How many messages a room keeps (oldest dropped first). */
export const MAX_ROOM_MESSAGES = 500;
/** A direct room's id: "@" and 32 hex digits. */
export const DIRECT_ID = /^@[0-9a-f]{32}$/;

/** The badge for an unread count: "" for none, "100+" at the cap. */
export function unreadLabel(count) {
  if (!Number.isInteger(count) || count <= 0) return "";
  return count >= UNREAD_CAP ? `${UNREAD_CAP}+` : String(count);
}

/** The key the client files a room under: its name folded (a direct id as it is). */
export function roomKey(room) {
  return DIRECT_ID.test(room) ? room : foldName(room);
}

const isSeq = (n) => Number.isInteger(n) && n >= 0;

/** The seq up to which one room's history events have all been seen. */
export class RoomHorizon {
  constructor() {
    this.horizon = null; // null: nothing known yet
    this.ahead = new Map(); // seq -> prev, events seen beyond a gap
  }

  /** Start from `base` (the joinRoom's `since`, or the joined ack's lastRead). */
  start(base) {
    if (!isSeq(base)) return;
    if (this.horizon === null || base > this.horizon) this.horizon = base;
    this.drain();
  }

  /** An event with `seq` and `prev` (the room's previous event) was seen. */
  see(seq, prev) {
    if (!isSeq(seq)) return;
    if (this.horizon === null) {
      this.horizon = seq; // the first event we know of: nothing before it is ours to ask
    } else if (seq <= this.horizon) {
      return;
    } else if (isSeq(prev) && prev <= this.horizon) {
      this.horizon = seq;
    } else {
      this.ahead.set(seq, isSeq(prev) ? prev : seq);
    }
    this.drain();
  }

  /**
   * A history answer ended incomplete (older events had expired): the gap
   * before the first event we hold beyond the horizon cannot be filled, so
   * the horizon moves over it.
   */
  accept() {
    if (this.ahead.size === 0) return;
    const firstPrev = Math.min(...[...this.ahead.entries()].map(([s, p]) => Math.min(s, p)));
    if (this.horizon === null || firstPrev > this.horizon) this.horizon = firstPrev;
    this.drain();
  }

  /** Whether an event is known to be missing. */
  get gap() {
    return this.ahead.size > 0;
  }

  drain() {
    let moved = true;
    while (moved) {
      moved = false;
      for (const [seq, prev] of this.ahead) {
        if (seq <= this.horizon) {
          this.ahead.delete(seq);
        } else if (prev <= this.horizon) {
          this.horizon = seq;
          this.ahead.delete(seq);
          moved = true;
        }
      }
    }
  }
}

function newRoom(name) {
  return {
    name, // as the server shows it (or a direct room's @id)
    kind: null, // "public", "private", "direct"
    with: null, // a direct room: the other party's name
    group: null, // a private room's sign-in group (its `joined` ack, or the page made it)
    joined: false, // this connection is in it
    mine: false, // in the read state (the rooms reply's `mine`)
    count: null, // members, from the joined ack or presence
    lastRead: null,
    unreadBase: 0, // from the rooms reply
    unreadSeqs: new Set(), // seqs of live messages counted since
    horizon: new RoomHorizon(),
    lastSeq: null, // the greatest seq seen in the room
    messages: new Map(), // messageId -> message, in arrival order
    changes: new Map(), // messageId -> {seq, text|deleted}: an edit or delete before its message
    counted: new RecentIds(), // messageIds seen (a repeat is never unread twice)
    standing: new ModerationStanding(), // our role, the appointed, the topic
  };
}

export class RoomState {
  constructor({ me = null, maxMessages = MAX_ROOM_MESSAGES } = {}) {
    this.me = me; // our name (our own messages are never unread)
    this.maxMessages = maxMessages;
    this.rooms = new Map(); // roomKey -> room
    this.current = null; // roomKey of the room shown
    this.publicRooms = []; // [{room, kind}] of the last rooms reply
    this.invitations = new Map(); // roomKey -> {room, from}
    this.listComplete = true;
    this.collecting = null; // the parts of a rooms reply so far
  }

  /** The room filed under `name`'s key, or null. */
  room(name) {
    return typeof name === "string" ? (this.rooms.get(roomKey(name)) ?? null) : null;
  }

  /** The rooms this connection is in, in the order joined. */
  get joinedRooms() {
    return [...this.rooms.values()].filter((r) => r.joined).map((r) => r.name);
  }

  /** Every room we know of as ours (joined, or in the read state). */
  get myRooms() {
    return [...this.rooms.values()].filter((r) => r.joined || r.mine).map((r) => r.name);
  }

  /** The name of the room shown, or null. */
  get currentRoom() {
    return this.current === null ? null : this.rooms.get(this.current).name;
  }

  /** The invitations we hold, in the order they came. */
  get invited() {
    return [...this.invitations.values()];
  }

  /** A room's unread count (at most UNREAD_CAP; 0 for the room shown). */
  unread(name) {
    const r = this.room(name);
    if (r === null) return 0;
    return Math.min(UNREAD_CAP, r.unreadBase + r.unreadSeqs.size);
  }

  /** The `since` for a joinRoom or history request of this room (null: none). */
  since(name) {
    return this.room(name)?.horizon.horizon ?? null;
  }

  /** A room's messages, in seq order (each at its latest version). */
  messages(name) {
    const r = this.room(name);
    if (r === null) return [];
    return [...r.messages.values()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * Show a room: its unread count becomes 0. Returns the seq to send in
   * markRead (the last one seen, when it is beyond what the server has as
   * read), or null.
   */
  open(name) {
    const r = this.ensure(name);
    this.current = roomKey(name);
    r.unreadBase = 0;
    r.unreadSeqs.clear();
    return this.toMarkRead(name);
  }

  /** The seq a markRead of this room should send now, or null when nothing is new. */
  toMarkRead(name) {
    const r = this.room(name);
    if (r === null || r.lastSeq === null) return null;
    return r.lastRead !== null && r.lastSeq <= r.lastRead ? null : r.lastSeq;
  }

  /** Forget an invitation (declined). */
  dismiss(name) {
    this.invitations.delete(roomKey(name));
  }

  /**
   * The connection closed: no room is joined any more (the next connection
   * joins them again, each with `since`). Messages, counts and horizons stay.
   */
  disconnected() {
    for (const r of this.rooms.values()) r.joined = false;
    this.collecting = null;
  }

  /**
   * Apply one server frame. Returns {room, join}: the room it concerned (null
   * for none) and, for a direct message in a room we are not in, `join: true`
   * (the client joins a direct room when its first message comes).
   */
  apply(frame) {
    const none = { room: null, join: false };
    if (frame === null || typeof frame !== "object") return none;
    if ("rooms" in frame) return this.roomsPart(frame);
    if ("history" in frame) return { room: this.historyFrame(frame), join: false };
    if (typeof frame.room !== "string") return none;
    const room = frame.room;
    if ("joined" in frame) this.joinedAck(frame);
    else if ("left" in frame) this.leftAck(room);
    else if ("invited" in frame) this.invitations.set(roomKey(room), { room, from: frame.from });
    else if (frame.ack === "markRead") this.markedRead(room, frame.seq);
    else if ("presence" in frame) this.ensure(room).count = frame.presence?.count ?? null;
    else if (Array.isArray(frame.members)) this.ensure(room).count = frame.members.length;
    else if ("publicMessage" in frame || "directMessage" in frame) {
      const join = "directMessage" in frame && !this.ensure(room).joined;
      this.message(frame, { live: true });
      return { room, join };
    } else if ("messageEdited" in frame || "messageDeleted" in frame) this.change(frame);
    else if ("moderation" in frame) return { room, join: false, moderation: this.moderation(frame) };
    return { room, join: false };
  }

  // ------------------------------------------------------------ internals

  ensure(name) {
    const key = roomKey(name);
    let r = this.rooms.get(key);
    if (!r) {
      r = newRoom(name);
      if (DIRECT_ID.test(name)) r.kind = "direct";
      this.rooms.set(key, r);
    }
    return r;
  }

  joinedAck(frame) {
    const { room, kind, count, seq, lastRead } = frame;
    const r = this.ensure(room);
    r.standing.joined(frame);
    r.name = room;
    r.joined = true;
    if (typeof kind === "string") r.kind = kind;
    // A private room's sign-in group, as the server says it (absent: no group).
    if (typeof frame.group === "string" && frame.group !== "") r.group = frame.group;
    if (Number.isInteger(count)) r.count = count;
    if (isSeq(lastRead)) r.lastRead = Math.max(r.lastRead ?? 0, lastRead);
    if (isSeq(seq)) r.lastSeq = Math.max(r.lastSeq ?? 0, seq);
    // The history after our `since` (or after lastRead) follows this ack.
    if (r.horizon.horizon === null && isSeq(lastRead)) r.horizon.start(lastRead);
    this.invitations.delete(roomKey(room));
  }

  leftAck(room) {
    const r = this.room(room);
    if (r === null) return;
    r.joined = false;
    if (this.current === roomKey(room)) this.current = null;
  }

  markedRead(room, seq) {
    const r = this.room(room);
    if (r === null || !isSeq(seq)) return;
    r.lastRead = Math.max(r.lastRead ?? 0, seq);
    r.unreadBase = 0;
    for (const s of r.unreadSeqs) if (s <= r.lastRead) r.unreadSeqs.delete(s);
  }

  roomsPart(frame) {
    const lists = frame.rooms ?? {};
    if (this.collecting === null) this.collecting = { public: [], mine: [], invited: [] };
    for (const part of ["public", "mine", "invited"]) {
      if (Array.isArray(lists[part])) this.collecting[part].push(...lists[part]);
    }
    if (frame.final === false) return { room: null, join: false };
    const { public: listed, mine, invited } = this.collecting;
    this.collecting = null;
    this.listComplete = frame.complete !== false;
    this.publicRooms = listed.filter((e) => typeof e?.room === "string");
    for (const r of this.rooms.values()) r.mine = false;
    for (const entry of mine) {
      if (typeof entry?.room !== "string") continue;
      const r = this.ensure(entry.room);
      r.mine = true;
      if (typeof entry.kind === "string") r.kind = entry.kind;
      if (typeof entry.with === "string") r.with = entry.with;
      if (isSeq(entry.lastRead)) r.lastRead = Math.max(r.lastRead ?? 0, entry.lastRead);
      const shown = this.current === roomKey(entry.room);
      r.unreadBase = shown || !isSeq(entry.unread) ? 0 : Math.min(entry.unread, UNREAD_CAP);
      r.unreadSeqs.clear();
    }
    this.invitations = new Map();
    for (const entry of invited) {
      if (typeof entry?.room === "string") {
        this.invitations.set(roomKey(entry.room), { room: entry.room, from: entry.from });
      }
    }
    return { room: null, join: false };
  }

  /** A history reply's frame: its items are the room's (each may name it too). */
  historyFrame(frame) {
    const items = Array.isArray(frame.history) ? frame.history : [];
    let room = typeof frame.room === "string" ? frame.room : null;
    for (const item of items) {
      if (item === null || typeof item !== "object") continue;
      const inRoom = typeof item.room === "string" ? item : { ...item, room };
      if (typeof inRoom.room !== "string") continue;
      room = inRoom.room;
      if ("publicMessage" in item || "directMessage" in item) this.message(inRoom, { live: false });
      else if ("messageEdited" in item || "messageDeleted" in item) this.change(inRoom);
      else if ("moderation" in item) this.moderation(inRoom);
    }
    if (room !== null && frame.final !== false && frame.complete === false) {
      this.ensure(room).horizon.accept();
    }
    return room;
  }

  message(frame, { live }) {
    const r = this.ensure(frame.room);
    const { seq, prev, messageId } = frame;
    if (isSeq(seq)) r.lastSeq = Math.max(r.lastSeq ?? 0, seq);
    r.horizon.see(seq, prev);
    if (typeof messageId !== "string") return;
    if (r.kind === "direct" && r.with === null) {
      r.with = sameName(frame.from, this.me) ? (frame.to ?? null) : frame.from;
    }
    const fresh = r.counted.first(messageId);
    const earlier = r.messages.get(messageId);
    const message = {
      messageId,
      seq,
      from: frame.from,
      to: frame.to ?? null,
      text: frame.text,
      ts: frame.ts,
      edited: frame.edited === true,
      deleted: frame.deleted === true,
      version: 0, // the seq of the last edit applied (0: none known)
    };
    if (earlier) {
      // A history copy at its latest version may follow the live frame.
      if (!earlier.deleted && (message.edited || message.deleted) && earlier.version === 0) {
        Object.assign(earlier, { text: message.text, edited: message.edited });
        earlier.deleted = message.deleted;
      }
    } else {
      r.messages.set(messageId, message);
      const change = r.changes.get(messageId);
      if (change) {
        r.changes.delete(messageId);
        this.applyChange(message, change);
      }
      while (r.messages.size > this.maxMessages) r.messages.delete(r.messages.keys().next().value);
    }
    const counts =
      live &&
      fresh &&
      this.current !== roomKey(frame.room) &&
      !sameName(frame.from, this.me) &&
      isSeq(seq) &&
      (r.lastRead === null || seq > r.lastRead);
    if (counts) r.unreadSeqs.add(seq);
  }

  change(frame) {
    const r = this.ensure(frame.room);
    const deleted = "messageDeleted" in frame;
    const messageId = deleted ? frame.messageDeleted : frame.messageEdited;
    if (isSeq(frame.seq)) r.lastSeq = Math.max(r.lastSeq ?? 0, frame.seq);
    r.horizon.see(frame.seq, frame.prev);
    if (typeof messageId !== "string") return;
    // A tombstone in a history reply (`of` its own seq) is the message, deleted.
    const by = deleted && typeof frame.by === "string" ? frame.by : null;
    const change = { seq: frame.seq, deleted, text: deleted ? null : frame.text, by };
    const message = r.messages.get(messageId);
    if (message) {
      this.applyChange(message, change);
      return;
    }
    if (deleted && frame.of === frame.seq) {
      r.messages.set(messageId, {
        messageId,
        seq: frame.seq,
        from: frame.from,
        to: null,
        text: null,
        ts: frame.ts,
        edited: false,
        deleted: true,
        deletedBy: by,
        version: frame.seq,
      });
      return;
    }
    // Kept until the message comes: a delete wins, else the latest edit.
    const pending = r.changes.get(messageId);
    if (!pending || (!pending.deleted && (deleted || (change.seq ?? 0) > (pending.seq ?? 0)))) {
      r.changes.set(messageId, change);
    }
  }

  /**
   * A `moderation` event: the room's standing learns from it, and it is kept among the
   * room's messages as a notice (once per seq). Returns what it changed for us
   * (ModerationStanding.event: "appointed", "dismissed", "removed", or null).
   */
  moderation(frame) {
    const r = this.ensure(frame.room);
    const { seq, prev } = frame;
    if (isSeq(seq)) r.lastSeq = Math.max(r.lastSeq ?? 0, seq);
    r.horizon.see(seq, prev);
    const ours = r.standing.event(frame, this.me);
    const id = isSeq(seq) ? `moderation:${seq}` : `moderation:${frame.eventId ?? r.messages.size}`;
    if (!r.messages.has(id)) {
      r.messages.set(id, {
        messageId: id,
        seq: isSeq(seq) ? seq : (r.lastSeq ?? 0),
        notice: true,
        op: frame.moderation,
        from: null,
        by: typeof frame.by === "string" ? frame.by : null,
        target: typeof frame.target === "string" ? frame.target : null,
        text: typeof frame.systemMessage === "string" ? frame.systemMessage : null,
        reason: typeof frame.reason === "string" ? frame.reason : null,
        ts: frame.ts,
        edited: false,
        deleted: false,
        version: 0,
      });
      while (r.messages.size > this.maxMessages) r.messages.delete(r.messages.keys().next().value);
    }
    return ours;
  }

  applyChange(message, change) {
    if (message.deleted) return; // a delete is final
    if (change.deleted) {
      Object.assign(message, { deleted: true, text: null, deletedBy: change.by ?? null, version: change.seq ?? message.version });
    } else if ((change.seq ?? 0) > message.version) {
      Object.assign(message, { text: change.text, edited: true, version: change.seq });
    }
  }
}
