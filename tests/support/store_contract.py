"""The rooms' store contract (docs/rooms-design.md §2): behaviour every ChatStore has, written
once against the port. A suite subclasses `StoreContract` and gives it two fixtures, `store`
(a fresh store) and `clock` (the FakeClock that store reads), so that the in-memory model
(tests/support/fakes.py) and DynamoChatStore (on moto) answer the same tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from chat.names import claim_keys
from chat.ports import (
    DELETE,
    DIRECT,
    EDIT,
    LOBBY,
    MSG,
    PRIVATE,
    PUBLIC,
    ConcurrentUpdateError,
    Connection,
    EditWindowClosedError,
    EventSeq,
    Frame,
    Member,
    NotInRoomError,
    NotYoursError,
    Receipt,
    Rewrite,
    RoomExistsError,
    RoomFullError,
    RoomLimitError,
    RoomLimits,
    RoomNotFoundError,
    RoomRequest,
    TooManyRoomsError,
    UnknownMessageError,
)
from chat.rooms import direct_room_id, room_claim_keys, room_key
from tests.support.fakes import FakeClock

LIMITS = RoomLimits(
    max_members=1000,
    max_rooms_per_connection=10,
    max_rooms=1000,
    room_ttl_seconds=86_400,
    invite_ttl_seconds=3600,
    read_state_ttl_seconds=86_400,
)
HOUR = 3600


def request(name: str, kind: str = PUBLIC, group: str | None = None) -> RoomRequest:
    """What a joinRoom or createRoom of `name` asks the store for."""
    return RoomRequest(room_key(name), name, room_claim_keys(name), kind=kind, group=group)


def connect(store: Any, clock: FakeClock, cid: str, name: str, *, protocol: int = 2) -> Connection:
    """A connection that took `name` (a v2 setName joins no room; a v1 one joins the lobby)."""
    store.add_connection(cid, int(clock.now) + 3 * HOUR)
    fresh = store.get_connection(cid)
    store.claim_name(
        fresh,
        name,
        claim_keys(name),
        max_members=1000,
        sender_key=identity(cid),
        protocol=protocol,
    )
    connection = store.get_connection(cid)
    assert connection is not None
    return connection


def identity(cid: str) -> str:
    return f"key#{cid}"


def join(store: Any, cid: str, name: str, limits: RoomLimits = LIMITS, **options: Any) -> Any:
    connection = store.get_connection(cid) or Connection(cid, None, 0)
    return store.join_room(
        connection, request(name), identity=identity(cid), limits=limits, **options
    )


def create(store: Any, cid: str, name: str, limits: RoomLimits = LIMITS, **kind: Any) -> Any:
    connection = store.get_connection(cid)
    return store.create_room(
        connection, request(name, **kind), identity=identity(cid), limits=limits
    )


def post(store: Any, clock: FakeClock, cid: str, room: str, text: str, *, mid: str = "") -> int:
    """Keep a message in the room's history, as the rules will; returns its seq."""
    mid = mid or text
    taken = store.next_event(room, MSG)
    frame = {"publicMessage": text, "room": room, "seq": taken.seq, "messageId": mid}
    store.record_message(
        Receipt(
            seq=taken.seq,
            prev=taken.prev_public,
            sender_key=identity(cid),
            client_id=None,
            ack={"ack": "sendPublic"},
            public=frame,
            history_expires_at=int(clock.now) + HOUR,
            dedup_expires_at=int(clock.now) + HOUR,
            room=room,
            prev_event=taken.prev_event,
            message_id=mid,
            sent_at_ms=int(clock.now * 1000),
        )
    )
    return int(taken.seq)


def change(
    clock: FakeClock, cid: str, room: str, of: int, mid: str, *, kind: str = EDIT, **over: Any
) -> Rewrite:
    def build(taken: EventSeq, original: Frame) -> tuple[Frame, Frame]:
        text = "fixed" if kind == EDIT else "(deleted)"
        latest = {**original, "publicMessage": text, "edited": True}
        event = {"messageEdited" if kind == EDIT else "messageDeleted": mid, "of": of}
        return latest, {**event, "room": room, "seq": taken.seq, "prev": taken.prev_event}

    fields: dict[str, Any] = {
        "room": room,
        "of": of,
        "message_id": mid,
        "by": identity(cid),
        "kind": kind,
        "window_start_ms": int(clock.now * 1000) - 900_000,
        "build": build,
        "event_expires_at": int(clock.now) + HOUR,
    }
    return Rewrite(**{**fields, **over})


