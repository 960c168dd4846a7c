// Test doubles shared by the *.test.js files (this file holds no tests).

export const T0 = 1764118625123;

/** A manual clock with timers: advance() fires due timers in order. */
export class FakeClock {
  constructor(t = T0) {
    this.t = t;
    this.timers = new Map();
    this.nextId = 1;
  }
  now = () => this.t;
  setTimer = (fn, ms) => {
    const id = this.nextId++;
    this.timers.set(id, { fn, at: this.t + Math.max(0, ms) });
    return id;
  };
  clearTimer = (id) => {
    this.timers.delete(id);
  };
  /** Advance time, firing due timers in order. */
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, tm] of this.timers) {
        if (tm.at <= end && (next === null || tm.at < next[1].at)) next = [id, tm];
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
  }
}

// ---------------------------------------------------------------- a tiny DOM

class FakeText {
  constructor(text) {
    this.nodeType = 3;
    this.data = String(text);
  }
  get textContent() {
    return this.data;
  }
}

class FakeClassList {
  constructor(owner) {
    this.owner = owner;
  }
  get names() {
    return this.owner.className.split(/\s+/).filter(Boolean);
  }
  add(...names) {
    const set = new Set(this.names);
    for (const n of names) set.add(n);
    this.owner.className = [...set].join(" ");
  }
  contains(name) {
    return this.names.includes(name);
  }
  remove(...names) {
    this.owner.className = this.names.filter((n) => !names.includes(n)).join(" ");
  }
  toggle(name, force = !this.contains(name)) {
    if (force) this.add(name);
    else this.remove(name);
    return force;
  }
}

class FakeElement {
  constructor(tag) {
    this.nodeType = 1;
    this.tagName = tag.toUpperCase();
    this.className = "";
    this.childNodes = [];
    this.dataset = {};
    this.classList = new FakeClassList(this);
    const props = new Map();
    this.style = {
      setProperty: (k, v) => props.set(k, v),
      getPropertyValue: (k) => props.get(k) ?? "",
    };
  }
  append(...nodes) {
    for (const n of nodes) this.childNodes.push(typeof n === "string" ? new FakeText(n) : n);
  }
  get children() {
    return this.childNodes.filter((n) => n.nodeType === 1);
  }
  get textContent() {
    return this.childNodes.map((n) => n.textContent).join("");
  }
  set textContent(text) {
    this.childNodes = text === "" ? [] : [new FakeText(text)];
  }
  /** Only ".class" selectors, which is all the tests need. */
  querySelectorAll(selector) {
    if (!selector.startsWith(".")) throw new Error(`unsupported selector ${selector}`);
    const cls = selector.slice(1);
    const found = [];
    const walk = (node) => {
      for (const child of node.children) {
        if (child.classList.contains(cls)) found.push(child);
        walk(child);
      }
    };
    walk(this);
    return found;
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] ?? null;
  }
}

/** Just enough of `document` for render.js's builders. */
export const fakeDocument = {
  createElement: (tag) => new FakeElement(tag),
  createTextNode: (text) => new FakeText(text),
};

// ---------------------------------------------------------------- a log view

/** conversation.js's view, as an array of entries (top to bottom). */
export class FakeView {
  constructor() {
    this.list = []; // handles: {entry}
  }
  insert = (entry, before) => {
    const handle = { entry: { ...entry } };
    this.place(handle, before);
    return handle;
  };
  move = (handle, before) => {
    this.list = this.list.filter((h) => h !== handle);
    this.place(handle, before);
  };
  update = (handle, changes) => {
    Object.assign(handle.entry, changes);
  };
  remove = (handle) => {
    this.list = this.list.filter((h) => h !== handle);
  };
  place(handle, before) {
    const at = before === null ? -1 : this.list.indexOf(before);
    if (before !== null && at < 0) throw new Error("insert before an entry that is not shown");
    if (at < 0) this.list.push(handle);
    else this.list.splice(at, 0, handle);
  }
  get entries() {
    return this.list.map((h) => h.entry);
  }
  /** The texts shown, top to bottom. */
  get texts() {
    return this.list.map((h) => h.entry.text);
  }
  /** The texts of our own messages, with their delivery state ("hi:sending"). */
  get mine() {
    return this.list.filter((h) => h.entry.mine).map((h) => `${h.entry.text}:${h.entry.delivery}`);
  }
}

/** A server frame's public message (v1.1), as the server builds it. */
export function publicFrame(from, text, seq, prev, { id = null, messageId = `m${seq}`, ts = T0 + seq } = {}) {
  const frame = { publicMessage: `${from}: ${text}`, from, text, ts, seq, messageId, prev };
  if (id !== null) frame.id = id;
  return frame;
}
