// What the page says about keeping private messages (js/privacy.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { HISTORY_TIME, PrivateKeeping } from "../js/privacy.js";

const DIRECT = `@${"0".repeat(32)}`;

describe("PrivateKeeping", () => {
  it("states both cases before anything is known", () => {
    const k = new PrivateKeeping();
    const line = k.line("Bob");
    assert.equal(k.kept("Bob"), null);
    assert.match(line, /are kept in a direct conversation/);
    assert.match(line, /otherwise they are not stored/);
    assert.ok(line.includes(HISTORY_TIME));
  });

  it("says nothing is stored on an older server (protocol 1)", () => {
    const k = new PrivateKeeping();
    k.agreed(1);
    assert.equal(k.kept("Bob"), false);
    assert.match(k.line("Bob"), /not stored/);
    assert.match(k.line(), /not stored/);
  });

  it("learns from a sendPrivate ack with the direct room that messages with that person are kept", () => {
    const k = new PrivateKeeping();
    k.agreed(2);
    assert.equal(k.see({ ack: "sendPrivate", id: "p1", to: "Bob", room: DIRECT }), true);
    assert.equal(k.kept("bob"), true);
    assert.equal(
      k.line("Bob", (s) => `[${s}]`),
      `Private messages with [Bob] are kept in your direct conversation for ${HISTORY_TIME}; both of you can read them again.`,
    );
    assert.equal(k.see({ ack: "sendPrivate", id: "p2", to: "Bob", room: DIRECT }), false);
  });

  it("learns from an ack without a room that they are not stored", () => {
    const k = new PrivateKeeping();
    k.agreed(2);
    k.see({ ack: "sendPrivate", id: "p1", to: "Carol", seq: 4 });
    assert.equal(k.kept("Carol"), false);
    assert.equal(k.line("Carol"), "Private messages with Carol are not stored: only the two of you receive them.");
    assert.equal(k.kept("Bob"), null);
  });

  it("learns from what others send: a directMessage is kept, a privateMessage on v2 is not", () => {
    const k = new PrivateKeeping();
    k.agreed(2);
    k.see({ directMessage: "hi", room: DIRECT, from: "Dan", to: "me", text: "hi" });
    k.see({ privateMessage: "Eve: hi", from: "Eve", to: "me", text: "hi" });
    assert.equal(k.kept("Dan"), true);
    assert.equal(k.kept("Eve"), false);
  });

  it("ignores other frames and the general line does not name anyone", () => {
    const k = new PrivateKeeping();
    assert.equal(k.see({ ack: "setName", id: "n1", name: "Me" }), false);
    assert.equal(k.see(null), false);
    assert.equal(k.line(""), k.line(null));
  });
});
