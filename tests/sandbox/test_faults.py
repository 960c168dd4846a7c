"""Fault switches (docs/sandbox.md, "Fault switches"): each one, on the echo fixture stack.

Every switch is off by default (the other modules run with none); these tests start their
own sandboxes with switches on and check the documented outcome of each.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.faults import (
    ConnectionSelector,
    FaultConfig,
    FaultConfigError,
    Faults,
    SdkAttempt,
    dynamodb_throttle_body,
    trace_root,
)
from sandbox.lambdas import FUNCTION_ACCESS_KEY_ID, FunctionConfig, FunctionPool
from sandbox.stack_model import FunctionSpec
from tests.support.sandbox import (
    ECHO_TEMPLATE,
    REGION,
    ROOT,
    Sandbox,
    connection_id_of,
    recv_text,
    running_sandbox,
    wait_for,
)

pytestmark = pytest.mark.sandbox


def management(sandbox: Sandbox, attempts: int) -> Any:
    """A boto3 @connections client with botocore's standard retries and `attempts` in all."""
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=sandbox.callback_url,
        verify=sandbox.ca_bundle,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def dynamodb_as(sandbox: Sandbox, access_key: str, attempts: int) -> Any:
    """A boto3 DynamoDB client for the embedded endpoint, signing with `access_key`."""
    return boto3.client(
        "dynamodb",
        endpoint_url=sandbox.banner_value("DynamoDB"),
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def raw_post(
    sandbox: Sandbox, connection_id: str, data: bytes
) -> tuple[int, dict[str, str], bytes]:
    connection = sandbox.https_connection(timeout=10)
    try:
        connection.request("POST", f"/dev/@connections/{quote(connection_id, safe='')}", data)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def fault_lines(sandbox: Sandbox, pattern: str) -> list[str]:
    return [
        line for line in sandbox.log().splitlines() if "fault:" in line and re.search(pattern, line)
    ]


# -- the switches without a server ------------------------------------------------------------


def test_everything_is_off_by_default() -> None:
    # GIVEN no switches WHEN the sandbox asks THEN nothing is injected
    faults = Faults()
    assert faults.config.describe() == []
    assert faults.selects([("fault", "1")]) is False
    assert faults.drops_disconnect() is False
    assert faults.throttles("PutItem", SdkAttempt()) is False
    assert faults.crashes("1-abc", "sendPublic") is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", ConnectionSelector()),
        ("0.25", ConnectionSelector(fraction=0.25)),
        ("query:fault=slow", ConnectionSelector(query=("fault", "slow"))),
        ("query:flag=", ConnectionSelector(query=("flag", ""))),
    ],
)
def test_connection_selectors_parse(text: str, expected: ConnectionSelector) -> None:
    assert ConnectionSelector.parse(text) == expected


@pytest.mark.parametrize("text", ["none", "0", "1.5", "query:", "query:novalue", "query:=x"])
def test_bad_connection_selectors_are_refused(text: str) -> None:
    with pytest.raises(FaultConfigError):
        ConnectionSelector.parse(text)


@pytest.mark.parametrize(
    "config",
    [
        {"post_error_rate": 1.5},
        {"drop_disconnect_rate": -0.1},
        {"dynamodb_throttle_rate": 2.0},
        {"post_latency_ms": -1.0},
        {"post_error_status": 503},
        {"crash_after_posts": -1},
        {"sdk_backoff_scale": 0.0},
        {"sdk_backoff_scale": 2.0},
    ],
)
def test_out_of_range_switches_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(FaultConfigError):
        FaultConfig(**config)


def test_sdk_attempt_headers_and_trace_roots_are_read() -> None:
    headers = {
        "amz-sdk-request": "ttl=20260101T000000Z; attempt=3; max=3",
        "amz-sdk-invocation-id": "0f1e2d3c-aaaa-bbbb-cccc-000000000000",
    }
    attempt = SdkAttempt.from_headers(headers.get)
    assert (attempt.attempt, attempt.max_attempts, attempt.call) == (3, 3, "0f1e2d3c")
    assert attempt.is_last_of_several
    assert not SdkAttempt(attempt=1, max_attempts=1).is_last_of_several
    assert not SdkAttempt().is_last_of_several
    header = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=0"
    assert trace_root(header) == "1-67891233-abcdef012345678912345678"
    assert trace_root(None) is None


