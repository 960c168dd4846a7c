"""The rooms of DynamoChatStore on moto: the store contract (tests/support/store_contract.py),
with members in one partition and spread over four, then the races and the table's shape."""

from __future__ import annotations

import pytest

from chat.store import DynamoChatStore
from tests.support.aws import TABLE
from tests.support.consistency import scan, table_problems
from tests.support.fakes import FakeClock
from tests.support.store_contract import StoreContract


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
