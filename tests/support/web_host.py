"""The web client hosted as CloudFront hosts it (infra/hosting.py), on loopback, for tests.

web/'s files, `GET /get-ws-endpoint` answering hosting.py's own `endpoint_document`, and on
every answer the Content-Security-Policy header hosting.py gives the distribution
(`content_security_policy`), so a browser test runs the page under the deployed policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from infra.config import SignInConfig
from infra.hosting import (
    CONTENT_TYPES,
    ENDPOINT_KEY,
    WEB_DIR,
    content_security_policy,
    endpoint_document,
    web_files,
)
from tests.support.http_server import serving


@dataclass(frozen=True)
class HostedPage:
    url: str  # the page, http://127.0.0.1:<port>/
    csp: str


@contextmanager
def hosted_page(endpoint: str, sign_in: SignInConfig | None = None) -> Iterator[HostedPage]:
    """Serve web/ with the endpoint document and CSP of a stack whose stage is `endpoint`."""
    files = web_files(WEB_DIR)
    document = json.dumps(endpoint_document(endpoint, sign_in)).encode()
    csp = content_security_policy(endpoint, sign_in)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path.lstrip("/") or "index.html"
            if path == ENDPOINT_KEY:
                self._send(200, document, "application/json")
            elif path in files:
                body = (WEB_DIR / path).read_bytes()
                self._send(200, body, CONTENT_TYPES[Path(path).suffix])
            else:
                self._send(404, b"Not Found", "text/plain")

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Security-Policy", csp)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as base:
        yield HostedPage(url=f"{base}/", csp=csp)
