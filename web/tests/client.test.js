// Unit tests for the DOM-free client modules. Run: node --test web/tests/
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { backoffCeiling, backoffDelay } from "../js/backoff.js";
import { ChatConnection, STATES } from "../js/connection.js";
import {
  endpointOverride,
  fetchEndpoint,
  fetchEndpointDocument,
  isLoopbackHost,
  normaliseEndpoint,
} from "../js/endpoint.js";
import { hueOf, initialOf, secondsUntil } from "../js/format.js";
import {
  KEEPALIVE_IDLE_MS,
  KeepAlive,
  STALE_AFTER_MS,
  keepAliveDecision,
  pingDueIn,
} from "../js/keepalive.js";
import { NameClaim } from "../js/names.js";
import { FakeClock, T0 } from "./helpers.js";
import {
  normaliseFrame,
  normaliseTs,
  parseFrameText,
  splitSender,
  validateMessage,
  validateName,
} from "../js/protocol.js";

// ---------------------------------------------------------------- fakes

class FakeSocket {
  static instances = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closed = null;
    FakeSocket.instances.push(this);
  }
  send(s) {
    this.sent.push(JSON.parse(s));
  }
  close(code, reason) {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  // test helpers
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  serverClose(code = 1001) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

const flush = () => new Promise((r) => setImmediate(r));

/** The v1.1 keys of a public-message event built from a v1 frame. */
const NO_V11_PUBLIC = { seq: null, prev: null, messageId: null, id: null };

// ---------------------------------------------------------------- protocol

describe("validateName", () => {
  it("trims and accepts 1–32 characters", () => {
    assert.deepEqual(validateName("  Alice "), { ok: true, value: "Alice" });
    assert.equal(validateName("x".repeat(32)).ok, true);
    assert.equal(validateName("😀".repeat(32)).ok, true, "counts code points");
  });
  it("rejects empty, long, colon and control characters", () => {
    for (const bad of ["", "   ", "x".repeat(33), "a:b", "a\u0000b", "a\nb", "a\u007fb", "a\u0085b"]) {
      const r = validateName(bad);
      assert.equal(r.ok, false, JSON.stringify(bad));
      assert.equal(r.code, "INVALID_NAME");
    }
    assert.equal(validateName(null).ok, false);
  });
});

describe("validateMessage", () => {
  it("trims and enforces 1–2000 characters", () => {
    assert.deepEqual(validateMessage(" hi\n"), { ok: true, value: "hi" });
    assert.equal(validateMessage("x".repeat(2000)).ok, true);
    assert.equal(validateMessage("x".repeat(2001)).code, "MESSAGE_TOO_LONG");
    assert.equal(validateMessage("  ").code, "INVALID_MESSAGE");
    assert.equal(validateMessage("line 1\nline 2").ok, true);
  });

  it("limits the UTF-8 bytes too, as the server does: 2000 letters of most scripts, 1000 emoji", () => {
    assert.equal(validateMessage("é".repeat(2000)).ok, true, "2 bytes each: 4000");
    assert.equal(validateMessage("😀".repeat(1000)).ok, true, "4 bytes each: 4000");
    const over = validateMessage("😀".repeat(1001));
    assert.equal(over.code, "MESSAGE_TOO_LONG");
    assert.match(over.message, /4004 of 4000 bytes/);
    assert.equal(validateMessage("中".repeat(1334)).code, "MESSAGE_TOO_LONG", "3 bytes each: 4002");
  });

  it("refuses control characters other than the line break, and bidi embeddings, overrides and isolates", () => {
    for (const bad of ["a\tb", "a\u0000b", "a\u001bb", "a\u007fb", "a\u0085b", "a\u000bb"]) {
      assert.equal(validateMessage(bad).code, "INVALID_MESSAGE", JSON.stringify(bad));
    }
    assert.match(validateMessage("a\tb").message, /tab/);
    for (let cp = 0x202a; cp <= 0x202e; cp += 1) {
      assert.equal(validateMessage(`abc${String.fromCodePoint(cp)}def`).code, "INVALID_MESSAGE", cp.toString(16));
    }
    for (let cp = 0x2066; cp <= 0x2069; cp += 1) {
      assert.equal(validateMessage(`abc${String.fromCodePoint(cp)}def`).code, "INVALID_MESSAGE", cp.toString(16));
    }
    // The marks reorder nothing; Arabic and Hebrew text is fine.
    for (const ok of ["a\u200eb", "a\u200fb", "\u061c\u0645\u0631\u062d\u0628\u0627", "שלום\nhello"]) {
      assert.equal(validateMessage(ok).ok, true, JSON.stringify(ok));
    }
  });
});

describe("splitSender", () => {
  it("splits at the first colon", () => {
    assert.deepEqual(splitSender("Alice: hello: world"), { from: "Alice", text: "hello: world" });
    assert.deepEqual(splitSender("no sender"), { from: null, text: "no sender" });
    assert.deepEqual(splitSender(": odd"), { from: null, text: ": odd" });
  });
});

describe("normaliseFrame", () => {
  it("handles full v1 frames", () => {
    assert.deepEqual(
      normaliseFrame({ publicMessage: "Alice: hello!", from: "Alice", text: "hello!", ts: T0 }, 1),
      [{ type: "public", from: "Alice", text: "hello!", ts: T0, ...NO_V11_PUBLIC }],
    );
    assert.deepEqual(
      normaliseFrame(
        { privateMessage: "Alice: hi!", from: "Alice", to: "Bob", text: "hi!", ts: T0 },
        1,
      ),
      [{ type: "private", from: "Alice", to: "Bob", text: "hi!", ts: T0, seq: null, messageId: null }],
    );
    assert.deepEqual(
      normaliseFrame(
        {
          systemMessage: "OLD is now known as NEW",
          event: "rename",
          name: "NEW",
          previous: "OLD",
        },
        5,
      ),
      [
        {
          type: "system",
          text: "OLD is now known as NEW",
          event: "rename",
          name: "NEW",
          previous: "OLD",
          ts: 5,
          eventId: null,
        },
      ],
    );
    assert.deepEqual(normaliseFrame({ members: ["Alice", "bob"] }), [
      { type: "members", members: ["Alice", "bob"], eventId: null },
    ]);
    assert.deepEqual(
      normaliseFrame({ error: { code: "NAME_TAKEN", message: "taken", action: "setName" } }, 7),
      [
        {
          type: "error",
          code: "NAME_TAKEN",
          message: "taken",
          action: "setName",
          id: null,
          retryAfterMs: null,
          ts: 7,
        },
      ],
    );
    assert.equal(
      normaliseFrame({ error: { code: "INTERNAL", message: "x", action: null } })[0].action,
      null,
    );
  });

  it("handles seed-only frames (no from/text/ts/event)", () => {
    assert.deepEqual(normaliseFrame({ publicMessage: "Alice: hello: there" }, 42), [
      { type: "public", from: "Alice", text: "hello: there", ts: 42, ...NO_V11_PUBLIC },
    ]);
    assert.deepEqual(normaliseFrame({ privateMessage: "Alice: hi!" }, 42), [
      { type: "private", from: "Alice", to: null, text: "hi!", ts: 42, seq: null, messageId: null },
    ]);
    const [join] = normaliseFrame({ systemMessage: "Alice has joined the chat" }, 1);
    assert.equal(join.event, "join");
    assert.equal(join.name, "Alice");
    const [left] = normaliseFrame({ systemMessage: "undefined has left the chat" }, 1);
    assert.equal(left.event, "leave");
    const [ren] = normaliseFrame({ systemMessage: "a is now known as b" }, 1);
    assert.deepEqual([ren.event, ren.name, ren.previous], ["rename", "b", "a"]);
  });

  it("turns API Gateway frames into errors", () => {
    const [e] = normaliseFrame(
      { message: "Internal server error", connectionId: "abc=", requestId: "r1" },
      3,
    );
    assert.equal(e.type, "error");
    assert.equal(e.code, "GATEWAY");
    assert.equal(e.message, "Internal server error");
    assert.equal(normaliseFrame({ message: "Forbidden" })[0].message, "Forbidden");
  });

  it("ignores junk", () => {
    assert.deepEqual(parseFrameText("not json"), []);
    assert.deepEqual(parseFrameText("[1,2]"), []);
    assert.deepEqual(parseFrameText("null"), []);
  });

  it("gives a JSON object with no key it knows as one unknown event, named by its keys", () => {
    assert.deepEqual(parseFrameText('{"foo":1}', 5), [{ type: "unknown", kind: "foo", ts: 5 }]);
    // The envelope keys (ts, eventId, …) do not tell what a frame is.
    const [typing] = normaliseFrame({ typing: "Bob", ts: T0, eventId: "e1" }, 1);
    assert.deepEqual(typing, { type: "unknown", kind: "typing", ts: T0 });
    assert.equal(normaliseFrame({ b: 1, a: 2 })[0].kind, "a,b", "sorted");
    assert.equal(normaliseFrame({})[0].kind, "(empty object)");
    assert.equal(normaliseFrame({ ts: 1 })[0].kind, "ts");
    // A key the client knows, with a value it cannot use, is unknown too.
    assert.equal(normaliseFrame({ members: "alice" })[0].kind, "members");
    // Bounded and printable, whatever the server sends.
    const wild = normaliseFrame({ ["k\u202e".repeat(40)]: 1, b: 1, c: 1, d: 1, e: 1 })[0].kind;
    assert.equal(wild, `b,c,d,e,…`);
    const odd = normaliseFrame({ ["x\u0000\u202e".repeat(20)]: 1 })[0].kind;
    assert.equal(odd.length, 32);
    assert.match(odd, /^[\x20-\x7e]+$/);
  });

  it("keeps several keys of one frame", () => {
    const evs = normaliseFrame({ systemMessage: "x", members: ["a"] }, 1);
    assert.deepEqual(evs.map((e) => e.type), ["system", "members"]);
  });

  it("normalises timestamps", () => {
    assert.equal(normaliseTs(T0, 1), T0);
    assert.equal(normaliseTs(1764118625, 1), 1764118625000);
    assert.equal(normaliseTs(undefined, 9), 9);
    assert.equal(normaliseTs("garbage", 9), 9);
    assert.equal(normaliseTs(-5, 9), 9);
  });
});

// ---------------------------------------------------------------- backoff

describe("backoff", () => {
  it("doubles from 1 s to a 30 s cap", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 50, 5000].map((n) => backoffCeiling(n)),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000],
    );
  });
  it("jitters within [d/2, d]", () => {
    assert.equal(backoffDelay(0, { random: () => 0 }), 500);
    assert.equal(backoffDelay(0, { random: () => 1 }), 1000);
    assert.equal(backoffDelay(10, { random: () => 0 }), 15000);
    for (let i = 0; i < 200; i += 1) {
      const d = backoffDelay(3);
      assert.ok(d >= 4000 && d <= 8000, String(d));
    }
  });
});

