// The client key (docs/protocol.md, `setName`): a random identity of this tab
// that the server keys de-duplication by when nobody is signed in, so that a
// message resent after a reconnect is delivered once, while someone who takes
// a departed member's name (another tab, another person) never shares her
// identity. Signed in, the server uses the account instead; the key is sent all
// the same.
//
// - Made once per tab: 24 characters of [0-9a-z] from crypto.getRandomValues
//   (about 124 bits), inside the server's rule of 16–64 characters of
//   A–Z a–z 0–9 _ -.
// - Kept in sessionStorage (`chat.clientKey`): the same key after a reconnect
//   and after a reload, a new one in a new tab (a new tab starts with empty
//   sessionStorage). Where storage is unavailable (blocked, full, a sandboxed
//   frame) the key lives in memory for the page's lifetime: a reconnect keeps
//   it, a reload makes a new one.
// - Sent with every setName: the first join, the re-claim after a reconnect, a
//   rename (conversation.js).
// DOM-free: the storage and the random source are injected.

import { randomToken } from "./ids.js";

export const CLIENT_KEY_ITEM = "chat.clientKey";
export const CLIENT_KEY_LENGTH = 24;
/** The server's rule for a client key. */
export const CLIENT_KEY_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

/** crypto.getRandomValues as a number in [0, 1); throws when there is no WebCrypto. */
export function cryptoRandom() {
  const c = globalThis.crypto;
  if (!c || typeof c.getRandomValues !== "function") {
    throw new Error("no crypto.getRandomValues: cannot make a client key");
  }
  return c.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;
}

/** The page's sessionStorage, or null when reading it throws (storage disabled). */
export function sessionStore() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/**
 * This tab's client key: the one kept in `storage` when it holds a valid one,
 * else a new one, kept there when storage works. `storage` is a Storage-like
 * object ({getItem, setItem}) or null.
 */
export function tabClientKey({ storage = sessionStore(), random = cryptoRandom } = {}) {
  const kept = read(storage);
  if (kept !== null) return kept;
  const key = randomToken(CLIENT_KEY_LENGTH, random);
  try {
    storage?.setItem(CLIENT_KEY_ITEM, key);
  } catch {
    /* storage full or blocked: the key lives in memory for this page */
  }
  return key;
}

function read(storage) {
  try {
    const value = storage?.getItem(CLIENT_KEY_ITEM) ?? null;
    return typeof value === "string" && CLIENT_KEY_PATTERN.test(value) ? value : null;
  } catch {
    return null;
  }
}
