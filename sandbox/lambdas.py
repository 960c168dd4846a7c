"""Lambda-like execution: warm worker processes per function, one invocation at a time each."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sandbox.template import FunctionSpec

log = logging.getLogger("sandbox")

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
INIT_TIMEOUT_S = 10.0
_REPLY_LIMIT = 64 * 1024 * 1024
# The functions' (fake) access key: the embedded DynamoDB tells their requests apart by it.
FUNCTION_ACCESS_KEY_ID = "ASIASANDBOXFAKEKEY00"
# How Lambda names the signal that ended a runtime ("Runtime exited with error: signal: killed").
_SIGNAL_NAMES = {
    signal.SIGKILL: "killed",
    signal.SIGABRT: "aborted",
    signal.SIGSEGV: "segmentation fault",
}


@dataclass(frozen=True)
class FunctionConfig:
    """What an execution environment needs: the function from the template, and the full
    process environment (see `runtime_environment`)."""

    spec: FunctionSpec
    environment: dict[str, str]
    # --fault-sdk-backoff-scale: the factor on botocore's retry waits in the environment.
    sdk_backoff_scale: float = 1.0


# How an invocation ended, as Lambda reports it: a payload, a function error, or the function
# running past its own Timeout ("Task timed out").
InvocationStatus = Literal["ok", "error", "timeout"]


@dataclass(frozen=True)
class InvocationResult:
    """One invocation's status, with the JSON payload when "ok" and the error otherwise."""

    status: InvocationStatus
    payload: Any
    error: dict[str, Any] | None
    duration_ms: float
    init_ms: float | None = None
    worker_pid: int | None = None
    payload_bytes: int = 0  # the size of the JSON response, as the function returned it


def runtime_environment(
    function: FunctionSpec,
    *,
    region: str,
    dynamodb_endpoint: str,
    lambda_endpoint: str,
    fallback_endpoint: str,
    events_endpoint: str | None = None,
    variables: dict[str, str],
    ca_bundle: str | None = None,
) -> dict[str, str]:
    """The process environment of an execution environment: Lambda's variables plus the function's.

    Credentials are fake and every AWS SDK endpoint points at a local service, so nothing the
    handler does reaches real AWS. The developer's own environment is not inherited.
    `ca_bundle` (the sandbox's certificate authority, sandbox/tls.py) becomes
    AWS_CA_BUNDLE, so that botocore trusts the HTTPS listener of @connections and Invoke.
    AWS_LAMBDA_LOG_STREAM_NAME is set per execution environment, when it starts.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "LAMBDA_RUNTIME_DIR": str(Path(sys.executable).parent),
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": FUNCTION_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": "sandbox-fake-secret-access-key",
        "AWS_SESSION_TOKEN": "sandbox-fake-session-token",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        # Lambda's Invoke API for the stack's own functions (sandbox/invoke.py).
        "AWS_ENDPOINT_URL_LAMBDA": lambda_endpoint,
        "AWS_ENDPOINT_URL": fallback_endpoint,
    }
    if events_endpoint is not None:  # EventBridge's PutEvents (sandbox/eventbridge.py)
        env["AWS_ENDPOINT_URL_EVENTBRIDGE"] = events_endpoint
    if ca_bundle is not None:
        env["AWS_CA_BUNDLE"] = ca_bundle
    env.update(variables)
    return env


class _Worker:
    """One worker process and its reply pipe."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        replies: asyncio.StreamReader,
        transport: asyncio.BaseTransport,
    ) -> None:
        self.process = process
        self._replies = replies
        self._transport = transport

    @classmethod
    async def spawn(cls, config: FunctionConfig) -> _Worker:
        function = config.spec
        # Each execution environment writes to its own log stream, as in Lambda.
        environment = {**config.environment, "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name()}
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-u",
                "-X",
                "utf8",
                str(WORKER_SCRIPT),
                str(write_fd),
                stdin=asyncio.subprocess.PIPE,
                stdout=None,
                stderr=None,
                env=environment,
                cwd=str(function.code_dir),
                pass_fds=(write_fd,),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        replies = asyncio.StreamReader(limit=_REPLY_LIMIT)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(replies), os.fdopen(read_fd, "rb", buffering=0)
        )
        worker = cls(process, replies, transport)
        await worker.send(
            {
                "type": "init",
                "handler": function.handler,
                "code_dir": str(function.code_dir),
                "function_name": function.name,
                "function_version": "$LATEST",
                "function_arn": function.arn,
                "memory_mb": function.memory_mb,
                "log_group_name": config.environment["AWS_LAMBDA_LOG_GROUP_NAME"],
                "log_stream_name": environment["AWS_LAMBDA_LOG_STREAM_NAME"],
                "sdk_backoff_scale": config.sdk_backoff_scale,
            }
        )
        return worker

    async def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps(message).encode("utf-8") + b"\n")
        await stdin.drain()

    async def receive(self) -> dict[str, Any]:
        line = await self._replies.readline()
        if not line:
            code = await self.process.wait()
            raise _WorkerExitedError(code)
        message: dict[str, Any] = json.loads(line)
        return message

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    def crash(self) -> None:
        """SIGKILL the process (its reply pipe then ends and the invocation fails)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        self._transport.close()

    async def stop(self) -> None:
        """Close stdin (the worker exits); kill it if it lingers."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 1.0)
        except TimeoutError:
            self.kill()
            await self.process.wait()
        self._transport.close()


