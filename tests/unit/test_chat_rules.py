"""The chat's rules, against in-memory fakes of the store and the notifier."""

from __future__ import annotations

import json

import pytest

from chat import frames
from chat.errors import ChatError, ErrorCode
from chat.frames import encode
from chat.ports import Sent
from chat.service import ChatService
from chat.settings import Limits, Retention
from tests.support.fakes import FakeClock, InMemoryStore, RecordingNotifier
from tests.support.frames import plain

TTL = 10_800
# Limits no test of the rules reaches; the limits themselves are tested in test_abuse_limits.
ROOMY = Limits(message_burst=1000, name_burst=100, max_room_size=1000)


class Requests:
    """Each call is one client frame, as the handler makes it: admit, then the action."""

    def __init__(self, service: ChatService) -> None:
        self.service = service

    def connect(
        self,
        cid: str,
        connected_at_ms: int | None = None,
        *,
        source_ip: str | None = None,
        subject: str | None = None,
    ) -> None:
        self.service.connect(cid, connected_at_ms, source_ip=source_ip, subject=subject)

    def disconnect(self, cid: str) -> None:
        self.service.disconnect(cid)

    def set_name(
        self,
        cid: str,
        name: object,
        client_id: str | None = None,
        since: int | None = None,
        client_key: str | None = None,
    ) -> None:
        sender = self.service.admit(cid, "setName")
        self.service.set_name(sender, name, client_id, since, client_key)

    def send_public(self, cid: str, message: object, client_id: str | None = None) -> None:
        self.service.send_public(self.service.admit(cid, "sendPublic"), message, client_id)

    def send_private(
        self, cid: str, to: object, message: object, client_id: str | None = None
    ) -> None:
        self.service.send_private(self.service.admit(cid, "sendPrivate"), to, message, client_id)

    def history(self, cid: str, since: int | None, client_id: str | None = None) -> None:
        self.service.history(self.service.admit(cid, "history"), since, client_id)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> InMemoryStore:
    return InMemoryStore(clock)


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def chat(store: InMemoryStore, notifier: RecordingNotifier, clock: FakeClock) -> Requests:
    return Requests(
        ChatService(store, notifier, connection_ttl_seconds=TTL, limits=ROOMY, clock=clock)
    )


def join(chat: Requests, notifier: RecordingNotifier, *names: str) -> list[str]:
    """Connect one client per name, name them, and forget what they were sent."""
    ids = []
    for i, name in enumerate(names):
        cid = f"conn{i}-{name}="
        chat.connect(cid)
        chat.set_name(cid, name)
        ids.append(cid)
    notifier.clear()
    return ids


def error_code(excinfo: pytest.ExceptionInfo[ChatError]) -> ErrorCode:
    return excinfo.value.code


# --- setName -------------------------------------------------------------------------


def test_first_set_name_sends_members_and_join_notice_to_every_member_including_joiner(
    chat, notifier
):
    # GIVEN Bob is in the chat
    (bob,) = join(chat, notifier, "Bob")
    # WHEN Alice connects and sets her name
    chat.connect("alice=")
    chat.set_name("alice=", "Alice")
    # THEN both get the member list, then the join notice
    expected = [plain(frames.members(["Alice", "Bob"])), plain(frames.joined("Alice"))]
    assert notifier.frames("alice=") == expected
    assert notifier.frames(bob) == expected
    assert expected[1] == {
        "systemMessage": "Alice has joined the chat",
        "event": "join",
        "name": "Alice",
    }


def test_members_frame_is_sorted_case_insensitively(chat, notifier):
    join(chat, notifier, "bob", "Carol", "alice")
    chat.connect("x=")
    chat.set_name("x=", "Zed")
    assert notifier.frames("x=")[0] == {"members": ["alice", "bob", "Carol", "Zed"]}


def test_unnamed_connections_receive_nothing(chat, notifier):
    chat.connect("lurker=")
    join(chat, notifier, "Alice")
    chat.connect("bob=")
    chat.set_name("bob=", "Bob")
    assert notifier.frames("lurker=") == []


