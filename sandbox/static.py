"""The web client: the files under --web-dir, and /get-ws-endpoint naming the stage's URL.

With sign-in (a Lambda authorizer on $connect whose function is the stack's sign-in
authorizer, configured by its SIGN_IN_* environment), /get-ws-endpoint also says how the
page signs in, as the deployed page's document does (infra/hosting.py endpoint_document).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from sandbox.template import ApiSpec, FunctionSpec

# What the page asks the issuer for: an ID token (infra/hosting.py SIGN_IN_SCOPE).
SIGN_IN_SCOPE = "openid"

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
}


def sign_in_document(api: ApiSpec, functions: Mapping[str, FunctionSpec]) -> dict[str, str] | None:
    """How the page signs in, from the $connect authorizer's environment; None without one.

    The stack's authorizer (authorizer_src/) reads SIGN_IN_ISSUER, SIGN_IN_AUDIENCE (an ID
    token's `aud`: the app client id the page signs in as), SIGN_IN_TOKEN_SOURCE and
    SIGN_IN_NAME_CLAIM; an authorizer without them is not one the page can sign in for.
    """
    route = api.routes.get("$connect")
    authorizer = route.authorizer if route is not None else None
    function = functions.get(authorizer.function_id) if authorizer is not None else None
    if function is None:
        return None
    env: Mapping[str, Any] = function.environment
    issuer, audience = env.get("SIGN_IN_ISSUER"), env.get("SIGN_IN_AUDIENCE")
    if not isinstance(issuer, str) or not isinstance(audience, str) or not issuer or not audience:
        return None
    source = env.get("SIGN_IN_TOKEN_SOURCE")
    claim = env.get("SIGN_IN_NAME_CLAIM")
    return {
        "issuer": issuer,
        "clientId": audience,
        "tokenSource": source if isinstance(source, str) and source else "query",
        "scope": SIGN_IN_SCOPE,
        "nameClaim": claim if isinstance(claim, str) and claim else "cognito:username",
    }


class StaticSite:
    """Serves `web_dir` (nothing when None) and the endpoint of `stage` for the page, with
    `sign_in` (sign_in_document) in it when the stack requires sign-in."""

    def __init__(
        self, web_dir: Path | None, stage: str, sign_in: Mapping[str, str] | None = None
    ) -> None:
        self._root = web_dir.resolve() if web_dir is not None else None
        self._stage = stage
        self._sign_in = dict(sign_in) if sign_in is not None else None

    async def handle(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """Answer a GET/HEAD for the path `segments` (still percent-encoded); 404/405 otherwise."""
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="Method Not Allowed")
        if segments == ["get-ws-endpoint"]:
            document: dict[str, Any] = {"endpoint": f"ws://{request.host}/{self._stage}"}
            if self._sign_in is not None:
                document["signIn"] = self._sign_in
            return web.json_response(document)
        root = self._root
        if root is None:
            return web.Response(status=404, text="Not Found (no --web-dir)")
        parts = [unquote(segment) for segment in segments if segment]
        if any(p in (".", "..") or "/" in p or "\\" in p or "\0" in p for p in parts):
            return web.Response(status=404, text="Not Found")
        path = root.joinpath(*parts).resolve()
        if not path.is_relative_to(root):
            return web.Response(status=404, text="Not Found")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            return web.Response(status=404, text="Not Found")
        content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        return web.FileResponse(
            path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
        )
