"""The review hook end to end: templates synthesized with `reviewHook`, the hook run by the
sandbox from the template as any function is (through its Lambda Invoke API), the chat
function waiting for its answer (chat/review.py, docs/operations.md#review-hook).

Two hooks: the shipped word filter (hooks/wordlist) for allow, deny and replace, and a
test-only hook (tests/e2e/hooks/misbehaving) that is slow, raises or answers nonsense on
request, run with each fallback. The templates' wait is raised from the default 200 ms (a
cold hook on this shared machine can take longer to start than that; the logic under test
is the same): 3 s for the word filter, 1 s for the misbehaving hook, which sleeps 1.5 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.chat_client import ChatClient
from tests.support.rooms import chat_clients, room_chat_clients
from tests.support.sandbox import Sandbox, running_sandbox
from tests.support.synth import synth_template

pytestmark = pytest.mark.sandbox

MISBEHAVING = "tests/e2e/hooks/misbehaving"
WAIT_MS = 1000


def with_review_settings(template: Path, suffix: str, **variables: str) -> Path:
    """The template with the chat function's review settings changed, beside the original
    (its relative asset paths still resolve)."""
    document = json.loads(template.read_text())
    changed = 0
    for resource in document["Resources"].values():
        env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if resource["Type"] == "AWS::Lambda::Function" and "REVIEW_HOOK" in env:
            env.update(variables)
            changed += 1
    assert changed == 1, "the chat function (the one with REVIEW_HOOK) was not found"
    path = template.with_name(f"ChatStack.{suffix}.template.json")
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def wordlist_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    work = tmp_path_factory.mktemp("wordlist-hook")
    template = synth_template(work / "cdk.out", "reviewHook=hooks/wordlist", cached=True)
    patched = with_review_settings(template, "wordlist", REVIEW_HOOK_TIMEOUT_MS="3000")
    with running_sandbox(patched, work, "--warm-workers", "1", stage="production") as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def misbehaving_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("misbehaving-hook")
    return synth_template(work / "cdk.out", f"reviewHook={MISBEHAVING}", cached=True)


@pytest.fixture(scope="module", params=["allow", "deny"])
def fallback_sandbox(
    request: pytest.FixtureRequest,
    misbehaving_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Sandbox]]:
    fallback = str(request.param)
    patched = with_review_settings(
        misbehaving_template,
        f"fallback-{fallback}",
        REVIEW_HOOK_TIMEOUT_MS=str(WAIT_MS),
        REVIEW_HOOK_FALLBACK=fallback,
    )
    with running_sandbox(
        patched, tmp_path_factory.mktemp(f"fallback-{fallback}"), stage="production"
    ) as sandbox:
        yield fallback, sandbox


@pytest.fixture
def connect(wordlist_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    yield from room_chat_clients(wordlist_sandbox)


@pytest.fixture
def connect_misbehaving(
    fallback_sandbox: tuple[str, Sandbox],
) -> Iterator[Callable[[], ChatClient]]:
    yield from chat_clients(fallback_sandbox[1])


def pair(connect: Callable[[], ChatClient]) -> tuple[ChatClient, ChatClient]:
    ana, ben = connect().join("Ana"), connect().join("Ben")
    ana.wait_for(lambda f: f.get("event") == "join" and f.get("name") == "Ben")
    return ana, ben


def has_text(text: str) -> Callable[[dict[str, object]], bool]:
    return lambda frame: frame.get("text") == text


def history_texts(client: ChatClient, **fields: object) -> list[str]:
    reply = client.request("history", since=0, **fields)
    return [m.get("text", "") for m in reply["history"]]


def failure_reasons(log: str) -> list[str]:
    """The `reason` of each "review hook failed" line of the chat function's JSON log."""
    reasons = []
    for line in log.splitlines():
        if '"review hook failed"' in line and line.startswith("{"):
            reasons.append(str(json.loads(line).get("reason")))
    return reasons


