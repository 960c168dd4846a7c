"""Fan-out engine: posts frames to many connections through the @connections API, cheaply.

The same contract as `chat.notifier.ConnectionsNotifier` (`send`, `is_gone`, `close`), with
the per-post work cut to what a post needs:

- each request is signed by botocore's own `SigV4Auth` (service `execute-api`) with the
  function's credentials, frozen once per `send`; no hand-written crypto;
- the request goes out as HTTP/1.1 on one keep-alive socket per worker thread (standard
  library only), not through boto3's client, whose per-call machinery (parameter
  validation, serialization, endpoint rules, event hooks, response parsing) costs several
  times the post itself; any other `Transport` can be passed in (bench/candidates.py has
  urllib3's pool and `http.client`, measured against this one);
- each distinct frame is encoded once per `send`, and its bytes are shared by every
  recipient (no per-recipient copies of the payload);
- a persistent pool of `concurrency` worker threads takes connections from one queue: at
  most `concurrency` posts are in flight, and one connection's frames are posted in order,
  by one worker, each after the previous one succeeded;
- 410 means gone (no retry, and that connection's later frames are not posted); throttling
  (429, `LimitExceededException`), 5xx and broken connections are retried with exponential
  backoff and full jitter, at most `max_attempts` attempts a post; any other status fails
  that connection.

docs/performance.md has the measurements behind the choices (transport, concurrency).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import struct
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
from botocore.credentials import ReadOnlyCredentials

from chat import telemetry
from chat.frames import Frame, encode
from chat.ports import DeliveryReport

log = logging.getLogger("chat.fanout")

SERVICE = "execute-api"
SENT = "sent"
GONE = "gone"
FAILED = "failed"
# Error types API Gateway (and AWS services generally) use for throttling.
THROTTLING_ERRORS = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException"}
)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DeliveryHook = Callable[..., None]


class Transport(Protocol):
    """One HTTP request to the @connections endpoint; thread-safe."""

    def request(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, str]:
        """(status, the `x-amzn-ErrorType` header or ""). Raises TransportError when no
        complete answer came back."""
        ...

    def close(self) -> None: ...


class TransportError(Exception):
    """No complete HTTP answer: the connection broke, timed out or could not be made."""


class Http11Transport:
    """HTTP/1.1 on one keep-alive socket per thread: the whole request in one `sendall`, the
    answer read with `recv` and parsed just enough (status, `x-amzn-ErrorType`, the body's
    length: Content-Length, chunked, or until the server closes).

    The standard library only (`socket`, `ssl`); TLS with botocore's CA bundle. A reused
    connection that the server closed while idle (keep-alive timeout) fails before any
    byte of an answer arrives: the request is then sent again once on a new connection,
    as browsers do, without counting as an attempt.
    """

    MAX_HEAD_BYTES = 65536

    def __init__(
        self,
        endpoint_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 5.0,
        ca_certs: str | None = None,
        user_agent: str = "chat-fanout",
    ) -> None:
        parts = urlsplit(endpoint_url)
        self._https = parts.scheme == "https"
        self._hostname = parts.hostname or ""
        self._address = (self._hostname, parts.port or (443 if self._https else 80))
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._user_agent = user_agent
        self._local = threading.local()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        if self._https:
            if ca_certs is None:
                from botocore.httpsession import get_cert_path  # noqa: PLC0415

                ca_certs = get_cert_path(True)
            self._context = ssl.create_default_context(cafile=ca_certs)

    def request(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, str]:
        head = [f"{method} {path} HTTP/1.1\r\nUser-Agent: {self._user_agent}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body) if body else 0}\r\n\r\n")
        data = "".join(head).encode("latin-1") + (body or b"")
        reused = getattr(self._local, "sock", None) is not None
        try:
            return self._exchange(data)
        except _NoAnswerError as error:
            if not reused:
                raise TransportError(str(error)) from error
        try:  # a keep-alive connection the server had closed: once more, on a new one
            return self._exchange(data)
        except _NoAnswerError as error:
            raise TransportError(str(error)) from error

    def close(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            sock.close()

    def _socket(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is None:
            try:
                sock = socket.create_connection(self._address, timeout=self._connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._context is not None:
                    sock = self._context.wrap_socket(sock, server_hostname=self._hostname)
                _set_timeout(sock, self._read_timeout)
            except OSError as error:
                raise TransportError(f"could not connect: {error}") from error
            self._local.sock = sock
            self._local.buffer = b""
            with self._lock:
                self._sockets.add(sock)
        return sock

    def _drop(self) -> None:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        self._local.sock = None
        self._local.buffer = b""
        if sock is not None:
            with self._lock:
                self._sockets.discard(sock)
            sock.close()

    def _exchange(self, data: bytes) -> tuple[int, str]:
        sock = self._socket()
        answered = False
        try:
            sock.sendall(data)
            buffer: bytes = self._local.buffer
            while True:  # 1xx answers come before the real one
                while (end := buffer.find(b"\r\n\r\n")) < 0:
                    if len(buffer) > self.MAX_HEAD_BYTES:
                        raise TransportError("response head too long")
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionResetError("closed by the server")
                    answered = True
                    buffer += chunk
                answered = True
                lines = buffer[:end].decode("latin-1").split("\r\n")
                buffer = buffer[end + 4 :]
                version, _, rest = lines[0].partition(" ")
                status = int(rest[:3])
                if not 100 <= status < 200:
                    break
            fields: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            keep_alive = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
            buffer, complete = self._skip_body(sock, buffer, status, fields)
            keep_alive = keep_alive and complete
        except TransportError:
            self._drop()
            raise
        except (OSError, ValueError, IndexError) as error:
            self._drop()
            if answered:
                raise TransportError(f"broken answer: {error}") from error
            raise _NoAnswerError(str(error)) from error
        if keep_alive:
            self._local.buffer = buffer
        else:
            self._drop()
        return status, fields.get("x-amzn-errortype", "")

    @classmethod
    def _skip_body(
        cls, sock: socket.socket, buffer: bytes, status: int, fields: Mapping[str, str]
    ) -> tuple[bytes, bool]:
        """Consume the answer's body: what follows it, and whether the connection can be
        used again (False when the body ran until the server closed it)."""
        if status in (204, 304):
            return buffer, True
        if "chunked" in fields.get("transfer-encoding", "").lower():
            return cls._skip_chunked(sock, buffer), True
        if "content-length" in fields:
            length = int(fields["content-length"])
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    raise TransportError("connection closed in the middle of a body")
                buffer += chunk
            return buffer[length:], True
        while sock.recv(65536):  # the body runs until the server closes the connection
            pass
        return b"", False

    @staticmethod
    def _skip_chunked(sock: socket.socket, buffer: bytes) -> bytes:
        """Consume a chunked body (and its trailers); what follows it."""

        def need(count: int) -> None:
            nonlocal buffer
            while len(buffer) < count:
                chunk = sock.recv(65536)
                if not chunk:
                    raise TransportError("connection closed in the middle of a body")
                buffer += chunk

        while True:
            while (eol := buffer.find(b"\r\n")) < 0:
                need(len(buffer) + 1)
            size = int(buffer[:eol].split(b";", 1)[0], 16)
            buffer = buffer[eol + 2 :]
            if size == 0:
                while (eol := buffer.find(b"\r\n")) != 0:  # trailers, then an empty line
                    if eol < 0:
                        need(len(buffer) + 1)
                    else:
                        buffer = buffer[eol + 2 :]
                return buffer[2:]
            need(size + 2)
            buffer = buffer[size + 2 :]


def _set_timeout(sock: socket.socket, seconds: float) -> None:
    """A read and write timeout kept by the kernel (SO_RCVTIMEO, SO_SNDTIMEO), so that each
    recv and send is one system call: with `settimeout`, Python polls before each. An
    expired timeout raises an OSError (EAGAIN) like any broken connection. Where the
    options are missing, `settimeout`."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    try:
        sock.settimeout(None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    except (OSError, AttributeError, struct.error):
        sock.settimeout(seconds)


class _NoAnswerError(Exception):
    """The request got no byte of an answer (it may be sent again on a new connection)."""


class _SigningRequest:
    """The request as botocore's `SigV4Auth` reads and amends it (method, url, headers,
    params, context, body).

    `AWSRequest` would do, but it keeps its headers in an `email.message` and prepares a
    whole copy of the request each time the signer reads its body; this one is a dict and
    the bytes we already have. The signature is the same (tests/unit/test_fanout.py
    compares it with boto3's).
    """

    __slots__ = ("body", "context", "data", "headers", "method", "params", "url")

    def __init__(self, method: str, url: str, data: bytes | None, host: str) -> None:
        self.method = method
        self.url = url
        self.data = data
        self.body = data or b""
        self.headers: dict[str, str] = {"host": host}
        self.params: dict[str, str] = {}
        self.context: dict[str, Any] = {}


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
    """What one call (`send`, `is_gone`, `close`) shares between its workers."""

    signer: SigV4Auth
    trace_id: str = ""
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
        self._transport: Transport = transport or Http11Transport(
            endpoint_url, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self._on_delivery = on_delivery
        self._sleep = sleep
        self._jitter = jitter
        self._workers: ThreadPoolExecutor | None = None
        self._workers_lock = threading.Lock()
        self.last_delivery: DeliveryStats | None = None

    @property
    def concurrency(self) -> int:
        return self._concurrency

    # --- the port --------------------------------------------------------------------

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        """Post each connection its frames, in order; at most `concurrency` posts at once."""
        if not deliveries:
            return DeliveryReport(sent=0, gone=frozenset(), failed=0)
        started = time.perf_counter()
        call = self._call()
        jobs = deque(self._payloads(deliveries))
        recipients = len(jobs)
        workers = min(self._concurrency, recipients)
        outcomes: dict[str, _Outcome] = {}
        if workers == 1:
            outcomes.update(self._drain(call, jobs))
        else:
            pool = self._pool()
            futures: list[Future[list[tuple[str, _Outcome]]]] = [
                pool.submit(self._drain, call, jobs) for _ in range(workers)
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
        if status == 410:
            telemetry.record_stale()
        return status == 410

    def close(self, connection_id: str) -> None:
        """DeleteConnection; a connection already gone is fine."""
        status, error_type = self._request_with_retries(self._call(), "DELETE", connection_id, None)
        if status not in (200, 204, 410):
            log.warning(
                "could not close the connection",
                extra={"connectionId": connection_id, "status": status, "error": error_type},
            )

    def shutdown(self) -> None:
        """Stop the worker threads and close the HTTP connections."""
        with self._workers_lock:
            if self._workers is not None:
                self._workers.shutdown(wait=True)
                self._workers = None
        self._transport.close()

    # --- internals -------------------------------------------------------------------

    def _pool(self) -> ThreadPoolExecutor:
        """The worker threads, started once and kept for the life of the environment."""
        with self._workers_lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(
                    max_workers=self._concurrency, thread_name_prefix="fanout"
                )
            return self._workers

    def _call(self) -> _Call:
        frozen = self._credentials.get_frozen_credentials()
        creds = ReadOnlyCredentials(frozen.access_key, frozen.secret_key, frozen.token)
        # As botocore's client adds it in Lambda (unsigned): ties the posts to the invocation.
        trace_id = os.environ.get("_X_AMZN_TRACE_ID", "")
        if trace_id and "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
            trace_id = quote(trace_id, safe="-=;:+&[]{}\"',")
        else:
            trace_id = ""
        return _Call(SigV4Auth(creds, SERVICE, self._region), trace_id)

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
        """A worker: take connections from the queue (deque.popleft is thread-safe) until
        it is empty; what happened to each."""
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
            if status == 410:
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
        """The final (status, error type) of one request, retried while retryable.

        A request that never got an answer after the last attempt reports status 0.
        """
        path = f"{self._base_path}/@connections/{quote(connection_id, safe='')}"
        url = self._origin + path
        status, error_type = 0, ""
        # As botocore's: one id for the request, the same on each of its attempts.
        invocation_id = str(uuid.uuid4())
        for attempt in range(1, self._max_attempts + 1):
            if attempt > 1:
                ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 2))
                self._sleep(self._jitter() * ceiling)  # full jitter
            if outcome is not None:
                outcome.attempts += 1
            headers = self._signed_headers(call, method, url, body)
            headers["amz-sdk-invocation-id"] = invocation_id
            headers["amz-sdk-request"] = f"attempt={attempt}; max={self._max_attempts}"
            try:
                status, error_type = self._transport.request(method, path, body, headers)
            except TransportError as error:
                status, error_type = 0, type(error.__cause__ or error).__name__
                continue
            error_type = error_type.split(":", 1)[0]  # "Type:http://…" names the type too
            if status == 429 or error_type in THROTTLING_ERRORS:
                with call.lock:
                    call.throttled += 1
                continue
            if status not in RETRYABLE_STATUSES:
                break
        return status, error_type

    def _signed_headers(
        self, call: _Call, method: str, url: str, body: bytes | None
    ) -> dict[str, str]:
        """The request's headers, signed by botocore's SigV4Auth (Host, X-Amz-Date,
        X-Amz-Security-Token when there is a session token, Authorization)."""
        request = _SigningRequest(method, url, body, self._host)
        call.signer.add_auth(request)
        headers = request.headers
        if call.trace_id:
            headers["X-Amzn-Trace-Id"] = call.trace_id
        return headers
