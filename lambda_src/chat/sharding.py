"""Sharded fan-out: a broadcast too big for one invocation is split among worker functions.

Above `shard_size` recipients, `ShardedNotifier` posts the first shard itself and invokes
the fan-out worker function once per other shard, synchronously and paced, all under the
invocation's deadline. Why, the clock, the timeouts and the wire format between the two:
docs/architecture.md, "Fan-out" and "The fan-out's clock".
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from chat import aws_errors, deadline, telemetry
from chat.deadline import Deadline
from chat.ports import DeliveryReport, Frame, Notifier

log = logging.getLogger("chat.sharding")

WIRE_VERSION = 1
BURST_SECONDS = 0.4  # shards start at once while they fit this much of the rate
# What one invocation with a whole vCPU posts a second: docs/performance.md measured 3,818
# over HTTPS (a 100,000-member broadcast from one invocation, 20 ms a post, k = 192),
# rounded down (tests/infra/test_docs_figures.py keeps this below the measured rate).
# It sizes how long a shard's posts take, here (whether a shard can still start) and in
# infra/config.py (whether a full room fits the timeouts); a test keeps the two equal.
POSTS_PER_SECOND_PER_INVOCATION = 3500.0
# A throttled Invoke is tried again once, after a random wait of up to this (full jitter).
THROTTLE_BACKOFF_SECONDS = 0.5
Deliveries = Mapping[str, Sequence[Frame]]


class ShardNotRunError(Exception):
    """The worker was never run (missing, refused, not connected): the shard is still to post."""


class ShardThrottledError(ShardNotRunError):
    """Lambda refused the invocation for now (429, TooManyRequestsException): worth one retry."""


class ShardFailedError(Exception):
    """The worker ran and failed, or its end is unknown: some of its posts may have gone out."""


# Runs a worker on a request and returns its response (both the JSON objects above).
ShardInvoker = Callable[[dict[str, Any]], dict[str, Any]]


def split(deliveries: Deliveries, shard_size: int) -> list[dict[str, Sequence[Frame]]]:
    """The deliveries in shards of at most `shard_size` connections, in their order."""
    items = list(deliveries.items())
    return [dict(items[i : i + shard_size]) for i in range(0, len(items), shard_size)]


def encode_request(shard: Deliveries) -> dict[str, Any]:
    """A shard as the worker's request: each distinct frame (by identity) written once."""
    index: dict[int, int] = {}
    frames: list[Frame] = []
    deliveries: list[list[Any]] = []
    for connection_id, batch in shard.items():
        positions = []
        for frame in batch:
            position = index.get(id(frame))
            if position is None:
                position = index[id(frame)] = len(frames)
                frames.append(frame)
            positions.append(position)
        deliveries.append([connection_id, positions])
    return {"fanout": {"v": WIRE_VERSION, "frames": frames, "deliveries": deliveries}}


def decode_request(event: object) -> dict[str, list[Frame]]:
    """The deliveries a worker's request asks for. Raises ValueError on anything else.

    Recipients that share a batch share one list (and each frame one object), so the
    engine encodes every distinct frame once.
    """
    body = event.get("fanout") if isinstance(event, dict) else None
    if not isinstance(body, dict) or body.get("v") != WIRE_VERSION:
        raise ValueError(f"not a version {WIRE_VERSION} fan-out request")
    frames = body.get("frames")
    deliveries = body.get("deliveries")
    if not isinstance(frames, list) or not isinstance(deliveries, list):
        raise ValueError("a fan-out request needs frames and deliveries lists")
    if not all(isinstance(frame, dict) for frame in frames):
        raise ValueError("every frame must be a JSON object")
    batches: dict[tuple[int, ...], list[Frame]] = {}
    out: dict[str, list[Frame]] = {}
    for entry in deliveries:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or not entry[0]
            or not isinstance(entry[1], list)
            or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(frames)
                for i in entry[1]
            )
        ):
            raise ValueError("each delivery must be [connection id, [frame index, ...]]")
        key = tuple(entry[1])
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = [frames[i] for i in key]
        out[entry[0]] = batch
    return out


def encode_report(report: DeliveryReport) -> dict[str, Any]:
    return {"sent": report.sent, "gone": sorted(report.gone), "failed": report.failed}


def decode_report(response: object, recipients: int) -> DeliveryReport:
    """A worker's response as a report. Raises ShardFailedError when it is not one."""
    if not isinstance(response, dict):
        raise ShardFailedError(f"the worker answered {type(response).__name__}, not a report")
    sent, gone, failed = response.get("sent"), response.get("gone"), response.get("failed")
    if (
        not isinstance(sent, int)
        or not isinstance(failed, int)
        or not isinstance(gone, list)
        or not all(isinstance(cid, str) for cid in gone)
        or sent + failed + len(gone) != recipients
    ):
        raise ShardFailedError("the worker's report does not account for its shard")
    return DeliveryReport(sent=sent, gone=frozenset(gone), failed=failed)


