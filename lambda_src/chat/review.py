"""The review hook's contract and the decision it leads to: pure logic, no boto3.

Before a public message is recorded the hook gets `{"room", "name", "sub"?, "message",
"messageId"?}` and answers `{"decision": "allow" | "deny" | "replace", "message"?,
"reason"?}`. No answer within `reviewHookTimeoutMs` (never past the invocation's
deadline), an error, or an answer that is none of these: `reviewHookFallback` decides, and
the failure is logged and counted. The contract in full: docs/operations.md#review-hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chat import deadline
from chat.errors import ChatError
from chat.ports import Reviewer, ReviewUnavailableError

log = logging.getLogger("chat.review")

ALLOW, DENY, REPLACE = "allow", "deny", "replace"
FALLBACKS = (ALLOW, DENY)
# A deny's reason as the sender sees it: printable characters, at most this many.
REASON_MAX_LENGTH = 200


class InvalidAnswerError(ValueError):
    """The hook's answer is not one of the three decisions (the message says why)."""


@dataclass(frozen=True)
class Verdict:
    """What happens to the message: `allow` (with `text`, the original or the hook's
    replacement) or `deny` (with the hook's `reason`, if any). `failure` says why the
    fallback decided instead of the hook (None: the hook did)."""

    decision: str
    text: str
    reason: str | None = None
    failure: str | None = None
    replaced: bool = False


def review_request(
    *, room: str, name: str, subject: str | None, text: str, message_id: str | None
) -> dict[str, Any]:
    """The hook's event for one message ("sub" and "messageId" only when known)."""
    request: dict[str, Any] = {"room": room, "name": name}
    if subject:
        request["sub"] = subject
    request["message"] = text
    if message_id:
        request["messageId"] = message_id
    return request


def read_answer(answer: object, text: str, validate: Callable[[object], str]) -> Verdict:
    """The hook's answer as a verdict. Raises InvalidAnswerError when it is not a decision,
    or a replacement is not a valid message (`validate` raising ChatError)."""
    if not isinstance(answer, dict):
        raise InvalidAnswerError(f"the answer is {type(answer).__name__}, not an object")
    decision = answer.get("decision")
    if decision == ALLOW:
        return Verdict(ALLOW, text)
    if decision == DENY:
        return Verdict(DENY, text, reason=_reason(answer.get("reason")))
    if decision == REPLACE:
        replacement = answer.get("message")
        try:
            checked = validate(replacement)
        except ChatError as error:
            raise InvalidAnswerError(f"the replacement is refused: {error.message}") from None
        return Verdict(ALLOW, checked, replaced=checked != text)
    shown = decision if isinstance(decision, str) else type(decision).__name__
    raise InvalidAnswerError(f"decision {shown[:40]!r} is not allow, deny or replace")


def _reason(raw: object) -> str | None:
    """A deny's reason, cut to printable characters and REASON_MAX_LENGTH; None if none."""
    if not isinstance(raw, str):
        return None
    cleaned = " ".join("".join(ch for ch in raw if ch.isprintable()).split())
    return cleaned[:REASON_MAX_LENGTH] or None


def fallback(setting: str, text: str, failure: str) -> Verdict:
    """The verdict `reviewHookFallback` gives when the hook did not decide."""
    return Verdict(DENY if setting == DENY else ALLOW, text, failure=failure)


class ReviewGate:
    """Asks the hook through `reviewer` (a port: chat/review_hook.py invokes Lambda) and
    turns its answer, or its silence, into a verdict. `on_failure` counts a failure
    (telemetry); `validate` checks a replacement (chat.service.validate_message)."""

    def __init__(
        self,
        reviewer: Reviewer,
        *,
        timeout_seconds: float,
        fallback_decision: str,
        validate: Callable[[object], str],
        on_failure: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        if fallback_decision not in FALLBACKS:
            raise ValueError(f"the fallback must be {' or '.join(FALLBACKS)}")
        self._reviewer = reviewer
        self._timeout = timeout_seconds
        self._fallback = fallback_decision
        self._validate = validate
        self._on_failure = on_failure

    @property
    def fallback_decision(self) -> str:
        return self._fallback

    def check(
        self, *, room: str, name: str, subject: str | None, text: str, message_id: str | None
    ) -> Verdict:
        """The verdict on one message; never raises for the hook's sake."""
        request = review_request(
            room=room, name=name, subject=subject, text=text, message_id=message_id
        )
        started = time.perf_counter()
        budget = deadline.current().cap(self._timeout)
        if budget <= 0:
            failure = "no time left before the invocation's deadline"
        else:
            try:
                answer = self._reviewer.review(request, budget)
            except ReviewUnavailableError as error:
                failure = str(error) or type(error).__name__
            else:
                try:
                    verdict = read_answer(answer, text, self._validate)
                except InvalidAnswerError as error:
                    failure = f"invalid answer: {error}"
                else:
                    log.debug(
                        "review",
                        extra={
                            "room": room,
                            "decision": verdict.decision,
                            "replaced": verdict.replaced,
                            "durationMs": _ms(started),
                        },
                    )
                    return verdict
        log.warning(
            "review hook failed",
            extra={
                "room": room,
                "reason": failure,
                "fallback": self._fallback,
                "durationMs": _ms(started),
            },
        )
        self._on_failure(failure)
        return fallback(self._fallback, text, failure)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
