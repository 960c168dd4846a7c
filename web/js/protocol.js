// Wire protocol v1.1 (docs/protocol.md): client-side validation, outgoing
// actions and incoming-frame normalisation. Pure functions only (no DOM, no timers), so they run under
// `node --test` as well as in the browser.
//
// Incoming frames are turned into a list of plain "events" because a frame may
// carry several seed keys at once (the seed client handles each key it knows),
// and because frames from a seed-compatible server carry only the seed's keys
// (`publicMessage: "Alice: hello!"` with no `from`/`text`/`ts`).

export const NAME_MAX = 32;
export const MESSAGE_MAX = 2000;
/** A message's most bytes of UTF-8 (the server's MESSAGE_MAX_BYTES): 2,000 of most scripts, 1,000 emoji. */
export const MESSAGE_MAX_BYTES = 4000;

// C0 controls, DEL and C1 controls (Unicode category Cc).
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// The same but for the line feed: a message may have line breaks, no other control.
const MESSAGE_CONTROL_CHARS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
// Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which the
// server refuses in messages: one would reorder what follows it. The marks
// (U+200E, U+200F, U+061C) reorder nothing and are allowed.
const BIDI_FORMATTING = /[\u202a-\u202e\u2066-\u2069]/;
const utf8 = new TextEncoder();

/** Length in Unicode code points (what the Python server's len() counts). */
export function codePointLength(s) {
  let n = 0;
  for (const _ of s) n += 1; // eslint-disable-line no-unused-vars
  return n;
}

/**
 * Validate a display name the way the server does.
 * @returns {{ok: true, value: string} | {ok: false, code: string, message: string}}
 */
export function validateName(raw) {
  const value = typeof raw === "string" ? raw.trim() : "";
  if (!value) return fail("INVALID_NAME", "Enter a name.");
  if (codePointLength(value) > NAME_MAX) {
    return fail("INVALID_NAME", `Names can be at most ${NAME_MAX} characters.`);
  }
  if (CONTROL_CHARS.test(value)) {
    return fail("INVALID_NAME", "Names cannot contain control characters.");
  }
  if (value.includes(":")) return fail("INVALID_NAME", "Names cannot contain “:”.");
  return { ok: true, value };
}

/**
 * Validate a chat message as the server does: trimmed, 1–2000 code points and
 * at most 4000 bytes of UTF-8, no control character but the line break, no
 * bidi embedding, override or isolate.
 */
export function validateMessage(raw) {
  const value = typeof raw === "string" ? raw.trim() : "";
  if (!value) return fail("INVALID_MESSAGE", "Type a message first.");
  const len = codePointLength(value);
  if (len > MESSAGE_MAX) {
    return fail(
      "MESSAGE_TOO_LONG",
      `Messages can be at most ${MESSAGE_MAX} characters (this one has ${len}).`,
    );
  }
  const bytes = utf8.encode(value).length;
  if (bytes > MESSAGE_MAX_BYTES) {
    return fail(
      "MESSAGE_TOO_LONG",
      `This message is too long to send: emoji and some scripts count double (${bytes} of ${MESSAGE_MAX_BYTES} bytes).`,
    );
  }
  if (MESSAGE_CONTROL_CHARS.test(value)) {
    return fail(
      "INVALID_MESSAGE",
      value.includes("\t")
        ? "Messages cannot contain tab characters; use spaces."
        : "Messages cannot contain control characters (line breaks are fine).",
    );
  }
  if (BIDI_FORMATTING.test(value)) {
    return fail(
      "INVALID_MESSAGE",
      "Messages cannot contain the invisible characters that reorder text (U+202A–U+202E, U+2066–U+2069).",
    );
  }
  return { ok: true, value };
}

function fail(code, message) {
  return { ok: false, code, message };
}

/** Case-insensitive name comparison (names are unique case-insensitively). */
export function sameName(a, b) {
  if (typeof a !== "string" || typeof b !== "string") return false;
  return foldName(a) === foldName(b);
}

export function foldName(s) {
  return s.toLowerCase();
}

// ---------------------------------------------------------------- outgoing

// v1.1 keys (`id`, `since`) are added only when given, so a frame without them
// is exactly the v1 frame.

/** Add the keys of `extra` whose value is neither undefined nor null. */
function withKeys(frame, extra) {
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null) frame[k] = v;
  return frame;
}

/** `clientKey`: this tab's identity for de-duplication (clientkey.js), on every setName. */
export const setNameAction = (name, { id, since, clientKey } = {}) =>
  withKeys({ action: "setName", name }, { id, since, clientKey });
export const sendPublicAction = (message, { id } = {}) =>
  withKeys({ action: "sendPublic", message }, { id });
export const sendPrivateAction = (to, message, { id } = {}) =>
  withKeys({ action: "sendPrivate", to, message }, { id });
export const historyAction = (since, { id } = {}) => withKeys({ action: "history", since }, { id });
export const pingAction = () => ({ action: "ping" });

// ---------------------------------------------------------------- incoming