def merge(reports: Sequence[DeliveryReport]) -> DeliveryReport:
    return DeliveryReport(
        sent=sum(r.sent for r in reports),
        gone=frozenset().union(*(r.gone for r in reports)),
        failed=sum(r.failed for r in reports),
    )


def posts(shard: Deliveries) -> int:
    """The posts a shard makes: one per frame per recipient."""
    return sum(len(batch) for batch in shard.values())


def _failed(shard: Deliveries) -> DeliveryReport:
    return DeliveryReport(sent=0, gone=frozenset(), failed=len(shard))


# How a shard ended: posted by a worker, taken back and posted here, failed (the worker ran
# and failed, or its end is unknown), or late (not started, or given up, at the deadline).
WORKER, LOCAL, FAILED, LATE = "worker", "local", "failed", "late"


class ShardedNotifier:
    """A Notifier that posts small deliveries itself and shards big ones among workers.

    `local` posts this invocation's own shard (and every shard a worker could not take);
    `invoke` runs one worker; at most `max_parallel` workers run at once for one send.
    `worker_posts_per_second` is how fast one worker posts (it sizes the time a shard
    needs); `clock`, `sleep` and `jitter` (a random number in [0, 1)) are for tests.
    """

    def __init__(
        self,
        local: Notifier,
        invoke: ShardInvoker,
        *,
        shard_size: int,
        max_parallel: int = 64,
        posts_per_second: float = 5000.0,
        worker_posts_per_second: float = POSTS_PER_SECOND_PER_INVOCATION,
        throttle_backoff: float = THROTTLE_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        if posts_per_second <= 0 or worker_posts_per_second <= 0:
            raise ValueError("posts_per_second must be positive")
        self._local = local
        self._invoke = invoke
        self._shard_size = shard_size
        self._max_parallel = max(1, max_parallel)
        self._rate = posts_per_second
        self._burst = posts_per_second * BURST_SECONDS
        self._worker_rate = worker_posts_per_second
        self._backoff = max(0.0, throttle_backoff)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def local(self) -> Notifier:
        return self._local

    def send(self, deliveries: Deliveries) -> DeliveryReport:
        if len(deliveries) <= self._shard_size:
            return self._local.send(deliveries)
        started = time.perf_counter()
        until = deadline.current()  # read here: the shard threads do not inherit it
        own, *others = split(deliveries, self._shard_size)
        begin = self._clock()
        scheduled: list[tuple[Deliveries, Future[tuple[DeliveryReport, str]] | None]] = []
        total = posts(own)
        for shard in others:
            total += posts(shard)
            at = begin + self.start_offset(total)
            if self._fits(until, at - begin, shard):
                scheduled.append(
                    (shard, self._invoking_threads().submit(self._remote, shard, at, until))
                )
            else:  # it could not be posted before the deadline: never started
                scheduled.append((shard, None))
        reports = [self._local.send(own)]  # this thread's deadline is `until` already
        outcomes = [self._outcome(shard, future, until) for shard, future in scheduled]
        reports.extend(report for report, _ in outcomes)
        count = {how: sum(1 for _, h in outcomes if h == how) for how in (LOCAL, FAILED, LATE)}
        telemetry.record_shards(
            shards=len(others) - count[LATE],
            taken_back=count[LOCAL],
            failed=count[FAILED] + count[LATE],
        )
        log.log(
            logging.WARNING if count[LATE] else logging.INFO,
            "sharded fan-out",
            extra={
                "recipients": len(deliveries),
                "posts": total,
                "shards": len(others) + 1,
                "takenBack": count[LOCAL],
                "failedShards": count[FAILED],
                "lateShards": count[LATE],
                "durationMs": round(_ms(started), 1),
            },
        )
        return merge(reports)

    def is_gone(self, connection_id: str) -> bool:
        return self._local.is_gone(connection_id)

    def close(self, connection_id: str) -> None:
        self._local.close(connection_id)

    def _invoking_threads(self) -> ThreadPoolExecutor:
        """The invoking threads, started once and kept for the life of the environment."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._max_parallel, thread_name_prefix="shard"
                )
            return self._pool

    def start_offset(self, posts: int) -> float:
        """Seconds after the broadcast began when the shard that brings its posts to
        `posts` may start: at once within the burst, then at the rate."""
        return max(0.0, (posts - self._burst) / self._rate)

    def needs(self, shard: Deliveries) -> float:
        """Seconds a worker needs to post `shard`, at one invocation's rate."""
        return posts(shard) / self._worker_rate

    def _fits(self, until: Deadline, delay: float, shard: Deliveries) -> bool:
        """Whether `shard`, started `delay` seconds from now, is posted before `until`."""
        return max(0.0, delay) + self.needs(shard) <= until.remaining()

    def _outcome(
        self,
        shard: Deliveries,
        future: Future[tuple[DeliveryReport, str]] | None,
        until: Deadline,
    ) -> tuple[DeliveryReport, str]:
        """A shard's report, waiting for it at most until the deadline."""
        if future is None:
            log.warning(
                "a shard could not be posted before the deadline; not started",
                extra={"recipients": len(shard), "posts": posts(shard)},
            )
            return _failed(shard), LATE
        try:
            return future.result(timeout=until.remaining() if until.bounded else None)
        except TimeoutError:
            future.cancel()  # not started yet: never will be
            log.error(
                "a shard did not finish before the deadline; it counts as failed",
                extra={"recipients": len(shard)},
            )
            return _failed(shard), LATE

    def _remote(self, shard: Deliveries, at: float, until: Deadline) -> tuple[DeliveryReport, str]:
        """One shard through a worker, in a pool thread, under the broadcast's deadline."""
        with deadline.running(until):
            try:
                return self._through_worker(shard, at, until)
            except Exception:  # a bug here must not lose the other shards' reports
                log.exception("a fan-out shard raised", extra={"recipients": len(shard)})
                return _failed(shard), FAILED

    def _through_worker(
        self, shard: Deliveries, at: float, until: Deadline
    ) -> tuple[DeliveryReport, str]:
        wait = at - self._clock()
        if wait > 0:
            self._sleep(until.cap(wait))
        if not self._fits(until, 0.0, shard):  # queued behind other shards, or slept late
            log.warning(
                "a shard could no longer be posted before the deadline; not started",
                extra={"recipients": len(shard), "posts": posts(shard)},
            )
            return _failed(shard), LATE
        request = encode_request(shard)
        try:
            try:
                response = self._invoke(request)
            except ShardThrottledError as error:
                backoff = self._jitter() * self._backoff  # full jitter
                if not self._fits(until, backoff, shard):
                    raise
                log.info(
                    "a fan-out worker was throttled; trying once more",
                    extra={"recipients": len(shard), "error": str(error), "backoffS": backoff},
                )
                self._sleep(backoff)
                response = self._invoke(request)
            return decode_report(response, len(shard)), WORKER
        except ShardNotRunError as error:
            if until.expired():
                log.error(
                    "a fan-out worker could not be run, and the deadline has passed",
                    extra={"recipients": len(shard), "error": str(error)},
                )
                return _failed(shard), LATE
            log.warning(
                "a fan-out worker could not be run; posting its shard here",
                extra={"recipients": len(shard), "error": str(error)},
            )
            return self._local.send(shard), LOCAL
        except ShardFailedError as error:
            log.error(
                "a fan-out worker failed; its shard counts as failed",
                extra={"recipients": len(shard), "error": str(error)},
            )
            return _failed(shard), FAILED


class LambdaShardInvoker:
    """Runs the worker function through Lambda's Invoke API (RequestResponse).

    `client` is a boto3 `lambda` client made with retries off (a retried invocation that
    had already run would post twice; ShardedNotifier retries a throttled one itself) and a
    read timeout just above the worker's own timeout (wiring.py, WORKER_READ_MARGIN_S).
    """

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    @property
    def client(self) -> Any:
        return self._client

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import (  # noqa: PLC0415 (imported with boto3 anyway)
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        try:
            response = self._client.invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode(),
            )
        except ClientError as error:
            code, name = aws_errors.error_code(error), aws_errors.error_name(error)
            # Throttled or not run: Lambda did not run the worker (Invoke API reference).
            status = aws_errors.http_status(error)
            if aws_errors.is_throttled(status, code, aws_errors.LAMBDA_THROTTLED_CODES):
                raise ShardThrottledError(name) from error
            if code in aws_errors.LAMBDA_NOT_RUN_CODES:
                raise ShardNotRunError(name) from error
            raise ShardFailedError(name) from error
        # Never connected (refused, unreachable, or no connection within connect_timeout;
        # ConnectTimeoutError is not an EndpointConnectionError): the request never went out.
        except (ConnectTimeoutError, EndpointConnectionError) as error:
            raise ShardNotRunError(type(error).__name__) from error
        # The request went out: the worker may have run.
        except (ReadTimeoutError, ConnectionClosedError) as error:
            raise ShardFailedError(type(error).__name__) from error
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise ShardFailedError(f"{response['FunctionError']}: {payload[:300]!r}")
        try:
            answer: dict[str, Any] = json.loads(payload)
        except ValueError as error:
            raise ShardFailedError("the worker's answer is not JSON") from error
        return answer


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
