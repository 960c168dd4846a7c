// Protocol v2 negotiation and frame routing (js/negotiate.js) and the room list (js/roomlist.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { agreedProtocol, asPrivateMessage, isLobby, outgoing, retryAfter, routeFrame } from "../js/negotiate.js";
import { canChange, roomButtonName, roomList } from "../js/roomlist.js";
import { RoomState } from "../js/rooms.js";

describe("negotiation", () => {
  it("a v2 server's setName ack agrees protocol 2", () => {
    assert.equal(agreedProtocol({ ack: "setName", id: "n1", name: "Alice", protocol: 2 }), 2);
  });
  it("an older server's ack, without the field, means v1.1", () => {
    assert.equal(agreedProtocol({ ack: "setName", id: "n1", name: "Alice" }), 1);
  });
  it("other frames say nothing about the protocol", () => {
    assert.equal(agreedProtocol({ ack: "sendPublic", id: "p1" }), null);
    assert.equal(agreedProtocol({ members: ["Alice"] }), null);
    assert.equal(agreedProtocol(null), null);
  });
  it("every setName asks for v2, whatever was agreed", () => {
    const frame = { action: "setName", name: "Alice", id: "n1" };
    assert.deepEqual(outgoing(frame, 1), { ...frame, protocol: 2 });
    assert.deepEqual(outgoing(frame, null), { ...frame, protocol: 2 });
  });
  it("on v2 the lobby's sendPublic and history name the lobby; on v1 they are unchanged", () => {
    const pub = { action: "sendPublic", message: "hi", id: "p1" };
    const hist = { action: "history", since: 4, id: "h1" };
    assert.deepEqual(outgoing(pub, 2), { ...pub, room: "lobby" });
    assert.deepEqual(outgoing(hist, 2), { ...hist, room: "lobby" });
    assert.equal(outgoing(pub, 1), pub);
    assert.equal(outgoing(hist, null), hist);
    const dev = { action: "sendPublic", room: "dev", message: "hi", id: "room-1" };
    assert.equal(outgoing(dev, 2), dev);
  });
  it("the lobby is known by its folded name", () => {
    assert.equal(isLobby("Lobby"), true);
    assert.equal(isLobby("dev"), false);
    assert.equal(isLobby(undefined), false);
  });
});

describe("routing frames", () => {
  const both = { conversation: true, rooms: true };
  const conv = { conversation: true, rooms: false };
  const rooms = { conversation: false, rooms: true };
  it("on v1 every frame is the conversation's", () => {
    assert.deepEqual(routeFrame({ joined: "dev", room: "dev" }, 1), conv);
    assert.deepEqual(routeFrame({ publicMessage: "a: b", room: "dev" }, null), conv);
  });
  it("on v2 another room's frames and v2-only frames go to the rooms UI", () => {
    assert.deepEqual(routeFrame({ publicMessage: "a: b", room: "dev", seq: 1 }, 2), rooms);
    assert.deepEqual(routeFrame({ members: ["a"], room: "dev" }, 2), rooms);
    assert.deepEqual(routeFrame({ joined: "lobby", room: "lobby" }, 2), rooms);
    assert.deepEqual(routeFrame({ typing: "Bob", room: "lobby" }, 2), rooms);
    assert.deepEqual(routeFrame({ rooms: { public: [] }, final: true }, 2), rooms);
    assert.deepEqual(routeFrame({ directMessage: "a: b", room: "@0" }, 2), rooms);
    assert.deepEqual(routeFrame({ ack: "markRead", room: "dev", seq: 3 }, 2), rooms);
  });
  it("on v2 the lobby's frames stay with the conversation and are seen by the rooms UI", () => {
    assert.deepEqual(routeFrame({ publicMessage: "a: b", room: "lobby" }, 2), both);
    assert.deepEqual(routeFrame({ members: ["a"], room: "lobby" }, 2), both);
    assert.deepEqual(routeFrame({ ack: "setName", protocol: 2 }, 2), conv);
    assert.deepEqual(routeFrame({ history: [], final: true }, 2), conv);
  });
  it("a v2 kind of frame without its room is the conversation's (reported as unknown)", () => {
    assert.deepEqual(routeFrame({ typing: "Bob" }, 2), conv);
    assert.deepEqual(routeFrame({ rooms: "x" }, 2), conv);
  });
  it("a v2 sendPrivate ack goes to both: the outbox and the direct room", () => {
    assert.deepEqual(routeFrame({ ack: "sendPrivate", id: "p", room: "@ab" }, 2), both);
  });
  it("errors go where their action came from", () => {
    const err = (action, id = "x") => ({ error: { code: "E", action, id } });
    assert.deepEqual(routeFrame(err("joinRoom"), 2), rooms);
    assert.deepEqual(routeFrame(err("sendPublic", "room-3"), 2), rooms);
    assert.deepEqual(routeFrame(err("sendPublic", "abc-3"), 2), conv);
    assert.deepEqual(routeFrame(err("setName"), 2), conv);
  });
});

