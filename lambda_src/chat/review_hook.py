"""The review hook's adapter: Lambda's Invoke API through boto3 (the Reviewer port).

The client is made with retries off (a review that timed out is not worth a second wait:
the message's sender is waiting) and connect and read timeouts of `reviewHookTimeoutMs`
(wiring.py). The call runs on a thread of its own so that the wait also stops at the
invocation's deadline when that comes sooner (chat/review.py passes the smaller of the
two); a thread left behind ends at botocore's read timeout. Errors are classified by
chat/aws_errors.py, as the fan-out worker's invocations are (chat/sharding.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from chat import aws_errors
from chat.ports import ReviewUnavailableError

# One message is reviewed at a time per execution environment; a second thread covers a
# call still ending (up to its read timeout) after the caller stopped waiting for it.
REVIEW_THREADS = 2
ERROR_EXCERPT = 300


class LambdaReviewer:
    """Invokes the review hook function (RequestResponse) and returns its JSON answer."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client
        self._function = function_name
        self._pool = ThreadPoolExecutor(max_workers=REVIEW_THREADS, thread_name_prefix="review")

    @property
    def client(self) -> Any:
        return self._client

    def review(self, request: Mapping[str, Any], timeout: float) -> object:
        future = self._pool.submit(self._invoke, request)
        try:
            return future.result(timeout=max(0.0, timeout))
        except FutureTimeoutError:
            future.cancel()
            raise ReviewUnavailableError(f"no answer within {timeout * 1000:.0f} ms") from None

    def _invoke(self, request: Mapping[str, Any]) -> object:
        from botocore.exceptions import (  # noqa: PLC0415 (imported with boto3 anyway)
            BotoCoreError,
            ClientError,
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
            payload = response["Payload"].read()
        except ClientError as error:
            code, name = aws_errors.error_code(error), aws_errors.error_name(error)
            status = aws_errors.http_status(error)
            if aws_errors.is_throttled(status, code, aws_errors.LAMBDA_THROTTLED_CODES):
                raise ReviewUnavailableError(f"throttled ({name})") from error
            if code in aws_errors.LAMBDA_NOT_RUN_CODES:
                raise ReviewUnavailableError(f"not run ({name})") from error
            raise ReviewUnavailableError(f"Invoke failed ({name})") from error
        except ReadTimeoutError as error:
            raise ReviewUnavailableError("timed out (read timeout)") from error
        except (ConnectTimeoutError, EndpointConnectionError) as error:
            raise ReviewUnavailableError(f"not reached ({type(error).__name__})") from error
        except BotoCoreError as error:
            raise ReviewUnavailableError(f"Invoke failed ({type(error).__name__})") from error
        if response.get("FunctionError"):
            excerpt = payload[:ERROR_EXCERPT].decode("utf-8", "replace")
            kind = response["FunctionError"]
            raise ReviewUnavailableError(f"the hook failed ({kind}): {excerpt}")
        try:
            return json.loads(payload)
        except ValueError:
            raise ReviewUnavailableError("the hook's answer is not JSON") from None
