"""DynamoChatStore against moto, with the table built from the stack's key schema."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chat.errors import ConcurrentUpdateError, NameTakenError, RoomFullError
from chat.names import claim_keys, lookup_key
from chat.ports import Connection, Member, TokenBucket
from chat.store import DynamoChatStore, connection_key, count_key, member_key, name_key
from tests.support.aws import TABLE
from tests.support.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db, clock) -> DynamoChatStore:
    return DynamoChatStore(db, TABLE, clock=clock)


def expiry(clock: FakeClock) -> int:
    return int(clock.now) + 10_800


def claim(store: DynamoChatStore, cid: str, name: str, *, max_members: int = 1000) -> None:
    """Claim `name` for the connection as it is stored now (as the rules do)."""
    connection = store.get_connection(cid) or Connection(cid, None, 0)
    store.claim_name(connection, name, claim_keys(name), max_members=max_members)


def named(store: DynamoChatStore, clock: FakeClock, cid: str, name: str) -> None:
    store.add_connection(cid, expiry(clock))
    claim(store, cid, name)


def member(store: DynamoChatStore, name: str) -> Member | None:
    return store.find_member(lookup_key(name))


def leftovers(db) -> list[dict]:
    """Every item but the room's member counter."""
    return [i for i in db.scan(TableName=TABLE)["Items"] if i["sk"]["S"] != "COUNT"]


def test_connection_is_recorded_with_a_ttl(store, db, clock):
    store.add_connection("c1=", expiry(clock))
    item = db.get_item(TableName=TABLE, Key=connection_key("c1="))["Item"]
    assert int(item["ttl"]["N"]) == expiry(clock)
    assert store.get_connection("c1=") == Connection("c1=", None, expiry(clock))


def test_claim_writes_connection_name_claim_and_membership_atomically(store, db, clock):
    named(store, clock, "c1=", "Alice")
    assert store.get_connection("c1=").name == "Alice"
    item = db.get_item(TableName=TABLE, Key=name_key("alice"))["Item"]
    assert item["connectionId"]["S"] == "c1="
    assert item["name"]["S"] == "Alice"
    assert "ttl" in item
    assert db.get_item(TableName=TABLE, Key=member_key("c1="))["Item"]["name"]["S"] == "Alice"


def test_claim_of_a_name_held_by_another_raises_name_taken_with_the_holder(store, clock):
    named(store, clock, "c1=", "Alice")
    store.add_connection("c2=", expiry(clock))
    with pytest.raises(NameTakenError) as excinfo:
        claim(store, "c2=", "aLiCe")
    assert excinfo.value.holder_connection_id == "c1="
    assert excinfo.value.holder_name == "Alice"
    assert store.get_connection("c2=").name is None  # nothing of the failed claim remains
    assert store.list_members() == [Member("c1=", "Alice")]


def test_claim_with_a_stale_previous_name_raises_concurrent_update(store, clock):
    named(store, clock, "c1=", "Alice")
    for stale in (None, "Zed"):
        read_earlier = Connection("c1=", stale, expiry(clock))
        with pytest.raises(ConcurrentUpdateError):
            store.claim_name(read_earlier, "Bob", claim_keys("Bob"), max_members=1000)


def test_claim_for_a_missing_connection_raises_and_brings_nothing_back(store, db, clock):
    # GIVEN a connection that $disconnect removed after the claimant read it
    removed = Connection("ghost=", None, expiry(clock))
    # WHEN the claim runs THEN it fails as a whole: no connection, claim or membership
    with pytest.raises(ConcurrentUpdateError):
        store.claim_name(removed, "Bob", claim_keys("Bob"), max_members=1000)
    assert member(store, "Bob") is None
    assert leftovers(db) == []


def test_rename_releases_the_previous_claim(store, clock):
    named(store, clock, "c1=", "Alice")
    claim(store, "c1=", "Alicia")
    assert member(store, "alice") is None
    assert member(store, "ALICIA") == Member("c1=", "Alicia")
    assert store.list_members() == [Member("c1=", "Alicia")]


