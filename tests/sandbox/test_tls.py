"""HTTPS (docs/sandbox.md, "HTTPS" and items 58-64): @connections and Lambda's Invoke API on a
TLS listener of their own, trusted through the sandbox's CA, and the fault switches that
break an HTTPS answer, each checked with a standard-library client (`http.client`, `ssl`).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from websockets.sync.client import ClientConnection

from sandbox.faults import FaultConfig, FaultConfigError
from tests.support.sandbox import (
    ECHO_TEMPLATE,
    MINIMAL_TEMPLATE,
    ROOT,
    Sandbox,
    connection_id_of,
    recv_text,
    running_sandbox,
)

pytestmark = pytest.mark.sandbox

LATE_MS = 1500


def post_path(connection_id: str) -> str:
    return f"/dev/@connections/{quote(connection_id, safe='')}"


def plain_request(sandbox: Sandbox, method: str, path: str) -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        connection.request(method, path, body=b"{}")
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def no_traceback(sandbox: Sandbox) -> None:
    log = sandbox.log()
    assert "Traceback" not in log and "Error handling request" not in log, log


# -- the listener and its certificate ----------------------------------------------------------


def test_the_functions_post_over_https_trusting_the_sandbox_ca(echo_sandbox: Sandbox) -> None:
    # GIVEN a connection WHEN the fixture function posts to it (boto3, CALLBACK_URL and
    # AWS_CA_BUNDLE from its environment)
    with echo_sandbox.connect() as ws:
        connection_id_of(ws)
        ws.send(json.dumps({"action": "post", "data": "over tls"}))
        # THEN the post arrives: over HTTPS, the only listener that serves @connections
        assert recv_text(ws) == "over tls"


def test_the_certificate_names_loopback_and_is_trusted_only_through_the_ca(
    echo_sandbox: Sandbox,
) -> None:
    address = ("127.0.0.1", echo_sandbox.tls_port)
    # GIVEN a client trusting the sandbox's CA THEN 127.0.0.1 and localhost both verify
    trusting = ssl.create_default_context(cafile=echo_sandbox.ca_bundle)
    for name in ("127.0.0.1", "localhost"):
        with (
            socket.create_connection(address, timeout=5) as raw,
            trusting.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # AND a client with only the system's CAs refuses the certificate
    default = ssl.create_default_context()
    with (
        socket.create_connection(address, timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        default.wrap_socket(raw, server_hostname="127.0.0.1")
    # AND the CA file is a PEM certificate (no private key in it)
    pem = Path(echo_sandbox.ca_bundle).read_text()
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in pem


def test_the_plain_port_refuses_connections_and_invoke_and_points_at_https(
    echo_sandbox: Sandbox,
) -> None:
    # WHEN a client uses the plain port for @connections or Invoke
    for method, path in [
        ("POST", "/dev/@connections/AAAAAAAAAAAAAAA="),
        ("GET", "/@connections/AAAAAAAAAAAAAAA="),
        ("POST", "/2015-03-31/functions/EchoFunction/invocations"),
    ]:
        status, body = plain_request(echo_sandbox, method, path)
        # THEN 403, naming the HTTPS listener
        assert status == 403, path
        assert echo_sandbox.api_url in body["message"]


def test_the_https_port_serves_neither_the_page_nor_the_stage(echo_sandbox: Sandbox) -> None:
    connection = echo_sandbox.https_connection(timeout=5)
    try:
        for path in ("/", "/dev", "/index.html"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 403, path
    finally:
        connection.close()


def test_tls_dir_and_tls_port_choose_the_ca_file_and_the_port(tmp_path: Path) -> None:
    # GIVEN a free port and a directory for the CA
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls_dir = tmp_path / "tls"
    # WHEN the sandbox starts with them
    with running_sandbox(
        MINIMAL_TEMPLATE, tmp_path, "--tls-dir", str(tls_dir), "--tls-port", str(port)
    ) as sandbox:
        # THEN the banner names them, and the CA is there while it runs
        assert sandbox.ca_bundle == str((tls_dir / "ca.pem").resolve())
        assert sandbox.callback_url == f"https://127.0.0.1:{port}/dev"
        assert (tls_dir / "ca.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
        assert sandbox.stop() == 0
    # AND a --tls-dir is left in place
    assert (tls_dir / "ca.pem").exists()


def test_a_busy_tls_port_or_an_unwritable_tls_dir_exits_2(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, message in [
            (("--tls-port", str(port)), f"cannot listen on 127.0.0.1:{port}"),
            (("--tls-dir", str(blocker / "tls")), "cannot write the CA"),
        ]:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "sandbox",
                    "--template",
                    str(MINIMAL_TEMPLATE),
                    "--port",
                    "0",
                    *args,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 2, result.stderr
            assert message in result.stderr


def test_the_default_ca_directory_is_removed_at_exit(tmp_path: Path) -> None:
    with running_sandbox(MINIMAL_TEMPLATE, tmp_path) as sandbox:
        ca = Path(sandbox.ca_bundle)
        assert ca.exists()
        assert sandbox.stop() == 0
    assert not ca.exists() and not ca.parent.exists()


# -- the fault switches on HTTPS answers -------------------------------------------------------


def test_break_switches_are_checked_and_described() -> None:
    with pytest.raises(FaultConfigError):
        FaultConfig(post_break="sometimes")
    with pytest.raises(FaultConfigError):
        FaultConfig(post_break="late", post_late_ms=0)
    with pytest.raises(FaultConfigError):
        FaultConfig(idle_close_ms=-1)
    assert FaultConfig(post_break="late", post_late_ms=6000).describe() == [
        "@connections POST to every connection: late (delivered, answered after 6000 ms)"
    ]
    assert FaultConfig(idle_close_ms=200).describe() == [
        "idle-close: HTTPS connections closed after 200 ms idle"
    ]


def test_an_unknown_break_mode_is_a_usage_error() -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "sandbox", "--template", str(ECHO_TEMPLATE)),
            *("--fault-post-break", "sometimes"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--fault-post-break" in result.stderr


@pytest.fixture
def break_sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Sandbox]:
    """The echo stack with `--fault-post-break <param>` on connections opened with ?fault=1."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path,
        "--fault-post-connections",
        "query:fault=1",
        "--fault-post-break",
        request.param,
        "--fault-post-late-ms",
        str(LATE_MS),
    ) as sandbox:
        yield sandbox


