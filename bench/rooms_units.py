"""Rooms (protocol v2): DynamoDB units per action, at N members and R rooms.

Measured as `bench.room_bench` measures the lobby's actions: the units are DynamoDB's
documented formulas applied to the sizes of the items each call read or wrote
(`room_bench.UnitCounter`), each action runs through the handler's own dispatch
(`handler.handle_message`, admission included) on a `ChatService` with `DynamoChatStore`.

The rooms are made by the chat itself (a founder's creating `joinRoom`s); their members
are then written in the store's own item layout (the member and membership items the
store's join transaction puts, `DynamoChatStore._join_actions`; the connection's `rooms`
and the room's `COUNT` set to match), 25 items a BatchWriteItem: O(N x R) writes, no
N² join broadcasts. Every built member is a v2 connection in all R rooms, with a lasting
identity (a `clientKey`), so that typing, edits and invitations reach it as they would a
web client.

Each room size N then gets fresh measured connections, each from its own address (so the
address's bucket is in every frame's admission, as on AWS): one runs every action in the
first room (R = 1); for each R, another joins R rooms, renames itself and disconnects.
The posts go to an in-process recorder, not to a stand-in: the units do not depend on
how frames travel.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.room_bench import UnitCounter, item_size

Frame = dict[str, Any]

# The rows of the report, in order. Those marked "by R" are measured at each R.
ACTIONS = (
    "setName (v2: joins no room)",
    "joinRoom (existing room)",
    "joinRoom (creating a public room)",
    "createRoom (private)",
    "sendPublic",
    "editMessage",
    "deleteMessage",
    "typing",
    "markRead",
    "history (room)",
    "invite",
    "sendPrivate (kept: first message)",
    "sendPrivate (kept: later)",
    "listRooms",
    "leaveRoom",
)
BY_R = ("setName (v2 rename)", "$disconnect (v2)")
ROOM_PREFIX = "room"


class Recorder:
    """A Notifier that counts the posts and keeps the frames of the watched connections
    (the measured ones: a member of a 1,000-member room needs no inbox)."""

    def __init__(self) -> None:
        self.watched: set[str] = set()
        self.inbox: dict[str, list[Frame]] = {}
        self.posts = 0

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> Any:
        from chat.ports import DeliveryReport  # noqa: PLC0415

        for cid, batch in deliveries.items():
            self.posts += len(batch)
            if cid in self.watched:
                self.inbox.setdefault(cid, []).extend(batch)
        return DeliveryReport(sent=len(deliveries), gone=frozenset(), failed=0)

    def is_gone(self, connection_id: str) -> bool:
        return False

    def close(self, connection_id: str) -> None:
        return None

    def last(self, cid: str, key: str) -> Frame:
        """The last frame `cid` received that has `key`."""
        for frame in reversed(self.inbox.get(cid, [])):
            if key in frame:
                return frame
        raise RuntimeError(f"{cid} received no frame with {key!r}")


def build_members(
    store: Any,
    client: Any,
    table: str,
    *,
    first: int,
    count: int,
    rooms: Sequence[Any],
    expires_at: int,
) -> list[str]:
    """Members first..first+count-1 of every room in `rooms` (RoomMeta), written in the
    store's layout: the v2 connection (name, its keys, `proto` 2, `senderKey`, `rooms`),
    its name claims, and for each room the member and membership items the store's join
    transaction puts. The rooms' `COUNT`s are raised by `count`."""
    from chat import store as layout  # noqa: PLC0415
    from chat.names import claim_keys  # noqa: PLC0415
    from chat.ports import Connection, RoomLimits, RoomRequest  # noqa: PLC0415

    limits = RoomLimits(max_members=10**6, max_rooms_per_connection=len(rooms) + 10)
    items: list[dict[str, Any]] = []
    ids = []
    for i in range(first, first + count):
        cid = f"member{i:06d}AAAA="
        name = f"user{i:06d}"
        keys = claim_keys(name)
        identity = f"key#memberkey{i:010d}"
        items.append(
            {
                **layout.connection_key(cid),
                "connectionId": {"S": cid},
                "ttl": {"N": str(expires_at)},
                "name": {"S": name},
                "nameKeys": layout._keys_attribute(keys),
                "proto": {"N": "2"},
                "senderKey": {"S": identity},
                "rooms": {"N": str(len(rooms))},
            }
        )
        items += [layout._owned(layout.name_key(k), cid, name, expires_at) for k in keys]
        connection = Connection(cid, name, expires_at, tuple(keys), protocol=2)
        for meta in rooms:
            request = RoomRequest(meta.key, meta.name)
            actions, _, _ = store._join_actions(connection, meta, request, identity, limits)
            items += [a["Put"]["Item"] for a in actions if "Put" in a]
        ids.append(cid)
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        pending: dict[str, Any] = {table: batch}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    for meta in rooms:
        client.update_item(
            TableName=table,
            Key=layout.count_key(meta.key),
            UpdateExpression="ADD members :n",
            ExpressionAttributeValues={":n": {"N": str(count)}},
        )
    return ids


