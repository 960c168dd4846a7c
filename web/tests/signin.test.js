// Sign-in (js/signin.js): discovery, PKCE S256, state and nonce, the code
// exchange as a public client, refresh, and where the token goes.
import assert from "node:assert/strict";
import { createHash, webcrypto } from "node:crypto";
import { describe, it } from "node:test";

import {
  PENDING_KEY,
  SIGNED_IN_KEY,
  SignIn,
  SignInError,
  SignInRequired,
  base64url,
  callbackParams,
  codeChallenge,
  jwtClaims,
  redirectUriOf,
  signInSettings,
} from "../js/signin.js";
import { T0 } from "./helpers.js";

const ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC";
const DOMAIN = "https://chat.auth.eu-west-1.amazoncognito.com";
const PAGE = "https://d111.cloudfront.net/";
const SETTINGS = { issuer: ISSUER, clientId: "app-client", tokenSource: "query", scope: "openid", nameClaim: "cognito:username" };

const b64 = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
const idToken = (claims) => `${b64({ alg: "RS256", kid: "k" })}.${b64(claims)}.c2ln`;

class MemoryStorage {
  map = new Map();
  getItem = (k) => (this.map.has(k) ? this.map.get(k) : null);
  setItem = (k, v) => this.map.set(k, String(v));
  removeItem = (k) => this.map.delete(k);
}

/** A Cognito-like issuer: discovery on the issuer, authorize and token on the pool's domain. */
function issuer({ discovery = {}, tokenStatus = 200 } = {}) {
  const requests = [];
  let issued = null; // {code, challenge, nonce, redirectUri}
  const state = { name: "alice", exp: Math.floor(T0 / 1000) + 3600, refreshed: 0 };
  const fetchImpl = async (url, init = {}) => {
    requests.push({ url: String(url), init });
    const json = (status, body) => ({ ok: status < 400, status, json: async () => body });
    if (String(url) === `${ISSUER}/.well-known/openid-configuration`) {
      return json(200, {
        issuer: ISSUER,
        authorization_endpoint: `${DOMAIN}/oauth2/authorize`,
        token_endpoint: `${DOMAIN}/oauth2/token`,
        code_challenge_methods_supported: ["S256"],
        ...discovery,
      });
    }
    if (String(url) === `${DOMAIN}/oauth2/token`) {
      const form = new URLSearchParams(init.body);
      if (tokenStatus !== 200) return json(tokenStatus, { error: "invalid_grant" });
      const claims = { iss: ISSUER, aud: "app-client", exp: state.exp, "cognito:username": state.name };
      if (form.get("grant_type") === "refresh_token") {
        state.refreshed += 1;
        return json(200, { id_token: idToken(claims) });
      }
      const verifierHash = createHash("sha256").update(form.get("code_verifier")).digest("base64url");
      if (form.get("code") !== issued.code || verifierHash !== issued.challenge || form.get("redirect_uri") !== issued.redirectUri) {
        return json(400, { error: "invalid_grant" });
      }
      return json(200, { id_token: idToken({ ...claims, nonce: issued.nonce }), refresh_token: "r1" });
    }
    return json(404, {});
  };
  /** What the authorization endpoint does: remember the request, send the browser back. */
  const authorize = (authUrl, { code = "code-1" } = {}) => {
    const q = new URL(authUrl).searchParams;
    issued = { code, challenge: q.get("code_challenge"), nonce: q.get("nonce"), redirectUri: q.get("redirect_uri") };
    return `${q.get("redirect_uri")}?code=${code}&state=${q.get("state")}`;
  };
  return { fetchImpl, requests, authorize, state };
}

function makeSignIn(opts = {}, settings = SETTINGS) {
  const idp = issuer(opts);
  const storage = new MemoryStorage();
  let t = T0;
  const s = new SignIn({ settings: signInSettings(settings), fetchImpl: idp.fetchImpl, crypto: webcrypto, storage, now: () => t });
  return { s, idp, storage, advance: (ms) => (t += ms) };
}

