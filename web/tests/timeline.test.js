// The log's order and de-duplication (js/timeline.js).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Timeline } from "../js/timeline.js";

/** A timeline that mirrors itself into an array of names, as a view would. */
function makeTimeline(opts) {
  const t = new Timeline(opts);
  const shown = [];
  const add = (name, placement) => {
    const r = t.add((before) => {
      const at = before === null ? shown.length : shown.indexOf(before);
      shown.splice(at, 0, name);
      return name;
    }, placement);
    if (r.added) for (const gone of r.evicted) shown.splice(shown.indexOf(gone), 1);
    return r;
  };
  const settle = (name, placement) => {
    const r = t.settle(name, placement);
    shown.splice(shown.indexOf(name), 1);
    if (!r.duplicate) {
      const at = r.before === null ? shown.length : shown.indexOf(r.before);
      shown.splice(at, 0, name);
    }
    return r;
  };
  return { t, shown, add, settle };
}

describe("Timeline", () => {
  it("shows messages in seq order whatever order they arrive in", () => {
    const { t, shown, add } = makeTimeline();
    add("s10", { seq: 10, messageId: "a" });
    add("s14", { seq: 14, messageId: "c" });
    add("s12", { seq: 12, messageId: "b" });
    add("s11", { seq: 11, messageId: "b2" });
    add("s20", { seq: 20, messageId: "d" });
    add("s1", { seq: 1, messageId: "e" });
    assert.deepEqual(shown, ["s1", "s10", "s11", "s12", "s14", "s20"]);
    assert.deepEqual(t.handles, shown);
  });

  it("drops a messageId already shown", () => {
    const { shown, add } = makeTimeline();
    assert.equal(add("first", { seq: 3, messageId: "m3" }).added, true);
    assert.deepEqual(add("again", { seq: 3, messageId: "m3" }), { added: false });
    assert.deepEqual(shown, ["first"]);
  });

  it("puts notices at the end, and late messages after the notices before them", () => {
    const { shown, add } = makeTimeline();
    add("s10", { seq: 10, messageId: "a" });
    add("lost", {});
    add("back", {});
    add("s15", { seq: 15, messageId: "c" });
    add("s12", { seq: 12, messageId: "b" }); // history after the reconnect
    add("bob joined", {});
    assert.deepEqual(shown, ["s10", "lost", "back", "s12", "s15", "bob joined"]);
  });

  it("a fractional seq lands between two messages", () => {
    const { shown, add } = makeTimeline();
    add("s10", { seq: 10, messageId: "a" });
    add("s12", { seq: 12, messageId: "b" });
    add("gap notice", { seq: 10.5 });
    assert.deepEqual(shown, ["s10", "gap notice", "s12"]);
  });

  it("keeps our pending messages last until acknowledged, then places them by seq", () => {
    const { shown, add, settle } = makeTimeline();
    add("s10", { seq: 10, messageId: "a" });
    add("mine1", { pending: true });
    add("mine2", { pending: true });
    add("s11", { seq: 11, messageId: "b" });
    add("joined", {});
    assert.deepEqual(shown, ["s10", "s11", "joined", "mine1", "mine2"]);
    // Bob's 13 reached us before the ack of our 12
    add("s13", { seq: 13, messageId: "d" });
    assert.deepEqual(settle("mine1", { seq: 12, messageId: "c" }), { duplicate: false, before: "s13" });
    assert.deepEqual(shown, ["s10", "s11", "joined", "mine1", "s13", "mine2"]);
    settle("mine2", { seq: 14, messageId: "e" });
    assert.deepEqual(shown, ["s10", "s11", "joined", "mine1", "s13", "mine2"]);
    // and the acknowledged ids count as shown
    assert.equal(add("echo", { seq: 12, messageId: "c" }).added, false);
  });

  it("a pending message whose server copy is already shown is a duplicate", () => {
    const { t, shown, add, settle } = makeTimeline();
    add("mine", { pending: true });
    add("history copy", { seq: 7, messageId: "m7" });
    assert.deepEqual(settle("mine", { seq: 7, messageId: "m7" }), { duplicate: true });
    assert.deepEqual(shown, ["history copy"]);
    assert.deepEqual(t.handles, ["history copy"]);
  });

  it("a failed message stays where it is and no longer holds the end", () => {
    const { t, shown, add } = makeTimeline();
    add("mine", { pending: true });
    t.release("mine");
    add("s5", { seq: 5, messageId: "x" });
    add("note", {});
    assert.deepEqual(shown, ["mine", "s5", "note"]);
  });

  it("evicts the oldest entries beyond the limit, never a pending one", () => {
    const { t, shown, add } = makeTimeline({ maxEntries: 3 });
    add("p", { pending: true });
    add("a", { seq: 1, messageId: "1" });
    add("b", { seq: 2, messageId: "2" });
    const r = add("c", { seq: 3, messageId: "3" });
    assert.deepEqual(r.evicted, ["a"]);
    assert.deepEqual(shown, ["b", "c", "p"]);
    t.remove("p");
    assert.deepEqual(t.handles, ["b", "c"]);
    // an evicted message is still known, so a late copy is not shown again
    assert.equal(add("a again", { seq: 1, messageId: "1" }).added, false);
  });

  it("remembers a bounded number of ids", () => {
    const { t, add } = makeTimeline({ maxIds: 2 });
    add("a", { seq: 1, messageId: "1" });
    add("b", { seq: 2, messageId: "2" });
    add("c", { seq: 3, messageId: "3" });
    assert.equal(t.has("1"), false);
    assert.equal(t.has("3"), true);
    assert.equal(t.has(null), false);
  });
});
