// The name re-claim policy: which name to claim when a connection opens, and
// how hard to try to get our name back after a reconnect. DOM-free; the clock,
// the timers and the random source are injected (defaults: the globals, looked
// up at call time so that Playwright's page.clock can drive them).
//
// The server forgets a name together with its connection, so after any
// reconnect the client sends setName again for the name it held. Until that
// succeeds our old connection may still hold the name: API Gateway runs
// $disconnect late, or only after its 10-minute idle timeout for a connection
// that vanished without a close. So a re-claim refused with NAME_TAKEN is
// retried (2 s doubling to 30 s, with jitter) for RECLAIM_WINDOW_MS from the
// first reconnect; a re-claim refused with RATE_LIMITED is retried after the
// error's retryAfterMs; any other refusal, or NAME_TAKEN after the window,
// gives the name up. A name the user typed is never retried: a refusal there
// is the user's to deal with.
//
// Life cycle, driven by app.js:
//   choose(name)          the user picked a name (sent now, or on the next open)
//   restore(name)         the page was reloaded while chatting as `name`: it is
//                         claimed on the next open like a re-claim (the old
//                         page's connection may still hold it for a moment)
//   opened()              a connection opened: returns {name, reclaim} to claim, or null
//   confirmed(name)       the server granted a name
//   rejected(outcome, …)  the server refused a setName: returns what happens next
//   closed({held, …})     the connection closed; `held` is the name we had
// and `onRetry(name)` (constructor) is called when a scheduled retry is due.

import { backoffDelay } from "./backoff.js";

/** Keep re-claiming for a little longer than API Gateway's 10-minute idle timeout. */
export const RECLAIM_WINDOW_MS = 11 * 60 * 1000;
/** Delays between re-claim attempts refused with NAME_TAKEN. */
export const RECLAIM_RETRY = Object.freeze({ baseMs: 2000, maxMs: 30000 });

export class NameReclaim {
  constructor({
    onRetry = () => {},
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    random = Math.random,
    windowMs = RECLAIM_WINDOW_MS,
    retry = RECLAIM_RETRY,
  } = {}) {
    Object.assign(this, { onRetry, now, setTimer, clearTimer, random, windowMs, retry });
    this.wanted = null; // the name to claim on the next open (or being claimed now)
    this.isReclaim = false; // `wanted` was granted on an earlier connection
    this.connected = false;
    this.attempt = 0; // re-claims refused with NAME_TAKEN so far
    this.deadline = 0; // end of the retry window (epoch ms); 0 = not started
    this.timer = null;
  }

  /** A retry is scheduled (the name is still expected back). */
  get retrying() {
    return this.timer !== null;
  }

  /** The user picked a name: claim it now or on the next open; ends any re-claim. */
  choose(name) {
    this.stop();
    this.wanted = name;
    this.isReclaim = false;
  }

  /** The page held `name` before a reload: claim it on the next open, as a re-claim. */
  restore(name) {
    this.stop();
    this.wanted = name;
    this.isReclaim = true;
  }

  /** A connection opened. Returns the claim to send, {name, reclaim}, or null. */
  opened() {
    this.connected = true;
    if (this.wanted === null) return null;
    if (this.isReclaim && this.deadline === 0) {
      this.attempt = 0;
      this.deadline = this.now() + this.windowMs;
    }
    return { name: this.wanted, reclaim: this.isReclaim };
  }

  /** The server granted `name` (a join or a rename). */
  confirmed(name) {
    this.stop();
    this.wanted = name;
    this.isReclaim = false;
  }

  /**
   * The server refused a setName. `outcome` is NameClaim's
   * {name, code} (name is null when no request was pending); `held` is the
   * name we still hold on this connection (null if none). Returns one of
   *   {action: "retry", name, delayMs}   NAME_TAKEN within the window, or RATE_LIMITED: try again
   *   {action: "giveUp", name}          a re-claim that will not be retried
   *   {action: "none"}                  a name the user asked for was refused
   */
  rejected({ name, code, retryAfterMs = null }, { held = null } = {}) {
    const named = name !== null && name !== undefined;
    const wasReclaim = named && this.isReclaim && name === this.wanted;
    if (!wasReclaim) {
      if (named) {
        // A refused name or rename: we keep whatever we had (maybe nothing).
        this.wanted = held;
        this.isReclaim = false;
      }
      return { action: "none" };
    }
    const limited = code === "RATE_LIMITED";
    if (limited || (code === "NAME_TAKEN" && this.now() < this.deadline)) {
      // NAME_TAKEN: most likely our own previous connection still holds the name.
      let delayMs;
      if (limited) {
        delayMs = Math.max(0, retryAfterMs ?? 1000) + 100;
      } else {
        delayMs = backoffDelay(this.attempt, { ...this.retry, random: this.random });
        this.attempt += 1;
      }
      this.cancelTimer();
      this.timer = this.setTimer(() => {
        this.timer = null;
        if (this.connected && this.isReclaim && this.wanted === name) this.onRetry(name);
      }, delayMs);
      return { action: "retry", name, delayMs };
    }
    this.stop();
    this.wanted = null;
    this.isReclaim = false;
    return { action: "giveUp", name };
  }

  /**
   * The connection closed. `held` is the name the server had granted on it
   * (re-claimed on the next open); `intentional` means the user disconnected,
   * which ends the current retry window (a later Reconnect starts a new one).
   */
  closed({ held = null, intentional = false } = {}) {
    this.connected = false;
    this.cancelTimer(); // the window itself spans reconnects
    if (held !== null) {
      this.wanted = held;
      this.isReclaim = true;
    }
    if (intentional) this.stop();
  }

  /** Cancel any retry and end the window (the name to claim is kept). */
  stop() {
    this.cancelTimer();
    this.attempt = 0;
    this.deadline = 0;
  }

  cancelTimer() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
  }
}
