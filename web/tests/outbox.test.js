// One message in flight, acks, exact failures and resends (js/outbox.js, js/ids.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { frameIds, randomToken } from "../js/ids.js";
import { ACK_TIMEOUT_MS, Outbox } from "../js/outbox.js";
import { normaliseFrame } from "../js/protocol.js";
import { FakeClock, publicFrame } from "./helpers.js";

function makeOutbox({ ready = true, ...opts } = {}) {
  const clock = new FakeClock();
  const sent = [];
  let open = true;
  let n = 0;
  const changes = [];
  const outbox = new Outbox({
    send: (frame) => {
      if (!open) return false;
      sent.push(frame);
      return true;
    },
    nextId: () => `id${++n}`,
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    onChange: (item) => changes.push(`${item.id}:${item.state}`),
    ...opts,
  });
  if (ready) outbox.setReady(true);
  const server = (frame) => outbox.handle(normaliseFrame(frame, clock.now())[0]);
  return { outbox, sent, clock, changes, server, setOpen: (v) => (open = v) };
}

describe("frameIds", () => {
  it("gives unique printable ids of at most 64 characters", () => {
    const next = frameIds();
    const ids = new Set(Array.from({ length: 1000 }, next));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[!-~]{1,64}$/);
  });
  it("a new page (a new source) does not repeat the ids of another", () => {
    assert.notEqual(frameIds()(), frameIds()());
    assert.equal(frameIds({ prefix: "p" })(), "p-1");
    assert.equal(randomToken(4, () => 0.999), "zzzz");
  });
});