def test_change_of_case_keeps_the_claim(store, clock):
    named(store, clock, "c1=", "alice")
    claim(store, "c1=", "Alice")
    assert member(store, "ALICE") == Member("c1=", "Alice")


def test_expired_items_are_ignored_by_every_read(store, db, clock):
    named(store, clock, "old=", "Old")
    clock.now += 10_800 + 1  # TTL passed; DynamoDB has not deleted the items yet
    assert db.get_item(TableName=TABLE, Key=connection_key("old="))["Item"]
    assert store.get_connection("old=") is None
    assert member(store, "Old") is None
    assert store.list_members() == []
    store.add_connection("new=", expiry(clock))
    claim(store, "new=", "old")  # expired claim can be taken
    assert member(store, "OLD") == Member("new=", "old")


def test_list_members_reads_every_page(db, clock):
    # GIVEN more members than fit in one page
    store = DynamoChatStore(db, TABLE, clock=clock, page_size=7)
    for i in range(30):
        named(store, clock, f"c{i:02}=", f"user{i:02}")
    store.add_connection("unnamed=", expiry(clock))
    # WHEN the members are listed
    members = store.list_members()
    # THEN all of them come back, from several pages
    assert sorted(m.name for m in members) == [f"user{i:02}" for i in range(30)]


def test_list_members_queries_the_room_partition_and_never_scans(store, db, clock, monkeypatch):
    named(store, clock, "c1=", "Alice")
    calls: list[str] = []
    for op in ("scan", "query"):
        original = getattr(db, op)

        def spy(*args, _op=op, _original=original, **kwargs):
            calls.append(_op)
            assert kwargs.get("ConsistentRead") is True
            return _original(*args, **kwargs)

        monkeypatch.setattr(db, op, spy)
    store.list_members()
    assert calls == ["query"]


def test_remove_connection_deletes_everything_and_returns_the_member_once(store, db, clock):
    named(store, clock, "c1=", "Alice")
    assert store.remove_connection("c1=") == Member("c1=", "Alice")
    assert store.remove_connection("c1=") is None
    assert leftovers(db) == []


def test_remove_connection_keeps_a_name_claim_that_another_connection_now_holds(store, db, clock):
    named(store, clock, "c1=", "Alice")
    db.put_item(
        TableName=TABLE,
        Item={
            **name_key("alice"),
            "connectionId": {"S": "c2="},
            "name": {"S": "Alice"},
            "ttl": {"N": str(expiry(clock))},
        },
    )
    store.remove_connection("c1=")
    assert member(store, "Alice") == Member("c2=", "Alice")
    assert store.get_connection("c1=") is None
    assert store.list_members() == []


def test_remove_unnamed_connection_returns_none(store, clock):
    store.add_connection("c1=", expiry(clock))
    assert store.remove_connection("c1=") is None
    assert store.get_connection("c1=") is None


def test_fifty_concurrent_claims_of_one_name_have_exactly_one_winner(store, clock):
    ids = [f"racer{i:02}=" for i in range(50)]
    for cid in ids:
        store.add_connection(cid, expiry(clock))

    def race(cid: str) -> str:
        try:
            claim(store, cid, "Alice")
            return "won"
        except NameTakenError:
            return "taken"
        except ConcurrentUpdateError:
            return "conflict"

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(race, ids))
    assert results.count("won") == 1
    winner = ids[results.index("won")]
    assert store.list_members() == [Member(winner, "Alice")]
    assert member(store, "alice") == Member(winner, "Alice")


def test_look_alike_names_clash_on_their_keys(store, clock):
    named(store, clock, "c1=", "alice")
    store.add_connection("c2=", expiry(clock))
    for impostor in ("ALICE", "aIice", "\uff21\uff2c\uff29\uff23\uff25"):
        with pytest.raises(NameTakenError):
            claim(store, "c2=", impostor)
    assert store.get_connection("c2=").name is None


def test_release_claim_deletes_only_a_claim_the_holder_still_has(store, clock):
    named(store, clock, "c1=", "Alice")
    store.release_claim("alice", "someone-else=")
    assert member(store, "Alice") == Member("c1=", "Alice")
    store.release_claim("alice", "c1=")
    assert member(store, "Alice") is None


