"""DynamoChatStore against moto, with the table built from the stack's key schema.

The `store` fixture runs each test twice: members in one partition (memberPartitions=1, the
default) and spread over four.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chat.errors import ConcurrentUpdateError, NameTakenError, RoomFullError
from chat.names import claim_keys, lookup_key
from chat.ports import Connection, Member, TokenBucket
from chat.store import (
    DynamoChatStore,
    connection_key,
    count_key,
    member_key,
    member_shard,
    name_key,
    recorded_shard,
)
from tests.support.aws import TABLE
from tests.support.consistency import member_shard_of, scan, table_problems
from tests.support.fakes import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=[1, 4], ids=["one-partition", "four-partitions"])
def store(request, db, clock) -> DynamoChatStore:
    return DynamoChatStore(db, TABLE, clock=clock, member_partitions=request.param)


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


def member_item(db, cid: str) -> dict:
    """The connection's MEMBER item, in the shard its CONN item records."""
    conn = db.get_item(TableName=TABLE, Key=connection_key(cid))["Item"]
    item: dict = db.get_item(TableName=TABLE, Key=member_key(cid, recorded_shard(conn)))["Item"]
    return item


def member_items(db) -> dict[str, int]:
    """Connection id -> shard of every MEMBER item in the table."""
    return {
        item["sk"]["S"].removeprefix("MEMBER#"): shard
        for item in scan(db, TABLE)
        if (shard := member_shard_of(item)) is not None
    }


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
    assert member_item(db, "c1=")["name"]["S"] == "Alice"


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
    assert calls == ["query"] * store.member_partitions  # one per member partition


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


# --- members spread over several partitions -----------------------------------------------


def partitioned(db, clock, partitions: int, **kwargs) -> DynamoChatStore:
    return DynamoChatStore(db, TABLE, clock=clock, member_partitions=partitions, **kwargs)


def test_members_land_in_several_partitions_and_are_all_listed_across_pages(db, clock):
    # GIVEN four member partitions, pages of 3, and 30 members
    store = partitioned(db, clock, 4, page_size=3)
    ids = [f"c{i:02}=" for i in range(30)]
    for cid in ids:
        named(store, clock, cid, f"user-{cid[:-1]}")
    store.add_connection("unnamed=", expiry(clock))
    # THEN each member sits in the shard of its connection id, and all four are used
    shards = member_items(db)
    assert shards == {cid: member_shard(cid, 4) for cid in ids}
    assert set(shards.values()) == {0, 1, 2, 3}
    # AND the list has all of them, from several pages of each shard, in connection id order
    assert store.list_members() == [Member(cid, f"user-{cid[:-1]}") for cid in ids]
    assert table_problems(scan(db, TABLE)) == []


def test_the_joining_shard_is_recorded_on_the_connection(db, clock):
    store = partitioned(db, clock, 4)
    cid = next(c for c in (f"c{i}=" for i in range(20)) if member_shard(c, 4) != 0)
    named(store, clock, cid, "Alice")
    conn = db.get_item(TableName=TABLE, Key=connection_key(cid))["Item"]
    assert recorded_shard(conn) == member_shard(cid, 4)
    assert db.get_item(TableName=TABLE, Key=member_key(cid, recorded_shard(conn)))["Item"]


def test_rename_and_leave_touch_only_the_members_shard(db, clock):
    store = partitioned(db, clock, 4)
    cid = next(c for c in (f"c{i}=" for i in range(20)) if member_shard(c, 4) != 0)
    named(store, clock, cid, "Alice")
    # WHEN it renames THEN its one MEMBER item, in its shard, has the new name
    claim(store, cid, "Alicia")
    assert member_items(db) == {cid: member_shard(cid, 4)}
    assert member_item(db, cid)["name"]["S"] == "Alicia"
    assert table_problems(scan(db, TABLE)) == []
    # WHEN it leaves THEN nothing of it remains, and the room counts down to 0
    assert store.remove_connection(cid) == Member(cid, "Alicia")
    assert leftovers(db) == []
    assert db.get_item(TableName=TABLE, Key=count_key())["Item"]["members"]["N"] == "0"


