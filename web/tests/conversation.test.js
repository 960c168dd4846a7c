// The conversation as a whole (js/conversation.js): what the log shows after
// acks, errors, reconnects and history, against the frames of docs/protocol.md.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Conversation, INCOMPLETE_TEXT } from "../js/conversation.js";
import { ACK_TIMEOUT_MS } from "../js/outbox.js";
import { normaliseFrame } from "../js/protocol.js";
import { GAP_GRACE_MS } from "../js/recovery.js";
import { FakeClock, FakeView, publicFrame } from "./helpers.js";

function makeConversation() {
  const clock = new FakeClock();
  const view = new FakeView();
  const sent = [];
  let open = true;
  let n = 0;
  let reconnects = 0;
  const conv = new Conversation({
    view,
    send: (f) => {
      if (!open) return false;
      sent.push(f);
      return true;
    },
    nextId: () => `c${++n}`,
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    onReconnectNeeded: () => (reconnects += 1),
  });
  const server = (...frames) => {
    const rest = [];
    for (const f of frames) rest.push(...conv.handle(normaliseFrame(f, clock.now())));
    return rest;
  };
  return {
    conv,
    view,
    sent,
    clock,
    server,
    setOpen: (v) => (open = v),
    reconnects: () => reconnects,
  };
}

/** A named member on an open connection. */
function joined(name = "Alice") {
  const t = makeConversation();
  t.conv.sendSetName(name, { claim: true });
  t.server({ members: [name, "Bob"] });
  t.conv.named(name);
  t.server({ history: [], final: true, complete: true }, { ack: "setName", id: "c1", name });
  t.sent.length = 0;
  return t;
}

describe("Conversation: sending", () => {
  it("shows our message as sending at once, and as sent, in seq order, when acknowledged", () => {
    const { conv, view, sent, server } = joined();
    server(publicFrame("Bob", "b1", 10, 0));
    conv.submit({ kind: "public", text: "a1", from: "Alice" });
    assert.deepEqual(sent, [{ action: "sendPublic", message: "a1", id: "c2" }]);
    assert.deepEqual(view.mine, ["a1:sending"]);
    assert.equal(view.entries[1].note, "Sending…");
    // Bob's next message got seq 12, and reaches us before our ack (seq 11)
    server(publicFrame("Bob", "b2", 12, 11));
    assert.deepEqual(view.texts, ["b1", "b2", "a1"], "pending stays last");
    server(publicFrame("Alice", "a1", 11, 10, { id: "c2", ts: 1795654691420 }));
    assert.deepEqual(view.texts, ["b1", "a1", "b2"]);
    assert.deepEqual(view.mine, ["a1:sent"]);
    assert.equal(view.entries[1].ts, 1795654691420);
    assert.equal(view.entries[1].note, null);
  });

  it("five messages typed quickly go out one at a time, in the order typed", () => {
    const { conv, view, sent, server } = joined();
    for (const t of ["1", "2", "3", "4", "5"]) conv.submit({ kind: "public", text: t, from: "Alice" });
    assert.deepEqual(sent.map((f) => f.message), ["1"]);
    assert.deepEqual(view.mine, ["1:sending", "2:sending", "3:sending", "4:sending", "5:sending"]);
    for (let i = 0; i < 5; i += 1) {
      const f = sent[i];
      server(publicFrame("Alice", f.message, 20 + i, 19 + i, { id: f.id }));
    }
    assert.deepEqual(sent.map((f) => f.message), ["1", "2", "3", "4", "5"]);
    assert.equal(new Set(sent.map((f) => f.id)).size, 5);
    assert.deepEqual(view.mine, ["1:sent", "2:sent", "3:sent", "4:sent", "5:sent"]);
  });

  it("marks exactly the private message the error names as failed, and logs the error", () => {
    const { conv, view, sent, server } = joined();
    conv.submit({ kind: "private", to: "Zoe", text: "to zoe", from: "Alice" });
    conv.submit({ kind: "private", to: "Bob", text: "to bob", from: "Alice" });
    const rest = server({
      error: { code: "UNKNOWN_RECIPIENT", message: "Nobody called Zoe.", action: "sendPrivate", id: sent[0].id },
    });
    assert.deepEqual(rest.map((e) => e.code), ["UNKNOWN_RECIPIENT"], "app.js logs it");
    assert.deepEqual(view.mine, ["to zoe:failed", "to bob:sending"]);
    assert.equal(view.entries[0].note, "Not delivered: Nobody called Zoe.");
    server({ ack: "sendPrivate", id: sent[1].id, seq: 50, messageId: "p50", to: "Bob", ts: 1 });
    assert.deepEqual(view.mine, ["to zoe:failed", "to bob:sent"]);
    assert.equal(view.entries[1].direction, "out");
  });

  it("a rate-limited message stays queued with a note and goes out after the wait", () => {
    const { conv, view, sent, clock, server } = joined();
    conv.submit({ kind: "public", text: "fast", from: "Alice" });
    const rest = server({
      error: { code: "RATE_LIMITED", message: "x", action: "sendPublic", retryAfterMs: 2000, id: "c2" },
    });
    assert.deepEqual(rest, [], "not an error for the log");
    assert.deepEqual(view.mine, ["fast:sending"]);
    assert.match(view.entries[0].note, /too fast; retrying in 3 s/);
    clock.advance(2100);
    assert.deepEqual(sent.map((f) => f.id), ["c2", "c2"]);
    assert.equal(view.entries[0].note, "Sending…");
  });

  it("NOT_CONNECTED asks for a new connection", () => {
    const t = joined();
    t.conv.submit({ kind: "public", text: "x", from: "Alice" });
    t.server({ error: { code: "NOT_CONNECTED", message: "x", action: "sendPublic", id: "c2" } });
    assert.equal(t.reconnects(), 1);
    assert.deepEqual(t.view.mine, ["x:sending"]);
  });

  it("failAll marks every unsent message failed", () => {
    const { conv, view } = joined();
    conv.submit({ kind: "public", text: "1", from: "Alice" });
    conv.submit({ kind: "public", text: "2", from: "Alice" });
    conv.failAll("your name is gone");
    assert.deepEqual(view.mine, ["1:failed", "2:failed"]);
    assert.equal(view.entries[1].note, "Not delivered: your name is gone");
  });
});

