"""The chat under injected faults (docs/reliability.md, "Failure modes").

Each test starts its own sandbox on the real template with one fault switch on
(docs/sandbox.md, "Fault switches") and checks the outcome docs/protocol.md promises
("Delivery guarantees"): live members lose nothing that was acknowledged, nothing is shown
twice or out of order, and no orphaned state is left in the table. Clients here behave as
the protocol asks of a v1.1 client: every frame has an `id`, a frame is resent with the
same `id` until it is acknowledged, and a gap in `prev` (or a silence) is filled with
`history`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.support.chat_client import ChatClient
from tests.support.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.sandbox

Frame = dict[str, Any]
ACK_TIMEOUT_S = 20.0
# The functions' SDK waits a twentieth of botocore's backoff before a retry: these tests
# check that refused calls are retried and nothing is lost, not how long AWS's clients wait.
QUICK_RETRIES = ("--fault-sdk-backoff-scale", "0.05")
# A silence after which a client resends, where a lost acknowledgement is expected: long
# past an invocation on a loaded machine, shorter than ACK_TIMEOUT_S (a resend that crosses
# a late acknowledgement is de-duplicated by its id, which is what the protocol promises).
RESEND_AFTER_S = 5.0
GATEWAY_FAILURE = "Internal server error"


# -- a v1.1 client ----------------------------------------------------------------------------


class Member:
    """A chat client that follows protocol v1.1: ids, resends, gap detection, history."""

    def __init__(self, client: ChatClient, name: str, resend_after: float = ACK_TIMEOUT_S) -> None:
        self.client = client
        self.name = name
        self.resend_after = resend_after  # the silence after which a request is resent
        self.live: list[Frame] = []  # public messages as they arrived (not from history)
        self.known: dict[str, Frame] = {}  # every public message seen, by messageId
        self.last_seq = 0  # the last public seq seen
        self.gaps: list[tuple[int, int]] = []  # (last seen, prev of the message that showed it)
        self.gateway_failures = 0
        self.errors: list[Frame] = []
        self._ids = itertools.count(1)

    def _see(self, frame: Frame) -> None:
        if "publicMessage" in frame:
            if frame["prev"] > self.last_seq:
                self.gaps.append((self.last_seq, frame["prev"]))
            if "id" not in frame:
                self.live.append(frame)
            self._remember(frame)
        for message in frame.get("history", []):
            self._remember(message)
        if frame.get("message") == GATEWAY_FAILURE:
            self.gateway_failures += 1
        if "error" in frame:
            self.errors.append(frame["error"])

    def _remember(self, message: Frame) -> None:
        self.known[message["messageId"]] = message
        self.last_seq = max(self.last_seq, message["seq"])

    def pump(self, until: Callable[[Frame], bool], timeout: float) -> Frame | None:
        """Read frames (noting each) until one matches; None if `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.client.ws.recv(timeout=remaining))
            except TimeoutError:
                return None
            self.client.frames.append(frame)
            self._see(frame)
            if until(frame):
                return frame
        return None

    def drain(self, seconds: float = 0.5) -> None:
        self.pump(lambda _: False, seconds)

    def settle(self, message_id: str, seconds: float) -> None:
        """Read frames until `message_id` is known, for at most `seconds` (a message that
        never arrives live is then left to `catch_up`)."""
        if message_id not in self.known:
            self.pump(lambda _: message_id in self.known, seconds)

    def request(self, action: str, *, attempts: int = 4, **fields: Any) -> Frame:
        """Send a frame with a fresh id and resend it (same id) until it is acknowledged.

        The acknowledgement is the frame carrying the id (an `ack`, the sender's own public
        message, or the last history frame). API Gateway's `Internal server error` frame
        (the function failed) and silence both mean: resend.
        """
        client_id = f"{self.name}-{action}-{next(self._ids)}"
        for _ in range(attempts):
            self.client.send(action, id=client_id, **fields)

            def answered(frame: Frame, client_id: str = client_id) -> bool:
                error = frame.get("error") or {}
                return (
                    frame.get("id") == client_id
                    or error.get("id") == client_id
                    or frame.get("message") == GATEWAY_FAILURE
                )

            frame = self.pump(answered, self.resend_after)
            if frame is None or frame.get("message") == GATEWAY_FAILURE:
                continue
            error = frame.get("error")
            if error is not None and error["code"] == "RATE_LIMITED":
                time.sleep(error["retryAfterMs"] / 1000)
                continue
            assert error is None, f"{self.name}: {action} refused: {error}"
            return frame
        raise AssertionError(f"{self.name}: {action} {client_id} never acknowledged")

    def join(self) -> Frame:
        return self.request("setName", name=self.name)

    def say(self, text: str) -> Frame:
        return self.request("sendPublic", message=text)

    def catch_up(self) -> None:
        """Fill every gap seen so far, then anything after the last seq (a resync)."""
        for since, _ in self.gaps:
            self.request("history", since=since)
        self.request("history", since=self.last_seq)


# -- the table --------------------------------------------------------------------------------


def table_items(sandbox: Sandbox) -> list[dict[str, Any]]:
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    items: list[dict[str, Any]] = []
    for page in db.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items.extend(page["Items"])
    return items


def orphans(sandbox: Sandbox) -> list[str]:
    """NAME# and MEMBER# items without a CONN# item of the same connection and name."""
    items = table_items(sandbox)
    names = {
        item["connectionId"]["S"]: item.get("name", {}).get("S")
        for item in items
        if item["pk"]["S"].startswith("CONN#") and item["sk"]["S"] == "CONN"
    }
    found = []
    for item in items:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if pk.startswith("NAME#") or sk.startswith("MEMBER#"):
            holder, name = item["connectionId"]["S"], item["name"]["S"]
            if names.get(holder) != name:
                found.append(f"{pk} {sk} held by {holder} as {name!r}")
    return found


def members_in_table(sandbox: Sandbox) -> dict[str, str]:
    """Connection id -> name of every MEMBER# item."""
    return {
        item["connectionId"]["S"]: item["name"]["S"]
        for item in table_items(sandbox)
        if item["sk"]["S"].startswith("MEMBER#")
    }


# -- the sandbox's log ------------------------------------------------------------------------


def fault_lines(sandbox: Sandbox, pattern: str) -> list[str]:
    return [
        line for line in sandbox.log().splitlines() if "fault:" in line and re.search(pattern, line)
    ]


def calls(lines: list[str]) -> set[str]:
    """The SDK call ids (amz-sdk-invocation-id) named in fault lines."""
    return {match.group(1) for line in lines if (match := re.search(r"call (\w+)\)", line))}


def function_log(sandbox: Sandbox, since: int = 0) -> list[Frame]:
    """The chat function's JSON log lines, from character `since` of the sandbox log on."""
    out = []
    for line in sandbox.log()[since:].splitlines():
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
    return out


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def start(
    chat_template_path: Path, tmp_path: Path
) -> Iterator[Callable[..., tuple[Sandbox, Callable[..., Member]]]]:
    """Start the chat's sandbox with fault switches; returns it and a member factory."""
    with ExitStack() as stack:

        def start_with(*switches: str) -> tuple[Sandbox, Callable[..., Member]]:
            sandbox = stack.enter_context(
                running_sandbox(chat_template_path, tmp_path, *switches, stage="production")
            )

            def member(name: str, query: str = "", resend_after: float = ACK_TIMEOUT_S) -> Member:
                # max_queue=None: a prompt close (see tests.support.rooms.chat_clients)
                client = ChatClient(stack.enter_context(sandbox.connect(query, max_queue=None)))
                return Member(client, name, resend_after)

            return sandbox, member

        yield start_with


def assert_has_everything(member: Member, acked: list[Frame]) -> None:
    """Everything acknowledged is known to `member`, in order; nothing arrived twice."""
    known = sorted(member.known.values(), key=lambda m: m["seq"])
    wanted = [ack["messageId"] for ack in acked]
    assert [m["messageId"] for m in known if m["messageId"] in wanted] == wanted, member.name
    live_ids = [m["messageId"] for m in member.live]
    assert len(live_ids) == len(set(live_ids)), f"{member.name} got a message twice"
    live_seqs = [m["seq"] for m in member.live]
    assert live_seqs == sorted(live_seqs), f"{member.name} got messages out of order"


# -- the failure modes ------------------------------------------------------------------------


def test_throttled_dynamodb_calls_are_retried_and_nothing_is_lost(start) -> None:
    # GIVEN a fifth of the function's DynamoDB requests throttled (never an SDK's last attempt)
    sandbox, member = start(
        "--fault-dynamodb-throttle-rate",
        "0.2",
        "--fault-spare-last-attempt",
        "--fault-seed",
        "11",
        *QUICK_RETRIES,
    )
    alice, bob, carol = member("Alice"), member("Bob"), member("Carol")
    for someone in (alice, bob, carol):
        someone.join()
    # WHEN they chat: five public messages, a private one, and Carol leaving
    acked = [alice.say(f"message {n}") for n in range(5)]
    private = bob.request("sendPrivate", to="Carol", message="psst")
    assert carol.pump(lambda f: f.get("messageId") == private["messageId"], ACK_TIMEOUT_S)
    for receiver in (bob, carol):
        receiver.settle(acked[-1]["messageId"], 0.5)
        receiver.catch_up()
        assert_has_everything(receiver, acked)
    carol.client.close()
    assert alice.pump(lambda f: f.get("event") == "leave", ACK_TIMEOUT_S)
    # THEN nobody saw an error, and the throttles were real and retried: every throttled
    # call shows a later attempt that went through
    for someone in (alice, bob):
        someone.drain()
        assert someone.errors == [] and someone.gateway_failures == 0
    throttled = calls(fault_lines(sandbox, r"DynamoDB \w+ \(attempt \d+/\d+.*throttled"))
    retried = calls(fault_lines(sandbox, r"DynamoDB \w+ \(attempt \d+/\d+.*(passed|spared)"))
    assert throttled, "no request was throttled"
    assert throttled <= retried
    # AND no orphaned state: Alice and Bob are the room
    assert orphans(sandbox) == []
    assert sorted(members_in_table(sandbox).values()) == ["Alice", "Bob"]


def test_post_errors_are_retried_and_members_lose_nothing_acknowledged(start) -> None:
    # GIVEN 30% of the posts answered 429 LimitExceededException (on every attempt)
    sandbox, member = start(
        "--fault-post-error-rate",
        "0.3",
        "--fault-post-error-status",
        "429",
        "--fault-seed",
        "5",
        *QUICK_RETRIES,
    )
    # (a post that fails on every attempt can be an acknowledgement: its sender resends)
    alice, bob, carol = (member(n, resend_after=RESEND_AFTER_S) for n in ("Alice", "Bob", "Carol"))
    for someone in (alice, bob, carol):
        someone.join()
    # WHEN Alice sends six messages, each after the previous one is acknowledged
    acked = []
    for n in range(6):
        acked.append(alice.say(f"message {n}"))
        bob.drain(0.1)
        carol.drain(0.1)
    # THEN once Bob and Carol have filled their gaps, each has every acknowledged message,
    # in order, none twice
    for receiver in (bob, carol):
        receiver.settle(acked[-1]["messageId"], 1.0)
        receiver.catch_up()
        assert_has_everything(receiver, acked)
    # AND the refused posts were retried by the function's SDK
    refused = fault_lines(sandbox, r"POST \S+ \(attempt 1/\d+.*answered 429")
    retries = fault_lines(sandbox, r"POST \S+ \(attempt [2-9]/\d+")
    assert refused and retries
    assert calls(refused) & calls(retries)
    # AND no orphaned state
    assert orphans(sandbox) == []


def test_a_slow_recipient_does_not_reorder_a_senders_messages(start) -> None:
    # GIVEN Bob, whose posts take 300 ms each
    sandbox, member = start(
        "--fault-post-connections", "query:fault=slow", "--fault-post-latency-ms", "300"
    )
    alice, bob, carol = member("Alice"), member("Bob", "fault=slow"), member("Carol")
    for someone in (alice, bob, carol):
        someone.join()
    # WHEN Alice sends five messages, each after the previous one is acknowledged
    acked = []
    for n in range(5):
        started = time.monotonic()
        acked.append(alice.say(f"message {n}"))
        # THEN each acknowledgement waited for the slow post to Bob
        assert time.monotonic() - started >= 0.3
    # AND Bob and Carol received them live, in the order sent
    for receiver in (bob, carol):
        receiver.pump(lambda f: f.get("messageId") == acked[-1]["messageId"], ACK_TIMEOUT_S)
        assert [m["text"] for m in receiver.live] == [f"message {n}" for n in range(5)]
        assert receiver.gaps == []
        assert_has_everything(receiver, acked)
    assert orphans(sandbox) == []


def test_lost_disconnects_leave_no_orphans_and_names_can_be_reclaimed(start) -> None:
    # GIVEN every $disconnect lost
    sandbox, member = start("--fault-drop-disconnect-rate", "1")
    alice, bob, carol = member("Alice"), member("Bob"), member("Carol")
    for someone in (alice, bob, carol):
        someone.join()
    unnamed = member("nobody")
    unnamed.request("ping")
    # WHEN Carol and an unnamed client go away without a $disconnect
    carol.client.close()
    unnamed.client.close()
    assert len(fault_lines(sandbox, r"\$disconnect of \S+ dropped")) == 2
    # THEN nobody is told yet, and Carol's items are stale but whole (not orphaned)
    alice.drain(1.0)
    assert not [f for f in alice.client.frames if f.get("event") == "leave"]
    assert orphans(sandbox) == []
    assert "Carol" in members_in_table(sandbox).values()
    # WHEN Alice broadcasts: the post to Carol answers 410
    alice.say("anyone there?")
    # THEN Carol is pruned, Alice and Bob are told, and none of her items remain
    for someone in (alice, bob):
        leave = someone.pump(lambda f: f.get("event") == "leave", ACK_TIMEOUT_S)
        assert leave is not None and leave["name"] == "Carol"
        assert someone.pump(lambda f: f.get("members") == ["Alice", "Bob"], ACK_TIMEOUT_S)
    assert orphans(sandbox) == []
    assert sorted(members_in_table(sandbox).values()) == ["Alice", "Bob"]
    # WHEN Bob vanishes too and a new client claims his name before anyone broadcasts
    bob.client.close()
    bob_again = member("Bob")
    bob_again.join()
    # THEN the stale holder is found gone (GET 410) and the name passes to the new client
    assert alice.pump(lambda f: f.get("event") == "leave" and f["name"] == "Bob", ACK_TIMEOUT_S)
    assert alice.pump(lambda f: f.get("event") == "join" and f["name"] == "Bob", ACK_TIMEOUT_S)
    assert orphans(sandbox) == []
    assert sorted(members_in_table(sandbox).values()) == ["Alice", "Bob"]
    # AND the unnamed connection's CONN# item stays until its TTL: it holds no name
    conns = [i for i in table_items(sandbox) if i["pk"]["S"].startswith("CONN#")]
    assert len(conns) == 3  # Alice, the new Bob, the unnamed one
    assert all("ttl" in item for item in conns)


def test_a_crash_mid_broadcast_loses_nothing_acknowledged(start) -> None:
    # GIVEN the first sendPublic invocation killed at its second post
    sandbox, member = start("--fault-crash-after-posts", "2", "--fault-crash-route", "sendPublic")
    alice, bob, carol, dave = (member(n) for n in ("Alice", "Bob", "Carol", "Dave"))
    for someone in (alice, bob, carol, dave):
        someone.join()
    # WHEN Alice sends a message: its environment dies mid-broadcast, API Gateway sends
    # her the error frame instead of the acknowledgement, and she resends it (same id)
    first = alice.say("through the crash")
    second = alice.say("after the crash")
    # THEN the crash happened, and Alice saw API Gateway's error frame for it (it can come
    # after her own copy of the first message, and even after the second's acknowledgement)
    assert fault_lines(sandbox, r"killing \S+ \(pid \d+, route sendPublic\)")
    assert sandbox.wait_for_log("Runtime exited with error: signal: killed", ACK_TIMEOUT_S)
    if alice.gateway_failures == 0:
        alice.pump(lambda f: f.get("message") == GATEWAY_FAILURE, ACK_TIMEOUT_S)
    assert alice.gateway_failures == 1
    # AND at most one other member got the first message live, yet after filling the gap
    # that the second one reveals, every member has both, in order, none twice
    receivers = (bob, carol, dave)
    for receiver in receivers:
        receiver.pump(lambda f: f.get("messageId") == second["messageId"], ACK_TIMEOUT_S)
    live_first = [r for r in receivers if first["messageId"] in {m["messageId"] for m in r.live}]
    assert len(live_first) <= 1
    for receiver in receivers:
        receiver.catch_up()
        assert_has_everything(receiver, [first, second])
    # AND the resend was not delivered again (same seq and messageId)
    assert first["seq"] < second["seq"] and second["prev"] == first["seq"]
    # AND no orphaned state
    assert orphans(sandbox) == []
    assert sorted(members_in_table(sandbox).values()) == ["Alice", "Bob", "Carol", "Dave"]


def test_a_partial_delivery_failure_is_logged_once_per_broadcast(start) -> None:
    # GIVEN two members whose every post fails (500, retried by the SDK, still failing)
    sandbox, member = start(
        "--fault-post-connections",
        "query:fault=broken",
        "--fault-post-error-rate",
        "1",
        "--fault-post-error-status",
        "500",
    )
    alice, dave = member("Alice"), member("Dave")
    broken = [member("Bob", "fault=broken"), member("Carol", "fault=broken")]
    alice.join()
    dave.join()
    for someone in broken:
        someone.client.send("setName", name=someone.name)
        assert alice.pump(lambda f, n=someone.name: f.get("name") == n, ACK_TIMEOUT_S)
    dave.drain(1.0)
    # WHEN Alice broadcasts one message
    offset = len(sandbox.log())
    acked = alice.say("to everyone")
    assert dave.pump(lambda f: f.get("messageId") == acked["messageId"], ACK_TIMEOUT_S)
    time.sleep(0.5)
    entries = function_log(sandbox, offset)
    # THEN the loss is logged in one aggregate line, counting both failures
    losses = [e for e in entries if e.get("message") == "delivery finished with losses"]
    assert len(losses) == 1
    assert losses[0]["failed"] == 2
    # AND not once per recipient
    per_recipient = [e for e in entries if "connectionId" in e and e.get("level") != "INFO"]
    assert per_recipient == []