// ---------------------------------------------------------------- keep-alive

describe("keep-alive", () => {
  it("decides ping/wait/stale from the silence", () => {
    assert.equal(KEEPALIVE_IDLE_MS, 510000);
    assert.ok(KEEPALIVE_IDLE_MS < 10 * 60 * 1000);
    assert.deepEqual(keepAliveDecision(0, 1000), { action: "wait", ms: KEEPALIVE_IDLE_MS - 1000 });
    assert.deepEqual(keepAliveDecision(0, KEEPALIVE_IDLE_MS), { action: "ping" });
    assert.deepEqual(keepAliveDecision(0, STALE_AFTER_MS), { action: "stale" });
    assert.equal(pingDueIn(100, 100), KEEPALIVE_IDLE_MS);
  });

  it("pings only after KEEPALIVE_IDLE_MS of silence, and never while busy", () => {
    const clock = new FakeClock();
    const pings = [];
    const ka = new KeepAlive({
      sendPing: () => pings.push(clock.now()),
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
    });
    ka.start();
    // traffic every 5 minutes for an hour: no pings at all
    for (let i = 0; i < 12; i += 1) {
      clock.advance(5 * 60 * 1000);
      ka.touch();
    }
    assert.deepEqual(pings, []);
    // then silence for an hour: one ping per idle period
    const silentFrom = clock.now();
    clock.advance(60 * 60 * 1000);
    assert.equal(pings.length, Math.floor((60 * 60 * 1000) / KEEPALIVE_IDLE_MS));
    assert.equal(pings[0] - silentFrom, KEEPALIVE_IDLE_MS);
    for (let i = 1; i < pings.length; i += 1) {
      assert.equal(pings[i] - pings[i - 1], KEEPALIVE_IDLE_MS);
    }
    ka.stop();
    clock.advance(60 * 60 * 1000);
    assert.equal(clock.timers.size, 0);
  });

  it("reports a stale connection when the timer fires far too late", () => {
    const clock = new FakeClock();
    let stale = 0;
    let pings = 0;
    const ka = new KeepAlive({
      sendPing: () => (pings += 1),
      onStale: () => (stale += 1),
      now: clock.now,
      setTimer: clock.setTimer,
      clearTimer: clock.clearTimer,
    });
    ka.start();
    clock.t += 20 * 60 * 1000; // the machine slept; no timer ran
    clock.advance(0);
    assert.equal(stale, 1);
    assert.equal(pings, 0);
  });
});

