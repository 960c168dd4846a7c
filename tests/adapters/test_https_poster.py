"""The poster over TLS, against a server that misbehaves on purpose.

On AWS every post is HTTPS; these tests hold the engine to its delivery rules on that path:
a post is sent again only when it provably did not reach the server, every wait ends by the
invocation's deadline, and a 2xx status is a delivery whatever happens to its body. The
server counts the requests it read whole: that is how many copies a member would get.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import trustme
from botocore.credentials import Credentials

from chat import deadline
from chat.fanout import FanoutEngine, HttpClientTransport, NotSentError, TransportError
from chat.ports import DeliveryReport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
Behaviour = Callable[[ssl.SSLSocket], bool]  # answers one request; False: close the connection


def answer(raw: bytes) -> Behaviour:
    def run(conn: ssl.SSLSocket) -> bool:
        conn.sendall(raw)
        return True

    return run


def silent(conn: ssl.SSLSocket) -> bool:
    time.sleep(30)  # never answers (the test is long over before this ends)
    return False


def cut_body(conn: ssl.SSLSocket) -> bool:
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial":')
    return False


def late(seconds: float) -> Behaviour:
    def run(conn: ssl.SSLSocket) -> bool:
        time.sleep(seconds)
        conn.sendall(OK)
        return True

    return run


def reset(conn: ssl.SSLSocket) -> bool:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    return False


@dataclass
class TlsServer:
    url: str
    ca_path: str
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


def _server_tls(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate for 127.0.0.1, and the PEM of the CA behind it."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return context, str(ca_path)


@contextmanager
def tls_server(tmp_path, behaviours: list[Behaviour], *, idle_close: float | None = None):
    """A TLS server that answers the Nth request it reads whole with behaviours[N] (then OK).

    `idle_close`: a connection idle that long after an answer is closed by the server.
    """
    context, ca_path = _server_tls(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so that the accepting thread sees `stop`
    port = listener.getsockname()[1]
    server = TlsServer(f"https://127.0.0.1:{port}/production", ca_path)
    lock = threading.Lock()
    stop = threading.Event()

    def serve(raw: socket.socket) -> None:
        try:
            conn = context.wrap_socket(raw, server_side=True)
        except OSError:
            raw.close()
            return
        buffer = b""
        try:
            while not stop.is_set():
                conn.settimeout(idle_close)
                request, buffer = _read_request(conn, buffer)
                if request is None:
                    return
                conn.settimeout(None)
                with lock:
                    index = len(server.requests)
                    server.requests.append(request)
                behaviour = behaviours[index] if index < len(behaviours) else answer(OK)
                if not behaviour(conn):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def accept() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            raw.settimeout(None)
            with lock:
                server.connections += 1
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _read_request(conn: ssl.SSLSocket, buffer: bytes) -> tuple[bytes | None, bytes]:
    """One whole request (head and body) and what follows it; None if the client closed."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None, buffer
        buffer += chunk
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(buffer) < length:
        buffer += conn.recv(65536)
    return head + b"\r\n\r\n" + buffer[:length], buffer[length:]


def poster(server: TlsServer, **options) -> FanoutEngine:
    read_timeout = options.pop("read_timeout", 1.0)
    return FanoutEngine(
        server.url,
        region="eu-west-1",
        credentials=Credentials("AK", "SK", "token"),
        transport=HttpClientTransport(
            server.url, ca_certs=server.ca_path, read_timeout=read_timeout
        ),
        sleep=lambda _: None,
        **options,
    )


def posts_to(server: TlsServer, connection_id: str) -> int:
    return sum(1 for r in server.requests if f"/@connections/{connection_id} ".encode() in r)


def timed_send(fan: FanoutEngine, deliveries, within: float) -> tuple[DeliveryReport, float]:
    started = time.monotonic()
    with deadline.running(deadline.Deadline.after(within)):
        report = fan.send(deliveries)
    return report, time.monotonic() - started


def test_a_server_that_stays_silent_ends_the_post_at_the_read_timeout_with_one_copy(tmp_path):
    with tls_server(tmp_path, [silent]) as server:
        fan = poster(server, read_timeout=1.0)
        report, took = timed_send(fan, {"a": [{"n": 1}, {"n": 2}]}, within=20.0)
        fan.shutdown()
    assert (report.sent, report.failed) == (0, 1)
    assert took < 3.0
    assert posts_to(server, "a") == 1  # written once, never again


def test_a_silent_server_cannot_hold_the_post_past_the_invocations_deadline(tmp_path):
    with tls_server(tmp_path, [silent]) as server:
        fan = poster(server, read_timeout=30.0)
        report, took = timed_send(fan, {"a": [{"n": 1}]}, within=1.0)
        fan.shutdown()
    assert report.failed == 1
    assert took < 2.0
    assert posts_to(server, "a") == 1


def test_a_2xx_whose_body_is_cut_counts_as_delivered_and_is_not_sent_again(tmp_path):
    with tls_server(tmp_path, [cut_body]) as server:
        fan = poster(server)
        report, _ = timed_send(fan, {"a": [{"n": 1}, {"n": 2}]}, within=20.0)
        fan.shutdown()
    assert (report.sent, report.failed) == (1, 0)
    assert posts_to(server, "a") == 2  # frame 1 once, then frame 2 on a new connection
    assert server.connections == 2


