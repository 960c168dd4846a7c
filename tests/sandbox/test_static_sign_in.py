"""/get-ws-endpoint with sign-in: the page learns how to sign in from the sandbox, as it does
from the deployed document (infra/hosting.py endpoint_document)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp.test_utils import make_mocked_request

from sandbox.static import StaticSite, sign_in_document
from sandbox.template import ApiSpec, AuthorizerSpec, FunctionSpec, IdentitySource, RouteSpec

ISSUER = "http://127.0.0.1:9000"


def function(logical_id: str, environment: dict[str, Any]) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical_id,
        name=logical_id,
        arn=f"arn:aws:lambda:us-east-1:000000000000:function:{logical_id}",
        handler="authorizer.handler",
        runtime="python3.14",
        timeout_s=10,
        memory_mb=256,
        code_dir=Path("."),
        environment=environment,
    )


def api(with_authorizer: bool) -> ApiSpec:
    authorizer = AuthorizerSpec("Auth", "Auth", "AuthFn", (IdentitySource("querystring", "token"),))
    connect = RouteSpec("$connect", "ChatFn", False, authorizer if with_authorizer else None)
    return ApiSpec("Api", "Api", "abc", "$request.body.action", {"$connect": connect}, ("dev",))


SIGN_IN_ENV = {
    "SIGN_IN_ISSUER": ISSUER,
    "SIGN_IN_AUDIENCE": "app-client",
    "SIGN_IN_JWKS_URL": f"{ISSUER}/.well-known/jwks.json",
    "SIGN_IN_NAME_CLAIM": "cognito:username",
    "SIGN_IN_TOKEN_SOURCE": "protocol",
}


def endpoint_document(site: StaticSite) -> Any:
    async def get() -> Any:
        request = make_mocked_request("GET", "/get-ws-endpoint", headers={"Host": "127.0.0.1:8080"})
        return await site.handle(request, ["get-ws-endpoint"])

    # A thread of its own: another suite's loop (Playwright's) may run in this one.
    with ThreadPoolExecutor(1) as pool:
        response = pool.submit(asyncio.run, get()).result()
    return json.loads(response.body)


def test_the_sign_in_settings_come_from_the_connect_authorizers_environment() -> None:
    functions = {"AuthFn": function("AuthFn", SIGN_IN_ENV)}
    assert sign_in_document(api(True), functions) == {
        "issuer": ISSUER,
        "clientId": "app-client",
        "tokenSource": "protocol",
        "scope": "openid",
        "nameClaim": "cognito:username",
    }


def test_no_authorizer_or_one_that_is_not_the_sign_in_authorizer_means_no_sign_in() -> None:
    assert sign_in_document(api(False), {"AuthFn": function("AuthFn", SIGN_IN_ENV)}) is None
    assert sign_in_document(api(True), {"AuthFn": function("AuthFn", {"OTHER": "x"})}) is None


def test_the_endpoint_document_carries_sign_in_beside_the_endpoint_when_required() -> None:
    plain = endpoint_document(StaticSite(None, "dev"))
    assert plain == {"endpoint": "ws://127.0.0.1:8080/dev"}
    settings = sign_in_document(api(True), {"AuthFn": function("AuthFn", SIGN_IN_ENV)})
    signed = endpoint_document(StaticSite(None, "dev", settings))
    assert signed == {"endpoint": "ws://127.0.0.1:8080/dev", "signIn": settings}