// ---------------------------------------------------------------- names

describe("NameClaim", () => {
  it("confirms on a join event for the pending name", () => {
    const n = new NameClaim();
    n.request("Alice");
    assert.ok(n.canChat);
    const out = n.handle([{ type: "system", event: "join", name: "Alice" }]);
    assert.deepEqual(out, [{ type: "confirmed", name: "Alice" }, { type: "members" }]);
    assert.equal(n.confirmed, "Alice");
  });

  it("confirms when a members list newly contains the name (seed servers)", () => {
    const n = new NameClaim();
    n.handle([{ type: "members", members: ["Bob"] }]);
    n.request("Alice");
    const out = n.handle([{ type: "members", members: ["Alice", "Bob"] }]);
    assert.equal(out[0].type, "confirmed");
  });

  it("does not confirm a name somebody else already had", () => {
    const n = new NameClaim();
    n.handle([{ type: "members", members: ["alice"] }]);
    n.request("Alice");
    assert.deepEqual(n.handle([{ type: "members", members: ["alice"] }]), [], "nothing changed");
    const out = n.handle([
      { type: "error", code: "NAME_TAKEN", message: "taken", action: "setName" },
    ]);
    assert.deepEqual(out, [
      { type: "rejected", name: "Alice", code: "NAME_TAKEN", message: "taken", retryAfterMs: null },
    ]);
    assert.equal(n.confirmed, null);
    assert.equal(n.canChat, false);
  });

  it("keeps the old name when a rename is refused", () => {
    const n = new NameClaim();
    n.request("Alice");
    n.handle([{ type: "system", event: "join", name: "Alice" }]);
    n.request("Bob");
    n.handle([{ type: "error", code: "NAME_TAKEN", message: "x", action: "setName" }]);
    assert.equal(n.confirmed, "Alice");
  });

  it("follows renames and forgets everything when the connection is lost", () => {
    const n = new NameClaim();
    n.request("Alice");
    n.handle([{ type: "system", event: "join", name: "Alice" }]);
    n.request("Alicia");
    n.handle([{ type: "system", event: "rename", name: "Alicia", previous: "Alice" }]);
    assert.equal(n.confirmed, "Alicia");
    n.handle([{ type: "system", event: "rename", name: "Ali", previous: "Alicia" }]);
    assert.equal(n.confirmed, "Ali", "a rename of ours confirmed late");
    assert.equal(n.connectionLost(), "Ali", "returns the name it held");
    assert.equal(n.confirmed, null);
    assert.equal(n.canChat, false);
    assert.deepEqual(n.members, []);
  });

  it("withdraws a request that could not be sent", () => {
    const n = new NameClaim();
    n.request("Alice");
    n.withdraw();
    assert.equal(n.canChat, false);
    const out = n.handle([{ type: "error", code: "NAME_TAKEN", message: "x", action: "setName" }]);
    assert.equal(out[0].name, null, "a refusal with nothing pending names nobody");
  });
});