@contextmanager
def faulty_and_healthy(
    sandbox: Sandbox,
) -> Iterator[tuple[ClientConnection, str, ClientConnection, str]]:
    """A connection the break applies to (?fault=1), one it does not, and their ids."""
    with sandbox.connect("fault=1") as faulty, sandbox.connect() as healthy:
        yield faulty, connection_id_of(faulty), healthy, connection_id_of(healthy)


def assert_healthy_post_answers(sandbox: Sandbox, ws: ClientConnection, cid: str) -> None:
    connection = sandbox.https_connection(timeout=5)
    try:
        connection.request("POST", post_path(cid), b"healthy")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        assert recv_text(ws) == "healthy"
    finally:
        connection.close()


@pytest.mark.parametrize("break_sandbox", ["silent"], indirect=True)
@pytest.mark.timeout(60)
def test_silent_delivers_then_never_answers(break_sandbox: Sandbox) -> None:
    sandbox = break_sandbox
    with faulty_and_healthy(sandbox) as (faulty, cid, healthy, healthy_id):
        # WHEN a client posts to the faulty connection and waits 2 s for the answer
        connection = sandbox.https_connection(timeout=2)
        started = time.monotonic()
        connection.request("POST", post_path(cid), b"into the void")
        # THEN no answer comes (the read times out), yet the post was delivered
        with pytest.raises(TimeoutError):
            connection.getresponse()
        assert time.monotonic() - started >= 2
        connection.close()
        assert recv_text(faulty) == "into the void"
        # AND other connections are answered as usual
        assert_healthy_post_answers(sandbox, healthy, healthy_id)
    assert "silent: delivered" in sandbox.log()
    no_traceback(sandbox)


@pytest.mark.parametrize("break_sandbox", ["cut-body"], indirect=True)
@pytest.mark.timeout(60)
def test_cut_body_delivers_answers_200_and_drops_the_connection_mid_body(
    break_sandbox: Sandbox,
) -> None:
    sandbox = break_sandbox
    with faulty_and_healthy(sandbox) as (faulty, cid, healthy, healthy_id):
        connection = sandbox.https_connection(timeout=5)
        connection.request("POST", post_path(cid), b"cut short")
        # THEN the status is 200 with a Content-Length the body never reaches
        response = connection.getresponse()
        assert response.status == 200
        length = int(response.getheader("Content-Length") or 0)
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert 0 < len(cut.value.partial) < length
        connection.close()
        # AND the post was delivered, and others are answered as usual
        assert recv_text(faulty) == "cut short"
        assert_healthy_post_answers(sandbox, healthy, healthy_id)
    assert "cut-body: delivered" in sandbox.log()
    no_traceback(sandbox)


