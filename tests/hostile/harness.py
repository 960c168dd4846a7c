"""A room for hostile frames: the Lambda handler on moto DynamoDB and the @connections stand-in.

Bob and Carol are members and stay; each frame comes from a fresh connection (so it has
full rate-limit buckets), named `Hostile` (or the case's name) or not named at all, which
is disconnected afterwards. Every connection comes from its own source address, as on
AWS, where each client has its own: the limits per address (connections, joins, frames)
then count one connection each, as they would for a real client, and the corpus tests the
frames, not those limits. Everyone's frames are collected, then the table is checked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

import handler
from chat.store import connection_key, member_key
from sandbox.connections_standin import ConnectionsApi, running_connections_api
from tests.hostile.protocol import Observation, api_gateway_route
from tests.support.aws import TABLE, mocked_dynamodb
from tests.support.consistency import scan, table_problems
from tests.support.events import LambdaContext, connect_event, disconnect_event, message_event
from tests.support.frames import PlainFrames
from tests.support.stack import create_table

BYSTANDERS = ("Bob", "Carol")
# Cases run on one table before the room starts a fresh one: a table that keeps every case's
# leftovers (history, peers' buckets, de-duplication records) makes each case slower than
# the last, as moto's scans grow with it. A fresh table costs Bob and Carol's joins again;
# with transactions that copy only what they write (tests.support.aws), 20 cases a table
# is quicker than 5 (the corpus: 72 s -> 59 s serially).
FRESH_TABLE_EVERY = 20


@dataclass
class Result:
    observation: Observation
    status: dict[str, Any]
    table_problems: list[str]


class HandlerRoom:
    """Bob, Carol and a fresh sender per frame, all through `handler.lambda_handler`."""

    def __init__(
        self, db: Any, api: ConnectionsApi, fresh_table_every: int | None = FRESH_TABLE_EVERY
    ) -> None:
        self.db = db
        self.api = PlainFrames(api)
        self._ids = itertools.count()
        self.addresses: dict[str, str] = {}  # connection id -> its source address
        self.bystanders: dict[str, str] = {}  # name -> connection id
        self.fresh_table_every = fresh_table_every
        self.runs_on_this_table = 0
        self.tables = 1  # how many tables this room has used
        # What each fresh table gets once Bob and Carol are in (the first table too, when
        # set through `prepare`).
        self.on_fresh_table: Callable[[HandlerRoom], None] | None = None
        # The last case's scan, while no invocation has come since: Bob's and Carol's items
        # are read from it rather than by key.
        self._last_scan: list[dict[str, Any]] | None = None
        self.ensure_bystanders()

    def fresh_table(self) -> None:
        """Start again on an empty table (same name): Bob and Carol join it anew."""
        self.db.delete_table(TableName=TABLE)
        create_table(self.db, TABLE)
        self._last_scan = None
        self.addresses.clear()
        self.bystanders.clear()
        self.runs_on_this_table = 0
        self.tables += 1
        self.api.clear()
        self.ensure_bystanders()
        if self.on_fresh_table is not None:
            self.on_fresh_table(self)

    def prepare(self, setup: Callable[[HandlerRoom], None]) -> None:
        """Run `setup` on this table now, and on every fresh table the room starts."""
        self.on_fresh_table = setup
        setup(self)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self._last_scan = None
        result: dict[str, Any] = handler.lambda_handler(event, LambdaContext())
        return result

    def new_connection(self) -> str:
        """A new connection, from an address no other connection of this room used."""
        serial = next(self._ids)
        cid = f"hostile{serial:07d}A="
        self.addresses[cid] = source_address(serial)
        assert self.invoke(connect_event(cid, source_ip=self.addresses[cid])) == {"statusCode": 200}
        return cid

    def send(self, cid: str, text: str, route: str | None = None) -> dict[str, Any]:
        """Send `text` on `route`, by default the one API Gateway would select for it (for a
        frame with a key given twice, the first one: protocol.api_gateway_route)."""
        route_key = route or api_gateway_route(text)
        return self.invoke(
            message_event(cid, text, route_key=route_key, source_ip=self.addresses[cid])
        )

    def disconnect(self, cid: str) -> None:
        self.invoke(disconnect_event(cid, source_ip=self.addresses.pop(cid)))

    def ensure_bystanders(self) -> None:
        """(Re)join Bob and Carol if a frame managed to remove them."""
        for name in BYSTANDERS:
            if name in self.bystanders and self._is_member(self.bystanders[name], name):
                continue
            cid = self.new_connection()
            self.send(cid, f'{{"action": "setName", "name": "{name}"}}')
            self.bystanders[name] = cid
        self.api.clear()

    def run(
        self,
        text: str,
        *,
        named: bool = True,
        sender_name: str = "Hostile",
        route: str | None = None,
    ) -> Result:
        """Send `text` from a fresh connection (named `sender_name`, or unnamed) on `route`
        (by default the one API Gateway selects) and collect what everyone received."""
        if self.fresh_table_every and self.runs_on_this_table >= self.fresh_table_every:
            self.fresh_table()
        self.runs_on_this_table += 1
        self.ensure_bystanders()
        cid = self.new_connection()
        if named:
            self.send(cid, json_set_name(sender_name))
            if not self.api.take(cid):
                raise AssertionError(f"the sender could not join as {sender_name!r}")
        self.api.clear()
        route_key = route or api_gateway_route(text)
        status = self.send(cid, text, route_key)
        observation = Observation(
            text=text,
            sender_name=sender_name if named else None,
            sender=self.api.take(cid),
            others={name: self.api.take(other) for name, other in self.bystanders.items()},
            sender_name_after=self._name_of(cid),
            route=route_key,
        )
        self.disconnect(cid)
        self.api.clear()
        items = scan(self.db, TABLE, checked_only=True)
        self._last_scan = items
        leftovers = [
            f"the sender's {kind} item survived its $disconnect" for kind in _items_of(items, cid)
        ]
        return Result(observation, status, table_problems(items) + leftovers)

    def _is_member(self, cid: str, name: str) -> bool:
        """Is `cid` still a member named `name`: its CONN item, and the MEMBER item in the
        shard that item records, both say so? Read from the last case's scan (which holds
        every CONN and MEMBER item) when no invocation came since, else by key."""
        conn_item = self._item(connection_key(cid))
        if conn_item is None or conn_item.get("name", {}).get("S") != name:
            return False
        shard = int(conn_item.get("memberShard", {}).get("N", "0"))
        member = self._item(member_key(cid, shard))
        return member is not None and member.get("name", {}).get("S") == name

    def _item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        if self._last_scan is None:
            found = self.db.get_item(TableName=TABLE, Key=key, ConsistentRead=True).get("Item")
            return dict(found) if found is not None else None
        for item in self._last_scan:
            if item["pk"] == key["pk"] and item["sk"] == key["sk"]:
                return item
        return None

    def _name_of(self, cid: str) -> str | None:
        item = self.db.get_item(TableName=TABLE, Key=connection_key(cid), ConsistentRead=True)
        name = item.get("Item", {}).get("name", {}).get("S")
        return str(name) if name is not None else None


def source_address(serial: int) -> str:
    """The `serial`th client address: 198.18.0.0/15 (RFC 2544's benchmarking range), 131,072
    addresses before one comes back, by which time its buckets have long refilled."""
    serial %= 2**17
    return f"198.{18 + (serial >> 16)}.{(serial >> 8) & 0xFF}.{serial & 0xFF}"


def json_set_name(name: str) -> str:
    import json  # noqa: PLC0415

    return json.dumps({"action": "setName", "name": name})


def _items_of(items: list[dict[str, Any]], cid: str) -> list[str]:
    kinds = []
    for item in items:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if pk == f"CONN#{cid}" or sk == f"MEMBER#{cid}":
            kinds.append(sk.split("#")[0])
        elif pk.startswith("NAME#") and item.get("connectionId", {}).get("S") == cid:
            kinds.append("NAME")
    return kinds


@contextmanager
def handler_room(**env: str) -> Iterator[HandlerRoom]:
    """A fresh table, the stand-in, and the handler configured for them (plus `env`)."""
    with (
        mocked_dynamodb() as db,
        running_connections_api() as api,
        pytest.MonkeyPatch.context() as patch,
    ):
        create_table(db, TABLE)
        patch.setenv("TABLE_NAME", TABLE)
        patch.setenv("CALLBACK_URL", api.url)
        patch.setenv("ALLOWED_ORIGINS", "https://chat.example.com,http://127.0.0.1")
        patch.setenv("LOG_LEVEL", "ERROR")
        for key, value in env.items():
            patch.setenv(key, value)
        handler.reset()
        try:
            yield HandlerRoom(db, api)
        finally:
            handler.reset()
