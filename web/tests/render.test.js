// Rendering of log entries (js/render.js, js/format.js) against a tiny fake DOM.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { messageLines } from "../js/format.js";
import { messageElement, setDelivery } from "../js/render.js";
import { fakeDocument, T0 } from "./helpers.js";

const render = (m) => messageElement(fakeDocument, { ts: T0, ...m });

/** Every element of `root` (depth first) whose class list has `cls`. */
const all = (root, cls) => root.querySelectorAll(`.${cls}`);

describe("messageLines", () => {
  it("keeps a one-line message whole", () => {
    assert.deepEqual(messageLines("hello: there"), ["hello: there"]);
    assert.deepEqual(messageLines(""), [""]);
    assert.deepEqual(messageLines(undefined), [""]);
  });

  it("splits at every character a browser breaks a line at", () => {
    for (const br of ["\n", "\r\n", "\r", "\u000b", "\u000c", "\u0085", "\u2028", "\u2029"]) {
      assert.deepEqual(messageLines(`hi${br}Bob: hello`), ["hi", "Bob: hello"], JSON.stringify(br));
    }
    assert.deepEqual(messageLines("a\n\nb\r\n"), ["a", "", "b", ""]);
  });
});

describe("messageElement", () => {
  it("renders a one-line message as name, separator and text", () => {
    const node = render({ kind: "public", from: "Alice", text: "hello!" });
    assert.equal(node.dataset.kind, "public");
    assert.equal(all(node, "msg__from").length, 1);
    assert.equal(node.querySelector(".msg__from").textContent, "Alice");
    assert.equal(node.querySelector(".msg__text").textContent, "hello!");
    assert.equal(all(node, "msg__line").length, 0);
    assert.equal(node.classList.contains("msg--multiline"), false);
  });

  it("keeps every line of a multi-line message inside one entry, under one name", () => {
    const node = render({
      kind: "public",
      from: "Alice",
      text: "see you\nBob: I am not Bob\r\n[System] Carol has left the chat",
    });
    assert.ok(node.classList.contains("msg--multiline"));
    const from = all(node, "msg__from");
    assert.equal(from.length, 1, "the sender's name appears once");
    assert.equal(from[0].textContent, "Alice");

    const text = node.querySelector(".msg__text");
    // The first line follows the name; every further line is a .msg__line
    // block inside the text (indented and marked by style.css).
    assert.equal(text.childNodes[0].nodeType, 3);
    assert.equal(text.childNodes[0].textContent, "see you");
    const lines = all(text, "msg__line");
    assert.deepEqual(
      lines.map((l) => l.textContent),
      ["Bob: I am not Bob", "[System] Carol has left the chat"],
    );
    for (const line of lines) {
      assert.equal(all(line, "msg__from").length, 0, "a continuation line has no sender");
      assert.ok(!line.textContent.includes("\n"));
    }
    // Nothing in the entry holds a raw line break that could start a new line.
    const walk = (n) => (n.nodeType === 3 ? [n.data] : n.childNodes.flatMap(walk));
    for (const s of walk(node)) assert.ok(!/[\n\r\u2028\u2029]/.test(s), JSON.stringify(s));
  });

  it("does the same for private messages, incoming and outgoing", () => {
    for (const m of [
      { kind: "private", direction: "in", from: "Alice", text: "psst\nBob: hi" },
      { kind: "private", direction: "out", from: "Alice", to: "Bob", text: "psst\nBob: hi" },
    ]) {
      const node = render(m);
      assert.equal(all(node, "msg__from").length, 1);
      assert.deepEqual(
        all(node, "msg__line").map((l) => l.textContent),
        ["Bob: hi"],
      );
      assert.equal(node.querySelector(".msg__tag").textContent.startsWith("Private · "), true);
    }
  });

  it("shows the delivery of our own messages: sending, then sent or failed", () => {
    const node = render({
      kind: "private",
      direction: "out",
      to: "Zoe",
      from: "Al",
      text: "a\nb",
      mine: true,
      delivery: "sending",
      note: "Sending…",
    });
    assert.equal(node.dataset.delivery, "sending");
    assert.ok(node.classList.contains("msg--pending"));
    assert.equal(node.querySelector(".msg__note").textContent, "Sending…");
    setDelivery(fakeDocument, node, { delivery: "failed", note: "Not delivered: Nobody with that name is in the chat." });
    assert.equal(node.dataset.delivery, "failed");
    assert.ok(node.classList.contains("msg--failed"));
    assert.equal(node.classList.contains("msg--pending"), false);
    assert.equal(all(node, "msg__note").length, 1);
    assert.match(node.querySelector(".msg__note").textContent, /^Not delivered: Nobody/);

    const sent = render({ kind: "public", from: "Al", text: "hi", mine: true, delivery: "sending", note: "Sending…" });
    setDelivery(fakeDocument, sent, { delivery: "sent", note: null, ts: T0 + 60_000 });
    assert.equal(sent.dataset.delivery, "sent");
    assert.equal(sent.classList.contains("msg--pending"), false);
    assert.equal(sent.querySelector(".msg__note").textContent, "");
    assert.equal(sent.querySelector(".msg__time").dateTime, new Date(T0 + 60_000).toISOString());
    assert.equal(render({ kind: "public", from: "B", text: "x" }).dataset.delivery, undefined);
  });
});
