"""Hostile frames over real WebSockets, through the sandbox (API Gateway's limits included).

The corpus cases marked `sandbox` (one or two of each kind, and the frames over 32 KB),
and the raw byte cases of corpus/raw/: binary frames (API Gateway closes with 1003),
invalid UTF-8 in text frames (1007), fragmented messages under and over 128 KB. Bob and
Carol are in the room throughout and must receive what the outcome sends them, nothing
for an error; the room's items are consistent afterwards.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.hostile.corpus import Case, RawCase, load_cases, load_raw_cases
from tests.hostile.protocol import Observation, matching_outcome
from tests.support.chat_client import ChatClient, room_items
from tests.support.consistency import member_shard_of, scan, table_problems
from tests.support.sandbox import RawWebSocket, Sandbox, wait_for

pytestmark = pytest.mark.sandbox

CASES = [case for case in load_cases() if case.sandbox]
RAW_CASES = load_raw_cases()
QUIET_S = 0.4
# Frames an allowed outcome needs are waited for up to MATCH_WAIT_S; once they are in, every
# socket stays open FINAL_QUIET_S more for frames no outcome allows (one invocation posts
# all of its frames within milliseconds of each other).
MATCH_WAIT_S = 5.0
FINAL_QUIET_S = 0.3
POLL_S = 0.05


class SandboxRoom:
    """Bob and Carol on real sockets; a fresh socket per hostile frame."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        # One client for the whole module (a boto3 client takes tens of milliseconds to make).
        self.db = sandbox.dynamodb()
        (self.table,) = self.db.list_tables()["TableNames"]
        self.bystanders = {name: self.client().join(name) for name in ("Bob", "Carol")}
        self.bystanders["Bob"].wait_for(lambda f: f.get("name") == "Carol")
        self.drain()

    def client(self) -> ChatClient:
        return ChatClient(self.sandbox.connect(max_size=None).__enter__())

    def drain(self) -> None:
        for client in self.bystanders.values():
            client.quiet(0.1)

    def take_join_notices(self, name: str) -> None:
        """Bob's and Carol's notice of the sender joining as `name`: read, so that it is not
        taken for a frame of the case."""
        for client in self.bystanders.values():
            client.wait_for(lambda f: f.get("event") == "join" and f.get("name") == name)

    def has_other_member(self) -> bool:
        """Is anyone but Bob and Carol a member of the room (the sender, before it closes)?"""
        return len(self.member_items()) > len(self.bystanders)

    def settle(self, *, leave_expected: bool | None) -> None:
        """After a sender closes: wait until its $disconnect has removed its items, then read
        what that told Bob and Carol, so nothing leaks into the next case.

        `leave_expected`: the sender was a member when it closed, so each of them gets one
        leave notice, waited for; False: nothing is posted to them. None (unknown: the
        server closed the socket itself, its $disconnect may have begun before anyone could
        look) keeps a QUIET_S window instead.
        """
        wait_for(
            lambda: True if self.only_bystanders_left() else None,
            timeout=15,
            what="the sender's $disconnect",
        )
        if leave_expected:
            for client in self.bystanders.values():
                client.wait_for(lambda f: f.get("event") == "leave")
        # As in others(): what reaches Carol while Bob is read waits in her socket's buffer.
        first = QUIET_S if leave_expected is None else POLL_S
        for index, client in enumerate(self.bystanders.values()):
            client.quiet(first if index == 0 else POLL_S)

    def only_bystanders_left(self) -> bool:
        """Are Bob's and Carol's the only connections and MEMBER items of the table?"""
        items = scan(self.db, self.table, checked_only=True)
        members = [item for item in items if member_shard_of(item) is not None]
        names = {item.get("name", {}).get("S") for item in items if item["sk"]["S"] == "CONN"}
        return len(members) <= len(self.bystanders) and names <= set(self.bystanders)

    def others(self) -> dict[str, list[dict[str, Any]]]:
        """What Bob and Carol received: wait QUIET_S on the first; the rest arrived meanwhile."""
        out = {}
        for index, (name, client) in enumerate(self.bystanders.items()):
            out[name] = client.quiet(QUIET_S if index == 0 else 0.05)
        return out

    def member_items(self) -> list[dict[str, Any]]:
        """The room's MEMBER items (what room_items reads), through the module's client."""
        return [
            item
            for item in scan(self.db, self.table, checked_only=True)
            if member_shard_of(item) is not None
        ]

    def table_problems(self) -> list[str]:
        return table_problems(scan(self.db, self.table, checked_only=True))

    def close(self) -> None:
        for client in self.bystanders.values():
            client.close()


