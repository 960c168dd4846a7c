"""The authorizer's rules without a server: identity sources, method ARN, policy verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.authorizer import RESULT_LIMIT_BYTES, judge, method_arn, missing_identity
from sandbox.template import IdentitySource

ARN = "arn:aws:execute-api:us-east-1:000000000000:abcdef1234/dev/$connect"


def answer(*statements: dict[str, Any], context: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "principalId": "me",
        "policyDocument": {"Version": "2012-10-17", "Statement": list(statements)},
    }
    if context is not None:
        out["context"] = context
    return out


def statement(effect: str, resource: Any = ARN, action: Any = "execute-api:Invoke") -> Any:
    return {"Effect": effect, "Action": action, "Resource": resource}


def verdict_of(payload: Any) -> Any:
    return judge(payload, payload_bytes=len(json.dumps(payload)), method_arn=ARN, latency_ms=7)


def test_method_arn_ends_with_stage_and_connect() -> None:
    assert method_arn("us-east-1", "abcdef1234", "dev") == ARN


def test_missing_identity_finds_absent_or_empty_sources() -> None:
    # GIVEN a header source (any case) and a query source (exact name)
    sources = [
        IdentitySource("header", "Sec-WebSocket-Protocol"),
        IdentitySource("querystring", "t"),
    ]
    headers = [("sec-websocket-protocol", "jwt")]
    # THEN the request lacks whichever is absent or empty, and nothing when both are set
    assert missing_identity(sources, headers, [("t", "x")]) is None
    assert missing_identity(sources, headers, [("T", "x")]) == sources[1]
    assert missing_identity(sources, headers, [("t", "")]) == sources[1]
    assert missing_identity(sources, [("Sec-WebSocket-Protocol", "")], [("t", "x")]) == sources[0]
    assert missing_identity([], [], []) is None


@pytest.mark.parametrize(
    "resource",
    [ARN, "*", "arn:aws:execute-api:*:*:abcdef1234/*/*", [f"{ARN}x", "arn:aws:execute-api:*"]],
)
def test_allow_matching_the_method_arn_lets_the_connection_in(resource: Any) -> None:
    # GIVEN an Allow for the method ARN (exactly or by wildcard) and a context
    payload = answer(statement("Allow", resource), context={"s": "v", "n": 1.5, "b": False})
    # WHEN it is judged THEN the connection goes ahead with the context stringified
    verdict = verdict_of(payload)
    assert verdict.status == 200
    assert verdict.authorizer == {
        "s": "v",
        "n": "1.5",
        "b": "false",
        "principalId": "me",
        "integrationLatency": 7,
    }


@pytest.mark.parametrize(
    "statements",
    [
        [statement("Deny")],
        [statement("Allow"), statement("Deny", "*")],
        [statement("Allow", f"{ARN}/other")],
        [statement("Allow", action="execute-api:ManageConnections")],
    ],
)
def test_deny_or_no_matching_allow_is_403(statements: list[Any]) -> None:
    assert verdict_of(answer(*statements)).status == 403


def test_action_matches_case_insensitively_with_wildcards() -> None:
    assert verdict_of(answer(statement("Allow", action="Execute-API:*"))).status == 200


@pytest.mark.parametrize(
    "payload",
    [
        "Allow",
        {"policyDocument": answer(statement("Allow"))["policyDocument"]},
        {"principalId": "me"},
        {"principalId": "me", "policyDocument": {"Statement": []}},
        answer(statement("Maybe")),
        answer({"Effect": "Allow", "Action": "execute-api:Invoke"}),
        answer(statement("Allow"), context={"k": None}),
        answer(statement("Allow"), context={"k": {"nested": 1}}),
        answer(statement("Allow"), context=["k"]),
    ],
)
def test_invalid_output_is_500(payload: Any) -> None:
    assert verdict_of(payload).status == 500


def test_result_over_8_kb_is_500_even_when_it_allows() -> None:
    payload = answer(statement("Allow"), context={"k": "x" * RESULT_LIMIT_BYTES})
    assert verdict_of(payload).status == 500
    small = answer(statement("Allow"))
    assert (
        judge(small, payload_bytes=RESULT_LIMIT_BYTES, method_arn=ARN, latency_ms=0).status == 200
    )