/** Split a seed-style "Name: message" string at the first ":". */
export function splitSender(s) {
  const str = typeof s === "string" ? s : String(s ?? "");
  const i = str.indexOf(":");
  if (i <= 0) return { from: null, text: str.trim() };
  return { from: str.slice(0, i).trim() || null, text: str.slice(i + 1).trim() };
}

/**
 * Accept epoch milliseconds; tolerate epoch seconds; fall back to receipt time.
 */
export function normaliseTs(ts, receivedAt) {
  if (typeof ts === "number" && Number.isFinite(ts) && ts > 0) {
    return ts < 1e11 ? Math.round(ts * 1000) : ts;
  }
  if (typeof ts === "string" && ts.trim() !== "") {
    const n = Number(ts);
    if (Number.isFinite(n) && n > 0) return normaliseTs(n, receivedAt);
    const parsed = Date.parse(ts);
    if (Number.isFinite(parsed)) return parsed;
  }
  return receivedAt;
}

const str = (v) => (typeof v === "string" ? v : null);
/** A non-negative integer (a `seq` or `prev`), else null. */
const seqOf = (v) => (Number.isSafeInteger(v) && v >= 0 ? v : null);

const SYSTEM_PATTERNS = [
  { re: /^(.+) has joined the chat\.?$/, event: "join", name: 1 },
  { re: /^(.+) has left the chat\.?$/, event: "leave", name: 1 },
  { re: /^(.+) is now known as (.+?)\.?$/, event: "rename", name: 2, previous: 1 },
];

/** Infer event/name/previous for seed-only system messages. */
export function parseSystemText(text) {
  for (const p of SYSTEM_PATTERNS) {
    const m = p.re.exec(text);
    if (m) {
      return {
        event: p.event,
        name: m[p.name],
        previous: p.previous ? m[p.previous] : null,
      };
    }
  }
  return { event: null, name: null, previous: null };
}

const KNOWN_KEYS = [
  "members",
  "memberList",
  "systemMessage",
  "publicMessage",
  "privateMessage",
  "error",
  "ack",
  "history",
];

/**
 * Turn one decoded JSON frame into zero or more normalised events:
 *   {type:"members", members:[...], eventId}
 *   {type:"memberList", members:[...], part, parts, eventId}        (a big room's list, in parts)
 *   {type:"system", text, event, name, previous, ts, eventId}
 *   {type:"public", from, text, ts, seq, prev, messageId, id}
 *   {type:"private", from, to, text, ts, seq, messageId}
 *   {type:"error", code, message, action, id, retryAfterMs, ts}
 *   {type:"ack", ack, id, name, to, seq, messageId, ts}            (v1.1)
 *   {type:"history", items:[public events], final, complete, id}  (v1.1)
 *   {type:"unknown", kind, ts}      a JSON object with no key this client knows (frameKind)
 * `receivedAt` (epoch ms) is used when the frame has no `ts`. The v1.1 keys
 * (seq, prev, messageId, id, retryAfterMs, eventId, part) are null when the
 * frame lacks them. Every event of a frame carries the frame's `eventId` and
 * `part` (see repeatKey).
 */
export function normaliseFrame(frame, receivedAt = Date.now()) {
  const events = [];
  if (frame === null || typeof frame !== "object" || Array.isArray(frame)) {
    return events;
  }
  const ts = normaliseTs(frame.ts, receivedAt);
  const eventId = str(frame.eventId);
  const part = Number.isSafeInteger(frame.part) && frame.part >= 1 ? frame.part : null;

  if ("error" in frame && frame.error != null) {
    events.push(normaliseError(frame.error, ts));
  }

  if (frame.systemMessage != null) {
    const text = String(frame.systemMessage);
    const inferred = parseSystemText(text);
    events.push({
      type: "system",
      text,
      event: str(frame.event) ?? inferred.event,
      name: str(frame.name) ?? inferred.name,
      previous: str(frame.previous) ?? inferred.previous,
      ts,
      eventId,
    });
  }

  if (frame.publicMessage != null) events.push(normalisePublic(frame, ts));

  if (frame.privateMessage != null) {
    const seed = splitSender(frame.privateMessage);
    events.push({
      type: "private",
      from: str(frame.from) ?? seed.from,
      to: str(frame.to),
      text: str(frame.text) ?? seed.text,
      ts,
      seq: seqOf(frame.seq),
      messageId: str(frame.messageId),
    });
  }

  if (typeof frame.ack === "string") {
    events.push({
      type: "ack",
      ack: frame.ack,
      id: str(frame.id),
      name: str(frame.name),
      to: str(frame.to),
      seq: seqOf(frame.seq),
      messageId: str(frame.messageId),
      ts,
    });
  }

  if (Array.isArray(frame.history)) {
    events.push({
      type: "history",
      items: frame.history
        .filter((m) => m !== null && typeof m === "object" && m.publicMessage != null)
        .map((m) => normalisePublic(m, normaliseTs(m.ts, receivedAt))),
      final: frame.final === true,
      complete: frame.complete !== false,
      id: str(frame.id),
    });
  }

  if (Array.isArray(frame.members)) {
    events.push({ type: "members", members: nameList(frame.members), eventId });
  }

  if (Array.isArray(frame.memberList)) {
    const parts = Number.isSafeInteger(frame.parts) && frame.parts >= 1 ? frame.parts : 1;
    events.push({
      type: "memberList",
      members: nameList(frame.memberList),
      part: part ?? 1,
      parts,
      eventId,
    });
  }

  // API Gateway's own frames, e.g.
  // {"message":"Internal server error","connectionId":"…","requestId":"…"}
  // {"message":"Forbidden","connectionId":"…","requestId":"…"}
  if (
    events.length === 0 &&
    typeof frame.message === "string" &&
    !KNOWN_KEYS.some((k) => k in frame)
  ) {
    events.push({
      type: "error",
      code: "GATEWAY",
      message: frame.message,
      action: null,
      requestId: str(frame.requestId),
      ts,
    });
  }

  // A frame this client does not understand (a newer server's, another
  // server's): an event of its own, so that app.js can say so once per kind.
  if (events.length === 0) {
    events.push({ type: "unknown", kind: frameKind(frame), ts });
  }
  return events;
}

