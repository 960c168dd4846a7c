"""DynamoChatStore's items for the limits beyond one connection, against moto: peers'
listings and shared buckets, the unnamed list, names owned by accounts, and the history's
own partition with its byte bound."""

from __future__ import annotations

from typing import Any

import pytest

from chat.errors import NameOwnedError
from chat.names import claim_keys
from chat.ports import Newcomer, Receipt, TokenBucket
from chat.store import HISTORY_PARTITION, DynamoChatStore
from tests.support.aws import TABLE
from tests.support.consistency import scan, table_problems
from tests.support.fakes import FakeClock


class Recording:
    """A DynamoDB client that records each call's name and arguments."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._db, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            return method(**kwargs)

        return call


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db, clock) -> DynamoChatStore:
    return DynamoChatStore(db, TABLE, clock=clock)


def open_(store: DynamoChatStore, clock: FakeClock, cid: str, *peers: str, sub: str = "") -> None:
    now_ms = int(clock.now * 1000)
    store.open_connection(
        Newcomer(cid, int(clock.now) + 10_800, now_ms, subject=sub or None, peers=peers)
    )


def join(store: DynamoChatStore, cid: str, name: str, *, owner: str | None = None) -> None:
    connection = store.get_connection(cid)
    assert connection is not None
    store.claim_name(
        connection, name, claim_keys(name), max_members=100, sender_key="key#x", owner=owner
    )


def test_a_connection_is_listed_under_its_peers_named_once_it_joins_and_gone_when_removed(
    store, clock, db
):
    open_(store, clock, "c1=", "ip#198.51.100.1", "sub#acct-1")
    open_(store, clock, "c2=", "ip#198.51.100.1")
    assert {c.connection_id for c in store.peer_connections("ip#198.51.100.1")} == {"c1=", "c2="}
    join(store, "c1=", "Ann")
    listed = {c.connection_id: c.named for c in store.peer_connections("ip#198.51.100.1")}
    assert listed == {"c1=": True, "c2=": False}
    assert [c.named for c in store.peer_connections("sub#acct-1")] == [True]
    assert store.get_connection("c1=").sender_key == "key#x"
    assert table_problems(scan(db, TABLE)) == []
    store.remove_connection("c1=")
    store.remove_connection("c2=")
    assert store.peer_connections("ip#198.51.100.1") == []
    listings = [
        item
        for item in scan(db, TABLE)
        if item["pk"]["S"] == "UNNAMED" or item["sk"]["S"].startswith("CONN#")
    ]
    assert listings == []


def test_a_peers_bucket_is_shared_by_every_call_and_refills_with_time(store, clock):
    limit = TokenBucket(capacity=3, rate_per_second=1.0)
    results = [store.take("ip#203.0.113.9", "frame", limit).allowed for _ in range(4)]
    assert results == [True, True, True, False]
    refused = store.take("ip#203.0.113.9", "frame", limit)
    assert refused.retry_after_ms == 1000
    assert store.take("ip#203.0.113.10", "frame", limit).allowed  # another peer: its own
    clock.now += 2
    assert [store.take("ip#203.0.113.9", "frame", limit).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]


def test_a_peers_bucket_forgotten_by_its_ttl_starts_full_again(store, clock):
    limit = TokenBucket(capacity=1, rate_per_second=0.0001)
    assert store.take("ip#203.0.113.11", "join", limit).allowed
    assert not store.take("ip#203.0.113.11", "join", limit).allowed
    clock.now += 86_401  # past the item's TTL; DynamoDB may not have deleted it yet
    assert store.take("ip#203.0.113.11", "join", limit).allowed


def test_stale_unnamed_connections_are_handed_out_once_and_never_named_ones(store, clock):
    open_(store, clock, "early=")
    open_(store, clock, "named=")
    join(store, "named=", "Named")
    clock.now += 60
    open_(store, clock, "late=")
    before = int(clock.now * 1000) - 30_000
    assert store.stale_unnamed(before, 25) == ["early="]
    assert store.stale_unnamed(before, 25) == []  # taken: nobody closes it twice
    assert store.stale_unnamed(int(clock.now * 1000) + 1, 25) == ["late="]


def test_a_name_owned_by_one_account_is_refused_to_another_even_after_its_owner_left(store, clock):
    open_(store, clock, "owner=", sub="acct-owner")
    join(store, "owner=", "Olive", owner="acct-owner")
    store.remove_connection("owner=")
    open_(store, clock, "other=", sub="acct-other")
    with pytest.raises(NameOwnedError):
        join(store, "other=", "OIive", owner="acct-other")  # capital I: the same keys
    open_(store, clock, "back=", sub="acct-owner")
    join(store, "back=", "Olive", owner="acct-owner")
    assert store.get_connection("back=").name == "Olive"


def receipt(seq: int, text: str, clock: FakeClock) -> Receipt:
    frame = {"publicMessage": f"Ann: {text}", "from": "Ann", "text": text, "seq": seq}
    now = int(clock.now)
    return Receipt(seq, seq - 1, "key#x", None, frame, frame, now + 3600, now + 600)


def test_history_lives_in_its_own_partition_and_is_read_eventually_consistent(db, clock):
    recording = Recording(db)
    store = DynamoChatStore(recording, TABLE, clock=clock)
    for seq in range(1, 4):
        store.record_message(receipt(seq, f"message {seq}", clock))
    assert {i["pk"]["S"] for i in scan(db, TABLE) if i["sk"]["S"].startswith("MSG#")} == {
        HISTORY_PARTITION
    }
    recording.calls.clear()
    messages, complete = store.history(None, 100, 65_536)
    assert [m["seq"] for m in messages] == [1, 2, 3]
    assert complete
    queries = [kwargs for name, kwargs in recording.calls if name == "query"]
    assert queries
    assert all(q["ConsistentRead"] is False for q in queries)
    assert all(q["ExpressionAttributeValues"][":room"]["S"] == HISTORY_PARTITION for q in queries)


def test_history_keeps_the_newest_messages_within_the_byte_bound(store, clock):
    for seq in range(1, 31):
        store.record_message(receipt(seq, "€" * 1000, clock))  # about 6 KB stored each
    messages, complete = store.history(None, 100, 20_000)
    assert [m["seq"] for m in messages] == [28, 29, 30]
    assert not complete
    # Everything after seq 28 fits: complete, as far as `since` asked
    assert store.history(27, 100, 20_000) == (messages, True)