@pytest.fixture(scope="module")
def room(chat_sandbox: Sandbox) -> Iterator[SandboxRoom]:
    room = SandboxRoom(chat_sandbox)
    yield room
    room.close()
    wait_for(lambda: None if room_items(chat_sandbox) else True, what="an empty room")


def _observe(room: SandboxRoom, sender: ChatClient, case: Case) -> Observation:
    """What everyone received: the sender's first frame (if any within 10 s; for a frame
    that may leave the sender without an answer, the first frame to anyone within 1.5 s), then
    every socket read until the frames make an outcome the case allows (at most
    MATCH_WAIT_S), then FINAL_QUIET_S more for frames none allows."""
    observation = Observation(
        text=case.text,
        sender_name=case.sender_name if case.named else None,
        sender=[],
        others={name: [] for name in room.bystanders},
        shown=case.shown,
        recipient=case.recipient,
    )
    if _maybe_silent(case):
        # The sender may get nothing: wait up to 1.5 s for a first frame to anyone (a private
        # message's recipient's, say).
        first_deadline = time.monotonic() + 1.5
        while not _anything(observation) and time.monotonic() < first_deadline:
            _read_everyone(room, sender, observation)
    else:
        with contextlib.suppress(AssertionError):
            observation.sender.append(sender.wait_for(lambda _: True, timeout=10.0))
    deadline = time.monotonic() + MATCH_WAIT_S
    while matching_outcome(case.expect, observation)[0] is None and time.monotonic() < deadline:
        _read_everyone(room, sender, observation)
    observation.sender += sender.quiet(FINAL_QUIET_S)
    # What reaches Bob and Carol meanwhile waits in their sockets' buffers.
    for name, client in room.bystanders.items():
        observation.others[name] += client.quiet(POLL_S)
    return observation


def _read_everyone(room: SandboxRoom, sender: ChatClient, observation: Observation) -> None:
    """Add what each socket receives within POLL_S to the observation."""
    observation.sender += sender.quiet(POLL_S)
    for name, client in room.bystanders.items():
        observation.others[name] += client.quiet(POLL_S)


def _anything(observation: Observation) -> bool:
    return bool(observation.sender) or any(observation.others.values())


def _close_code(client: ChatClient, timeout: float = 10.0) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.ws.recv(timeout=0.5)
        except TimeoutError:
            continue
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd is not None else None
    return None


def _maybe_silent(case: Case) -> bool:
    """Can the sender receive nothing at all? (A ping, a private message, one's own name.)"""
    return any(o in ("ok:ping", "ok:private", "ok:same-name") for o in case.expect)


def _leave_only(frames: list[dict[str, Any]]) -> bool:
    return all(f.get("event") == "leave" or "members" in f for f in frames)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_frame_through_the_sandbox(room: SandboxRoom, case: Case) -> None:
    sender = room.client()
    leave_expected: bool | None = None
    try:
        if case.named:
            sender.join(case.sender_name)
            room.take_join_notices(case.sender_name)
        sender.send_raw(case.text)
        if case.close is not None:
            assert _close_code(sender) == case.close, case.description
            others = room.others()
            # The named sender's socket is gone: its leave notice, and nothing else.
            assert all(_leave_only(frames) for frames in others.values()), others
        else:
            observation = _observe(room, sender, case)
            outcome, report = matching_outcome(case.expect, observation)
            assert outcome is not None, f"{case.description}: expected {case.expect}\n{report}"
            leave_expected = room.has_other_member()
    finally:
        sender.close()
        room.settle(leave_expected=leave_expected)
    assert room.table_problems() == []


@pytest.mark.parametrize("case", RAW_CASES, ids=[case.file for case in RAW_CASES])
def test_raw_bytes_through_the_sandbox(room: SandboxRoom, case: RawCase) -> None:
    sandbox = room.sandbox
    raw = RawWebSocket(sandbox.port, f"/{sandbox.stage}")
    try:
        assert raw.status == 101
        opcode = 0x2 if case.opcode == "binary" else 0x1
        size = -(-len(case.payload) // case.fragments)
        chunks = [case.payload[i : i + size] for i in range(0, len(case.payload), size)]
        for index, chunk in enumerate(chunks):
            raw.send_frame(opcode if index == 0 else 0x0, chunk, fin=index == len(chunks) - 1)
        if case.close is not None:
            assert raw.recv_close_code(timeout=10) == case.close, case.description
        else:
            _, received_opcode, payload = raw.recv_frame(timeout=10)
            assert received_opcode == 0x1
            error = json.loads(payload)["error"]
            assert error["code"] == case.expect, case.description
        assert room.others() == {"Bob": [], "Carol": []}
    finally:
        raw.close()
    assert room.table_problems() == []
