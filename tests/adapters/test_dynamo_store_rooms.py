"""The rooms of DynamoChatStore on moto: the store contract (tests/support/store_contract.py),
with members in one partition and spread over four, then the races and the table's shape."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chat.names import claim_keys
from chat.ports import (
    DIRECT,
    EDIT,
    LOBBY,
    MSG,
    PRIVATE,
    ChatStore,
    Joined,
    Member,
    NotYoursError,
    RoomFullError,
    RoomLimitError,
    RoomLimits,
    RoomRequest,
    TooManyRoomsError,
)
from chat.store import (
    DynamoChatStore,
    connection_key,
    count_key,
    member_partition,
    seq_key,
)
from tests.support.aws import TABLE
from tests.support.consistency import scan, table_problems
from tests.support.fakes import FakeClock
from tests.support.store_contract import (
    LIMITS,
    StoreContract,
    change,
    connect,
    create,
    join,
    post,
    request,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=[1, 4], ids=["one-partition", "four-partitions"])
def store(request, db, clock) -> DynamoChatStore:
    return DynamoChatStore(db, TABLE, clock=clock, member_partitions=request.param)


class TestDynamoRooms(StoreContract):
    @pytest.fixture(autouse=True)
    def consistent_after(self, store, db):
        """Every test leaves a consistent table (tests.support.consistency)."""
        yield
        assert table_problems(scan(db, TABLE)) == []


# --- races (DynamoDB serializes conflicting writes; tests.support.aws serializes moto) -----


def race(calls, workers: int = 16) -> list[Any]:
    """Run the calls at once; each result is the value returned or the exception raised."""

    def attempt(call):
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(attempt, calls))


def limited(**changes: int) -> RoomLimits:
    return RoomLimits(**{**LIMITS.__dict__, **changes})


def test_fifty_racing_joins_at_the_cap_give_exactly_the_cap(store, db, clock):
    for i in range(50):
        connect(store, clock, f"c{i:02d}", f"member-{i:02d}")
    cap = limited(max_members=20)
    outcomes = race([lambda i=i: join(store, f"c{i:02d}", "dev", cap) for i in range(50)])
    assert sum(isinstance(o, Joined) for o in outcomes) == 20
    assert all(isinstance(o, Joined | RoomFullError) for o in outcomes), outcomes
    assert sum(o.created for o in outcomes if isinstance(o, Joined)) == 1
    assert len(store.list_members("dev")) == 20
    assert table_problems(scan(db, TABLE)) == []


def test_a_connection_racing_into_rooms_stays_under_its_maximum(store, db, clock):
    connect(store, clock, "c1", "alice")
    five = limited(max_rooms_per_connection=5)
    outcomes = race([lambda i=i: join(store, "c1", f"room-{i:02d}", five) for i in range(20)])
    assert sum(isinstance(o, Joined) for o in outcomes) == 5
    assert all(isinstance(o, Joined | TooManyRoomsError) for o in outcomes), outcomes
    assert store.get_connection("c1").rooms == 5
    assert len(store.memberships("c1")) == 5
    assert table_problems(scan(db, TABLE)) == []


def test_racing_creations_stay_under_the_stack_maximum(store, db, clock):
    for i in range(10):
        connect(store, clock, f"c{i}", f"maker-{i}")
    three = limited(max_rooms=3)
    outcomes = race([lambda i=i: join(store, f"c{i}", f"room-{i}", three) for i in range(10)])
    assert sum(isinstance(o, Joined) for o in outcomes) == 3
    assert all(isinstance(o, Joined | RoomLimitError) for o in outcomes), outcomes
    assert len(store.public_rooms(100)[0]) == 3
    assert table_problems(scan(db, TABLE)) == []


@pytest.mark.parametrize("first", ["alice", "aIice"])
def test_two_racing_creations_of_look_alike_names_make_one_room(store, db, clock, first):
    second = "aIice" if first == "alice" else "alice"
    connect(store, clock, "c1", "carol")
    connect(store, clock, "c2", "dave")
    made = race(
        [
            lambda: create(store, "c1", first, kind=PRIVATE),
            lambda: create(store, "c2", second, kind=PRIVATE),
        ]
    )
    assert sorted(type(o).__name__ for o in made) == ["Joined", "RoomExistsError"], made
    connect(store, clock, "c5", "gina")
    connect(store, clock, "c6", "hank")
    public = race([lambda: join(store, "c5", "mallory"), lambda: join(store, "c6", "maIlory")])
    assert all(isinstance(o, Joined) for o in public), public
    assert len({o.room.key for o in public}) == 1
    assert sum(o.created for o in public) == 1
    assert table_problems(scan(db, TABLE)) == []


# --- the legacy shape and what each action writes ------------------------------------------


def test_a_legacy_connection_is_removed_exactly_as_before_rooms(store, db, clock):
    """A CONN item without `proto` (every connection made before rooms, every v1 one after):
    its one membership is the lobby's legacy MEMBER item, removed with it."""
    connect(store, clock, "old", "veteran", protocol=1)
    conn = db.get_item(TableName=TABLE, Key=connection_key("old"))["Item"]
    assert "proto" not in conn
    assert "rooms" not in conn
    assert store.memberships("old") == []
    assert store.list_members() == [Member("old", "veteran")]
    assert store.remove_connection("old") == Member("old", "veteran")
    left = [i for i in scan(db, TABLE) if i["sk"]["S"] != "COUNT"]
    assert left == []
    count = db.get_item(TableName=TABLE, Key=count_key())["Item"]
    assert count["members"]["N"] == "0"


