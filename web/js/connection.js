// ChatConnection: one logical chat connection that survives socket drops.
//
// Owns the WebSocket, the reconnect schedule (backoff.js) and the keep-alive
// (keepalive.js). Knows nothing about the DOM: the WebSocket constructor, the
// endpoint lookup, the clock and the timers are all injected, so it can be
// driven by a fake socket under `node --test`.
//
// States (emitted as "state" events):
//   connecting   – looking up the endpoint / WebSocket handshake in progress
//   connected    – socket open
//   reconnecting – waiting `retryInMs` before the next attempt
//   disconnected – closed on purpose (Disconnect button), or held (below); no
//                  automatic retry
//
// Reconnect policy: any close the user did not ask for (network loss, server
// restart, API Gateway's 10-minute idle or 2-hour limits, a failed handshake,
// a failed endpoint lookup) schedules another attempt after
// backoffDelay(attempt): 1 s doubling to 30 s, with jitter. The attempt counter
// goes back to 0 once a connection has stayed open for `stableAfterMs`, so the
// 2-hour cut-off reconnects within a second while a server that accepts and
// immediately drops connections is not hammered.
//
// Held: `holdRetry(close)` (injected; by default never) is asked after each
// close the user did not ask for, once the "close" event has been emitted.
// When it says true the connection does not retry: it goes to disconnected,
// with `held: true` in the state event, until connect() is called. app.js
// holds when the server closed a connection that never took a name (the server
// closes connections that stay unnamed): reconnecting would only be closed
// again, so the page connects once the user sets a name.
//
// Sign-in: `socketArgs(endpoint)` (injected; by default the endpoint as it is)
// turns the endpoint into what the WebSocket is opened with, {url, protocols},
// e.g. the token as a query parameter or as a subprotocol beside `chat`. It is
// called before every attempt, so it can refresh an expired token. When it
// rejects (nobody is signed in), the connection stops (disconnected) and emits
// "signInNeeded"; connect() tries again. The endpoint in "open" and "state"
// events is always the plain one, never the token.

import { backoffDelay } from "./backoff.js";
import { KeepAlive, KEEPALIVE_IDLE_MS, STALE_AFTER_MS } from "./keepalive.js";
import { parseFrameText, pingAction } from "./protocol.js";

export const STATES = Object.freeze({
  CONNECTING: "connecting",
  CONNECTED: "connected",
  RECONNECTING: "reconnecting",
  DISCONNECTED: "disconnected",
});

const OPEN = 1;

export class ChatConnection {
  constructor({
    getEndpoint,
    socketArgs = (endpoint) => ({ url: endpoint }),
    WebSocketImpl = globalThis.WebSocket,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    random = Math.random,
    backoff = {},
    connectTimeoutMs = 15000,
    stableAfterMs = 10000,
    keepAliveIdleMs = KEEPALIVE_IDLE_MS,
    staleAfterMs = STALE_AFTER_MS,
    logger = globalThis.console,
    holdRetry = () => false,
    divert = () => false,
  }) {
    Object.assign(this, {
      getEndpoint,
      holdRetry,
      divert,
      socketArgs,
      WebSocketImpl,
      now,
      setTimer,
      clearTimer,
      random,
      backoffOpts: backoff,
      connectTimeoutMs,
      stableAfterMs,
      logger,
    });
    this.listeners = new Map();
    this.ws = null;
    this.generation = 0; // bumps whenever the current socket is abandoned
    this.attempt = 0; // consecutive failed attempts
    this.state = STATES.DISCONNECTED;
    this.retryAt = null;
    this.retryTimer = null;
    this.connectTimer = null;
    this.openedAt = null;
    this.everOpened = false;
    this.endpoint = null;
    this.keepAlive = new KeepAlive({
      idleMs: keepAliveIdleMs,
      staleAfterMs,
      now,
      setTimer,
      clearTimer,
      sendPing: () => this.send(pingAction()),
      onStale: () => this.abandon("no traffic for over 10 minutes"),
    });
  }

