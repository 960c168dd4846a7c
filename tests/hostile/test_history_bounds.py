"""History replies are bounded whatever members post (issue 14): at most 100 messages and
65,536 bytes of them (each counted as compact UTF-8 JSON), the newest ones, with
`complete: false` when older messages were left out; and ten rapid `history` requests on
one connection are answered at most three times (the `history` bucket's burst).

Through the Lambda handler, each test on a fresh table. The messages come from several
members, each from its own address and within its own message burst, so that no limit
but the history's own bounds shapes what is received.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from tests.hostile.harness import HandlerRoom, handler_room, json_set_name
from tests.hostile.protocol import (
    HISTORY_MAX_BYTES,
    HISTORY_MAX_MESSAGES,
    Observation,
    history_bound_problems,
    matching_outcome,
)

BURST = 10  # a connection's message burst (Limits.message_burst): never exceeded here
HISTORY_BURST = 3  # a connection's history burst (Limits.history_burst)
HISTORY_RATE = 0.2  # ... and its refill per second

Frame = dict[str, Any]


def post(room: HandlerRoom, texts: list[str]) -> list[int]:
    """Post `texts` in order from fresh members (BURST each); the seqs they were given."""
    seqs = []
    names = (f"Poster{n}" for n in itertools.count())
    for start in range(0, len(texts), BURST):
        cid = room.new_connection()
        room.send(cid, json_set_name(next(names)))
        for text in texts[start : start + BURST]:
            room.send(cid, json.dumps({"action": "sendPublic", "message": text}))
            (own,) = [f for f in room.api.take(cid) if "publicMessage" in f]
            seqs.append(own["seq"])
        room.disconnect(cid)
    room.api.clear()
    return seqs


def items(frames: list[Frame]) -> list[Frame]:
    return [item for f in frames if "history" in f for item in f["history"]]


def final(frames: list[Frame]) -> Frame:
    (last,) = [f for f in frames if f.get("final") is True]
    return last


def stored_bytes(messages: list[Frame]) -> int:
    return sum(
        len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()) for m in messages
    )


def joiner_history(room: HandlerRoom) -> list[Frame]:
    cid = room.new_connection()
    room.send(cid, json_set_name("Joiner"))
    frames = [f for f in room.api.take(cid) if "history" in f]
    room.disconnect(cid)
    room.api.clear()
    return frames


def history_reply(room: HandlerRoom, request_id: str = "h1") -> list[Frame]:
    result = room.run(json.dumps({"action": "history", "id": request_id}))
    observation: Observation = result.observation
    outcome, report = matching_outcome(["ok:history"], observation)
    assert outcome is not None, report
    return observation.sender


def test_history_keeps_the_newest_100_messages_and_says_it_is_incomplete() -> None:
    with handler_room() as room:
        seqs = post(room, [f"message {n}" for n in range(HISTORY_MAX_MESSAGES + 20)])
        for frames in (joiner_history(room), history_reply(room)):
            got = [m["seq"] for m in items(frames)]
            assert got == seqs[-HISTORY_MAX_MESSAGES:]
            assert final(frames)["complete"] is False
            assert history_bound_problems(frames) == []


def test_history_of_large_messages_stays_within_its_byte_bound() -> None:
    # 1000 emoji: 4000 bytes of text, which a message frame holds twice (text and
    # publicMessage): about 8 KB each, so only the newest few fit 64 KB.
    big = ["\U0001f600" * 999 + chr(0x41 + n) for n in range(20)]
    with handler_room() as room:
        seqs = post(room, big)
        for frames in (joiner_history(room), history_reply(room)):
            messages = items(frames)
            assert history_bound_problems(frames) == []
            assert 0 < stored_bytes(messages) <= HISTORY_MAX_BYTES
            # the newest ones, in order, as many as fit
            assert [m["seq"] for m in messages] == seqs[-len(messages) :]
            one_more = json.dumps(messages[0], ensure_ascii=False, separators=(",", ":"))
            assert stored_bytes(messages) + len(one_more.encode()) > HISTORY_MAX_BYTES
            assert final(frames)["complete"] is False


def test_a_history_that_fits_is_complete() -> None:
    with handler_room() as room:
        seqs = post(room, ["one", "two", "three"])
        frames = history_reply(room)
        assert [m["seq"] for m in items(frames)] == seqs
        assert final(frames)["complete"] is True


def test_ten_rapid_history_requests_get_at_most_three_replies() -> None:
    big = ["\U0001f600" * 999 + chr(0x41 + n) for n in range(20)]
    with handler_room() as room:
        post(room, big)
        cid = room.new_connection()
        room.send(cid, json_set_name("Reader"))
        room.api.clear()
        started = time.monotonic()
        for n in range(10):
            room.send(cid, json.dumps({"action": "history", "id": f"r{n}"}))
        elapsed = time.monotonic() - started
        frames = room.api.take(cid)
        answered = {f["id"] for f in frames if f.get("final") is True}
        limited = [f["error"] for f in frames if "error" in f]
        # the burst, and what the bucket refilled meanwhile (a slow machine takes seconds)
        assert len(answered) <= HISTORY_BURST + int(elapsed * HISTORY_RATE)
        assert len(answered) + len(limited) == 10
        assert {e["code"] for e in limited} == {"RATE_LIMITED"}
        assert all(e["action"] == "history" for e in limited)
        total = sum(
            len(json.dumps(f, ensure_ascii=False, separators=(",", ":")).encode()) for f in frames
        )
        # each reply within the bound, plus its frames' own wrapping; the errors are small
        assert total <= len(answered) * (HISTORY_MAX_BYTES + 1024) + len(limited) * 512
        room.disconnect(cid)
