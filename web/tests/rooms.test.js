// Rooms as the client keeps them (js/rooms.js): joined rooms, the current
// room, unread counts, invitations, edits and deletes, and `since` per room.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RoomHorizon, RoomState, UNREAD_CAP, roomKey, unreadLabel } from "../js/rooms.js";

const DIRECT = "@5b0e9c0d1e2f3a4b5c6d7e8f9a0b1c2d";

// v2 frames as the server builds them (lambda_src/chat/frames.py).
const joined = (room, { kind = "public", count = 2, seq = 0, lastRead = 0, id = null } = {}) => ({
  joined: room,
  room,
  kind,
  count,
  seq,
  lastRead,
  ...(id ? { id } : {}),
});
const msg = (room, seq, { from = "Bob", text = `m${seq}`, prev = seq - 1, id = `${room}-${seq}` } = {}) => ({
  publicMessage: `${from}: ${text}`,
  room,
  from,
  text,
  ts: 1795654691420 + seq,
  seq,
  messageId: id,
  prev,
});
const direct = (room, seq, { from = "Bob", to = "Alice", text = "hi!", prev = seq - 1 } = {}) => ({
  directMessage: `${from}: ${text}`,
  room,
  from,
  to,
  text,
  ts: 1795654691420,
  seq,
  messageId: `d${seq}`,
  prev,
});
const edited = (room, messageId, of, seq, text, prev = seq - 1) => ({
  messageEdited: messageId,
  room,
  of,
  from: "Bob",
  text,
  ts: 1795654699000,
  seq,
  prev,
  eventId: `e${seq}`,
});
const deleted = (room, messageId, of, seq, prev = seq - 1) => ({
  messageDeleted: messageId,
  room,
  of,
  from: "Bob",
  ts: 1795654702000,
  seq,
  prev,
  eventId: `x${seq}`,
});
const roomsReply = ({ pub = [], mine = [], invited = [], final = true, complete = true } = {}) => ({
  rooms: { public: pub, mine, invited },
  final,
  ...(final ? { complete, id: "r1" } : {}),
});

function state(...frames) {
  const s = new RoomState({ me: "Alice" });
  for (const f of frames) s.apply(f);
  return s;
}

describe("rooms joined and the current room", () => {
  it("a joined ack adds the room and a left ack removes it", () => {
    const s = state(joined("lobby"), joined("dev", { count: 3, seq: 57, lastRead: 41 }));
    assert.deepEqual(s.joinedRooms, ["lobby", "dev"]);
    assert.equal(s.room("dev").kind, "public");
    assert.equal(s.room("dev").count, 3);
    s.apply({ left: "dev", room: "dev", id: "l1" });
    assert.deepEqual(s.joinedRooms, ["lobby"]);
  });

  it("a private room's joined ack names its sign-in group; a room without one has none", () => {
    const s = state({ ...joined("ops", { kind: "private" }), group: "sre" }, joined("dev"));
    assert.equal(s.room("ops").group, "sre");
    assert.equal(s.room("dev").group, null);
  });

  it("a room is found whatever the case of its name, and shown as the server names it", () => {
    const s = state(joined("Dev"));
    assert.equal(s.room("DEV").name, "Dev");
    assert.equal(roomKey("DEV"), roomKey("dev"));
    assert.equal(roomKey(DIRECT), DIRECT);
  });

  it("opening a room makes it current; leaving it leaves no current room", () => {
    const s = state(joined("lobby"), joined("dev"));
    s.open("dev");
    assert.equal(s.currentRoom, "dev");
    s.apply({ left: "dev", room: "dev" });
    assert.equal(s.currentRoom, null);
  });

  it("a leave notice of someone else does not take us out of the room", () => {
    const s = state(joined("dev"));
    s.apply({ systemMessage: "Bob has left dev", event: "leave", name: "Bob", room: "dev", eventId: "e" });
    assert.deepEqual(s.joinedRooms, ["dev"]);
  });

  it("after a disconnect no room is joined, but the rooms and their state stay", () => {
    const s = state(joined("dev"), msg("dev", 1, { prev: 0 }));
    s.disconnected();
    assert.deepEqual(s.joinedRooms, []);
    assert.deepEqual(s.myRooms, []);
    assert.equal(s.since("dev"), 1);
    assert.equal(s.messages("dev").length, 1);
  });

  it("member counts follow the joined ack, member lists and presence", () => {
    const s = state(joined("dev", { count: 3 }));
    s.apply({ members: ["alice", "Bob"], room: "dev", eventId: "m" });
    assert.equal(s.room("dev").count, 2);
    s.apply({ presence: { count: 1204, joined: ["Carol"], left: [] }, room: "dev", eventId: "p" });
    assert.equal(s.room("dev").count, 1204);
  });
});

