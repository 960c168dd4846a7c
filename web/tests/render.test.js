// Rendering of log entries (js/render.js, js/format.js) against a tiny fake DOM.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isolate, messageLines, noticeParts } from "../js/format.js";
import { memberElement, messageElement, setDelivery } from "../js/render.js";
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
    assert.equal(text.childNodes[0].tagName, "BDI");
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

/** The element children of `node`, as [tagName, className, textContent]. */
const shape = (node) => node.children.map((c) => [c.tagName, c.className, c.textContent]);
const isIsolate = (node) => node.tagName === "BDI" && node.dir === "auto";

describe("notices: the name is an element of its own", () => {
  const SPOOF = "Bob has left the chat. Eve";

  it("builds join, leave and rename notices from the client's wording around the names", () => {
    assert.deepEqual(noticeParts({ event: "join", name: "Alice" }), [{ name: "Alice" }, " has joined the chat"]);
    assert.deepEqual(noticeParts({ event: "leave", name: "Alice" }), [{ name: "Alice" }, " has left the chat"]);
    assert.deepEqual(noticeParts({ event: "rename", name: "Alicia", previous: "Alice" }), [
      { name: "Alice" },
      " is now known as ",
      { name: "Alicia" },
    ]);
    // Without a name (or a rename without the previous name), or of another kind: the text is shown.
    for (const n of [
      {},
      { event: "join" },
      { event: "join", name: "" },
      { event: "rename", name: "Alicia" },
      { event: "kick", name: "Alice" },
      { event: "toString", name: "Alice" },
      { event: "__proto__", name: "Alice" },
    ]) {
      assert.equal(noticeParts(n), null, JSON.stringify(n));
    }
  });

  it("shows a name that reads like a notice as one name element, with the wording as text", () => {
    const node = render({
      kind: "system",
      text: `${SPOOF} has left the chat`,
      event: "leave",
      name: SPOOF,
    });
    const text = node.querySelector(".msg__text");
    assert.deepEqual(shape(text), [["BDI", "notice-name", SPOOF]]);
    assert.ok(isIsolate(text.children[0]));
    assert.deepEqual(
      text.childNodes.map((n) => (n.nodeType === 3 ? n.data : `[${n.textContent}]`)),
      [`[${SPOOF}]`, " has left the chat"],
    );
  });

  it("shows both names of a rename as elements, whatever the server's sentence says", () => {
    const node = render({
      kind: "system",
      text: "this text is not what is shown",
      event: "rename",
      name: "Eve is now known as Bob",
      previous: "Eve",
    });
    const names = all(node, "notice-name");
    assert.deepEqual(
      names.map((n) => n.textContent),
      ["Eve", "Eve is now known as Bob"],
    );
    assert.equal(node.textContent.includes("this text is not"), false);
    assert.equal(node.querySelector(".msg__text").textContent, "Eve is now known as Eve is now known as Bob");
  });

  it("shows a notice without a name as its text", () => {
    const node = render({ kind: "system", text: "Connected.", local: true });
    assert.equal(all(node, "notice-name").length, 0);
    assert.equal(node.querySelector(".msg__text").textContent, "Connected.");
  });
});

describe("bidi isolation", () => {
  const RLO = "\u202e";

  it("isolates the sender, the private tag's name and every line of a message, each with dir=auto", () => {
    const node = render({
      kind: "private",
      direction: "in",
      from: `Mallory${RLO}`,
      text: `first ${RLO}reversed\nsecond line\n\nfourth`,
    });
    const from = node.querySelector(".msg__from");
    assert.ok(isIsolate(from));
    assert.equal(from.textContent, `Mallory${RLO}`);
    const tagName = node.querySelector(".msg__tag-name");
    assert.ok(isIsolate(tagName));
    assert.equal(node.querySelector(".msg__tag").textContent, `Private · from Mallory${RLO}`);
    assert.equal(node.querySelector(".msg__tag").title, `Private · from ${isolate(`Mallory${RLO}`)}`);

    const text = node.querySelector(".msg__text");
    const [first, ...lines] = text.children;
    assert.ok(isIsolate(first));
    assert.equal(first.textContent, `first ${RLO}reversed`);
    assert.deepEqual(
      lines.map((l) => [l.className, l.children.map(isIsolate)]),
      [
        ["msg__line", [true]],
        ["msg__line", []], // an empty line has no child, so CSS :empty keeps its height
        ["msg__line", [true]],
      ],
    );
  });

  it("isolates a member's name; the li's text is still exactly the name", () => {
    const li = memberElement(fakeDocument, `Eve${RLO}`, { isYou: false });
    assert.deepEqual(shape(li), [["BDI", "member__name", `Eve${RLO}`]]);
    assert.ok(isIsolate(li.children[0]));
    assert.equal(li.textContent, `Eve${RLO}`);
    assert.equal(li.title, `Send ${isolate(`Eve${RLO}`)} a private message`);
    const me = memberElement(fakeDocument, "Al", { isYou: true });
    assert.equal(me.textContent, "Al(you)");
  });

  it("wraps a plain string in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE", () => {
    assert.equal(isolate("Bob"), "\u2068Bob\u2069");
    assert.equal(isolate(null), "\u2068\u2069");
  });
});