def test_the_crash_switch_counts_posts_per_invocation_and_route() -> None:
    # GIVEN a crash at the 2nd post of a sendPublic invocation, once
    faults = Faults(FaultConfig(crash_after_posts=2, crash_route="sendPublic", crash_count=1))
    # THEN other routes and unknown callers never crash
    assert [faults.crashes("other", "setName") for _ in range(3)] == [False] * 3
    assert faults.crashes(None, "sendPublic") is False
    # AND the first sendPublic invocation dies at its 2nd post, and stays dead
    assert [faults.crashes("first", "sendPublic") for _ in range(3)] == [False, True, True]
    # AND no other invocation crashes (K = 1)
    assert [faults.crashes("second", "sendPublic") for _ in range(3)] == [False] * 3


def test_dynamodb_throttle_answers_use_dynamodbs_error_format() -> None:
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/T"
    error, body = dynamodb_throttle_body("UpdateItem", arn)
    payload = json.loads(body)
    assert error == "ProvisionedThroughputExceededException"
    assert payload["__type"] == (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    )
    assert payload["ThrottlingReasons"] == [
        {"reason": "TableWriteKeyRangeThroughputExceeded", "resource": arn}
    ]
    assert json.loads(dynamodb_throttle_body("Query", arn)[1])["ThrottlingReasons"][0][
        "reason"
    ].startswith("TableRead")
    error, body = dynamodb_throttle_body("DescribeTable", arn)
    assert error == "ThrottlingException"
    assert json.loads(body)["__type"].endswith("#ThrottlingException")


def test_a_seed_makes_the_random_choices_repeatable() -> None:
    def draws() -> list[bool]:
        faults = Faults(FaultConfig(drop_disconnect_rate=0.5, seed=42))
        return [faults.drops_disconnect() for _ in range(40)]

    assert draws() == draws()
    assert 0 < sum(draws()) < 40