def test_set_name_trims_whitespace(chat, notifier, store):
    chat.connect("a=")
    chat.set_name("a=", "  Alice \t")
    assert store.get_connection("a=").name == "Alice"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "x" * 33, "Al:ice", "Al\nice", "Al\x00ice", "Al\u200bice", None, 42, ["Alice"]],
)
def test_set_name_rejects_invalid_names(chat, raw):
    chat.connect("a=")
    with pytest.raises(ChatError) as excinfo:
        chat.set_name("a=", raw)
    assert error_code(excinfo) is ErrorCode.INVALID_NAME


def test_set_name_accepts_32_characters_and_unicode(chat, store):
    chat.connect("a=")
    chat.set_name("a=", "Ünïcødé-名前 " + "x" * 21)
    assert len(store.get_connection("a=").name) == 32


def test_name_taken_is_case_insensitive_and_broadcasts_nothing(chat, notifier):
    (alice,) = join(chat, notifier, "Alice")
    chat.connect("b=")
    with pytest.raises(ChatError) as excinfo:
        chat.set_name("b=", "ALICE")
    assert error_code(excinfo) is ErrorCode.NAME_TAKEN
    assert "Alice" in excinfo.value.message
    assert notifier.frames(alice) == []


def test_setting_own_current_name_changes_nothing(chat, notifier):
    alice, _ = join(chat, notifier, "Alice", "Bob")
    chat.set_name(alice, " Alice ")
    assert notifier.inbox == {}


def test_rename_sends_members_and_rename_notice_and_releases_old_name(chat, notifier, store):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.set_name(alice, "Alicia")
    expected = [plain(frames.members(["Alicia", "Bob"])), plain(frames.renamed("Alice", "Alicia"))]
    assert notifier.frames(alice) == expected
    assert notifier.frames(bob) == expected
    assert expected[1]["systemMessage"] == "Alice is now known as Alicia"
    assert expected[1]["previous"] == "Alice"
    # the old name is free again
    chat.connect("c=")
    chat.set_name("c=", "alice")
    assert store.get_connection("c=").name == "alice"


def test_rename_to_a_different_case_of_own_name_is_a_rename(chat, notifier):
    (alice,) = join(chat, notifier, "alice")
    chat.set_name(alice, "Alice")
    assert notifier.frames(alice)[-1] == plain(frames.renamed("alice", "Alice"))


def test_name_held_by_a_gone_connection_is_reclaimed(chat, notifier, store):
    # GIVEN Alice's socket vanished without a $disconnect, and Bob is still here
    ghost, bob = join(chat, notifier, "Alice", "Bob")
    notifier.gone.add(ghost)
    # WHEN someone new claims "alice"
    chat.connect("new=")
    chat.set_name("new=", "alice")
    # THEN API Gateway was asked about the holder, the ghost is gone, the claim succeeds
    assert notifier.gone_checks == [ghost]
    assert store.get_connection(ghost) is None
    assert store.get_connection("new=").name == "alice"
    assert notifier.frames(bob) == [
        plain(frames.left("Alice")),
        plain(frames.members(["Bob"])),
        plain(frames.members(["alice", "Bob"])),
        plain(frames.joined("alice")),
    ]


def test_name_held_by_a_live_connection_is_refused_after_checking_it(chat, notifier):
    (alice,) = join(chat, notifier, "Alice")
    chat.connect("b=")
    with pytest.raises(ChatError) as excinfo:
        chat.set_name("b=", "Alice")
    assert error_code(excinfo) is ErrorCode.NAME_TAKEN
    assert notifier.gone_checks == [alice]


def test_set_name_for_an_unknown_connection_is_refused_and_records_nothing(chat, store):
    # GIVEN a connection the store does not know (never recorded, or removed by $disconnect)
    # WHEN it sets a name THEN it is told it is not connected, and nothing is brought back
    with pytest.raises(ChatError) as excinfo:
        chat.set_name("never-connected=", "Alice")
    assert error_code(excinfo) is ErrorCode.NOT_CONNECTED
    assert store.get_connection("never-connected=") is None
    assert store.claims == {}


