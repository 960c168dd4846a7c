// Which public messages we may have missed, and asking the server for them
// (protocol v1.1 history). DOM-free; the send function, the id source and the
// timers are injected (defaults: the globals, looked up at call time).
//
// `horizon` is the seq of the last public message up to which we have seen
// every public message: each public message names the room's previous one in
// `prev`, so a message with prev <= horizon extends it. A message whose prev
// is beyond the horizon reveals a gap; it is kept aside (`ahead`) until the
// gap is filled. Messages of different senders may reach us out of order
// (API Gateway runs the frames of different connections concurrently), so a
// gap is only acted on if it is still open GAP_GRACE_MS later: then we send
// {"action":"history","since":horizon,"id":…} and the server returns every
// public message after it.
//
// After a reconnect, the name is re-claimed with `since: horizon` (see
// claimKeys), and the server sends what we missed in history frames. The last
// history frame says whether that list is `complete`: when it is not (some
// messages were older than the history keeps), historyFrame() returns
// {incomplete: true, since} and the conversation shows one notice.
//
// A joiner's first setName (no `since`) gets the room's recent history; that
// one is never "incomplete" (we did not ask for anything before it).

import { historyAction } from "./protocol.js";

/** How long a gap may stay open before we ask for the history. */
export const GAP_GRACE_MS = 1000;
/** Forget a history request that got no final frame in this time (it is asked again). */
export const HISTORY_TIMEOUT_MS = 15000;

export class Recovery {
  constructor({
    send,
    nextId,
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    gapGraceMs = GAP_GRACE_MS,
    requestTimeoutMs = HISTORY_TIMEOUT_MS,
  }) {
    Object.assign(this, { send, nextId, setTimer, clearTimer, gapGraceMs, requestTimeoutMs });
    this.horizon = null; // null: no public message seen yet
    this.ahead = new Map(); // seq -> prev, public messages seen beyond a gap
    this.ready = false; // connection open and named: history may be asked for
    this.claim = null; // {id, since, upTo}: a setName whose history has not ended yet
    this.request = null; // {id, since, upTo, timer}: a history request in flight
    this.responseMax = null; // greatest seq in the history frames of the current answer
    this.gapTimer = null;
    this.unsupported = false; // the server does not know the history action
  }

  /** The v1.1 keys for a setName that claims a name on a new connection. */
  claimKeys() {
    return this.horizon === null ? {} : { since: this.horizon };
  }

  /** A claiming setName with `id` (and `since`, from claimKeys) was sent. */
  claimSent({ id = null, since = null } = {}) {
    this.claim = { id, since, upTo: this.aheadMax() };
  }

  /** The server granted our name on this connection. */
  named() {
    this.ready = true;
    this.scheduleGapCheck();
  }

  /** The connection closed: whatever was asked on it will not be answered. */
  connectionClosed() {
    this.ready = false;
    this.claim = null;
    this.responseMax = null;
    this.cancelRequest();
    if (this.gapTimer !== null) this.clearTimer(this.gapTimer);
    this.gapTimer = null;
  }

  /** A public message (a live one, or an item of a history frame). */
  seen({ seq = null, prev = null } = {}) {
    if (seq === null) return;
    if (this.horizon === null) {
      // The first public message we see: nothing before it is ours to miss.
      this.horizon = seq;
    } else if (seq <= this.horizon) {
      return;
    } else if (prev === null || prev <= this.horizon) {
      this.horizon = seq;
    } else {
      this.ahead.set(seq, prev);
      this.scheduleGapCheck();
      return;
    }
    this.drain();
  }

  /**
   * A history frame (protocol.js's {type:"history", items, final, complete, id}).
   * Its items must also be passed to seen() (this does it). Returns null for
   * frames before the last one, else {incomplete, since}: `incomplete` when we
   * asked for the messages after `since` and some of them are lost for good.
   */
  historyFrame(ev) {
    for (const item of ev.items) {
      this.seen(item);
      if (item.seq !== null) this.responseMax = Math.max(this.responseMax ?? item.seq, item.seq);
    }
    if (!ev.final) return null;
    let asked = null;
    if (this.request && ev.id === this.request.id) {
      asked = this.request;
      this.cancelRequest();
    } else if (this.claim) {
      asked = this.claim;
      this.claim = null;
    }
    // The answer holds every public message after `since` up to when the
    // server read it, which is after we saw the messages we held aside.
    const reached = Math.max(this.responseMax ?? -1, asked?.upTo ?? -1);
    this.responseMax = null;
    if (reached >= 0) this.horizon = Math.max(this.horizon ?? reached, reached);
    this.drain();
    this.scheduleGapCheck();
    const since = asked?.since ?? null;
    return { incomplete: ev.complete === false && since !== null, since };
  }

  /** The {"ack":"setName"} of our claim: its history (if any) has been sent. */
  claimAcknowledged(id) {
    if (this.claim && this.claim.id === id) {
      this.claim = null;
      this.scheduleGapCheck();
    }
  }

  /** An error event; returns true when it is about our history request. */
  error(ev) {
    if (!this.request || ev.id === null || ev.id !== this.request.id) return false;
    this.cancelRequest();
    if (ev.code === "UNKNOWN_ACTION") this.unsupported = true;
    else if (ev.code === "RATE_LIMITED") this.scheduleGapCheck((ev.retryAfterMs ?? 1000) + 100);
    return true;
  }

  // ------------------------------------------------------------ internals

  aheadMax() {
    let max = null;
    for (const seq of this.ahead.keys()) max = max === null ? seq : Math.max(max, seq);
    return max;
  }

  /** Extend the horizon over the messages held aside that now follow it. */
  drain() {
    let moved = true;
    while (moved) {
      moved = false;
      for (const [seq, prev] of this.ahead) {
        if (seq <= this.horizon) {
          this.ahead.delete(seq);
        } else if (prev <= this.horizon) {
          this.horizon = seq;
          this.ahead.delete(seq);
          moved = true;
        }
      }
    }
  }

  scheduleGapCheck(delay = this.gapGraceMs) {
    if (this.gapTimer !== null || this.ahead.size === 0) return;
    this.gapTimer = this.setTimer(() => {
      this.gapTimer = null;
      this.checkGap();
    }, delay);
  }

  checkGap() {
    if (!this.ready || this.unsupported || this.claim || this.request) return;
    if (this.ahead.size === 0 || this.horizon === null) return;
    const id = this.nextId();
    const since = this.horizon;
    if (!this.send(historyAction(since, { id }))) return;
    const timer = this.setTimer(() => {
      if (this.request?.id !== id) return;
      this.request = null;
      this.scheduleGapCheck();
    }, this.requestTimeoutMs);
    this.request = { id, since, upTo: this.aheadMax(), timer };
  }

  cancelRequest() {
    if (this.request) this.clearTimer(this.request.timer);
    this.request = null;
  }
}
