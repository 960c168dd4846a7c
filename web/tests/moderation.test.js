// Moderation in the client (js/moderation.js, and its part of js/rooms.js): standing
// from `joined` and appointments, what each standing may do, the `moderate` frames,
// notices, tombstones and the errors' sentences.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  DURATIONS,
  ModerationStanding,
  actionLabel,
  confirmation,
  formatWait,
  mayDelete,
  memberActions,
  moderateFrame,
  moderationErrorText,
  noticeText,
  roleOf,
  roomActions,
  roomPowers,
  tombstoneText,
} from "../js/moderation.js";
import { routeFrame } from "../js/negotiate.js";
import { RoomState } from "../js/rooms.js";

const joined = (fields = {}) => ({ joined: "dev", room: "dev", kind: "public", count: 2, seq: 4, lastRead: 4, ...fields });
const event = (op, seq, fields = {}) => ({
  moderation: op,
  room: "dev",
  by: "Alice",
  systemMessage: `${op} in dev`,
  ts: 1764118625000,
  seq,
  prev: seq - 1,
  eventId: `e${seq}`,
  ...fields,
});

describe("roles", () => {
  it("reads the joined frame's role, and nothing unknown", () => {
    assert.equal(roleOf(joined({ role: "creator" })), "creator");
    assert.equal(roleOf(joined({ role: "stackModerator" })), "stackModerator");
    assert.equal(roleOf(joined()), null);
    assert.equal(roleOf(joined({ role: "admin" })), null);
    assert.equal(roleOf(joined({ role: 3 })), null);
  });

  it("gives a member no powers, a moderator the room's, the creator appointing too", () => {
    assert.deepEqual([...roomPowers(null)], []);
    assert.deepEqual([...roomPowers("moderator")].sort(), ["ban", "delete", "kick", "mute"]);
    assert.ok(!roomPowers("moderator").has("appoint"));
    assert.ok(roomPowers("creator").has("appoint"));
    assert.ok(roomPowers("stackModerator").has("appoint"));
  });
});

describe("memberActions", () => {
  it("offers kick, mute, ban and appoint to the creator on a member", () => {
    assert.deepEqual(memberActions({ role: "creator", me: "Alice", target: "Bob" }), ["kick", "mute", "ban", "appoint"]);
  });

  it("offers dismiss for a member seen appointed, and a moderator no appointing", () => {
    assert.deepEqual(memberActions({ role: "creator", me: "Alice", target: "Bob", targetRole: "moderator" }), ["kick", "mute", "ban", "dismiss"]);
    assert.deepEqual(memberActions({ role: "moderator", me: "Bob", target: "Carol" }), ["kick", "mute", "ban"]);
  });

  it("offers nothing on oneself, on an equal, or to a member", () => {
    assert.deepEqual(memberActions({ role: "creator", me: "Alice", target: "ALICE" }), []);
    assert.deepEqual(memberActions({ role: "moderator", me: "Bob", target: "Carol", targetRole: "moderator" }), []);
    assert.deepEqual(memberActions({ role: null, me: "Bob", target: "Carol" }), []);
  });

  it("shows Delete to moderators on messages not yet deleted, never on a notice", () => {
    assert.ok(mayDelete("moderator", { from: "Bob", deleted: false }));
    assert.ok(!mayDelete(null, { from: "Bob", deleted: false }));
    assert.ok(!mayDelete("creator", { from: "Bob", deleted: true }));
    assert.ok(!mayDelete("creator", { notice: true }));
  });

  it("names each action for assistive technology", () => {
    assert.equal(actionLabel("kick", "Bob"), "Kick Bob");
    assert.equal(actionLabel("mute", "Bob"), "Mute Bob…");
    assert.equal(actionLabel("ban", "Bob"), "Ban Bob…");
    assert.equal(actionLabel("appoint", "Bob"), "Appoint Bob moderator");
    assert.equal(actionLabel("dismiss", "Bob"), "Dismiss Bob as moderator");
  });
});