# -- the command line -------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", "--template", str(ECHO_TEMPLATE), "--port", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_documents_every_fault_switch() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in (
        "--fault-post-latency-ms",
        "--fault-post-error-rate",
        "--fault-post-error-status",
        "--fault-post-connections",
        "--fault-post-break",
        "--fault-post-late-ms",
        "--fault-idle-close-ms",
        "--fault-drop-disconnect-rate",
        "--fault-dynamodb-throttle-rate",
        "--fault-crash-after-posts",
        "--fault-crash-route",
        "--fault-crash-count",
        "--fault-spare-last-attempt",
        "--fault-sdk-backoff-scale",
        "--fault-seed",
    ):
        assert option in result.stdout
    for option in ("--tls-port", "--tls-dir"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault-post-error-rate", "2"], "--fault-post-error-rate must be between 0 and 1"),
        (["--fault-post-connections", "some"], "expected all, a fraction or query:NAME=VALUE"),
        (["--fault-post-late-ms", "0"], "--fault-post-late-ms must be positive"),
        (["--fault-idle-close-ms", "-1"], "--fault-idle-close-ms must not be negative"),
        (
            ["--fault-dynamodb-throttle-rate", "0.1", "--dynamodb-endpoint", "http://127.0.0.1:9"],
            "needs the embedded DynamoDB",
        ),
    ],
)
def test_unusable_fault_switches_exit_2_with_a_clear_error(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


# -- @connections POST faults: latency and errors, on selected connections -------------------


@pytest.fixture(scope="module")
def slow_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """POSTs to connections opened with ?fault=1 take 300 ms, and half are answered 429."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path_factory.mktemp("post-faults"),
        "--fault-post-connections",
        "query:fault=1",
        "--fault-post-latency-ms",
        "300",
        "--fault-post-error-rate",
        "0.5",
        "--fault-seed",
        "7",
    ) as sandbox:
        yield sandbox


def test_the_banner_lists_the_switches_that_are_on(slow_sandbox: Sandbox) -> None:
    lines = [line for line in slow_sandbox.log().splitlines() if line.startswith("Fault:")]
    assert lines == [
        "Fault:         @connections POST to connections opened with ?fault=1: +300 ms, "
        "50% answered 429 LimitExceededException",
        "Fault:         seed 7",
    ]


def test_posts_to_other_connections_are_untouched(slow_sandbox: Sandbox) -> None:
    # GIVEN a connection opened without ?fault=1
    client = management(slow_sandbox, attempts=1)
    with slow_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it gets ten posts THEN each is fast and delivered, in order
        for n in range(10):
            started = time.monotonic()
            client.post_to_connection(ConnectionId=cid, Data=f"m{n}".encode())
            assert time.monotonic() - started < 0.3
        assert [recv_text(ws) for _ in range(10)] == [f"m{n}" for n in range(10)]


def test_posts_to_a_selected_connection_are_slow_and_some_answer_429(slow_sandbox: Sandbox) -> None:
    # GIVEN a connection opened with ?fault=1 and a client that does not retry
    client = management(slow_sandbox, attempts=1)
    with slow_sandbox.connect("fault=1") as ws:
        cid = connection_id_of(ws)
        delivered, refused = [], 0
        for n in range(10):
            started = time.monotonic()
            try:
                client.post_to_connection(ConnectionId=cid, Data=f"m{n}".encode())
                delivered.append(f"m{n}")
            except client.exceptions.LimitExceededException as exc:
                # THEN a refused post is a 429 LimitExceededException, as boto3 reads it
                assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
                refused += 1
            # AND every post took at least the added latency
            assert time.monotonic() - started >= 0.3
        # AND some were refused, and exactly the others arrived, in order
        assert 0 < refused < 10
        assert [recv_text(ws) for _ in delivered] == delivered
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
    # AND each refusal is in the log
    assert len(fault_lines(slow_sandbox, rf"POST {re.escape(cid)} .* answered 429")) == refused


def test_a_refused_post_has_the_error_type_header_and_a_json_body(slow_sandbox: Sandbox) -> None:
    with slow_sandbox.connect("fault=1") as ws:
        cid = connection_id_of(ws)
        answers = [raw_post(slow_sandbox, cid, b"x") for _ in range(8)]
    refused = [(headers, body) for status, headers, body in answers if status == 429]
    assert refused, "the seeded generator refused none of eight posts"
    headers, body = refused[0]
    assert headers["x-amzn-ErrorType"] == "LimitExceededException"
    assert json.loads(body) == {"message": "Too Many Requests"}
    assert {status for status, _, _ in answers} <= {200, 429}


# -- retries: errors on every attempt but the last ------------------------------------------


@pytest.fixture(scope="module")
def failing_posts_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Every POST is answered 500, except an SDK's last announced attempt."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path_factory.mktemp("post-errors"),
        "--fault-post-error-rate",
        "1",
        "--fault-post-error-status",
        "500",
        "--fault-spare-last-attempt",
    ) as sandbox:
        yield sandbox


def test_a_client_that_retries_gets_through_on_its_last_attempt(
    failing_posts_sandbox: Sandbox,
) -> None:
    # GIVEN a client with botocore's standard retries (3 attempts)
    client = management(failing_posts_sandbox, attempts=3)
    with failing_posts_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it posts THEN the post succeeds, and is delivered once
        client.post_to_connection(ConnectionId=cid, Data=b"persistent")
        assert recv_text(ws) == "persistent"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
    # AND the log shows two 500s and the spared third attempt of one call
    failed = fault_lines(
        failing_posts_sandbox, rf"POST {re.escape(cid)} \(attempt [12]/3, call \w+\) answered 500"
    )
    spared = fault_lines(
        failing_posts_sandbox, rf"POST {re.escape(cid)} \(attempt 3/3, call \w+\) spared"
    )
    assert len(failed) == 2
    assert len(spared) == 1
    call = spared[0].split("call ")[1].split(")")[0]
    assert all(f"call {call})" in line for line in failed)


def test_a_client_that_does_not_retry_sees_the_500(failing_posts_sandbox: Sandbox) -> None:
    # GIVEN a client that makes one attempt only (nothing is spared for it)
    client = management(failing_posts_sandbox, attempts=1)
    with failing_posts_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it posts THEN boto3 raises the 500, and nothing is delivered
        with pytest.raises(ClientError) as failed:
            client.post_to_connection(ConnectionId=cid, Data=b"lost")
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert failed.value.response["Error"]["Code"] == "InternalServerErrorException"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)


# -- DynamoDB throttling ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def throttling_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Every DynamoDB request signed with the functions' key is throttled, but the last."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path_factory.mktemp("throttling"),
        "--fault-dynamodb-throttle-rate",
        "1",
        "--fault-spare-last-attempt",
    ) as sandbox:
        yield sandbox


ITEM = {"pk": {"S": "throttle-test"}, "sk": {"S": "1"}}


def test_function_requests_are_throttled_in_dynamodbs_format(throttling_sandbox: Sandbox) -> None:
    # GIVEN a client signing as the functions do, without retries
    db = dynamodb_as(throttling_sandbox, FUNCTION_ACCESS_KEY_ID, attempts=1)
    # WHEN it writes THEN boto3 raises ProvisionedThroughputExceededException from a 400
    with pytest.raises(db.exceptions.ProvisionedThroughputExceededException) as throttled:
        db.put_item(TableName="EventsTable", Item=ITEM)
    response = throttled.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ThrottlingReasons"] == [
        {
            "reason": "TableWriteKeyRangeThroughputExceeded",
            "resource": "arn:aws:dynamodb:us-east-1:000000000000:table/EventsTable",
        }
    ]
    # AND a table operation gets ThrottlingException
    with pytest.raises(ClientError) as control:
        db.describe_table(TableName="EventsTable")
    assert control.value.response["Error"]["Code"] == "ThrottlingException"


def test_throttled_requests_are_retried_by_the_sdk(throttling_sandbox: Sandbox) -> None:
    # GIVEN a client signing as the functions do, with two attempts
    db = dynamodb_as(throttling_sandbox, FUNCTION_ACCESS_KEY_ID, attempts=2)
    # WHEN it writes THEN the first attempt is throttled, the retry goes through
    db.put_item(TableName="EventsTable", Item=ITEM)
    throttled = fault_lines(
        throttling_sandbox, r"DynamoDB PutItem \(attempt 1/2, call \w+\) throttled"
    )
    spared = fault_lines(throttling_sandbox, r"DynamoDB PutItem \(attempt 2/2, call \w+\) spared")
    assert throttled and spared
    # AND the item is there
    assert "Item" in throttling_sandbox.dynamodb().get_item(TableName="EventsTable", Key=ITEM)


def test_other_clients_are_never_throttled(throttling_sandbox: Sandbox) -> None:
    # GIVEN the tests' own client (another key) WHEN it reads many times THEN no throttling
    db = dynamodb_as(throttling_sandbox, "testing", attempts=1)
    for _ in range(20):
        db.describe_table(TableName="EventsTable")


# -- lost $disconnects and crashed execution environments -------------------------------------


@pytest.fixture(scope="module")
def lifecycle_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Every $disconnect is dropped; the first $default invocation dies at its 2nd post."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path_factory.mktemp("lifecycle"),
        "--fault-drop-disconnect-rate",
        "1",
        "--fault-crash-after-posts",
        "2",
        "--fault-crash-route",
        "$default",
    ) as sandbox:
        yield sandbox


def test_a_dropped_disconnect_never_reaches_the_function(lifecycle_sandbox: Sandbox) -> None:
    # GIVEN a connection that closes
    with lifecycle_sandbox.connect() as ws:
        cid = connection_id_of(ws)
    # THEN the sandbox says it dropped the $disconnect
    wait_for(
        lambda: (
            fault_lines(lifecycle_sandbox, rf"\$disconnect of {re.escape(cid)} dropped") or None
        ),
        what="the dropped $disconnect line",
    )
    # AND the connection is gone, but the function never heard of it
    with pytest.raises(lifecycle_sandbox.management().exceptions.GoneException):
        lifecycle_sandbox.management().get_connection(ConnectionId=cid)
    time.sleep(0.5)
    assert lifecycle_sandbox.events(cid, "DISCONNECT") == []


def test_a_crash_at_the_nth_post_kills_the_environment(lifecycle_sandbox: Sandbox) -> None:
    with lifecycle_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # GIVEN an invocation (route $default) that posts three frames one after another
        ws.send('{"action":"posts","count":3,"data":"x"}')
        # THEN the first post arrives, then its environment dies at the second: the client
        # gets API Gateway's error frame, and neither the second nor the third post arrives
        assert recv_text(ws) == "x0"
        error = json.loads(recv_text(ws))
        assert error["message"] == "Internal server error"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)
        # AND the log names the kill and the runtime's exit, as Lambda words it
        log = lifecycle_sandbox.log()
        assert re.search(r"fault: killing EchoFunction \(pid \d+, route \$default\)", log)
        assert "Runtime exited with error: signal: killed" in log
        assert re.search(rf"\$default {re.escape(cid)} error Runtime.ExitError", log)
        # AND the crash happens once (--fault-crash-count 1): a fresh environment serves the
        # same request in full
        ws.send('{"action":"posts","count":3,"data":"y"}')
        assert [recv_text(ws) for _ in range(4)] == ["y0", "y1", "y2", "ok,ok,ok"]


# -- the functions' SDK retry backoff ----------------------------------------------------------

# A handler that reports the wait botocore's standard retry mode picks before the third
# attempt of a throttled call, with the random jitter fixed at its maximum.
BACKOFF_HANDLER = """
from botocore.retries import standard


class Throttled:
    def is_throttling_error_from_context(self, context):
        return True


class ThirdAttempt:
    attempt_number = 3
    http_response = None


def handler(event, context):
    backoff = standard.ExponentialBackoff(random=lambda: 1.0, throttling_detector=Throttled())
    return backoff.delay_amount(ThirdAttempt())
"""


def backoff_in_an_environment(tmp_path: Path, scale: float) -> float:
    """The retry wait the handler above sees in an execution environment run with
    `--fault-sdk-backoff-scale scale`."""
    (tmp_path / "backoff.py").write_text(BACKOFF_HANDLER)
    spec = FunctionSpec(
        logical_id="Backoff",
        name="Backoff",
        arn="arn:aws:lambda:us-east-1:000000000000:function:Backoff",
        handler="backoff.handler",
        runtime="python3.12",
        timeout_s=10,
        memory_mb=128,
        code_dir=tmp_path,
        environment={},
    )
    environment = {"PATH": os.environ.get("PATH", ""), "AWS_LAMBDA_LOG_GROUP_NAME": "/test"}

    async def invoke() -> float:
        pool = FunctionPool(
            FunctionConfig(spec, environment, sdk_backoff_scale=scale), max_workers=1
        )
        try:
            result = await pool.invoke({})
        finally:
            await pool.close()
        assert result.status == "ok", result.error
        return float(result.payload)

    return asyncio.run(invoke())


def test_the_sdk_backoff_scale_shortens_the_functions_retry_waits(tmp_path: Path) -> None:
    # GIVEN botocore's wait before a throttled call's third attempt: up to 1 s x 2^2
    assert backoff_in_an_environment(tmp_path, 1.0) == 4.0
    # WHEN the environment runs with --fault-sdk-backoff-scale 0.05 THEN it is 20 times shorter
    assert backoff_in_an_environment(tmp_path, 0.05) == pytest.approx(0.2)
    # AND the banner says so
    assert FaultConfig(sdk_backoff_scale=0.05).describe() == [
        "the functions' SDK retry backoff scaled by 0.05"
    ]
