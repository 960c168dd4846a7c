"""The review hook: its answers read as decisions, the gate's fallback, the service's use of
it (lobby, v1), and the Lambda adapter's errors (chat/review.py, chat/review_hook.py)."""

from __future__ import annotations

import io
import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from chat import deadline, review
from chat.errors import ChatError, ErrorCode
from chat.ports import ReviewUnavailableError
from chat.review import ReviewGate, read_answer
from chat.review_hook import LambdaReviewer
from chat.service import ChatService, validate_message
from chat.settings import Limits
from tests.support.fakes import FakeClock, InMemoryStore, RecordingNotifier

TTL = 10_800
ROOMY = Limits(message_burst=1000, name_burst=100, max_room_size=1000)


class ScriptedReviewer:
    """A Reviewer that answers with `answer` (or raises it) and records each request."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self.timeouts: list[float] = []

    def review(self, request: Any, timeout: float) -> object:
        self.requests.append(dict(request))
        self.timeouts.append(timeout)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def gate(answer: object, fallback: str = "allow", failures: list[str] | None = None) -> ReviewGate:
    seen = failures if failures is not None else []
    return ReviewGate(
        ScriptedReviewer(answer),
        timeout_seconds=0.2,
        fallback_decision=fallback,
        validate=validate_message,
        on_failure=seen.append,
    )


def check(g: ReviewGate, text: str = "hello") -> review.Verdict:
    return g.check(room="lobby", name="Ana", subject=None, text=text, message_id=None)


# --- answers -----------------------------------------------------------------------------


def test_allow_keeps_the_message():
    assert read_answer({"decision": "allow"}, "hi", validate_message) == review.Verdict(
        "allow", "hi"
    )


def test_deny_carries_its_reason_cleaned_and_cut():
    verdict = read_answer(
        {"decision": "deny", "reason": "no\u0000  spam " + "x" * 300}, "hi", validate_message
    )
    assert verdict.decision == "deny"
    assert verdict.reason is not None
    assert verdict.reason.startswith("no spam x")
    assert len(verdict.reason) == review.REASON_MAX_LENGTH


def test_replace_posts_the_replacement_checked_like_a_message():
    verdict = read_answer({"decision": "replace", "message": "  h*llo "}, "hello", validate_message)
    assert (verdict.decision, verdict.text, verdict.replaced) == ("allow", "h*llo", True)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        "allow",
        {},
        {"decision": "ALLOW"},
        {"decision": "maybe"},
        {"decision": "replace"},
        {"decision": "replace", "message": ""},
        {"decision": "replace", "message": "x" * 2001},
        {"decision": "replace", "message": "bad\u202econtrol"},
    ],
)
def test_anything_else_is_an_invalid_answer(answer):
    with pytest.raises(review.InvalidAnswerError):
        read_answer(answer, "hello", validate_message)


def test_the_request_carries_sub_and_message_id_only_when_known():
    assert review.review_request(
        room="lobby", name="Ana", subject=None, text="hi", message_id=None
    ) == {"room": "lobby", "name": "Ana", "message": "hi"}
    assert review.review_request(
        room="r", name="Ana", subject="s-1", text="hi", message_id="m1"
    ) == {"room": "r", "name": "Ana", "sub": "s-1", "message": "hi", "messageId": "m1"}


# --- the gate: the hook decides, or the fallback does ------------------------------------


@pytest.mark.parametrize("fallback", ["allow", "deny"])
@pytest.mark.parametrize(
    "answer",
    [ReviewUnavailableError("no answer within 200 ms"), {"decision": "perhaps"}, 42],
)
def test_a_timeout_an_error_or_an_invalid_answer_is_decided_by_the_fallback(answer, fallback):
    failures: list[str] = []
    verdict = check(gate(answer, fallback, failures))
    assert verdict.decision == fallback
    assert verdict.failure is not None
    assert failures == [verdict.failure]


def test_a_decision_of_the_hook_is_no_failure():
    failures: list[str] = []
    verdict = check(gate({"decision": "deny"}, "allow", failures))
    assert (verdict.decision, verdict.failure, failures) == ("deny", None, [])


def test_the_wait_never_outlasts_the_invocations_deadline():
    reviewer = ScriptedReviewer({"decision": "allow"})
    g = ReviewGate(
        reviewer, timeout_seconds=0.2, fallback_decision="allow", validate=validate_message
    )
    with deadline.running(deadline.Deadline.after(0.05)):
        check(g)
    assert 0 < reviewer.timeouts[0] <= 0.05
    failures: list[str] = []
    g = ReviewGate(
        reviewer,
        timeout_seconds=0.2,
        fallback_decision="deny",
        validate=validate_message,
        on_failure=failures.append,
    )
    with deadline.running(deadline.Deadline.after(0)):
        assert check(g).decision == "deny"
    assert len(reviewer.requests) == 1  # no time left: not even asked
    assert "deadline" in failures[0]


def test_the_fallback_must_be_allow_or_deny():
    with pytest.raises(ValueError, match="allow or deny"):
        gate({"decision": "allow"}, "replace")


# --- the service -------------------------------------------------------------------------


@pytest.fixture
def chat() -> tuple[ChatService, RecordingNotifier]:
    clock = FakeClock()
    notifier = RecordingNotifier()
    service = ChatService(
        InMemoryStore(clock), notifier, connection_ttl_seconds=TTL, limits=ROOMY, clock=clock
    )
    for cid, name in (("ana=", "Ana"), ("bob=", "Bob")):
        service.connect(cid)
        service.set_name(service.admit(cid, "setName"), name)
    notifier.clear()
    return service, notifier


def send(service: ChatService, text: str, client_id: str | None = None) -> None:
    service.send_public(service.admit("ana=", "sendPublic"), text, client_id)


def test_a_denied_message_is_neither_posted_nor_numbered(chat):
    service, notifier = chat
    reviewer = ScriptedReviewer({"decision": "deny", "reason": "no links"})
    service.use_review(
        ReviewGate(
            reviewer, timeout_seconds=1, fallback_decision="allow", validate=validate_message
        )
    )
    with pytest.raises(ChatError) as excinfo:
        send(service, "see http://spam", "m-1")
    assert excinfo.value.code == ErrorCode.REJECTED
    assert excinfo.value.details == {"reason": "no links"}
    assert "no links" in excinfo.value.message
    assert notifier.inbox == {}
    # AND the hook saw the room, the name, the text and the id the message would have had
    (request,) = reviewer.requests
    assert request["room"] == "lobby"
    assert (request["name"], request["message"]) == ("Ana", "see http://spam")
    # WHEN the next one is allowed, it is the first message of the room
    reviewer.answer = {"decision": "allow"}
    send(service, "hello", "m-2")
    (frame,) = notifier.frames("bob=")
    assert frame["seq"] == 1
    assert frame["messageId"] == reviewer.requests[-1]["messageId"]


def test_a_replacement_is_what_everyone_gets(chat):
    service, notifier = chat
    reviewer = ScriptedReviewer({"decision": "replace", "message": "what a **** day"})
    service.use_review(
        ReviewGate(reviewer, timeout_seconds=1, fallback_decision="deny", validate=validate_message)
    )
    send(service, "what a darn day")
    assert [f["text"] for f in notifier.frames("bob=")] == ["what a **** day"]
    assert [f["text"] for f in notifier.frames("ana=")] == ["what a **** day"]


def test_with_the_deny_fallback_a_broken_hook_rejects_without_a_reason(chat):
    service, notifier = chat
    service.use_review(gate(ReviewUnavailableError("the hook failed"), "deny"))
    with pytest.raises(ChatError) as excinfo:
        send(service, "hello")
    assert excinfo.value.code == ErrorCode.REJECTED
    assert excinfo.value.details == {}
    assert "could not be reviewed" in excinfo.value.message
    assert notifier.inbox == {}


# --- the Lambda adapter ------------------------------------------------------------------


class FakeLambda:
    """boto3's lambda client as the adapter calls it: invoke answers or raises."""

    def __init__(self, outcome: Any, delay: float = 0.0) -> None:
        self.outcome = outcome
        self.delay = delay
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        time.sleep(self.delay)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        result: dict[str, Any] = self.outcome
        return result


