"""chat/aws_errors.py: the one place the adapters read AWS's error codes and statuses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from chat import aws_errors

CHAT = Path(__file__).resolve().parents[2] / "lambda_src" / "chat"


def client_error(code: str | None, status: int | None, **extra) -> ClientError:
    response: dict = {"ResponseMetadata": {}, **extra}
    if code is not None:
        response["Error"] = {"Code": code, "Message": "m"}
    if status is not None:
        response["ResponseMetadata"]["HTTPStatusCode"] = status
    return ClientError(response, "PostToConnection")


@pytest.mark.parametrize(
    ("code", "status", "gone"),
    [
        ("GoneException", 410, True),
        (None, 410, True),  # a 410 without a body
        ("410", None, True),
        ("ForbiddenException", 403, False),
        ("LimitExceededException", 429, False),
        (None, 500, False),
    ],
)
def test_only_a_410_or_gone_exception_means_the_connection_is_gone(code, status, gone):
    assert aws_errors.is_gone(client_error(code, status)) is gone


def test_an_error_is_named_by_its_code_or_else_by_its_status():
    assert aws_errors.error_name(client_error("ForbiddenException", 403)) == "ForbiddenException"
    assert aws_errors.error_name(client_error(None, 500)) == "HTTP 500"
    assert aws_errors.error_code(client_error(None, 500)) == ""
    assert aws_errors.http_status(client_error("X", None)) is None


def test_a_cancelled_transactions_reasons_are_read_in_order_with_none_for_a_passed_action():
    error = client_error(
        "TransactionCanceledException",
        400,
        CancellationReasons=[{"Code": "None"}, {"Code": "ConditionalCheckFailed"}, {}],
    )
    assert aws_errors.cancellation_reasons(error) == ["None", "ConditionalCheckFailed", "None"]
    assert aws_errors.cancellation_reasons(client_error("X", 400)) == []


@pytest.mark.parametrize(
    ("status", "code", "throttled"),
    [
        (429, "", True),
        (400, "ThrottlingException", True),
        (400, "LimitExceededException", True),
        (400, "TooManyRequestsException", True),
        (400, "ValidationException", False),
        (500, "", False),
    ],
)
def test_a_429_or_a_throttling_code_means_throttled(status, code, throttled):
    assert aws_errors.is_throttled(status, code) is throttled


def test_lambda_throttling_is_told_apart_from_other_throttling_codes():
    codes = aws_errors.LAMBDA_THROTTLED_CODES
    assert aws_errors.is_throttled(400, "TooManyRequestsException", codes)
    assert not aws_errors.is_throttled(400, "ThrottlingException", codes)
    assert codes <= aws_errors.LAMBDA_NOT_RUN_CODES  # a throttled invocation never ran


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttles_and_server_errors_but_501_are_worth_sending_again(status):
    assert aws_errors.is_retryable_status(status)


@pytest.mark.parametrize("status", [0, 200, 400, 403, 410, 413, 501])
def test_success_client_errors_and_not_implemented_are_not_sent_again(status):
    assert not aws_errors.is_retryable_status(status)


def test_no_adapter_reads_an_error_code_or_status_from_a_response_itself():
    for name in ("store.py", "notifier.py", "fanout.py", "sharding.py"):
        tree = ast.parse((CHAT / name).read_text(encoding="utf-8"))
        keys = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not keys & {"HTTPStatusCode", "Error"}, name
        assert not any(k.endswith("Exception") for k in keys), name
