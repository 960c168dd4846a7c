"""DynamoChatStore against moto, with the table built from the stack's key schema."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chat.errors import ConcurrentUpdateError, NameTakenError
from chat.service import Connection, Member
from chat.store import DynamoChatStore, connection_key, member_key, name_key
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


def named(store: DynamoChatStore, clock: FakeClock, cid: str, name: str) -> None:
    store.add_connection(cid, expiry(clock))
    store.claim_name(cid, name, None, expiry(clock))


def test_connection_is_recorded_with_a_ttl(store, db, clock):
    store.add_connection("c1=", expiry(clock))
    item = db.get_item(TableName=TABLE, Key=connection_key("c1="))["Item"]
    assert int(item["ttl"]["N"]) == expiry(clock)
    assert store.get_connection("c1=") == Connection("c1=", None, expiry(clock))


def test_claim_writes_connection_name_claim_and_membership_atomically(store, db, clock):
    named(store, clock, "c1=", "Alice")
    assert store.get_connection("c1=").name == "Alice"
    claim = db.get_item(TableName=TABLE, Key=name_key("ALICE"))["Item"]
    assert claim["connectionId"]["S"] == "c1="
    assert claim["name"]["S"] == "Alice"
    assert "ttl" in claim
    assert db.get_item(TableName=TABLE, Key=member_key("c1="))["Item"]["name"]["S"] == "Alice"


def test_claim_of_a_name_held_by_another_raises_name_taken_with_the_holder(store, clock):
    named(store, clock, "c1=", "Alice")
    store.add_connection("c2=", expiry(clock))
    with pytest.raises(NameTakenError) as excinfo:
        store.claim_name("c2=", "aLiCe", None, expiry(clock))
    assert excinfo.value.holder_connection_id == "c1="
    assert excinfo.value.holder_name == "Alice"
    assert store.get_connection("c2=").name is None  # nothing of the failed claim remains
    assert store.list_members() == [Member("c1=", "Alice")]


def test_claim_with_a_stale_previous_name_raises_concurrent_update(store, clock):
    named(store, clock, "c1=", "Alice")
    with pytest.raises(ConcurrentUpdateError):
        store.claim_name("c1=", "Bob", None, expiry(clock))
    with pytest.raises(ConcurrentUpdateError):
        store.claim_name("c1=", "Bob", "Zed", expiry(clock))


def test_claim_for_a_missing_connection_raises_concurrent_update(store, clock):
    with pytest.raises(ConcurrentUpdateError):
        store.claim_name("ghost=", "Bob", None, expiry(clock))
    assert store.find_member("Bob") is None


def test_rename_releases_the_previous_claim(store, clock):
    named(store, clock, "c1=", "Alice")
    store.claim_name("c1=", "Alicia", "Alice", expiry(clock))
    assert store.find_member("alice") is None
    assert store.find_member("ALICIA") == Member("c1=", "Alicia")
    assert store.list_members() == [Member("c1=", "Alicia")]


def test_change_of_case_keeps_the_claim(store, clock):
    named(store, clock, "c1=", "alice")
    store.claim_name("c1=", "Alice", "alice", expiry(clock))
    assert store.find_member("ALICE") == Member("c1=", "Alice")


def test_expired_items_are_ignored_by_every_read(store, db, clock):
    named(store, clock, "old=", "Old")
    clock.now += 10_800 + 1  # TTL passed; DynamoDB has not deleted the items yet
    assert db.get_item(TableName=TABLE, Key=connection_key("old="))["Item"]
    assert store.get_connection("old=") is None
    assert store.find_member("Old") is None
    assert store.list_members() == []
    store.add_connection("new=", expiry(clock))
    store.claim_name("new=", "old", None, expiry(clock))  # expired claim can be taken
    assert store.find_member("OLD") == Member("new=", "old")


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
    assert db.scan(TableName=TABLE)["Items"] == []


def test_remove_connection_keeps_a_name_claim_that_another_connection_now_holds(store, db, clock):
    named(store, clock, "c1=", "Alice")
    db.put_item(
        TableName=TABLE,
        Item={
            **name_key("Alice"),
            "connectionId": {"S": "c2="},
            "name": {"S": "Alice"},
            "ttl": {"N": str(expiry(clock))},
        },
    )
    store.remove_connection("c1=")
    assert store.find_member("Alice") == Member("c2=", "Alice")


def test_remove_unnamed_connection_returns_none(store, clock):
    store.add_connection("c1=", expiry(clock))
    assert store.remove_connection("c1=") is None
    assert store.get_connection("c1=") is None


def test_fifty_concurrent_claims_of_one_name_have_exactly_one_winner(store, clock):
    ids = [f"racer{i:02}=" for i in range(50)]
    for cid in ids:
        store.add_connection(cid, expiry(clock))

    def claim(cid: str) -> str:
        try:
            store.claim_name(cid, "Alice", None, expiry(clock))
            return "won"
        except NameTakenError:
            return "taken"
        except ConcurrentUpdateError:
            return "conflict"

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(claim, ids))
    assert results.count("won") == 1
    winner = ids[results.index("won")]
    assert store.list_members() == [Member(winner, "Alice")]
    assert store.find_member("alice") == Member(winner, "Alice")
