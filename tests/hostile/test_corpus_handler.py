"""Every frame of the hostile corpus through the Lambda handler (moto DynamoDB, @connections
stand-in): the handler never raises and returns 200, the sender gets the error the corpus
names (with its id when it had a valid one) or the normal result, Bob and Carol get exactly
what that result sends them (nothing for an error), and the table is consistent afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hostile.corpus import Case, load_cases
from tests.hostile.harness import HandlerRoom, handler_room
from tests.hostile.protocol import matching_outcome

CASES = load_cases()


@pytest.fixture(scope="module")
def room() -> Iterator[HandlerRoom]:
    with handler_room() as room:
        yield room


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_frame_gets_its_specified_outcome(room: HandlerRoom, case: Case) -> None:
    result = room.run(case.text, named=case.named, sender_name=case.sender_name, route=case.route)
    assert result.status == {"statusCode": 200}
    observation = result.observation
    observation.shown = case.shown
    observation.recipient = case.recipient
    outcome, report = matching_outcome(case.expect, observation)
    assert outcome is not None, f"{case.description}: expected {list(case.expect)}\n{report}"
    assert result.table_problems == [], case.description
