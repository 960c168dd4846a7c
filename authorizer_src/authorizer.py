"""Sign-in: the Lambda REQUEST authorizer on `$connect` that verifies the client's JWT.

A token is verified with PyJWT against the issuer's JWKS (fetched by PyJWKClient, cached
per execution environment): signature (RS256 or ES256 only), `exp`, `nbf` and `iat` with
a small leeway, `iss`, `aud`, `sub`, and the claim that gives the chat name. A valid token
gets an IAM policy that allows `$connect` and the context `{"sub", "name"}`, plus `groups`
when the groups claim gives any, which the chat function reads from
`requestContext.authorizer`; anything else gets a Deny (API Gateway answers 403) and one
log line with the reason, never the token.

`groups` are the values of the groups claim (`cognito:groups` by default: a list of
strings; a single string counts as one group) that could be a private room's `group`
(1-128 printable ASCII characters, no comma, no space at either end; others are dropped,
never the sign-in), joined with commas because API Gateway's context values are strings,
at most MAX_GROUPS_CHARS characters of them in the claim's order.

`aud` is required: Cognito ID tokens carry the app client id there. Cognito access tokens
(no `aud`, `client_id` instead, `token_use` "access") are refused: the chat needs a
person's identity, which is what ID tokens are for.

Settings come from the environment the stack sets (infra/sign_in.py). PyJWT and
cryptography come from the function's layer on AWS (`make authorizer-layer`); in the local
sandbox, from the project's virtualenv. This file adds nothing to `sys.path`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

# Asymmetric algorithms only: never `none`, never HS* (a JWKS is public, so an HMAC "key"
# taken from it would let anyone sign).
ALGORITHMS = ("RS256", "ES256")
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
# Cognito ID tokens are 1-2 KB; anything far larger is refused before it is parsed.
MAX_TOKEN_CHARS = 8192
# Context values stay small (Cognito usernames are at most 128 characters).
MAX_CLAIM_CHARS = 128
# Groups passed on in the context: a private room's `group` rule (lambda_src/chat/rooms.py's
# GROUP; this asset imports nothing from the chat's), and at most this many characters in
# all, whole groups only. With `sub` and `name` at their longest, escaped, the allow
# result stays under API Gateway's 8 KB (tests/authorizer: the largest result).
GROUP = re.compile(r"[!-+\--~](?:[ -+\--~]*[!-+\--~])?")
GROUP_MAX_CHARS = 128
MAX_GROUPS_CHARS = 1024
GROUPS_SEPARATOR = ","
JWKS_LIFESPAN_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 3

TOKEN_SOURCES = ("query", "protocol")
QUERY_PARAMETER = "token"
PROTOCOL_HEADER = "sec-websocket-protocol"
# A JWS in compact form; the signature may be empty (alg none) so that such a token is
# found, and then refused for its algorithm.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_REASON_CHARS = 200

log = logging.getLogger("authorizer")


class DeniedError(Exception):
    """The token cannot be accepted; `reason` is safe to log (it never holds the token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:_REASON_CHARS]


