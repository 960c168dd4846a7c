"""Fan-out engine: posts frames to many connections through the @connections API, cheaply.

The same contract as `chat.notifier.ConnectionsNotifier`, over botocore's signer and the
standard library's `http.client` on a pool of posting threads: docs/architecture.md,
"Fan-out"; when a post is sent again (at most once): docs/reliability.md, "Delivery semantics".
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import os
import random
import select
import ssl
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from chat import aws_errors, deadline, telemetry
from chat.ports import DeliveryReport, Frame, encode

log = logging.getLogger("chat.fanout")

SERVICE = "execute-api"
SENT = "sent"
GONE = "gone"
FAILED = "failed"
# A request is not started with less time than this left before the deadline.
MIN_REQUEST_SECONDS = 0.05
DeliveryHook = Callable[..., None]


class Transport(Protocol):
    """One HTTP request to the @connections endpoint; thread-safe."""

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
    ) -> tuple[int, str]:
        """(status, the `x-amzn-ErrorType` header or ""), waiting at most `timeout` seconds
        for each step. Raises NotSentError when the request provably did not reach the
        server, and TransportError when it was written but no status came back."""
        ...

    def close(self) -> None: ...


class TransportError(Exception):
    """The request was written (or may have been), and no status came back."""


class NotSentError(TransportError):
    """The request did not reach the server whole: it may be sent again."""


def default_ca_bundle() -> str:
    """The CA bundle botocore verifies against: `AWS_CA_BUNDLE`, else its own."""
    configured = os.environ.get("AWS_CA_BUNDLE")
    if configured:
        return configured
    from botocore.httpsession import get_cert_path  # noqa: PLC0415

    return str(get_cert_path(True))


class _OneWrite(http.client.HTTPConnection):
    """An `HTTPConnection` whose request goes out in one write: `http.client` sends the
    head and the body with two `send` calls, which over TLS means two records and two
    packets; when `body_follows` is set, `send` holds the head until the body comes."""

    body_follows = False
    answered = False  # whether its first answer was read (a TLS session looked at)
    _head: bytes | None = None

    def send(self, data: Any) -> None:
        if self.body_follows and self._head is None:
            self._head = bytes(data)
            return
        if self._head is not None:
            data, self._head = self._head + bytes(data), None
        self.body_follows = False
        super().send(data)

    def close(self) -> None:
        self._head, self.body_follows = None, False
        super().close()


class _SigV4Signer(SigV4Auth):
    """botocore's `SigV4Auth`, deriving the signing key once per day instead of once per
    request (four HMACs of the five a signature costs); every signature is the one
    `SigV4Auth` computes (tests/unit/test_fanout.py compares them with boto3's)."""

    def __init__(self, credentials: ReadOnlyCredentials, service: str, region: str) -> None:
        super().__init__(credentials, service, region)
        self._scope = (region, service)
        self._keys: dict[str, bytes] = {}  # one signer per send: a day or two at most

    def signature(self, string_to_sign: str, request: Any) -> str:
        day = request.context["timestamp"][0:8]
        key = self._keys.get(day)
        if key is None:
            key = f"AWS4{self.credentials.secret_key}".encode()
            for part in (day, *self._scope, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys[day] = key
        return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class _Sessions:
    """The latest resumable TLS session of any connection to the endpoint."""

    def __init__(self) -> None:
        self._session: ssl.SSLSession | None = None
        self.resumed = 0

    def get(self) -> ssl.SSLSession | None:
        return self._session

    def keep(self, sock: Any) -> None:
        """Called once per connection, after its first answer (TLS 1.3 tickets come with
        it): reading `SSLSocket.session` costs about as much as a post, so never per post."""
        if not isinstance(sock, ssl.SSLSocket):
            return
        if sock.session_reused:
            self.resumed += 1
            return
        session = sock.session
        if session is not None and session.has_ticket and session is not self._session:
            self._session = session


class _ResumingContext(ssl.SSLContext):
    """A client TLS context that offers the last session it was given to each new
    connection (which then skips the certificate exchange): `http.client` wraps its
    socket with `context.wrap_socket` and has no way to pass a session itself."""

    sessions: _Sessions

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        if kwargs.get("session") is None:
            kwargs["session"] = self.sessions.get()
        return super().wrap_socket(*args, **kwargs)


class HttpClientTransport:
    """`http.client` with one keep-alive connection per thread (HTTPS or HTTP).

    Before a kept-alive connection is reused it is checked: one that the server closed
    while idle (or that holds unread bytes) is replaced by a new one, since the request
    has not been written yet. `resume_sessions` offers the last TLS session to each new
    connection (docs/performance.md measures what it saves on a cold start).
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        ca_certs: str | None = None,
        resume_sessions: bool = True,
    ) -> None:
        parts = urlsplit(endpoint_url)
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._sessions: _Sessions | None = None
        if self._https:
            if resume_sessions:
                resuming = _ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
                resuming.sessions = self._sessions = _Sessions()
                self._context = resuming
            else:
                self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            # PROTOCOL_TLS_CLIENT verifies the certificate and the host name.
            self._context.load_verify_locations(cafile=ca_certs or default_ca_bundle())
        self.connections_made = 0

    @property
    def sessions_resumed(self) -> int:
        return self._sessions.resumed if self._sessions is not None else 0

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float | None = None,
    ) -> tuple[int, str]:
        limit = self._read_timeout if timeout is None else min(timeout, self._read_timeout)
        conn = self._connection(limit)
        sock = conn.sock
        try:
            sock.settimeout(limit)
            conn.body_follows = bool(body)
            conn.request(method, path, body=body, headers=dict(headers))
        except (OSError, http.client.HTTPException, ValueError) as error:
            # Not written whole: a server cannot act on a part of a request.
            self._drop(conn)
            raise NotSentError(f"could not write the request: {_describe(error)}") from error
        try:
            response = conn.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as error:
            self._drop(conn)
            raise TransportError(f"no answer: {_describe(error)}") from error
        status = response.status
        error_type = response.getheader("x-amzn-ErrorType") or ""
        try:
            response.read()
        except (OSError, http.client.HTTPException, ValueError):
            self._drop(conn)  # the status came: it stands, but this connection is done
            return status, error_type
        if self._sessions is not None and not conn.answered:
            conn.answered = True
            self._sessions.keep(sock)
        if response.will_close:
            self._drop(conn)
        return status, error_type

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, set()
        for conn in connections:
            conn.close()

    def _connection(self, timeout: float) -> _OneWrite:
        conn: _OneWrite | None = getattr(self._local, "conn", None)
        if conn is not None and not _reusable(conn.sock):
            self._drop(conn)
            conn = None
        if conn is not None:
            return conn
        connect_timeout = min(self._connect_timeout, timeout)
        if self._context is not None:
            conn = _OneWriteTls(
                self._hostname, self._port, timeout=connect_timeout, context=self._context
            )
        else:
            conn = _OneWrite(self._hostname, self._port, timeout=connect_timeout)
        try:
            conn.connect()
        except (OSError, ValueError) as error:
            conn.close()
            raise NotSentError(f"could not connect: {_describe(error)}") from error
        self.connections_made += 1
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            self._open.discard(conn)
        conn.close()


class _OneWriteTls(_OneWrite, http.client.HTTPSConnection):
    """`_OneWrite` over TLS (`http.client` makes the connection and its handshake)."""


def _reusable(sock: Any) -> bool:
    """Whether a kept-alive connection can take a request: open, and with nothing to read
    (an idle connection that is readable was closed by the server, or is out of step)."""
    if sock is None or sock.fileno() < 0:
        return False
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _cause(error: BaseException) -> str:
    """The name of what broke a request (TimeoutError, ConnectionResetError, ...)."""
    return type(error.__cause__ or error).__name__


def _describe(error: BaseException) -> str:
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name


@dataclass
class _Outcome:
    status: str = SENT
    posted: int = 0
    attempts: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    error: str | None = None  # why it FAILED: "HTTP 500 InternalServerError", "timeout", ...


@dataclass(frozen=True)
class DeliveryStats:
    """The last `send`: recipients, posts made, HTTP attempts (retries included), throttles."""

    recipients: int
    posts: int
    attempts: int
    throttled: int
    elapsed_ms: float


@dataclass
class _Call:
    """What one call (`send`, `is_gone`, `close`) shares between its posting threads."""

    signer: SigV4Auth
    trace_id: str = ""
    deadline: deadline.Deadline = field(default_factory=deadline.current)
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class FanoutEngine:
    """Posts frames to connections: `send` (many, concurrently), `is_gone`, `close`.

    `endpoint_url` is the stage's callback URL (`https://{api}.execute-api.{region}.
    amazonaws.com/{stage}`, the `CALLBACK_URL` the stack sets); `credentials` anything
    with `get_frozen_credentials()` (botocore's credentials, e.g.
    `boto3.Session().get_credentials()`), read once per call so refreshed credentials are
    picked up. `on_delivery`, if given, is called once per `send` with the keyword
    arguments of `chat.telemetry.record_delivery`.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str,
        credentials: Any,
        concurrency: int = 192,
        max_attempts: int = 3,
        backoff_base_seconds: float = 0.05,
        backoff_cap_seconds: float = 1.0,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        transport: Transport | None = None,
        resume_sessions: bool = True,
        on_delivery: DeliveryHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {endpoint_url!r}")
        self._base_path = parts.path.rstrip("/")
        default_port = 443 if parts.scheme == "https" else 80
        # The Host header, as botocore derives it from the URL (no default port).
        self._host = (
            parts.hostname
            if parts.port in (None, default_port)
            else f"{parts.hostname}:{parts.port}"
        )
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._region = region
        self._credentials = credentials
        self._concurrency = max(1, concurrency)
        self._max_attempts = max(1, max_attempts)
        self._backoff_base = backoff_base_seconds
        self._backoff_cap = backoff_cap_seconds
        self._read_timeout = read_timeout
        self._transport: Transport = transport or HttpClientTransport(
            endpoint_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            resume_sessions=resume_sessions,
        )
        self._on_delivery = on_delivery
        self._sleep = sleep
        self._jitter = jitter
        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()
        self.last_delivery: DeliveryStats | None = None

    @property
    def concurrency(self) -> int:
        return self._concurrency

    # --- the port --------------------------------------------------------------------

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        """Post each connection its frames, in order; at most `concurrency` posts at once;
        nothing after the current deadline (`chat.deadline.current()`)."""
        if not deliveries:
            return DeliveryReport(sent=0, gone=frozenset(), failed=0)
        started = time.perf_counter()
        call = self._call()
        jobs = deque(self._payloads(deliveries))
        recipients = len(jobs)
        threads = min(self._concurrency, recipients)
        outcomes: dict[str, _Outcome] = {}
        if threads == 1:
            outcomes.update(self._drain(call, jobs))
        else:
            pool = self._pool()
            futures: list[Future[list[tuple[str, _Outcome]]]] = [
                pool.submit(self._drain, call, jobs) for _ in range(threads)
            ]
            for future in futures:
                outcomes.update(future.result())
        gone = frozenset(cid for cid, o in outcomes.items() if o.status == GONE)
        failed = sum(1 for o in outcomes.values() if o.status == FAILED)
        sent = recipients - len(gone) - failed
        posts = sum(o.posted for o in outcomes.values())
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.last_delivery = DeliveryStats(
            recipients=recipients,
            posts=posts,
            attempts=sum(o.attempts for o in outcomes.values()),
            throttled=call.throttled,
            elapsed_ms=elapsed_ms,
        )
        if self._on_delivery is not None:
            self._on_delivery(
                recipients=recipients,
                posts=posts,
                failures=failed,
                gone=len(gone),
                post_latencies_ms=[ms for o in outcomes.values() for ms in o.latencies_ms],
                elapsed_ms=elapsed_ms,
            )
        if gone or failed:
            errors = Counter(o.error for o in outcomes.values() if o.status == FAILED)
            log.info(
                "delivery finished with losses",
                extra={
                    "sent": sent,
                    "gone": len(gone),
                    "failed": failed,
                    "errors": {str(k): v for k, v in errors.items()},
                },
            )
        return DeliveryReport(sent=sent, gone=gone, failed=failed)

    def is_gone(self, connection_id: str) -> bool:
        """True only when API Gateway answers 410 to GetConnection."""
        status, _ = self._request_with_retries(self._call(), "GET", connection_id, None)
        if status == aws_errors.GONE_STATUS:
            telemetry.record_stale()
        return status == aws_errors.GONE_STATUS

    def close(self, connection_id: str) -> None:
        """DeleteConnection; a connection already gone is fine."""
        status, error_type = self._request_with_retries(self._call(), "DELETE", connection_id, None)
        if status not in (200, 204, aws_errors.GONE_STATUS):
            log.warning(
                "could not close the connection",
                extra={"connectionId": connection_id, "status": status, "error": error_type},
            )

    def shutdown(self) -> None:
        """Stop the posting threads and close the HTTP connections."""
        with self._threads_lock:
            if self._threads is not None:
                self._threads.shutdown(wait=True)
                self._threads = None
        self._transport.close()

    # --- internals -------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        """The posting threads, started once and kept for the life of the environment."""
        with self._threads_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix="fanout"
                )
            return self._threads

    def _call(self) -> _Call:
        frozen = self._credentials.get_frozen_credentials()
        creds = ReadOnlyCredentials(frozen.access_key, frozen.secret_key, frozen.token)
        # As botocore's client adds it in Lambda (unsigned): ties the posts to the invocation.
        trace_id = os.environ.get("_X_AMZN_TRACE_ID", "")
        if trace_id and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
            trace_id = quote(trace_id, safe="-=;:+&[]{}\"',")
        else:
            trace_id = ""
        return _Call(_SigV4Signer(creds, SERVICE, self._region), trace_id, deadline.current())

    @staticmethod
    def _payloads(
        deliveries: Mapping[str, Sequence[Frame]],
    ) -> list[tuple[str, list[bytes]]]:
        """Each connection's frames as bytes, each distinct frame (by identity) encoded once
        and each distinct batch turned into one list that its recipients share."""
        by_frame: dict[int, bytes] = {}
        by_batch: dict[int, list[bytes]] = {}
        out: list[tuple[str, list[bytes]]] = []
        for connection_id, batch in deliveries.items():
            payloads = by_batch.get(id(batch))
            if payloads is None:
                payloads = []
                for frame in batch:
                    data = by_frame.get(id(frame))
                    if data is None:
                        data = by_frame[id(frame)] = encode(frame)
                    payloads.append(data)
                by_batch[id(batch)] = payloads
            out.append((connection_id, payloads))
        return out

    def _drain(
        self, call: _Call, jobs: deque[tuple[str, list[bytes]]]
    ) -> list[tuple[str, _Outcome]]:
        """One posting thread's loop: take connections from the queue (deque.popleft is
        thread-safe) until it is empty; what happened to each."""
        done: list[tuple[str, _Outcome]] = []
        while True:
            try:
                connection_id, payloads = jobs.popleft()
            except IndexError:
                return done
            outcome = _Outcome()
            done.append((connection_id, outcome))
            try:
                self._post_all(call, connection_id, payloads, outcome)
            except Exception:  # a bug in one post must not stop delivery to the others
                log.exception("post failed", extra={"connectionId": connection_id})
                outcome.status = FAILED
                outcome.error = "exception"

    def _post_all(
        self, call: _Call, connection_id: str, payloads: Sequence[bytes], outcome: _Outcome
    ) -> None:
        for data in payloads:
            started = time.perf_counter()
            status, error_type = self._request_with_retries(
                call, "POST", connection_id, data, outcome
            )
            outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
            if status == aws_errors.GONE_STATUS:
                outcome.status = GONE
                return
            if not 200 <= status < 300:
                # Logged once per delivery, with the others (send), not once per recipient.
                outcome.status = FAILED
                outcome.error = f"HTTP {status} {error_type}".strip() if status else error_type
                return
            outcome.posted += 1

    def _request_with_retries(
        self,
        call: _Call,
        method: str,
        connection_id: str,
        body: bytes | None,
        outcome: _Outcome | None = None,
    ) -> tuple[int, str]:
        """The final (status, error type) of one request, sent again only while that is
        safe and useful (the module's docstring) and the deadline allows.

        Without a status (no answer, or out of time) the status is 0 and the error type
        says why.
        """
        path = f"{self._base_path}/@connections/{quote(connection_id, safe='')}"
        url = self._origin + path
        status, error_type = 0, ""
        # As botocore's: one id for the request, the same on each of its attempts.
        invocation_id = str(uuid.uuid4())
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 2))
                wait = self._jitter() * ceiling  # full jitter
                if wait + MIN_REQUEST_SECONDS > call.deadline.remaining():
                    return 0, "deadline"
                self._sleep(wait)
            left = call.deadline.remaining()
            if left < MIN_REQUEST_SECONDS:
                return 0, "deadline"
            if outcome is not None:
                outcome.attempts += 1
            headers = self._signed_headers(call, method, url, body)
            headers["amz-sdk-invocation-id"] = invocation_id
            headers["amz-sdk-request"] = f"attempt={attempt}; max={self._max_attempts}"
            try:
                status, error_type = self._transport.request(
                    method, path, body, headers, min(left, self._read_timeout)
                )
            except NotSentError as error:
                status, error_type = 0, f"not sent ({_cause(error)})"
                continue
            except TransportError as error:  # written: a resend could deliver it twice
                log.debug("no answer", extra={"connectionId": connection_id, "error": str(error)})
                return 0, f"no answer ({_cause(error)})"
            error_type = error_type.split(":", 1)[0]  # "Type:http://…" names the type too
            if aws_errors.is_throttled(status, error_type):
                with call.lock:
                    call.throttled += 1
                continue
            if not aws_errors.is_retryable_status(status):
                break
        return status, error_type

    def _signed_headers(
        self, call: _Call, method: str, url: str, body: bytes | None
    ) -> dict[str, str]:
        """The request's headers, signed by botocore's SigV4Auth (Host, X-Amz-Date,
        X-Amz-Security-Token when there is a session token, Authorization)."""
        request = AWSRequest(method=method, url=url, data=body, headers={"Host": self._host})
        call.signer.add_auth(request)
        headers = dict(request.headers.items())
        if call.trace_id:
            headers["X-Amzn-Trace-Id"] = call.trace_id
        return headers
