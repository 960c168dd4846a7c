"""Rooms: DynamoDB units per action, eventually consistent reads, frame bytes.

Rooms are built in the store's own item layout (`build_room`) on the embedded moto
DynamoDB in another process: O(N) writes, no O(N^2) join broadcasts. Each chat action
then runs through the handler's own dispatch (`handler.handle_message`) on a
`ChatService` wired to that store and to a `FanoutEngine` posting to the @connections
stand-in.

Units: moto answers every `ReturnConsumedCapacity` with a constant, so the units here are
DynamoDB's documented formulas applied to the sizes of the items each call read or wrote
(docs/aws-facts.md): a strongly consistent read 1 RRU per 4 KB (eventually consistent: ½),
a Query the summed item sizes rounded up to 4 KB, a write 1 WRU per KB of the larger of
the item before and after, twice that in a transaction.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Callable
from typing import Any

Item = dict[str, Any]
KB = 1024


# --- item sizes and units --------------------------------------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Item) -> int:
    """DynamoDB's size of one attribute value (bytes)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in inner.items())
    if kind in ("SS", "BS"):
        return sum(len(v.encode("utf-8") if isinstance(v, str) else v) for v in inner)
    if kind == "NS":
        return sum(_number_size(v) for v in inner)
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Item | None) -> int:
    """DynamoDB's size of an item: attribute names plus values."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def read_units(total_bytes: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(total_bytes / (4 * KB)))
    return units if consistent else units / 2


def write_units(size: int) -> int:
    return max(1, math.ceil(size / KB))


# DynamoDB's other data-plane calls (boto3 name: API name).
UNCOUNTED = {
    "scan": "Scan",
    "batch_write_item": "BatchWriteItem",
    "transact_get_items": "TransactGetItems",
    "execute_statement": "ExecuteStatement",
    "batch_execute_statement": "BatchExecuteStatement",
    "execute_transaction": "ExecuteTransaction",
}


def _named_in(placeholder: str, expression: str) -> bool:
    """Whether `expression` uses `placeholder` (`:v` or `#n`), not merely a longer one."""
    return re.search(re.escape(placeholder) + r"(?![A-Za-z0-9_])", expression) is not None


class UnitCounter:
    """A DynamoDB client that adds up the read and write units of the calls made through it.

    A side read (uncounted) gets the size of an item an update or delete touches.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self.rru = 0.0
        self.wru = 0.0
        self.calls: list[str] = []

    def reset(self) -> None:
        self.rru = 0.0
        self.wru = 0.0
        self.calls = []

    def _size_of(self, table: str, key: Item) -> int:
        found = self._client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item_size(found)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        counted: dict[str, Callable[..., Any]] = {
            "get_item": self._get_item,
            "query": self._query,
            "put_item": self._put_item,
            "update_item": self._update_item,
            "delete_item": self._delete_item,
            "transact_write_items": self._transact,
            "batch_get_item": self._batch_get_item,
        }
        if name in UNCOUNTED:  # never used by the store: recorded, not priced
            self.calls.append(UNCOUNTED[name])
            return method
        if name not in counted:
            return method
        wrapper = counted[name]
        return lambda **kw: wrapper(method, **kw)

    def _get_item(self, method: Callable[..., Any], **kw: Any) -> Any:
        self.calls.append("GetItem")
        answer = method(**kw)
        size = item_size(answer.get("Item"))
        self.rru += read_units(size, consistent=bool(kw.get("ConsistentRead")))
        return answer

    def _batch_get_item(self, method: Callable[..., Any], **kw: Any) -> Any:
        """Each key of a BatchGetItem is billed as its own read (a missing item too, at the
        minimum), as a GetItem of it would be."""
        self.calls.append("BatchGetItem")
        answer = method(**kw)
        for table, request in kw["RequestItems"].items():
            found = {
                (i["pk"]["S"], i["sk"]["S"]): item_size(i)
                for i in answer.get("Responses", {}).get(table, [])
            }
            consistent = bool(request.get("ConsistentRead"))
            for key in request["Keys"]:
                size = found.get((key["pk"]["S"], key["sk"]["S"]), 0)
                self.rru += read_units(size, consistent=consistent)
        return answer

    def _query(self, method: Callable[..., Any], **kw: Any) -> Any:
        self.calls.append("Query")
        answer = method(**kw)
        if "FilterExpression" in kw or kw.get("Select") == "COUNT":
            size = self._evaluated_bytes(kw)
        else:
            size = sum(item_size(i) for i in answer.get("Items", []))
        self.rru += read_units(size, consistent=bool(kw.get("ConsistentRead")))
        return answer

    def _evaluated_bytes(self, kw: dict[str, Any]) -> int:
        """The size of the items a Query read, before its filter and whatever it returned
        (a filter or `Select=COUNT` does not lower the units): the same page (key
        condition, `Limit`, start key) read again without them, uncounted."""
        condition = kw["KeyConditionExpression"]
        side = {
            k: v
            for k, v in kw.items()
            if k not in ("FilterExpression", "Select", "ProjectionExpression")
        }
        for field in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
            used = {k: v for k, v in kw.get(field, {}).items() if _named_in(k, condition)}
            side.pop(field, None)
            if used:
                side[field] = used
        return sum(item_size(i) for i in self._client.query(**side).get("Items", []))

    def _put_item(self, method: Callable[..., Any], **kw: Any) -> Any:
        self.calls.append("PutItem")
        before = self._size_of(kw["TableName"], {k: kw["Item"][k] for k in ("pk", "sk")})
        answer = method(**kw)
        self.wru += write_units(max(before, item_size(kw["Item"])))
        return answer

    def _update_item(self, method: Callable[..., Any], **kw: Any) -> Any:
        self.calls.append("UpdateItem")
        before = self._size_of(kw["TableName"], kw["Key"])
        try:
            return method(**kw)
        finally:
            after = self._size_of(kw["TableName"], kw["Key"])
            self.wru += write_units(max(before, after))

    def _delete_item(self, method: Callable[..., Any], **kw: Any) -> Any:
        self.calls.append("DeleteItem")
        before = self._size_of(kw["TableName"], kw["Key"])
        answer = method(**kw)
        self.wru += write_units(before)
        return answer

    def _transact(self, method: Callable[..., Any], **kw: Any) -> Any:
        self.calls.append(f"TransactWriteItems({len(kw['TransactItems'])})")
        sizes: list[int] = []
        for action in kw["TransactItems"]:
            (kind, body), *_ = action.items()
            if kind == "Put":
                key = {k: body["Item"][k] for k in ("pk", "sk")}
                sizes.append(max(self._size_of(body["TableName"], key), item_size(body["Item"])))
            else:
                sizes.append(self._size_of(body["TableName"], body["Key"]))
        try:
            return method(**kw)
        finally:
            for index, action in enumerate(kw["TransactItems"]):
                (kind, body), *_ = action.items()
                if kind == "Update":
                    sizes[index] = max(sizes[index], self._size_of(body["TableName"], body["Key"]))
            self.wru += sum(2 * write_units(s) for s in sizes)


