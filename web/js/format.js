// Small pure formatting helpers (no DOM).

const timeFmt =
  typeof Intl !== "undefined"
    ? new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" })
    : null;
const fullFmt =
  typeof Intl !== "undefined"
    ? new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" })
    : null;

/** "14:05" (locale-dependent) */
export function formatTime(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "";
  return timeFmt ? timeFmt.format(d) : d.toTimeString().slice(0, 5);
}

/** Full date and time, for tooltips. */
export function formatFullTime(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return "";
  return fullFmt ? fullFmt.format(d) : d.toString();
}

/** ISO 8601, for <time datetime>. */
export function isoTime(ms) {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

/** The first user-perceived character of a name, upper-cased (for avatars). */
export function initialOf(name) {
  if (typeof name !== "string" || !name) return "?";
  if (typeof Intl !== "undefined" && typeof Intl.Segmenter === "function") {
    const seg = new Intl.Segmenter(undefined, { granularity: "grapheme" });
    for (const { segment } of seg.segment(name)) return segment.toLocaleUpperCase();
  }
  return Array.from(name)[0].toLocaleUpperCase();
}

/** Seconds to show in a "reconnecting in Ns" countdown. */
export function secondsUntil(targetMs, nowMs) {
  return Math.max(0, Math.ceil((targetMs - nowMs) / 1000));
}

/** A stable hue (0–359) per name, for avatar colours. */
export function hueOf(name) {
  let h = 2166136261;
  for (const ch of String(name).toLowerCase()) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h % 360;
}

// Everything a browser may break a line at unconditionally: CR LF, LF, CR,
// VT, FF, NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR.
const LINE_BREAK = /\r\n|[\n\r\u000b\u000c\u0085\u2028\u2029]/;

/**
 * A message's text as lines, for rendering each continuation line inside the
 * message's own block (so that "hi\nBob: hello" cannot pass for a line from
 * Bob). No line contains a line-break character; there is always one line.
 */
export function messageLines(text) {
  return String(text ?? "").split(LINE_BREAK);
}

/**
 * `s` between FIRST STRONG ISOLATE (U+2068) and POP DIRECTIONAL ISOLATE
 * (U+2069), for a name inside a plain string (a title, a hint, a placeholder):
 * the name takes its own direction and no bidi control in it can reorder the
 * text around it. Elements use <bdi dir="auto"> instead (render.js).
 */
export function isolate(s) {
  return `\u2068${String(s ?? "")}\u2069`;
}

// The client's own wording of join, leave and rename notices. The server's
// `systemMessage` says the same; the client builds the sentence itself so that
// the name is an element of its own (render.js) and a name that contains a
// sentence ("Bob has left the chat. Eve") reads as one name, not as a second notice.
const NOTICE_WORDING = {
  join: (name) => [{ name }, " has joined the chat"],
  leave: (name) => [{ name }, " has left the chat"],
  rename: (name, previous) => [{ name: previous }, " is now known as ", { name }],
};

/**
 * A join, leave or rename notice as parts: a string is fixed wording, `{name}`
 * is a name. null when the notice is of another kind or lacks a name (a
 * rename also needs `previous`): such a notice is shown as its text.
 */
export function noticeParts({ event, name, previous = null } = {}) {
  if (!Object.hasOwn(NOTICE_WORDING, event ?? "")) return null;
  if (typeof name !== "string" || !name) return null;
  if (event === "rename" && (typeof previous !== "string" || !previous)) return null;
  return NOTICE_WORDING[event](name, previous);
}