class _WorkerExitedError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"worker exited with code {code}")
        self.code = code

    def lambda_message(self) -> str:
        """How Lambda words it: `exit status 1`, or `signal: killed` for SIGKILL."""
        if self.code >= 0:
            return f"exit status {self.code}"
        try:
            number = signal.Signals(-self.code)
        except ValueError:
            return f"signal: {-self.code}"
        return f"signal: {_SIGNAL_NAMES.get(number, number.name)}"


@dataclass(frozen=True)
class RunningInvocation:
    """An invocation in progress: what the @connections API knows about the caller."""

    function_name: str
    label: str | None  # the route key that invoked it
    trace_root: str
    worker: _Worker


class _InitFailedError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("errorMessage", "init failed"))
        self.error = error


class FunctionPool:
    """Up to `max_workers` warm execution environments of one function."""

    def __init__(self, config: FunctionConfig, *, max_workers: int) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(max_workers)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False
        self.running: dict[str, RunningInvocation] = {}  # by X-Ray trace root

    async def warm(self, count: int) -> None:
        """Start `count` environments ahead of the first invocation (errors are logged)."""

        async def one() -> None:
            async with self._slots:
                try:
                    worker = await self._start_worker()
                except _InitFailedError as exc:
                    log.warning("%s: init failed: %s", self.config.spec.name, exc)
                    return
                self._idle.append(worker)

        await asyncio.gather(*(one() for _ in range(count)))

    async def _start_worker(self) -> _Worker:
        worker = await _Worker.spawn(self.config)
        self._all.add(worker)
        try:
            reply = await asyncio.wait_for(worker.receive(), INIT_TIMEOUT_S)
        except (TimeoutError, _WorkerExitedError) as exc:
            self._discard(worker)
            raise _InitFailedError(
                {
                    "errorMessage": f"init failed: {exc or 'timed out'}",
                    "errorType": "Runtime.InitError",
                    "stackTrace": [],
                }
            ) from exc
        except BaseException:
            self._discard(worker)
            raise
        if reply.get("type") != "ready":
            self._discard(worker)
            raise _InitFailedError(reply.get("error") or {"errorType": "Runtime.InitError"})
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        self._all.discard(worker)

    async def invoke(
        self, event: dict[str, Any], *, label: str | None = None, trace_root: str | None = None
    ) -> InvocationResult:
        """Run the handler on `event` in a free environment, enforcing the function's timeout.

        Each invocation gets its own X-Ray trace header in `_X_AMZN_TRACE_ID`, as on Lambda;
        `running` maps its root to the invocation while it runs (`label`: the route key).
        """
        request_id = str(uuid.uuid4())
        root = trace_root or new_trace_root()
        try:
            return await self._invoke(event, request_id, root, label)
        finally:
            self.running.pop(root, None)

    async def _invoke(
        self, event: dict[str, Any], request_id: str, root: str, label: str | None
    ) -> InvocationResult:
        async with self._slots:
            if self._closed:
                raise RuntimeError("the function pool is closed")
            init_ms: float | None = None
            if self._idle:
                worker = self._idle.pop()
            else:
                init_started = time.monotonic()
                try:
                    worker = await self._start_worker()
                except _InitFailedError as exc:
                    return InvocationResult("error", None, exc.error, 0.0, _ms(init_started))
                init_ms = _ms(init_started)
            started = time.monotonic()
            timeout_s = self.config.spec.timeout_s
            deadline_ms = time.time_ns() // 1_000_000 + int(timeout_s * 1000)
            request = {
                "type": "invoke",
                "requestId": request_id,
                "deadlineMs": deadline_ms,
                "traceId": f"Root={root};Parent={os.urandom(8).hex()};Sampled=0",
                "event": event,
            }
            self.running[root] = RunningInvocation(self.config.spec.name, label, root, worker)
            try:
                reply = await asyncio.wait_for(self._call(worker, request), timeout_s)
            except TimeoutError:
                self._discard(worker)
                message = f"Task timed out after {timeout_s:.2f} seconds"
                print(f"{_utc_stamp()} {request_id} {message}", flush=True)
                error = {"errorMessage": message, "errorType": "Sandbox.Timeout"}
                return InvocationResult("timeout", None, error, _ms(started), init_ms, worker.pid)
            except _WorkerExitedError as exc:
                self._discard(worker)
                error = {
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                    f"{exc.lambda_message()}",
                    "errorType": "Runtime.ExitError",
                }
                print(f"{_utc_stamp()} {request_id} {error['errorMessage']}", flush=True)
                return InvocationResult("error", None, error, _ms(started), init_ms, worker.pid)
            except BaseException:
                self._discard(worker)
                raise
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                self._discard(worker)
            duration = _ms(started)
            if "error" in reply:
                return InvocationResult("error", None, reply["error"], duration, init_ms)
            payload_json: str = reply["payload"]
            return InvocationResult(
                "ok",
                json.loads(payload_json),
                None,
                duration,
                init_ms,
                worker.pid,
                payload_bytes=len(payload_json.encode("utf-8")),
            )

    @staticmethod
    async def _call(worker: _Worker, request: dict[str, Any]) -> dict[str, Any]:
        await worker.send(request)
        return await worker.receive()

    async def close(self) -> None:
        """Stop every environment; running invocations are killed."""
        self._closed = True
        idle, self._idle = self._idle, []
        busy = [worker for worker in self._all if worker not in idle]
        for worker in busy:
            worker.kill()
        await asyncio.gather(*(worker.stop() for worker in self._all), return_exceptions=True)
        self._all.clear()


