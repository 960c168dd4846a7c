// WebSocket endpoint discovery.
//
// 1. A `?ws=ws://host:port/stage` (or wss://) query parameter wins, but only
//    on a page served from this machine (127.0.0.1, [::1] or localhost): handy
//    for pointing a local page at another sandbox or at a deployed API. On any
//    other page it is ignored, so nobody can hand out a link to the real site
//    that sends its users' names and messages to a server of their choosing.
// 2. Otherwise GET /get-ws-endpoint, which answers {"endpoint": "ws(s)://…"}
//    (the seed's contract). An http(s):// answer is converted to ws(s)://.
//    When the stack requires sign-in, the same document also has a `signIn`
//    object (signin.js reads it):
//    {"endpoint":"wss://…","signIn":{"issuer":"https://…","clientId":"…",
//     "tokenSource":"query"|"protocol","scope":"openid","nameClaim":"…"}}
// DOM-free: `fetch` and the page location are passed in.

/** Return a ws:// or wss:// URL string, or null if `value` cannot be one. */
export function normaliseEndpoint(value, base) {
  if (typeof value !== "string" || !value.trim()) return null;
  let url;
  try {
    url = base ? new URL(value.trim(), base) : new URL(value.trim());
  } catch {
    return null;
  }
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (url.protocol !== "ws:" && url.protocol !== "wss:") return null;
  url.hash = "";
  return url.toString();
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "[::1]", "localhost"]);

/** Whether `hostname` (as in location.hostname) names this machine's loopback interface. */
export function isLoopbackHost(hostname) {
  return typeof hostname === "string" && LOOPBACK_HOSTS.has(hostname.toLowerCase());
}

/**
 * The `?ws=` override, or null. `page` is the page's location (or any
 * {search, hostname}): the override counts only when the page itself was
 * served from a loopback host.
 */
export function endpointOverride(page) {
  if (!page || !isLoopbackHost(page.hostname)) return null;
  const { search } = page;
  if (typeof search !== "string" || !search) return null;
  const params = new URLSearchParams(search);
  const raw = params.get("ws");
  if (raw === null) return null;
  return normaliseEndpoint(raw);
}

/**
 * Fetch the endpoint from `path` (default /get-ws-endpoint).
 * Rejects with an Error if the answer is unusable.
 */
export async function fetchEndpoint(options = {}) {
  return (await fetchEndpointDocument(options)).endpoint;
}

/**
 * Fetch the whole endpoint document: {endpoint, signIn}, where `signIn` is
 * the document's `signIn` object as it came (null when there is none).
 * Rejects with an Error if the endpoint is unusable.
 */
export async function fetchEndpointDocument({
  fetchImpl = globalThis.fetch,
  path = "/get-ws-endpoint",
  base,
  timeoutMs = 10000,
} = {}) {
  const ctrl = typeof AbortController === "function" ? new AbortController() : null;
  const timer = ctrl ? setTimeout(() => ctrl.abort(), timeoutMs) : null;
  try {
    const res = await fetchImpl(path, {
      cache: "no-store",
      headers: { Accept: "application/json" },
      signal: ctrl ? ctrl.signal : undefined,
    });
    if (!res.ok) throw new Error(`${path} answered HTTP ${res.status}`);
    const data = await res.json();
    const endpoint = normaliseEndpoint(data && data.endpoint, base);
    if (!endpoint) throw new Error(`${path} did not return a ws:// or wss:// endpoint`);
    const signIn = data.signIn !== null && typeof data.signIn === "object" ? data.signIn : null;
    return { endpoint, signIn };
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}
