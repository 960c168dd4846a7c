// The name re-claim policy (js/reclaim.js). Run: node --test web/tests/
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NameClaim } from "../js/names.js";
import { NameReclaim, RECLAIM_RETRY, RECLAIM_WINDOW_MS } from "../js/reclaim.js";
import { FakeClock } from "./helpers.js";

const TAKEN = { code: "NAME_TAKEN" };

function makeReclaim() {
  const clock = new FakeClock();
  const retries = [];
  const reclaim = new NameReclaim({
    onRetry: (name) => retries.push(name),
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    random: () => 1, // no jitter: the full delay
  });
  return { reclaim, clock, retries };
}

/** Held `name` on a connection that has just been lost, then reconnected. */
function reconnectedAfterHolding(name) {
  const ctx = makeReclaim();
  ctx.reclaim.choose(name);
  ctx.reclaim.opened();
  ctx.reclaim.confirmed(name);
  ctx.reclaim.closed({ held: name });
  ctx.claim = ctx.reclaim.opened();
  return ctx;
}

describe("NameReclaim", () => {
  it("claims nothing on open until a name is chosen", () => {
    const { reclaim } = makeReclaim();
    assert.equal(reclaim.opened(), null);
  });

  it("claims a name chosen while offline when the connection opens, as a fresh claim", () => {
    const { reclaim } = makeReclaim();
    reclaim.choose("Alice");
    assert.deepEqual(reclaim.opened(), { name: "Alice", reclaim: false });
  });

  it("after a reload, claims the name held before as a re-claim, retried while it is taken", () => {
    const { reclaim, clock, retries } = makeReclaim();
    reclaim.restore("Alice");
    assert.deepEqual(reclaim.opened(), { name: "Alice", reclaim: true });
    // the reloaded page's old connection still holds the name for a moment
    const next = reclaim.rejected({ name: "Alice", ...TAKEN });
    assert.equal(next.action, "retry");
    clock.advance(next.delayMs);
    assert.deepEqual(retries, ["Alice"]);
  });

  it("re-claims the held name after a reconnect and opens the retry window", () => {
    const { claim, reclaim, clock } = reconnectedAfterHolding("Alice");
    assert.deepEqual(claim, { name: "Alice", reclaim: true });
    assert.equal(reclaim.deadline, clock.now() + RECLAIM_WINDOW_MS);
  });

  it("retries a re-claim refused with NAME_TAKEN, 2 s doubling to 30 s", () => {
    const { reclaim, clock, retries } = reconnectedAfterHolding("Alice");
    const delays = [];
    for (let i = 0; i < 7; i += 1) {
      const next = reclaim.rejected({ name: "Alice", ...TAKEN });
      assert.equal(next.action, "retry");
      assert.equal(next.name, "Alice");
      assert.ok(reclaim.retrying);
      delays.push(next.delayMs);
      clock.advance(next.delayMs - 1);
      assert.equal(retries.length, i, "not before the delay");
      clock.advance(1);
      assert.deepEqual(retries.at(-1), "Alice");
      assert.equal(reclaim.retrying, false);
    }
    assert.deepEqual(delays, [2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    assert.equal(RECLAIM_RETRY.maxMs, 30000);
  });

  it("jitters the retry delay within [d/2, d]", () => {
    const reclaim = new NameReclaim({ random: () => 0, setTimer: () => 1, clearTimer: () => {} });
    reclaim.closed({ held: "Alice" });
    reclaim.opened();
    assert.equal(reclaim.rejected({ name: "Alice", ...TAKEN }).delayMs, 1000);
  });

  it("gives the name up when the window has passed", () => {
    const { reclaim, clock, retries } = reconnectedAfterHolding("Alice");
    clock.advance(RECLAIM_WINDOW_MS);
    assert.deepEqual(reclaim.rejected({ name: "Alice", ...TAKEN }), {
      action: "giveUp",
      name: "Alice",
    });
    assert.equal(reclaim.wanted, null);
    assert.equal(reclaim.retrying, false);
    clock.advance(60_000);
    assert.deepEqual(retries, []);
  });

  it("gives the name up at once on any other refusal", () => {
    const { reclaim } = reconnectedAfterHolding("Alice");
    const next = reclaim.rejected({ name: "Alice", code: "INVALID_NAME" });
    assert.deepEqual(next, { action: "giveUp", name: "Alice" });
    assert.equal(reclaim.wanted, null);
  });

  it("retries a rate-limited re-claim after retryAfterMs, even after the window", () => {
    const { reclaim, clock, retries } = reconnectedAfterHolding("Alice");
    clock.advance(RECLAIM_WINDOW_MS);
    const next = reclaim.rejected({ name: "Alice", code: "RATE_LIMITED", retryAfterMs: 4000 });
    assert.deepEqual(next, { action: "retry", name: "Alice", delayMs: 4100 });
    clock.advance(4099);
    assert.deepEqual(retries, []);
    clock.advance(1);
    assert.deepEqual(retries, ["Alice"]);
  });

  it("with NameClaim: the v1.1 setName acknowledgement grants the name", () => {
    const names = new NameClaim();
    names.request("Alice");
    assert.deepEqual(names.handle([{ type: "ack", ack: "setName", id: "n1", name: "Alice" }]), [
      { type: "confirmed", name: "Alice" },
    ]);
    assert.deepEqual(names.handle([{ type: "ack", ack: "setName", id: "n1", name: "Alice" }]), []);
    const [refused] = (names.request("Bob"), names.handle([
      { type: "error", code: "RATE_LIMITED", action: "setName", message: "x", id: "n2", retryAfterMs: 900 },
    ]));
    assert.deepEqual(refused, { type: "rejected", name: "Bob", code: "RATE_LIMITED", message: "x", retryAfterMs: 900 });
  });

  it("never retries a name the user typed; a refused rename keeps the held name", () => {
    const { reclaim } = makeReclaim();
    reclaim.choose("Alice");
    reclaim.opened();
    assert.deepEqual(reclaim.rejected({ name: "Alice", ...TAKEN }, { held: null }), {
      action: "none",
    });
    assert.equal(reclaim.wanted, null, "a refused first name leaves nothing to claim");

    reclaim.choose("Bob");
    reclaim.confirmed("Bob");
    reclaim.choose("Carol");
    assert.deepEqual(reclaim.rejected({ name: "Carol", ...TAKEN }, { held: "Bob" }), {
      action: "none",
    });
    assert.equal(reclaim.wanted, "Bob");
    assert.equal(reclaim.isReclaim, false);
    assert.equal(reclaim.retrying, false);
  });

  it("ignores a refusal when nothing was pending", () => {
    const { reclaim } = reconnectedAfterHolding("Alice");
    assert.deepEqual(reclaim.rejected({ name: null, ...TAKEN }), { action: "none" });
    assert.equal(reclaim.wanted, "Alice");
    assert.equal(reclaim.isReclaim, true);
  });

  it("does not retry on a closed connection, and keeps the window across reconnects", () => {
    const { reclaim, clock, retries } = reconnectedAfterHolding("Alice");
    const deadline = reclaim.deadline;
    const first = reclaim.rejected({ name: "Alice", ...TAKEN });
    reclaim.closed({ held: null });
    assert.equal(reclaim.retrying, false);
    clock.advance(first.delayMs);
    assert.deepEqual(retries, []);
    assert.deepEqual(reclaim.opened(), { name: "Alice", reclaim: true });
    assert.equal(reclaim.deadline, deadline, "the window started at the first reconnect");
    assert.equal(reclaim.rejected({ name: "Alice", ...TAKEN }).delayMs, 4000, "backoff goes on");
  });

  it("ends the window when the user disconnects; Reconnect starts a new one", () => {
    const { reclaim, clock } = reconnectedAfterHolding("Alice");
    reclaim.rejected({ name: "Alice", ...TAKEN });
    reclaim.closed({ held: null, intentional: true });
    assert.equal(reclaim.deadline, 0);
    assert.equal(reclaim.wanted, "Alice", "the name is still re-claimed on Reconnect");
    clock.advance(RECLAIM_WINDOW_MS);
    assert.deepEqual(reclaim.opened(), { name: "Alice", reclaim: true });
    assert.equal(reclaim.deadline, clock.now() + RECLAIM_WINDOW_MS);
    assert.equal(reclaim.rejected({ name: "Alice", ...TAKEN }).delayMs, 2000);
  });

  it("stops retrying when the user picks a name or the server grants one", () => {
    for (const settle of [(r) => r.choose("Alicia"), (r) => r.confirmed("Alice")]) {
      const { reclaim, clock, retries } = reconnectedAfterHolding("Alice");
      const next = reclaim.rejected({ name: "Alice", ...TAKEN });
      settle(reclaim);
      assert.equal(reclaim.retrying, false);
      assert.equal(reclaim.isReclaim, false);
      assert.equal(reclaim.deadline, 0);
      clock.advance(next.delayMs);
      assert.deepEqual(retries, []);
    }
  });

  it("with NameClaim: gets the name back once the old connection lets go", () => {
    const clock = new FakeClock();
    const names = new NameClaim();
    const sent = [];
    const claim = (name) => {
      names.request(name);
      sent.push(name);
    };
    const reclaim = new NameReclaim({
      onRetry: claim,
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
      random: () => 1,
    });
    const feed = (events) => {
      for (const outcome of names.handle(events)) {
        if (outcome.type === "confirmed") reclaim.confirmed(outcome.name);
        else reclaim.rejected(outcome, { held: names.confirmed });
      }
    };
    const taken = { type: "error", code: "NAME_TAKEN", message: "taken", action: "setName" };

    reclaim.choose("Alice");
    claim(reclaim.opened().name);
    feed([{ type: "system", event: "join", name: "Alice" }]);
    assert.equal(names.confirmed, "Alice");

    // The connection drops; the server has not noticed yet.
    reclaim.closed({ held: names.connectionLost() });
    claim(reclaim.opened().name);
    feed([taken]);
    clock.advance(2000);
    feed([taken]);
    clock.advance(4000);
    assert.deepEqual(sent, ["Alice", "Alice", "Alice", "Alice"]);
    feed([
      { type: "members", members: ["Alice", "Bob"] },
      { type: "system", event: "join", name: "Alice" },
    ]);
    assert.equal(names.confirmed, "Alice");
    assert.equal(reclaim.retrying, false);
    assert.equal(reclaim.deadline, 0);
  });
});