# --- rooms ------------------------------------------------------------------------------


def build_room(
    client: Any,
    table: str,
    first: int,
    count: int,
    expires_at: int,
    *,
    member_partitions: int = 1,
) -> list[str]:
    """Members first..first+count-1, written in the store's own layout (chat.store's key and
    item builders: the connection, its membership in the shard the store would choose with
    `member_partitions`, its name claims, the member count), 25 items a BatchWriteItem:
    O(N) writes. A join through `claim_name` is the same items in one transaction, but moto
    copies the whole table for each transaction, which would make building a room of 1,000
    quadratic in moto's time (the joins measured below use it)."""
    from chat import store as layout  # noqa: PLC0415
    from chat.names import claim_keys  # noqa: PLC0415

    items: list[Item] = []
    ids = []
    for i in range(first, first + count):
        cid = f"member{i:06d}AAAA="
        name = f"user{i:06d}"
        keys = claim_keys(name)
        listed = layout._keys_attribute(keys)
        shard = layout.member_shard(cid, member_partitions)
        items.append(
            {
                **layout.connection_key(cid),
                "connectionId": {"S": cid},
                "ttl": {"N": str(expires_at)},
                "name": {"S": name},
                "nameKeys": listed,
                "memberShard": {"N": str(shard)},
            }
        )
        member = layout.member_key(cid, shard)
        items.append(layout._owned(member, cid, name, expires_at, nameKeys=listed))
        items += [layout._owned(layout.name_key(k), cid, name, expires_at) for k in keys]
        ids.append(cid)
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        pending: dict[str, Any] = {table: batch}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    client.update_item(
        TableName=table,
        Key=layout.count_key(),
        UpdateExpression="ADD members :n",
        ExpressionAttributeValues={":n": {"N": str(count)}},
    )
    return ids