def texts(frames: list[Frame]) -> list[Any]:
    return [f.get("publicMessage", f.get("messageEdited", f.get("messageDeleted"))) for f in frames]


class StoreContract:
    """The tests; a subclass provides the `store` and `clock` fixtures."""

    # --- joining, creating, access ---------------------------------------------------

    def test_joining_a_name_nobody_holds_creates_a_public_room(self, store, clock):
        connect(store, clock, "c1", "alice")
        joined = join(store, "c1", "Dev")
        assert (joined.room.key, joined.room.name, joined.room.kind) == ("dev", "Dev", PUBLIC)
        assert (joined.created, joined.already_member, joined.count) == (True, False, 1)
        assert store.room_meta("dev").creator == identity("c1")
        assert store.list_members("dev") == [Member("c1", "alice")]
        assert [m.room for m in store.memberships("c1")] == ["dev"]
        assert store.get_connection("c1").rooms == 1

    def test_joining_a_look_alike_joins_the_same_room(self, store, clock):
        connect(store, clock, "c1", "alice")
        connect(store, clock, "c2", "bob")
        join(store, "c1", "alice")
        joined = join(store, "c2", "aIice")  # a capital I: another room key, a shared claim key
        assert (joined.room.key, joined.created, joined.count) == ("alice", False, 2)
        assert join(store, "c2", "ALICE").already_member
        assert store.room_meta("aiice", room_claim_keys("aIice")).key == "alice"

    def test_a_look_alike_of_the_lobby_is_the_lobby(self, store, clock):
        connect(store, clock, "c1", "alice")
        joined = join(store, "c1", "Iobby")  # a capital I
        assert (joined.room.key, joined.created) == (LOBBY, False)
        assert store.list_members() == [Member("c1", "alice")]
        with pytest.raises(RoomExistsError):
            create(store, "c1", "LOBBY", kind=PRIVATE)

    def test_joining_twice_changes_nothing(self, store, clock):
        connect(store, clock, "c1", "alice")
        join(store, "c1", "dev")
        again = join(store, "c1", "Dev")
        assert (again.already_member, again.created, again.count) == (True, False, 1)
        assert store.get_connection("c1").rooms == 1

    def test_an_unnamed_or_gone_connection_joins_nothing(self, store, clock):
        store.add_connection("c1", int(clock.now) + HOUR)
        with pytest.raises(ConcurrentUpdateError):
            join(store, "c1", "dev")
        connect(store, clock, "c2", "bob")
        store.remove_connection("c2")
        with pytest.raises(ConcurrentUpdateError):
            join(store, "c2", "dev")
        assert store.room_meta("dev") is None

    def test_a_private_room_admits_by_invitation(self, store, clock):
        for cid, name in (("c1", "carol"), ("c2", "bob")):
            connect(store, clock, cid, name)
        made = create(store, "c1", "ops", kind=PRIVATE)
        assert (made.room.kind, made.created, made.count) == (PRIVATE, True, 1)
        with pytest.raises(RoomNotFoundError):
            join(store, "c2", "ops")
        with pytest.raises(RoomNotFoundError):  # a look-alike is the same room
            join(store, "c2", "OPS")
        store.put_invite(identity("c2"), made.room, "carol", limits=LIMITS)
        assert [(i.room, i.sender) for i in store.invites(identity("c2"), 10)] == [("ops", "carol")]
        assert join(store, "c2", "ops").count == 2
        # The creator holds a grant of its own.
        assert [i.room for i in store.invites(identity("c1"), 10)] == ["ops"]

    def test_a_private_room_admits_the_group_it_names(self, store, clock):
        for cid, name in (("c1", "carol"), ("c2", "bob"), ("c3", "dave")):
            connect(store, clock, cid, name)
        create(store, "c1", "ops", kind=PRIVATE, group="sre")
        assert join(store, "c2", "ops", groups=frozenset({"sre", "dev"})).count == 2
        with pytest.raises(RoomNotFoundError):
            join(store, "c3", "ops", groups=frozenset({"dev"}))

    def test_create_refuses_a_name_or_look_alike_that_is_taken(self, store, clock):
        connect(store, clock, "c1", "alice")
        join(store, "c1", "alice")
        for taken in ("alice", "Alice", "aIice"):
            with pytest.raises(RoomExistsError):
                create(store, "c1", taken, kind=PRIVATE)

    def test_a_direct_room_admits_only_its_two_parties(self, store, clock):
        for cid, name in (("c1", "alice"), ("c2", "bob"), ("c3", "eve")):
            connect(store, clock, cid, name)
        key = direct_room_id(identity("c1"), identity("c2"))
        with pytest.raises(RoomNotFoundError):  # nobody opened it yet
            self._join_direct(store, "c1", key)
        parties = frozenset({identity("c1"), identity("c2")})
        opened = store.open_direct_room(
            RoomRequest(key, key, kind=DIRECT, parties=parties, names=("alice", "bob")),
            limits=LIMITS,
        )
        assert (opened.kind, opened.parties) == (DIRECT, parties)
        assert store.open_direct_room(RoomRequest(key, key, kind=DIRECT), limits=LIMITS) == opened
        assert self._join_direct(store, "c1", key).count == 1
        assert self._join_direct(store, "c2", key).count == 2
        with pytest.raises(RoomNotFoundError):
            self._join_direct(store, "c3", key)

    @staticmethod
    def _join_direct(store: Any, cid: str, key: str) -> Any:
        return store.join_room(
            store.get_connection(cid),
            RoomRequest(key, key, kind=DIRECT),
            identity=identity(cid),
            limits=LIMITS,
        )

    # --- limits --------------------------------------------------------------------

    def test_a_full_room_refuses_the_next_member_until_one_leaves(self, store, clock):
        small = RoomLimits(**{**LIMITS.__dict__, "max_members": 2})
        for cid in ("c1", "c2", "c3"):
            connect(store, clock, cid, f"m-{cid}")
        join(store, "c1", "dev", small)
        join(store, "c2", "dev", small)
        with pytest.raises(RoomFullError):
            join(store, "c3", "dev", small)
        store.leave_room("c1", "dev")
        assert join(store, "c3", "dev", small).count == 2

    def test_a_connection_is_in_at_most_its_maximum_of_rooms(self, store, clock):
        two = RoomLimits(**{**LIMITS.__dict__, "max_rooms_per_connection": 2})
        connect(store, clock, "c1", "alice")
        join(store, "c1", "one", two)
        join(store, "c1", "two", two)
        with pytest.raises(TooManyRoomsError):
            join(store, "c1", "three", two)
        assert store.room_meta("three") is None  # refused before anything was made
        store.leave_room("c1", "one")
        join(store, "c1", "three", two)
        assert store.get_connection("c1").rooms == 2

    def test_the_stack_holds_at_most_its_maximum_of_rooms(self, store, clock):
        two = RoomLimits(**{**LIMITS.__dict__, "max_rooms": 2})
        connect(store, clock, "c1", "alice")
        connect(store, clock, "c2", "bob")
        join(store, "c1", LOBBY, two)  # the lobby is never counted
        join(store, "c1", "one", two)
        create(store, "c1", "two", two, kind=PRIVATE)
        with pytest.raises(RoomLimitError):
            join(store, "c2", "three", two)
        with pytest.raises(RoomLimitError):
            create(store, "c2", "four", two, kind=PRIVATE)
        assert join(store, "c2", "one", two).count == 2  # joining one that exists is fine

    # --- leaving, $disconnect, the lobby ---------------------------------------------

    def test_leaving_removes_the_membership_once(self, store, clock):
        connect(store, clock, "c1", "alice")
        connect(store, clock, "c2", "bob")
        join(store, "c1", "dev")
        join(store, "c2", "dev")
        assert store.leave_room("c1", "dev") == Member("c1", "alice")
        assert store.list_members("dev") == [Member("c2", "bob")]
        assert store.memberships("c1") == []
        assert store.membership("c1", "dev") is None
        assert store.get_connection("c1").rooms == 0
        with pytest.raises(NotInRoomError):
            store.leave_room("c1", "dev")
        assert join(store, "c1", "dev").count == 2

    def test_memberships_outlive_the_connection_for_disconnect(self, store, clock):
        connect(store, clock, "c1", "alice")
        join(store, "c1", LOBBY)
        join(store, "c1", "dev")
        assert store.remove_connection("c1") is None  # a v2 connection: rooms left one by one
        assert store.get_connection("c1") is None
        assert sorted(m.room for m in store.memberships("c1")) == ["dev", LOBBY]
        left = [store.leave_room("c1", m.room) for m in store.memberships("c1")[:1]]
        left += [store.leave_room("c1", m.room, disconnected=True) for m in store.memberships("c1")]
        assert left == [Member("c1", "alice")] * 2
        assert store.memberships("c1") == []
        assert store.list_members() == []
        assert store.list_members("dev") == []
        assert store.get_connection("c1") is None  # leaving did not bring it back

    def test_the_lobby_lists_v1_and_v2_members_under_one_cap(self, store, clock):
        connect(store, clock, "v1", "old", protocol=1)
        connect(store, clock, "v2", "new")
        assert store.memberships("v1") == []  # the legacy membership has no twin
        assert store.list_members() == [Member("v1", "old")]  # v2 setName joins no room
        joined = join(store, "v2", LOBBY)
        assert (joined.room.key, joined.room.kind, joined.created) == (LOBBY, PUBLIC, False)
        assert sorted(store.list_members(), key=str) == [Member("v1", "old"), Member("v2", "new")]
        store.add_connection("v3", int(clock.now) + HOUR)
        with pytest.raises(RoomFullError):
            store.claim_name(store.get_connection("v3"), "third", ["third"], max_members=2)
        small = RoomLimits(**{**LIMITS.__dict__, "max_members": 2})
        connect(store, clock, "v4", "fourth")
        with pytest.raises(RoomFullError):
            join(store, "v4", LOBBY, small)
        assert store.remove_connection("v1") == Member("v1", "old")
        assert store.list_members() == [Member("v2", "new")]

    def test_a_v2_rename_renames_every_membership(self, store, clock):
        connection = connect(store, clock, "c1", "alice")
        join(store, "c1", LOBBY)
        join(store, "c1", "dev")
        store.claim_name(
            store.get_connection("c1"), "Alicia", claim_keys("Alicia"), max_members=1000
        )
        assert connection.protocol == 2
        assert store.list_members("dev") == [Member("c1", "Alicia")]
        assert store.list_members() == [Member("c1", "Alicia")]

    # --- sequence numbers and history ------------------------------------------------

    def test_each_room_has_its_own_seq_and_history(self, store, clock):
        connect(store, clock, "c1", "alice")
        assert [post(store, clock, "c1", "dev", t, mid=t) for t in ("a", "b")] == [1, 2]
        assert post(store, clock, "c1", "ops", "c", mid="c") == 1
        frames, complete = store.history(None, 10, 10_000, room="dev", events=True)
        assert (texts(frames), complete) == (["a", "b"], True)
        assert texts(store.history(None, 10, 10_000, room="ops")[0]) == ["c"]
        assert store.history(None, 10, 10_000) == ([], True)  # the lobby's is untouched
        assert store.next_seq(public=True) == (1, 0)

    @staticmethod
    def _private(store: Any, clock: FakeClock, room: str, text: str, client_id: str) -> Receipt:
        """Keep a direct message with an id, as send_private does before its post."""
        taken = store.next_event(room, MSG)
        receipt = Receipt(
            seq=taken.seq,
            prev=taken.prev_public,
            sender_key=identity("c1"),
            client_id=client_id,
            ack={"ack": "sendPrivate", "id": client_id},
            public={"directMessage": text, "room": room, "seq": taken.seq, "messageId": text},
            history_expires_at=int(clock.now) + HOUR,
            dedup_expires_at=int(clock.now) + HOUR,
            room=room,
            prev_event=taken.prev_event,
            message_id=text,
        )
        assert store.record_message(receipt) is None
        return receipt

    def test_a_withdrawn_message_leaves_nothing_and_the_next_one_chains_past_it(self, store, clock):
        connect(store, clock, "c1", "alice")
        room = direct_room_id("key#a", "key#b")
        assert post(store, clock, "c1", room, "kept") == 1
        lost = self._private(store, clock, room, "lost", "p2")
        store.withdraw_message(lost, {"directMessage": "(deleted)", "deleted": True})
        assert store.sent_before(identity("c1"), "p2") is None
        assert store.history(None, 10, 10_000, room=room, events=True) == (
            [{"publicMessage": "kept", "room": room, "seq": 1, "messageId": "kept"}],
            True,
        )
        assert store.unread(room, 0) == 1
        following = store.next_event(room, MSG)
        assert (following.seq, following.prev_public, following.prev_event) == (3, 1, 1)

    def test_a_withdrawn_message_a_later_event_points_at_becomes_its_tombstone(self, store, clock):
        connect(store, clock, "c1", "alice")
        room = direct_room_id("key#a", "key#b")
        lost = self._private(store, clock, room, "lost", "p2")
        assert post(store, clock, "c1", room, "later") == 2  # chained to the lost one
        tombstone = {"directMessage": "(deleted)", "room": room, "seq": 1, "deleted": True}
        store.withdraw_message(lost, tombstone)
        assert store.sent_before(identity("c1"), "p2") is None
        frames, complete = store.history(None, 10, 10_000, room=room, events=True)
        assert (frames[0], texts(frames[1:]), complete) == (tombstone, ["later"], True)
        assert store.unread(room, 0) == 1
        assert store.next_event(room, MSG).prev_event == 2

    def test_the_lobby_chains_v1_frames_by_public_messages_and_v2_by_events(self, store, clock):
        assert store.next_seq(public=True) == (1, 0)
        assert store.next_seq(public=False) == (2, 1)  # a v1 private message: no event
        edit = store.next_event(LOBBY, EDIT)
        assert (edit.seq, edit.prev_public, edit.prev_event) == (3, 1, 1)
        message = store.next_event(LOBBY, MSG)
        assert (message.seq, message.prev_public, message.prev_event) == (4, 1, 3)
        assert store.next_seq(public=True) == (5, 4)

    def test_an_edit_rewrites_the_original_and_adds_an_event(self, store, clock):
        connect(store, clock, "c1", "alice")
        of = post(store, clock, "c1", "dev", "tpyo", mid="m1")
        clock.now += 60
        taken = store.rewrite_message(change(clock, "c1", "dev", of, "m1"))
        assert (taken.seq, taken.prev_event) == (2, 1)
        frames, complete = store.history(None, 10, 10_000, room="dev", events=True)
        assert (texts(frames), complete) == (["fixed", "m1"], True)
        assert frames[0]["edited"] is True
        assert texts(store.history(None, 10, 10_000, room="dev")[0]) == ["fixed"]
        assert texts(store.history(1, 10, 10_000, room="dev", events=True)[0]) == ["m1"]

    def test_a_delete_leaves_a_tombstone_that_cannot_be_changed_again(self, store, clock):
        connect(store, clock, "c1", "alice")
        of = post(store, clock, "c1", "dev", "oops", mid="m1")
        store.rewrite_message(change(clock, "c1", "dev", of, "m1", kind=DELETE))
        frames, _ = store.history(None, 10, 10_000, room="dev", events=True)
        assert texts(frames) == ["(deleted)", "m1"]
        assert "messageDeleted" in frames[1]
        for kind in (EDIT, DELETE):
            with pytest.raises(UnknownMessageError):
                store.rewrite_message(change(clock, "c1", "dev", of, "m1", kind=kind))
        assert store.unread("dev", 0) == 0

    def test_a_refused_edit_changes_nothing(self, store, clock):
        connect(store, clock, "c1", "alice")
        connect(store, clock, "c2", "bob")
        of = post(store, clock, "c1", "dev", "mine", mid="m1")
        before = store.history(None, 10, 10_000, room="dev", events=True)
        with pytest.raises(NotYoursError):
            store.rewrite_message(change(clock, "c2", "dev", of, "m1"))
        with pytest.raises(UnknownMessageError):  # a wrong messageId guards a wrong seq
            store.rewrite_message(change(clock, "c1", "dev", of, "m2"))
        with pytest.raises(UnknownMessageError):
            store.rewrite_message(change(clock, "c1", "dev", of + 1, "m1"))
        clock.now += 901
        with pytest.raises(EditWindowClosedError):
            store.rewrite_message(change(clock, "c1", "dev", of, "m1"))
        assert store.history(None, 10, 10_000, room="dev", events=True) == before
        assert store.next_event("dev", MSG).seq == 2  # no seq was spent

    # --- invitations, read state, unread, the registry --------------------------------

    def test_invitations_expire(self, store, clock):
        connect(store, clock, "c1", "carol")
        made = create(store, "c1", "ops", kind=PRIVATE)
        connect(store, clock, "c2", "bob")
        store.put_invite(identity("c2"), made.room, "carol", limits=LIMITS)
        clock.now += LIMITS.invite_ttl_seconds + 1
        assert store.invites(identity("c2"), 10) == []
        connect(store, clock, "c3", "bobby")
        with pytest.raises(RoomNotFoundError):
            store.join_room(
                store.get_connection("c3"), request("ops"), identity=identity("c2"), limits=LIMITS
            )

    def test_a_join_by_invitation_keeps_the_invitation_longer(self, store, clock):
        connect(store, clock, "c1", "carol")
        made = create(store, "c1", "ops", kind=PRIVATE)
        store.put_invite(identity("c2"), made.room, "carol", limits=LIMITS)
        clock.now += LIMITS.invite_ttl_seconds * 0.9
        connect(store, clock, "c2", "bob")
        join(store, "c2", "ops")
        clock.now += LIMITS.invite_ttl_seconds * 0.5
        assert [(i.room, i.sender) for i in store.invites(identity("c2"), 10)] == [("ops", "carol")]

    def test_mark_read_only_moves_forward(self, store, clock):
        room = store.room_meta(LOBBY)
        assert store.mark_read("key#a", room, 5, limits=LIMITS).seq == 5
        assert store.mark_read("key#a", room, 3, limits=LIMITS).seq == 5
        assert store.mark_read("key#a", room, 7, limits=LIMITS).seq == 7
        states = store.read_states("key#a", 10)
        assert [(s.room, s.seq, s.kind) for s in states] == [(LOBBY, 7, PUBLIC)]
        clock.now += LIMITS.read_state_ttl_seconds + 1
        assert store.read_states("key#a", 10) == []

    def test_a_first_join_reads_the_room_up_to_its_last_event(self, store, clock):
        connect(store, clock, "c1", "alice")
        connect(store, clock, "c2", "bob")
        join(store, "c1", "dev")
        for text in ("a", "b", "c"):
            post(store, clock, "c1", "dev", text, mid=text)
        joined = join(store, "c2", "dev")
        assert (joined.last_event, joined.last_read) == (3, 3)
        assert [(s.room, s.seq) for s in store.read_states(identity("c2"), 10)] == [("dev", 3)]
        assert join(store, "c1", "dev").last_read == 0  # c1's first join saw an empty room

    def test_unread_counts_messages_up_to_a_hundred(self, store, clock):
        connect(store, clock, "c1", "alice")
        for i in range(105):
            post(store, clock, "c1", "dev", f"m{i}")
        store.rewrite_message(change(clock, "c1", "dev", 105, "m104"))  # events do not count
        assert store.unread("dev", 0) == 100
        assert store.unread("dev", 100) == 5
        assert store.unread("dev", 0, cap=10) == 10
        assert store.unread("nowhere", 0) == 0

    def test_the_registry_lists_public_and_private_rooms_never_direct(self, store, clock):
        connect(store, clock, "c1", "alice")
        join(store, "c1", "bravo")
        create(store, "c1", "alpha", kind=PRIVATE)
        key = direct_room_id("key#a", "key#b")
        store.open_direct_room(
            RoomRequest(key, key, kind=DIRECT, parties=frozenset({"key#a", "key#b"})),
            limits=LIMITS,
        )
        listed, complete = store.public_rooms(10)
        assert [(r.room, r.kind) for r in listed] == [("alpha", PRIVATE), ("bravo", PUBLIC)]
        assert complete
        listed, complete = store.public_rooms(1)
        assert (len(listed), complete) == (1, False)

    # --- expiry -------------------------------------------------------------------

    def test_a_room_without_joins_expires(self, store, clock):
        connect(store, clock, "c1", "alice")
        join(store, "c1", "dev")
        store.leave_room("c1", "dev")
        clock.now += LIMITS.room_ttl_seconds + 1
        assert store.room_meta("dev") is None
        assert store.public_rooms(10) == ([], True)
        assert store.room_meta(LOBBY) is not None  # the lobby never does

    def test_a_join_refreshes_a_room_past_half_its_life(self, store, clock):
        for cid in ("c1", "c2"):
            connect(store, clock, cid, f"m-{cid}")
        join(store, "c1", "dev")
        clock.now += LIMITS.room_ttl_seconds * 0.6
        connect(store, clock, "c3", "late")
        join(store, "c3", "dev")
        clock.now += LIMITS.room_ttl_seconds * 0.6
        assert store.room_meta("dev") is not None
        assert [r.room for r in store.public_rooms(10)[0]] == ["dev"]

    def test_a_room_made_again_under_an_expired_key_keeps_its_seq(self, store, clock):
        connect(store, clock, "c1", "alice")
        join(store, "c1", "dev")
        post(store, clock, "c1", "dev", "a", mid="a")
        store.leave_room("c1", "dev")
        clock.now += LIMITS.room_ttl_seconds + 1
        connect(store, clock, "c2", "bob")
        joined = join(store, "c2", "Dev")
        assert (joined.created, joined.count, joined.room.creator) == (True, 1, identity("c2"))
        assert store.next_event("dev", MSG).seq == 2
