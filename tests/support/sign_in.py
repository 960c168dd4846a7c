"""Sign-in test kit: local signing keys, their JWKS served on loopback, tokens, events.

Everything is made here: an RSA and an EC key generated with cryptography, a JWKS
endpoint (a tiny HTTP server on 127.0.0.1 that counts its requests) and tokens minted
with PyJWT. No identity provider is involved.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from infra.authorizer_layer import BUILD_INFO, PACKAGES, SITE_DIR, build_info
from tests.support.http_server import serving

AUDIENCE = "chat-app-client-id"
NAME_CLAIM = "cognito:username"
JWKS_PATH = "/.well-known/jwks.json"
RSA_KID = "rsa-key-1"
EC_KID = "ec-key-1"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/production/$connect"


@dataclass(frozen=True)
class SigningKeys:
    """The issuer's private keys, and one stranger's key that the JWKS does not hold."""

    rsa: RSAPrivateKey
    ec: EllipticCurvePrivateKey
    stranger: RSAPrivateKey

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        ec_jwk = ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        return {
            "keys": [
                {**rsa_jwk, "kid": RSA_KID, "alg": "RS256", "use": "sig"},
                {**ec_jwk, "kid": EC_KID, "alg": "ES256", "use": "sig"},
            ]
        }


@functools.cache
def signing_keys() -> SigningKeys:
    """Generated once per test session (an RSA key takes a moment)."""
    return SigningKeys(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec=ec.generate_private_key(ec.SECP256R1()),
        stranger=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@dataclass
class JwksServer:
    """The issuer's JWKS endpoint on loopback; `requests` counts the fetches."""

    url: str
    keys: SigningKeys
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return self.url.removesuffix(JWKS_PATH)

    def count(self) -> None:
        with self._lock:
            self.requests += 1


@contextmanager
def jwks_server(keys: SigningKeys | None = None) -> Iterator[JwksServer]:
    """Serve `keys`' JWKS at http://127.0.0.1:<free port>/.well-known/jwks.json."""
    keys = keys or signing_keys()
    body = json.dumps(keys.jwks()).encode()
    state: list[JwksServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state[0].count()
            if self.path != JWKS_PATH:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as base:
        state.append(JwksServer(url=f"{base}{JWKS_PATH}", keys=keys))
        yield state[0]


def claims_for(issuer: str, name: str = "alice", **overrides: Any) -> dict[str, Any]:
    """A Cognito-like ID token's claims, valid for an hour; an override of None drops it.

    Each name is its own account (`sub` derived from the name), as in a real user pool.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"account:{name}")),
        "iss": issuer,
        "aud": AUDIENCE,
        "token_use": "id",
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        NAME_CLAIM: name,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def mint(
    claims: dict[str, Any],
    *,
    alg: str = "RS256",
    kid: str | None = RSA_KID,
    key: Any = None,
    headers: dict[str, Any] | None = None,
) -> str:
    """A signed token; by default RS256 with the issuer's RSA key and its kid."""
    keys = signing_keys()
    if key is None:
        key = keys.ec if alg.startswith("ES") else keys.rsa
    header = dict(headers or {})
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(claims, key, algorithm=alg, headers=header)


def authorizer_event(
    *, token: str | None = None, protocol: str | None = None, **query: str
) -> dict[str, Any]:
    """A REQUEST authorizer event for $connect, as API Gateway sends it for WebSocket APIs
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-lambda-auth.html)."""
    headers = {
        "Connection": "upgrade",
        "content-length": "0",
        "Host": "abcdef123.execute-api.us-east-1.amazonaws.com",
        "Origin": "https://chat.example.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Upgrade": "websocket",
        "X-Forwarded-For": "203.0.113.10",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if protocol is not None:
        headers["Sec-WebSocket-Protocol"] = protocol
    params = {**query, **({"token": token} if token is not None else {})}
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": params or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} or None,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "ABCD1234=",
            "requestTime": "09/Feb/2024:18:11:43 +0000",
            "messageDirection": "IN",
            "stage": "production",
            "connectedAt": int(time.time() * 1000),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "203.0.113.10"},
            "requestId": "ABCD1234=",
            "domainName": "abcdef123.execute-api.us-east-1.amazonaws.com",
            "connectionId": "AAAAAAAAAAAAAAA=",
            "apiId": "abcdef123",
        },
    }


def fake_layer(directory: Path) -> Path:
    """A stand-in for `make authorizer-layer`'s output, good enough for synth (which only
    packages it). Importing from it fails loudly, so a test run that put it on sys.path (the
    sandbox must not: there PyJWT comes from the virtualenv) cannot pass by accident."""
    for package in PACKAGES:
        init = directory / SITE_DIR / package / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text(f"raise ImportError('{package} from the stand-in authorizer layer')\n")
    (directory / BUILD_INFO).write_text(json.dumps(build_info()))
    return directory
