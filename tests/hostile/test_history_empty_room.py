"""The `history` action in a room that has none still answers, with one final frame.

In a module of its own: it needs a fresh table, and the corpus module keeps one room
(one moto table) for its whole run.
"""

from __future__ import annotations

from tests.hostile.harness import handler_room
from tests.hostile.protocol import Observation, matching_outcome


def test_history_in_a_room_without_history_gets_a_final_frame() -> None:
    with handler_room() as room:
        result = room.run('{"action": "history"}')
    observation: Observation = result.observation
    outcome, report = matching_outcome(["ok:history"], observation)
    assert outcome is not None, report