describe("the rooms reply", () => {
  it("reads public rooms, my rooms with their unread counts and my invitations", () => {
    const s = state(
      roomsReply({
        pub: [{ room: "dev", kind: "public" }],
        mine: [
          { room: "ops", kind: "private", lastRead: 12, unread: 4 },
          { room: DIRECT, kind: "direct", with: "Bob", lastRead: 3, unread: 0 },
        ],
        invited: [{ room: "ops", from: "Carol" }],
      }),
    );
    assert.deepEqual(s.publicRooms, [{ room: "dev", kind: "public" }]);
    assert.deepEqual(s.myRooms, ["ops", DIRECT]);
    assert.equal(s.unread("ops"), 4);
    assert.equal(s.unread(DIRECT), 0);
    assert.equal(s.room(DIRECT).with, "Bob");
    assert.equal(s.room("ops").lastRead, 12);
    assert.deepEqual(s.invited, [{ room: "ops", from: "Carol" }]);
    assert.equal(s.listComplete, true);
  });

  it("a reply in parts is applied once its final part has come", () => {
    const s = new RoomState();
    s.apply(roomsReply({ pub: [{ room: "a", kind: "public" }], mine: [{ room: "x", kind: "public", lastRead: 1, unread: 2 }], final: false }));
    assert.deepEqual(s.publicRooms, []);
    assert.deepEqual(s.myRooms, []);
    s.apply(roomsReply({ pub: [{ room: "b", kind: "public" }], invited: [{ room: "y", from: "Eve" }], complete: false }));
    assert.deepEqual(s.publicRooms.map((r) => r.room), ["a", "b"]);
    assert.deepEqual(s.myRooms, ["x"]);
    assert.equal(s.unread("x"), 2);
    assert.deepEqual(s.invited, [{ room: "y", from: "Eve" }]);
    assert.equal(s.listComplete, false, "a list the server cut says so");
  });

  it("a new reply replaces the last one's lists", () => {
    const s = state(roomsReply({ mine: [{ room: "x", kind: "public", lastRead: 1, unread: 2 }], invited: [{ room: "y", from: "Eve" }] }));
    s.apply(roomsReply({ mine: [{ room: "z", kind: "public", lastRead: 0, unread: 0 }] }));
    assert.deepEqual(s.myRooms, ["z"]);
    assert.deepEqual(s.invited, []);
  });
});

