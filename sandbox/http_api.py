"""The template's HTTP API (the chat's server API), served over HTTPS with IAM (SigV4)
authorization, as API Gateway serves it on the `$default` stage.

What it does, as API Gateway does (docs/sandbox.md, "The server API"):

- matches `METHOD /path/{param}` route keys (a literal segment wins over a parameter);
  an unknown path or method answers 404 `{"message":"Not Found"}`;
- on a route with `AWS_IAM`, checks the request's Signature Version 4 (the
  `Authorization` header, service `execute-api`, the sandbox's region): without one,
  403 `{"message":"Forbidden"}`; an access key it does not know, 403 "The security
  token included in the request is invalid."; a signature that does not match, 403 "The
  request signature we calculated does not match the signature you provided…"; an
  `X-Amz-Date` more than 5 minutes from now, 403 "Signature expired…";
- holds the stage's default throttle (a token bucket of `ThrottlingBurstLimit`, refilled
  at `ThrottlingRateLimit` a second): over it, 429 `{"message":"Too Many Requests"}`;
- invokes the route's function with the payload format 2.0 event (the caller's IAM
  identity in `requestContext.authorizer.iam`) and answers what it returns: a
  `statusCode` with `headers` and `body`, or any other JSON value as a 200 JSON body; a
  function that fails answers 500 `{"message":"Internal Server Error"}`, one that runs past
  the integration's 30 s 503 `{"message":"Service Unavailable"}`.

Credentials: the sandbox knows one key pair, the operator's (`OPERATOR_ACCESS_KEY_ID`,
`OPERATOR_SECRET_ACCESS_KEY`, printed in the banner). It stands for a principal with the
stack's operator policy; IAM policies themselves are not evaluated.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sandbox.intrinsics import ACCOUNT_ID
from sandbox.lambdas import LambdaService
from sandbox.responses import json_response
from sandbox.stack_model import HttpApiSpec, HttpRouteSpec

# The one key pair the sandbox's server API accepts (local only; never an AWS key).
OPERATOR_ACCESS_KEY_ID = "AKIASANDBOXOPERATOR0"
OPERATOR_SECRET_ACCESS_KEY = "sandbox-operator-secret-not-for-aws"
OPERATOR_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/sandbox-operator"
SERVICE = "execute-api"
# SigV4 requests are valid within 5 minutes of the server's clock.
MAX_SKEW_S = 300
# An HTTP API integration waits at most 30 s for the function.
INTEGRATION_TIMEOUT_S = 30.0
# Payload format 2.0 request bodies are at most 10 MB.
BODY_LIMIT = 10 * 1024 * 1024
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)"
)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


class RefusedError(Exception):
    """A request API Gateway answers itself: the status and its JSON message."""

    def __init__(self, status: int, message: str, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True)
class Caller:
    """Who signed the request."""

    access_key: str
    user_arn: str


class _Bucket:
    """The stage's throttle: `burst` tokens, refilled at `rate` a second."""

    def __init__(self, burst: int, rate: float) -> None:
        self._burst = float(burst)
        self._rate = rate
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class HttpApi:
    """One HTTP API of the template on its own HTTPS listener."""

    def __init__(
        self,
        spec: HttpApiSpec,
        lambdas: LambdaService,
        *,
        region: str,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        now: Any = time.time,
    ) -> None:
        self.spec = spec
        self._lambdas = lambdas
        self._region = region
        self._timeout_s = integration_timeout_s
        self._now = now
        self._bucket = (
            _Bucket(spec.throttle_burst or 1, spec.throttle_rate)
            if spec.throttle_rate is not None and spec.throttle_burst is not None
            else None
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=BODY_LIMIT)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            route, parameters = self._route(request.method, request.rel_url.raw_path)
            caller = self._authorize(request, body) if route.iam else None
            if self._bucket is not None and not self._bucket.take():
                raise RefusedError(429, "Too Many Requests", "TooManyRequestsException")
        except RefusedError as refused:
            return json_response(
                refused.status, {"message": refused.message}, error_type=refused.error_type
            )
        event = self._event(request, route, parameters, body, caller)
        try:
            result = await asyncio.wait_for(
                self._lambdas.invoke(route.function_id, event, label=route.route_key),
                self._timeout_s,
            )
        except TimeoutError:
            return json_response(503, {"message": "Service Unavailable"})
        if result.status != "ok":
            return json_response(500, {"message": "Internal Server Error"})
        return _answer(result.payload)

    def _route(self, method: str, raw_path: str) -> tuple[HttpRouteSpec, dict[str, str]]:
        """The route a request matches and its path parameters (decoded). Raises RefusedError."""
        segments = raw_path.split("/")[1:]
        best: tuple[int, HttpRouteSpec, dict[str, str]] | None = None
        for route in self.spec.routes:
            if route.method not in (method, "ANY"):
                continue
            pattern = route.path.split("/")[1:]
            if len(pattern) != len(segments):
                continue
            parameters: dict[str, str] = {}
            literal = 0
            for want, got in zip(pattern, segments, strict=True):
                if want.startswith("{") and want.endswith("}"):
                    if not got:
                        break
                    parameters[want[1:-1]] = unquote(got)
                elif want == got:
                    literal += 1
                else:
                    break
            else:
                if best is None or literal > best[0]:
                    best = (literal, route, parameters)
        if best is None:
            raise RefusedError(404, "Not Found", "NotFoundException")
        return best[1], best[2]

    def _authorize(self, request: web.Request, body: bytes) -> Caller:
        """Check the request's SigV4 signature. Raises RefusedError (403) as API Gateway does."""
        header = request.headers.get("Authorization")
        if not header:
            raise RefusedError(403, "Forbidden", "ForbiddenException")
        match = _AUTHORIZATION.fullmatch(header.strip())
        if match is None:
            raise RefusedError(403, "Forbidden", "IncompleteSignatureException")
        credential, signed, signature = match.groups()
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise RefusedError(403, "Forbidden", "IncompleteSignatureException")
        access_key, day, region, service, _ = parts
        if access_key != OPERATOR_ACCESS_KEY_ID:
            raise RefusedError(
                403,
                "The security token included in the request is invalid.",
                "UnrecognizedClientException",
            )
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise RefusedError(403, "Forbidden", "IncompleteSignatureException") from None
        if abs(signed_at.timestamp() - self._now()) > MAX_SKEW_S:
            raise RefusedError(
                403,
                f"Signature expired: {amz_date} is now earlier or later than the 5 minutes "
                "allowed.",
                "InvalidSignatureException",
            )
        names = signed.split(";")
        if (
            day != amz_date[:8]
            or region != self._region
            or service != SERVICE
            or "host" not in names
        ):
            raise RefusedError(403, _MISMATCH, "InvalidSignatureException")
        expected = _signature(request, body, names, amz_date, self._region)
        if not hmac.compare_digest(expected, signature):
            raise RefusedError(403, _MISMATCH, "InvalidSignatureException")
        return Caller(access_key=access_key, user_arn=OPERATOR_ARN)

    def _event(
        self,
        request: web.Request,
        route: HttpRouteSpec,
        parameters: Mapping[str, str],
        body: bytes,
        caller: Caller | None,
    ) -> dict[str, Any]:
        """The payload format 2.0 event of the request."""
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        query: dict[str, str] = {}
        for name, value in parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        now = datetime.now(UTC)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        context: dict[str, Any] = {
            "accountId": ACCOUNT_ID,
            "apiId": self.spec.api_id,
            "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {
                "method": request.method,
                "path": request.rel_url.path,
                "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                "sourceIp": peer[0] if peer else "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        }
        if caller is not None:
            context["authorizer"] = {
                "iam": {
                    "accessKey": caller.access_key,
                    "accountId": ACCOUNT_ID,
                    "callerId": "AIDASANDBOXOPERATOR",
                    "principalOrgId": None,
                    "userArn": caller.user_arn,
                    "userId": "AIDASANDBOXOPERATOR",
                }
            }
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": request.rel_url.raw_path,
            "rawQueryString": request.rel_url.raw_query_string,
            "headers": headers,
            "requestContext": context,
            "isBase64Encoded": False,
        }
        if query:
            event["queryStringParameters"] = query
        if parameters:
            event["pathParameters"] = dict(parameters)
        if body:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        return event