def room_actions(
    sizes: list[int],
    runs: int,
    template: Any,
    connections_url: str,
    concurrency: int,
    *,
    member_partitions: int = 1,
) -> dict[str, Any]:
    """Units (formulas) per action at each room size, and the eventually consistent
    alternative for the room read; the members spread over `member_partitions`."""
    from bench.fanout_bench import REGION, _credentials  # noqa: PLC0415
    from bench.local_aws import chat_table_process  # noqa: PLC0415
    from chat.fanout import FanoutEngine  # noqa: PLC0415
    from chat.service import ChatService  # noqa: PLC0415
    from chat.settings import Limits  # noqa: PLC0415
    from chat.store import DynamoChatStore  # noqa: PLC0415

    out: dict[str, Any] = {"sizes": {}, "build_seconds": {}}
    with chat_table_process(template) as (client, table):
        counter = UnitCounter(client)
        store = DynamoChatStore(counter, table, member_partitions=member_partitions)
        engine = FanoutEngine(
            connections_url, region=REGION, credentials=_credentials(), concurrency=concurrency
        )
        limits = Limits(max_room_size=100_000, message_burst=1000, message_rate_per_second=100.0)
        chat = ChatService(store, engine, connection_ttl_seconds=10_800, limits=limits)
        expires = int(time.time()) + 10_800
        members: list[str] = []
        try:
            for n in sizes:
                started = time.perf_counter()
                members += build_room(
                    client,
                    table,
                    len(members),
                    n - len(members),
                    expires,
                    member_partitions=member_partitions,
                )
                if len(store.list_members()) != n:
                    raise RuntimeError(f"the room has not {n} members")
                out["build_seconds"][str(n)] = time.perf_counter() - started
                out["sizes"][str(n)] = {
                    "actions": _actions(chat, counter, members[0], n, runs),
                    "room_read": {
                        "strong": _room_read(counter, table, member_partitions, consistent=True),
                        "eventual": _room_read(counter, table, member_partitions, consistent=False),
                    },
                }
        finally:
            engine.shutdown()
    return out