def answer(payload: bytes, function_error: str | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(payload)}
    if function_error:
        result["FunctionError"] = function_error
    return result


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "Invoke",
    )


def test_the_adapter_invokes_the_hook_synchronously_with_the_request():
    client = FakeLambda(answer(b'{"decision":"allow"}'))
    reviewer = LambdaReviewer(client, "chat-review")
    assert reviewer.review({"room": "lobby", "message": "h\u00e9"}, 1.0) == {"decision": "allow"}
    (call,) = client.calls
    assert call["FunctionName"] == "chat-review"
    assert call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"room": "lobby", "message": "h\u00e9"}


@pytest.mark.parametrize(
    ("outcome", "says"),
    [
        (client_error("TooManyRequestsException", 429), "throttled"),
        (client_error("ResourceNotFoundException", 404), "not run"),
        (client_error("ServiceException", 500), "Invoke failed (ServiceException)"),
        (ReadTimeoutError(endpoint_url="https://lambda"), "timed out"),
        (EndpointConnectionError(endpoint_url="https://lambda"), "not reached"),
        (answer(b'{"errorMessage":"boom"}', "Unhandled"), "the hook failed (Unhandled)"),
        (answer(b"not json"), "not JSON"),
    ],
)
def test_every_way_the_invoke_fails_is_a_review_unavailable(outcome, says):
    reviewer = LambdaReviewer(FakeLambda(outcome), "chat-review")
    with pytest.raises(ReviewUnavailableError, match=re.escape(says)):
        reviewer.review({"message": "hi"}, 1.0)


def test_a_slow_hook_is_given_up_at_the_timeout():
    reviewer = LambdaReviewer(FakeLambda(answer(b"{}"), delay=0.5), "chat-review")
    started = time.perf_counter()
    with pytest.raises(ReviewUnavailableError, match="no answer within 50 ms"):
        reviewer.review({"message": "hi"}, 0.05)
    assert time.perf_counter() - started < 0.4