describe("the room list", () => {
  const joined = (room, kind = "public") => ({ joined: room, room, kind, count: 2, seq: 0, lastRead: 0 });
  it("lists the lobby first, our rooms by name, direct ones by the other person", () => {
    const s = new RoomState({ me: "Alice" });
    s.apply(joined("lobby"));
    s.apply(joined("zeta"));
    s.apply(joined("dev"));
    s.apply({
      rooms: {
        public: [{ room: "dev", kind: "public" }, { room: "music", kind: "public" }],
        mine: [{ room: "@0123456789abcdef0123456789abcdef", kind: "direct", with: "Bob", lastRead: 1, unread: 3 }],
        invited: [{ room: "ops", from: "Carol" }],
      },
      final: true,
    });
    s.open("lobby");
    const list = roomList(s);
    assert.deepEqual(list.rooms.map((e) => e.room), ["lobby", "dev", "zeta"]);
    assert.equal(list.rooms[0].current, true);
    assert.deepEqual(list.direct.map((e) => [e.label, e.badge]), [["Bob", "3"]]);
    assert.deepEqual(list.invited.map((e) => [e.room, e.from, e.action]), [["ops", "Carol", "join"]]);
    assert.deepEqual(list.public.map((e) => e.room), ["music"]);
  });
  it("a room's button says its kind, who invited and how many are unread", () => {
    assert.equal(
      roomButtonName({ label: "dev", kind: "public", unread: 2, badge: "2", action: "open" }),
      "room dev, 2 unread",
    );
    assert.equal(
      roomButtonName({ label: "ops", kind: "private", unread: 0, from: "Carol", action: "join" }),
      "Join private room ops, invited by Carol",
    );
  });
});

describe("edit and delete rights", () => {
  const m = { from: "Alice", seq: 4, ts: 1_000_000, deleted: false };
  it("our own message inside the window may change", () => {
    assert.equal(canChange(m, "alice", 1_000_000 + 899_000), true);
  });
  it("not after the window, not another's, not a deleted one, never with a window of 0", () => {
    assert.equal(canChange(m, "Alice", 1_000_000 + 900_000), false);
    assert.equal(canChange(m, "Bob", 1_000_100), false);
    assert.equal(canChange({ ...m, deleted: true }, "Alice", 1_000_100), false);
    assert.equal(canChange(m, "Alice", 1_000_100, 0), false);
  });
});

describe("a direct message in the lobby's log", () => {
  it("is today's private message, without the direct room's seq", () => {
    const frame = {
      directMessage: "Alice: hi!",
      room: "@5b0e9c0d1e2f3a4b5c6d7e8f9a0b1c2d",
      from: "Alice",
      to: "Bob",
      text: "hi!",
      ts: 1795654691420,
      seq: 3,
      messageId: "9d2e",
      prev: 2,
    };
    assert.deepEqual(asPrivateMessage(frame), {
      privateMessage: "Alice: hi!",
      from: "Alice",
      to: "Bob",
      text: "hi!",
      ts: 1795654691420,
      messageId: "9d2e",
    });
    assert.equal(asPrivateMessage({ publicMessage: "a: b" }), null);
  });
});

describe("room frames refused for their rate", () => {
  const limited = (action, retryAfterMs) => ({
    error: { code: "RATE_LIMITED", action, id: "room-4", ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
  });
  it("a join, leave or create refused as too fast is sent again after retryAfterMs", () => {
    assert.equal(retryAfter(limited("joinRoom", 9400)), 9400);
    assert.equal(retryAfter(limited("leaveRoom", 0)), 100);
    assert.equal(retryAfter(limited("createRoom")), 1000);
  });
  it("other refusals are not retried", () => {
    assert.equal(retryAfter(limited("sendPublic", 500)), null);
    assert.equal(retryAfter({ error: { code: "ROOM_NOT_FOUND", action: "joinRoom" } }), null);
    assert.equal(retryAfter({ joined: "dev" }), null);
  });
});