def test_a_v2_connection_is_removed_without_touching_its_rooms(store, db, clock):
    connect(store, clock, "new", "newcomer")
    join(store, "new", LOBBY)
    assert store.remove_connection("new") is None
    assert db.get_item(TableName=TABLE, Key=count_key())["Item"]["members"]["N"] == "1"
    assert store.list_members() == [Member("new", "newcomer")]  # until its leave
    assert store.leave_room("new", LOBBY) == Member("new", "newcomer")
    assert db.get_item(TableName=TABLE, Key=count_key())["Item"]["members"]["N"] == "0"
    assert [i for i in scan(db, TABLE) if i["pk"]["S"].startswith("CONN#")] == []


class Recorder:
    """A DynamoDB client that records each request: (operation, keys or actions)."""

    def __init__(self, client):
        self._client = client
        self.calls: list[tuple[str, object]] = []

    def __getattr__(self, operation):
        method = getattr(self._client, operation)

        def call(**request):
            if "TransactItems" in request:
                shape = [
                    (next(iter(a)), _key(next(iter(a.values())))) for a in request["TransactItems"]
                ]
                self.calls.append((operation, shape))
            else:
                self.calls.append((operation, _key(request)))
            return method(**request)

        return call


def _key(request: dict) -> str:
    key = request.get("Key") or request.get("Item")
    if key is None:
        return request["ExpressionAttributeValues"][":" + _partition_name(request)]["S"]
    return f"{key['pk']['S']}/{key['sk']['S']}"


def _partition_name(request: dict) -> str:
    return request["KeyConditionExpression"].split(":", 1)[1].split()[0]


@pytest.fixture
def recorded(db, clock):
    recorder = Recorder(db)
    return recorder, DynamoChatStore(recorder, TABLE, clock=clock)