describe("Conversation: receiving", () => {
  it("drops a messageId already shown and orders by seq", () => {
    const { view, server } = joined();
    server(publicFrame("Bob", "b3", 3, 2), publicFrame("Bob", "b1", 1, 0), publicFrame("Bob", "b2", 2, 1));
    server(publicFrame("Bob", "b2", 2, 1));
    server({ privateMessage: "Bob: psst", from: "Bob", to: "Alice", text: "psst", seq: 4, messageId: "p4" });
    server({ privateMessage: "Bob: psst", from: "Bob", to: "Alice", text: "psst", seq: 4, messageId: "p4" });
    assert.deepEqual(view.texts, ["b1", "b2", "b3", "psst"]);
  });

  it("leaves members, system messages and other errors to app.js, and shows notices in place", () => {
    const { conv, view, server } = joined();
    const rest = server(
      { members: ["Alice", "Bob"] },
      { systemMessage: "Bob has joined the chat", event: "join", name: "Bob" },
      { ack: "setName", id: "c1", name: "Alice" },
      { error: { code: "INVALID_JSON", message: "x", action: null } },
    );
    assert.deepEqual(rest.map((e) => e.type), ["members", "system", "ack", "error"]);
    conv.notice({ kind: "system", text: "Bob has joined the chat" });
    assert.deepEqual(view.texts, ["Bob has joined the chat"]);
  });

  it("shows a joiner's history after the member list", () => {
    const t = makeConversation();
    t.conv.notice({ kind: "system", text: "Connected.", local: true });
    assert.equal(t.conv.sendSetName("Carol", { claim: true }), true);
    assert.deepEqual(t.sent, [{ action: "setName", name: "Carol", id: "c1" }], "no since: nothing seen yet");
    t.server({ members: ["Alice", "Carol"] });
    t.conv.named("Carol");
    t.server({
      history: [publicFrame("Alice", "old 1", 7, 0), publicFrame("Alice", "old 2", 9, 7)],
      final: true,
      complete: false,
    });
    assert.deepEqual(t.view.texts, ["Connected.", "old 1", "old 2"], "no 'could not be recovered' for a joiner");
    assert.equal(t.conv.recovery.horizon, 9);
  });

  it("fills a gap seen while connected with the history action", () => {
    const { view, sent, clock, server } = joined();
    server(publicFrame("Bob", "b1", 1, 0));
    server(publicFrame("Bob", "b3", 3, 2));
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent, [{ action: "history", since: 1, id: "c2" }]);
    server({
      history: [publicFrame("Bob", "b2", 2, 1), publicFrame("Bob", "b3", 3, 2)],
      final: true,
      complete: true,
      id: "c2",
    });
    assert.deepEqual(view.texts, ["b1", "b2", "b3"]);
  });

  it("shows one notice where messages could not be recovered", () => {
    const { view, clock, server } = joined();
    server(publicFrame("Bob", "b1", 1, 0));
    server(publicFrame("Bob", "b9", 9, 8));
    clock.advance(GAP_GRACE_MS);
    server({ history: [publicFrame("Bob", "b9", 9, 8)], final: true, complete: false, id: "c2" });
    assert.deepEqual(view.texts, ["b1", INCOMPLETE_TEXT, "b9"]);
    assert.equal(view.entries[1].kind, "system");
  });
});