def test_a_late_answer_is_a_failed_post_not_a_resend(tmp_path):
    with tls_server(tmp_path, [late(2.0)]) as server:
        fan = poster(server, read_timeout=0.5)
        report, took = timed_send(fan, {"a": [{"n": 1}]}, within=20.0)
        # The next send reuses nothing broken: a new connection, one copy of the new post.
        second, _ = timed_send(fan, {"b": [{"n": 1}]}, within=20.0)
        fan.shutdown()
    assert report.failed == 1 and second.sent == 1
    assert took < 2.0
    assert posts_to(server, "a") == 1 and posts_to(server, "b") == 1


def test_a_reset_after_the_request_was_written_is_a_failed_post_not_a_resend(tmp_path):
    with tls_server(tmp_path, [reset]) as server:
        fan = poster(server, max_attempts=3)
        report, _ = timed_send(fan, {"a": [{"n": 1}]}, within=20.0)
        fan.shutdown()
    assert report.failed == 1
    assert posts_to(server, "a") == 1


def test_a_kept_alive_connection_closed_by_the_server_is_replaced_before_the_write(tmp_path):
    with tls_server(tmp_path, [], idle_close=0.2) as server:
        fan = poster(server, concurrency=1)
        first, _ = timed_send(fan, {"a": [{"n": 1}]}, within=20.0)
        time.sleep(0.6)  # the server closes the idle connection
        second, _ = timed_send(fan, {"a": [{"n": 2}]}, within=20.0)
        stats = fan.last_delivery
        fan.shutdown()
    assert first.sent == 1 and second.sent == 1
    assert posts_to(server, "a") == 2
    assert server.connections == 2
    assert stats is not None and stats.attempts == 1  # the replacement is not a retry


def test_throttling_and_server_errors_are_sent_again_since_they_were_not_delivered(tmp_path):
    throttled = b"HTTP/1.1 429 Too Many Requests\r\nx-amzn-ErrorType: LimitExceededException\r\n"
    throttled += b"Content-Length: 0\r\n\r\n"
    failing = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\n\r\n{}"
    with tls_server(tmp_path, [answer(throttled), answer(failing)]) as server:
        fan = poster(server)
        report, _ = timed_send(fan, {"a": [{"n": 1}]}, within=20.0)
        fan.shutdown()
    assert report.sent == 1
    assert posts_to(server, "a") == 3
    assert server.connections == 1  # answered statuses keep the connection


def test_keep_alive_carries_many_posts_and_reads_chunked_and_interim_answers(tmp_path):
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;x=y\r\n{"m"\r\n3\r\n:1}\r\n0\r\nT: 1\r\n\r\n'
    )
    gone = b"HTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException\r\nContent-Length: 0\r\n\r\n"
    with tls_server(tmp_path, [answer(chunked), answer(OK), answer(gone)]) as server:
        fan = poster(server, concurrency=1)
        report = fan.send({"a": [{"n": 1}, {"n": 2}], "b": [{"n": 1}]})
        fan.shutdown()
    assert (report.sent, report.gone) == (1, frozenset({"b"}))
    assert server.connections == 1


def test_a_refused_connection_was_not_sent_and_is_tried_again():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    transport = HttpClientTransport(f"http://127.0.0.1:{port}/p", connect_timeout=1)
    with pytest.raises(NotSentError):
        transport.request("POST", "/p/@connections/a", b"x", {}, 1.0)


def test_a_transport_error_after_the_write_is_not_a_not_sent_error(tmp_path):
    with tls_server(tmp_path, [reset]) as server:
        transport = HttpClientTransport(server.url, ca_certs=server.ca_path, read_timeout=1.0)
        with pytest.raises(TransportError) as raised:
            transport.request("POST", "/production/@connections/a", b"x", {}, 1.0)
        transport.close()
    assert not isinstance(raised.value, NotSentError)


def test_new_connections_resume_the_tls_session_of_an_earlier_one(tmp_path):
    with tls_server(tmp_path, []) as server:
        transport = HttpClientTransport(server.url, ca_certs=server.ca_path)
        fan = FanoutEngine(
            server.url,
            region="eu-west-1",
            credentials=Credentials("AK", "SK"),
            transport=transport,
            concurrency=4,
        )
        fan.send({"a": [{"n": 1}]})  # one connection, whose session is kept
        fan.send({f"c{i}": [{"n": 1}] for i in range(8)})
        fan.shutdown()
    assert transport.connections_made >= 2
    assert transport.sessions_resumed >= 1


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 15, "a post outlived every timeout"


def test_a_request_goes_out_in_one_write_head_and_body_together():
    from chat.fanout import _OneWrite  # noqa: PLC0415

    class Recording:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def sendall(self, data: bytes) -> None:
            self.writes.append(bytes(data))

    conn = _OneWrite("127.0.0.1", 9)
    sock = Recording()
    conn.sock = sock
    conn.body_follows = True
    conn.request("POST", "/p/@connections/a", body=b'{"n":1}', headers={"Host": "x"})
    assert len(sock.writes) == 1
    assert sock.writes[0].startswith(b"POST /p/@connections/a HTTP/1.1\r\n")
    assert sock.writes[0].endswith(b'\r\n\r\n{"n":1}')