// ---------------------------------------------------------------- endpoint

describe("endpoint", () => {
  const page = (url) => new URL(url); // has .search and .hostname, like window.location

  it("reads and validates the ?ws= override on a loopback page", () => {
    const local = (search) => endpointOverride(page(`http://127.0.0.1:8080/${search}`));
    assert.equal(local("?ws=ws://127.0.0.1:9000/dev"), "ws://127.0.0.1:9000/dev");
    assert.equal(local("?ws=wss%3A%2F%2Fx.example%2Fprod"), "wss://x.example/prod");
    assert.equal(local("?ws=javascript:alert(1)"), null);
    assert.equal(local("?other=1"), null);
    assert.equal(local(""), null);
  });

  it("honours ?ws= on every loopback host name", () => {
    for (const origin of [
      "http://127.0.0.1:8080",
      "http://localhost:8080",
      "http://LOCALHOST",
      "http://[::1]:8080",
      "https://localhost",
    ]) {
      assert.equal(
        endpointOverride(page(`${origin}/?ws=wss://x.example/prod`)),
        "wss://x.example/prod",
        origin,
      );
    }
    assert.equal(endpointOverride({ hostname: "::1", search: "?ws=ws://h/dev" }), "ws://h/dev");
  });

  it("ignores ?ws= on any other page, so the deployed endpoint is used", () => {
    for (const origin of [
      "https://chat.example.com",
      "https://d111111abcdef8.cloudfront.net",
      "http://192.168.1.20:8080",
      "http://127.0.0.2:8080",
      "http://0.0.0.0:8080",
      "http://localhost.evil.example",
      "http://127.0.0.1.nip.io",
      "http://[::ffff:127.0.0.1]",
    ]) {
      const url = `${origin}/?ws=wss://attacker.example/steal`;
      assert.equal(endpointOverride(page(url)), null, origin);
    }
    assert.equal(endpointOverride({ search: "?ws=ws://h/dev" }), null, "no hostname");
    assert.equal(endpointOverride("?ws=ws://127.0.0.1:9000/dev"), null, "a bare search string");
    assert.equal(endpointOverride(null), null);
  });

  it("knows the loopback host names", () => {
    for (const h of ["127.0.0.1", "localhost", "::1", "[::1]"]) assert.ok(isLoopbackHost(h), h);
    for (const h of ["", "example.com", "127.0.0.2", "localhost.", "::", undefined]) {
      assert.equal(isLoopbackHost(h), false, String(h));
    }
  });

  it("normalises http(s) to ws(s)", () => {
    assert.equal(normaliseEndpoint("https://a.example/prod"), "wss://a.example/prod");
    assert.equal(normaliseEndpoint("/dev", "http://127.0.0.1:8080/"), "ws://127.0.0.1:8080/dev");
    assert.equal(normaliseEndpoint("ftp://x"), null);
  });
  it("fetches /get-ws-endpoint", async () => {
    const fetchImpl = async (path) => {
      assert.equal(path, "/get-ws-endpoint");
      return { ok: true, json: async () => ({ endpoint: "ws://127.0.0.1:8080/local" }) };
    };
    assert.equal(await fetchEndpoint({ fetchImpl }), "ws://127.0.0.1:8080/local");
    await assert.rejects(
      fetchEndpoint({ fetchImpl: async () => ({ ok: true, json: async () => ({}) }) }),
    );
    await assert.rejects(fetchEndpoint({ fetchImpl: async () => ({ ok: false, status: 500 }) }));
  });

  it("reads the sign-in settings beside the endpoint, null when sign-in is off", async () => {
    const signIn = { issuer: "https://issuer.example", clientId: "c", tokenSource: "protocol" };
    const answer = (doc) => async () => ({ ok: true, json: async () => doc });
    assert.deepEqual(
      await fetchEndpointDocument({ fetchImpl: answer({ endpoint: "wss://a.example/p", signIn }) }),
      { endpoint: "wss://a.example/p", signIn },
    );
    assert.deepEqual(await fetchEndpointDocument({ fetchImpl: answer({ endpoint: "wss://a.example/p" }) }), {
      endpoint: "wss://a.example/p",
      signIn: null,
    });
  });
});

