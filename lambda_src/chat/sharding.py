"""Sharded fan-out: a broadcast too big for one invocation is split among worker functions.

One invocation posts about 5,700 frames a second on one vCPU (docs/performance.md), and far
fewer at small memory sizes, while API Gateway allows 10,000 requests a second per account.
Above `shard_size` recipients, `ShardedNotifier` keeps the first shard for itself and hands
every other shard to the fan-out worker function (`handler.fanout_handler`, the same code),
invoked in parallel. Each worker posts its shard with its own vCPU and answers with what it
saw, so the broadcast ends when its slowest shard does.

The workers are invoked synchronously (RequestResponse), each from its own thread, and the
broadcast waits for all of them. That keeps protocol v1.1's ordering guarantee: the sender's
acknowledgement still goes out only after every other recipient's post has completed
(docs/protocol.md, "Delivery guarantees"). An asynchronous (Event) invocation could not
report its end, and Lambda retries a failed one, which would post its frames twice.

The shards are paced so that one broadcast stays within `posts_per_second` (default 5,000,
half of API Gateway's 10,000 requests a second for the whole account, which inbound
messages and every other API share): shards start at once while they fit a burst of 0.4 s
of that rate (2,000 posts), and each later shard starts when the rate allows its posts.
Without pacing, dozens of workers at once would run into 429s faster than three short
retries can absorb. The pacing is per broadcast; concurrent broadcasts are bounded by the
routes' stage throttles.

A connection's frames always travel in one shard, in order. When the worker could not be
run at all (throttled, missing, not allowed), this invocation posts the shard itself; when
the worker ran and failed, its shard counts as failed (some posts may have gone out, so
posting it again would duplicate them): those members recover the message from the room's
history (docs/reliability.md).

The wire format between the two is versioned JSON:

    request  {"fanout": {"v": 1, "frames": [frame, ...], "deliveries": [[cid, [i, ...]], ...]}}
    response {"sent": n, "gone": [cid, ...], "failed": n}

where `i` indexes `frames`; a frame shared by many recipients is written once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chat import telemetry
from chat.frames import Frame
from chat.ports import DeliveryReport, Notifier

log = logging.getLogger("chat.sharding")

WIRE_VERSION = 1
BURST_SECONDS = 0.4  # shards start at once while they fit this much of the rate
Deliveries = Mapping[str, Sequence[Frame]]


class ShardNotRunError(Exception):
    """The worker was never run (throttled, missing, refused): the shard is still to post."""


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


class ShardedNotifier:
    """A Notifier that posts small deliveries itself and shards big ones among workers.

    `local` posts this invocation's own shard (and every shard a worker could not take);
    `invoke` runs one worker; at most `max_parallel` workers run at once for one send.
    """

    def __init__(
        self,
        local: Notifier,
        invoke: ShardInvoker,
        *,
        shard_size: int,
        max_parallel: int = 64,
        posts_per_second: float = 5000.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if shard_size < 1:
            raise ValueError("shard_size must be at least 1")
        if posts_per_second <= 0:
            raise ValueError("posts_per_second must be positive")
        self._local = local
        self._invoke = invoke
        self._shard_size = shard_size
        self._max_parallel = max(1, max_parallel)
        self._rate = posts_per_second
        self._burst = posts_per_second * BURST_SECONDS
        self._clock = clock
        self._sleep = sleep
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def local(self) -> Notifier:
        return self._local

    def send(self, deliveries: Deliveries) -> DeliveryReport:
        if len(deliveries) <= self._shard_size:
            return self._local.send(deliveries)
        started = time.perf_counter()
        own, *others = split(deliveries, self._shard_size)
        begin = self._clock()
        futures = []
        posts = len(own)
        for shard in others:
            posts += len(shard)
            at = begin + self.start_offset(posts)
            futures.append(self._workers().submit(self._remote, shard, at))
        reports = [self._local.send(own)]
        outcomes = [future.result() for future in futures]
        reports.extend(report for report, _ in outcomes)
        taken_back = sum(1 for _, how in outcomes if how == "local")
        failed = sum(1 for _, how in outcomes if how == "failed")
        telemetry.record_shards(shards=len(others), taken_back=taken_back, failed=failed)
        log.info(
            "sharded fan-out",
            extra={
                "recipients": len(deliveries),
                "shards": len(others) + 1,
                "takenBack": taken_back,
                "failedShards": failed,
                "durationMs": round(_ms(started), 1),
            },
        )
        return merge(reports)

    def is_gone(self, connection_id: str) -> bool:
        return self._local.is_gone(connection_id)

    def close(self, connection_id: str) -> None:
        self._local.close(connection_id)

    def _workers(self) -> ThreadPoolExecutor:
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

    def _remote(self, shard: Deliveries, at: float) -> tuple[DeliveryReport, str]:
        """One shard through a worker: (its report, "worker" | "local" | "failed")."""
        wait = at - self._clock()
        if wait > 0:
            self._sleep(wait)
        try:
            response = self._invoke(encode_request(shard))
            return decode_report(response, len(shard)), "worker"
        except ShardNotRunError as error:
            log.warning(
                "a fan-out worker could not be run; posting its shard here",
                extra={"recipients": len(shard), "error": str(error)},
            )
            return self._local.send(shard), "local"
        except ShardFailedError as error:
            log.error(
                "a fan-out worker failed; its shard counts as failed",
                extra={"recipients": len(shard), "error": str(error)},
            )
        except Exception:  # a bug here must not lose the other shards' reports
            log.exception("a fan-out shard raised", extra={"recipients": len(shard)})
        return DeliveryReport(sent=0, gone=frozenset(), failed=len(shard)), "failed"


class LambdaShardInvoker:
    """Runs the worker function through Lambda's Invoke API (RequestResponse).

    `client` is a boto3 `lambda` client made with retries off (a retried invocation that
    had already run would post twice) and a read timeout above the worker's own timeout.
    """

    # Errors that mean Lambda did not run the function (Invoke API reference).
    NOT_RUN = frozenset(
        {
            "TooManyRequestsException",
            "ResourceNotFoundException",
            "ResourceConflictException",
            "ResourceNotReadyException",
            "AccessDeniedException",
            "RequestTooLargeException",
            "InvalidRequestContentException",
            "EC2ThrottledException",
        }
    )

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import (  # noqa: PLC0415 (imported with boto3 anyway)
            ClientError,
            ConnectionClosedError,
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
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in self.NOT_RUN or status == 429:
                raise ShardNotRunError(code or f"HTTP {status}") from error
            raise ShardFailedError(code or f"HTTP {status}") from error
        except EndpointConnectionError as error:  # never connected: nothing ran
            raise ShardNotRunError(type(error).__name__) from error
        except (ReadTimeoutError, ConnectionClosedError) as error:  # it may have run
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