# --- sendPublic ------------------------------------------------------------------------


def test_public_message_reaches_every_named_member_including_sender(chat, notifier, clock):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.connect("lurker=")
    chat.send_public(alice, "  hello!  ")
    (frame,) = notifier.frames(bob)
    assert frame == {
        "publicMessage": "Alice: hello!",
        "from": "Alice",
        "text": "hello!",
        "ts": int(clock.now * 1000),
        "seq": 1,
        "messageId": frame["messageId"],
        "prev": 0,
    }
    assert notifier.frames(alice) == [frame]
    assert notifier.frames("lurker=") == []


def test_public_message_needs_a_name(chat):
    chat.connect("a=")
    with pytest.raises(ChatError) as excinfo:
        chat.send_public("a=", "hello")
    assert error_code(excinfo) is ErrorCode.NAME_REQUIRED


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", ErrorCode.INVALID_MESSAGE),
        ("  \n ", ErrorCode.INVALID_MESSAGE),
        (None, ErrorCode.INVALID_MESSAGE),
        (12, ErrorCode.INVALID_MESSAGE),
        ("x" * 2001, ErrorCode.MESSAGE_TOO_LONG),
    ],
)
def test_public_message_is_validated(chat, notifier, raw, code):
    (alice,) = join(chat, notifier, "Alice")
    with pytest.raises(ChatError) as excinfo:
        chat.send_public(alice, raw)
    assert error_code(excinfo) is code
    assert notifier.inbox == {}


def test_message_of_2000_characters_after_trimming_is_accepted(chat, notifier):
    (alice,) = join(chat, notifier, "Alice")
    chat.send_public(alice, " " + "x" * 2000 + " ")
    assert notifier.frames(alice)[0]["text"] == "x" * 2000


# --- sendPrivate -----------------------------------------------------------------------


def test_private_message_reaches_only_the_recipient_matched_case_insensitively(
    chat, notifier, clock
):
    alice, bob, carol = join(chat, notifier, "Alice", "Bob", "Carol")
    chat.send_private(alice, " bOB ", "hi!")
    (frame,) = notifier.frames(bob)
    assert frame == {
        "privateMessage": "Alice: hi!",
        "from": "Alice",
        "to": "Bob",
        "text": "hi!",
        "ts": int(clock.now * 1000),
        "seq": 1,
        "messageId": frame["messageId"],
    }
    assert notifier.frames(alice) == []
    assert notifier.frames(carol) == []


@pytest.mark.parametrize("to", ["Nobody", "", "   ", None, 7])
def test_private_message_to_unknown_or_missing_recipient_is_refused(chat, notifier, to):
    (alice,) = join(chat, notifier, "Alice")
    with pytest.raises(ChatError) as excinfo:
        chat.send_private(alice, to, "hi")
    assert error_code(excinfo) is ErrorCode.UNKNOWN_RECIPIENT


def test_private_message_needs_a_name(chat, notifier):
    join(chat, notifier, "Bob")
    chat.connect("a=")
    with pytest.raises(ChatError) as excinfo:
        chat.send_private("a=", "Bob", "hi")
    assert error_code(excinfo) is ErrorCode.NAME_REQUIRED


def test_private_message_is_validated(chat, notifier):
    alice, _ = join(chat, notifier, "Alice", "Bob")
    with pytest.raises(ChatError) as excinfo:
        chat.send_private(alice, "Bob", "y" * 2001)
    assert error_code(excinfo) is ErrorCode.MESSAGE_TOO_LONG


