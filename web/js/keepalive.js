// Keep-alive strategy
// -------------------
// API Gateway closes a WebSocket after 10 minutes without traffic in either
// direction (and after 2 hours no matter what; that one is handled by the
// automatic reconnect in connection.js). Every frame is a billed message, so
// we never ping on a fixed beat: we remember when the last frame went out or
// came in, and send `{"action":"ping"}` (which the server swallows without a
// reply) only once the connection has been completely silent for
// KEEPALIVE_IDLE_MS = 8.5 minutes. A busy chat therefore sends no pings at all,
// and a silent one sends about seven per hour.
//
// Why 8.5 and not exactly 9 minutes: browsers throttle timers in background
// tabs, and Chrome's "intensive throttling" can delay a chained timer by up to a
// minute, so the margin keeps a late ping under the 10-minute limit.
//
// The single timer is re-armed lazily: touch() only records a timestamp (no
// timer churn per message); when the timer fires it either pings or re-arms
// for the remaining time. If the timer finds more than STALE_AFTER_MS of
// silence (the computer slept, the tab was frozen), API Gateway has certainly
// dropped the connection even if the browser has not noticed yet, so it calls
// onStale() instead and the connection reconnects right away.
//
// Pure apart from the injectable clock and timer functions.

export const KEEPALIVE_IDLE_MS = 8.5 * 60 * 1000;
export const APIGW_IDLE_TIMEOUT_MS = 10 * 60 * 1000;
export const STALE_AFTER_MS = APIGW_IDLE_TIMEOUT_MS + 15 * 1000;

/** Milliseconds until a ping is due (<= 0 means "now"). */
export function pingDueIn(lastTrafficAt, now, idleMs = KEEPALIVE_IDLE_MS) {
  return lastTrafficAt + idleMs - now;
}

/** What the keep-alive timer should do at `now`. */
export function keepAliveDecision(
  lastTrafficAt,
  now,
  { idleMs = KEEPALIVE_IDLE_MS, staleAfterMs = STALE_AFTER_MS } = {},
) {
  const silentFor = now - lastTrafficAt;
  if (silentFor >= staleAfterMs) return { action: "stale" };
  if (silentFor >= idleMs) return { action: "ping" };
  return { action: "wait", ms: idleMs - silentFor };
}

export class KeepAlive {
  /**
   * @param {object} o
   * @param {() => void} o.sendPing  sends {"action":"ping"} (and should call touch())
   * @param {() => void} [o.onStale] the connection has certainly been dropped
   */
  constructor({
    sendPing,
    onStale = () => {},
    idleMs = KEEPALIVE_IDLE_MS,
    staleAfterMs = STALE_AFTER_MS,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
  }) {
    Object.assign(this, { sendPing, onStale, idleMs, staleAfterMs, now, setTimer, clearTimer });
    this.timer = null;
    this.running = false;
    this.lastTrafficAt = 0;
  }

  /** Call when the socket opens. */
  start() {
    this.running = true;
    this.lastTrafficAt = this.now();
    this.arm(this.idleMs);
  }

  /** Call when the socket closes. */
  stop() {
    this.running = false;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }

  /** Call for every frame sent or received. */
  touch() {
    this.lastTrafficAt = this.now();
  }

  /** Re-evaluate now (e.g. when the tab becomes visible again). */
  check() {
    if (!this.running) return;
    const d = keepAliveDecision(this.lastTrafficAt, this.now(), {
      idleMs: this.idleMs,
      staleAfterMs: this.staleAfterMs,
    });
    if (d.action === "stale") {
      this.stop();
      this.onStale();
    } else if (d.action === "ping") {
      this.lastTrafficAt = this.now();
      this.sendPing();
      this.arm(this.idleMs);
    } else {
      this.arm(d.ms);
    }
  }

  arm(ms) {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.check();
    }, Math.max(0, ms));
  }
}
