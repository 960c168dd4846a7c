"""Frames as the tests compare them: the random `eventId` checked, then set aside.

Every frame that goes to more than one member carries an `eventId` (docs/protocol.md): a
join, rename or leave notice, a `members` frame, each `memberList` part. Its value is
random, so tests that compare whole frames use `plain()`: it fails when a frame that must
carry an `eventId` has none (or a malformed one), and returns the frame without it. The
tests of the identity itself (tests/unit/test_chat_rules.py) look at the raw frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Frame = dict[str, Any]


def needs_event_id(frame: Frame) -> bool:
    return frame.get("event") in ("join", "leave", "rename") or any(
        key in frame for key in ("members", "memberList")
    )


def plain(frame: Frame) -> Frame:
    """The frame without its `eventId`, after checking it has the one it must have."""
    if not isinstance(frame, dict) or ("eventId" not in frame and not needs_event_id(frame)):
        return frame
    event_id = frame.get("eventId")
    if needs_event_id(frame):
        assert isinstance(event_id, str) and 1 <= len(event_id) <= 64, (
            f"a frame sent to many members without a usable eventId: {frame}"
        )
    return {key: value for key, value in frame.items() if key != "eventId"}


def plain_all(frames: Iterable[Frame]) -> list[Frame]:
    return [plain(frame) for frame in frames]


class PlainFrames:
    """A view of a @connections stand-in whose `frames`/`take` give `plain` frames."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def frames(self, connection_id: str) -> list[Frame]:
        return plain_all(self._api.frames(connection_id))

    def take(self, connection_id: str) -> list[Frame]:
        return plain_all(self._api.take(connection_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)