def test_a_full_room_refuses_a_join_but_not_a_rename(store, clock):
    named(store, clock, "c1=", "Alice")
    store.add_connection("c2=", expiry(clock))
    claim(store, "c2=", "Bob", max_members=2)
    store.add_connection("c3=", expiry(clock))
    with pytest.raises(RoomFullError):
        claim(store, "c3=", "Carol", max_members=2)
    claim(store, "c2=", "Bobby", max_members=2)  # a rename is not a join
    assert sorted(m.name for m in store.list_members()) == ["Alice", "Bobby"]


def test_room_counter_that_drifted_is_corrected_from_the_members(store, db, clock):
    # GIVEN a counter that says the room is full, with one member whose items expired
    named(store, clock, "c1=", "Alice")
    db.put_item(TableName=TABLE, Item={**count_key(), "members": {"N": "2"}})
    store.add_connection("c2=", expiry(clock))
    # WHEN a newcomer joins a room of at most 2 THEN the recount lets it in on the retry
    with pytest.raises(ConcurrentUpdateError):
        claim(store, "c2=", "Bob", max_members=2)
    claim(store, "c2=", "Bob", max_members=2)
    assert len(store.list_members()) == 2


def test_leaving_counts_the_room_down(store, db, clock):
    named(store, clock, "c1=", "Alice")
    named(store, clock, "c2=", "Bob")
    store.remove_connection("c1=")
    assert db.get_item(TableName=TABLE, Key=count_key())["Item"]["members"]["N"] == "1"


def test_token_bucket_admits_a_burst_then_refuses_with_the_wait(store, clock):
    store.add_connection("c1=", expiry(clock))
    limit = TokenBucket(capacity=3, rate_per_second=2)
    results = [store.admit("c1=", "msg", limit) for _ in range(5)]
    assert [r.allowed for r in results] == [True, True, True, False, False]
    assert results[3].retry_after_ms == 500
    assert [r.strikes for r in results] == [0, 0, 0, 1, 2]
    # WHEN half a second passes THEN one more frame is admitted, and the strikes stay
    clock.now += 0.5
    assert store.admit("c1=", "msg", limit).strikes == 2
    assert store.admit("c1=", "msg", limit).strikes == 3
    # WHEN the client pauses until its bucket is full again THEN the strikes are forgiven
    clock.now += 2
    assert store.admit("c1=", "msg", limit).strikes == 0


def test_buckets_are_separate_and_an_unknown_connection_is_admitted_as_unknown(store, clock):
    store.add_connection("c1=", expiry(clock))
    limit = TokenBucket(capacity=1, rate_per_second=0.1)
    assert store.admit("c1=", "name", limit).allowed
    assert not store.admit("c1=", "name", limit).allowed
    assert store.admit("c1=", "msg", limit).allowed
    unknown = store.admit("nobody=", "msg", limit)
    assert unknown.connection is None
    assert unknown.allowed


def test_concurrent_frames_of_one_connection_take_each_token_once(store, clock):
    # GIVEN a bucket of 10 and 40 frames at once WHEN they race THEN at most 10 get through
    store.add_connection("c1=", expiry(clock))
    limit = TokenBucket(capacity=10, rate_per_second=0.001)
    with ThreadPoolExecutor(max_workers=20) as pool:
        admitted = list(pool.map(lambda _: store.admit("c1=", "msg", limit).allowed, range(40)))
    assert 1 <= sum(admitted) <= 10


def test_remove_connection_of_a_member_without_a_connection_item_cleans_up(store, db, clock):
    # GIVEN a membership and claim whose connection item is already gone
    named(store, clock, "c1=", "Alice")
    db.delete_item(TableName=TABLE, Key=connection_key("c1="))
    # WHEN it is removed THEN its membership and its claim go, and the member comes back once
    assert store.remove_connection("c1=") == Member("c1=", "Alice")
    assert store.remove_connection("c1=") is None
    assert leftovers(db) == []
