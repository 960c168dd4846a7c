"""Moderation end to end (issue 17): real WebSocket clients, the sandbox running the
synthesized stack (its `moderate` route), the real handler and DynamoDB. The handler suite
(tests/handler/test_moderation_handler.py) covers every op; this proves the route."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.e2e.test_rooms_through_sandbox import joined, said, unique, v2
from tests.support.chat_client import ChatClient
from tests.support.rooms import room_chat_clients
from tests.support.sandbox import Sandbox

pytestmark = pytest.mark.sandbox


@pytest.fixture
def connect(chat_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    yield from room_chat_clients(chat_sandbox)


def test_a_rooms_creator_mutes_then_kicks_a_member_through_the_moderate_route(connect):
    room = unique("mod")
    alice, bob = v2(connect, "Alice"), v2(connect, "Bob")
    joined(alice, room)  # her join made the room: she moderates it
    joined(bob, room)
    said(bob, room, "spam")
    refused = bob.request("moderate", op="kick", room=room, target="Alice")
    assert refused["error"]["code"] == "NOT_MODERATOR"
    muted = alice.request("moderate", op="mute", room=room, target="Bob", seconds=60)
    assert (muted["ack"], muted["op"]) == ("moderate", "mute")
    told = bob.wait_for(lambda f: f.get("moderation") == "mute")
    assert (told["seq"], told["by"]) == (muted["seq"], "Alice")
    error = bob.request("sendPublic", room=room, message="more spam")["error"]
    assert error["code"] == "MUTED"
    assert 0 < error["retryAfterMs"] <= 60_000
    kicked = alice.request("moderate", op="kick", room=room, target="Bob", reason="spam")
    assert kicked["seq"] == muted["seq"] + 1
    bob.wait_for(lambda f: f.get("moderation") == "kick" and f.get("reason") == "spam")
    assert bob.wait_for(lambda f: "left" in f) == {"left": room, "room": room}
    alice.wait_for(lambda f: f.get("event") == "leave" and f.get("name") == "Bob")
