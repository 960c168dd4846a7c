"""The e2e suites' shared fixture: chat clients on the session's sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.chat_client import ChatClient, room_items
from tests.support.consistency import scan, table_problems
from tests.support.sandbox import Sandbox, wait_for


@pytest.fixture
def connect(chat_sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    """Open chat clients; on teardown close them, wait until the room is empty again and
    check that the table is consistent (a test's leftovers would fail the tests after it)."""
    opened: list[ChatClient] = []

    def open_client() -> ChatClient:
        client = ChatClient(chat_sandbox.connect().__enter__())
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
    wait_for(lambda: None if room_items(chat_sandbox) else True, what="an empty room")
    db = chat_sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    assert table_problems(scan(db, table)) == []