def _signature(
    request: web.Request, body: bytes, names: list[str], amz_date: str, region: str
) -> str:
    """The signature botocore computes for the request as received, over `names`."""
    headers = {name: request.headers.get(name, "") for name in names}
    url = f"https://{request.host}{request.rel_url.raw_path}"
    if request.rel_url.raw_query_string:
        url += f"?{request.rel_url.raw_query_string}"
    signed = AWSRequest(method=request.method, url=url, headers=headers, data=body)
    signed.context["timestamp"] = amz_date
    auth = SigV4Auth(
        Credentials(
            OPERATOR_ACCESS_KEY_ID,
            OPERATOR_SECRET_ACCESS_KEY,
            request.headers.get("X-Amz-Security-Token"),
        ),
        SERVICE,
        region,
    )
    canonical = auth.canonical_request(signed)
    return str(auth.signature(auth.string_to_sign(signed, canonical), signed))


def _answer(payload: Any) -> web.Response:
    """The function's result as API Gateway turns a payload 2.0 answer into HTTP."""
    if isinstance(payload, dict) and "statusCode" in payload:
        status = payload.get("statusCode")
        headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
        raw = payload.get("body")
        text = raw if isinstance(raw, str) else ""
        data = base64.b64decode(text) if payload.get("isBase64Encoded") else text.encode()
        if not isinstance(status, int) or not 100 <= status <= 599:
            return json_response(500, {"message": "Internal Server Error"})
        return web.Response(status=status, body=data, headers=headers)
    return web.Response(
        status=200, body=json.dumps(payload).encode(), content_type="application/json"
    )
