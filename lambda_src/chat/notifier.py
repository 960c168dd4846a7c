"""API Gateway adapter: posts frames to connections through the @connections API."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from chat import aws_errors, deadline, telemetry
from chat.ports import DeliveryReport, Frame, encode

log = logging.getLogger("chat.notifier")

GONE = "gone"
SENT = "sent"
FAILED = "failed"


@dataclass
class _Outcome:
    """What happened to one connection's frames: SENT, GONE or FAILED (and why), each post's
    time, and an unexpected exception to log."""

    status: str = SENT
    posted: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error: str | None = None
    exception: BaseException | None = None


class ConnectionsNotifier:
    """Notifier over a shared, thread-safe `apigatewaymanagementapi` client.

    Posts to different connections run concurrently on at most `concurrency` threads
    (the client's connection pool must be at least that large); the frames for one
    connection are posted in order, and stop at the first 410. Losses are logged once per
    delivery, not once per recipient: one line counting what was gone and what failed, by
    error (and the first unexpected exception's traceback, if any). Each delivery's size, posts,
    410s and post times go to the chat's metrics (chat/telemetry.py) from the calling
    thread, once every post is done.
    """

    def __init__(self, client: Any, *, concurrency: int) -> None:
        self._client = client
        self._concurrency = max(1, concurrency)

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        if not deliveries:
            return DeliveryReport(sent=0, gone=frozenset(), failed=0)
        started = time.perf_counter()
        encoded = {cid: [encode(f) for f in batch] for cid, batch in deliveries.items()}
        jobs = list(encoded.items())
        until = deadline.current()  # pool threads do not see the caller's context
        if len(jobs) == 1:
            outcomes = [self._post_all(jobs[0][0], jobs[0][1], until)]
        else:
            threads = min(self._concurrency, len(jobs))
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="post") as pool:
                outcomes = list(pool.map(lambda job: self._post_all(job[0], job[1], until), jobs))
        gone = frozenset(
            cid for (cid, _), outcome in zip(jobs, outcomes, strict=True) if outcome.status == GONE
        )
        failed = sum(1 for outcome in outcomes if outcome.status == FAILED)
        sent = sum(1 for outcome in outcomes if outcome.status == SENT)
        telemetry.record_delivery(
            recipients=len(jobs),
            posts=sum(outcome.posted for outcome in outcomes),
            failures=failed,
            gone=len(gone),
            post_latencies_ms=[ms for outcome in outcomes for ms in outcome.latencies_ms],
            elapsed_ms=telemetry.elapsed_ms(started),
        )
        if gone or failed:
            errors = Counter(o.error for o in outcomes if o.status == FAILED and o.error)
            log.info(
                "delivery finished with losses",
                extra={"sent": sent, "gone": len(gone), "failed": failed, "errors": dict(errors)},
            )
            unexpected = next((o.exception for o in outcomes if o.exception), None)
            if unexpected is not None:
                log.error("a post raised", exc_info=unexpected)
        return DeliveryReport(sent=sent, gone=gone, failed=failed)

    def _post_all(
        self, connection_id: str, payloads: Sequence[bytes], until: deadline.Deadline
    ) -> _Outcome:
        """Post one connection's frames in order. No post starts after the deadline (one
        that started may still take the client's read timeout and retries: this switch
        is the comparison path; the engine bounds every wait, chat/fanout.py)."""
        outcome = _Outcome()
        for data in payloads:
            if until.expired():
                outcome.status, outcome.error = FAILED, "deadline"
                return outcome
            started = time.perf_counter()
            try:
                self._client.post_to_connection(ConnectionId=connection_id, Data=data)
            except ClientError as error:
                if aws_errors.is_gone(error):
                    outcome.status = GONE
                    return outcome
                outcome.status, outcome.error = FAILED, aws_errors.error_name(error)
                return outcome
            except Exception as error:  # a broken socket must not stop delivery to the others
                outcome.status, outcome.error = FAILED, type(error).__name__
                outcome.exception = error
                return outcome
            finally:
                outcome.latencies_ms.append(telemetry.elapsed_ms(started))
            outcome.posted += 1
        return outcome

    def close(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if not aws_errors.is_gone(error):
                log.warning(
                    "could not close the connection",
                    extra={"connectionId": connection_id, "error": str(error)},
                )

    def is_gone(self, connection_id: str) -> bool:
        try:
            self._client.get_connection(ConnectionId=connection_id)
        except ClientError as error:
            gone = aws_errors.is_gone(error)
            if gone:
                telemetry.record_stale()
            return gone
        return False