describe("Conversation: a reconnect in the middle of a conversation", () => {
  it("re-claims with since, shows what was missed once, in order, and resends the message in flight", () => {
    const { conv, view, sent, server, setOpen, clock } = joined();
    server(publicFrame("Bob", "b1", 1, 0), publicFrame("Bob", "b2", 2, 1));
    conv.submit({ kind: "public", text: "a3", from: "Alice" });
    conv.submit({ kind: "public", text: "a-later", from: "Alice" });
    // the cut: a3 reached the server (seq 3) but its ack did not reach us
    setOpen(false);
    conv.closed();
    conv.notice({ kind: "system", text: "Connection lost. Reconnecting…", local: true });
    clock.advance(5 * ACK_TIMEOUT_MS);
    setOpen(true);
    conv.notice({ kind: "system", text: "Reconnected.", local: true });
    sent.length = 0;

    conv.sendSetName("Alice", { claim: true });
    assert.deepEqual(sent, [{ action: "setName", name: "Alice", id: "c4", since: 2 }]);
    server({ members: ["Alice", "Bob"] });
    conv.named("Alice");
    assert.deepEqual(sent[1], { action: "sendPublic", message: "a3", id: "c2" }, "same id");
    server({
      history: [
        publicFrame("Alice", "a3", 3, 2),
        publicFrame("Bob", "b4", 4, 3),
        publicFrame("Bob", "b5", 5, 4),
      ],
      final: true,
      complete: true,
    });
    server({ systemMessage: "Alice has joined the chat", event: "join", name: "Alice" });
    server({ ack: "setName", id: "c4", name: "Alice" });
    // the resend is de-duplicated: the same ack (same seq and messageId) again
    server(publicFrame("Alice", "a3", 3, 2, { id: "c2" }));
    assert.deepEqual(sent[2], { action: "sendPublic", message: "a-later", id: "c3" });
    server(publicFrame("Bob", "b7", 7, 6));
    server(publicFrame("Alice", "a-later", 6, 5, { id: "c3" }));
    assert.deepEqual(view.texts, [
      "b1",
      "b2",
      "Connection lost. Reconnecting…",
      "Reconnected.",
      "a3",
      "b4",
      "b5",
      "a-later",
      "b7",
    ]);
    assert.deepEqual(view.mine, ["a3:undefined", "a-later:sent"], "a3 is the server's copy");
    assert.equal(view.entries[4].mine, true);
    clock.advance(10 * GAP_GRACE_MS);
    assert.equal(sent.filter((f) => f.action === "history").length, 0, "no gap left");
  });

  it("a message in flight whose ack comes before the history is not shown twice", () => {
    const { conv, view, sent, server, setOpen } = joined();
    server(publicFrame("Bob", "b1", 1, 0));
    conv.submit({ kind: "public", text: "a2", from: "Alice" });
    setOpen(false);
    conv.closed();
    setOpen(true);
    conv.sendSetName("Alice", { claim: true });
    server({ members: ["Alice", "Bob"] });
    conv.named("Alice");
    assert.equal(sent[2].id, sent[0].id, "resent with the same id");
    server(publicFrame("Alice", "a2", 2, 1, { id: sent[0].id }));
    server({ history: [publicFrame("Alice", "a2", 2, 1)], final: true, complete: true });
    assert.deepEqual(view.texts, ["b1", "a2"]);
    assert.deepEqual(view.mine, ["a2:sent"]);
  });

  it("a rename on the same connection sends no since", () => {
    const { conv, sent, server } = joined();
    server(publicFrame("Bob", "b1", 1, 0));
    conv.sendSetName("Alicia", { claim: false });
    assert.deepEqual(sent, [{ action: "setName", name: "Alicia", id: "c2" }]);
  });
});

describe("Conversation: what the view learns of each message (for edits and deletes)", () => {
  it("gives the view each server message's messageId and seq", () => {
    const t = joined();
    t.server(publicFrame("Bob", "hi", 5, 4, { messageId: "b5" }));
    const shown = t.view.entries.find((e) => e.text === "hi");
    assert.equal(shown.messageId, "b5");
    assert.equal(shown.seq, 5);
  });

  it("gives the view our own message's messageId and seq when it is acknowledged", () => {
    const t = joined();
    const item = t.conv.submit({ kind: "public", text: "mine", from: "Alice" });
    const pending = t.view.entries.find((e) => e.text === "mine");
    assert.equal(pending.messageId, undefined);
    t.server(publicFrame("Alice", "mine", 7, 6, { id: item.id, messageId: "a7" }));
    assert.equal(pending.delivery, "sent");
    assert.equal(pending.messageId, "a7");
    assert.equal(pending.seq, 7);
  });

  it("gives no messageId to a notice", () => {
    const t = joined();
    t.conv.notice({ kind: "system", text: "Connected.", local: true });
    assert.equal("messageId" in t.view.entries.at(-1), false);
  });
});
