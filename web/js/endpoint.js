// WebSocket endpoint discovery.
//
// 1. A `?ws=ws://host:port/stage` (or wss://) query parameter wins; handy for
//    pointing the page at another sandbox or at a deployed API.
// 2. Otherwise GET /get-ws-endpoint, which answers {"endpoint": "ws(s)://…"}
//    (the seed's contract). An http(s):// answer is converted to ws(s)://.
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

/** The `?ws=` override from a location.search string, or null. */
export function endpointOverride(search) {
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
export async function fetchEndpoint({
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
    return endpoint;
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}