  // ------------------------------------------------------------ events
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, detail) {
    for (const fn of this.listeners.get(type) ?? []) {
      try {
        fn(detail);
      } catch (err) {
        this.logger?.error?.("chat listener failed:", err);
      }
    }
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit("state", { state, attempt: this.attempt, ...extra });
  }

  // ------------------------------------------------------------ public API
  get isOpen() {
    return this.ws !== null && this.ws.readyState === OPEN && this.state === STATES.CONNECTED;
  }

  /** Connect now (initial connect or the Reconnect button). */
  connect() {
    this.attempt = 0;
    this.open();
  }

  /** Close on purpose; no automatic reconnect until connect() is called. */
  disconnect() {
    this.cancelRetry();
    const wasOpen = this.isOpen;
    this.dropSocket(1000, "client disconnect");
    this.setState(STATES.DISCONNECTED);
    this.emit("close", { intentional: true, wasOpen, code: 1000, reason: "" });
  }

  /** If we are waiting to retry, retry now (e.g. the browser came back online). */
  retryNow() {
    if (this.state === STATES.RECONNECTING) this.open();
  }

  /** Re-check the keep-alive (e.g. the tab became visible again). */
  checkKeepAlive() {
    this.keepAlive.check();
  }

  /** Send one JSON action. Returns false if the socket is not open. */
  send(obj) {
    if (!this.isOpen) return false;
    try {
      this.ws.send(JSON.stringify(obj));
    } catch (err) {
      this.logger?.warn?.("send failed:", err);
      return false;
    }
    this.keepAlive.touch();
    return true;
  }

  // ------------------------------------------------------------ internals
  cancelRetry() {
    if (this.retryTimer !== null) this.clearTimer(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
  }

  clearConnectTimer() {
    if (this.connectTimer !== null) this.clearTimer(this.connectTimer);
    this.connectTimer = null;
  }

  /** Forget the current socket without triggering a reconnect. */
  dropSocket(code, reason) {
    this.generation += 1;
    this.clearConnectTimer();
    this.keepAlive.stop();
    const ws = this.ws;
    this.ws = null;
    this.openedAt = null;
    if (ws) {
      ws.onmessage = ws.onerror = ws.onclose = null;
      const close = () => {
        try {
          ws.close(code, reason);
        } catch {
          /* already closed */
        }
      };
      if (ws.readyState === 0) {
        // Closing a socket that is still handshaking makes browsers log an
        // error; let it open, then close it straight away.
        ws.onopen = close;
      } else {
        ws.onopen = null;
        close();
      }
    }
  }

  /** The socket is unusable but the user still wants to chat: reconnect now. */
  abandon(why) {
    if (this.state !== STATES.CONNECTED && this.state !== STATES.CONNECTING) return;
    const wasOpen = this.isOpen;
    this.dropSocket(4000, why);
    this.attempt = 0;
    this.emit("close", { intentional: false, wasOpen, code: 4000, reason: why });
    this.open();
  }

  async open() {
    this.cancelRetry();
    this.dropSocket(1000, "reconnecting");
    const gen = this.generation;
    this.setState(STATES.CONNECTING, { reconnect: this.everOpened || this.attempt > 0 });

    let endpoint;
    try {
      endpoint = await this.getEndpoint();
    } catch (err) {
      if (gen !== this.generation) return;
      this.logger?.warn?.("could not get the WebSocket endpoint:", err);
      this.emit("endpointError", { error: err });
      this.scheduleRetry();
      return;
    }
    if (gen !== this.generation || this.state !== STATES.CONNECTING) return;
    this.endpoint = endpoint;

    let target;
    try {
      target = await this.socketArgs(endpoint);
    } catch (err) {
      if (gen !== this.generation) return;
      this.setState(STATES.DISCONNECTED);
      this.emit("signInNeeded", { error: err });
      return;
    }
    if (gen !== this.generation || this.state !== STATES.CONNECTING) return;

    let ws;
    try {
      ws = target.protocols
        ? new this.WebSocketImpl(target.url, target.protocols)
        : new this.WebSocketImpl(target.url);
    } catch (err) {
      this.logger?.warn?.("could not open WebSocket:", err);
      this.scheduleRetry();
      return;
    }
    this.ws = ws;

    this.connectTimer = this.setTimer(() => {
      this.connectTimer = null;
      if (gen !== this.generation) return;
      this.logger?.warn?.("WebSocket handshake timed out");
      this.dropSocket(4001, "handshake timeout");
      this.scheduleRetry();
    }, this.connectTimeoutMs);

    ws.onopen = () => {
      if (gen !== this.generation) return;
      this.clearConnectTimer();
      this.openedAt = this.now();
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.keepAlive.start();
      this.setState(STATES.CONNECTED, { endpoint });
      this.emit("open", { reconnected, endpoint });
    };

    ws.onmessage = (ev) => {
      if (gen !== this.generation) return;
      this.keepAlive.touch();
      // `divert(frame)` (injected) may take a frame for itself (the rooms of protocol v2).
      if (this.divert(frameOf(ev.data))) return;
      const events = parseFrameText(ev.data, this.now());
      if (events.length === 0) {
        this.logger?.debug?.("ignored frame:", ev.data);
        return;
      }
      this.emit("events", events);
    };

    ws.onerror = () => {
      // A close event always follows; the retry is scheduled there.
    };

    ws.onclose = (ev) => {
      if (gen !== this.generation) return;
      const wasOpen = this.openedAt !== null;
      const lasted = wasOpen ? this.now() - this.openedAt : 0;
      this.generation += 1;
      this.clearConnectTimer();
      this.keepAlive.stop();
      this.ws = null;
      this.openedAt = null;
      if (wasOpen && lasted >= this.stableAfterMs) this.attempt = 0;
      const detail = {
        intentional: false,
        wasOpen,
        code: ev?.code ?? 1006,
        reason: ev?.reason ?? "",
      };
      this.emit("close", detail);
      if (this.holdRetry(detail)) {
        this.cancelRetry();
        this.attempt = 0;
        this.setState(STATES.DISCONNECTED, { held: true });
        return;
      }
      this.scheduleRetry();
    };
  }

  scheduleRetry() {
    this.cancelRetry();
    const delay = backoffDelay(this.attempt, { ...this.backoffOpts, random: this.random });
    this.attempt += 1;
    this.retryAt = this.now() + delay;
    this.retryTimer = this.setTimer(() => {
      this.retryTimer = null;
      this.retryAt = null;
      this.open();
    }, delay);
    this.setState(STATES.RECONNECTING, { retryInMs: delay, retryAt: this.retryAt });
  }
}

/** The JSON value of a text frame, or null. */
function frameOf(data) {
  if (typeof data !== "string") return null;
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}
