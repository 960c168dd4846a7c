"""Sharded fan-out (chat/sharding.py): how a big delivery is split, handed out and accounted for."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chat import deadline
from chat.deadline import Deadline
from chat.frames import Frame
from chat.ports import DeliveryReport
from chat.sharding import (
    LambdaShardInvoker,
    ShardedNotifier,
    ShardFailedError,
    ShardNotRunError,
    ShardThrottledError,
    decode_report,
    decode_request,
    encode_report,
    encode_request,
    posts,
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
        ("TooManyRequestsException", 429, ShardThrottledError),
        ("ThrottledWithoutACode", 429, ShardThrottledError),
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


class Unreachable:
    """A lambda client whose Invoke raises `error` before any answer."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def invoke(self, **request: Any) -> Any:
        raise self.error


NEVER_SENT = [
    ConnectTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
    EndpointConnectionError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
]
MAYBE_RAN = [
    ReadTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
    ConnectionClosedError(endpoint_url="https://lambda.us-east-1.amazonaws.com"),
]


@pytest.mark.parametrize("error", NEVER_SENT, ids=lambda e: type(e).__name__)
def test_a_connection_to_lambda_never_made_means_the_worker_never_ran(error):
    with pytest.raises(ShardNotRunError) as raised:
        LambdaShardInvoker(Unreachable(error), "Worker")({"fanout": {}})
    assert not isinstance(raised.value, ShardThrottledError)  # posted here, not retried
    local = RecordingNotifier()
    invoker = LambdaShardInvoker(Unreachable(error), "Worker")
    report = ShardedNotifier(local, invoker, shard_size=4).send(room(8))
    assert report == DeliveryReport(sent=8, gone=frozenset(), failed=0)
    assert local.inbox == room(8)


@pytest.mark.parametrize("error", MAYBE_RAN, ids=lambda e: type(e).__name__)
def test_a_request_that_went_out_but_got_no_answer_may_have_run(error):
    with pytest.raises(ShardFailedError):
        LambdaShardInvoker(Unreachable(error), "Worker")({"fanout": {}})
    local = RecordingNotifier()
    invoker = LambdaShardInvoker(Unreachable(error), "Worker")
    report = ShardedNotifier(local, invoker, shard_size=4).send(room(8))
    assert report == DeliveryReport(sent=4, gone=frozenset(), failed=4)


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


def one_frame_room(n: int) -> dict[str, list[Frame]]:
    batch: list[Frame] = [{"text": "hi", "seq": 7}]
    return {f"conn{i:05}=": batch for i in range(n)}


def paced(
    clock: FakeClock, workers: Any, local: RecordingNotifier | None = None, **options: Any
) -> ShardedNotifier:
    return ShardedNotifier(
        local or RecordingNotifier(),
        workers,
        shard_size=10,
        posts_per_second=100,  # a burst of 40 posts
        clock=clock,
        sleep=clock.sleep,
        max_parallel=1,  # one worker thread: the shards go in order
        **options,
    )


def test_a_big_broadcast_waits_for_the_rate_before_each_late_shard():
    clock = FakeClock()
    workers = FakeWorkers()
    report = paced(clock, workers).send(one_frame_room(70))
    assert report.sent == 70
    # Shards 2-4 (posts up to 40) start at once; 5, 6 and 7 wait 0.1, 0.2 and 0.3 s.
    assert clock.slept == [0.1, 0.2, 0.3]
    assert len(workers.requests) == 6


def test_pacing_counts_posts_not_recipients():
    clock = FakeClock()
    workers = FakeWorkers()
    # Two frames each: every shard of 10 recipients is 20 posts.
    report = paced(clock, workers).send(room(70))
    assert report.sent == 70
    # Posts after each shard: 40 (at once), then 60, 80, 100, 120, 140.
    assert clock.slept == [0.2, 0.4, 0.6, 0.8, 1.0]


def test_the_posts_of_a_shard_are_its_frames():
    assert posts(room(3)) == 6
    assert posts(one_frame_room(3)) == 3
    assert posts({}) == 0


# --- the clock: one deadline for the whole broadcast ------------------------------------


