"""The chat over HTTPS answers that break (docs/sandbox.md, "Fault switches", items 58-64).

On AWS the function's posts to the @connections API are HTTPS; the sandbox serves that API
only over TLS, so these tests run the real poster (lambda_src/chat/fanout.py) on the real
path, with the template's chat function, against one break at a time:

- `silent`: the post is delivered and never answered;
- `cut-body`: delivered, answered 200 with its body cut and the connection dropped;
- `late`: delivered, answered after the poster's read timeout;
- `reset-after-write`: delivered, then the connection reset without an answer;
- `idle-close`: kept-alive connections closed by the server after 200 ms idle.

The poster may send a post again only when it provably did not reach API Gateway (the
connection could not be made, or a kept-alive connection was found closed before the
request was written) or API Gateway answered 429 or 5xx; never after the request was written
and the answer is missing, late or broken; a 2xx counts as delivered even if its body
breaks. Every break above delivers the post, so whatever the poster does, each member must
have exactly one copy of each message and of each notice; the sender gets its
acknowledgement (or an error frame) within the function's timeout; and no invocation times
out. One more test runs the same room on a healthy HTTPS path.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.chat_client import ChatClient
from tests.support.sandbox import Sandbox, running_sandbox

pytestmark = pytest.mark.sandbox

Frame = dict[str, Any]
FAULTY = "fault=tls"  # the query parameter of the members whose posts break
# The poster's read timeout is 5 s: `late` answers well after it, yet before the function's
# timeout (20 s), so a poster that waits for the late answer is seen to (the acknowledgement
# comes after LATE_MS), and one that resends after its timeout shows its copies.
LATE_MS = 12000
READ_TIMEOUT_S = 5.0
IDLE_CLOSE_MS = 200
GATEWAY_ERRORS = ("Internal server error", "Endpoint request timed out")


@dataclass
class Member:
    """A chat client that keeps every frame it receives."""

    name: str
    client: ChatClient
    frames: list[Frame] = field(default_factory=list)

    def pump(self, until: Callable[[Frame], bool], timeout: float) -> Frame | None:
        """Read frames until one matches; None when `timeout` passes first."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.client.ws.recv(timeout=remaining))
            except TimeoutError:
                return None
            self.frames.append(frame)
            if until(frame):
                return frame
        return None

    def drain(self, seconds: float) -> None:
        self.pump(lambda _: False, seconds)

    def copies(self, message_id: str) -> int:
        return sum(1 for f in self.frames if f.get("messageId") == message_id)

    def repeated(self) -> list[str]:
        """Messages (by messageId) and notices (whole frames) received more than once."""
        seen = Counter(
            f["messageId"] if "messageId" in f else json.dumps(f, sort_keys=True)
            for f in self.frames
            if "messageId" in f or "event" in f
        )
        return [key for key, count in seen.items() if count > 1]


def drain_together(members: list[Member], seconds: float) -> None:
    """Let every member listen for `seconds`, in one window rather than one after another:
    each socket's reader keeps receiving meanwhile (unbounded queue), then each member takes
    what arrived."""
    time.sleep(seconds)
    for member in members:
        member.drain(0.05)


def answers(client_id: str) -> Callable[[Frame], bool]:
    """The frame that answers `client_id`: its acknowledgement, an error naming it, or API
    Gateway's error frame (the invocation failed)."""

    def match(frame: Frame) -> bool:
        error = frame.get("error") or {}
        return (
            frame.get("id") == client_id
            or error.get("id") == client_id
            or frame.get("message") in GATEWAY_ERRORS
        )

    return match


def joins(name: str) -> Callable[[Frame], bool]:
    """The notice that `name` joined."""
    return lambda frame: frame.get("event") == "join" and frame.get("name") == name


def function_timeout_s(sandbox: Sandbox) -> float:
    """The chat function's Timeout, from the banner."""
    match = re.search(
        r"^Function:\s+\S+: handler\.lambda_handler .*\(python[\d.]+, ([\d.]+) s, ",
        sandbox.log(),
        re.MULTILINE,
    )
    assert match, "no chat function in the banner"
    return float(match.group(1))


@dataclass
class Room:
    sandbox: Sandbox
    members: list[Member]
    timeout_s: float  # the chat function's timeout: every answer must come before it

    def request(self, member: Member, action: str, **fields: Any) -> tuple[Frame, float]:
        """Send one frame with an id (never resent); its answer and how long it took."""
        client_id = f"{member.name}-{action}-{time.monotonic_ns()}"
        started = time.monotonic()
        member.client.send(action, id=client_id, **fields)
        frame = member.pump(answers(client_id), self.timeout_s)
        elapsed = time.monotonic() - started
        assert frame is not None, (
            f"{member.name}'s {action} got neither its acknowledgement nor an error frame "
            f"within the function's timeout ({self.timeout_s:g} s)"
        )
        return frame, elapsed

    def check(self, message: Frame) -> None:
        """The three promises, after a public message was answered."""
        drain_together(self.members, 1.0)
        log = self.sandbox.log()
        # (a) every member has exactly one copy of the message, and nothing twice
        copies = {m.name: m.copies(message["messageId"]) for m in self.members}
        assert copies == {m.name: 1 for m in self.members}, copies
        repeated = {m.name: m.repeated() for m in self.members if m.repeated()}
        assert repeated == {}, f"received twice: {repeated}"
        # (c) no invocation ran into the function's timeout
        assert "Task timed out" not in log


