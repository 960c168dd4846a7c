// Repeats: the server may deliver a frame twice. Every kind is applied once:
// public and private messages by `messageId` (timeline.js), notices, `members`
// lists and `memberList` parts by (`eventId`, `part`) (conversation.js fresh()).
// The harness feeds frames the way app.js does: fresh() first, then the member
// list and name (names.js), then the log (conversation.js, notices in place).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Conversation } from "../js/conversation.js";
import { NameClaim } from "../js/names.js";
import { normaliseFrame, repeatKey } from "../js/protocol.js";
import { RecentIds } from "../js/recent.js";
import { FakeClock, FakeView, publicFrame } from "./helpers.js";

function client({ maxEventIds } = {}) {
  const clock = new FakeClock();
  const view = new FakeView();
  const names = new NameClaim();
  let n = 0;
  const conv = new Conversation({
    view,
    send: () => true,
    nextId: () => `c${++n}`,
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    ...(maxEventIds ? { maxEventIds } : {}),
  });
  let memberChanges = 0;
  const frame = (f) => {
    const events = conv.fresh(normaliseFrame(f, clock.now()));
    for (const out of names.handle(events)) if (out.type === "members") memberChanges += 1;
    for (const ev of conv.handle(events)) {
      if (ev.type === "system") conv.notice({ kind: "system", text: ev.text, ts: ev.ts });
    }
  };
  return { frame, view, names, conv, memberChanges: () => memberChanges };
}

const join = (name, eventId) => ({
  systemMessage: `${name} has joined the chat`,
  event: "join",
  name,
  ...(eventId === undefined ? {} : { eventId }),
});

describe("repeatKey", () => {
  it("is the eventId and part of a frame, or null without an eventId", () => {
    const key = (f) => repeatKey(normaliseFrame(f, 1));
    assert.equal(key(join("A", "e1")), "e1\u0000");
    assert.equal(key({ memberList: [], part: 2, parts: 3, eventId: "e2" }), "e2\u00002");
    assert.notEqual(key({ memberList: [], part: 1, parts: 3, eventId: "e2" }), key({ memberList: [], part: 2, parts: 3, eventId: "e2" }));
    assert.equal(key(join("A")), null);
    assert.equal(key(publicFrame("A", "hi", 1, 0)), null);
  });
});

describe("Repeated frames are applied once", () => {
  it("a join notice delivered twice is shown once and joins once", () => {
    const c = client();
    c.frame({ members: ["Alice"], eventId: "m1" });
    c.frame(join("Bob", "j1"));
    c.frame(join("Bob", "j1"));
    assert.deepEqual(c.view.texts, ["Bob has joined the chat"]);
    assert.deepEqual(c.names.members, ["Alice", "Bob"]);
  });

  it("a leave and a rename notice delivered twice are shown and applied once", () => {
    const c = client();
    c.frame({ memberList: ["Alice", "Bob", "Carol"], part: 1, parts: 1, eventId: "L" });
    const leave = { systemMessage: "Bob has left the chat", event: "leave", name: "Bob", eventId: "x1" };
    const rename = {
      systemMessage: "Carol is now known as Bob",
      event: "rename",
      name: "Bob",
      previous: "Carol",
      eventId: "r1",
    };
    c.frame(leave);
    c.frame(rename);
    c.frame(leave); // late copy: applying it again would remove the new Bob
    c.frame(rename);
    assert.deepEqual(c.view.texts, ["Bob has left the chat", "Carol is now known as Bob"]);
    assert.deepEqual(c.names.members, ["Alice", "Bob"]);
  });

  it("a members list delivered twice is applied once (a late copy cannot undo a newer list)", () => {
    const c = client();
    c.frame({ members: ["Alice"], eventId: "m1" });
    c.frame({ members: ["Alice", "Bob"], eventId: "m2" });
    c.frame({ members: ["Alice"], eventId: "m1" });
    assert.deepEqual(c.names.members, ["Alice", "Bob"]);
    assert.equal(c.memberChanges(), 2);
  });

  it("memberList parts delivered twice build the list once, and a late repeat changes nothing", () => {
    const c = client();
    const parts = [
      { memberList: ["a", "b"], part: 1, parts: 2, eventId: "L1" },
      { memberList: ["c"], part: 2, parts: 2, eventId: "L1" },
    ];
    c.frame(parts[0]);
    c.frame(parts[0]); // repeated before the list is complete
    c.frame(parts[1]);
    assert.deepEqual(c.names.members, ["a", "b", "c"]);
    c.frame(join("d", "j1"));
    c.frame(parts[0]); // repeated after it: it must not start a new list
    c.frame(parts[1]);
    assert.deepEqual(c.names.members, ["a", "b", "c", "d"]);
    assert.equal(c.memberChanges(), 2);
  });

  it("a public and a private message delivered twice are shown once (messageId)", () => {
    const c = client();
    c.frame(publicFrame("Bob", "hello", 5, 0));
    c.frame(publicFrame("Bob", "hello", 5, 0));
    const dm = { privateMessage: "Bob: psst", from: "Bob", to: "Alice", text: "psst", seq: 6, messageId: "p6" };
    c.frame(dm);
    c.frame(dm);
    assert.deepEqual(c.view.texts, ["hello", "psst"]);
  });

  it("a history item already shown is not shown again", () => {
    const c = client();
    c.frame(publicFrame("Bob", "one", 1, 0));
    c.frame({ history: [publicFrame("Bob", "one", 1, 0), publicFrame("Bob", "two", 2, 1)], final: true });
    assert.deepEqual(c.view.texts, ["one", "two"]);
  });

  it("applies every frame of a server that sends no eventId (older stacks)", () => {
    const c = client();
    c.frame({ members: ["Alice"] });
    c.frame(join("Bob"));
    c.frame(join("Carol"));
    c.frame({ members: ["Alice", "Bob", "Carol"] });
    assert.deepEqual(c.view.texts, ["Bob has joined the chat", "Carol has joined the chat"]);
    assert.deepEqual(c.names.members, ["Alice", "Bob", "Carol"]);
  });

  it("remembers a bounded number of events, the oldest forgotten first", () => {
    const c = client({ maxEventIds: 3 });
    for (const id of ["e1", "e2", "e3", "e4"]) c.frame(join(`N${id}`, id));
    assert.equal(c.conv.events.size, 3);
    c.frame(join("Ne4", "e4"));
    assert.equal(c.view.texts.length, 4, "a recent repeat is still dropped");
    c.frame(join("Ne1", "e1"));
    assert.equal(c.view.texts.length, 5, "the oldest was forgotten");
  });
});

describe("RecentIds", () => {
  it("says whether an id is new, and ignores null", () => {
    const ids = new RecentIds(2);
    assert.equal(ids.first("a"), true);
    assert.equal(ids.first("a"), false);
    assert.equal(ids.first(null), true);
    assert.equal(ids.has(null), false);
    ids.add("b");
    ids.add("c");
    assert.equal(ids.has("a"), false);
    assert.equal(ids.size, 2);
  });
});