def test_private_message_to_a_gone_recipient_prunes_it_and_reports_unknown(chat, notifier, store):
    alice, bob, carol = join(chat, notifier, "Alice", "Bob", "Carol")
    notifier.gone.add(bob)
    with pytest.raises(ChatError) as excinfo:
        chat.send_private(alice, "Bob", "hi")
    assert error_code(excinfo) is ErrorCode.UNKNOWN_RECIPIENT
    assert store.get_connection(bob) is None
    assert notifier.frames(carol) == [
        plain(frames.left("Bob")),
        plain(frames.members(["Alice", "Carol"])),
    ]


# --- leaving and stale connections ---------------------------------------------------


def test_disconnect_of_a_member_removes_it_and_tells_the_others(chat, notifier, store):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.disconnect(alice)
    assert store.get_connection(alice) is None
    assert store.find_member("Alice") is None
    assert notifier.frames(bob) == [plain(frames.left("Alice")), plain(frames.members(["Bob"]))]
    assert notifier.frames(alice) == []


def test_disconnect_of_an_unnamed_connection_is_silent(chat, notifier, store):
    join(chat, notifier, "Bob")
    chat.connect("lurker=")
    chat.disconnect("lurker=")
    assert store.get_connection("lurker=") is None
    assert notifier.inbox == {}


def test_disconnect_twice_announces_once(chat, notifier):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.disconnect(alice)
    chat.disconnect(alice)
    assert notifier.frames(bob) == [plain(frames.left("Alice")), plain(frames.members(["Bob"]))]


def test_broadcast_prunes_gone_recipients_not_the_sender(chat, notifier, store):
    # GIVEN Bob's socket is gone but the store still lists him
    alice, bob, carol = join(chat, notifier, "Alice", "Bob", "Carol")
    notifier.gone.add(bob)
    # WHEN Alice sends a public message
    chat.send_public(alice, "hello")
    # THEN Bob is removed, Alice (the sender) stays, and the others learn Bob left
    assert store.get_connection(bob) is None
    assert store.get_connection(alice).name == "Alice"
    after = [plain(frames.left("Bob")), plain(frames.members(["Alice", "Carol"]))]
    assert notifier.frames(alice)[1:] == after
    assert notifier.frames(carol)[1:] == after


def test_pruning_cascades_when_the_leave_notice_finds_more_gone_members(chat, notifier, store):
    alice, bob, carol = join(chat, notifier, "Alice", "Bob", "Carol")
    notifier.gone.add(bob)
    chat.send_public(alice, "hello")  # prunes Bob
    notifier.clear()
    notifier.gone.add(carol)
    chat.disconnect(alice)  # the leave notice to Carol finds her gone
    assert store.list_members() == []


def test_other_post_failures_do_not_stop_delivery_or_prune(chat, notifier, store):
    alice, bob, carol = join(chat, notifier, "Alice", "Bob", "Carol")
    notifier.failing.add(bob)
    chat.send_public(alice, "hello")
    assert notifier.frames(carol)[0]["text"] == "hello"
    assert store.get_connection(bob).name == "Bob"


def test_expired_connections_are_not_members(chat, notifier, clock):
    (old,) = join(chat, notifier, "Old")
    clock.now += TTL + 1
    chat.connect("new=")
    chat.set_name("new=", "New")
    assert notifier.frames("new=")[0] == {"members": ["New"]}
    assert old not in notifier.inbox


def test_expired_claim_does_not_block_a_name(chat, notifier, clock, store):
    join(chat, notifier, "Alice")
    clock.now += TTL + 1
    chat.connect("new=")
    chat.set_name("new=", "Alice")
    assert store.get_connection("new=").name == "Alice"


def test_connect_records_an_item_that_outlives_the_two_hour_connection_limit(chat, store, clock):
    chat.connect("a=", connected_at_ms=int(clock.now * 1000))
    assert store.get_connection("a=").expires_at == int(clock.now) + TTL
    assert TTL > 2 * 3600


# --- protocol v1.1: acknowledgements, seq, de-duplication, history ---------------------


