// The conversation: what the log shows, in which order, and what becomes of
// the messages we send. DOM-free: it drives a `view` (app.js renders into the
// page; the tests use an array) and sends frames through `send`. It ties
// together
//   timeline.js  seq order, no duplicates, our unacknowledged messages last
//   outbox.js    one message in flight, ids, acks, exact failures, resends
//   recovery.js  the last public seq seen, gaps, history after a reconnect
//
// The view is four functions over opaque handles:
//   insert(entry, before) -> handle   add an entry before `before` (null: at the end)
//   move(handle, before)              move an entry
//   update(handle, changes)           e.g. {delivery: "sent", ts}
//   remove(handle)
// An entry is what render.js's messageElement takes ({kind, from, to, text,
// ts, mine, direction, local, code}) plus, for our own messages,
// `delivery` ("sending" | "sent" | "failed") and a `note` for people.
//
// app.js calls, as things happen:
//   sendSetName(name, {claim})  claim: the first setName on this connection; every
//                               setName carries the `clientKey` given to the constructor
//   named(name)                 the server granted our name on this connection
//   closed()                    the connection closed
//   submit({kind, to, text, from})  the user sent a message
//   fresh(events)               one frame's events, or [] when that frame is a
//                               repeat (call it first, for every frame)
//   handle(events)              frames from the server; returns the events it
//                               did not consume (members, system, most errors)
//   notice(entry)               any other log entry (system, error, local)
//   failAll(reason)             give up on every message not yet sent
//
// Repeats: the server may deliver a frame twice. A public or private message is
// known by its `messageId` (timeline.js drops one already shown); any other
// frame that goes to more than one member (join/leave/rename notices, `members`
// lists, `memberList` parts) by its `eventId` and `part`, which fresh() remembers
// in the same kind of bounded memory (recent.js). A server that sends no
// `eventId` (an older stack) gets no such check: its frames are all applied.

import { describeErrorCode, repeatKey, sameName, setNameAction } from "./protocol.js";
import { frameIds } from "./ids.js";
import { RecentIds } from "./recent.js";
import { Outbox } from "./outbox.js";
import { Recovery } from "./recovery.js";
import { Timeline } from "./timeline.js";

export const INCOMPLETE_TEXT = "Some earlier messages could not be recovered.";

