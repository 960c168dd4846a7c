// Private rooms admitted by a sign-in group (js/roomlist.js): the group as the server
// accepts it, and how the room list names such a room.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { RoomState } from "../js/rooms.js";
import { GROUP_MAX_LENGTH, roomButtonName, roomList, validateGroup } from "../js/roomlist.js";

describe("validateGroup", () => {
  it("takes printable ASCII without a comma, trimmed; nothing means no group", () => {
    assert.deepEqual(validateGroup(" sre "), { ok: true, value: "sre" });
    assert.deepEqual(validateGroup("team a/b_c.d-e"), { ok: true, value: "team a/b_c.d-e" });
    assert.deepEqual(validateGroup(""), { ok: true, value: null });
    assert.deepEqual(validateGroup("   "), { ok: true, value: null });
    assert.deepEqual(validateGroup("x".repeat(GROUP_MAX_LENGTH)).ok, true);
  });
  it("refuses a comma, non-ASCII, control characters and more than 128 characters", () => {
    for (const bad of ["a,b", "équipe", "a\tb", "x".repeat(GROUP_MAX_LENGTH + 1)]) {
      const v = validateGroup(bad);
      assert.equal(v.ok, false, bad);
      assert.match(v.message, /printable ASCII characters without a comma/);
    }
  });
});

describe("a group room in the room list", () => {
  it("carries the group of a room this page made for one, and names it", () => {
    const s = new RoomState({ me: "Gail" });
    s.apply({ joined: "lobby", room: "lobby", kind: "public", count: 1, seq: 0, lastRead: 0 });
    s.apply({ joined: "ops", room: "ops", kind: "private", count: 1, seq: 0, lastRead: 0 });
    s.room("ops").group = "sre";
    const entry = roomList(s).rooms.find((e) => e.room === "ops");
    assert.equal(entry.group, "sre");
    assert.equal(roomButtonName(entry), "private room ops, for sign-in group sre");
    const lobby = roomList(s).rooms[0];
    assert.equal(lobby.group, null);
    assert.equal(roomButtonName(lobby), "room lobby");
  });
});