class Bench:
    """The chat, its counted store and the recorder, on one table."""

    def __init__(self, client: Any, table: str) -> None:
        from chat.service import ChatService  # noqa: PLC0415
        from chat.settings import Limits  # noqa: PLC0415
        from chat.store import DynamoChatStore  # noqa: PLC0415

        self.client = client
        self.table = table
        self.counter = UnitCounter(client)
        self.recorder = Recorder()
        # Room sizes up to 1,000 and a few more; the message bucket big enough for one
        # connection's whole script; every other limit is the stack's default.
        limits = Limits(max_room_size=100_000, message_burst=1000, message_rate_per_second=100.0)
        self.chat = ChatService(
            DynamoChatStore(self.counter, table),
            self.recorder,
            connection_ttl_seconds=10_800,
            limits=limits,
        )
        self.plain = DynamoChatStore(client, table)  # uncounted: building, checking
        self._addresses = 0

    def connect(self, cid: str) -> None:
        """A new connection from an address of its own (uncounted)."""
        self._addresses += 1
        self.recorder.watched.add(cid)
        address = f"198.18.{self._addresses // 250}.{self._addresses % 250 + 1}"
        self.chat.connect(cid, source_ip=address)

    def frame(self, cid: str, body: dict[str, Any]) -> None:
        """One frame through the handler's dispatch, on its own route or on $default."""
        import handler  # noqa: PLC0415

        action = body["action"]
        route = action if action in handler.ROUTED_ACTIONS else "$default"
        handler.handle_message(self.chat, cid, route, handler.ClientFrame.read(json.dumps(body)))

    def counted(self, action: Callable[[], None]) -> dict[str, Any]:
        """The units, calls and posts of one action."""
        self.counter.reset()
        posts = self.recorder.posts
        action()
        return {
            "rru": self.counter.rru,
            "wru": self.counter.wru,
            "calls": list(self.counter.calls),
            "posts": self.recorder.posts - posts,
        }

    def counted_frame(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.counted(functools.partial(self.frame, cid, body))

    def v2_name(self, cid: str, name: str, key: str) -> dict[str, Any]:
        body = {"action": "setName", "name": name, "protocol": 2, "clientKey": key, "id": "n"}
        return self.counted_frame(cid, body)


def _room(index: int) -> str:
    return f"{ROOM_PREFIX}{index}"


def _member_bytes(bench: Bench, room: str) -> float:
    """The mean size of the room's member items (bytes; they differ by their name keys)."""
    from chat.store import member_partition  # noqa: PLC0415

    request: dict[str, Any] = {
        "TableName": bench.table,
        "KeyConditionExpression": "pk = :room AND begins_with(sk, :member)",
        "ExpressionAttributeValues": {
            ":room": {"S": member_partition(0, room)},
            ":member": {"S": "MEMBER#"},
        },
    }
    sizes: list[int] = []
    while True:
        page = bench.client.query(**request)
        sizes += [item_size(i) for i in page.get("Items", [])]
        if not page.get("LastEvaluatedKey"):
            return sum(sizes) / len(sizes)
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _script(bench: Bench, n: int) -> dict[str, Any]:
    """Every action but rename and $disconnect, by one fresh connection, in the first room
    (R = 1 for it): the room has n members and this connection."""
    cid = f"alice{n:06d}AAAAA="
    who = f"alice{n}"
    room = _room(0)
    out: dict[str, Any] = {}
    bench.connect(cid)
    out["setName (v2: joins no room)"] = bench.v2_name(cid, who, f"alicekey{n:010d}")
    out["joinRoom (existing room)"] = bench.counted_frame(
        cid, {"action": "joinRoom", "room": room, "id": "j"}
    )
    out["joinRoom (creating a public room)"] = bench.counted_frame(
        cid, {"action": "joinRoom", "room": f"pub{n}", "id": "c"}
    )
    out["createRoom (private)"] = bench.counted_frame(
        cid, {"action": "createRoom", "room": f"priv{n}", "kind": "private", "id": "c"}
    )
    out["sendPublic"] = bench.counted_frame(
        cid, {"action": "sendPublic", "room": room, "message": "hello", "id": f"p{n}"}
    )
    sent = bench.recorder.last(cid, "publicMessage")
    target = {"room": room, "messageId": sent["messageId"], "seq": sent["seq"]}
    out["editMessage"] = bench.counted_frame(
        cid, {"action": "editMessage", **target, "message": "hello again", "id": "e"}
    )
    out["deleteMessage"] = bench.counted_frame(
        cid, {"action": "deleteMessage", **target, "id": "d"}
    )
    typed = bench.recorder.posts
    out["typing"] = bench.counted_frame(cid, {"action": "typing", "room": room})
    if bench.recorder.posts == typed:
        raise RuntimeError("the typing frame reached nobody (throttled?)")
    last = bench.recorder.last(cid, "messageDeleted")["seq"]
    out["markRead"] = bench.counted_frame(
        cid, {"action": "markRead", "room": room, "seq": last, "id": "m"}
    )
    out["history (room)"] = bench.counted_frame(cid, {"action": "history", "room": room, "id": "h"})
    out["invite"] = bench.counted_frame(
        cid, {"action": "invite", "room": f"priv{n}", "to": "user000000", "id": "i"}
    )
    private = {"action": "sendPrivate", "to": "user000001", "message": "hi"}
    out["sendPrivate (kept: first message)"] = bench.counted_frame(cid, {**private, "id": "q1"})
    out["sendPrivate (kept: later)"] = bench.counted_frame(cid, {**private, "id": "q2"})
    if "room" not in bench.recorder.last(cid, "ack"):
        raise RuntimeError("the private message was not kept in a direct room")
    out["listRooms"] = bench.counted_frame(cid, {"action": "listRooms", "id": "r"})
    out["leaveRoom"] = bench.counted_frame(cid, {"action": "leaveRoom", "room": room, "id": "l"})
    return out


def _mover(bench: Bench, n: int, r: int) -> dict[str, Any]:
    """A fresh connection in the first r rooms renames itself, then disconnects."""
    cid = f"mover{n:06d}r{r:02d}AA="
    bench.connect(cid)
    bench.v2_name(cid, f"mover{n}r{r}", f"moverkey{n:06d}r{r:02d}")
    for index in range(r):
        bench.frame(cid, {"action": "joinRoom", "room": _room(index), "id": f"j{index}"})
    rename = {"action": "setName", "name": f"moved{n}r{r}", "id": "n2"}
    out = {
        "setName (v2 rename)": bench.counted_frame(cid, rename),
        "$disconnect (v2)": bench.counted(functools.partial(bench.chat.disconnect, cid)),
    }
    for action, figures in out.items():  # told in every room, to its n members
        if figures["posts"] < r * n:
            raise RuntimeError(f"{action} in {r} rooms of {n} sent {figures['posts']} frames")
    return out


def measure(
    client: Any, table: str, sizes: Sequence[int], r_values: Sequence[int]
) -> dict[str, Any]:
    """Units per rooms action at each room size (members built, the founder included) and,
    for a rename and a $disconnect, at each R. One run each: the units follow from the
    items' sizes."""
    from chat.rooms import read_room  # noqa: PLC0415

    bench = Bench(client, table)
    rooms_max = max(r_values)
    founder = "founder000000AAAA="
    bench.connect(founder)
    bench.v2_name(founder, "founder", "founderkey000000")
    for index in range(rooms_max):  # the rooms, made by the chat itself
        bench.frame(founder, {"action": "joinRoom", "room": _room(index), "id": f"f{index}"})
    metas = []
    for index in range(rooms_max):
        meta = bench.plain.room_meta(read_room(_room(index)).key)
        if meta is None:
            raise RuntimeError("the founder's joinRoom made no room")
        metas.append(meta)
    expires = int(time.time()) + 10_800
    out: dict[str, Any] = {
        "rooms": list(r_values),
        "sizes": {},
        "build_seconds": {},
        "member_item_bytes": 0,
    }
    built = 1  # the founder
    for n in sorted(sizes):
        started = time.perf_counter()
        build_members(
            bench.plain,
            client,
            table,
            first=built - 1,
            count=n - built,
            rooms=metas,
            expires_at=expires,
        )
        built = n
        for index in range(rooms_max):
            members = len(bench.plain.list_members(metas[index].key))
            if members != n:
                raise RuntimeError(f"{_room(index)} has {members} members, not {n}")
        out["build_seconds"][str(n)] = time.perf_counter() - started
        out["member_item_bytes"] = _member_bytes(bench, metas[0].key)
        by_r = {str(r): _mover(bench, n, r) for r in r_values}
        out["sizes"][str(n)] = {"actions": _script(bench, n), "by_r": by_r}
    return out


@contextmanager
def _quiet() -> Iterator[None]:
    import logging  # noqa: PLC0415

    logger = logging.getLogger("chat")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def rooms_units(template: Path, sizes: Sequence[int], r_values: Sequence[int]) -> dict[str, Any]:
    """`measure` on the stack's table, served by moto in another process, sped up: the
    rooms hold up to N x R member items, and moto's own transactions copy the whole table
    for each of their items."""
    from bench.local_aws import chat_table_process  # noqa: PLC0415

    with chat_table_process(template, fast=True) as (client, table), _quiet():
        return measure(client, table, sizes, r_values)