def _actions(chat: Any, counter: UnitCounter, sender: str, n: int, runs: int) -> dict[str, Any]:
    """sendPublic, sendPrivate and history from `sender`; a join and a leave."""
    import handler  # noqa: PLC0415

    bodies: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
        "sendPublic": (
            "sendPublic",
            lambda r: {"action": "sendPublic", "message": "hello", "id": f"p{n}-{r}"},
        ),
        "sendPrivate": (
            "sendPrivate",
            lambda r: {
                "action": "sendPrivate",
                "to": "user000001",
                "message": "hi",
                "id": f"q{n}-{r}",
            },
        ),
        "history": ("$default", lambda r: {"action": "history", "id": f"h{n}-{r}"}),
    }
    out: dict[str, Any] = {}
    for name, (route, body) in bodies.items():
        samples = []
        for r in range(runs):
            frame = handler.ClientFrame.read(_json(body(r)))
            samples.append(
                _counted(
                    counter, functools.partial(handler.handle_message, chat, sender, route, frame)
                )
            )
        out[name] = _summarise(samples, counter.calls)
    joins, leaves = [], []
    join_calls: list[str] = []
    for r in range(runs):
        cid = f"joiner{n:06d}{r:02d}AA="
        frame = handler.ClientFrame.read(_json({"action": "setName", "name": f"new{n}x{r}"}))

        def join(cid: str = cid, frame: Any = frame) -> None:
            chat.connect(cid)
            handler.handle_message(chat, cid, "setName", frame)

        joins.append(_counted(counter, join))
        join_calls = counter.calls
        leaves.append(_counted(counter, functools.partial(chat.disconnect, cid)))
    out["$connect + setName (join)"] = _summarise(joins, join_calls)
    out["$disconnect (leave)"] = _summarise(leaves, counter.calls)
    return out


def _counted(counter: UnitCounter, action: Callable[[], None]) -> dict[str, float]:
    counter.reset()
    started = time.perf_counter()
    action()
    return {"rru": counter.rru, "wru": counter.wru, "seconds": time.perf_counter() - started}


def _room_read(
    counter: UnitCounter, table: str, member_partitions: int, *, consistent: bool
) -> dict[str, Any]:
    """The room's members, read as `DynamoChatStore.list_members` reads them (every member
    partition, all pages; here one partition after the other)."""
    from chat.store import member_partition  # noqa: PLC0415

    counter.reset()
    started = time.perf_counter()
    items = size = 0
    per_partition: list[float] = []
    for shard in range(member_partitions):
        before = counter.rru
        request: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :room AND begins_with(sk, :member)",
            "ExpressionAttributeValues": {
                ":room": {"S": member_partition(shard)},
                ":member": {"S": "MEMBER#"},
            },
            "ConsistentRead": consistent,
        }
        while True:
            page = counter.query(**request)
            items += len(page.get("Items", []))
            size += sum(item_size(i) for i in page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        per_partition.append(counter.rru - before)
    return {
        "rru": counter.rru,
        "rru_per_partition": per_partition,
        "pages": len(counter.calls),
        "items": items,
        "bytes": size,
        "seconds_on_moto": time.perf_counter() - started,
    }


def _json(body: dict[str, Any]) -> str:
    import json  # noqa: PLC0415

    return json.dumps(body)


def _summarise(samples: list[dict[str, float]], calls: list[str]) -> dict[str, Any]:
    from bench.measure import summary  # noqa: PLC0415

    return {
        "rru": summary([s["rru"] for s in samples]),
        "wru": summary([s["wru"] for s in samples]),
        "seconds": summary([s["seconds"] for s in samples]),
        "calls": calls,
    }


# --- frames -----------------------------------------------------------------------------


def frame_bytes(sizes: list[int], threshold: int) -> dict[str, Any]:
    """Bytes a join sends at each room size: the full `members` frame (protocol v1) against
    the `memberList` parts (chat.frames.member_pages), for short and for the longest names."""
    from chat import frames  # noqa: PLC0415

    longest = "\U0001f600" * 32  # 32 four-byte characters: the longest name there is
    out: dict[str, Any] = {"threshold": threshold, "budget": frames.FRAME_BUDGET_BYTES, "rows": []}
    for n in sizes:
        typical = [f"user{i:06d}" for i in range(n)]
        worst = [f"{longest[:-2]}{i:04d}"[:32] for i in range(n)]
        row: dict[str, Any] = {"n": n}
        for label, names in (("typical", typical), ("longest", worst)):
            full = len(frames.encode(frames.members(names)))
            pages = [len(frames.encode(p)) for p in frames.member_pages(names)]
            row[label] = {
                "members_frame": full,
                "member_pages": len(pages),
                "largest_page": max(pages),
                "pages_total": sum(pages),
            }
        out["rows"].append(row)
    return out
