"""The rooms' store contract (tests/support/store_contract.py) on the in-memory store that the
rules' tests use, so that the model they run on behaves as DynamoChatStore does."""

from __future__ import annotations

import pytest

from tests.support.fakes import FakeClock, InMemoryStore
from tests.support.store_contract import StoreContract


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> InMemoryStore:
    return InMemoryStore(clock)


class TestInMemoryRooms(StoreContract):
    pass