describe("unread counts", () => {
  it("a message in another room counts; one in the room shown does not", () => {
    const s = state(joined("lobby"), joined("dev"));
    s.open("lobby");
    s.apply(msg("dev", 1, { prev: 0 }));
    s.apply(msg("dev", 2));
    s.apply(msg("lobby", 1, { prev: 0 }));
    assert.equal(s.unread("dev"), 2);
    assert.equal(s.unread("lobby"), 0);
  });

  it("our own messages, repeats and history are never unread", () => {
    const s = state(joined("lobby"), joined("dev"));
    s.open("lobby");
    s.apply(msg("dev", 1, { from: "alice", prev: 0 }));
    s.apply(msg("dev", 2));
    s.apply(msg("dev", 2));
    s.apply({ history: [msg("dev", 3)], room: "dev", final: true, complete: true });
    s.apply(msg("dev", 3)); // the same message, live after its history copy
    assert.equal(s.unread("dev"), 1);
  });

  it("a message at or before the room's last-read seq is not unread", () => {
    const s = state(joined("dev", { seq: 10, lastRead: 10 }));
    s.apply(msg("dev", 9, { prev: 8 }));
    assert.equal(s.unread("dev"), 0);
    s.apply(msg("dev", 11, { prev: 10 }));
    assert.equal(s.unread("dev"), 1);
  });

  it("adds live messages to the reply's count, and stops at 100, shown as 100+", () => {
    const s = state(roomsReply({ mine: [{ room: "dev", kind: "public", lastRead: 10, unread: 98 }] }), joined("dev", { seq: 108, lastRead: 10 }));
    for (let seq = 109; seq <= 112; seq += 1) s.apply(msg("dev", seq));
    assert.equal(s.unread("dev"), UNREAD_CAP);
    assert.equal(unreadLabel(s.unread("dev")), "100+");
    assert.equal(unreadLabel(99), "99");
    assert.equal(unreadLabel(0), "");
  });

  it("a direct message counts, and asks to join its room when we are not in it", () => {
    const s = state(joined("lobby"));
    s.open("lobby");
    const result = s.apply(direct(DIRECT, 3, { prev: 2 }));
    assert.deepEqual(result, { room: DIRECT, join: true });
    assert.equal(s.unread(DIRECT), 1);
    assert.equal(s.room(DIRECT).kind, "direct");
    assert.equal(s.room(DIRECT).with, "Bob");
    s.apply(joined(DIRECT, { kind: "direct", seq: 3, lastRead: 2 }));
    assert.deepEqual(s.apply(direct(DIRECT, 4)), { room: DIRECT, join: false });
  });

  it("opening a room sets its count to 0 and says which seq to mark read", () => {
    const s = state(joined("lobby"), joined("dev", { seq: 5, lastRead: 5 }));
    s.open("lobby");
    s.apply(msg("dev", 6, { prev: 5 }));
    s.apply(msg("dev", 7));
    assert.equal(s.open("dev"), 7);
    assert.equal(s.unread("dev"), 0);
    s.apply({ ack: "markRead", id: "m1", room: "dev", seq: 7 });
    assert.equal(s.toMarkRead("dev"), null, "nothing new since");
  });

  it("a markRead ack clears what it covers and keeps what came after it", () => {
    const s = state(roomsReply({ mine: [{ room: "dev", kind: "public", lastRead: 1, unread: 40 }] }), joined("lobby"), joined("dev", { seq: 41, lastRead: 1 }));
    s.open("lobby");
    s.apply(msg("dev", 42, { prev: 41 }));
    s.apply(msg("dev", 43));
    assert.equal(s.unread("dev"), 42);
    s.apply({ ack: "markRead", id: "m1", room: "dev", seq: 42 }); // read in another tab
    assert.equal(s.unread("dev"), 1);
    assert.equal(s.room("dev").lastRead, 42);
  });

  it("a markRead ack never moves the last-read seq back", () => {
    const s = state(joined("dev", { seq: 9, lastRead: 9 }));
    s.apply({ ack: "markRead", id: "m1", room: "dev", seq: 4 });
    assert.equal(s.room("dev").lastRead, 9);
  });
});

describe("invitations", () => {
  it("an invited frame adds one, joining the room removes it, dismissing forgets it", () => {
    const s = state(
      { invited: "ops", room: "ops", from: "Carol", eventId: "1e7f" },
      { invited: "sre", room: "sre", from: "Dan", eventId: "2e7f" },
    );
    assert.deepEqual(s.invited, [
      { room: "ops", from: "Carol" },
      { room: "sre", from: "Dan" },
    ]);
    s.apply(joined("ops", { kind: "private" }));
    assert.deepEqual(s.invited, [{ room: "sre", from: "Dan" }]);
    s.dismiss("SRE");
    assert.deepEqual(s.invited, []);
  });

  it("a second invitation to one room keeps one entry, from the latest inviter", () => {
    const s = state({ invited: "ops", room: "ops", from: "Carol" }, { invited: "ops", room: "Ops", from: "Dan" });
    assert.deepEqual(s.invited, [{ room: "Ops", from: "Dan" }]);
  });
});