// ---------------------------------------------------------------- connection

function makeConn(overrides = {}) {
  FakeSocket.instances = [];
  const clock = new FakeClock();
  const states = [];
  const conn = new ChatConnection({
    getEndpoint: async () => "ws://test/dev",
    WebSocketImpl: FakeSocket,
    now: clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    random: () => 1,
    logger: null,
    ...overrides,
  });
  conn.on("state", (s) => states.push(s));
  return { conn, clock, states };
}

describe("ChatConnection", () => {
  it("opens the socket with what socketArgs gives (the token), and reports the plain endpoint", async () => {
    const { conn } = makeConn({
      socketArgs: async (endpoint) => ({ url: `${endpoint}?token=t`, protocols: ["chat", "t2"] }),
    });
    const opened = [];
    conn.on("open", (e) => opened.push(e.endpoint));
    conn.connect();
    await flush();
    const ws = FakeSocket.instances[0];
    assert.equal(ws.url, "ws://test/dev?token=t");
    assert.deepEqual(ws.protocols, ["chat", "t2"]);
    ws.serverOpen();
    assert.deepEqual(opened, ["ws://test/dev"]);
  });

  it("stops, and says so, when nobody is signed in; connect() tries again", async () => {
    let signedIn = false;
    const { conn, states } = makeConn({
      socketArgs: async (endpoint) => {
        if (!signedIn) throw new Error("sign in");
        return { url: endpoint };
      },
    });
    const needed = [];
    conn.on("signInNeeded", (e) => needed.push(e.error.message));
    conn.connect();
    await flush();
    assert.equal(FakeSocket.instances.length, 0);
    assert.equal(conn.state, STATES.DISCONNECTED);
    assert.deepEqual(needed, ["sign in"]);
    assert.equal(conn.retryTimer, null, "no automatic retry");
    signedIn = true;
    conn.connect();
    await flush();
    assert.equal(FakeSocket.instances.length, 1);
    assert.deepEqual(states.map((s) => s.state), ["connecting", "disconnected", "connecting"]);
  });

  it("holds the reconnect when holdRetry says so after a close, until connect()", async () => {
    let hold = false;
    const closes = [];
    const { conn, clock, states } = makeConn({
      holdRetry: (close) => {
        closes.push(close);
        return hold;
      },
    });
    conn.connect();
    await flush();
    FakeSocket.instances[0].serverOpen();
    // Not held: an unexpected close reconnects.
    FakeSocket.instances[0].serverClose(1001);
    assert.equal(conn.state, STATES.RECONNECTING);
    clock.advance(30_000);
    await flush();
    assert.equal(FakeSocket.instances.length, 2);
    FakeSocket.instances[1].serverOpen();
    // Held (e.g. the server closed our unnamed connection): no retry, whatever the wait.
    hold = true;
    FakeSocket.instances[1].serverClose(1000);
    assert.equal(conn.state, STATES.DISCONNECTED);
    assert.equal(states.at(-1).held, true);
    clock.advance(10 * 60_000);
    await flush();
    assert.equal(FakeSocket.instances.length, 2);
    assert.deepEqual(
      closes.map((c) => [c.intentional, c.wasOpen, c.code]),
      [
        [false, true, 1001],
        [false, true, 1000],
      ],
    );
    // connect() (a name was set, or the Reconnect button) opens again.
    conn.connect();
    await flush();
    assert.equal(FakeSocket.instances.length, 3);
    assert.equal(conn.state, STATES.CONNECTING);
  });

  it("connects, sends and receives", async () => {
    const { conn, states } = makeConn();
    const got = [];
    conn.on("events", (evs) => got.push(...evs));
    conn.connect();
    await flush();
    const ws = FakeSocket.instances[0];
    assert.equal(ws.url, "ws://test/dev");
    assert.equal(conn.send({ action: "setName", name: "A" }), false, "not open yet");
    ws.serverOpen();
    assert.equal(conn.state, STATES.CONNECTED);
    assert.equal(conn.send({ action: "setName", name: "A" }), true);
    assert.deepEqual(ws.sent, [{ action: "setName", name: "A" }]);
    ws.serverSend({ members: ["A"] });
    assert.deepEqual(got, [{ type: "members", members: ["A"], eventId: null }]);
    assert.deepEqual(
      states.map((s) => s.state),
      ["connecting", "connected"],
    );
  });

  it("reconnects with backoff after unexpected closes and resets after a stable period", async () => {
    const { conn, clock, states } = makeConn();
    conn.connect();
    await flush();
    FakeSocket.instances[0].serverClose(1006); // handshake failed
    assert.equal(conn.state, STATES.RECONNECTING);
    assert.equal(states.at(-1).retryInMs, 1000);
    clock.advance(1000);
    await flush();
    FakeSocket.instances[1].serverClose(1006);
    assert.equal(states.at(-1).retryInMs, 2000);
    clock.advance(2000);
    await flush();
    const ws = FakeSocket.instances[2];
    ws.serverOpen();
    clock.advance(60 * 1000); // stable for a minute
    ws.serverClose(1001); // e.g. the 2-hour cut-off
    assert.equal(states.at(-1).retryInMs, 1000, "backoff reset");
    clock.advance(1000);
    await flush();
    assert.equal(FakeSocket.instances.length, 4);
  });

  it("does not reconnect after disconnect(), and reconnect() works", async () => {
    const { conn, clock } = makeConn();
    const closes = [];
    conn.on("close", (c) => closes.push(c));
    conn.connect();
    await flush();
    FakeSocket.instances[0].serverOpen();
    conn.disconnect();
    assert.equal(conn.state, STATES.DISCONNECTED);
    assert.equal(FakeSocket.instances[0].closed.code, 1000);
    assert.deepEqual(closes.map((c) => c.intentional), [true]);
    clock.advance(10 * 60 * 1000);
    await flush();
    assert.equal(FakeSocket.instances.length, 1);
    conn.connect();
    await flush();
    assert.equal(FakeSocket.instances.length, 2);
  });

  it("sends a ping only after the idle period and reconnects when stale", async () => {
    const { conn, clock } = makeConn();
    conn.connect();
    await flush();
    const ws = FakeSocket.instances[0];
    ws.serverOpen();
    clock.advance(KEEPALIVE_IDLE_MS - 1);
    assert.deepEqual(ws.sent, []);
    ws.serverSend({ members: [] }); // incoming traffic resets the idle timer
    clock.advance(KEEPALIVE_IDLE_MS - 1);
    assert.deepEqual(ws.sent, []);
    clock.advance(1);
    assert.deepEqual(ws.sent, [{ action: "ping" }]);
    // Sleep through the 10-minute limit: the socket must be replaced.
    clock.t += 30 * 60 * 1000;
    clock.advance(0);
    await flush();
    assert.equal(FakeSocket.instances.length, 2);
  });

  it("retries when the endpoint lookup fails", async () => {
    let calls = 0;
    const { conn, clock } = makeConn({
      getEndpoint: async () => {
        calls += 1;
        if (calls === 1) throw new Error("down");
        return "ws://test/dev";
      },
    });
    conn.connect();
    await flush();
    assert.equal(conn.state, STATES.RECONNECTING);
    clock.advance(1000);
    await flush();
    assert.equal(FakeSocket.instances.length, 1);
  });

  it("times out a hanging handshake", async () => {
    const { conn, clock } = makeConn();
    conn.connect();
    await flush();
    clock.advance(15000);
    assert.equal(conn.state, STATES.RECONNECTING);
  });
});

describe("format", () => {
  it("helpers", () => {
    assert.equal(initialOf("émile"), "É");
    assert.equal(initialOf("👍🏽x"), "👍🏽");
    assert.equal(secondsUntil(2500, 1000), 2);
    assert.equal(hueOf("Alice"), hueOf("alice"));
  });
});
