// Reconnect schedule: exponential backoff with "equal jitter".
//
// The un-jittered delay doubles from `baseMs` (1 s) up to `maxMs` (30 s):
// 1, 2, 4, 8, 16, 30, 30, … seconds. Each actual delay is drawn uniformly from
// [d/2, d], so a crowd of clients that lost their connections at the same
// moment (a deploy, API Gateway's 2-hour cut-off for everybody who joined
// together) does not reconnect in lock-step, yet nobody waits longer than `d`.
// Pure: the random source is injectable for tests.

export const BACKOFF_DEFAULTS = Object.freeze({
  baseMs: 1000,
  maxMs: 30000,
  factor: 2,
  jitter: 0.5, // fraction of the delay that is randomised
});

/** The un-jittered delay before retry number `attempt` (0-based). */
export function backoffCeiling(attempt, opts = {}) {
  const { baseMs, maxMs, factor } = { ...BACKOFF_DEFAULTS, ...opts };
  const n = Math.max(0, Math.floor(Number(attempt) || 0));
  // Avoid Infinity for large n: stop multiplying once the cap is reached.
  let d = baseMs;
  for (let i = 0; i < n && d < maxMs; i += 1) d *= factor;
  return Math.min(d, maxMs);
}

/** The jittered delay (ms) before retry number `attempt` (0-based). */
export function backoffDelay(attempt, opts = {}) {
  const { jitter, random = Math.random } = { ...BACKOFF_DEFAULTS, ...opts };
  const ceiling = backoffCeiling(attempt, opts);
  const r = Math.min(Math.max(Number(random()) || 0, 0), 1);
  return Math.round(ceiling * (1 - jitter) + ceiling * jitter * r);
}
