// Server frames this client does not understand (protocol.js gives them as
// {type: "unknown", kind}) are not shown, but they are not dropped without a
// word either: the first of each kind is reported (app.js: console.warn), so
// someone debugging a newer or another server sees what is being ignored. Not
// a flood: one line per kind, and after MAX_KINDS kinds one last line saying
// that further kinds are not reported. DOM-free.

export const MAX_KINDS = 20;

export class UnknownFrames {
  constructor({ maxKinds = MAX_KINDS } = {}) {
    this.maxKinds = maxKinds;
    this.seen = new Set();
    this.full = false;
  }

  /** The line to log for this unknown event, or null when its kind was reported already. */
  report({ kind }) {
    const k = String(kind);
    if (this.seen.has(k) || this.full) return null;
    if (this.seen.size >= this.maxKinds) {
      this.full = true;
      return `Ignoring server frames of more kinds this client does not know; not reporting further kinds.`;
    }
    this.seen.add(k);
    return `Ignoring a server frame of a kind this client does not know (keys: ${k}); further frames of this kind are ignored without a word.`;
  }
}
