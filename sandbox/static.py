"""The web client: the files under --web-dir, and /get-ws-endpoint naming the stage's URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from aiohttp import web

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


class StaticSite:
    """Serves `web_dir` (nothing when None) and the endpoint of `stage` for the page."""

    def __init__(self, web_dir: Path | None, stage: str) -> None:
        self._root = web_dir.resolve() if web_dir is not None else None
        self._stage = stage

    async def handle(self, request: web.Request, segments: list[str]) -> web.StreamResponse:
        """Answer a GET/HEAD for the path `segments` (still percent-encoded); 404/405 otherwise."""
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="Method Not Allowed")
        if segments == ["get-ws-endpoint"]:
            return web.json_response({"endpoint": f"ws://{request.host}/{self._stage}"})
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
