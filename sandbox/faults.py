"""Fault switches: failures injected on purpose, to test how the stack copes (all off by default).

Each switch makes the sandbox misbehave the way AWS sometimes does, never in a way AWS cannot:

- `@connections` POSTs that are slow, or answered 429 LimitExceededException or 500 instead of
  being delivered, for all connections, a fraction of them, or those whose $connect URL
  carried a given query parameter;
- `@connections` POSTs that are delivered but whose HTTPS answer breaks (`--fault-post-break`):
  never sent (`silent`), cut in the middle of its body (`cut-body`), sent after the caller's
  read timeout (`late`), or replaced by a TCP reset (`reset-after-write`);
- kept-alive HTTPS connections closed by the server after a short idle time (`idle-close`);
- `$disconnect` events that never arrive (API Gateway delivers them on a best-effort basis);
- throttling errors from the embedded DynamoDB, in DynamoDB's own JSON error format;
- an execution environment that dies in the middle of a broadcast: the worker whose
  invocation makes its Nth post is killed (SIGKILL), as a crash or an out-of-memory kill.

Random choices come from one seeded generator (`--fault-seed`), so a run is repeatable when
its requests arrive in the same order. Every injected fault is logged with a `fault:` prefix.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("sandbox")

POST_ERROR_STATUSES = (429, 500)
# How a delivered post's answer breaks (`--fault-post-break`); docs/sandbox.md has each.
SILENT = "silent"
CUT_BODY = "cut-body"
LATE = "late"
RESET_AFTER_WRITE = "reset-after-write"
POST_BREAKS = (SILENT, CUT_BODY, LATE, RESET_AFTER_WRITE)
_BREAK_DESCRIPTIONS = {
    SILENT: "delivered, never answered",
    CUT_BODY: "delivered, 200 with its body cut and the connection dropped",
    LATE: "delivered, answered after {late:g} ms",
    RESET_AFTER_WRITE: "delivered, then the connection reset (no answer)",
}
_ATTEMPT = re.compile(r"(?:^|;)\s*attempt=(\d+)")
_MAX = re.compile(r"(?:^|;)\s*max=(\d+)")
_ROOT = re.compile(r"Root=([0-9A-Za-z-]+)")


class FaultConfigError(ValueError):
    """A fault switch with a value the sandbox cannot use."""


@dataclass(frozen=True)
class ConnectionSelector:
    """Which connections the @connections faults apply to.

    `all`; a fraction such as `0.25` (each connection is drawn once, when it connects); or
    `query:NAME=VALUE` (connections whose $connect URL carried that query parameter).
    """

    fraction: float = 1.0
    query: tuple[str, str] | None = None

    @classmethod
    def parse(cls, text: str) -> ConnectionSelector:
        """Read a selector from the command line. Raises FaultConfigError."""
        text = text.strip()
        if text == "all":
            return cls()
        if text.startswith("query:"):
            name, sep, value = text[len("query:") :].partition("=")
            if not name or not sep:
                raise FaultConfigError(f"expected query:NAME=VALUE, got {text!r}")
            return cls(query=(name, value))
        try:
            fraction = float(text)
        except ValueError:
            raise FaultConfigError(
                f"expected all, a fraction or query:NAME=VALUE, got {text!r}"
            ) from None
        if not 0.0 < fraction <= 1.0:
            raise FaultConfigError(f"a fraction of connections must be in (0, 1], got {text}")
        return cls(fraction=fraction)

    def describe(self) -> str:
        if self.query is not None:
            return f"connections opened with ?{self.query[0]}={self.query[1]}"
        if self.fraction >= 1.0:
            return "every connection"
        return f"{self.fraction:.0%} of connections"


@dataclass(frozen=True)
class FaultConfig:
    """The fault switches, as given on the command line (every default means: off)."""

    post_latency_ms: float = 0.0
    post_error_rate: float = 0.0
    post_error_status: int = 429
    post_connections: ConnectionSelector = dataclasses.field(default_factory=ConnectionSelector)
    post_break: str | None = None
    post_late_ms: float = 6000.0
    idle_close_ms: float = 0.0
    drop_disconnect_rate: float = 0.0
    dynamodb_throttle_rate: float = 0.0
    crash_after_posts: int = 0
    crash_route: str | None = None
    crash_count: int = 1
    spare_last_attempt: bool = False
    sdk_backoff_scale: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("post_error_rate", "drop_disconnect_rate", "dynamodb_throttle_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                flag = "--fault-" + name.replace("_", "-")
                raise FaultConfigError(f"{flag} must be between 0 and 1, got {value:g}")
        if self.post_latency_ms < 0:
            raise FaultConfigError("--fault-post-latency-ms must not be negative")
        if self.post_error_status not in POST_ERROR_STATUSES:
            raise FaultConfigError("--fault-post-error-status must be 429 or 500")
        if self.post_break is not None and self.post_break not in POST_BREAKS:
            raise FaultConfigError("--fault-post-break must be one of " + ", ".join(POST_BREAKS))
        if self.post_late_ms <= 0:
            raise FaultConfigError("--fault-post-late-ms must be positive")
        if self.idle_close_ms < 0:
            raise FaultConfigError("--fault-idle-close-ms must not be negative")
        if not 0 < self.sdk_backoff_scale <= 1:
            raise FaultConfigError("--fault-sdk-backoff-scale must be above 0 and at most 1")
        if self.crash_after_posts < 0 or self.crash_count < 0:
            raise FaultConfigError(
                "--fault-crash-after-posts and --fault-crash-count must not be negative"
            )

    @property
    def posts(self) -> bool:
        """Whether any @connections POST fault is on."""
        return self.post_latency_ms > 0 or self.post_error_rate > 0 or self.post_break is not None

    def describe(self) -> list[str]:
        """One line per switch that is on, for the banner."""
        lines = []
        if self.posts:
            parts = []
            if self.post_latency_ms > 0:
                parts.append(f"+{self.post_latency_ms:g} ms")
            if self.post_error_rate > 0:
                parts.append(
                    f"{self.post_error_rate:.0%} answered {self.post_error_status} "
                    f"{_POST_ERRORS[self.post_error_status][0]}"
                )
            if self.post_break is not None:
                described = _BREAK_DESCRIPTIONS[self.post_break].format(late=self.post_late_ms)
                parts.append(f"{self.post_break} ({described})")
            lines.append(
                f"@connections POST to {self.post_connections.describe()}: " + ", ".join(parts)
            )
        if self.idle_close_ms > 0:
            lines.append(
                f"idle-close: HTTPS connections closed after {self.idle_close_ms:g} ms idle"
            )
        if self.drop_disconnect_rate > 0:
            lines.append(f"{self.drop_disconnect_rate:.0%} of $disconnect events dropped")
        if self.dynamodb_throttle_rate > 0:
            lines.append(
                f"{self.dynamodb_throttle_rate:.0%} of the functions' DynamoDB requests throttled"
            )
        if self.crash_after_posts > 0:
            route = f" of route {self.crash_route}" if self.crash_route else ""
            times = "every time" if self.crash_count == 0 else f"at most {self.crash_count}x"
            lines.append(
                f"execution environment killed at post #{self.crash_after_posts} of an "
                f"invocation{route} ({times})"
            )
        if self.sdk_backoff_scale != 1:
            lines.append(f"the functions' SDK retry backoff scaled by {self.sdk_backoff_scale:g}")
        if lines and self.spare_last_attempt:
            lines.append("an SDK's last announced attempt is never failed")
        if lines and self.seed is not None:
            lines.append(f"seed {self.seed}")
        return lines


# The error answers of @connections POST faults: x-amzn-ErrorType and body.
_POST_ERRORS: dict[int, tuple[str, dict[str, str]]] = {
    429: ("LimitExceededException", {"message": "Too Many Requests"}),
    500: ("InternalServerErrorException", {"message": "Internal server error"}),
}


@dataclass(frozen=True)
class PostFault:
    """What to do to one POST: wait `delay_s`, then answer `status` instead of delivering, or
    deliver it and break the answer as `breaks` says (one of POST_BREAKS)."""

    delay_s: float = 0.0
    status: int | None = None
    error_type: str = ""
    body: dict[str, str] = dataclasses.field(default_factory=dict)
    breaks: str | None = None
    late_s: float = 0.0


@dataclass(frozen=True)
class SdkAttempt:
    """An AWS SDK's `amz-sdk-request` (attempt=N; max=M) and `amz-sdk-invocation-id` headers."""

    attempt: int | None = None
    max_attempts: int | None = None
    call: str = ""

    @classmethod
    def from_headers(cls, get: Callable[[str], str | None]) -> SdkAttempt:
        request = get("amz-sdk-request") or ""
        attempt = _ATTEMPT.search(request)
        most = _MAX.search(request)
        return cls(
            attempt=int(attempt.group(1)) if attempt else None,
            max_attempts=int(most.group(1)) if most else None,
            call=(get("amz-sdk-invocation-id") or "")[:8],
        )

    @property
    def is_last_of_several(self) -> bool:
        """The last attempt the SDK announced, when it announced more than one."""
        return (
            self.attempt is not None
            and self.max_attempts is not None
            and self.max_attempts > 1
            and self.attempt >= self.max_attempts
        )

    def describe(self) -> str:
        """`(attempt 2/3, call 0f1e2d3c)`: which attempt of which SDK call."""
        attempt = "?" if self.attempt is None else str(self.attempt)
        most = "?" if self.max_attempts is None else str(self.max_attempts)
        return f"(attempt {attempt}/{most}, call {self.call or '?'})"


