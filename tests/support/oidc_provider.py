"""A small OpenID provider on loopback for the browser's sign-in (tests only).

It does what the web client needs from Amazon Cognito's hosted UI, and nothing else:

- `GET /.well-known/openid-configuration`: the discovery document (issuer, authorization
  and token endpoints, JWKS, S256 only);
- `GET /.well-known/jwks.json`: the issuer's keys (tests/support/sign_in.py), which the
  stack's authorizer fetches;
- `GET /authorize`: signs `user` in without a form and redirects back to `redirect_uri`
  with a one-time `code` and the `state` it was given;
- `POST /token`: exchanges the code as a public client (no secret): `client_id` and
  `redirect_uri` must be those of the authorization, and SHA-256 of `code_verifier` its
  `code_challenge` (RFC 7636 S256); then an ID token minted by tests/support/sign_in.py
  with the `nonce`. `refresh_token` grants give a new ID token.

Every answer allows any origin (CORS), as the page fetches from its own origin. What it
did is in `authorizations` and `exchanges`, for the tests to check.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.http_server import serving
from tests.support.sign_in import AUDIENCE, JWKS_PATH, claims_for, mint, signing_keys

DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass
class Grant:
    """An authorization waiting for its code to be exchanged."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    user: str


@dataclass
class OpenIdProvider:
    """The running provider; set `user` to choose who signs in next, and `groups` for the
    sign-in groups (`cognito:groups`) each user's ID token lists."""

    issuer: str
    user: str = "Alice"
    groups: dict[str, list[str]] = field(default_factory=dict)
    client_id: str = AUDIENCE
    authorizations: list[dict[str, str]] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    _grants: dict[str, Grant] = field(default_factory=dict)
    _refresh: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}{JWKS_PATH}",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "token_endpoint_auth_methods_supported": ["none"],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, str]:
        """(302, where to) for a valid request, else (400, why)."""
        self.authorizations.append(query)
        problems = [
            key
            for key, ok in (
                ("response_type", query.get("response_type") == "code"),
                ("client_id", query.get("client_id") == self.client_id),
                ("redirect_uri", query.get("redirect_uri", "").startswith("http")),
                ("state", bool(query.get("state"))),
                ("code_challenge", len(query.get("code_challenge", "")) == 43),
                ("code_challenge_method", query.get("code_challenge_method") == "S256"),
                ("scope", "openid" in query.get("scope", "").split()),
            )
            if not ok
        ]
        if problems:
            return 400, f"bad {', '.join(problems)}"
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = Grant(
                client_id=query["client_id"],
                redirect_uri=query["redirect_uri"],
                challenge=query["code_challenge"],
                nonce=query.get("nonce"),
                user=self.user,
            )
        back = urlencode({"code": code, "state": query["state"]})
        return 302, f"{query['redirect_uri']}?{back}"

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type")
        if form.get("client_id") != self.client_id:
            return self._refused(form, "invalid_client")
        if grant_type == "refresh_token":
            with self._lock:
                user = self._refresh.get(form.get("refresh_token", ""))
            if user is None:
                return self._refused(form, "invalid_grant")
            self.exchanges.append({"grant_type": grant_type, "outcome": "ok"})
            return 200, self._tokens(user, nonce=None)
        if grant_type != "authorization_code":
            return self._refused(form, "unsupported_grant_type")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # one use only
        if grant is None:
            return self._refused(form, "invalid_grant")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refused(form, "invalid_grant")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return self._refused(form, "invalid_grant", "PKCE verification failed")
        self.exchanges.append({"grant_type": grant_type, "outcome": "ok", "user": grant.user})
        return 200, self._tokens(grant.user, nonce=grant.nonce)

    def _tokens(self, user: str, nonce: str | None) -> dict[str, Any]:
        refresh = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[refresh] = user
        extra = {"cognito:groups": self.groups[user]} if self.groups.get(user) else {}
        claims = claims_for(self.issuer, name=user, sub=f"sub-{user}", nonce=nonce, **extra)
        id_token = mint(claims)
        return {
            "id_token": id_token,
            "access_token": secrets.token_urlsafe(24),
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": 3600,
        }

    def _refused(
        self, form: dict[str, str], error: str, description: str = ""
    ) -> tuple[int, dict[str, Any]]:
        self.exchanges.append({"grant_type": form.get("grant_type"), "outcome": error})
        return 400, {"error": error, **({"error_description": description} if description else {})}


@contextmanager
def openid_provider(user: str = "Alice") -> Iterator[OpenIdProvider]:
    """Run the provider on http://127.0.0.1:<free port> (that URL is its issuer)."""
    jwks = json.dumps(signing_keys().jwks()).encode()
    state: list[OpenIdProvider] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            provider = state[0]
            url = urlsplit(self.path)
            if url.path == DISCOVERY_PATH:
                self._send(200, json.dumps(provider.discovery()).encode())
            elif url.path == JWKS_PATH:
                self._send(200, jwks)
            elif url.path == "/authorize":
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                status, where = provider.authorize(query)
                if status == 302:
                    self.send_response(302)
                    self.send_header("Location", where)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._send(status, where.encode(), "text/plain")
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._send(404, b"{}")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            form = {k: v[-1] for k, v in parse_qs(body).items()}
            status, answer = state[0].token(form)
            self._send(status, json.dumps(answer).encode())

        def do_OPTIONS(self) -> None:
            self._send(204, b"")

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Content-Type, Accept")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as base:
        state.append(OpenIdProvider(issuer=base, user=user))
        yield state[0]