class OrderedNotifier(RecordingNotifier):
    """Records the order in which connections were posted to, across calls."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []

    def send(self, deliveries):
        self.order.extend(deliveries)
        return super().send(deliveries)


def test_public_ack_is_the_senders_own_copy_with_its_id_posted_after_everyone_else(store, clock):
    notifier = OrderedNotifier()
    chat = Requests(ChatService(store, notifier, connection_ttl_seconds=TTL, limits=ROOMY))
    alice, bob, carol = join(chat, notifier, "Alice", "Bob", "Carol")
    notifier.order.clear()
    chat.send_public(alice, "hello", client_id="m1")
    (mine,) = notifier.frames(alice)
    (theirs,) = notifier.frames(bob)
    assert mine == {**theirs, "id": "m1"}
    assert "id" not in theirs
    assert notifier.order[-1] == alice  # the acknowledgement goes out last
    assert set(notifier.order[:-1]) == {bob, carol}


def test_seq_comes_from_one_counter_and_prev_links_public_messages(chat, notifier):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.send_public(alice, "one")
    chat.send_private(alice, "Bob", "psst")
    chat.send_public(bob, "two")
    first, private, second = notifier.frames(bob)
    assert (first["seq"], private["seq"], second["seq"]) == (1, 2, 3)
    assert (first["prev"], second["prev"]) == (0, 1)
    assert len({first["messageId"], private["messageId"], second["messageId"]}) == 3


def test_a_resent_id_is_delivered_once_and_acknowledged_again_with_the_same_seq(chat, notifier):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.send_public(alice, "hello", client_id="m1")
    (ack,) = notifier.take(alice)
    chat.send_public(alice, "hello", client_id="m1")
    assert notifier.take(alice) == [ack]
    assert len(notifier.frames(bob)) == 1


KEY = "tab-key-0123456789abcdef"


def test_the_same_id_from_a_new_connection_with_the_same_client_key_is_still_a_duplicate(
    chat, notifier
):
    chat.connect("alice=")
    chat.set_name("alice=", "Alice", client_key=KEY)
    chat.send_public("alice=", "hello", client_id="m1")
    ack = notifier.take("alice=")[-1]
    chat.disconnect("alice=")
    chat.connect("alice-again=")
    chat.set_name("alice-again=", "Alice", client_key=KEY)
    notifier.clear()
    chat.send_public("alice-again=", "hello", client_id="m1")
    assert notifier.take("alice-again=") == [ack]


def test_a_newcomer_who_takes_a_departed_members_name_and_id_is_not_her_duplicate(chat, notifier):
    # GIVEN Alice sent m1 and left
    chat.connect("alice=")
    chat.set_name("alice=", "Alice", client_key=KEY)
    chat.send_public("alice=", "hello", client_id="m1")
    old_ack = notifier.take("alice=")[-1]
    chat.disconnect("alice=")
    # WHEN another person takes the name Alice and sends her own m1
    chat.connect("eve=")
    chat.set_name("eve=", "Alice", client_key="another-tab-key-0123456")
    notifier.clear()
    chat.send_public("eve=", "my own words", client_id="m1")
    # THEN her message is delivered, with its own acknowledgement
    (ack,) = notifier.take("eve=")
    assert ack != old_ack
    assert ack["text"] == "my own words"
    assert ack["id"] == "m1"


def test_without_a_client_key_ids_are_only_de_duplicated_on_the_same_connection(chat, notifier):
    chat.connect("alice=")
    chat.set_name("alice=", "Alice")
    chat.send_public("alice=", "hello", client_id="m1")
    chat.disconnect("alice=")
    chat.connect("alice-again=")
    chat.set_name("alice-again=", "Alice")
    notifier.clear()
    chat.send_public("alice-again=", "hello again", client_id="m1")
    assert notifier.take("alice-again=")[0]["text"] == "hello again"


def test_private_ack_follows_the_post_and_a_resend_is_not_delivered_again(chat, notifier):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.send_private(alice, "Bob", "psst", client_id="p1")
    (frame,) = notifier.take(bob)
    (ack,) = notifier.take(alice)
    assert ack == {
        "ack": "sendPrivate",
        "id": "p1",
        "seq": frame["seq"],
        "messageId": frame["messageId"],
        "to": "Bob",
        "ts": frame["ts"],
    }
    chat.send_private(alice, "Bob", "psst", client_id="p1")
    assert notifier.take(bob) == []
    assert notifier.take(alice) == [ack]


def test_set_name_with_an_id_is_acknowledged_after_the_member_list(chat, notifier):
    (bob,) = join(chat, notifier, "Bob")
    chat.connect("a=")
    chat.set_name("a=", "Alice", client_id="n1")
    frames_ = notifier.frames("a=")
    assert frames_[0] == {"members": ["Alice", "Bob"]}
    assert frames_[-1] == {"ack": "setName", "id": "n1", "name": "Alice"}
    assert all("ack" not in f for f in notifier.frames(bob))


def test_a_joiner_gets_the_history_between_the_member_list_and_the_join_notice(chat, notifier):
    alice, _ = join(chat, notifier, "Alice", "Bob")
    for n in range(3):
        chat.send_public(alice, f"m{n}")
    chat.send_private(alice, "Bob", "secret")
    chat.connect("c=")
    chat.set_name("c=", "Carol")
    members_frame, history_frame, notice = notifier.frames("c=")
    assert members_frame["members"] == ["Alice", "Bob", "Carol"]
    assert [m["text"] for m in history_frame["history"]] == ["m0", "m1", "m2"]
    assert history_frame["final"] is True
    assert notice["event"] == "join"
    assert "secret" not in json.dumps(notifier.frames("c="))  # private messages never kept


def test_a_reconnecting_client_gets_exactly_what_it_missed(chat, notifier):
    alice, bob = join(chat, notifier, "Alice", "Bob")
    chat.send_public(alice, "seen")
    last_seen = notifier.take(bob)[-1]["seq"]
    chat.disconnect(bob)
    chat.send_public(alice, "missed 1")
    chat.send_public(alice, "missed 2")
    chat.connect("bob-again=")
    chat.set_name("bob-again=", "Bob", since=last_seen)
    history = next(f for f in notifier.frames("bob-again=") if "history" in f)
    assert [m["text"] for m in history["history"]] == ["missed 1", "missed 2"]
    assert history["complete"] is True


def test_a_gap_older_than_the_history_is_reported_incomplete(store, notifier, clock):
    small = Retention(history_count=2)
    chat = Requests(
        ChatService(store, notifier, connection_ttl_seconds=TTL, limits=ROOMY, retention=small)
    )
    (alice,) = join(chat, notifier, "Alice")
    for n in range(5):
        chat.send_public(alice, f"m{n}")
    notifier.clear()
    chat.history(alice, 1, client_id="h1")
    (frame,) = notifier.frames(alice)
    assert [m["text"] for m in frame["history"]] == ["m3", "m4"]
    assert (frame["complete"], frame["id"]) == (False, "h1")


def test_a_big_room_sends_the_joiner_the_list_in_parts_and_the_others_only_the_notice(
    store, notifier
):
    small = Limits(message_burst=1000, name_burst=100, member_list_threshold=3)
    chat = Requests(ChatService(store, notifier, connection_ttl_seconds=TTL, limits=small))
    ids = join(chat, notifier, "A", "B", "C")
    chat.connect("d=")
    chat.set_name("d=", "D")
    mine = notifier.frames("d=")
    assert mine[0] == {"memberList": ["A", "B", "C", "D"], "part": 1, "parts": 1}
    assert mine[-1]["event"] == "join"
    assert notifier.frames(ids[0]) == [mine[-1]]  # no full list for the others
    notifier.clear()
    chat.disconnect("d=")
    assert [f.get("event") for f in notifier.frames(ids[0])] == ["leave", None]
    assert notifier.frames(ids[0])[1] == {"members": ["A", "B", "C"]}  # small again


def test_every_copy_of_a_notice_and_its_member_list_carries_one_event_id(chat, notifier):
    # GIVEN Bob and Carol in the chat
    bob, carol = join(chat, notifier, "Bob", "Carol")
    # WHEN Alice joins, then renames herself, then leaves
    chat.connect("alice=")
    chat.set_name("alice=", "Alice")
    joined = {cid: notifier.raw_frames(cid) for cid in (bob, carol, "alice=")}
    notifier.clear()
    chat.set_name("alice=", "Alicia")
    renamed = notifier.raw_frames(bob)
    notifier.clear()
    chat.disconnect("alice=")
    left = notifier.raw_frames(bob)
    # THEN every member got the same ids for the same event, and each event has its own
    ids = {cid: [f["eventId"] for f in got] for cid, got in joined.items()}
    assert ids[bob] == ids[carol] == ids["alice="]
    members_id, join_id = ids[bob]
    assert members_id != join_id
    later = [f["eventId"] for f in renamed + left]
    assert len(set(later)) == 4 and not set(later) & {members_id, join_id}


def test_the_parts_of_one_big_member_list_share_one_event_id(store, notifier):
    small = Limits(
        message_burst=1000, name_burst=100, member_list_threshold=3, max_room_size=10_000
    )
    chat = Requests(ChatService(store, notifier, connection_ttl_seconds=TTL, limits=small))
    join(chat, notifier, "A", "B", "C")
    for i in range(2000):
        chat.connect(f"m{i}=")
        store.connections[f"m{i}="].name = f"member-{i:04d}-" + "x" * 20
    chat.connect("d=")
    chat.set_name("d=", "D")
    parts = [f for f in notifier.raw_frames("d=") if "memberList" in f]
    assert len(parts) > 1
    assert len({p["eventId"] for p in parts}) == 1
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))


def test_no_frame_exceeds_32_kb_in_a_room_of_5000_with_the_longest_names(store, notifier):
    # GIVEN 5,000 members whose names are 32 four-byte characters (written to the store)
    big = Limits(message_burst=1000, name_burst=100, max_room_size=10_000)
    chat = Requests(ChatService(store, notifier, connection_ttl_seconds=TTL, limits=big))
    longest = [chr(0x1D400 + i % 52) for i in range(32)]
    for i in range(5000):
        cid = f"m{i:05}="
        chat.connect(cid)
        name = "".join(longest[:27]) + f"{i:05}"
        store.connections[cid].name = name
    # WHEN one more joins and someone leaves
    chat.connect("new=")
    chat.set_name("new=", "Newcomer")
    chat.disconnect("m00000=")
    # THEN every frame anyone received is under one 32 KB unit
    sizes = [len(encode(f)) for inbox in notifier.inbox.values() for f in inbox]
    assert max(sizes) < 32 * 1024
    parts = [f for f in notifier.frames("new=") if "memberList" in f]
    assert sum(len(p["memberList"]) for p in parts) == 5001


def test_a_resend_during_the_first_sends_fan_out_is_acknowledged_only_after_it(store, clock):
    # GIVEN a first send whose posts to the others have not completed yet
    notifier = RecordingNotifier()
    naps: list[float] = []
    service = ChatService(
        store, notifier, connection_ttl_seconds=TTL, limits=ROOMY, clock=clock, sleep=naps.append
    )
    chat = Requests(service)
    alice, _ = join(chat, notifier, "Alice", "Bob")
    key = store.get_connection(alice).sender_key
    store.sent[(key, "m1")] = Sent({"id": "m1", "text": "hello"}, delivered=False)

    # WHEN the resend arrives, and the first send finishes while it waits
    def finish_after_two_naps(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            store.mark_delivered(key, "m1")

    service._sleep = finish_after_two_naps
    chat.send_public(alice, "hello", client_id="m1")
    # THEN the repeat comes only after the first send is done, and nothing is re-delivered
    assert len(naps) == 2
    assert notifier.take(alice) == [{"id": "m1", "text": "hello"}]
