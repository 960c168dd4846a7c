"""Events out: what the chat publishes for messages, members and connections (against the
in-memory fakes), and the EventBridge adapter's batching and failures (chat/events_out.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from chat import deadline, events
from chat.events_out import EventBridgePublisher
from chat.frames import Stamp
from chat.ports import DELETE, EDIT, Connection
from chat.service import ChatService
from chat.settings import Limits
from tests.support.fakes import FakeClock, InMemoryStore, RecordingNotifier

TTL = 10_800
ROOMY = Limits(message_burst=1000, name_burst=100, max_room_size=1000)


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.flushes = 0

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.events.append((detail_type, dict(detail)))

    def flush(self) -> None:
        self.flushes += 1

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [d for t, d in self.events if t == detail_type]


def service(include_bodies: bool) -> tuple[ChatService, RecordingPublisher, RecordingNotifier]:
    clock = FakeClock()
    notifier = RecordingNotifier()
    chat = ChatService(
        InMemoryStore(clock), notifier, connection_ttl_seconds=TTL, limits=ROOMY, clock=clock
    )
    publisher = RecordingPublisher()
    chat.use_events(publisher, include_bodies=include_bodies)
    return chat, publisher, notifier


@pytest.mark.parametrize("bodies", [False, True])
def test_a_v1_session_publishes_connection_join_message_leave_and_close(bodies):
    chat, publisher, notifier = service(bodies)
    chat.connect("ana=")
    chat.set_name(chat.admit("ana=", "setName"), "Ana")
    chat.set_name(chat.admit("ana=", "setName"), "Anna")  # a rename is no membership event
    chat.send_public(chat.admit("ana=", "sendPublic"), "hi", "c1")
    chat.disconnect("ana=")
    (frame,) = [f for f in notifier.frames("ana=") if "text" in f]
    posted = {"room": "lobby", "name": "Anna", "messageId": frame["messageId"], "seq": 1}
    if bodies:
        posted["message"] = "hi"
    assert publisher.events == [
        (events.CONNECTED, {"connectionId": "ana="}),
        (events.JOINED, {"room": "lobby", "name": "Ana", "connectionId": "ana="}),
        (events.POSTED, posted),
        (
            events.LEFT,
            {"room": "lobby", "name": "Anna", "connectionId": "ana=", "reason": "disconnected"},
        ),
        (events.DISCONNECTED, {"connectionId": "ana="}),
    ]
    chat.flush_events()
    assert publisher.flushes == 1


@pytest.mark.parametrize("bodies", [False, True])
def test_room_messages_edits_deletes_and_leaves_are_published_without_bodies_unless_asked(bodies):
    chat, publisher, notifier = service(bodies)
    chat.connect("ana=")
    chat.set_name(chat.admit("ana=", "setName"), "Ana", protocol=2)
    chat.join_room(chat.admit("ana=", "joinRoom"), "porch")
    chat.send_public(chat.admit("ana=", "sendPublic"), "first", "c1", "porch")
    sent = next(f for f in notifier.frames("ana=") if f.get("text") == "first")
    for action, text in ((EDIT, "1st"), (DELETE, None)):
        chat.change_message(
            chat.admit("ana=", "editMessage"),
            action=action,
            raw_room="porch",
            raw_message_id=sent["messageId"],
            raw_seq=sent["seq"],
            raw_text=text,
        )
    chat.leave_room(chat.admit("ana=", "leaveRoom"), "porch")
    named = {"room": "porch", "name": "Ana", "messageId": sent["messageId"], "seq": sent["seq"]}
    assert publisher.of(events.POSTED) == [{**named, **({"message": "first"} if bodies else {})}]
    assert publisher.of(events.EDITED) == [{**named, **({"message": "1st"} if bodies else {})}]
    assert publisher.of(events.DELETED) == [named]
    assert publisher.of(events.JOINED) == [{"room": "porch", "name": "Ana", "connectionId": "ana="}]
    assert publisher.of(events.LEFT) == [
        {"room": "porch", "name": "Ana", "connectionId": "ana=", "reason": "left"}
    ]


def test_a_direct_conversation_publishes_nothing_about_its_messages():
    chat, publisher, _ = service(True)
    # GIVEN a direct room's key, and a public room's for comparison
    direct = "@" + "0f" * 16
    sender = Connection("ana=", "Ana", 0)
    chat._publish_posted(sender, "porch", "porch", Stamp(1, "m", 0, 0), "seen")
    assert len(publisher.events) == 1
    # THEN its messages and its members are never published
    chat._publish_posted(sender, direct, direct, Stamp(2, "n", 0, 1), "secret")
    chat._publish_member(events.JOINED, sender, direct, direct)
    chat._publish_changed(DELETE, sender, direct, direct, ("n", 2), text="")
    assert len(publisher.events) == 1


# --- the adapter -------------------------------------------------------------------------


class FakeEvents:
    def __init__(self, answers: list[Any] | None = None) -> None:
        self.calls: list[list[dict[str, str]]] = []
        self.answers = answers or []

    def put_events(self, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        answer = self.answers.pop(0) if self.answers else {"FailedEntryCount": 0, "Entries": []}
        if isinstance(answer, Exception):
            raise answer
        result: dict[str, Any] = answer
        return result


def publisher(client: FakeEvents, failed: list[int]) -> EventBridgePublisher:
    return EventBridgePublisher(client, "chat-events", on_failed=failed.append)


def test_events_are_sent_at_flush_in_batches_of_ten():
    client, failed = FakeEvents(), list[int]()
    out = publisher(client, failed)
    for n in range(23):
        out.publish(events.POSTED, {"seq": n})
    assert client.calls == []
    out.flush()
    assert [len(c) for c in client.calls] == [10, 10, 3]
    first = client.calls[0][0]
    assert first == {
        "Source": "websocket-chat",
        "DetailType": "Message Posted",
        "Detail": '{"seq":0}',
        "EventBusName": "chat-events",
    }
    assert json.loads(client.calls[2][-1]["Detail"]) == {"seq": 22}
    assert failed == []
    out.flush()  # nothing queued: no call
    assert len(client.calls) == 3


def test_refused_entries_and_failed_calls_are_counted_never_raised():
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "PutEvents",
    )
    client = FakeEvents(
        [
            {"FailedEntryCount": 2, "Entries": [{"ErrorCode": "InternalFailure"}] * 2},
            throttled,
            ReadTimeoutError(endpoint_url="https://events"),
        ]
    )
    failed: list[int] = []
    out = publisher(client, failed)
    for n in range(25):
        out.publish(events.JOINED, {"n": n})
    out.flush()
    assert failed == [2 + 10 + 5]


def test_an_invocation_out_of_time_drops_its_events_and_counts_them():
    client, failed = FakeEvents(), list[int]()
    out = publisher(client, failed)
    out.publish(events.CONNECTED, {"connectionId": "a="})
    with deadline.running(deadline.Deadline.after(0)):
        out.flush()
    assert (client.calls, failed) == ([], [1])


def test_a_moderation_action_is_published_without_an_announcements_text():
    chat, publisher, _ = service(include_bodies=False)
    for cid, name in (("ana=", "Ana"), ("bo=", "Bo")):
        chat.connect(cid)
        chat.set_name(
            chat.admit(cid, "setName"),
            name,
            None,
            None,
            f"key-of-{name}".ljust(16, "x"),
            protocol=2,
        )
        chat.join_room(chat.admit(cid, "joinRoom"), "dev")
    publisher.events.clear()
    chat.moderate(
        chat.admit("ana=", "moderate"),
        {"op": "mute", "room": "dev", "target": "Bo", "seconds": 60, "reason": "loud"},
    )
    chat.moderate(
        chat.admit("ana=", "moderate"), {"op": "announce", "room": "dev", "message": "secret text"}
    )
    mute, announce = publisher.of(events.MODERATION)
    assert mute == {
        "op": "mute",
        "room": "dev",
        "by": "Ana",
        "target": "Bo",
        "seq": 1,
        "reason": "loud",
    }
    assert announce == {"op": "announce", "room": "dev", "by": "Ana", "seq": 2}
