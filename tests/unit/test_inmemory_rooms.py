"""The rooms' store contract (tests/support/store_contract.py) on the in-memory store that the
rules' tests use, so that the model they run on behaves as DynamoChatStore does."""

from __future__ import annotations

import pytest

from chat.ports import ChatStore
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


def as_port(store: InMemoryStore) -> ChatStore:
    """mypy checks here that the in-memory store has every method of the port."""
    return store


def test_the_in_memory_store_is_a_chat_store(store):
    assert as_port(store) is store