@dataclass(frozen=True)
class Settings:
    """What the stack configures: who issues tokens, for whom, and where they arrive."""

    issuer: str
    audience: str
    jwks_url: str
    name_claim: str = "cognito:username"
    token_source: str = "query"
    log_level: str = "INFO"
    groups_claim: str = "cognito:groups"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Raises KeyError/ValueError naming the variable that is missing or wrong."""
        names = ("SIGN_IN_ISSUER", "SIGN_IN_AUDIENCE", "SIGN_IN_JWKS_URL")
        missing = [name for name in names if not env.get(name)]
        if missing:
            raise KeyError(f"missing environment variables: {', '.join(missing)}")
        token_source = env.get("SIGN_IN_TOKEN_SOURCE") or "query"
        if token_source not in TOKEN_SOURCES:
            raise ValueError(f"SIGN_IN_TOKEN_SOURCE={token_source!r} must be query or protocol")
        return cls(
            issuer=env["SIGN_IN_ISSUER"],
            audience=env["SIGN_IN_AUDIENCE"],
            jwks_url=env["SIGN_IN_JWKS_URL"],
            name_claim=env.get("SIGN_IN_NAME_CLAIM") or "cognito:username",
            token_source=token_source,
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            groups_claim=env.get("SIGN_IN_GROUPS_CLAIM") or "cognito:groups",
        )


@dataclass(frozen=True)
class Identity:
    """Who signed in: the token's subject, the chat name its claim gives, and the groups
    its groups claim gives (`dropped`: the claim's values left out)."""

    sub: str
    name: str
    groups: tuple[str, ...] = ()
    dropped: int = 0

    def context(self) -> dict[str, str]:
        """The authorizer's context: strings only; `groups` only when there are any."""
        context = {"sub": self.sub, "name": self.name}
        if self.groups:
            context["groups"] = GROUPS_SEPARATOR.join(self.groups)
        return context


@functools.lru_cache(maxsize=4)
def jwks_client(url: str) -> jwt.PyJWKClient:
    """One client per JWKS URL and execution environment: the key set is fetched once, kept
    for JWKS_LIFESPAN_SECONDS, and refetched early (at most every 30 s) for an unknown kid."""
    return jwt.PyJWKClient(
        url,
        lifespan=JWKS_LIFESPAN_SECONDS,
        timeout=JWKS_TIMEOUT_SECONDS,
        headers={"User-Agent": "chat-sign-in-authorizer"},
    )


def token_from(event: Mapping[str, Any], source: str) -> str:
    """The token the client sent, from the query string or the offered subprotocols."""
    if source == "query":
        multi = (event.get("multiValueQueryStringParameters") or {}).get(QUERY_PARAMETER)
        if isinstance(multi, list) and len(multi) > 1:
            raise DeniedError(f"more than one {QUERY_PARAMETER!r} query parameter")
        token = (event.get("queryStringParameters") or {}).get(QUERY_PARAMETER)
    else:
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        offered = headers.get(PROTOCOL_HEADER)
        if not isinstance(offered, str):
            raise DeniedError("no Sec-WebSocket-Protocol header")
        tokens = [p.strip() for p in offered.split(",") if _JWT_SHAPE.fullmatch(p.strip())]
        if len(tokens) != 1:
            raise DeniedError(f"Sec-WebSocket-Protocol offers {len(tokens)} tokens, not one")
        token = tokens[0]
    if not isinstance(token, str) or not token:
        raise DeniedError("no token")
    if len(token) > MAX_TOKEN_CHARS:
        raise DeniedError(f"token longer than {MAX_TOKEN_CHARS} characters")
    return token


def verify(token: str, settings: Settings, client: jwt.PyJWKClient | None = None) -> Identity:
    """The identity in a valid token. Raises DeniedError for any invalid token.

    Failing to reach the JWKS endpoint is not the token's fault: PyJWKClientConnectionError
    propagates, the invocation fails and API Gateway answers 500.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise DeniedError(f"malformed token: {error}") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise DeniedError(f"algorithm {str(algorithm)[:20]!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise DeniedError("token header has no kid")
    client = client or jwks_client(settings.jwks_url)
    try:
        key = client.get_signing_key(kid)
    except jwt.PyJWKClientConnectionError:
        raise
    except jwt.PyJWKClientError as error:
        raise DeniedError(f"no signing key: {error}") from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as error:
        raise DeniedError(f"{type(error).__name__}: {error}") from None
    token_use = claims.get("token_use")
    if token_use is not None and token_use != "id":
        raise DeniedError(f"token_use {str(token_use)[:20]!r} is not 'id'")
    groups, dropped = groups_from(claims.get(settings.groups_claim))
    return Identity(
        sub=_small_string(claims, "sub"),
        name=_small_string(claims, settings.name_claim),
        groups=groups,
        dropped=dropped,
    )


def groups_from(value: Any) -> tuple[tuple[str, ...], int]:
    """The groups a claim's value gives, and how many of its values were dropped.

    A list of strings (Cognito's `cognito:groups`) or one string (one group); anything
    else gives none. A value that could not be a room's `group` (not a string, empty, over
    128 characters, not printable ASCII, a comma, a space at either end) is dropped, as is
    a repeat, and every value once the joined groups would pass MAX_GROUPS_CHARS: a group
    is never cut. A bad groups claim never refuses the sign-in; it only admits to less.
    """
    if value is None:
        return (), 0
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if values is None:
        return (), 1
    groups: dict[str, None] = {}  # in the claim's order
    length = -len(GROUPS_SEPARATOR)
    for group in values:
        if (
            not isinstance(group, str)
            or len(group) > GROUP_MAX_CHARS
            or not GROUP.fullmatch(group)
            or group in groups
            or length + len(GROUPS_SEPARATOR) + len(group) > MAX_GROUPS_CHARS
        ):
            continue
        groups[group] = None
        length += len(GROUPS_SEPARATOR) + len(group)
    return tuple(groups), len(values) - len(groups)


def _small_string(claims: Mapping[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise DeniedError(f"claim {claim!r} is missing or not a non-empty string")
    if len(value) > MAX_CLAIM_CHARS:
        raise DeniedError(f"claim {claim!r} is longer than {MAX_CLAIM_CHARS} characters")
    return value


def policy(effect: str, method_arn: str) -> dict[str, Any]:
    """An IAM policy for this one `$connect` (the event's methodArn) and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}],
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Allow with `{"sub", "name"}` (and `groups`, if any) as context, or Deny; raises only
    if the JWKS is unreachable or the function is misconfigured (API Gateway then answers
    500)."""
    settings = Settings.from_env()
    _configure_logging(settings.log_level)
    method_arn = str(event.get("methodArn", ""))
    request = event.get("requestContext") or {}
    where = {
        "connectionId": request.get("connectionId"),
        "requestId": request.get("requestId"),
        "awsRequestId": getattr(context, "aws_request_id", None),
    }
    try:
        identity = verify(token_from(event, settings.token_source), settings)
    except DeniedError as denied:
        log.warning("sign-in denied", extra={**where, "reason": denied.reason})
        return {"principalId": "anonymous", "policyDocument": policy("Deny", method_arn)}
    log.info(
        "sign-in allowed",
        extra={
            **where,
            "sub": identity.sub,
            "groups": len(identity.groups),
            "groupsDropped": identity.dropped,
        },
    )
    return {
        "principalId": identity.sub,
        "policyDocument": policy("Allow", method_arn),
        "context": identity.context(),
    }


# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


@functools.cache
def _configure_logging(level: str) -> None:
    """JSON lines on stdout (Lambda ships stdout to the function's log group)."""
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(_JsonFormatter())
    log.handlers[:] = [stream]
    log.setLevel(level)
    log.propagate = False
