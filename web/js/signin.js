// Sign-in with OpenID Connect: the authorization code flow with PKCE, as a
// public client (no secret), for a stack deployed with signIn=true (README,
// "Sign-in"). DOM-free: fetch, WebCrypto, the storage and the clock are injected.
//
// /get-ws-endpoint says whether sign-in is on and how (endpoint.js):
//   {"issuer", "clientId", "tokenSource": "query"|"protocol", "scope", "nameClaim"}
// 1. begin(): discovery ({issuer}/.well-known/openid-configuration names the
//    authorization and token endpoints; Amazon Cognito's does, on the user
//    pool's domain), then a random `state`, `nonce` and PKCE verifier (its
//    S256 challenge computed with WebCrypto). They wait in sessionStorage (the
//    tab is about to leave for the sign-in page), and begin() returns the
//    authorization URL to navigate to.
// 2. The issuer sends the browser back to the page (the redirect URI: the
//    page's own URL, without query or fragment) with `code` and `state`.
//    complete() checks `state`, exchanges the code at the token endpoint with
//    the verifier (client_id, no secret), and checks the ID token's `nonce`,
//    `aud` and `exp` (its signature is the server's to check: the $connect
//    authorizer verifies it against the issuer's keys).
// 3. The ID token (what the authorizer accepts: `aud` is the app client id)
//    goes with each connection attempt, as `?token=` or as a
//    `Sec-WebSocket-Protocol` value beside `chat` (socketArgs). When it is
//    about to expire, the refresh token (if the issuer gave one) gets a new one.
//
// The tokens are kept in memory only: they are gone with the page, so
// nothing in storage outlives the tab or can be read from it later. A reload
// signs in again: sessionStorage keeps a flag saying that this tab was signed
// in (not a token), and the issuer's own session (Cognito's hosted UI keeps
// one) sends the browser straight back without asking for a password.

/** Where the flow's state waits while the tab is at the sign-in page. */
export const PENDING_KEY = "chat.signIn.pending";
/** "1" while this tab is signed in: a reload signs in again by itself. */
export const SIGNED_IN_KEY = "chat.signIn.active";
/** Refresh a token that expires within this time. */
export const REFRESH_MARGIN_MS = 60 * 1000;
/** A discovery or token request that takes longer fails (the page then asks to sign in). */
export const REQUEST_TIMEOUT_MS = 10000;
const TOKEN_SOURCES = new Set(["query", "protocol"]);
const timeout = () =>
  typeof AbortSignal?.timeout === "function" ? AbortSignal.timeout(REQUEST_TIMEOUT_MS) : undefined;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export class SignInError extends Error {
  constructor(message, { code = "sign_in_failed" } = {}) {
    super(message);
    this.name = "SignInError";
    this.code = code;
  }
}

/** Thrown by socketArgs when nobody is signed in (connection.js stops and says so). */
export class SignInRequired extends SignInError {
  constructor() {
    super("Sign in to chat.", { code: "sign_in_required" });
    this.name = "SignInRequired";
  }
}

/** An https URL, or http on this machine's loopback (the tests' local issuer). */
export function isSecureUrl(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname);
}

/**
 * The `signIn` object of the endpoint document as settings, or null when
 * sign-in is off. Throws SignInError when it is present but unusable.
 */
export function signInSettings(doc) {
  if (doc === null || doc === undefined) return null;
  const { issuer, clientId, tokenSource = "query", scope = "openid", nameClaim = null } = doc;
  if (typeof issuer !== "string" || !isSecureUrl(issuer)) {
    throw new SignInError("The sign-in settings name no usable issuer.");
  }
  if (typeof clientId !== "string" || !clientId) {
    throw new SignInError("The sign-in settings name no client id.");
  }
  if (!TOKEN_SOURCES.has(tokenSource)) {
    throw new SignInError(`Unknown sign-in token source ${JSON.stringify(tokenSource)}.`);
  }
  const scopes = typeof scope === "string" && scope.trim() ? scope.trim() : "openid";
  return {
    issuer: issuer.replace(/\/+$/, ""),
    clientId,
    tokenSource,
    scope: scopes.split(/\s+/).includes("openid") ? scopes : `openid ${scopes}`,
    nameClaim: typeof nameClaim === "string" && nameClaim ? nameClaim : null,
  };
}