def test_a_join_of_a_room_that_exists_reads_three_items_and_writes_one_transaction(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    connect(store, clock, "c2", "bob")
    join(store, "c1", "dev")
    connection = store.get_connection("c2")
    recorder.calls.clear()
    store.join_room(connection, request("Dev"), identity="key#c2", limits=LIMITS)
    assert recorder.calls == [
        ("get_item", "ROOM#dev/META"),
        (
            "transact_write_items",
            [
                ("Put", "ROOM#dev/MEMBER#c2"),
                ("Put", "CONN#c2/ROOM#dev"),
                ("Update", "CONN#c2/CONN"),
                ("Update", "ROOM#dev/COUNT"),
                ("ConditionCheck", "ROOM#dev/META"),
            ],
        ),
        ("get_item", "ROOM#dev/SEQ"),
        ("get_item", "ROOM#dev/COUNT"),
        ("get_item", "READ#key#c2/ROOM#dev"),
        ("update_item", "READ#key#c2/ROOM#dev"),  # a first join records the read state
    ]


def test_a_join_that_creates_a_room_writes_its_items_in_the_same_transaction(recorded, clock):
    recorder, store = recorded
    connection = connect(store, clock, "c1", "alice")
    recorder.calls.clear()
    store.join_room(connection, request("aIice"), identity="key#c1", limits=LIMITS)
    reads, (transaction, *after) = recorder.calls[:3], recorder.calls[3:]
    assert reads == [
        ("get_item", "ROOM#aiice/META"),
        ("get_item", "ROOMKEY#aiice/ROOMKEY"),
        ("get_item", "ROOMKEY#alice/ROOMKEY"),
    ]
    assert transaction == (
        "transact_write_items",
        [
            ("Put", "ROOM#aiice/MEMBER#c1"),
            ("Put", "CONN#c1/ROOM#aiice"),
            ("Update", "CONN#c1/CONN"),
            ("Update", "ROOM#aiice/COUNT"),
            ("Put", "ROOM#aiice/META"),
            ("Update", "ROOM#aiice/SEQ"),
            ("Put", "ROOMS/aiice"),
            ("Update", "ROOMS/COUNT"),
            ("Put", "ROOMKEY#aiice/ROOMKEY"),
            ("Put", "ROOMKEY#alice/ROOMKEY"),
        ],
    )
    assert [call[0] for call in after] == ["get_item", "get_item", "get_item", "update_item"]


def test_a_leave_is_one_transaction_of_four_items(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    join(store, "c1", "dev")
    recorder.calls.clear()
    store.leave_room("c1", "dev")
    assert recorder.calls == [
        ("get_item", "CONN#c1/ROOM#dev"),
        ("get_item", "ROOM#dev/MEMBER#c1"),
        (
            "transact_write_items",
            [
                ("Delete", "ROOM#dev/MEMBER#c1"),
                ("Delete", "CONN#c1/ROOM#dev"),
                ("Update", "ROOM#dev/COUNT"),
                ("Update", "CONN#c1/CONN"),
            ],
        ),
    ]


def test_a_v2_set_name_writes_no_member_item_and_no_count(recorded, db, clock):
    recorder, store = recorded
    store.add_connection("c1", int(clock.now) + 3600)
    recorder.calls.clear()
    store.claim_name(store.get_connection("c1"), "alice", ["alice"], max_members=10, protocol=2)
    (transaction,) = [c for c in recorder.calls if c[0] == "transact_write_items"]
    assert transaction[1] == [("Update", "CONN#c1/CONN"), ("Put", "NAME#alice/NAME")]
    assert db.get_item(TableName=TABLE, Key=connection_key("c1"))["Item"]["proto"]["N"] == "2"


def test_a_v2_rename_renames_its_member_items_in_one_transaction(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    join(store, "c1", "dev")
    join(store, "c1", "ops")
    recorder.calls.clear()
    store.claim_name(store.get_connection("c1"), "bob", ["bob"], max_members=10)
    (transaction,) = [c for c in recorder.calls if c[0] == "transact_write_items"]
    assert transaction[1] == [
        ("Update", "CONN#c1/CONN"),
        ("Update", "ROOM#dev/MEMBER#c1"),
        ("Update", "ROOM#ops/MEMBER#c1"),
        ("Put", "NAME#bob/NAME"),
        ("Delete", "NAME#alice/NAME"),
    ]


def test_a_rename_racing_a_join_never_leaves_a_member_item_misnamed(store, db, clock):
    connect(store, clock, "c1", "alice")
    join(store, "c1", "dev")
    for i in range(6):
        name = f"name-{i}"
        race(
            [
                lambda name=name: store.claim_name(
                    store.get_connection("c1"), name, claim_keys(name), max_members=10
                ),
                lambda i=i: join(store, "c1", f"room-{i}"),
            ]
        )
        assert table_problems(scan(db, TABLE)) == []


def test_only_the_granted_data_actions_are_used():
    """The function may call GetItem, PutItem, UpdateItem, DeleteItem, Query,
    TransactWriteItems (no IAM action of its own) and BatchGetItem (moderation's sanction
    reads): never BatchWriteItem, Scan or anything else."""
    source = (Path(__file__).parents[2] / "lambda_src" / "chat" / "store.py").read_text()
    called = set(re.findall(r"self\._db\.(\w+)\(", source))
    assert called <= {
        "batch_get_item",
        "get_item",
        "put_item",
        "update_item",
        "delete_item",
        "query",
        "transact_write_items",
    }, called


def test_removing_a_v2_connection_twice_leaves_its_rooms_to_its_leaves(store, db, clock):
    connect(store, clock, "c1", "alice")
    join(store, "c1", LOBBY)
    assert store.remove_connection("c1") is None
    assert store.remove_connection("c1") is None  # no CONN item: the orphan path
    assert store.leave_room("c1", LOBBY) == Member("c1", "alice")
    assert table_problems(scan(db, TABLE)) == []


# --- the consistency check sees each broken rooms invariant --------------------------------


@pytest.fixture
def two_rooms(store, db, clock):
    """alice in the lobby and in the private room ops, which bob is invited to."""
    connect(store, clock, "c1", "alice")
    join(store, "c1", LOBBY)
    made = create(store, "c1", "ops", kind=PRIVATE)
    store.put_invite("key#c2", made.room, "alice", limits=LIMITS)
    assert table_problems(scan(db, TABLE)) == []
    return db


def broken(db, *, delete=(), update=()) -> list[str]:
    for pk, sk in delete:
        db.delete_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}})
    for pk, sk, attribute, value in update:
        db.update_item(
            TableName=TABLE,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression="SET #a = :v",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": value},
        )
    return table_problems(scan(db, TABLE))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"delete": [("CONN#c1", "ROOM#ops")]}, "has no CONN#/ROOM# twin"),
        ({"delete": [("<ops member partition>", "MEMBER#c1")]}, "has no MEMBER item"),
        ({"update": [("ROOM#ops", "COUNT", "members", {"N": "2"})]}, "COUNT of 'ops' says 2"),
        ({"update": [("ROOM#lobby", "COUNT", "members", {"N": "0"})]}, "COUNT says 0"),
        ({"update": [("CONN#c1", "CONN", "rooms", {"N": "3"})]}, "is in 3 rooms, not 2"),
        ({"update": [("ROOMS", "COUNT", "rooms", {"N": "0"})]}, "ROOMS counts 0 rooms"),
        ({"delete": [("ROOM#ops", "META")]}, "a room never made"),
        ({"update": [("ROOMKEY#ops", "ROOMKEY", "room", {"S": "dev"})]}, "not its room"),
        ({"update": [("CONN#c1", "ROOM#ops", "shard", {"N": "7"})]}, "records another shard"),
        (
            {"update": [("<ops member partition>", "MEMBER#c1", "name", {"S": "mallory"})]},
            "says 'mallory'",
        ),
    ],
)
def test_the_consistency_check_sees_a_broken_room(two_rooms, store, change, problem):
    partition = member_partition(store.membership("c1", "ops").shard, "ops")
    change = {
        what: [(pk.replace("<ops member partition>", partition), *rest) for pk, *rest in items]
        for what, items in change.items()
    }
    problems = broken(two_rooms, **change)
    assert any(problem in p for p in problems), problems


