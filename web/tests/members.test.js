// The member list (js/members.js, kept by js/names.js): `members` frames, a big
// room's `memberList` parts, and the join/leave/rename notices applied to it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MemberList, compareNames } from "../js/members.js";
import { NameClaim } from "../js/names.js";
import { normaliseFrame } from "../js/protocol.js";

const joinFrame = (name, eventId = null) => ({
  systemMessage: `${name} has joined the chat`,
  event: "join",
  name,
  ...(eventId ? { eventId } : {}),
});
const leaveFrame = (name) => ({ systemMessage: `${name} has left the chat`, event: "leave", name });
const renameFrame = (previous, name) => ({
  systemMessage: `${previous} is now known as ${name}`,
  event: "rename",
  name,
  previous,
});
const part = (names, n, of, eventId = "L1") => ({ memberList: names, part: n, parts: of, eventId });

function feed(list, ...frames) {
  let changed = false;
  for (const f of frames) for (const ev of normaliseFrame(f, 1)) changed = list.apply(ev).changed || changed;
  return changed;
}

describe("normaliseFrame: memberList", () => {
  it("reads a part with its number, the count and the eventId", () => {
    assert.deepEqual(normaliseFrame({ memberList: ["a", "B"], part: 2, parts: 3, eventId: "e7" }), [
      { type: "memberList", members: ["a", "B"], part: 2, parts: 3, eventId: "e7" },
    ]);
  });

  it("treats a part without numbers as the whole list", () => {
    assert.deepEqual(normaliseFrame({ memberList: ["a"] }), [
      { type: "memberList", members: ["a"], part: 1, parts: 1, eventId: null },
    ]);
  });
});

describe("MemberList", () => {
  it("replaces the list when every part of one list has arrived, in part order", () => {
    const list = new MemberList();
    feed(list, { members: ["old"] });
    assert.equal(feed(list, part(["carol", "dave"], 2, 3)), false);
    assert.deepEqual(list.names, ["old"], "nothing changes before the last part");
    feed(list, part(["alice", "Bob"], 1, 3));
    assert.equal(feed(list, part(["erin"], 3, 3)), true);
    assert.deepEqual(list.names, ["alice", "Bob", "carol", "dave", "erin"]);
  });

  it("starts over when a part of another list comes", () => {
    const list = new MemberList();
    feed(list, part(["alice"], 1, 2, "L1"));
    feed(list, part(["x"], 1, 2, "L2"), part(["y"], 2, 2, "L2"));
    assert.deepEqual(list.names, ["x", "y"]);
    feed(list, part(["bob"], 2, 2, "L1"));
    assert.deepEqual(list.names, ["x", "y"], "the first list never completed");
  });

  it("collects the parts of a server that sends no eventId from part 1 on", () => {
    const list = new MemberList();
    feed(list, { memberList: ["a"], part: 1, parts: 2 }, { memberList: ["b"], part: 2, parts: 2 });
    assert.deepEqual(list.names, ["a", "b"]);
    feed(list, { memberList: ["c"], part: 1, parts: 2 });
    feed(list, { memberList: ["d"], part: 1, parts: 2 }, { memberList: ["e"], part: 2, parts: 2 });
    assert.deepEqual(list.names, ["d", "e"]);
  });

  it("applies join, leave and rename notices to the list it has, in order", () => {
    const list = new MemberList();
    feed(list, part(["alice", "carol"], 1, 1));
    assert.equal(feed(list, joinFrame("Bob")), true);
    assert.deepEqual(list.names, ["alice", "Bob", "carol"]);
    feed(list, renameFrame("carol", "Anna"));
    assert.deepEqual(list.names, ["alice", "Anna", "Bob"]);
    feed(list, leaveFrame("ALICE"));
    assert.deepEqual(list.names, ["Anna", "Bob"]);
    feed(list, renameFrame("bob", "bob"));
    assert.deepEqual(list.names, ["Anna", "bob"], "a change of case shows the new spelling");
  });

  it("changes nothing for notices a full list already shows (small rooms)", () => {
    const list = new MemberList();
    feed(list, { members: ["Alice", "Bob"] });
    assert.equal(feed(list, joinFrame("Bob")), false);
    assert.equal(feed(list, leaveFrame("Carol")), false);
    feed(list, { members: ["Alice", "Bobby"] });
    assert.equal(feed(list, renameFrame("Bob", "Bobby")), false);
    assert.deepEqual(list.names, ["Alice", "Bobby"]);
  });

  it("applies notices that came while a list was collected to that list too", () => {
    const list = new MemberList();
    feed(list, part(["alice", "bob"], 1, 2));
    feed(list, joinFrame("zoe"), leaveFrame("bob"));
    feed(list, part(["carol"], 2, 2));
    assert.deepEqual(list.names, ["alice", "carol", "zoe"]);
  });

  it("orders names as the server does: case-insensitively, then by the exact text", () => {
    assert.deepEqual(["b", "B", "a", "C"].sort(compareNames), ["a", "B", "b", "C"]);
  });
});

describe("NameClaim with a big room", () => {
  it("keeps the list from parts and notices, and reports each change once", () => {
    const n = new NameClaim();
    n.request("Zed");
    const frames = [part(["alice", "bob"], 1, 2), part(["Zed"], 2, 2), joinFrame("Zed")];
    const out = frames.flatMap((f) => n.handle(normaliseFrame(f, 1)));
    assert.deepEqual(out, [{ type: "confirmed", name: "Zed" }, { type: "members" }]);
    assert.deepEqual(n.members, ["alice", "bob", "Zed"]);
    assert.deepEqual(n.handle(normaliseFrame(joinFrame("carol"), 1)), [{ type: "members" }]);
    assert.deepEqual(n.members, ["alice", "bob", "carol", "Zed"]);
    n.connectionLost();
    assert.deepEqual(n.members, []);
  });
});
