"""FanoutEngine over real sockets, against the HTTP @connections stand-in.

The stand-in (sandbox/connections_standin.py) answers 410 for gone ids and records what
was posted; here its handler is extended to record each request's headers and to answer
from a script first (429 LimitExceededException, 5xx), as API Gateway does under load.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
import trustme
from botocore.credentials import Credentials

from chat.fanout import FanoutEngine, HttpClientTransport
from sandbox.connections_standin import ConnectionsApi, _handler, _Server


class ScriptedApi(ConnectionsApi):
    """The stand-in's state, plus a script of answers per connection and every request's
    headers."""

    def __init__(self) -> None:
        super().__init__()
        self.script: dict[str, list[tuple[int, str]]] = {}
        self.headers: list[dict[str, str]] = []
        self.attempts: dict[str, int] = {}


@contextmanager
def scripted_connections_api() -> Iterator[ScriptedApi]:
    state = ScriptedApi()
    base: Any = _handler(state)

    def scripted_post(self: Any) -> None:
        cid = unquote(self.path.rsplit("/", 1)[-1])
        with state.lock:
            state.headers.append(dict(self.headers.items()))
            state.attempts[cid] = state.attempts.get(cid, 0) + 1
            answers = state.script.get(cid)
            scripted = answers.pop(0) if answers else None
        if scripted is None:
            base.do_POST(self)
            return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, error_type = scripted
        self._reply(status, error_type, json.dumps({"message": error_type}).encode())

    handler = type("ScriptedHandler", (base,), {"do_POST": scripted_post})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/production"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api() -> Iterator[ScriptedApi]:
    with scripted_connections_api() as state:
        yield state


def make_engine(api: ScriptedApi, concurrency: int = 8, **options: Any) -> FanoutEngine:
    return FanoutEngine(
        api.url,
        region="us-east-1",
        credentials=boto3.Session().get_credentials(),
        concurrency=concurrency,
        backoff_base_seconds=0.01,
        **options,
    )


def test_frames_arrive_in_order_per_connection(api):
    fan = make_engine(api)
    frames = [{"n": n, "text": "héllo"} for n in range(5)]
    report = fan.send({f"c{i}=": frames for i in range(20)})
    assert report.sent == 20
    for i in range(20):
        assert api.frames(f"c{i}=") == frames
    fan.shutdown()


def test_a_gone_connection_is_reported_and_not_retried(api):
    api.gone.add("gone=")
    fan = make_engine(api)
    report = fan.send({"gone=": [{"n": 1}, {"n": 2}], "ok=": [{"n": 1}]})
    assert report.gone == frozenset({"gone="})
    assert report.sent == 1
    assert api.attempts["gone="] == 1
    assert fan.is_gone("gone=") is True
    assert fan.is_gone("ok=") is False
    fan.shutdown()


def test_throttled_posts_are_retried_until_they_succeed(api):
    api.script["busy="] = [(429, "LimitExceededException"), (429, "LimitExceededException")]
    fan = make_engine(api)
    report = fan.send({"busy=": [{"n": 1}, {"n": 2}]})
    assert report.sent == 1
    assert api.frames("busy=") == [{"n": 1}, {"n": 2}]
    assert api.attempts["busy="] == 4
    assert [h["amz-sdk-request"] for h in api.headers[:3]] == [
        "attempt=1; max=3",
        "attempt=2; max=3",
        "attempt=3; max=3",
    ]
    fan.shutdown()


def test_server_errors_are_retried_a_bounded_number_of_times(api):
    api.script["flaky="] = [(500, "InternalServerErrorException"), (503, "")]
    api.script["down="] = [(502, "")] * 5
    fan = make_engine(api, max_attempts=3)
    report = fan.send({"flaky=": [{"n": 1}], "down=": [{"n": 1}], "ok=": [{"n": 1}]})
    assert (report.sent, report.failed) == (2, 1)
    assert api.frames("flaky=") == [{"n": 1}]
    assert api.attempts["down="] == 3
    fan.shutdown()


def test_no_more_than_concurrency_posts_are_in_flight(api):
    api.delay_seconds = 0.01
    fan = make_engine(api, concurrency=6)
    report = fan.send({f"c{i}=": [{"n": 1}] for i in range(60)})
    assert report.sent == 60
    assert 1 < api.max_in_flight <= 6
    fan.shutdown()


def test_requests_carry_sigv4_headers_with_the_session_token(api):
    fan = make_engine(api)
    fan.send({"a=": [{"n": 1}]})
    headers = {k.lower(): v for k, v in api.headers[0].items()}
    assert headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert "/us-east-1/execute-api/aws4_request" in headers["authorization"]
    assert headers["x-amz-date"].endswith("Z")
    assert headers["x-amz-security-token"] == "testing"  # tests/conftest.py's session token
    assert headers["host"] == api.url.split("/")[2]
    fan.shutdown()


def test_without_a_session_token_the_header_is_absent(api):
    fan = FanoutEngine(api.url, region="us-east-1", credentials=Credentials("AK", "SK"))
    fan.send({"a=": [{"n": 1}]})
    headers = {k.lower() for k in api.headers[0]}
    assert "x-amz-security-token" not in headers
    assert "authorization" in headers
    fan.shutdown()


def test_close_deletes_the_connection(api):
    fan = make_engine(api)
    fan.close("a=")
    fan.close("a=")  # already gone (410): fine
    assert api.closed == ["a="]
    fan.shutdown()


@pytest.fixture
def tls_api(tmp_path) -> Iterator[tuple[ScriptedApi, str]]:
    """The stand-in behind TLS, with a certificate for 127.0.0.1 from a test CA (trustme)."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    state = ScriptedApi()
    server = _Server(("127.0.0.1", 0), _handler(state))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"https://127.0.0.1:{server.server_address[1]}/production"
    try:
        yield state, str(ca_path)
    finally:
        server.shutdown()
        server.server_close()


def test_posts_go_over_tls_verified_against_the_given_ca(tls_api):
    api, ca = tls_api
    fan = FanoutEngine(
        api.url,
        region="us-east-1",
        credentials=Credentials("AK", "SK"),
        transport=HttpClientTransport(api.url, ca_certs=ca),
    )
    report = fan.send({"a=": [{"n": 1}, {"n": 2}], "b=": [{"n": 1}]})
    assert report.sent == 2
    assert api.frames("a=") == [{"n": 1}, {"n": 2}]
    fan.shutdown()


def test_the_ca_bundle_named_by_aws_ca_bundle_is_trusted_as_botocore_trusts_it(
    tls_api, monkeypatch
):
    api, ca = tls_api
    monkeypatch.setenv("AWS_CA_BUNDLE", ca)
    fan = FanoutEngine(api.url, region="us-east-1", credentials=Credentials("AK", "SK"))
    assert fan.send({"a=": [{"n": 1}]}).sent == 1
    fan.shutdown()


def test_a_certificate_that_does_not_verify_fails_the_posts(tls_api, monkeypatch):
    api, _ = tls_api
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    fan = FanoutEngine(
        api.url, region="us-east-1", credentials=Credentials("AK", "SK"), max_attempts=1
    )  # the default CA bundle (botocore's) does not know the test CA
    report = fan.send({"a=": [{"n": 1}]})
    assert (report.sent, report.failed) == (0, 1)
    assert api.posts == []
    fan.shutdown()