def test_the_checked_scan_keeps_every_item_the_rooms_check_reads(two_rooms, store, clock):
    post(store, clock, "c1", "ops", "hi")
    store.mark_read("key#c1", store.room_meta("ops"), 1, limits=LIMITS)
    full = scan(two_rooms, TABLE)
    checked = scan(two_rooms, TABLE, checked_only=True)
    dropped = {(i["pk"]["S"], i["sk"]["S"]) for i in full} - {
        (i["pk"]["S"], i["sk"]["S"]) for i in checked
    }
    assert dropped == {  # history, read states and sequence counters: nothing checks them
        ("HIST#ops", "MSG#000000000001"),
        ("READ#key#c1", "ROOM#lobby"),
        ("READ#key#c1", "ROOM#ops"),
        ("ROOM#ops", "SEQ"),
    }
    broken_checked = table_problems(
        [i for i in checked if i["sk"]["S"] != "ROOM#ops"]  # a membership without its twin
    )
    assert any("has no CONN#/ROOM# twin" in p for p in broken_checked), broken_checked


def test_a_private_creation_adds_the_creators_grant_to_the_transaction(recorded, clock):
    recorder, store = recorded
    connection = connect(store, clock, "c1", "carol")
    recorder.calls.clear()
    store.create_room(connection, request("ops", kind=PRIVATE), identity="key#c1", limits=LIMITS)
    (transaction,) = [c for c in recorder.calls if c[0] == "transact_write_items"]
    assert transaction[1][-1] == ("Put", "INVITE#key#c1/ROOM#ops")
    assert len(transaction[1]) == 10  # 4 of a join, META, SEQ, registry and counter, key, grant


