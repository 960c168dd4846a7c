"""Is the chat's table consistent? Checks on a scan, usable on moto and on the sandbox.

The layout is lambda_src/chat/store.py's (docs/architecture.md): CONN#<cid> items, one
NAME#<key> claim per key of a member's name, MEMBER#<cid> items in the member partitions
(ROOM#lobby, and ROOM#lobby#<i> for shard i >= 1) and the ROOM#lobby COUNT, and the
listings of connections under their peers (PEER#<peer> CONN#<cid>) and among the unnamed
ones (UNNAMED). Items of other kinds (v1.1's sequence counter, history, de-duplication
records, peers' buckets, sign-in's name owners) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

Item = dict[str, Any]

# A member partition's key: ROOM#lobby is shard 0, ROOM#lobby#<i> shard i.
MEMBER_PARTITION = re.compile(r"ROOM#lobby(?:#(\d+))?")


def member_shard_of(item: Item) -> int | None:
    """The shard a MEMBER item sits in; None when the item is not a MEMBER item."""
    match = MEMBER_PARTITION.fullmatch(_s(item, "pk") or "")
    if match is None or not (_s(item, "sk") or "").startswith("MEMBER#"):
        return None
    return int(match.group(1) or 0)


def recorded_shard(connection: Item) -> int:
    """The shard a CONN item says its MEMBER item is in (absent: 0)."""
    return int(connection.get("memberShard", {}).get("N", "0"))


# What table_problems reads (CONN items, NAME claims, MEMBER items, the COUNT, the listings
# under peers and among the unnamed), and every item in a connection's partition: a Scan
# filter that leaves out history, the SEQ counter, de-duplication records, peers' buckets
# and sign-in's owners, which nothing here checks and which pile up as a room is used.
CHECKED_ITEMS: dict[str, Any] = {
    "FilterExpression": (
        "begins_with(pk, :conn) OR begins_with(pk, :name) OR begins_with(sk, :conn)"
        " OR begins_with(sk, :member) OR pk = :unnamed OR (pk = :room AND sk = :count)"
    ),
    "ExpressionAttributeValues": {
        ":conn": {"S": "CONN#"},
        ":name": {"S": "NAME#"},
        ":member": {"S": "MEMBER#"},
        ":unnamed": {"S": "UNNAMED"},
        ":room": {"S": "ROOM#lobby"},
        ":count": {"S": "COUNT"},
    },
}


def scan(db: Any, table: str, *, checked_only: bool = False) -> list[Item]:
    """Every item of `table` (consistent reads, every page); with `checked_only`, only those
    table_problems reads, and every item of a CONN# partition (CHECKED_ITEMS)."""
    items: list[Item] = []
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    if checked_only:
        request.update(CHECKED_ITEMS)
    while True:
        page = db.scan(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _s(item: Item, key: str) -> str | None:
    value = item.get(key, {})
    return value.get("S") if isinstance(value, dict) else None


def _membership_problems(cid: str, name: str, conn: Item, member: Item | None) -> list[str]:
    """What is wrong with a named connection's MEMBER item: missing, misnamed, misplaced."""
    if member is None:
        return [f"member {name!r} ({cid}) has no MEMBER item"]
    problems = []
    if _s(member, "name") != name:
        problems.append(f"MEMBER item of {cid} says {_s(member, 'name')!r}, not {name!r}")
    if member_shard_of(member) != recorded_shard(conn):
        problems.append(
            f"MEMBER item of {cid} is in shard {member_shard_of(member)}, "
            f"its CONN item records shard {recorded_shard(conn)}"
        )
    return problems


def table_problems(items: Iterable[Item]) -> list[str]:
    """Everything that breaks the invariants; empty when the table is consistent.

    - a named connection has its MEMBER item (same name) and a NAME claim for each key;
    - a MEMBER item sits in the shard its connection's CONN item records (memberShard);
    - a connection has one MEMBER item at most;
    - a MEMBER item belongs to a live connection item with the same name;
    - a NAME claim belongs to a connection that holds that key;
    - no two members' keys overlap (names unique by look);
    - COUNT equals the number of MEMBER items.
    """
    connections: dict[str, Item] = {}
    members: dict[str, Item] = {}
    claims: dict[str, Item] = {}
    listings: list[tuple[str, Item]] = []  # (peer or UNNAMED, item) naming a connection
    count: int | None = None
    duplicates: list[str] = []
    for item in items:
        pk, sk = _s(item, "pk") or "", _s(item, "sk") or ""
        if (pk.startswith("PEER#") and sk.startswith("CONN#")) or pk == "UNNAMED":
            listings.append((pk, item))
        elif pk.startswith("CONN#") and sk == "CONN":
            connections[pk[5:]] = item
        elif pk.startswith("NAME#") and sk == "NAME":
            claims[pk[5:]] = item
        elif member_shard_of(item) is not None:
            if sk[7:] in members:
                duplicates.append(sk[7:])
            members[sk[7:]] = item
        elif pk == "ROOM#lobby" and sk == "COUNT":
            count = int(item.get("members", {}).get("N", "0"))
    problems = [f"connection {cid} has MEMBER items in several shards" for cid in duplicates]
    holders: dict[str, str] = {}
    for cid, conn in connections.items():
        name = _s(conn, "name")
        keys = [k["S"] for k in conn.get("nameKeys", {}).get("L", [])]
        if name is None:
            if cid in members:
                problems.append(f"unnamed connection {cid} has a MEMBER item")
            continue
        problems += _membership_problems(cid, name, conn, members.get(cid))
        if not keys:
            problems.append(f"member {name!r} ({cid}) has no name keys")
        for key in keys:
            claim = claims.get(key)
            if claim is None or _s(claim, "connectionId") != cid:
                problems.append(f"member {name!r} ({cid}) does not hold its claim {key!r}")
            if key in holders and holders[key] != cid:
                problems.append(f"key {key!r} held by both {holders[key]} and {cid}")
            holders[key] = cid
    problems += [
        f"orphaned MEMBER item {_s(member, 'name')!r} ({cid})"
        for cid, member in members.items()
        if cid not in connections
    ]
    for key, claim in claims.items():
        cid = _s(claim, "connectionId") or ""
        holder = connections.get(cid)
        if holder is None:
            problems.append(f"orphaned NAME claim {key!r} of gone connection {cid}")
            continue
        keys = [k["S"] for k in holder.get("nameKeys", {}).get("L", [])]
        if key not in keys:
            problems.append(
                f"NAME claim {key!r} is not a key of {cid}'s name {_s(holder, 'name')!r}"
            )
    problems += _listing_problems(listings, connections)
    return problems + _count_problems(count, len(members) + len(duplicates))


def _count_problems(count: int | None, member_items: int) -> list[str]:
    if member_items and count is None:
        return ["no COUNT item"]
    if count is not None and count != member_items:
        return [f"COUNT says {count}, there are {member_items} MEMBER items"]
    return []


def _listing_problems(listings: list[tuple[str, Item]], connections: dict[str, Item]) -> list[str]:
    """A connection listed under a peer must exist, named there only if it has a name; one
    listed as unnamed must exist without a name (the sweep deletes the entries it takes)."""
    problems = []
    for pk, item in listings:
        cid = _s(item, "connectionId") or ""
        conn = connections.get(cid)
        if conn is None:
            problems.append(f"{pk} lists gone connection {cid}")
            continue
        named = _s(conn, "name") is not None
        if pk == "UNNAMED" and named:
            problems.append(f"named connection {cid} is still listed as unnamed")
        if pk != "UNNAMED" and "named" in item and not named:
            problems.append(f"{pk} says unnamed connection {cid} has a name")
        if pk != "UNNAMED" and pk[5:] not in [k["S"] for k in conn.get("peers", {}).get("L", [])]:
            problems.append(f"{pk} lists {cid}, whose CONN item does not name that peer")
    return problems


def member_names(items: Iterable[Item]) -> dict[str, str]:
    """connection id -> name of every MEMBER item (of every shard)."""
    out: dict[str, str] = {}
    for item in items:
        if member_shard_of(item) is not None:
            out[(_s(item, "sk") or "")[7:]] = _s(item, "name") or ""
    return out