describe("signInSettings", () => {
  it("reads the endpoint document's signIn object, or null when there is none", () => {
    assert.equal(signInSettings(null), null);
    assert.deepEqual(signInSettings({ issuer: `${ISSUER}/`, clientId: "c", tokenSource: "protocol" }), {
      issuer: ISSUER,
      clientId: "c",
      tokenSource: "protocol",
      scope: "openid",
      nameClaim: null,
    });
    assert.equal(signInSettings({ issuer: ISSUER, clientId: "c", scope: "email" }).scope, "openid email");
  });

  it("refuses settings it cannot sign in with", () => {
    assert.throws(() => signInSettings({ issuer: "http://evil.example", clientId: "c" }), SignInError);
    assert.throws(() => signInSettings({ issuer: ISSUER }), SignInError);
    assert.throws(() => signInSettings({ issuer: ISSUER, clientId: "c", tokenSource: "cookie" }), SignInError);
    assert.doesNotThrow(() => signInSettings({ issuer: "http://127.0.0.1:9000", clientId: "c" }));
  });
});

describe("PKCE and helpers", () => {
  it("computes the S256 challenge of RFC 7636's example", async () => {
    // RFC 7636, Appendix B.
    const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    assert.equal(await codeChallenge(verifier, webcrypto), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert.equal(base64url(new Uint8Array([251, 255])), "-_8");
  });

  it("uses the page's URL, without query, fragment or index.html, as the redirect URI", () => {
    assert.equal(redirectUriOf("https://d1.cloudfront.net/?code=x#y"), "https://d1.cloudfront.net/");
    assert.equal(redirectUriOf("https://d1.cloudfront.net/index.html?ws=1"), "https://d1.cloudfront.net/");
    assert.equal(redirectUriOf("http://127.0.0.1:8080/chat"), "http://127.0.0.1:8080/chat");
  });

  it("finds the issuer's answer in the URL", () => {
    assert.deepEqual(callbackParams(`${PAGE}?code=c&state=s`), { code: "c", state: "s", error: null, errorDescription: null });
    assert.equal(callbackParams(`${PAGE}?ws=x`), null);
    assert.equal(callbackParams(`${PAGE}?error=access_denied&state=s`).error, "access_denied");
  });

  it("reads a token's claims, and refuses what is not a JWT", () => {
    assert.deepEqual(jwtClaims(idToken({ sub: "ü" })), { sub: "ü" });
    assert.throws(() => jwtClaims("nope"), SignInError);
  });
});

describe("SignIn", () => {
  it("sends the browser to the discovered authorization endpoint with PKCE S256, state and nonce", async () => {
    const { s, storage } = makeSignIn();
    const url = new URL(await s.begin(`${PAGE}?ws=1`));
    assert.equal(url.origin + url.pathname, `${DOMAIN}/oauth2/authorize`);
    const q = url.searchParams;
    assert.equal(q.get("response_type"), "code");
    assert.equal(q.get("client_id"), "app-client");
    assert.equal(q.get("redirect_uri"), PAGE);
    assert.equal(q.get("scope"), "openid");
    assert.equal(q.get("code_challenge_method"), "S256");
    const pending = JSON.parse(storage.getItem(PENDING_KEY));
    assert.equal(q.get("state"), pending.state);
    assert.equal(q.get("nonce"), pending.nonce);
    assert.match(pending.verifier, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get("code_challenge"), createHash("sha256").update(pending.verifier).digest("base64url"));
    assert.notEqual(pending.state, pending.nonce);
  });

  it("exchanges the code with the verifier, no secret, and keeps the ID token in memory only", async () => {
    const { s, idp, storage } = makeSignIn();
    const back = idp.authorize(await s.begin(`${PAGE}?ws=1`));
    assert.equal(await s.complete(back), `${PAGE}?ws=1`);
    const exchange = idp.requests.find((r) => r.init.method === "POST");
    const form = new URLSearchParams(exchange.init.body);
    assert.deepEqual([...form.keys()].sort(), ["client_id", "code", "code_verifier", "grant_type", "redirect_uri"]);
    assert.equal(form.get("grant_type"), "authorization_code");
    assert.ok(s.signedIn);
    assert.equal(s.name, "alice");
    assert.equal(storage.getItem(PENDING_KEY), null, "the verifier is gone");
    assert.equal(storage.getItem(SIGNED_IN_KEY), "1");
    assert.ok(![...storage.map.values()].some((v) => v.includes(s.idToken)), "no token in storage");
  });

  it("refuses an answer whose state is not this tab's", async () => {
    const { s, idp } = makeSignIn();
    const back = idp.authorize(await s.begin(PAGE));
    await assert.rejects(s.complete(back.replace(/state=[^&]+/, "state=forged")), { code: "state_mismatch" });
    assert.equal(s.signedIn, false);
  });

  it("fails when the token endpoint refuses the verifier", async () => {
    const { s, idp } = makeSignIn();
    const back = idp.authorize(await s.begin(PAGE));
    idp.authorize(await makeSignIn().s.begin(PAGE), { code: "code-1" }); // another verifier issued the code
    await assert.rejects(s.complete(back), /invalid_grant/);
  });

  it("reports a sign-in the issuer refused", async () => {
    const { s } = makeSignIn();
    const url = new URL(await s.begin(PAGE));
    const state = url.searchParams.get("state");
    await assert.rejects(s.complete(`${PAGE}?error=access_denied&error_description=no&state=${state}`), { code: "access_denied" });
  });

  it("refuses an ID token whose nonce is not this sign-in's", async () => {
    const { s, idp } = makeSignIn();
    const auth = await s.begin(PAGE);
    const back = idp.authorize(auth.replace(/nonce=[^&]+/, "nonce=other"));
    await assert.rejects(s.complete(back), /nonce/);
  });

  it("refuses an issuer whose discovery document names another issuer", async () => {
    const { s } = makeSignIn({ discovery: { issuer: "https://evil.example" } });
    await assert.rejects(s.begin(PAGE), /another issuer/);
  });

  it("puts the token in the query or beside `chat` in the subprotocols, as the stack says", async () => {
    const { s, idp } = makeSignIn();
    await assert.rejects(s.socketArgs("wss://api.example/production"), SignInRequired);
    await s.complete(idp.authorize(await s.begin(PAGE)));
    assert.deepEqual(await s.socketArgs("wss://api.example/production"), {
      url: `wss://api.example/production?token=${s.idToken}`,
    });
    const p = makeSignIn({}, { ...SETTINGS, tokenSource: "protocol" });
    await p.s.complete(p.idp.authorize(await p.s.begin(PAGE)));
    assert.deepEqual(await p.s.socketArgs("wss://api.example/production"), {
      url: "wss://api.example/production",
      protocols: ["chat", p.s.idToken],
    });
  });

  it("refreshes a token about to expire with the refresh token, else asks to sign in", async () => {
    const { s, idp, advance } = makeSignIn();
    await s.complete(idp.authorize(await s.begin(PAGE)));
    const first = s.idToken;
    advance(3600 * 1000 - 30 * 1000);
    idp.state.exp += 3600;
    const token = await s.freshToken();
    assert.equal(idp.state.refreshed, 1);
    assert.notEqual(token, first);
    advance(3600 * 1000);
    s.refreshToken = null;
    assert.equal(await s.freshToken(), null);
  });

  it("signs out: tokens and the flag go; the issuer's end-session endpoint when it has one", async () => {
    const { s, idp, storage } = makeSignIn({ discovery: { end_session_endpoint: `${DOMAIN}/logout` } });
    await s.complete(idp.authorize(await s.begin(PAGE)));
    const url = new URL(s.signOut(PAGE));
    assert.equal(url.origin + url.pathname, `${DOMAIN}/logout`);
    assert.equal(url.searchParams.get("post_logout_redirect_uri"), PAGE);
    assert.equal(s.signedIn, false);
    assert.equal(storage.getItem(SIGNED_IN_KEY), null);
    const plain = makeSignIn();
    await plain.s.complete(plain.idp.authorize(await plain.s.begin(PAGE)));
    assert.equal(plain.s.signOut(PAGE), null);
  });
});