def trace_root(header: str | None) -> str | None:
    """The `Root=` of an X-Amzn-Trace-Id header: which invocation made an AWS call."""
    if not header:
        return None
    match = _ROOT.search(header)
    return match.group(1) if match else None


class Faults:
    """The fault switches at run time: the seeded generator and the crash bookkeeping.

    Thread-safe: the embedded DynamoDB asks from its own threads.
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.config = config or FaultConfig()
        self._random = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._posts: dict[str, int] = {}  # trace root -> posts made by that invocation
        self._crashed: set[str] = set()
        self._crashes = 0

    def _draw(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    # -- connections ---------------------------------------------------------------------

    def selects(self, query: Iterable[tuple[str, str]]) -> bool:
        """Whether the @connections POST faults apply to a new connection with this query."""
        config = self.config
        if not config.posts:
            return False
        selector = config.post_connections
        if selector.query is not None:
            return selector.query in set(query)
        return selector.fraction >= 1.0 or self._draw(selector.fraction)

    def post_fault(self, connection_id: str, attempt: SdkAttempt) -> PostFault:
        """The fault for one POST to a selected connection (latency, maybe an error)."""
        config = self.config
        delay_s = config.post_latency_ms / 1000
        delivered = PostFault(
            delay_s=delay_s, breaks=config.post_break, late_s=config.post_late_ms / 1000
        )
        if not self._draw(config.post_error_rate):
            if attempt.attempt is not None and attempt.attempt > 1 and config.post_error_rate:
                log.info("fault: POST %s %s passed (a retry)", connection_id, attempt.describe())
            return delivered
        if config.spare_last_attempt and attempt.is_last_of_several:
            log.info("fault: POST %s %s spared (last attempt)", connection_id, attempt.describe())
            return delivered
        status = config.post_error_status
        error_type, body = _POST_ERRORS[status]
        log.info(
            "fault: POST %s %s answered %s %s",
            connection_id,
            attempt.describe(),
            status,
            error_type,
        )
        return PostFault(delay_s=delay_s, status=status, error_type=error_type, body=body)

    def drops_disconnect(self) -> bool:
        """Whether the $disconnect of a connection that just closed is never delivered."""
        return self._draw(self.config.drop_disconnect_rate)

    # -- DynamoDB --------------------------------------------------------------------------

    def throttles(self, operation: str, attempt: SdkAttempt) -> bool:
        """Whether one DynamoDB request from a function is answered with a throttling error."""
        config = self.config
        if not self._draw(config.dynamodb_throttle_rate):
            if attempt.attempt is not None and attempt.attempt > 1:
                log.info("fault: DynamoDB %s %s passed (a retry)", operation, attempt.describe())
            return False
        if config.spare_last_attempt and attempt.is_last_of_several:
            log.info("fault: DynamoDB %s %s spared (last attempt)", operation, attempt.describe())
            return False
        return True

    # -- crashes ---------------------------------------------------------------------------

    def crashes(self, root: str | None, label: str | None) -> bool:
        """Count a post by the invocation `root` (of route `label`): True to kill it now.

        True as well for any later post of an invocation already killed, so that a post
        racing the kill is never delivered.
        """
        config = self.config
        if root is None or config.crash_after_posts <= 0:
            return False
        with self._lock:
            if root in self._crashed:
                return True
            if label is None or (config.crash_route is not None and label != config.crash_route):
                return False
            count = self._posts.get(root, 0) + 1
            self._posts[root] = count
            if count < config.crash_after_posts:
                return False
            if config.crash_count and self._crashes >= config.crash_count:
                return False
            self._crashes += 1
            self._crashed.add(root)
            del self._posts[root]
            return True

    def forget(self, root: str) -> None:
        """An invocation ended: drop its post count (crashed ones are remembered)."""
        with self._lock:
            self._posts.pop(root, None)


# DynamoDB's throttling answers (HTTP 400, application/x-amz-json-1.0). Control-plane
# operations get ThrottlingException, the others ProvisionedThroughputExceededException.
_CONTROL_PLANE = frozenset(
    {
        "CreateTable",
        "UpdateTable",
        "DeleteTable",
        "DescribeTable",
        "ListTables",
        "UpdateTimeToLive",
        "DescribeTimeToLive",
        "TagResource",
        "UntagResource",
    }
)


def dynamodb_throttle_body(operation: str, table_arn: str | None) -> tuple[str, bytes]:
    """The exception name and the JSON body DynamoDB answers a throttled request with."""
    if operation in _CONTROL_PLANE:
        error = "ThrottlingException"
        payload: dict[str, Any] = {"message": "Rate of requests exceeds the allowed throughput."}
    else:
        error = "ProvisionedThroughputExceededException"
        kind = "Read" if operation in _READS else "Write"
        payload = {
            "message": "Throughput exceeds the current capacity of your table or index. DynamoDB "
            "is automatically scaling your table or index so please try again shortly.",
        }
        if table_arn is not None:
            payload["ThrottlingReasons"] = [
                {"reason": f"Table{kind}KeyRangeThroughputExceeded", "resource": table_arn}
            ]
    payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{error}", **payload}
    return error, json.dumps(payload).encode("utf-8")


_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
