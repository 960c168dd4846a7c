"""One Lambda execution environment: imports the handler once, then runs invocations one at a time.

Run as a script (stdlib only) by sandbox.lambdas. Protocol: JSON lines. Requests arrive on
stdin (`init` first, then `invoke`); replies go to the file descriptor named in argv[1]
(`ready` or `init_error`, then one `result` per invoke). The handler's stdout and stderr are
the sandbox's, so its logs appear as they would in CloudWatch.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

RESPONSE_LIMIT = 6 * 1024 * 1024  # Lambda's synchronous response limit


class LambdaContext:
    """The context object handed to the handler, as the Python runtime builds it."""

    def __init__(self, init: dict[str, Any], request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name: str = init["function_name"]
        self.function_version: str = init["function_version"]
        self.invoked_function_arn: str = init["function_arn"]
        # The real runtime reads this from the environment, so it is a string there too.
        self.memory_limit_in_mb: str = str(init["memory_mb"])
        self.log_group_name: str = init["log_group_name"]
        self.log_stream_name: str = init["log_stream_name"]
        self.identity = CognitoIdentity()
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function's timeout."""
        return max(0, self._deadline_ms - time.time_ns() // 1_000_000)

    def log(self, message: str) -> None:
        """Write to the function's log, as `context.log` does."""
        sys.stdout.write(str(message))


class CognitoIdentity:
    """`context.identity`: empty unless invoked through the Mobile SDK, as here."""

    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _install_lambda_logging() -> _RequestIdFilter:
    """The runtime's root handler: `[LEVEL]\\t<time>Z\\t<request id>\\t<message>`."""
    request_filter = _RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)
    return request_filter


def _decimal_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    # Like the real runtime, leave the runtime's own frame out of the trace.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(frames),
    }


def _log_error(error: dict[str, Any]) -> None:
    trace = "".join(error["stackTrace"])
    print(
        f"[ERROR] {error['errorType']}: {error['errorMessage']}\n"
        f"Traceback (most recent call last):\n{trace}",
        file=sys.stderr,
        flush=True,
    )


def scale_sdk_backoff(scale: float) -> None:
    """--fault-sdk-backoff-scale: multiply botocore's retry waits (standard and adaptive
    modes) by `scale`, before the handler imports boto3. Nothing is imported at 1."""
    if scale == 1:
        return
    from botocore.retries import standard  # noqa: PLC0415 (only with the switch on)

    delay_amount = standard.ExponentialBackoff.delay_amount

    def scaled(self: Any, context: Any) -> float:
        return float(delay_amount(self, context)) * scale

    standard.ExponentialBackoff.delay_amount = scaled


def _load_handler(init: dict[str, Any]) -> Callable[[Any, Any], Any]:
    module_path, _, function_name = init["handler"].rpartition(".")
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return handler  # type: ignore[no-any-return]


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _send(channel: IO[bytes], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message).encode("utf-8") + b"\n")
    channel.flush()


def main() -> None:
    """Serve invocations until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sandbox decides when workers stop
    replies = os.fdopen(int(sys.argv[1]), "wb")
    requests = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)

    init = json.loads(requests.readline())
    code_dir = init["code_dir"]
    os.chdir(code_dir)
    sys.path[:] = [code_dir, *(p for p in sys.path if p and os.path.abspath(p) != code_dir)]
    request_filter = _install_lambda_logging()
    try:
        scale_sdk_backoff(float(init.get("sdk_backoff_scale", 1.0)))
        handler = _load_handler(init)
    except _InitError as exc:
        error = _error(exc, exc.error_type)
        error["stackTrace"] = []
        _log_error(error)
        _send(replies, {"type": "init_error", "error": error})
        return
    except Exception as exc:
        error = _error(exc)
        _log_error(error)
        _send(replies, {"type": "init_error", "error": error})
        return
    _send(replies, {"type": "ready"})

    for line in requests:
        request = json.loads(line)
        request_filter.request_id = request["requestId"]
        reply = _invoke(handler, init, request)
        sys.stdout.flush()
        sys.stderr.flush()
        _send(replies, reply)
    # stdin closed: the environment ends. As on Lambda, which stops a runtime rather than
    # letting it shut down, nothing more of the handler runs (no atexit hooks, no module
    # teardown, which costs a loaded machine most of a second per environment).
    os._exit(0)


def _invoke(
    handler: Callable[[Any, Any], Any], init: dict[str, Any], request: dict[str, Any]
) -> dict[str, Any]:
    """Run one invocation; return the `result` reply (payload or error)."""
    request_id = request["requestId"]
    context = LambdaContext(init, request_id, request["deadlineMs"])
    # As the Lambda runtime does: the invocation's X-Ray header, which the AWS SDKs send on
    # (botocore adds it to every call as X-Amzn-Trace-Id).
    if request.get("traceId"):
        os.environ["_X_AMZN_TRACE_ID"] = request["traceId"]
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    try:
        result = handler(request["event"], context)
    except Exception as exc:
        error = _error(exc)
        error["requestId"] = request_id
        _log_error(error)
        return {"type": "result", "requestId": request_id, "error": error}
    try:
        payload = json.dumps(result, default=_decimal_default)
    except (TypeError, ValueError) as exc:
        failure = ("Runtime.MarshalError", f"Unable to marshal response: {exc}")
    else:
        if len(payload.encode("utf-8")) <= RESPONSE_LIMIT:
            return {"type": "result", "requestId": request_id, "payload": payload}
        failure = (
            "Function.ResponseSizeTooLarge",
            f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} "
            "bytes).",
        )
    error = {
        "errorMessage": failure[1],
        "errorType": failure[0],
        "requestId": request_id,
        "stackTrace": [],
    }
    _log_error(error)
    return {"type": "result", "requestId": request_id, "error": error}


if __name__ == "__main__":
    main()
