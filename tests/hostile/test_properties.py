"""Property-based: any frame from the protocol's grammar, valid or mutated, through the handler.

For every generated frame: the handler returns 200 and never raises; the sender gets an
error whose code the protocol allows for that frame (with the frame's id when it had a
valid one) or the normal result; Bob and Carol get exactly what that result sends them
(nothing for an error); the table is consistent afterwards. The model of which outcomes
a frame may have is tests/hostile/protocol.py (checked against the corpus).

HOSTILE_EXAMPLES sets the number of examples per test (default: 100 under the `ci` hypothesis
profile, fewer under `dev`: tests/support/profiles.py).
"""

from __future__ import annotations

import itertools
import os
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from tests.hostile.harness import HandlerRoom, handler_room
from tests.hostile.protocol import (
    Room,
    expected_outcomes,
    matching_outcome,
)
from tests.hostile.strategies import frame_objects, frame_texts
from tests.support.profiles import examples

EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES") or examples(100))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_serial = itertools.count()


@pytest.fixture(scope="module")
def room() -> Iterator[HandlerRoom]:
    with handler_room() as room:
        # One public message on each of the room's tables, so that history is never empty
        # (an empty room's history has its own test: test_history_empty_room.py).
        room.prepare(start_history)
        yield room


def start_history(room: HandlerRoom) -> None:
    bob = room.bystanders["Bob"]
    room.send(bob, '{"action": "sendPublic", "message": "history starts here"}')
    room.api.clear()


def sender_name() -> str:
    """A name no other example used, so that no join clashes with an earlier example's."""
    n = next(_serial)
    letters = ""
    while True:
        n, digit = divmod(n, 26)
        letters += string.ascii_lowercase[digit]
        if n == 0:
            return "Hyp" + letters


def check(room: HandlerRoom, text: str, named: bool) -> None:
    name = sender_name()
    allowed = expected_outcomes(text, Room(sender_name=name if named else None))
    note(f"frame: {text[:500]!r}\nnamed: {named}\nallowed: {sorted(allowed)}")
    result = room.run(text, named=named, sender_name=name)
    assert result.status == {"statusCode": 200}
    outcome, report = matching_outcome(sorted(allowed), result.observation)
    assert outcome is not None, f"allowed {sorted(allowed)}\n{report}"
    assert result.table_problems == []


@PROPERTY
@given(text=frame_texts(), named=st.booleans())
def test_any_frame_gets_an_outcome_the_protocol_allows(room: HandlerRoom, text: str, named: bool):
    check(room, text, named)


@PROPERTY
@given(frame=frame_objects(), named=st.booleans())
def test_well_formed_json_frames_get_an_outcome_the_protocol_allows(
    room: HandlerRoom, frame: dict, named: bool
):
    import json  # noqa: PLC0415

    check(room, json.dumps(frame), named)