describe("moderateFrame", () => {
  it("builds the kick, mute and ban frames of the protocol, without an empty reason", () => {
    assert.deepEqual(moderateFrame("kick", { room: "dev", target: "Bob", reason: "  ", id: "k1" }), {
      action: "moderate",
      op: "kick",
      room: "dev",
      target: "Bob",
      id: "k1",
    });
    assert.deepEqual(moderateFrame("mute", { room: "dev", target: "Bob", seconds: 300, reason: " flooding " }), {
      action: "moderate",
      op: "mute",
      room: "dev",
      target: "Bob",
      seconds: 300,
      reason: "flooding",
    });
    assert.deepEqual(moderateFrame("ban", { room: "dev", target: "Bob", seconds: 3600 }), {
      action: "moderate",
      op: "ban",
      room: "dev",
      name: "Bob",
      seconds: 3600,
    });
  });

  it("names the message of a delete by messageId and seq, and cuts a long reason", () => {
    const frame = moderateFrame("delete", { room: "dev", messageId: "abc", seq: 7, reason: "x".repeat(300) });
    assert.equal(frame.messageId, "abc");
    assert.equal(frame.seq, 7);
    assert.equal(frame.target, undefined);
    assert.equal(frame.reason.length, 200);
  });

  it("builds the topic and slow-mode frames, which name no member", () => {
    assert.deepEqual(moderateFrame("topic", { room: "dev", topic: "  Release day " }), { action: "moderate", op: "topic", room: "dev", topic: "Release day" });
    assert.deepEqual(moderateFrame("slowMode", { room: "dev", seconds: 0 }), { action: "moderate", op: "slowMode", room: "dev", seconds: 0 });
    assert.deepEqual(roomActions("moderator"), ["topic", "slowMode"]);
    assert.deepEqual(roomActions(null), []);
  });

  it("offers durations within the server's default maximum of 30 days", () => {
    assert.ok(DURATIONS.every((d) => Number.isInteger(d.seconds) && d.seconds >= 1 && d.seconds <= 2592000));
  });

  it("words the confirmation with the target and the room", () => {
    assert.deepEqual(confirmation("kick", { room: "dev", target: "Bob" }).confirm, "Kick Bob");
    assert.match(confirmation("delete", { room: "dev", target: "Bob", excerpt: "hi" }).text, /Bob's message “hi” .* dev/);
  });
});

describe("words", () => {
  it("formats waits in seconds, minutes, hours and days", () => {
    assert.equal(formatWait(0), "");
    assert.equal(formatWait(1500), "2 s");
    assert.equal(formatWait(600000), "10 min");
    assert.equal(formatWait(3600000 + 5 * 60000), "1 h 5 min");
    assert.equal(formatWait(3 * 86400000), "3 days");
  });

  it("says MUTED, BANNED and SLOW_MODE with their wait, and nothing for other codes", () => {
    assert.equal(
      moderationErrorText({ code: "MUTED", action: "sendPublic", retryAfterMs: 300000 }),
      "A moderator muted you in this room: you can send again in 5 min.",
    );
    assert.equal(moderationErrorText({ code: "BANNED", action: "joinRoom", retryAfterMs: 3600000 }), "You are banned from this room for another 1 h.");
    assert.equal(moderationErrorText({ code: "SLOW_MODE", action: "sendPublic", retryAfterMs: 30000 }), "This room is in slow mode: you can send again in 30 s.");
    assert.equal(moderationErrorText({ code: "ROOM_FULL" }), null);
  });

  it("shows a notice's reason, and who removed a message", () => {
    assert.equal(noticeText(event("kick", 5, { systemMessage: "Bob was removed from dev by Alice", reason: "spam" })), "Bob was removed from dev by Alice (reason: spam)");
    assert.equal(tombstoneText({ from: "Bob", deletedBy: "Alice" }), "Bob: This message was removed by Alice.");
    assert.equal(tombstoneText({ from: "Bob", deletedBy: null }), "Bob: This message was deleted.");
  });
});

describe("ModerationStanding", () => {
  it("follows our appointment and dismissal, and knows the appointed", () => {
    const s = new ModerationStanding();
    s.joined(joined());
    assert.equal(s.role, null);
    assert.equal(s.event(event("appoint", 5, { target: "bob" }), "Bob"), "appointed");
    assert.equal(s.role, "moderator");
    assert.equal(s.event(event("dismiss", 6, { target: "Bob" }), "Bob"), "dismissed");
    assert.equal(s.role, null);
    s.event(event("appoint", 7, { target: "Carol" }), "Bob");
    assert.equal(s.roleOf("CAROL"), "moderator");
    assert.equal(s.roleOf("alice"), "creator", "who appoints is a creator or above");
    assert.equal(s.roleOf("Dave"), null);
    assert.deepEqual(memberActions({ role: "moderator", me: "Carol", target: "Alice", targetRole: s.roleOf("Alice") }), []);
  });

  it("lets no replayed event older than joined undo what joined said", () => {
    const s = new ModerationStanding();
    s.joined(joined({ seq: 9, role: "moderator", topic: "Release day" }));
    assert.equal(s.event(event("dismiss", 3, { target: "Bob" }), "Bob"), null);
    assert.equal(s.role, "moderator");
    assert.equal(s.topic, "Release day");
    s.event(event("topic", 10, { topic: "" }), "Bob");
    assert.equal(s.topic, null);
  });

  it("tells us when a kick or ban names us, and never lowers a creator", () => {
    const s = new ModerationStanding();
    s.joined(joined({ role: "creator" }));
    assert.equal(s.event(event("dismiss", 5, { target: "Alice" }), "Alice"), null);
    assert.equal(s.role, "creator");
    assert.equal(s.event(event("kick", 6, { target: "Alice" }), "Alice"), "removed");
  });
});

describe("RoomState and moderation", () => {
  it("keeps live and recovered moderation events as notices in seq order, once each", () => {
    const s = new RoomState({ me: "Bob" });
    s.apply(joined({ seq: 0, lastRead: 0 }));
    s.apply({ publicMessage: "Bob: hi", room: "dev", from: "Bob", text: "hi", ts: 1, seq: 1, messageId: "m1", prev: 0 });
    const got = s.apply(event("mute", 2, { target: "Bob", seconds: 300 }));
    assert.equal(got.room, "dev");
    s.apply({ history: [event("mute", 2, { target: "Bob" }), event("topic", 3, { topic: "x" })], room: "dev", final: true, complete: true });
    const shown = s.messages("dev");
    assert.deepEqual(shown.map((m) => [m.seq, m.notice === true]), [[1, false], [2, true], [3, true]]);
    assert.equal(s.since("dev"), 3, "the events close the gap in prev");
    assert.equal(s.room("dev").standing.topic, "x");
  });

  it("records who removed a message, live and as a tombstone in history", () => {
    const s = new RoomState({ me: "Alice" });
    s.apply({ publicMessage: "Bob: hi", room: "dev", from: "Bob", text: "hi", ts: 1, seq: 1, messageId: "m1", prev: 0 });
    s.apply({ messageDeleted: "m1", room: "dev", of: 1, from: "Bob", by: "Alice", ts: 2, seq: 2, prev: 1 });
    assert.equal(s.messages("dev")[0].deletedBy, "Alice");
    const t = new RoomState({ me: "Carol" });
    t.apply({ history: [{ messageDeleted: "m1", room: "dev", of: 2, from: "Bob", by: "Alice", ts: 2, seq: 2, prev: 1 }], room: "dev" });
    assert.equal(t.messages("dev")[0].deletedBy, "Alice");
  });

  it("routes moderation frames and the moderate action's replies to the rooms UI", () => {
    assert.deepEqual(routeFrame(event("kick", 2, { target: "Bob" }), 2), { conversation: false, rooms: true });
    assert.deepEqual(routeFrame({ ack: "moderate", id: "room-x", op: "kick", room: "dev", seq: 2 }, 2), { conversation: false, rooms: true });
    assert.deepEqual(routeFrame({ error: { code: "NOT_MODERATOR", action: "moderate", id: "room-x" } }, 2), { conversation: false, rooms: true });
  });
});