def test_an_edit_reads_the_original_once_then_writes_seq_and_one_transaction(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    of = post(store, clock, "c1", "dev", "tpyo", mid="m1")
    recorder.calls.clear()
    store.rewrite_message(change(clock, "c1", "dev", of, "m1"))
    assert recorder.calls == [
        ("get_item", "HIST#dev/MSG#000000000001"),
        ("update_item", "ROOM#dev/SEQ"),
        (
            "transact_write_items",
            [("Update", "HIST#dev/MSG#000000000001"), ("Put", "HIST#dev/MSG#000000000002")],
        ),
    ]


def test_a_refused_edit_reads_and_writes_nothing_more(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    of = post(store, clock, "c1", "dev", "mine", mid="m1")
    recorder.calls.clear()
    with pytest.raises(NotYoursError):
        store.rewrite_message(change(clock, "c2", "dev", of, "m1"))
    assert recorder.calls == [("get_item", "HIST#dev/MSG#000000000001")]


def test_mark_read_is_one_conditional_update(recorded):
    recorder, store = recorded
    lobby = store.room_meta(LOBBY)
    store.mark_read("key#a", lobby, 4, limits=LIMITS)
    recorder.calls.clear()
    assert store.mark_read("key#a", lobby, 2, limits=LIMITS).seq == 4
    assert recorder.calls == [("update_item", "READ#key#a/ROOM#lobby")]  # the old one returns


def test_a_direct_room_is_opened_with_meta_seq_and_count_in_one_transaction(recorded):
    recorder, store = recorded
    key = "@" + "0" * 32
    store.open_direct_room(
        RoomRequest(key, key, kind=DIRECT, parties=frozenset({"key#a", "key#b"})), limits=LIMITS
    )
    assert recorder.calls == [
        ("get_item", f"ROOM#{key}/META"),
        (
            "transact_write_items",
            [
                ("Put", f"ROOM#{key}/META"),
                ("Update", f"ROOM#{key}/SEQ"),
                ("Put", f"ROOM#{key}/COUNT"),
            ],
        ),
    ]
    recorder.calls.clear()
    store.open_direct_room(RoomRequest(key, key, kind=DIRECT), limits=LIMITS)
    assert recorder.calls == [("get_item", f"ROOM#{key}/META")]


def test_a_v2_disconnect_queries_its_rooms_then_leaves_each(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    join(store, "c1", LOBBY)
    join(store, "c1", "dev")
    recorder.calls.clear()
    store.remove_connection("c1")
    removal = [c[0] for c in recorder.calls]
    assert removal == ["get_item", "transact_write_items"]
    assert [a[1] for a in recorder.calls[1][1]][:1] == ["CONN#c1/CONN"]
    recorder.calls.clear()
    rooms = store.memberships("c1")
    assert recorder.calls == [("query", "CONN#c1")]
    for room in rooms:
        store.leave_room("c1", room.room, disconnected=True)
    assert [c[0] for c in recorder.calls[1:]] == [
        "get_item",
        "get_item",
        "transact_write_items",
    ] * 2
    assert [len(c[1]) for c in recorder.calls if c[0] == "transact_write_items"] == [3, 3]


def test_listing_rooms_queries_the_registry_grants_and_read_state(recorded, clock):
    recorder, store = recorded
    connect(store, clock, "c1", "alice")
    join(store, "c1", "dev")
    recorder.calls.clear()
    store.public_rooms(10)
    store.invites("key#c1", 10)
    store.read_states("key#c1", 10)
    store.unread("dev", 0)
    assert recorder.calls == [
        ("query", "ROOMS"),
        ("query", "INVITE#key#c1"),
        ("query", "READ#key#c1"),
        ("query", "HIST#dev"),
    ]


def test_the_first_v2_join_of_the_lobby_writes_its_meta_and_no_later_one(recorded, db, clock):
    recorder, store = recorded
    first = connect(store, clock, "c1", "alice")
    second = connect(store, clock, "c2", "bob")
    writes = []
    for connection in (first, second):
        recorder.calls.clear()
        store.join_room(connection, request(LOBBY), identity="key#x", limits=LIMITS)
        (transaction,) = [c for c in recorder.calls if c[0] == "transact_write_items"]
        writes.append([key for _, key in transaction[1]])
    assert writes[0][4:] == ["ROOM#lobby/META", "ROOMS/lobby", "ROOMKEY#lobby/ROOMKEY"]
    assert writes[1] == [  # member, membership, connection, the lobby's COUNT: no more
        "ROOM#lobby/MEMBER#c2",
        "CONN#c2/ROOM#lobby",
        "CONN#c2/CONN",
        "ROOM#lobby/COUNT",
    ]
    meta = db.get_item(TableName=TABLE, Key={"pk": {"S": "ROOM#lobby"}, "sk": {"S": "META"}})
    assert "ttl" not in meta["Item"]  # the lobby never expires


def as_port(store: DynamoChatStore) -> ChatStore:
    """mypy checks here that DynamoChatStore has every method of the port."""
    return store


def test_the_dynamo_store_is_a_chat_store(store):
    assert as_port(store) is store


def test_a_sequence_counter_from_before_rooms_chains_events_from_its_last_message(store, db):
    """A deployed table's lobby SEQ item has `seq` and `lastPublic` but no `lastEvent`:
    its events were its public messages, so the first v2 event follows the last of them."""
    db.put_item(
        TableName=TABLE,
        Item={**seq_key(), "seq": {"N": "41"}, "lastPublic": {"N": "40"}},
    )
    taken = store.next_event(LOBBY, MSG)
    assert (taken.seq, taken.prev_public, taken.prev_event) == (42, 40, 40)
    assert store.next_seq(public=False) == (43, 42)
    edit = store.next_event(LOBBY, EDIT)
    assert (edit.seq, edit.prev_public, edit.prev_event) == (44, 42, 42)
    assert store.next_seq(public=True) == (45, 42)
    assert store.next_event(LOBBY, None).prev_event == 45
