"""A small HTTP stand-in for API Gateway's @connections API, for adapter and handler tests.

It answers the way API Gateway does (status codes and the `x-amzn-ErrorType` header
boto3 uses to pick the exception class) and records every frame it was asked to post.
Plain HTTP by default; given a server `ssl.SSLContext` it serves HTTPS, as API Gateway
does (the benchmarks use that, with a certificate from a test CA: bench/standin.py), each
TLS handshake made in the connection's own thread.
The full emulator, with real WebSockets, is the sandbox (tests/sandbox, tests/e2e).
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


class ConnectionsApi:
    """State of the fake: live connections, the ids that answer 410, what was posted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gone: set[str] = set()
        self.forbidden: set[str] = set()
        self.posts: list[tuple[str, bytes]] = []
        self.closed: list[str] = []  # ids closed with DELETE (they answer 410 afterwards)
        self.delay_seconds = 0.0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0  # connections accepted (over TLS: handshakes completed)
        self.resumed = 0  # of which resumed a TLS session
        self.url = ""

    def frames(self, connection_id: str) -> list[Any]:
        with self.lock:
            return [json.loads(data) for cid, data in self.posts if cid == connection_id]

    def take(self, connection_id: str) -> list[Any]:
        """Frames posted to the connection since the last take."""
        with self.lock:
            mine = [json.loads(d) for cid, d in self.posts if cid == connection_id]
            self.posts = [(cid, d) for cid, d in self.posts if cid != connection_id]
            return mine

    def clear(self) -> None:
        with self.lock:
            self.posts.clear()


def _handler(state: ConnectionsApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3's pool expects of API Gateway

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            # Handshake in this connection's thread, not in the accepting one.
            sock = self.request
            resumed = False
            if getattr(self.server, "tls", None) is not None and isinstance(sock, ssl.SSLSocket):
                sock.settimeout(10)
                sock.do_handshake()
                sock.settimeout(None)
                resumed = bool(sock.session_reused)
            with state.lock:
                state.connections += 1
                state.resumed += resumed
            super().setup()

        def _connection_id(self) -> str:
            return unquote(self.path.rsplit("/", 1)[-1])

        def _reply(self, status: int, error_type: str | None = None, body: bytes = b"") -> None:
            self.send_response(status)
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, cid: str) -> bool:
            if cid in state.gone:
                self._reply(410, "GoneException")
                return True
            if cid in state.forbidden:
                self._reply(403, "ForbiddenException", b'{"message":"Forbidden"}')
                return True
            return False

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            cid = self._connection_id()
            with state.lock:
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                if state.delay_seconds:
                    time.sleep(state.delay_seconds)
                if not self._refuse(cid):
                    with state.lock:
                        state.posts.append((cid, data))
                    self._reply(200)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def do_DELETE(self) -> None:
            cid = self._connection_id()
            if not self._refuse(cid):
                with state.lock:
                    state.closed.append(cid)
                    state.gone.add(cid)
                self._reply(204)

        def do_GET(self) -> None:
            if not self._refuse(self._connection_id()):
                body = json.dumps(
                    {
                        "connectedAt": "2026-11-26T00:00:00.000Z",
                        "lastActiveAt": "2026-11-26T00:00:00.000Z",
                        "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
                    }
                ).encode()
                self._reply(200, body=body)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops bursts of concurrent connects (1 s SYN retries).
    request_queue_size = 256
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is None:
            return sock, address
        try:
            wrapped = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError:
            sock.close()
            raise
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys  # noqa: PLC0415

        if isinstance(sys.exc_info()[1], OSError):  # a client gone, a failed handshake
            return
        super().handle_error(request, client_address)


@contextmanager
def running_connections_api(
    stage: str = "production", *, tls: ssl.SSLContext | None = None
) -> Iterator[ConnectionsApi]:
    """Serve the fake on a free loopback port; `state.url` is the callback URL (https://
    when given a server-side `tls` context)."""
    state = ConnectionsApi()
    server = _Server(("127.0.0.1", 0), _handler(state))
    server.tls = tls
    # shutdown() waits for the loop's next poll: 50 ms, not the default 0.5 s per stop.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/{stage}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