class AdvancingClock(FakeClock):
    """A fake clock that sleeping moves on."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        with self.lock:
            self.now += seconds


def test_a_shard_that_cannot_be_posted_before_the_deadline_is_never_started(monkeypatch):
    clock = FakeClock()
    workers = FakeWorkers()
    recorded: list[dict[str, int]] = []
    monkeypatch.setattr(
        "chat.sharding.telemetry.record_shards", lambda **counts: recorded.append(counts)
    )
    local = RecordingNotifier()
    notifier = paced(clock, workers, local, worker_posts_per_second=100)  # 0.1 s a shard
    # Starts at 0, 0, 0, 0.1, 0.2, 0.3 s; each shard needs 0.1 s; 0.25 s are left.
    with deadline.running(Deadline(clock.now + 0.25, clock)):
        report = notifier.send(one_frame_room(70))
    assert report == DeliveryReport(sent=50, gone=frozenset(), failed=20)
    assert len(workers.requests) == 4
    assert clock.slept == [0.1]  # the late shards never waited either
    late = sorted(one_frame_room(70))[50:]
    assert not set(late) & (set(workers.notifier.inbox) | set(local.inbox))
    assert recorded == [{"shards": 4, "taken_back": 0, "failed": 2}]


def test_a_shard_queued_until_it_can_no_longer_finish_is_not_started():
    clock = FakeClock()
    invoker = Throttled(times=0, clock=clock, cost=0.2)  # each worker takes 0.2 s
    notifier = ShardedNotifier(
        RecordingNotifier(),
        invoker,
        shard_size=4,
        max_parallel=1,  # the second shard waits for the first
        clock=clock,
        sleep=clock.sleep,
        worker_posts_per_second=8 / 0.15,  # a shard of 4 x 2 posts needs 0.15 s
    )
    with deadline.running(Deadline(clock.now + 0.3, clock)):
        report = notifier.send(room(12))
    # Both fit when the broadcast began; after the first, 0.1 s are left: too little.
    assert invoker.calls == 1
    assert report == DeliveryReport(sent=8, gone=frozenset(), failed=4)


def test_no_wait_outlasts_the_deadline():
    clock = AdvancingClock()
    workers = FakeWorkers()
    notifier = paced(clock, workers, worker_posts_per_second=1e9)
    # With no time needed to post, every shard fits: the waits stop at the deadline.
    with deadline.running(Deadline(clock.now + 0.15, clock)):
        report = notifier.send(one_frame_room(70))
    assert sum(clock.slept) <= 0.15 + 1e-9
    assert report.sent + report.failed == 70
    assert report.failed > 0


def test_waiting_for_a_worker_ends_at_the_deadline_and_its_shard_counts_as_failed():
    release = threading.Event()

    def stuck(request: dict[str, Any]) -> dict[str, Any]:
        release.wait(10)
        return encode_report(DeliveryReport(sent=4, gone=frozenset(), failed=0))

    notifier = ShardedNotifier(RecordingNotifier(), stuck, shard_size=4)
    started = time.monotonic()
    try:
        with deadline.running(Deadline.after(0.3)):
            report = notifier.send(room(8))
        waited = time.monotonic() - started
    finally:
        release.set()
    assert report == DeliveryReport(sent=4, gone=frozenset(), failed=4)
    assert 0.25 <= waited < 2.0


class DeadlineRecorder(RecordingNotifier):
    """Records the deadline current in the thread that calls send()."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Deadline] = []

    def send(self, deliveries: Any) -> DeliveryReport:
        self.seen.append(deadline.current())
        return super().send(deliveries)


def test_the_own_shard_and_a_shard_taken_back_post_under_the_broadcasts_deadline():
    local = DeadlineRecorder()

    def missing(request: dict[str, Any]) -> dict[str, Any]:
        raise ShardNotRunError("ResourceNotFoundException")

    until = Deadline.after(30)
    with deadline.running(until):
        report = ShardedNotifier(local, missing, shard_size=4).send(room(8))
    assert report.sent == 8
    # One send in this thread, one in a pool thread: both under the same deadline.
    assert local.seen == [until, until]
    assert deadline.current() is not until  # and it does not leak out of the block


class Throttled:
    """An invoker that is throttled `times` times, then runs the shard."""

    def __init__(self, times: int, clock: FakeClock | None = None, cost: float = 0.0) -> None:
        self.times = times
        self.calls = 0
        self.workers = FakeWorkers()
        self.clock = clock
        self.cost = cost

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.cost
        if self.calls <= self.times:
            raise ShardThrottledError("TooManyRequestsException")
        return self.workers(request)


def test_a_throttled_worker_is_tried_once_more_after_a_jittered_backoff():
    clock = FakeClock()
    invoker = Throttled(times=1)
    local = RecordingNotifier()
    notifier = ShardedNotifier(
        local,
        invoker,
        shard_size=4,
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.5,
        throttle_backoff=0.5,
    )
    report = notifier.send(room(8))
    assert report.sent == 8
    assert invoker.calls == 2
    assert clock.slept == [0.25]  # full jitter: a random share of the backoff
    assert len(invoker.workers.notifier.inbox) == 4  # the worker posted its shard
    assert len(local.inbox) == 4


def test_a_worker_throttled_twice_has_its_shard_posted_here():
    invoker = Throttled(times=2)
    local = RecordingNotifier()
    notifier = ShardedNotifier(local, invoker, shard_size=4, sleep=lambda s: None)
    assert notifier.send(room(8)) == DeliveryReport(sent=8, gone=frozenset(), failed=0)
    assert invoker.calls == 2
    assert local.inbox == room(8)


def test_a_throttled_worker_is_not_retried_when_the_backoff_would_pass_the_deadline():
    clock = FakeClock()
    invoker = Throttled(times=1)
    local = RecordingNotifier()
    notifier = ShardedNotifier(
        local,
        invoker,
        shard_size=4,
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 0.99,
        throttle_backoff=10.0,
        worker_posts_per_second=1e9,
    )
    with deadline.running(Deadline(clock.now + 5, clock)):
        report = notifier.send(room(8))
    assert invoker.calls == 1 and clock.slept == []
    assert report.sent == 8 and local.inbox == room(8)  # still in time to post it here


def test_a_throttled_shard_fails_when_the_deadline_has_passed():
    clock = FakeClock()
    invoker = Throttled(times=5, clock=clock, cost=1.0)  # each Invoke takes 1 s
    local = RecordingNotifier()
    notifier = ShardedNotifier(
        local, invoker, shard_size=4, clock=clock, sleep=clock.sleep, worker_posts_per_second=1e9
    )
    with deadline.running(Deadline(clock.now + 0.5, clock)):
        report = notifier.send(room(8))
    assert report == DeliveryReport(sent=4, gone=frozenset(), failed=4)
    assert invoker.calls == 1
    assert sorted(local.inbox) == sorted(room(8))[:4]


def test_a_rate_that_is_not_positive_is_refused():
    with pytest.raises(ValueError):
        ShardedNotifier(RecordingNotifier(), FakeWorkers(), shard_size=5, posts_per_second=0)