/** base64url without padding (RFC 7636's encoding of the challenge). */
export function base64url(bytes) {
  let binary = "";
  for (const b of new Uint8Array(bytes)) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** `size` random bytes as base64url (32 bytes: a 43-character PKCE verifier). */
export function randomToken(crypto, size = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** The S256 code challenge of `verifier`: base64url(SHA-256(ASCII(verifier))). */
export async function codeChallenge(verifier, crypto) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(digest);
}

/** The claims of a JWT, unverified (the server verifies; the page reads exp, nonce, name). */
export function jwtClaims(token) {
  if (typeof token !== "string" || !JWT_SHAPE.test(token)) {
    throw new SignInError("The issuer returned no usable ID token.");
  }
  const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  try {
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (claims === null || typeof claims !== "object") throw new Error("not an object");
    return claims;
  } catch {
    throw new SignInError("The issuer returned an ID token that cannot be read.");
  }
}

/**
 * The issuer's endpoints from its discovery document (OpenID Connect Discovery
 * 1.0, section 4): the document's `issuer` must be the one asked for.
 */
export async function discover(issuer, { fetchImpl = globalThis.fetch } = {}) {
  const res = await fetchImpl(`${issuer}/.well-known/openid-configuration`, {
    headers: { Accept: "application/json" },
    signal: timeout(),
  });
  if (!res.ok) throw new SignInError(`The issuer's discovery document answered HTTP ${res.status}.`);
  const doc = await res.json();
  if (doc?.issuer?.replace(/\/+$/, "") !== issuer) {
    throw new SignInError("The issuer's discovery document names another issuer.");
  }
  for (const key of ["authorization_endpoint", "token_endpoint"]) {
    if (typeof doc[key] !== "string" || !isSecureUrl(doc[key])) {
      throw new SignInError(`The issuer's discovery document has no usable ${key}.`);
    }
  }
  const methods = doc.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes("S256")) {
    throw new SignInError("The issuer does not support PKCE with S256.");
  }
  const endSession = doc.end_session_endpoint;
  return {
    authorizationEndpoint: doc.authorization_endpoint,
    tokenEndpoint: doc.token_endpoint,
    endSessionEndpoint: typeof endSession === "string" && isSecureUrl(endSession) ? endSession : null,
  };
}

/** The page's redirect URI: its URL without query or fragment (index.html as its folder). */
export function redirectUriOf(href) {
  const url = new URL("./", href);
  const page = new URL(href);
  if (!page.pathname.endsWith("/index.html")) url.pathname = page.pathname;
  return url.origin + url.pathname;
}

/** The `code`, `state` and `error` the issuer sent back in `href`, or null. */
export function callbackParams(href) {
  const params = new URL(href).searchParams;
  const state = params.get("state");
  const code = params.get("code");
  const error = params.get("error");
  if (state === null || (code === null && error === null)) return null;
  return { code, state, error, errorDescription: params.get("error_description") };
}

export class SignIn {
  constructor({
    settings,
    fetchImpl = (...args) => globalThis.fetch(...args),
    crypto = globalThis.crypto,
    storage = globalThis.sessionStorage,
    now = () => Date.now(),
  }) {
    Object.assign(this, { settings, fetchImpl, crypto, storage, now });
    this.endpoints = null;
    this.idToken = null;
    this.refreshToken = null;
    this.claims = null;
  }

  /** Whether this tab was signed in before (a reload signs in again by itself). */
  get wasSignedIn() {
    return this.read(SIGNED_IN_KEY) === "1";
  }

  /** The chat name the ID token gives (the stack's signInNameClaim), or null. */
  get name() {
    const claim = this.settings.nameClaim;
    const value = claim && this.claims ? this.claims[claim] : null;
    return typeof value === "string" && value ? value : null;
  }

  /** A token that is not about to expire. */
  get signedIn() {
    return this.idToken !== null && this.expiresAt() - this.now() > REFRESH_MARGIN_MS;
  }

  expiresAt() {
    const exp = this.claims?.exp;
    return typeof exp === "number" ? exp * 1000 : 0;
  }

  async discovery() {
    this.endpoints ??= await discover(this.settings.issuer, { fetchImpl: this.fetchImpl });
    return this.endpoints;
  }

