// Our messages in rooms (js/roomoutbox.js): shown as sending until the server's own copy
// with our id comes back, resent with the same id after a reconnect, failed exactly.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ACK_TIMEOUT_MS } from "../js/outbox.js";
import { RoomOutboxes, deliveryOf, roomFrameIds } from "../js/roomoutbox.js";
import { FakeClock } from "./helpers.js";

function make() {
  const clock = new FakeClock();
  const sent = [];
  let open = true;
  let n = 0;
  let reconnects = 0;
  const changes = [];
  const boxes = new RoomOutboxes({
    send: (f) => {
      if (!open) return false;
      sent.push(f);
      return true;
    },
    nextId: () => `room-t-${++n}`,
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    onChange: (room) => changes.push(room),
    onReconnectNeeded: () => (reconnects += 1),
  });
  return { boxes, sent, clock, changes, setOpen: (v) => (open = v), reconnects: () => reconnects };
}

const copy = (room, text, id, seq, { messageId = `m${seq}`, kind = "publicMessage" } = {}) => ({
  [kind]: `Alice: ${text}`,
  room,
  from: "Alice",
  text,
  ts: 1000 + seq,
  seq,
  prev: seq - 1,
  messageId,
  id,
});

describe("RoomOutboxes", () => {
  it("waits for the room's join, then sends one message at a time with the room named", () => {
    const t = make();
    const a = t.boxes.enqueue("dev", "one");
    t.boxes.enqueue("dev", "two");
    assert.deepEqual(t.sent, []);
    assert.deepEqual(deliveryOf(a, t.clock.now()), { delivery: "sending", note: "Sending…" });
    t.boxes.joined("dev");
    assert.deepEqual(t.sent, [{ action: "sendPublic", message: "one", id: "room-t-1", room: "dev" }]);
    const out = t.boxes.handle(copy("dev", "one", "room-t-1", 4));
    assert.equal(out.type, "sent");
    assert.equal(out.room, "dev");
    assert.equal(t.boxes.wasSent("m4"), true);
    assert.deepEqual(t.sent.at(-1), { action: "sendPublic", message: "two", id: "room-t-2", room: "dev" });
    assert.deepEqual(
      t.boxes.pending("dev").map((i) => i.text),
      ["two"],
    );
  });

  it("keeps each room's queue apart: a room not joined holds only its own messages", () => {
    const t = make();
    t.boxes.enqueue("ops", "held");
    t.boxes.enqueue("dev", "goes");
    t.boxes.joined("dev");
    assert.deepEqual(
      t.sent.map((f) => [f.room, f.message]),
      [["dev", "goes"]],
    );
    assert.deepEqual(
      t.boxes.pending("OPS").map((i) => i.state),
      ["queued"],
    );
  });

  it("resends with the same id on the next connection, once the room is joined again", () => {
    const t = make();
    t.boxes.enqueue("dev", "again");
    t.boxes.joined("dev");
    t.boxes.closed();
    t.setOpen(false);
    t.setOpen(true);
    assert.equal(t.sent.length, 1);
    t.boxes.joined("dev");
    assert.equal(t.sent.length, 2);
    assert.equal(t.sent[1].id, t.sent[0].id);
    assert.equal(t.boxes.handle(copy("dev", "again", t.sent[0].id, 9)).type, "sent");
    assert.deepEqual(t.boxes.pending("dev"), []);
  });

  it("resends with the same id when no acknowledgement comes within the timeout", () => {
    const t = make();
    t.boxes.enqueue("dev", "slow");
    t.boxes.joined("dev");
    t.clock.advance(ACK_TIMEOUT_MS + 1);
    assert.equal(t.sent.length, 2);
    assert.equal(t.sent[1].id, t.sent[0].id);
    assert.deepEqual(t.changes, ["dev"]);
  });

  it("takes a direct room's own copy (a directMessage) as the acknowledgement", () => {
    const t = make();
    const room = `@${"a".repeat(32)}`;
    t.boxes.enqueue(room, "psst");
    t.boxes.joined(room);
    const out = t.boxes.handle(copy(room, "psst", "room-t-1", 2, { kind: "directMessage" }));
    assert.equal(out.type, "sent");
  });

  it("fails a message exactly: an error of sendPublic with its id, and shows why", () => {
    const t = make();
    const item = t.boxes.enqueue("dev", "nope");
    t.boxes.joined("dev");
    assert.equal(t.boxes.handle({ error: { code: "NOT_IN_ROOM", action: "sendPublic", id: "other" } }), null);
    const out = t.boxes.handle({
      error: { code: "NOT_IN_ROOM", message: "Join the room before sending to it.", action: "sendPublic", id: "room-t-1" },
    });
    assert.equal(out.type, "failed");
    assert.deepEqual(deliveryOf(item, t.clock.now()), {
      delivery: "failed",
      note: "Not delivered: Join the room before sending to it.",
    });
    assert.deepEqual(t.boxes.pending("dev"), [item]);
  });

  it("waits out RATE_LIMITED and sends the same id again", () => {
    const t = make();
    const item = t.boxes.enqueue("dev", "fast");
    t.boxes.joined("dev");
    const out = t.boxes.handle({
      error: { code: "RATE_LIMITED", action: "sendPublic", id: "room-t-1", retryAfterMs: 2000 },
    });
    assert.equal(out.type, "waiting");
    assert.match(deliveryOf(item, t.clock.now()).note, /retrying in 3 s/);
    t.clock.advance(2200);
    assert.deepEqual(
      t.sent.map((f) => f.id),
      ["room-t-1", "room-t-1"],
    );
  });

  it("asks for a new connection on NOT_CONNECTED and keeps the message", () => {
    const t = make();
    t.boxes.enqueue("dev", "later");
    t.boxes.joined("dev");
    const out = t.boxes.handle({ error: { code: "NOT_CONNECTED", action: "sendPublic", id: "room-t-1" } });
    assert.equal(out.type, "reconnect");
    assert.equal(t.reconnects(), 1);
    assert.equal(t.boxes.pending("dev")[0].state, "queued");
  });

  it("fails what waits in a room we leave", () => {
    const t = make();
    t.boxes.enqueue("dev", "unsent");
    t.boxes.left("dev");
    const [item] = t.boxes.pending("dev");
    assert.equal(deliveryOf(item, 0).note, "Not delivered: you left the room");
  });

  it("ignores other people's messages and copies without an id", () => {
    const t = make();
    t.boxes.enqueue("dev", "mine");
    t.boxes.joined("dev");
    assert.equal(t.boxes.handle({ ...copy("dev", "x", undefined, 3), from: "Bob" }), null);
    assert.equal(t.boxes.handle(copy("other", "mine", "room-t-1", 3)), null);
  });

  it("draws ids that the rooms UI's error routing recognises, new on each page", () => {
    const a = roomFrameIds();
    const b = roomFrameIds();
    const first = a();
    assert.match(first, /^room-[0-9a-z]{10}-1$/);
    assert.notEqual(first, b());
  });
});