describe("edits and deletes", () => {
  it("an edit replaces the text of the message it names and marks it edited", () => {
    const s = state(joined("dev"), msg("dev", 42, { id: "3f6c", text: "typo", prev: 0 }));
    s.apply(edited("dev", "3f6c", 42, 59, "fixed", 42));
    const [m] = s.messages("dev");
    assert.equal(m.text, "fixed");
    assert.equal(m.edited, true);
    assert.equal(m.seq, 42, "it keeps its place");
  });

  it("a delete leaves a tombstone without its text, and no later edit brings it back", () => {
    const s = state(joined("dev"), msg("dev", 42, { id: "3f6c", text: "oops", prev: 0 }));
    s.apply(deleted("dev", "3f6c", 42, 60, 42));
    s.apply(edited("dev", "3f6c", 42, 59, "late edit", 42));
    const [m] = s.messages("dev");
    assert.equal(m.deleted, true);
    assert.equal(m.text, null);
  });

  it("an edit replayed after a history tombstone does not bring the message back", () => {
    const s = state(joined("dev", { seq: 60, lastRead: 40 }));
    const tombstone = { messageDeleted: "b", room: "dev", of: 42, from: "Bob", ts: 1, seq: 42, prev: 41 };
    s.apply({ history: [tombstone], room: "dev", final: true, complete: true });
    s.apply(edited("dev", "b", 42, 59, "resurrected", 58));
    const [m] = s.messages("dev");
    assert.deepEqual([m.deleted, m.text, m.edited], [true, null, false]);
  });

  it("an older edit arriving after a newer one does not win", () => {
    const s = state(joined("dev"), msg("dev", 1, { id: "a", prev: 0 }));
    s.apply(edited("dev", "a", 1, 5, "second", 4));
    s.apply(edited("dev", "a", 1, 3, "first", 2));
    assert.equal(s.messages("dev")[0].text, "second");
  });

  it("an edit or delete that comes before its message is applied when the message comes", () => {
    const s = state(joined("dev"));
    s.apply(edited("dev", "a", 1, 3, "fixed", 2));
    s.apply(deleted("dev", "b", 2, 4, 3));
    s.apply(msg("dev", 1, { id: "a", text: "typo", prev: 0 }));
    s.apply(msg("dev", 2, { id: "b", text: "gone", prev: 1 }));
    const [a, b] = s.messages("dev");
    assert.deepEqual([a.text, a.edited], ["fixed", true]);
    assert.deepEqual([b.text, b.deleted], [null, true]);
  });

  it("an edit in one room leaves the same messageId in another room alone", () => {
    const s = state(joined("dev"), joined("ops"), msg("dev", 1, { id: "same", prev: 0 }), msg("ops", 1, { id: "same", prev: 0 }));
    s.apply(edited("dev", "same", 1, 2, "changed", 1));
    assert.equal(s.messages("dev")[0].text, "changed");
    assert.equal(s.messages("ops")[0].text, "m1");
  });

  it("reads a history reply at latest versions: edited items, tombstones and events", () => {
    const s = state(joined("dev", { seq: 60, lastRead: 40 }));
    s.apply({
      history: [
        { ...msg("dev", 41, { id: "a", text: "fixed", prev: 40 }), edited: true },
        { messageDeleted: "b", room: "dev", of: 42, from: "Bob", ts: 1, seq: 42, prev: 41 },
        msg("dev", 43, { id: "c", prev: 42 }),
        edited("dev", "c", 43, 59, "better", 43),
        deleted("dev", "b", 42, 60, 59),
      ],
      room: "dev",
      final: true,
      complete: true,
      id: "h1",
    });
    const shown = s.messages("dev").map((m) => [m.messageId, m.seq, m.text, m.edited, m.deleted]);
    assert.deepEqual(shown, [
      ["a", 41, "fixed", true, false],
      ["b", 42, null, false, true],
      ["c", 43, "better", true, false],
    ]);
    assert.equal(s.since("dev"), 60);
    assert.equal(s.unread("dev"), 0, "history is never unread");
  });

  it("keeps a bounded number of messages per room", () => {
    const s = new RoomState({ maxMessages: 3 });
    for (let seq = 1; seq <= 5; seq += 1) s.apply(msg("dev", seq));
    assert.deepEqual(s.messages("dev").map((m) => m.seq), [3, 4, 5]);
  });
});