// Keys that only qualify a frame's content: they do not tell what a frame is.
const ENVELOPE_KEYS = new Set(["ts", "id", "eventId", "part", "parts", "seq", "prev", "final", "complete"]);
const KIND_MAX_KEYS = 4;
const KIND_KEY_CHARS = 32;

/**
 * What kind of frame an unknown one is, for a log line: its keys, sorted,
 * without the envelope keys (at most 4, each cut to 32 characters of
 * printable ASCII, anything else as "?"), e.g. "typing" or "poll,question".
 */
export function frameKind(frame) {
  const keys = Object.keys(frame).sort();
  const telling = keys.filter((k) => !ENVELOPE_KEYS.has(k));
  const shown = (telling.length > 0 ? telling : keys)
    .slice(0, KIND_MAX_KEYS)
    .map((k) => k.slice(0, KIND_KEY_CHARS).replace(/[^\x20-\x7e]/g, "?"));
  const more = (telling.length > 0 ? telling : keys).length > KIND_MAX_KEYS ? ",…" : "";
  return shown.length > 0 ? `${shown.join(",")}${more}` : "(empty object)";
}

function nameList(list) {
  return list.filter((m) => m !== null && m !== undefined).map((m) => String(m));
}

/**
 * The identity of a frame that went to more than one member, as its events
 * carry it: `eventId` (the same on every copy of one event) and `part` (which
 * part of a `memberList`), or null when the server sent no `eventId` (older
 * stacks: such frames cannot be told from a genuine second event). Public and
 * private messages are recognised by their `messageId` instead (timeline.js).
 */
export function repeatKey(events) {
  const tagged = events.find((ev) => typeof ev.eventId === "string");
  if (tagged === undefined) return null;
  return `${tagged.eventId}\u0000${tagged.part ?? ""}`;
}

function normalisePublic(frame, ts) {
  const seed = splitSender(frame.publicMessage);
  return {
    type: "public",
    from: str(frame.from) ?? seed.from,
    text: str(frame.text) ?? seed.text,
    ts,
    seq: seqOf(frame.seq),
    prev: seqOf(frame.prev),
    messageId: str(frame.messageId),
    id: str(frame.id),
  };
}

function normaliseError(err, ts) {
  const bare = { type: "error", action: null, id: null, retryAfterMs: null, ts };
  if (typeof err === "string") return { ...bare, code: "ERROR", message: err };
  if (typeof err !== "object") return { ...bare, code: "ERROR", message: String(err) };
  const code = str(err.code) ?? "ERROR";
  const wait = err.retryAfterMs;
  return {
    ...bare,
    code,
    message: str(err.message) ?? describeErrorCode(code),
    action: str(err.action),
    id: str(err.id),
    retryAfterMs: typeof wait === "number" && Number.isFinite(wait) && wait >= 0 ? wait : null,
  };
}

/** Parse a raw text frame; returns [] for anything that is not a JSON object. */
export function parseFrameText(data, receivedAt = Date.now()) {
  if (typeof data !== "string") return [];
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return [];
  }
  return normaliseFrame(frame, receivedAt);
}

const ERROR_TEXT = {
  INVALID_JSON: "The server could not read that request.",
  UNKNOWN_ACTION: "The server does not know that action.",
  INVALID_NAME: "That name is not allowed.",
  NAME_TAKEN: "That name is already taken.",
  NAME_REQUIRED: "Set a name before sending messages.",
  INVALID_MESSAGE: "That message is not allowed.",
  MESSAGE_TOO_LONG: `Messages can be at most ${MESSAGE_MAX} characters and ${MESSAGE_MAX_BYTES} bytes.`,
  UNKNOWN_RECIPIENT: "Nobody with that name is in the chat.",
  INVALID_ID: "The server could not read the request's id.",
  RATE_LIMITED: "Sending too fast.",
  ROOM_FULL: "The chat room is full.",
  NOT_CONNECTED: "The server no longer knows this connection.",
  INTERNAL: "Something went wrong on the server.",
};

export function describeErrorCode(code) {
  return ERROR_TEXT[code] ?? "Something went wrong.";
}