  /** Start signing in: returns the authorization URL to navigate to. */
  async begin(href) {
    const { authorizationEndpoint } = await this.discovery();
    const verifier = randomToken(this.crypto, 32);
    const state = randomToken(this.crypto, 16);
    const nonce = randomToken(this.crypto, 16);
    const redirectUri = redirectUriOf(href);
    const url = new URL(authorizationEndpoint);
    const params = {
      response_type: "code",
      client_id: this.settings.clientId,
      redirect_uri: redirectUri,
      scope: this.settings.scope,
      state,
      nonce,
      code_challenge: await codeChallenge(verifier, this.crypto),
      code_challenge_method: "S256",
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    this.write(PENDING_KEY, JSON.stringify({ state, nonce, verifier, redirectUri, returnTo: href }));
    return url.toString();
  }

  /**
   * Finish signing in on the page the issuer sent the browser back to
   * (`href`, with `code` and `state`). Returns the URL to show instead (the
   * page as it was before signing in, without code and state). Throws
   * SignInError when the answer is not ours or the issuer refused.
   */
  async complete(href) {
    const back = callbackParams(href);
    if (back === null) throw new SignInError("The sign-in answer has no code.");
    const pending = this.takePending();
    if (pending === null || pending.state !== back.state) {
      throw new SignInError("The sign-in answer does not belong to this tab; sign in again.", {
        code: "state_mismatch",
      });
    }
    if (back.error !== null) {
      this.forget();
      throw new SignInError(`Sign-in refused: ${back.errorDescription || back.error}.`, {
        code: back.error,
      });
    }
    const { tokenEndpoint } = await this.discovery();
    const tokens = await this.tokenRequest(tokenEndpoint, {
      grant_type: "authorization_code",
      client_id: this.settings.clientId,
      code: back.code,
      redirect_uri: pending.redirectUri,
      code_verifier: pending.verifier,
    });
    this.accept(tokens, { nonce: pending.nonce });
    this.write(SIGNED_IN_KEY, "1");
    return pending.returnTo;
  }

  /** An ID token good for a while yet (refreshed when it is about to expire), or null. */
  async freshToken() {
    if (this.signedIn) return this.idToken;
    if (this.refreshToken === null) return null;
    try {
      const { tokenEndpoint } = await this.discovery();
      const tokens = await this.tokenRequest(tokenEndpoint, {
        grant_type: "refresh_token",
        client_id: this.settings.clientId,
        refresh_token: this.refreshToken,
      });
      this.accept(tokens, { nonce: null, refreshed: true });
    } catch {
      this.refreshToken = null;
      return null;
    }
    return this.signedIn ? this.idToken : null;
  }

  /** What to open the WebSocket with: the token where the stack's authorizer looks for it. */
  async socketArgs(endpoint) {
    const token = await this.freshToken();
    if (token === null) throw new SignInRequired();
    if (this.settings.tokenSource === "protocol") return { url: endpoint, protocols: ["chat", token] };
    const url = new URL(endpoint);
    url.searchParams.set("token", token);
    return { url: url.toString() };
  }

  /**
   * Sign out of this page: the tokens and the flag go. Returns the issuer's
   * end-session URL to navigate to when its discovery document names one (so
   * the issuer's own session ends too), else null.
   */
  signOut(href) {
    const hint = this.idToken;
    this.forget();
    const end = this.endpoints?.endSessionEndpoint;
    if (!end) return null;
    const url = new URL(end);
    url.searchParams.set("client_id", this.settings.clientId);
    url.searchParams.set("post_logout_redirect_uri", redirectUriOf(href));
    if (hint) url.searchParams.set("id_token_hint", hint);
    return url.toString();
  }

  /** Forget the tokens and this tab's sign-in. */
  forget() {
    this.idToken = null;
    this.refreshToken = null;
    this.claims = null;
    this.remove(SIGNED_IN_KEY);
    this.remove(PENDING_KEY);
  }

  // ------------------------------------------------------------ internals

  async tokenRequest(tokenEndpoint, fields) {
    let res;
    try {
      res = await this.fetchImpl(tokenEndpoint, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body: new URLSearchParams(fields).toString(),
        cache: "no-store",
        credentials: "omit",
        signal: timeout(),
      });
    } catch (err) {
      throw new SignInError(`The token endpoint could not be reached (${err?.message ?? err}).`);
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    if (!res.ok) {
      const why = body?.error_description || body?.error || `HTTP ${res.status}`;
      throw new SignInError(`The token endpoint refused: ${why}.`, { code: body?.error ?? "token_refused" });
    }
    return body ?? {};
  }

  accept(tokens, { nonce, refreshed = false }) {
    const claims = jwtClaims(tokens.id_token);
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(this.settings.clientId)) {
      throw new SignInError("The ID token is for another client.");
    }
    if (claims.iss?.replace(/\/+$/, "") !== this.settings.issuer) {
      throw new SignInError("The ID token is from another issuer.");
    }
    // A refreshed ID token carries no nonce (or the first one); a new sign-in's must match.
    if (!refreshed && claims.nonce !== nonce) {
      throw new SignInError("The ID token does not answer this sign-in (nonce).");
    }
    if (typeof claims.exp !== "number" || claims.exp * 1000 <= this.now()) {
      throw new SignInError("The ID token has expired.");
    }
    this.idToken = tokens.id_token;
    this.claims = claims;
    if (typeof tokens.refresh_token === "string" && tokens.refresh_token) {
      this.refreshToken = tokens.refresh_token;
    }
  }

  takePending() {
    const raw = this.read(PENDING_KEY);
    this.remove(PENDING_KEY);
    try {
      const pending = JSON.parse(raw ?? "null");
      return pending && typeof pending.state === "string" ? pending : null;
    } catch {
      return null;
    }
  }

  read(key) {
    try {
      return this.storage?.getItem(key) ?? null;
    } catch {
      return null;
    }
  }

  write(key, value) {
    try {
      this.storage?.setItem(key, value);
    } catch {
      /* storage off: a reload asks to sign in again */
    }
  }

  remove(key) {
    try {
      this.storage?.removeItem(key);
    } catch {
      /* storage off */
    }
  }
}