def test_raising_the_partitions_keeps_earlier_members_listed_renamable_and_removable(db, clock):
    # GIVEN members who joined with one partition (all in ROOM#lobby)
    before = partitioned(db, clock, 1)
    earlier = [f"c{i:02}=" for i in range(8)]
    for cid in earlier:
        named(before, clock, cid, f"old-{cid[:-1]}")
    # WHEN the stack is redeployed with four, and newcomers join
    after = partitioned(db, clock, 4)
    later = [f"d{i:02}=" for i in range(8)]
    for cid in later:
        named(after, clock, cid, f"new-{cid[:-1]}")
    # THEN everyone is listed, the earlier ones still in shard 0
    assert {m.connection_id for m in after.list_members()} == set(earlier + later)
    assert member_items(db) == {
        **dict.fromkeys(earlier, 0),
        **{cid: member_shard(cid, 4) for cid in later},
    }
    # AND an earlier member whose shard would now be another renames in place
    moved = next(cid for cid in earlier if member_shard(cid, 4) != 0)
    claim(after, moved, "renamed")
    assert member_items(db)[moved] == 0
    assert member(after, "renamed") == Member(moved, "renamed")
    assert table_problems(scan(db, TABLE)) == []
    # AND everyone can leave, leaving nothing behind
    for cid in earlier + later:
        assert after.remove_connection(cid) is not None
    assert leftovers(db) == []
    assert after.list_members() == []


def test_orphaned_member_of_shard_zero_is_removed_after_raising_the_partitions(db, clock):
    # GIVEN a member that joined with one partition, whose CONN item is gone
    cid = next(c for c in (f"c{i}=" for i in range(20)) if member_shard(c, 4) != 0)
    named(partitioned(db, clock, 1), clock, cid, "Alice")
    db.delete_item(TableName=TABLE, Key=connection_key(cid))
    # WHEN a store with four partitions removes it THEN it finds it in shard 0
    assert partitioned(db, clock, 4).remove_connection(cid) == Member(cid, "Alice")
    assert leftovers(db) == []


def test_recount_counts_the_members_of_every_shard(db, clock):
    store = partitioned(db, clock, 4)
    ids = [f"c{i:02}=" for i in range(6)]
    for cid in ids:
        named(store, clock, cid, f"user{cid[:-1]}")
    assert len(set(member_items(db).values())) > 1
    store.add_connection("late=", expiry(clock))
    # GIVEN a room of 6 at most, full: the recount confirms it from all the shards
    with pytest.raises(RoomFullError):
        claim(store, "late=", "Late", max_members=6)
    # GIVEN a counter that drifted up: the recount corrects it to the six, then it admits
    db.put_item(TableName=TABLE, Item={**count_key(), "members": {"N": "7"}})
    with pytest.raises(ConcurrentUpdateError):
        claim(store, "late=", "Late", max_members=7)
    assert db.get_item(TableName=TABLE, Key=count_key())["Item"]["members"]["N"] == "6"
    claim(store, "late=", "Late", max_members=7)
    assert len(store.list_members()) == 7
    assert table_problems(scan(db, TABLE)) == []


def test_fifty_concurrent_joins_over_four_partitions_leave_a_consistent_table(db, clock):
    store = partitioned(db, clock, 4)
    ids = [f"joiner{i:02}=" for i in range(50)]

    def join(cid: str) -> None:
        store.add_connection(cid, expiry(clock))
        claim(store, cid, f"user{cid[6:8]}")

    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(join, ids))
    assert table_problems(scan(db, TABLE)) == []
    assert [m.connection_id for m in store.list_members()] == ids
    assert db.get_item(TableName=TABLE, Key=count_key())["Item"]["members"]["N"] == "50"
    assert set(member_items(db).values()) == {0, 1, 2, 3}


def test_the_consistency_check_finds_a_member_outside_its_recorded_shard(db, clock):
    store = partitioned(db, clock, 4)
    cid = next(c for c in (f"c{i}=" for i in range(20)) if member_shard(c, 4) != 0)
    named(store, clock, cid, "Alice")
    item = member_item(db, cid)
    db.delete_item(TableName=TABLE, Key=member_key(cid, member_shard(cid, 4)))
    db.put_item(TableName=TABLE, Item={**item, **member_key(cid, 0)})
    assert any("shard" in problem for problem in table_problems(scan(db, TABLE)))


def test_member_partitions_outside_one_to_sixteen_are_refused(db):
    for partitions in (0, 17):
        with pytest.raises(ValueError, match="member_partitions"):
            DynamoChatStore(db, TABLE, member_partitions=partitions)
