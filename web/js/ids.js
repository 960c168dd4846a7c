// Frame ids (protocol v1.1): every frame the client wants acknowledged carries
// an `id` of 1–64 printable ASCII characters. The server de-duplicates the
// `sendPublic`/`sendPrivate` ids of one name for 10 minutes, so an id must
// never be reused for a different message: it is a random prefix, fixed for
// the page's lifetime (a reload gets a new one), plus a counter. DOM-free.

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** `length` random characters from [0-9a-z]. */
export function randomToken(length = 10, random = defaultRandom) {
  let out = "";
  for (let i = 0; i < length; i += 1) out += ALPHABET[Math.floor(random() * ALPHABET.length)];
  return out;
}

/** A crypto-strength random number in [0, 1) when available, else Math.random(). */
function defaultRandom() {
  const c = globalThis.crypto;
  if (c && typeof c.getRandomValues === "function") {
    return c.getRandomValues(new Uint32Array(1))[0] / 2 ** 32;
  }
  return Math.random();
}

/**
 * Returns a function giving a new id on each call: "<prefix>-<counter>", e.g.
 * "k3v9q0x1mz-1", "k3v9q0x1mz-2", … (the counter in base 36).
 */
export function frameIds({ prefix = null, random = defaultRandom } = {}) {
  const head = prefix ?? randomToken(10, random);
  let n = 0;
  return () => {
    n += 1;
    return `${head}-${n.toString(36)}`;
  };
}