class LambdaService:
    """Every function of the stack, invoked by logical id.

    `on_finished` is told the trace root of every invocation that ends.
    """

    def __init__(
        self, pools: dict[str, FunctionPool], on_finished: Callable[[str], None] | None = None
    ) -> None:
        self._pools = pools
        self._on_finished = on_finished

    async def warm(self, count: int) -> None:
        """Start `count` environments per function."""
        await asyncio.gather(*(pool.warm(count) for pool in self._pools.values()))

    async def invoke(
        self, function_id: str, event: dict[str, Any], *, label: str | None = None
    ) -> InvocationResult:
        """Invoke a function synchronously (RequestResponse); `label` names the route."""
        root = new_trace_root()
        try:
            return await self._pools[function_id].invoke(event, label=label, trace_root=root)
        finally:
            if self._on_finished is not None:
                self._on_finished(root)

    def running(self, trace_root: str | None) -> RunningInvocation | None:
        """The invocation in progress with this X-Ray trace root, if any."""
        if trace_root is None:
            return None
        for pool in self._pools.values():
            found = pool.running.get(trace_root)
            if found is not None:
                return found
        return None

    async def close(self) -> None:
        """Stop all environments."""
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))


def new_trace_root() -> str:
    """A fresh X-Ray trace id: `1-<epoch seconds, 8 hex>-<24 hex>`."""
    return f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _utc_stamp() -> str:
    now = datetime.now(UTC)
    return f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z"
