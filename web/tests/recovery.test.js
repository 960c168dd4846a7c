// The last public seq seen, gaps and history requests (js/recovery.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { GAP_GRACE_MS, HISTORY_TIMEOUT_MS, Recovery } from "../js/recovery.js";
import { normaliseFrame } from "../js/protocol.js";
import { FakeClock, publicFrame } from "./helpers.js";

function makeRecovery({ named = true } = {}) {
  const clock = new FakeClock();
  const sent = [];
  let n = 0;
  const recovery = new Recovery({
    send: (f) => {
      sent.push(f);
      return true;
    },
    nextId: () => `h${++n}`,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
  });
  if (named) recovery.named();
  const pub = (seq, prev) => recovery.seen(normaliseFrame(publicFrame("Bob", "x", seq, prev))[0]);
  const history = (items, extra = {}) =>
    recovery.historyFrame(
      normaliseFrame({
        history: items.map(([seq, prev]) => publicFrame("Bob", "x", seq, prev)),
        final: true,
        complete: true,
        ...extra,
      })[0],
    );
  return { recovery, clock, sent, pub, history };
}

describe("Recovery", () => {
  it("follows the prev chain: the horizon is the last public seq with nothing missing before it", () => {
    const { recovery, pub, clock, sent } = makeRecovery();
    assert.equal(recovery.horizon, null);
    assert.deepEqual(recovery.claimKeys(), {});
    pub(40, 37); // the first one seen: nothing before it is ours to miss
    pub(42, 40);
    pub(45, 42);
    assert.equal(recovery.horizon, 45);
    assert.deepEqual(recovery.claimKeys(), { since: 45 });
    clock.advance(10 * GAP_GRACE_MS);
    assert.deepEqual(sent, []);
  });

  it("asks for the history when a gap stays open for the grace period", () => {
    const { recovery, pub, clock, sent, history } = makeRecovery();
    pub(10, 0);
    pub(14, 12); // 12 is missing
    assert.equal(recovery.horizon, 10);
    clock.advance(GAP_GRACE_MS - 1);
    assert.deepEqual(sent, []);
    clock.advance(1);
    assert.deepEqual(sent, [{ action: "history", since: 10, id: "h1" }]);
    pub(15, 14); // more arrive meanwhile: no second request
    clock.advance(10 * GAP_GRACE_MS);
    assert.equal(sent.length, 1);
    assert.deepEqual(history([[12, 10], [14, 12], [15, 14]], { id: "h1" }), {
      incomplete: false,
      since: 10,
    });
    assert.equal(recovery.horizon, 15);
    clock.advance(10 * GAP_GRACE_MS);
    assert.equal(sent.length, 1);
  });

  it("does not ask when the missing message arrives late (messages of two senders crossed)", () => {
    const { recovery, pub, clock, sent } = makeRecovery();
    pub(10, 0);
    pub(14, 12);
    pub(16, 14);
    clock.advance(GAP_GRACE_MS / 2);
    pub(12, 10);
    assert.equal(recovery.horizon, 16);
    clock.advance(10 * GAP_GRACE_MS);
    assert.deepEqual(sent, []);
  });

  it("reports an incomplete answer, and moves on past what is lost", () => {
    const { recovery, pub, clock, history } = makeRecovery();
    pub(10, 0);
    pub(30, 20);
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(history([[30, 20]], { id: "h1", complete: false }), {
      incomplete: true,
      since: 10,
    });
    assert.equal(recovery.horizon, 30);
  });

  it("an answer in several frames: only the final one counts", () => {
    const { recovery, pub, clock, sent } = makeRecovery();
    pub(10, 0);
    pub(14, 12);
    clock.advance(GAP_GRACE_MS);
    const frames = [
      { history: [publicFrame("Bob", "x", 11, 10)], final: false },
      { history: [publicFrame("Bob", "x", 12, 11)], final: false },
      { history: [publicFrame("Bob", "x", 14, 12)], final: true, complete: true, id: "h1" },
    ];
    assert.equal(recovery.historyFrame(normaliseFrame(frames[0])[0]), null);
    assert.equal(recovery.historyFrame(normaliseFrame(frames[1])[0]), null);
    assert.equal(recovery.horizon, 14, "12 closes the gap before 14, seen live");
    assert.equal(recovery.historyFrame(normaliseFrame(frames[2])[0]).incomplete, false);
    assert.equal(recovery.horizon, 14);
    assert.equal(sent.length, 1);
  });

  it("re-claims with since after a reconnect, and reports a loss only when asked with since", () => {
    const { recovery, pub, clock, sent, history } = makeRecovery();
    pub(5, 0);
    recovery.connectionClosed();
    pub(9, 7); // not possible while closed, but harmless
    recovery.claimSent({ id: "n1", since: recovery.claimKeys().since });
    recovery.named(); // the member list came first
    clock.advance(10 * GAP_GRACE_MS);
    assert.deepEqual(sent, [], "no history request while the claim's history is on its way");
    assert.deepEqual(history([[7, 5], [9, 7], [12, 9]], { complete: false }), {
      incomplete: true,
      since: 5,
    });
    assert.equal(recovery.horizon, 12);

    // a joiner's recent history (no since) is never "incomplete"
    const joiner = makeRecovery({ named: false });
    joiner.recovery.claimSent({ id: "n1" });
    assert.deepEqual(joiner.history([[3, 1], [4, 3]], { complete: false }), {
      incomplete: false,
      since: null,
    });
    assert.equal(joiner.recovery.horizon, 4);
  });

  it("a claim answered without history (the server keeps none) still lets gaps be filled", () => {
    const { recovery, pub, clock, sent } = makeRecovery({ named: false });
    pub(5, 0);
    recovery.claimSent({ id: "n1", since: 5 });
    recovery.named();
    pub(9, 7);
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent, []);
    recovery.claimAcknowledged("other");
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent, []);
    recovery.claimAcknowledged("n1");
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent, [{ action: "history", since: 5, id: "h1" }]);
  });

  it("asks only while named, and asks again after a timeout, a rate limit or a reconnect", () => {
    const { recovery, pub, clock, sent } = makeRecovery({ named: false });
    pub(1, 0);
    pub(3, 2);
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent, [], "not named yet");
    recovery.named();
    clock.advance(GAP_GRACE_MS);
    assert.equal(sent.length, 1);
    clock.advance(HISTORY_TIMEOUT_MS);
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent.map((f) => f.id), ["h1", "h2"]);
    const limited = normaliseFrame({
      error: { code: "RATE_LIMITED", message: "x", action: "history", retryAfterMs: 3000, id: "h2" },
    })[0];
    assert.equal(recovery.error(limited), true);
    clock.advance(3000);
    assert.equal(sent.length, 2);
    clock.advance(100);
    assert.deepEqual(sent.map((f) => f.id), ["h1", "h2", "h3"]);
    recovery.connectionClosed();
    recovery.named();
    clock.advance(GAP_GRACE_MS);
    assert.deepEqual(sent.map((f) => f.since), [1, 1, 1, 1]);
  });

  it("stops asking a server that does not know the history action", () => {
    const { recovery, pub, clock, sent } = makeRecovery();
    pub(1, 0);
    pub(3, 2);
    clock.advance(GAP_GRACE_MS);
    const unknown = normaliseFrame({
      error: { code: "UNKNOWN_ACTION", message: "x", action: "history", id: "h1" },
    })[0];
    assert.equal(recovery.error(unknown), true);
    assert.equal(recovery.error({ ...unknown, id: "zz" }), false);
    pub(6, 5);
    clock.advance(10 * GAP_GRACE_MS);
    assert.equal(sent.length, 1);
  });

  it("ignores messages without a seq (a v1 server)", () => {
    const { recovery, clock, sent } = makeRecovery();
    recovery.seen(normaliseFrame({ publicMessage: "Bob: hi" })[0]);
    assert.equal(recovery.horizon, null);
    clock.advance(10 * GAP_GRACE_MS);
    assert.deepEqual(sent, []);
  });
});