def logged_failures(
    sandbox: Sandbox, *wanted: str | tuple[str, ...], timeout: float = 10.0
) -> list[str]:
    """The logged failure reasons, once one starting with each of `wanted` (or with one of
    a tuple's prefixes) is there. The sandbox and the chat's environments write one log
    between them: wait for the lines rather than read it once. Fails, listing what was
    logged, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        reasons = failure_reasons(sandbox.log())
        missing = [w for w in wanted if not any(r.startswith(w) for r in reasons)]
        if not missing:
            return reasons
        assert time.monotonic() < deadline, f"no review failure {missing} logged; got {reasons}"
        time.sleep(0.1)


def test_an_allowed_message_is_posted_as_sent(connect):
    ana, ben = pair(connect)
    ana.send("sendPublic", message="a lovely day", id="a1")
    assert ana.wait_for(lambda f: f.get("from") == "Ana")["text"] == "a lovely day"
    assert ben.wait_for(lambda f: f.get("from") == "Ana")["text"] == "a lovely day"


def test_a_replaced_message_is_posted_and_kept_as_the_hook_rewrote_it(connect):
    ana, ben = pair(connect)
    ana.send("sendPublic", message="what a darn day", id="r1")
    mine = ana.wait_for(lambda f: f.get("from") == "Ana")
    assert (mine["text"], mine.get("id")) == ("what a **** day", "r1")
    assert ben.wait_for(lambda f: f.get("from") == "Ana")["text"] == "what a **** day"
    texts = history_texts(ben)
    assert "what a **** day" in texts
    assert not any("darn" in t for t in texts)


def test_a_denied_message_gets_rejected_and_is_neither_posted_nor_kept(connect):
    ana, ben = pair(connect)
    ana.send("sendPublic", message="get free crypto now", id="d1")
    error = ana.error()
    assert error["code"] == "REJECTED"
    assert error["id"] == "d1"
    assert error["action"] == "sendPublic"
    assert error["reason"] == "it contains a word this chat does not allow"
    assert ben.quiet(0.5) == []
    assert not any("crypto" in t for t in history_texts(ana))
    # AND the chat goes on: the next message is posted
    ana.send("sendPublic", message="sorry", id="d2")
    assert ben.wait_for(lambda f: f.get("from") == "Ana")["text"] == "sorry"


def test_in_a_room_v2_messages_are_reviewed_too(connect):
    ana, ben = connect(), connect()
    for client, name in ((ana, "Ana"), (ben, "Ben")):
        client.join_v2(name)
        assert "error" not in client.request("joinRoom", room="garden")
    ana.send("sendPublic", room="garden", message="heck yes", id="g1")
    assert ben.wait_for(lambda f: f.get("room") == "garden" and "text" in f)["text"] == ("**** yes")
    denied = ana.request("sendPublic", room="garden", message="buy followers here")
    assert denied["error"]["code"] == "REJECTED"
    texts = history_texts(ben, room="garden")
    assert "**** yes" in texts
    assert not any("followers" in t for t in texts)


def test_a_slow_a_raising_or_a_nonsense_hook_is_decided_by_the_fallback(
    connect_misbehaving, fallback_sandbox
):
    fallback, sandbox = fallback_sandbox
    ana, ben = pair(connect_misbehaving)
    assert ana.request("sendPublic", message="warm up").get("text") == "warm up"
    # (#slow last: its hook invocation holds the hook's warm environment 0.5 s past the
    # wait, so a message reviewed right after it would wait for a cold start instead)
    for trigger in ("#raise", "#garbage", "#slow"):
        started = time.monotonic()
        answer = ana.request("sendPublic", message=f"hello {trigger}")
        if fallback == "allow":
            # THEN it is posted unreviewed
            assert answer.get("text") == f"hello {trigger}", answer
            assert ben.wait_for(has_text(f"hello {trigger}"))
        else:
            # THEN it is refused, without a reason the hook never gave
            assert answer["error"]["code"] == "REJECTED", answer
            assert "reason" not in answer["error"]
        if trigger == "#slow":  # given up at the wait, not when the hook answered
            assert WAIT_MS / 1000 <= time.monotonic() - started < 1.5 + 1.0
    texts = history_texts(ben)
    kept = [t for t in texts if "#" in t]
    sent = ["hello #raise", "hello #garbage", "hello #slow"]
    assert kept == (sent if fallback == "allow" else [])
    # AND each failure is logged with its reason, and counted
    # (a slow hook is given up by the wait, "no answer within", or, when a loaded machine
    # runs the invocation's thread late, by the client's read timeout set to the same wait)
    slow = ("no answer", "timed out (read timeout)")
    reasons = logged_failures(sandbox, "the hook failed (Unhandled)", "invalid answer", slow)
    assert len(reasons) >= 3, reasons
    assert sandbox.wait_for_log('"ReviewHookFailures"')
