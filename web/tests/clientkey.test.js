// The tab's client key (js/clientkey.js) and where it goes: every setName.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { CLIENT_KEY_ITEM, CLIENT_KEY_PATTERN, tabClientKey } from "../js/clientkey.js";
import { Conversation } from "../js/conversation.js";
import { normaliseFrame } from "../js/protocol.js";
import { FakeClock, FakeView } from "./helpers.js";

/** A tab's sessionStorage: what one tab keeps across reloads. */
class FakeStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(k) {
    return this.items.has(k) ? this.items.get(k) : null;
  }
  setItem(k, v) {
    this.items.set(k, String(v));
  }
}

/** Storage that the browser refuses (blocked cookies, a sandboxed frame): every call throws. */
const blockedStorage = {
  getItem() {
    throw new Error("SecurityError: access denied");
  },
  setItem() {
    throw new Error("SecurityError: access denied");
  },
};

/** Storage that reads but is full. */
class FullStorage extends FakeStorage {
  setItem() {
    throw new Error("QuotaExceededError");
  }
}

describe("tabClientKey", () => {
  it("makes a key the server accepts, of at least 22 random [0-9a-z] characters, and keeps it in the tab's storage", () => {
    const storage = new FakeStorage();
    const key = tabClientKey({ storage });
    assert.match(key, CLIENT_KEY_PATTERN);
    assert.match(key, /^[0-9a-z]{22,64}$/);
    assert.equal(storage.getItem(CLIENT_KEY_ITEM), key);
  });

  it("gives the same key again to the same tab (a reload reads it back)", () => {
    const storage = new FakeStorage();
    const first = tabClientKey({ storage });
    const again = tabClientKey({
      storage,
      random: () => {
        throw new Error("no new key should be made");
      },
    });
    assert.equal(again, first);
  });

  it("gives a new tab, whose storage starts empty, a key of its own", () => {
    const keys = new Set();
    for (let i = 0; i < 50; i += 1) keys.add(tabClientKey({ storage: new FakeStorage() }));
    assert.equal(keys.size, 50);
  });

  it("draws the key from crypto.getRandomValues", () => {
    const real = globalThis.crypto.getRandomValues.bind(globalThis.crypto);
    let calls = 0;
    const spy = (array) => {
      calls += 1;
      return real(array);
    };
    const saved = Object.getOwnPropertyDescriptor(globalThis.crypto, "getRandomValues");
    Object.defineProperty(globalThis.crypto, "getRandomValues", { value: spy, configurable: true });
    try {
      tabClientKey({ storage: new FakeStorage() });
    } finally {
      if (saved) Object.defineProperty(globalThis.crypto, "getRandomValues", saved);
      else delete globalThis.crypto.getRandomValues;
    }
    assert.ok(calls >= 22, `${calls} draws`);
  });

  it("still works without storage: a key in memory, when storage throws, is full or is absent", () => {
    for (const storage of [blockedStorage, new FullStorage(), null]) {
      const key = tabClientKey({ storage });
      assert.match(key, CLIENT_KEY_PATTERN);
    }
  });

  it("replaces a kept value the server would refuse", () => {
    for (const bad of ["", "short", "has space in it!!", "é".repeat(30), "x".repeat(65)]) {
      const storage = new FakeStorage();
      storage.setItem(CLIENT_KEY_ITEM, bad);
      const key = tabClientKey({ storage });
      assert.notEqual(key, bad);
      assert.match(key, CLIENT_KEY_PATTERN);
      assert.equal(storage.getItem(CLIENT_KEY_ITEM), key);
    }
  });
});

describe("the client key on the wire", () => {
  function page(storage) {
    const clock = new FakeClock();
    const sent = [];
    let n = 0;
    const conv = new Conversation({
      view: new FakeView(),
      send: (f) => {
        sent.push(f);
        return true;
      },
      nextId: () => `c${++n}`,
      clientKey: tabClientKey({ storage }),
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
    });
    const server = (f) => conv.handle(normaliseFrame(f, clock.now()));
    return { conv, sent, server };
  }

  it("goes with the join, the re-claim after a reconnect and a rename, the same key each time", () => {
    const { conv, sent, server } = page(new FakeStorage());
    conv.sendSetName("Alice", { claim: true });
    server({ members: ["Alice"] });
    conv.named("Alice");
    server({ publicMessage: "Alice: hi", from: "Alice", text: "hi", seq: 3, prev: 0, messageId: "m3" });
    // The connection drops; the next one re-claims the name with `since`.
    conv.closed();
    conv.sendSetName("Alice", { claim: true });
    conv.named("Alice");
    conv.sendSetName("Alicia", { claim: false });

    assert.deepEqual(
      sent.filter((f) => f.action === "setName").map((f) => [f.name, f.since ?? null]),
      [
        ["Alice", null],
        ["Alice", 3],
        ["Alicia", null],
      ],
    );
    const keys = new Set(sent.filter((f) => f.action === "setName").map((f) => f.clientKey));
    assert.equal(keys.size, 1);
    assert.match([...keys][0], CLIENT_KEY_PATTERN);
  });

  it("is the same after a reload of the tab and differs in a new tab", () => {
    const tab = new FakeStorage();
    const before = page(tab);
    before.conv.sendSetName("Alice", { claim: true });
    const reloaded = page(tab);
    reloaded.conv.sendSetName("Alice", { claim: true });
    const otherTab = page(new FakeStorage());
    otherTab.conv.sendSetName("Alice", { claim: true });

    assert.equal(reloaded.sent[0].clientKey, before.sent[0].clientKey);
    assert.notEqual(otherTab.sent[0].clientKey, before.sent[0].clientKey);
  });

  it("is kept across reconnects when storage is unavailable", () => {
    const { conv, sent } = page(blockedStorage);
    conv.sendSetName("Alice", { claim: true });
    conv.named("Alice");
    conv.closed();
    conv.sendSetName("Alice", { claim: true });
    assert.equal(sent.length, 2);
    assert.match(sent[0].clientKey, CLIENT_KEY_PATTERN);
    assert.equal(sent[1].clientKey, sent[0].clientKey);
  });

  it("is left out when there is none (the frame is then exactly the v1.1 one)", () => {
    const sent = [];
    const conv = new Conversation({ view: new FakeView(), send: (f) => sent.push(f) > 0, nextId: () => "n1" });
    conv.sendSetName("Alice", { claim: true });
    assert.deepEqual(sent, [{ action: "setName", name: "Alice", id: "n1" }]);
  });
});
