"""Sharded fan-out (chat/sharding.py): how a big delivery is split, handed out and accounted for."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chat.frames import Frame
from chat.ports import DeliveryReport
from chat.sharding import (
    LambdaShardInvoker,
    ShardedNotifier,
    ShardFailedError,
    ShardNotRunError,
    decode_report,
    decode_request,
    encode_report,
    encode_request,
    split,
)
from tests.support.fakes import RecordingNotifier


class FakeWorkers:
    """Stands in for the worker function: decodes each request as the worker does and posts
    it through its own RecordingNotifier."""

    def __init__(self, gone: set[str] | None = None) -> None:
        self.notifier = RecordingNotifier(gone=set(gone or ()))
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        wire = json.loads(json.dumps(request))  # what crosses Lambda's Invoke API
        with self._lock:
            self.requests.append(wire)
        return encode_report(self.notifier.send(decode_request(wire)))


def room(n: int) -> dict[str, list[Frame]]:
    batch: list[Frame] = [{"event": "join", "name": "Zed"}, {"text": "hi", "seq": 7}]
    return {f"conn{i:05}=": batch for i in range(n)}


def test_a_delivery_within_the_shard_size_is_posted_here_and_invokes_nobody():
    local, workers = RecordingNotifier(), FakeWorkers()
    notifier = ShardedNotifier(local, workers, shard_size=10)
    report = notifier.send(room(10))
    assert report == DeliveryReport(sent=10, gone=frozenset(), failed=0)
    assert workers.requests == []
    assert len(local.inbox) == 10


def test_a_big_delivery_reaches_everyone_once_with_each_connections_frames_in_order():
    local, workers = RecordingNotifier(), FakeWorkers()
    deliveries = room(23)
    report = ShardedNotifier(local, workers, shard_size=5).send(deliveries)
    assert report == DeliveryReport(sent=23, gone=frozenset(), failed=0)
    # This invocation keeps the first shard; four workers take the other 18 recipients.
    assert sorted(local.inbox) == sorted(deliveries)[:5]
    assert len(workers.requests) == 4
    assert set(local.inbox).isdisjoint(workers.notifier.inbox)
    everyone = {**local.inbox, **workers.notifier.inbox}
    assert everyone == deliveries


def test_a_frame_shared_by_a_shard_crosses_the_wire_once():
    request = encode_request(room(50))
    assert len(request["fanout"]["frames"]) == 2
    assert all(positions == [0, 1] for _, positions in request["fanout"]["deliveries"])


def test_the_worker_rebuilds_shared_batches_as_one_list():
    decoded = decode_request(json.loads(json.dumps(encode_request(room(3)))))
    batches = list(decoded.values())
    assert batches[0] == room(1)["conn00000="]
    assert all(batch is batches[0] for batch in batches)


def test_connections_a_worker_found_gone_are_reported_to_the_caller():
    local, workers = RecordingNotifier(), FakeWorkers(gone={"conn00007=", "conn00011="})
    report = ShardedNotifier(local, workers, shard_size=4).send(room(12))
    assert report.gone == {"conn00007=", "conn00011="}
    assert report.sent == 10


def test_a_shard_no_worker_could_run_is_posted_here_instead():
    local = RecordingNotifier()

    def throttled(request: dict[str, Any]) -> dict[str, Any]:
        raise ShardNotRunError("TooManyRequestsException")

    report = ShardedNotifier(local, throttled, shard_size=4).send(room(10))
    assert report == DeliveryReport(sent=10, gone=frozenset(), failed=0)
    assert local.inbox == room(10)


def test_a_shard_whose_worker_failed_counts_as_failed_and_is_not_posted_twice():
    local = RecordingNotifier()

    def crashed(request: dict[str, Any]) -> dict[str, Any]:
        raise ShardFailedError("Unhandled")

    report = ShardedNotifier(local, crashed, shard_size=4).send(room(10))
    assert report == DeliveryReport(sent=4, gone=frozenset(), failed=6)
    assert sorted(local.inbox) == sorted(room(10))[:4]


@pytest.mark.parametrize(
    "answer",
    [None, [], {"sent": 4}, {"sent": 1, "gone": [], "failed": 0}, {"sent": 4, "gone": [1]}],
    ids=["null", "list", "partial", "does-not-add-up", "bad-gone"],
)
def test_a_worker_answer_that_does_not_account_for_its_shard_counts_as_failed(answer):
    with pytest.raises(ShardFailedError):
        decode_report(answer, recipients=4)
    report = ShardedNotifier(RecordingNotifier(), lambda _: answer, shard_size=4).send(room(8))
    assert report.failed == 4


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"fanout": {"v": 2, "frames": [], "deliveries": []}},
        {"fanout": {"v": 1, "frames": "x", "deliveries": []}},
        {"fanout": {"v": 1, "frames": [1], "deliveries": []}},
        {"fanout": {"v": 1, "frames": [{}], "deliveries": [["c", [1]]]}},
        {"fanout": {"v": 1, "frames": [{}], "deliveries": [["", [0]]]}},
        {"fanout": {"v": 1, "frames": [{}], "deliveries": [["c", [True]]]}},
        {"fanout": {"v": 1, "frames": [{}], "deliveries": [["c"]]}},
        "not an object",
    ],
    ids=[
        "empty",
        "other-version",
        "frames-not-list",
        "frame-not-object",
        "index-out-of-range",
        "empty-connection-id",
        "bool-index",
        "short-entry",
        "string",
    ],
)
def test_the_worker_refuses_a_request_that_is_not_one(event):
    with pytest.raises(ValueError):
        decode_request(event)


def test_shards_keep_the_deliveries_order_and_size():
    shards = split(room(11), 4)
    assert [len(s) for s in shards] == [4, 4, 3]
    assert [cid for s in shards for cid in s] == list(room(11))


def test_a_shard_size_below_one_is_refused():
    with pytest.raises(ValueError):
        ShardedNotifier(RecordingNotifier(), FakeWorkers(), shard_size=0)


# --- the Invoke API adapter, on a real botocore client with its answers stubbed ---------


def _client() -> Any:
    return boto3.client("lambda", region_name="us-east-1")


def _payload(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_the_invoker_returns_the_workers_answer():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": _payload(b'{"sent": 1, "gone": [], "failed": 0}')},
            {
                "FunctionName": "Worker",
                "InvocationType": "RequestResponse",
                "Payload": b'{"fanout":{"v":1}}',
            },
        )
        assert LambdaShardInvoker(client, "Worker")({"fanout": {"v": 1}}) == {
            "sent": 1,
            "gone": [],
            "failed": 0,
        }


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("TooManyRequestsException", 429, ShardNotRunError),
        ("ResourceNotFoundException", 404, ShardNotRunError),
        ("AccessDeniedException", 403, ShardNotRunError),
        ("RequestTooLargeException", 413, ShardNotRunError),
        ("ServiceException", 500, ShardFailedError),
    ],
)
def test_the_invoker_tells_a_worker_never_run_from_one_that_may_have_run(code, status, raised):
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", service_error_code=code, http_status_code=status)
        with pytest.raises(raised):
            LambdaShardInvoker(client, "Worker")({"fanout": {}})


def test_a_function_error_is_a_failed_shard():
    client = _client()
    body = b'{"errorMessage": "boom", "errorType": "ValueError"}'
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload(body)},
        )
        with pytest.raises(ShardFailedError, match="Unhandled"):
            LambdaShardInvoker(client, "Worker")({"fanout": {}})


# --- pacing: one broadcast stays within its share of the account's request rate ---------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(round(seconds, 6))


def test_shards_within_the_burst_start_at_once_and_later_ones_at_the_rate():
    notifier = ShardedNotifier(
        RecordingNotifier(), FakeWorkers(), shard_size=250, posts_per_second=5000
    )
    # A burst of 0.4 s at 5,000/s is 2,000 posts: the first eight shards of 250 start at once.
    assert [notifier.start_offset(250 * i) for i in range(1, 9)] == [0.0] * 8
    assert notifier.start_offset(2250) == pytest.approx(0.05)
    # The 100,000th post may go out after (100,000 - 2,000) / 5,000 s.
    assert notifier.start_offset(100_000) == pytest.approx(19.6)


def test_a_big_broadcast_waits_for_the_rate_before_each_late_shard():
    clock = FakeClock()
    workers = FakeWorkers()
    notifier = ShardedNotifier(
        RecordingNotifier(),
        workers,
        shard_size=10,
        posts_per_second=100,  # a burst of 40 posts
        clock=clock,
        sleep=clock.sleep,
        max_parallel=1,  # one worker thread: the shards go in order
    )
    report = notifier.send(room(70))
    assert report.sent == 70
    # Shards 2-4 (posts up to 40) start at once; 5, 6 and 7 wait 0.1, 0.2 and 0.3 s.
    assert clock.slept == [0.1, 0.2, 0.3]
    assert len(workers.requests) == 6


def test_a_rate_that_is_not_positive_is_refused():
    with pytest.raises(ValueError):
        ShardedNotifier(RecordingNotifier(), FakeWorkers(), shard_size=5, posts_per_second=0)