describe("recovery: the since of each room", () => {
  it("starts from the joined ack's last-read seq and follows the prev chain", () => {
    const s = state(joined("dev", { seq: 45, lastRead: 41 }));
    assert.equal(s.since("dev"), 41);
    s.apply({ history: [msg("dev", 43, { prev: 41 }), msg("dev", 45, { prev: 43 })], room: "dev", final: true, complete: true });
    assert.equal(s.since("dev"), 45);
    s.apply(edited("dev", "dev-43", 43, 46, "x", 45));
    assert.equal(s.since("dev"), 46, "edits and deletes are events of the sequence too");
  });

  it("stops before a gap until the missing event comes", () => {
    const s = state(joined("dev", { seq: 10, lastRead: 10 }));
    s.apply(msg("dev", 11, { prev: 10 }));
    s.apply(msg("dev", 13, { prev: 12 }));
    s.apply(msg("dev", 14, { prev: 13 }));
    assert.equal(s.since("dev"), 11);
    assert.equal(s.room("dev").horizon.gap, true);
    s.apply(msg("dev", 12, { prev: 11 }));
    assert.equal(s.since("dev"), 14);
    assert.equal(s.room("dev").horizon.gap, false);
  });

  it("moves over a gap that an incomplete history answer cannot fill", () => {
    const s = state(joined("dev", { seq: 90, lastRead: 10 }));
    s.apply({ history: [msg("dev", 80, { prev: 79 })], room: "dev", final: false });
    assert.equal(s.since("dev"), 10);
    s.apply({ history: [msg("dev", 90, { prev: 80 })], room: "dev", final: true, complete: false });
    assert.equal(s.since("dev"), 90);
  });

  it("keeps one since per room", () => {
    const s = state(joined("dev", { seq: 5, lastRead: 5 }), joined("ops", { seq: 2, lastRead: 2 }));
    s.apply(msg("ops", 3, { prev: 2 }));
    assert.deepEqual([s.since("dev"), s.since("ops"), s.since("nowhere")], [5, 3, null]);
  });

  it("a reconnect's join keeps the since it was asked with", () => {
    const s = state(joined("dev", { seq: 5, lastRead: 5 }), msg("dev", 6, { prev: 5 }));
    s.disconnected();
    s.apply(joined("dev", { seq: 9, lastRead: 5 })); // joined again with since 6
    assert.equal(s.since("dev"), 6);
  });

  it("RoomHorizon on its own: the first event starts it, older ones change nothing", () => {
    const h = new RoomHorizon();
    assert.equal(h.horizon, null);
    h.see(7, 3);
    assert.equal(h.horizon, 7);
    h.see(5, 4);
    assert.equal(h.horizon, 7);
    h.start(9);
    assert.equal(h.horizon, 9);
  });
});

describe("frames it does not concern itself with", () => {
  it("ignores v1 frames and frames without a room", () => {
    const s = new RoomState();
    assert.deepEqual(s.apply({ members: ["a"], eventId: "e" }), { room: null, join: false });
    assert.deepEqual(s.apply({ publicMessage: "a: b", from: "a", text: "b", seq: 1, messageId: "m" }), { room: null, join: false });
    assert.deepEqual(s.apply(null), { room: null, join: false });
    assert.deepEqual(s.apply({ ack: "invite", id: "i1", room: "ops", to: "Bob" }), { room: "ops", join: false });
    assert.deepEqual(s.myRooms, []);
  });
});