export class Conversation {
  constructor({
    view,
    send,
    nextId = frameIds(),
    clientKey = null,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id),
    onReconnectNeeded = () => {},
    maxEntries,
    maxEventIds,
    ackTimeoutMs,
    gapGraceMs,
    requestTimeoutMs,
  }) {
    Object.assign(this, { view, send, nextId, clientKey, now, onReconnectNeeded });
    const timers = { setTimer, clearTimer };
    this.timeline = new Timeline({ maxEntries });
    this.outbox = new Outbox({
      send,
      nextId,
      now,
      ...timers,
      ...(ackTimeoutMs === undefined ? {} : { ackTimeoutMs }),
      onChange: (item) => this.showDelivery(item),
    });
    this.recovery = new Recovery({
      send,
      nextId,
      ...timers,
      ...(gapGraceMs === undefined ? {} : { gapGraceMs }),
      ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }),
    });
    this.events = new RecentIds(maxEventIds); // (eventId, part) of the frames applied
    this.handles = new Map(); // outbox item id -> view handle
    this.me = null; // our name on this connection, once granted
  }

  // ------------------------------------------------------------ connection

  /**
   * Send setName. `claim` (no name held on this connection yet) adds `since`
   * when we have seen public messages, so the server sends what we missed.
   * Every setName (join, re-claim, rename) carries our `clientKey`, the
   * identity the server de-duplicates our message ids by. Returns whether it was sent.
   */
  sendSetName(name, { claim = true } = {}) {
    const id = this.nextId();
    const keys = claim ? this.recovery.claimKeys() : {};
    const frame = setNameAction(name, { id, ...keys, clientKey: this.clientKey });
    if (!this.send(frame)) return false;
    if (claim) this.recovery.claimSent({ id, since: keys.since ?? null });
    return true;
  }

  /** The server granted `name` on this connection (a join or a rename). */
  named(name) {
    this.me = name;
    this.outbox.setReady(true);
    this.recovery.named();
  }

  /** The connection closed; unacknowledged messages wait for the next one. */
  closed() {
    this.me = null;
    this.outbox.setReady(false);
    this.recovery.connectionClosed();
    for (const item of this.outbox.items) this.showDelivery(item);
  }

  // ------------------------------------------------------------ user

  /** Queue one of our messages ({kind: "public"|"private", to, text, from}); shown as sending. */
  submit({ kind, to = null, text, from = null }) {
    const item = this.outbox.enqueue({ kind, to, text });
    const entry = {
      kind,
      from,
      to,
      text,
      ts: this.now(),
      mine: true,
      ...(kind === "private" ? { direction: "out" } : {}),
      ...delivery(item, this.now()),
    };
    const placed = this.timeline.add((before) => this.view.insert(entry, before), {
      pending: true,
    });
    for (const gone of placed.evicted) this.view.remove(gone);
    this.handles.set(item.id, placed.handle);
    return item;
  }

  /** Give up on every message not yet acknowledged (e.g. our name is gone for good). */
  failAll(reason) {
    for (const item of this.outbox.failAll()) this.settleFailed(item, reason);
  }

  // ------------------------------------------------------------ log

  /** A log entry without a seq (system, error, the client's own notices). */
  notice(entry) {
    return this.place({ ts: this.now(), ...entry }, {});
  }

  // ------------------------------------------------------------ server

  /**
   * The events of one frame (connection.js emits them frame by frame), or []
   * when a frame with the same `eventId` and `part` has been applied already.
   */
  fresh(events) {
    return this.events.first(repeatKey(events) ?? undefined) ? events : [];
  }

  /** Handle normalised events; returns the ones left for app.js. */
  handle(events) {
    const rest = [];
    for (const ev of events) {
      if (!this.consume(ev)) rest.push(ev);
    }
    return rest;
  }

  consume(ev) {
    switch (ev.type) {
      case "public":
        this.publicMessage(ev);
        this.recovery.seen(ev);
        return true;
      case "private":
        this.place(
          { kind: "private", direction: "in", from: ev.from, to: ev.to, text: ev.text, ts: ev.ts },
          { seq: ev.seq, messageId: ev.messageId },
        );
        return true;
      case "history": {
        for (const item of ev.items) this.publicMessage(item);
        const done = this.recovery.historyFrame(ev);
        if (done?.incomplete) {
          this.place({ kind: "system", text: INCOMPLETE_TEXT, ts: this.now(), local: true }, {
            seq: done.since + 0.5,
          });
        }
        return true;
      }
      case "ack":
        if (ev.ack === "setName") {
          this.recovery.claimAcknowledged(ev.id);
          return false; // names.js may use it too
        }
        this.outcome(this.outbox.handle(ev));
        return true;
      case "error": {
        if (this.recovery.error(ev)) return true;
        const out = this.outbox.handle(ev);
        this.outcome(out);
        // A refusal is also logged (by app.js); a rate limit or a lost
        // connection only delays the message.
        return out !== null && out.type !== "failed";
      }
      default:
        return false;
    }
  }

  publicMessage(ev) {
    const out = this.outbox.handle(ev);
    if (out) {
      this.outcome(out);
      return;
    }
    this.place(
      {
        kind: "public",
        from: ev.from,
        text: ev.text,
        ts: ev.ts,
        mine: this.me !== null && sameName(ev.from, this.me),
      },
      { seq: ev.seq, messageId: ev.messageId },
    );
  }

  outcome(out) {
    if (!out) return;
    const { item } = out;
    if (out.type === "sent") {
      const handle = this.handles.get(item.id);
      this.handles.delete(item.id);
      if (handle === undefined) return;
      const r = this.timeline.settle(handle, { seq: out.seq, messageId: out.messageId });
      if (r.duplicate) {
        // The server's copy is already shown (it came with the history).
        this.view.remove(handle);
        return;
      }
      this.view.move(handle, r.before);
      this.view.update(handle, {
        delivery: "sent",
        note: null,
        ...(out.ts ? { ts: out.ts } : {}),
        ...(typeof out.messageId === "string" ? { messageId: out.messageId, seq: out.seq } : {}),
      });
    } else if (out.type === "failed") {
      this.settleFailed(item, out.message || describeErrorCode(out.code), out.code);
    } else if (out.type === "waiting" || out.type === "reconnect") {
      this.showDelivery(item);
      if (out.type === "reconnect") this.onReconnectNeeded();
    }
  }

  settleFailed(item, reason, code = null) {
    const handle = this.handles.get(item.id);
    this.handles.delete(item.id);
    if (handle === undefined) return;
    this.timeline.release(handle);
    this.view.update(handle, {
      delivery: "failed",
      note: `Not delivered${reason ? `: ${reason}` : ""}`,
      ...(code ? { code } : {}),
    });
  }

  showDelivery(item) {
    const handle = this.handles.get(item.id);
    if (handle !== undefined) this.view.update(handle, delivery(item, this.now()));
  }

  // ------------------------------------------------------------ internals

  /** Add an entry to the timeline and the view; null when it is a duplicate. */
  place(entry, { seq = null, messageId = null }) {
    const shown = messageId === null ? entry : { ...entry, messageId, seq };
    const placed = this.timeline.add((before) => this.view.insert(shown, before), {
      seq,
      messageId,
    });
    if (!placed.added) return null;
    for (const gone of placed.evicted) this.view.remove(gone);
    return placed.handle;
  }
}

/** The delivery state and note of an unacknowledged message. */
function delivery(item, now) {
  if (item.state === "waiting" && item.retryAt !== null) {
    const s = Math.max(1, Math.ceil((item.retryAt - now) / 1000));
    return { delivery: "sending", note: `Sending too fast; retrying in ${s} s…` };
  }
  return { delivery: "sending", note: "Sending…" };
}
