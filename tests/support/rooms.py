"""Chat clients on a running sandbox, and a member whose socket is gone (the e2e suites)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from chat.names import claim_keys
from chat.ports import Connection
from chat.store import DynamoChatStore
from tests.support.chat_client import ChatClient, room_items
from tests.support.consistency import scan, table_problems
from tests.support.sandbox import Sandbox, wait_for


def chat_clients(sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    """Open chat clients on `sandbox`; on teardown close them, wait until the room is empty
    again and check that the table is consistent (a test's leftovers would fail the tests
    after it)."""
    opened: list[ChatClient] = []

    def open_client() -> ChatClient:
        # max_queue=None: websockets stops reading a socket once 16 messages wait unread,
        # and then its close() sits out the whole close_timeout (10 s) before it sees the
        # server's close frame. A client that was sent more than it read (a poster in a busy
        # room) would make the teardown wait 10 s for each; unbounded, it closes at once.
        client = ChatClient(sandbox.connect(max_queue=None).__enter__())
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
    wait_for(lambda: None if room_items(sandbox) else True, what="an empty room")
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    assert table_problems(scan(db, table)) == []


def add_ghost_member(sandbox: Sandbox, connection_id: str, name: str) -> None:
    """Join a member whose socket is gone and whose $disconnect never ran.

    The items are written by the handler's own store (connection, claim keys, member item and
    room count, in one transaction), so they are exactly what a real join leaves behind.
    """
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    store = DynamoChatStore(db, table)
    expires = int(time.time()) + 3600
    store.add_connection(connection_id, expires)
    joining = Connection(connection_id, None, expires)
    store.claim_name(joining, name, claim_keys(name), max_members=100_000)


def every_member_item(sandbox: Sandbox) -> list[dict[str, Any]]:
    """The MEMBER items of every room (the lobby, other rooms, their shards): one Scan."""
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    return [
        item
        for item in scan(db, table)
        if item["pk"]["S"].startswith("ROOM#") and item["sk"]["S"].startswith("MEMBER#")
    ]


def settled_table_problems(sandbox: Sandbox, timeout: float = 20.0) -> list[str]:
    """The table's problems once they stop changing: a v2 `$disconnect` leaves its rooms
    one transaction each, after the socket closed, so a scan in between can see a half."""
    db = sandbox.dynamodb()
    (table,) = db.list_tables()["TableNames"]
    deadline = time.monotonic() + timeout
    while (problems := table_problems(scan(db, table))) and time.monotonic() < deadline:
        time.sleep(0.2)
    return problems


def room_chat_clients(sandbox: Sandbox) -> Iterator[Callable[[], ChatClient]]:
    """As `chat_clients`, for tests with rooms: on teardown it closes the clients, waits
    until no room of any name has a member left, then checks the table."""
    opened: list[ChatClient] = []

    def open_client() -> ChatClient:
        client = ChatClient(sandbox.connect(max_queue=None).__enter__())
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
    wait_for(lambda: None if every_member_item(sandbox) else True, what="every room empty")
    assert settled_table_problems(sandbox) == []