describe("Outbox", () => {
  it("has one message in flight; the next goes out when the previous is acknowledged", () => {
    const { outbox, sent, server } = makeOutbox();
    const a = outbox.enqueue({ kind: "public", text: "one" });
    const b = outbox.enqueue({ kind: "private", to: "Bob", text: "two" });
    const c = outbox.enqueue({ kind: "public", text: "three" });
    assert.deepEqual(sent, [{ action: "sendPublic", message: "one", id: "id1" }]);
    assert.deepEqual([a.state, b.state, c.state], ["sending", "queued", "queued"]);

    const ack = server(publicFrame("Alice", "one", 41, 40, { id: "id1" }));
    assert.equal(ack.type, "sent");
    assert.equal(ack.item, a);
    assert.equal(ack.seq, 41);
    assert.equal(ack.messageId, "m41");
    assert.deepEqual(sent[1], { action: "sendPrivate", to: "Bob", message: "two", id: "id2" });

    const pAck = server({ ack: "sendPrivate", id: "id2", seq: 43, messageId: "p43", to: "Bob", ts: 5 });
    assert.equal(pAck.type, "sent");
    assert.equal(pAck.seq, 43);
    assert.deepEqual(sent[2], { action: "sendPublic", message: "three", id: "id3" });
    assert.equal(outbox.items.length, 1);
  });

  it("ignores frames that are not about the message in flight", () => {
    const { outbox, sent, server } = makeOutbox();
    outbox.enqueue({ kind: "public", text: "one" });
    outbox.enqueue({ kind: "public", text: "two" });
    assert.equal(server(publicFrame("Bob", "hey", 3, 2)), null, "no id");
    assert.equal(server(publicFrame("Alice", "one", 3, 2, { id: "id2" })), null, "not the head");
    assert.equal(server({ ack: "sendPrivate", id: "id1" }), null, "wrong kind of ack");
    assert.equal(server({ ack: "ping", id: "id1" }), null);
    assert.equal(server({ error: { code: "UNKNOWN_RECIPIENT", action: "sendPrivate" } }), null);
    assert.equal(sent.length, 1);
  });

  it("marks exactly the message named by the error's id as failed, then sends the next", () => {
    const { outbox, sent, server } = makeOutbox();
    const a = outbox.enqueue({ kind: "private", to: "Zoe", text: "hi Zoe" });
    const b = outbox.enqueue({ kind: "private", to: "Bob", text: "hi Bob" });
    const out = server({
      error: { code: "UNKNOWN_RECIPIENT", message: "Nobody called Zoe", action: "sendPrivate", id: "id1" },
    });
    assert.deepEqual(out, { type: "failed", item: a, code: "UNKNOWN_RECIPIENT", message: "Nobody called Zoe" });
    assert.equal(a.state, "failed");
    assert.equal(b.state, "sending");
    assert.equal(sent[1].id, "id2");
  });

  it("resends the message in flight with the same id when no ack comes in time", () => {
    const { outbox, sent, clock, changes, server } = makeOutbox();
    outbox.enqueue({ kind: "public", text: "one" });
    outbox.enqueue({ kind: "public", text: "two" });
    clock.advance(ACK_TIMEOUT_MS - 1);
    assert.equal(sent.length, 1);
    clock.advance(1);
    assert.deepEqual(sent.map((f) => f.id), ["id1", "id1"]);
    assert.deepEqual(changes, ["id1:sending"]);
    // the second wait is twice as long
    clock.advance(2 * ACK_TIMEOUT_MS - 1);
    assert.equal(sent.length, 2);
    clock.advance(1);
    assert.deepEqual(sent.map((f) => f.id), ["id1", "id1", "id1"]);
    // the server answers every copy with the same ack; the first settles it
    assert.equal(server(publicFrame("Alice", "one", 9, 8, { id: "id1" })).type, "sent");
    assert.equal(server(publicFrame("Alice", "one", 9, 8, { id: "id1" })), null);
    assert.deepEqual(sent.map((f) => f.id), ["id1", "id1", "id1", "id2"]);
  });

  it("resends the message in flight, same id, on the next connection, and waits while offline", () => {
    const { outbox, sent, clock, setOpen } = makeOutbox();
    outbox.enqueue({ kind: "public", text: "one" });
    outbox.setReady(false); // the connection closed
    setOpen(false);
    outbox.enqueue({ kind: "public", text: "two" });
    clock.advance(10 * ACK_TIMEOUT_MS);
    assert.equal(sent.length, 1, "no resend while offline");
    setOpen(true);
    outbox.setReady(true); // reconnected, name re-claimed
    assert.deepEqual(sent, [
      { action: "sendPublic", message: "one", id: "id1" },
      { action: "sendPublic", message: "one", id: "id1" },
    ]);
  });

  it("does not send before it is ready, nor when the socket refuses the frame", () => {
    const { outbox, sent, setOpen } = makeOutbox({ ready: false });
    const a = outbox.enqueue({ kind: "public", text: "early" });
    assert.equal(sent.length, 0);
    assert.equal(a.state, "queued");
    setOpen(false);
    outbox.setReady(true);
    assert.equal(a.state, "queued");
    setOpen(true);
    outbox.setReady(true);
    assert.equal(a.state, "sending");
    assert.equal(sent.length, 1);
  });

  it("keeps a rate-limited message and resends it, same id, after retryAfterMs", () => {
    const { outbox, sent, clock, changes, server } = makeOutbox();
    const a = outbox.enqueue({ kind: "public", text: "fast" });
    outbox.enqueue({ kind: "public", text: "next" });
    const out = server({
      error: { code: "RATE_LIMITED", message: "slow down", action: "sendPublic", retryAfterMs: 1500, id: "id1" },
    });
    assert.equal(out.type, "waiting");
    assert.equal(out.item, a);
    assert.equal(a.state, "waiting");
    assert.equal(a.retryAt, clock.now() + out.retryAfterMs);
    assert.ok(out.retryAfterMs >= 1500);
    clock.advance(1500);
    assert.equal(sent.length, 1);
    clock.advance(out.retryAfterMs - 1500);
    assert.deepEqual(sent.map((f) => f.id), ["id1", "id1"]);
    assert.deepEqual(changes, ["id1:sending"]);
    assert.equal(server(publicFrame("Alice", "fast", 2, 1, { id: "id1" })).type, "sent");
    assert.deepEqual(sent.map((f) => f.id), ["id1", "id1", "id2"]);
  });

  it("a reconnect during a rate-limit wait resends at once on the new connection", () => {
    const { outbox, sent, server } = makeOutbox();
    outbox.enqueue({ kind: "public", text: "fast" });
    server({ error: { code: "RATE_LIMITED", message: "x", action: "sendPublic", retryAfterMs: 9000, id: "id1" } });
    outbox.setReady(false);
    outbox.setReady(true);
    assert.deepEqual(sent.map((f) => f.id), ["id1", "id1"]);
  });

  it("NOT_CONNECTED keeps the message for the next connection", () => {
    const { outbox, sent, clock, server } = makeOutbox();
    const a = outbox.enqueue({ kind: "public", text: "x" });
    const out = server({ error: { code: "NOT_CONNECTED", message: "x", action: "sendPublic", id: "id1" } });
    assert.deepEqual(out, { type: "reconnect", item: a });
    clock.advance(10 * ACK_TIMEOUT_MS);
    assert.equal(sent.length, 1);
    outbox.setReady(false);
    outbox.setReady(true);
    assert.equal(sent.length, 2);
  });

  it("failAll gives up on everything not yet acknowledged", () => {
    const { outbox, sent, clock } = makeOutbox();
    const a = outbox.enqueue({ kind: "public", text: "1" });
    const b = outbox.enqueue({ kind: "public", text: "2" });
    assert.deepEqual(outbox.failAll(), [a, b]);
    assert.deepEqual([a.state, b.state], ["failed", "failed"]);
    clock.advance(10 * ACK_TIMEOUT_MS);
    assert.equal(sent.length, 1);
    assert.deepEqual(outbox.items, []);
  });
});
