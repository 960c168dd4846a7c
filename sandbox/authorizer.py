"""Lambda REQUEST authorizers on $connect: identity sources, method ARN, the policy verdict."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.intrinsics import arn
from sandbox.template import IdentitySource

RESULT_LIMIT_BYTES = 8 * 1024
INVOKE_ACTION = "execute-api:Invoke"


@dataclass(frozen=True)
class Verdict:
    """What API Gateway does after the authorizer answered.

    `status` 200 means go on to the $connect integration, with `authorizer` as the
    connection's `requestContext.authorizer`; 403 or 500 reject the handshake with that
    status. `reason` explains the verdict for the sandbox's log.
    """

    status: int
    reason: str
    authorizer: dict[str, Any] | None = None


def method_arn(region: str, api_id: str, stage: str) -> str:
    """The `methodArn` of $connect, ending `{api id}/{stage}/$connect`."""
    return arn("execute-api", region, f"{api_id}/{stage}/$connect")


def missing_identity(
    sources: Sequence[IdentitySource],
    headers: Iterable[tuple[str, str]],
    query: Iterable[tuple[str, str]],
) -> IdentitySource | None:
    """The first identity source the request lacks (absent or empty), or None if it has all.

    Header names match case-insensitively, query names exactly; the value that counts is the
    one the event's single-value map shows (the last).
    """
    header_values = {name.lower(): value for name, value in headers}
    query_values = dict(query)
    for source in sources:
        if source.location == "header":
            value = header_values.get(source.name.lower())
        else:
            value = query_values.get(source.name)
        if not value:
            return source
    return None


def judge(payload: Any, *, payload_bytes: int, method_arn: str, latency_ms: int) -> Verdict:
    """The verdict on an authorizer's successful response `payload` for `method_arn`.

    Over RESULT_LIMIT_BYTES, or not {principalId, policyDocument[, context]} with string,
    number or boolean context values: 500. A Deny statement matching execute-api:Invoke on
    the method ARN, or no matching Allow: 403. Otherwise 200, with the context's values
    stringified plus `principalId` and `integrationLatency`.
    """
    if payload_bytes > RESULT_LIMIT_BYTES:
        return Verdict(500, f"result of {payload_bytes} bytes exceeds {RESULT_LIMIT_BYTES}")
    if not isinstance(payload, dict):
        return Verdict(500, "result is not a JSON object")
    principal = payload.get("principalId")
    if not isinstance(principal, str):
        return Verdict(500, "result has no principalId string")
    statements = _statements(payload.get("policyDocument"))
    if statements is None:
        return Verdict(500, "result has no valid policyDocument")
    context = _stringified(payload.get("context"))
    if context is None:
        return Verdict(500, "context values must be strings, numbers or booleans")
    effects = {
        statement["Effect"]
        for statement in statements
        if _any_match(statement["Action"], INVOKE_ACTION, ignore_case=True)
        and _any_match(statement["Resource"], method_arn, ignore_case=False)
    }
    if "Deny" in effects:
        return Verdict(403, "policy denies")
    if "Allow" not in effects:
        return Verdict(403, "policy does not allow")
    return Verdict(
        200,
        "policy allows",
        {**context, "principalId": principal, "integrationLatency": latency_ms},
    )


def _statements(document: Any) -> list[dict[str, Any]] | None:
    """The policy's statements with Action and Resource as lists, or None if malformed."""
    if not isinstance(document, dict):
        return None
    raw = document.get("Statement")
    raw = [raw] if isinstance(raw, dict) else raw
    if not isinstance(raw, list) or not raw:
        return None
    statements = []
    for statement in raw:
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            return None
        action = _strings(statement.get("Action"))
        resource = _strings(statement.get("Resource"))
        if action is None or resource is None:
            return None
        statements.append({"Effect": statement["Effect"], "Action": action, "Resource": resource})
    return statements


def _strings(value: Any) -> list[str] | None:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return None
    return values


def _stringified(context: Any) -> dict[str, str] | None:
    """The context map with every value as a string (as API Gateway passes it on), or None
    if it is not a map of strings, numbers and booleans."""
    if context is None:
        return {}
    if not isinstance(context, dict):
        return None
    out = {}
    for key, value in context.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, (bool, int, float)):
            out[key] = json.dumps(value)
        else:
            return None
    return out


def _any_match(patterns: list[str], value: str, *, ignore_case: bool) -> bool:
    """Whether any IAM pattern (`*` any run of characters, `?` one character) matches."""
    flags = re.IGNORECASE if ignore_case else 0
    for pattern in patterns:
        regex = "".join(
            ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
        )
        if re.fullmatch(regex, value, flags | re.DOTALL):
            return True
    return False
