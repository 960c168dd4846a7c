"""How the adapters read AWS's errors: one place that knows which error codes and HTTP
statuses mean gone, throttled, worth sending again, or a call that never ran.

Used by `store.py` (DynamoDB), `notifier.py` and `fanout.py` (@connections) and
`sharding.py` (Lambda's Invoke). The codes come from the services' API references.
"""

from __future__ import annotations

from typing import Any

# DynamoDB (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html
# and the TransactWriteItems reference).
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"
TRANSACTION_CONFLICT = "TransactionConflictException"

# @connections: a connection that is gone answers 410 (GoneException).
GONE_STATUS = 410
GONE_CODES = frozenset({"GoneException", "410"})
# Error types API Gateway (and AWS services generally) use for throttling.
THROTTLING_CODES = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException"}
)
THROTTLED_STATUS = 429
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

# Lambda's Invoke: errors that mean Lambda did not run the function (Invoke API reference,
# https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html), and of those, throttling.
LAMBDA_NOT_RUN_CODES = frozenset(
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
LAMBDA_THROTTLED_CODES = frozenset({"TooManyRequestsException"})


def error_code(error: Any) -> str:
    """The error code of a botocore `ClientError` (`""` when the answer has none)."""
    return str(error.response.get("Error", {}).get("Code") or "")


def http_status(error: Any) -> int | None:
    """The HTTP status of a botocore `ClientError`'s answer, if known."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def error_name(error: Any) -> str:
    """`ForbiddenException`, or `HTTP 500` when the answer has no error code."""
    return error_code(error) or f"HTTP {http_status(error)}"


def cancellation_reasons(error: Any) -> list[str]:
    """A cancelled DynamoDB transaction's reason codes, one per action (`"None"`: it passed)."""
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons") or []]


def is_gone(error: Any) -> bool:
    """A `ClientError` from @connections that says the connection is gone (410)."""
    return error_code(error) in GONE_CODES or http_status(error) == GONE_STATUS


def is_throttled(status: int | None, code: str, codes: frozenset[str] = THROTTLING_CODES) -> bool:
    """An answer that says "too many requests": HTTP 429 or one of the throttling codes."""
    return status == THROTTLED_STATUS or code in codes


def is_retryable_status(status: int) -> bool:
    """A status worth sending the same request again for: 429, 500, 502, 503, 504."""
    return status in RETRYABLE_STATUSES
