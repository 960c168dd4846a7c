// Typing indicators (js/typing.js): the send throttle, who is typing per
// room, and the line shown.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isolate } from "../js/format.js";
import {
  TYPING_INTERVAL_SECONDS,
  TYPING_SHOW_MS,
  TypingRoster,
  TypingThrottle,
  typingLine,
} from "../js/typing.js";
import { FakeClock } from "./helpers.js";

const typing = (name, room = "dev") => ({ typing: name, room, ts: 1795654691420 });

describe("TypingThrottle", () => {
  it("sends at most one typing frame per interval", () => {
    const clock = new FakeClock();
    const throttle = new TypingThrottle({ now: clock.now });
    assert.equal(TYPING_INTERVAL_SECONDS, 3);
    assert.deepEqual(throttle.typed("dev"), { action: "typing", room: "dev" });
    clock.advance(1000);
    assert.equal(throttle.typed("dev"), null);
    clock.advance(1999);
    assert.equal(throttle.typed("dev"), null, "one millisecond short of the interval");
    clock.advance(1);
    assert.deepEqual(throttle.typed("dev"), { action: "typing", room: "dev" });
  });

  it("counts keystrokes held back as nothing: the interval runs from the last frame sent", () => {
    const clock = new FakeClock();
    const throttle = new TypingThrottle({ intervalSeconds: 0.5, now: clock.now });
    const sent = [];
    for (let i = 0; i < 30; i += 1) {
      if (throttle.typed("dev")) sent.push(clock.now());
      clock.advance(100);
    }
    const gaps = sent.slice(1).map((t, i) => t - sent[i]);
    assert.equal(sent.length, 6);
    assert.ok(gaps.every((g) => g >= 500));
  });

  it("is one throttle per connection, as the server's bucket is", () => {
    const clock = new FakeClock();
    const throttle = new TypingThrottle({ now: clock.now });
    assert.ok(throttle.typed("dev"));
    assert.equal(throttle.typed("ops"), null);
    throttle.reset(); // a new connection has a full bucket
    assert.deepEqual(throttle.typed("ops"), { action: "typing", room: "ops" });
  });

  it("takes the server's interval, to the millisecond", () => {
    const clock = new FakeClock();
    const throttle = new TypingThrottle({ intervalSeconds: 2.007, now: clock.now });
    throttle.typed("dev");
    clock.advance(2006);
    assert.equal(throttle.typed("dev"), null);
    clock.advance(1);
    assert.ok(throttle.typed("dev"));
  });
});

describe("TypingRoster", () => {
  it("shows who is typing in each room, in the order they started", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    assert.equal(roster.apply(typing("Alice")), "dev");
    roster.apply(typing("Bob"));
    roster.apply(typing("Carol", "ops"));
    assert.deepEqual(roster.who("dev"), ["Alice", "Bob"]);
    assert.deepEqual(roster.who("ops"), ["Carol"]);
    assert.deepEqual(roster.who("lobby"), []);
  });

  it("forgets someone a few seconds after their last typing frame", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    roster.apply(typing("Alice"));
    clock.advance(3000);
    roster.apply(typing("Bob"));
    assert.equal(roster.nextExpiry("dev"), clock.now() - 3000 + TYPING_SHOW_MS);
    clock.advance(TYPING_SHOW_MS - 3000 - 1);
    assert.deepEqual(roster.who("dev"), ["Alice", "Bob"]);
    clock.advance(1);
    assert.deepEqual(roster.who("dev"), ["Bob"]);
    clock.advance(3000);
    assert.deepEqual(roster.who("dev"), []);
    assert.equal(roster.nextExpiry("dev"), null);
  });

  it("a new typing frame keeps someone shown and moves them last", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    roster.apply(typing("Alice"));
    roster.apply(typing("Bob"));
    clock.advance(TYPING_SHOW_MS - 1000);
    roster.apply(typing("Alice"));
    clock.advance(2000);
    assert.deepEqual(roster.who("dev"), ["Alice"]);
  });

  it("their message, their leaving or their rename ends their typing at once", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    roster.apply(typing("Alice"));
    roster.apply(typing("Bob"));
    roster.apply(typing("Carol"));
    const sent = { publicMessage: "alice: hi", room: "dev", from: "alice", text: "hi", seq: 3 };
    assert.equal(roster.apply(sent), "dev");
    roster.apply({ systemMessage: "Bob has left dev", event: "leave", name: "Bob", room: "dev" });
    roster.apply({ event: "rename", name: "Caz", previous: "Carol", room: "dev", systemMessage: "" });
    assert.deepEqual(roster.who("dev"), []);
  });

  it("a message in another room leaves the typing line alone", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    roster.apply(typing("Alice"));
    const elsewhere = { publicMessage: "Alice: hi", room: "ops", from: "Alice", text: "hi" };
    assert.equal(roster.apply(elsewhere), null);
    assert.deepEqual(roster.who("dev"), ["Alice"]);
  });

  it("ignores frames without a room (v1) and forgets everything on reset", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    assert.equal(roster.apply({ typing: "Alice" }), null);
    assert.equal(roster.apply(null), null);
    roster.apply(typing("Bob"));
    roster.reset();
    assert.deepEqual(roster.who("dev"), []);
  });

  it("gives the line for a room", () => {
    const clock = new FakeClock();
    const roster = new TypingRoster({ now: clock.now });
    assert.equal(roster.line("dev"), "");
    roster.apply(typing("Alice"));
    assert.equal(roster.line("dev"), "Alice is typing…");
  });
});

describe("typingLine", () => {
  it("names one or two people and counts three or more", () => {
    assert.equal(typingLine([]), "");
    assert.equal(typingLine(["Alice"]), "Alice is typing…");
    assert.equal(typingLine(["Alice", "Bob"]), "Alice and Bob are typing…");
    assert.equal(typingLine(["Alice", "Bob", "Carol"]), "3 people are typing…");
    assert.equal(typingLine(["a", "b", "c", "d", "e"]), "5 people are typing…");
  });

  it("isolates each name when asked, so a name's bidi controls stay inside it", () => {
    const evil = "\u202eevil";
    assert.equal(typingLine([evil], isolate), `\u2068${evil}\u2069 is typing…`);
    assert.equal(typingLine(["A", evil], isolate), `\u2068A\u2069 and \u2068${evil}\u2069 are typing…`);
  });
});
