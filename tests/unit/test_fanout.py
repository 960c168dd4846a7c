"""FanoutEngine's rules on a scripted transport: statuses, retries, order, sharing, signing."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Mapping
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.credentials import Credentials

from chat import deadline
from chat.fanout import FanoutEngine, NotSentError, TransportError

URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/production"


class Scripted:
    """A transport that answers from a script per connection id (default 200) and records
    every request; `hold` keeps each request in flight that long."""

    def __init__(self, script: dict[str, list[object]] | None = None, hold: float = 0.0):
        self.script = script or {}
        self.hold = hold
        self.requests: list[tuple[str, str, bytes | None, dict[str, str]]] = []
        self.timeouts: list[float] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float = 5.0,
    ):
        connection_id = path.rsplit("/", 1)[-1]
        with self.lock:
            self.requests.append((method, path, body, dict(headers)))
            self.timeouts.append(timeout)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            answers = self.script.get(connection_id)
            answer = answers.pop(0) if answers else 200
        try:
            if self.hold:
                time.sleep(self.hold)
            if isinstance(answer, Exception):
                raise answer
            if isinstance(answer, tuple):
                return answer
            return answer, ""
        finally:
            with self.lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.closed = True

    def bodies(self, path_end: str) -> list[bytes | None]:
        return [body for _, path, body, _ in self.requests if path.endswith(path_end)]


def engine(transport: Scripted, *, token: str | None = "session-token", **options) -> FanoutEngine:
    sleeps: list[float] = options.pop("sleeps", [])
    return FanoutEngine(
        URL,
        region="eu-west-1",
        credentials=Credentials("AKIDEXAMPLE", "secret", token),
        transport=transport,
        sleep=sleeps.append,
        jitter=lambda: 0.5,
        **options,
    )


def test_each_connection_gets_its_frames_in_order_and_the_report_counts_them():
    transport = Scripted()
    report = engine(transport).send({"a=": [{"n": 1}, {"n": 2}, {"n": 3}], "b/c": [{"n": 1}]})
    assert (report.sent, report.gone, report.failed) == (2, frozenset(), 0)
    assert transport.bodies("/a%3D") == [b'{"n":1}', b'{"n":2}', b'{"n":3}']
    # The id is percent-encoded as botocore encodes a URI label ('/' and '=' included).
    assert transport.bodies("/production/@connections/b%2Fc") == [b'{"n":1}']


def test_frames_are_compact_utf8_json():
    transport = Scripted()
    engine(transport).send({"a": [{"text": "héllo ✓"}]})
    assert transport.bodies("/a") == ['{"text":"héllo ✓"}'.encode()]


def test_a_410_means_gone_without_retry_and_skips_that_connections_later_frames():
    transport = Scripted({"gone": [410]})
    report = engine(transport).send({"gone": [{"n": 1}, {"n": 2}], "ok": [{"n": 1}]})
    assert report.gone == frozenset({"gone"})
    assert (report.sent, report.failed) == (1, 0)
    assert len(transport.bodies("/gone")) == 1


def test_throttling_is_retried_with_backoff_then_succeeds():
    sleeps: list[float] = []
    transport = Scripted({"a": [(429, "LimitExceededException"), (429, ""), 200]})
    fan = engine(transport, sleeps=sleeps, backoff_base_seconds=0.1, backoff_cap_seconds=1.0)
    report = fan.send({"a": [{"n": 1}]})
    assert report.sent == 1
    assert len(transport.bodies("/a")) == 3
    # Full jitter: a random fraction (0.5 here) of base * 2^(retry - 1), capped.
    assert sleeps == [0.05, 0.1]
    assert fan.last_delivery is not None
    assert (fan.last_delivery.attempts, fan.last_delivery.throttled) == (3, 2)


def test_each_attempt_carries_the_sdk_headers_with_one_invocation_id_per_request():
    transport = Scripted({"a": [500, 200]})
    engine(transport).send({"a": [{"n": 1}], "b": [{"n": 1}]})
    by_id: dict[str, list[str]] = {}
    for _, path, _, headers in transport.requests:
        by_id.setdefault(path.rsplit("/", 1)[-1], []).append(headers["amz-sdk-invocation-id"])
    assert len(set(by_id["a"])) == 1 and len(by_id["a"]) == 2  # a retry keeps its id
    assert by_id["a"][0] != by_id["b"][0]  # another request, another id
    attempts = [h["amz-sdk-request"] for _, p, _, h in transport.requests if p.endswith("/a")]
    assert attempts == ["attempt=1; max=3", "attempt=2; max=3"]


def test_a_throttling_error_type_is_retried_whatever_the_status():
    transport = Scripted({"a": [(400, "ThrottlingException"), 200]})
    assert engine(transport).send({"a": [{"n": 1}]}).sent == 1


def test_server_errors_and_requests_that_were_not_sent_are_retried_but_attempts_are_bounded():
    transport = Scripted({"a": [500, NotSentError("refused"), 503], "b": [502, 200]})
    sleeps: list[float] = []
    report = engine(transport, sleeps=sleeps, max_attempts=3).send(
        {"a": [{"n": 1}, {"n": 2}], "b": [{"n": 1}]}
    )
    assert (report.sent, report.failed, report.gone) == (1, 1, frozenset())
    assert len(transport.bodies("/a")) == 3  # three attempts of frame 1, frame 2 never
    assert len(transport.bodies("/b")) == 2


@pytest.mark.parametrize(
    "broken",
    [TransportError("no answer: TimeoutError"), TransportError("no answer: RemoteDisconnected")],
)
def test_a_post_that_was_written_is_never_sent_again_when_its_answer_is_missing(broken):
    transport = Scripted({"a": [broken, 200]})
    fan = engine(transport, max_attempts=3)
    report = fan.send({"a": [{"n": 1}, {"n": 2}], "b": [{"n": 1}]})
    assert (report.sent, report.failed) == (1, 1)
    assert transport.bodies("/a") == [b'{"n":1}']  # one copy; frame 2 is not posted either
    assert fan.last_delivery is not None and fan.last_delivery.attempts == 2


def test_nothing_is_posted_once_the_deadline_has_passed():
    transport = Scripted()
    with deadline.running(deadline.Deadline.after(0.0)):
        report = engine(transport).send({"a": [{"n": 1}], "b": [{"n": 1}]})
    assert (report.sent, report.failed) == (0, 2)
    assert transport.requests == []


def test_each_request_waits_at_most_until_the_deadline():
    transport = Scripted()
    with deadline.running(deadline.Deadline.after(2.0)):
        engine(transport, read_timeout=5.0).send({"a": [{"n": 1}]})
    (timeout,) = transport.timeouts
    assert 1.5 < timeout <= 2.0
    engine(transport, read_timeout=5.0).send({"a": [{"n": 1}]})  # no deadline: the read timeout
    assert transport.timeouts[-1] == 5.0


def test_a_retry_whose_backoff_would_pass_the_deadline_is_not_made():
    sleeps: list[float] = []
    transport = Scripted({"a": [500, 200]})
    fan = engine(transport, sleeps=sleeps, backoff_base_seconds=10.0, backoff_cap_seconds=10.0)
    with deadline.running(deadline.Deadline.after(3.0)):
        report = fan.send({"a": [{"n": 1}]})
    assert report.failed == 1
    assert sleeps == []  # a 5 s wait would end after the deadline
    assert len(transport.bodies("/a")) == 1


def test_backoff_grows_and_is_capped():
    sleeps: list[float] = []
    transport = Scripted({"a": [500] * 6})
    fan = engine(
        transport, sleeps=sleeps, max_attempts=6, backoff_base_seconds=0.1, backoff_cap_seconds=0.5
    )
    assert fan.send({"a": [{"n": 1}]}).failed == 1
    assert sleeps == [0.05, 0.1, 0.2, 0.25, 0.25]


def test_other_client_errors_fail_that_connection_only_without_retry():
    transport = Scripted({"bad": [(403, "ForbiddenException")]})
    report = engine(transport).send({"bad": [{"n": 1}], "ok": [{"n": 1}]})
    assert (report.sent, report.failed) == (1, 1)
    assert len(transport.bodies("/bad")) == 1


def test_a_bug_in_one_post_does_not_stop_the_others():
    transport = Scripted({"a": [RuntimeError("bug")]})
    report = engine(transport).send({"a": [{"n": 1}], "b": [{"n": 1}], "c": [{"n": 1}]})
    assert (report.sent, report.failed) == (2, 1)


def test_each_distinct_frame_is_encoded_once_and_its_bytes_shared(monkeypatch):
    from chat import frames  # noqa: PLC0415

    calls: list[object] = []

    def counting(frame):
        calls.append(frame)
        return frames.encode(frame)

    monkeypatch.setattr("chat.fanout.encode", counting)
    transport = Scripted()
    notice = {"systemMessage": "x joined"}
    theirs = [notice]
    deliveries: dict[str, list[dict[str, Any]]] = {f"m{i}": theirs for i in range(50)}
    deliveries["me"] = [{"members": ["x"]}, notice]
    engine(transport, concurrency=4).send(deliveries)
    assert len(calls) == 2  # the notice once, the member list once
    bodies = {id(body) for _, path, body, _ in transport.requests if not path.endswith("/me")}
    assert len(bodies) == 1  # one bytes object, shared by all 50 posts


def test_no_more_than_concurrency_posts_are_in_flight():
    transport = Scripted(hold=0.01)
    fan = engine(transport, concurrency=5)
    report = fan.send({f"c{i}": [{"n": 1}, {"n": 2}] for i in range(40)})
    assert report.sent == 40
    assert transport.max_in_flight == 5
    fan.shutdown()
    assert transport.closed


def test_order_per_connection_holds_under_concurrency():
    transport = Scripted(hold=0.001)
    frames = [{"n": n} for n in range(6)]
    engine(transport, concurrency=8).send({f"c{i}": frames for i in range(30)})
    for i in range(30):
        assert transport.bodies(f"/c{i}") == [f'{{"n":{n}}}'.encode() for n in range(6)]


def test_an_empty_delivery_posts_nothing():
    transport = Scripted()
    report = engine(transport).send({})
    assert (report.sent, report.gone, report.failed) == (0, frozenset(), 0)
    assert transport.requests == []


def test_requests_are_signed_with_sigv4_and_the_session_token():
    transport = Scripted()
    engine(transport).send({"a": [{"n": 1}]})
    (_, _, _, headers) = transport.requests[0]
    assert (
        headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        and "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    )
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in headers["Authorization"]
    assert len(headers["X-Amz-Date"]) == 16 and headers["X-Amz-Date"].endswith("Z")
    assert headers["X-Amz-Security-Token"] == "session-token"
    assert headers["Host"] == "abc123.execute-api.eu-west-1.amazonaws.com"
    assert headers["amz-sdk-request"] == "attempt=1; max=3"


def test_without_a_session_token_no_token_header_is_sent():
    transport = Scripted()
    engine(transport, token=None).send({"a": [{"n": 1}]})
    headers = transport.requests[0][3]
    assert "X-Amz-Security-Token" not in headers
    assert "SignedHeaders=host;x-amz-date," in headers["Authorization"]


def test_the_signature_is_the_one_boto3_computes_for_the_same_request(monkeypatch):
    fixed = datetime.datetime(2026, 11, 26, 12, 0, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: fixed)
    transport = Scripted()
    engine(transport).send({"abc=": [{"n": 1}]})
    ours = transport.requests[0][3]["Authorization"]

    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=URL,
        region_name="eu-west-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        aws_session_token="session-token",
    )
    seen: dict[str, str] = {}

    def capture(request, **_):
        seen["auth"] = request.headers["Authorization"].decode()
        raise _StopError

    client.meta.events.register("before-send", capture)
    with pytest.raises(_StopError):
        client.post_to_connection(ConnectionId="abc=", Data=b'{"n":1}')
    assert ours == seen["auth"]


class _StopError(Exception):
    pass


def test_refreshed_credentials_are_read_at_each_send():
    class Rotating:
        def __init__(self):
            self.key = "AKID1"

        def get_frozen_credentials(self):
            return Credentials(self.key, "secret", None).get_frozen_credentials()

    creds = Rotating()
    transport = Scripted()
    fan = FanoutEngine(URL, region="eu-west-1", credentials=creds, transport=transport)
    fan.send({"a": [{"n": 1}]})
    creds.key = "AKID2"
    fan.send({"a": [{"n": 1}]})
    keys = [h["Authorization"].split("Credential=")[1][:5] for *_, h in transport.requests]
    assert keys == ["AKID1", "AKID2"]


def test_is_gone_and_close():
    transport = Scripted({"dead": [410, 410], "live": [200, 204]})
    fan = engine(transport)
    assert fan.is_gone("dead") is True
    assert fan.is_gone("live") is False
    fan.close("dead")  # already gone: fine
    fan.close("live")
    methods = [(m, p.rsplit("/", 1)[-1]) for m, p, _, _ in transport.requests]
    assert methods == [("GET", "dead"), ("GET", "live"), ("DELETE", "dead"), ("DELETE", "live")]


def test_the_delivery_hook_gets_the_telemetry_figures():
    seen: list[dict[str, object]] = []
    transport = Scripted({"gone": [410], "bad": [(403, "")]})
    fan = FanoutEngine(
        URL,
        region="eu-west-1",
        credentials=Credentials("AK", "SK"),
        transport=transport,
        on_delivery=lambda **figures: seen.append(figures),
    )
    fan.send({"gone": [{"n": 1}], "bad": [{"n": 1}], "ok": [{"n": 1}, {"n": 2}]})
    (figures,) = seen
    assert figures["recipients"] == 3
    assert figures["posts"] == 2
    assert (figures["failures"], figures["gone"]) == (1, 1)
    assert len(figures["post_latencies_ms"]) == 4  # type: ignore[arg-type]


def test_a_url_that_is_not_http_is_refused():
    with pytest.raises(ValueError):
        FanoutEngine("ftp://x", region="r", credentials=Credentials("a", "b"))


def test_throttling_error_types_with_a_suffix_are_recognised():
    transport = Scripted({"a": [(429, "LimitExceededException:http://internal"), 200]})
    assert engine(transport).send({"a": [{"n": 1}]}).sent == 1


def test_the_signer_that_keeps_its_key_signs_exactly_as_botocore_on_each_day():
    from botocore.auth import SigV4Auth  # noqa: PLC0415
    from botocore.awsrequest import AWSRequest  # noqa: PLC0415
    from botocore.credentials import ReadOnlyCredentials  # noqa: PLC0415

    from chat.fanout import _SigV4Signer  # noqa: PLC0415

    creds = ReadOnlyCredentials("AKIDEXAMPLE", "secret", "token")
    ours = _SigV4Signer(creds, "execute-api", "eu-west-1")
    theirs = SigV4Auth(creds, "execute-api", "eu-west-1")
    request = AWSRequest(method="POST", url=URL + "/@connections/a", data=b"{}")
    for stamp in ("20261207T235959Z", "20261208T000001Z", "20261207T120000Z"):
        request.context["timestamp"] = stamp
        for text in ("AWS4-HMAC-SHA256\nfirst", "AWS4-HMAC-SHA256\nsecond"):
            assert ours.signature(text, request) == theirs.signature(text, request)