@pytest.mark.parametrize("break_sandbox", ["late"], indirect=True)
@pytest.mark.timeout(60)
def test_late_delivers_at_once_and_answers_after_the_delay(break_sandbox: Sandbox) -> None:
    sandbox = break_sandbox
    with faulty_and_healthy(sandbox) as (faulty, cid, healthy, healthy_id):
        # WHEN a client with a read timeout shorter than the delay posts
        impatient = sandbox.https_connection(timeout=LATE_MS / 1000 / 3)
        impatient.request("POST", post_path(cid), b"first")
        # THEN it times out, yet the post was delivered before its timeout
        with pytest.raises(TimeoutError):
            impatient.getresponse()
        impatient.close()
        assert recv_text(faulty, timeout=0.1) == "first"
        # WHEN a patient client posts THEN it gets 200, after the delay
        patient = sandbox.https_connection(timeout=LATE_MS / 1000 * 3)
        started = time.monotonic()
        patient.request("POST", post_path(cid), b"second")
        response = patient.getresponse()
        response.read()
        assert response.status == 200
        assert time.monotonic() - started >= LATE_MS / 1000
        patient.close()
        assert recv_text(faulty) == "second"
        assert_healthy_post_answers(sandbox, healthy, healthy_id)
    assert "late: delivered" in sandbox.log()
    no_traceback(sandbox)


@pytest.mark.parametrize("break_sandbox", ["reset-after-write"], indirect=True)
@pytest.mark.timeout(60)
def test_reset_after_write_delivers_then_resets_the_connection(break_sandbox: Sandbox) -> None:
    sandbox = break_sandbox
    with faulty_and_healthy(sandbox) as (faulty, cid, healthy, healthy_id):
        # WHEN http.client posts THEN no answer: the connection ends before a status line
        connection = sandbox.https_connection(timeout=5)
        connection.request("POST", post_path(cid), b"reset")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            connection.getresponse()
        connection.close()
        assert recv_text(faulty) == "reset"
        # AND underneath TLS the connection ends with a TCP reset, not a FIN (Python's ssl
        # reports either as an end of file, so the raw socket is read past TLS)
        context = ssl.create_default_context(cafile=sandbox.ca_bundle)
        raw = socket.create_connection(("127.0.0.1", sandbox.tls_port), timeout=5)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            request = f"POST {post_path(cid)} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
            tls.sendall(request.encode() + b"again")
            with pytest.raises(ConnectionResetError):
                while socket.socket.recv(tls, 65536):
                    pass
        assert recv_text(faulty) == "again"
        assert_healthy_post_answers(sandbox, healthy, healthy_id)
    assert "reset-after-write: delivered" in sandbox.log()
    no_traceback(sandbox)


@pytest.mark.timeout(60)
def test_idle_close_closes_kept_alive_connections_after_the_idle_time(tmp_path: Path) -> None:
    with running_sandbox(ECHO_TEMPLATE, tmp_path, "--fault-idle-close-ms", "300") as sandbox:
        assert "Fault:         idle-close: HTTPS connections closed after 300 ms idle" in (
            sandbox.log()
        )
        with sandbox.connect() as ws:
            cid = connection_id_of(ws)
            connection = sandbox.https_connection(timeout=5)
            # GIVEN a kept-alive connection used twice in quick succession (it stays open)
            for text in ("one", "two"):
                connection.request("POST", post_path(cid), text.encode())
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                assert recv_text(ws) == text
            sock = connection.sock
            # WHEN it stays idle longer than the idle time
            time.sleep(1.0)
            # THEN the server has closed it: reusing it fails without an answer, and
            # nothing was delivered
            connection.request("POST", post_path(cid), b"three")
            assert connection.sock is sock  # the same connection was reused
            with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
                connection.getresponse()
            connection.close()
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.5)
            # AND a new connection works
            connection = sandbox.https_connection(timeout=5)
            connection.request("POST", post_path(cid), b"four")
            assert connection.getresponse().status == 200
            connection.close()
            assert recv_text(ws) == "four"
        no_traceback(sandbox)