@pytest.fixture
def room(chat_template_path: Path, tmp_path: Path) -> Iterator[Callable[..., Room]]:
    """Start the chat's sandbox with `switches`; Alice (the sender) and Dave healthy, Bob
    and Carol opened with ?fault=tls (the selected connections), all four joined.

    Alice and Dave must be acknowledged. Bob's and Carol's own frames go through the broken
    answers, so their joins are checked by Alice seeing them join: a poster may stop
    posting to a connection whose previous post has an unknown outcome (their later
    frames, the acknowledgement among them, may then never come)."""
    with ExitStack() as stack:

        def start(*switches: str) -> Room:
            sandbox = stack.enter_context(
                running_sandbox(chat_template_path, tmp_path, *switches, stage="production")
            )
            members = [
                Member(
                    name, ChatClient(stack.enter_context(sandbox.connect(query, max_queue=None)))
                )
                for name, query in [("Alice", ""), ("Dave", ""), ("Bob", FAULTY), ("Carol", FAULTY)]
            ]
            built = Room(sandbox, members, function_timeout_s(sandbox))
            alice, dave, *selected = members
            for member in (alice, dave):
                answer, _ = built.request(member, "setName", name=member.name)
                assert "error" not in answer and answer.get("message") not in GATEWAY_ERRORS, (
                    f"{member.name} could not join: {answer}"
                )
            for member in selected:
                member.client.send("setName", id=f"{member.name}-join", name=member.name)
                joined = alice.pump(joins(member.name), built.timeout_s)
                assert joined is not None, f"Alice never saw {member.name} join"
            drain_together(members, 0.5)
            return built

        yield start


def broadcast(room: Room, within_s: float | None = None) -> Frame:
    """Alice sends one public message; (b) she is answered within the function's timeout
    (or `within_s`). Returns her acknowledgement."""
    alice = room.members[0]
    time.sleep(2 * IDLE_CLOSE_MS / 1000)  # every kept-alive connection now idle past 200 ms
    answer, elapsed = room.request(alice, "sendPublic", message="hello, everyone")
    assert elapsed < (within_s or room.timeout_s), f"answered after {elapsed:.1f} s"
    assert "publicMessage" in answer, f"Alice's message was not acknowledged: {answer}"
    return answer


@pytest.mark.timeout(120)
def test_over_a_healthy_https_path_every_member_gets_exactly_one_copy(room) -> None:
    # GIVEN four members and no fault
    chat = room()
    # WHEN Alice broadcasts THEN she is acknowledged, every member has one copy, no timeout
    ack = broadcast(chat)
    chat.check(ack)
    # AND the posts went over HTTPS: the plain port refuses @connections
    assert chat.sandbox.callback_url.startswith("https://")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["silent", "cut-body", "late", "reset-after-write"])
def test_a_broken_https_answer_is_never_followed_by_a_second_copy(room, mode: str) -> None:
    # GIVEN Bob's and Carol's posts delivered with a broken answer
    chat = room(
        *("--fault-post-connections", f"query:{FAULTY}"),
        *("--fault-post-break", mode),
        *("--fault-post-late-ms", str(LATE_MS)),
    )
    # WHEN Alice broadcasts THEN she is answered in time (with `late`, the poster gave up on
    # the late answers at its read timeout), nobody has a second copy of anything, and no
    # invocation timed out
    ack = broadcast(chat, READ_TIMEOUT_S + 3.0 if mode == "late" else None)
    chat.check(ack)
    # AND the break did happen to the posts to Bob and Carol
    assert f"{mode}: delivered" in chat.sandbox.log()


@pytest.mark.timeout(120)
def test_kept_alive_connections_closed_while_idle_lose_and_repeat_nothing(room) -> None:
    # GIVEN the HTTPS listener closing connections idle for 200 ms (every member)
    chat = room("--fault-idle-close-ms", str(IDLE_CLOSE_MS))
    # WHEN Alice broadcasts after every kept-alive connection went idle, twice
    first = broadcast(chat)
    second = broadcast(chat)
    # THEN each time she is answered in time, every member has one copy of each, no timeout
    chat.check(first)
    chat.check(second)
