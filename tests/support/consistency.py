"""Is the chat's table consistent? Checks on a scan, usable on moto and on the sandbox.

The layout is lambda_src/chat/store.py's (docs/architecture.md): CONN#<cid> items, one
NAME#<key> claim per key of a member's name, MEMBER#<cid> items in the member partitions
(ROOM#lobby, and ROOM#lobby#<i> for shard i >= 1) and the ROOM#lobby COUNT, and the
listings of connections under their peers (PEER#<peer> CONN#<cid>) and among the unnamed
ones (UNNAMED). Items of other kinds (v1.1's sequence counter, history, de-duplication
records, peers' buckets, sign-in's name owners) are left alone.

Rooms (protocol v2, docs/rooms-design.md §2): a v2 connection's MEMBER items (`v` 2) in any
room's partitions (ROOM#<room>, ROOM#<room>#<i>) each have their twin CONN#<cid> / ROOM#<room>,
each room's COUNT counts its MEMBER items, the ROOMS counter is at least its entries, and
room name claims (ROOMKEY#) and grants (INVITE#) point to rooms that were made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Item = dict[str, Any]

# A member partition's key: ROOM#lobby is shard 0, ROOM#lobby#<i> shard i.
MEMBER_PARTITION = re.compile(r"ROOM#lobby(?:#(\d+))?")
# Any room's member partition: ROOM#<room> is its shard 0, ROOM#<room>#<i> shard i.
ROOM_PARTITION = re.compile(r"ROOM#([^#]+)(?:#(\d+))?")


def room_member_of(item: Item) -> tuple[str, int] | None:
    """The room and shard a MEMBER item of any room sits in; None for other items."""
    match = ROOM_PARTITION.fullmatch(_s(item, "pk") or "")
    if match is None or not (_s(item, "sk") or "").startswith("MEMBER#"):
        return None
    return match.group(1), int(match.group(2) or 0)


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
        " OR (begins_with(pk, :rooms) AND (sk = :count OR sk = :meta)) OR pk = :registry"
        " OR begins_with(pk, :roomkey) OR begins_with(pk, :invite)"
    ),
    "ExpressionAttributeValues": {
        ":conn": {"S": "CONN#"},
        ":name": {"S": "NAME#"},
        ":member": {"S": "MEMBER#"},
        ":unnamed": {"S": "UNNAMED"},
        ":room": {"S": "ROOM#lobby"},
        ":count": {"S": "COUNT"},
        ":rooms": {"S": "ROOM#"},
        ":meta": {"S": "META"},
        ":registry": {"S": "ROOMS"},
        ":roomkey": {"S": "ROOMKEY#"},
        ":invite": {"S": "INVITE#"},
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
    """What is wrong with a named connection's MEMBER item: missing, misnamed, misplaced.
    A v2 connection (`proto`) has none in the lobby but the one its joinRoom made."""
    if "proto" in conn:
        return [f"v2 connection {cid} has a legacy MEMBER item"] if member is not None else []
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
    - COUNT equals the number of MEMBER items;
    - and the rooms' invariants (rooms_problems).
    """
    items = list(items)
    # v2 connections' MEMBER items (`v`): rooms_problems checks them; the lobby's COUNT counts
    # those in the lobby too.
    v2_lobby = sum(1 for i in items if "v" in i and member_shard_of(i) is not None)
    connections: dict[str, Item] = {}
    members: dict[str, Item] = {}
    claims: dict[str, Item] = {}
    listings: list[tuple[str, Item]] = []  # (peer or UNNAMED, item) naming a connection
    count: int | None = None
    duplicates: list[str] = []
    for item in (i for i in items if "v" not in i):
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
    problems += _count_problems(count, len(members) + len(duplicates) + v2_lobby)
    return problems + rooms_problems(items)


@dataclass
class _RoomsIndex:
    """The items rooms_problems reads, by kind."""

    connections: dict[str, Item] = field(default_factory=dict)
    twins: dict[tuple[str, str], Item] = field(default_factory=dict)  # (room, cid)
    members: dict[tuple[str, str], tuple[int, Item]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    metas: dict[str, Item] = field(default_factory=dict)
    room_keys: list[Item] = field(default_factory=list)
    grants: list[Item] = field(default_factory=list)
    registry: list[str] = field(default_factory=list)
    registry_count: int = 0

    def add(self, item: Item) -> None:
        pk, sk = _s(item, "pk") or "", _s(item, "sk") or ""
        where = room_member_of(item)
        if where is not None and "v" in item:
            self.members[(where[0], sk[7:])] = (where[1], item)
        elif pk.startswith("CONN#") and sk == "CONN":
            self.connections[pk[5:]] = item
        elif pk.startswith("CONN#") and sk.startswith("ROOM#"):
            self.twins[(sk[5:], pk[5:])] = item
        elif pk == "ROOMS" and sk == "COUNT":
            self.registry_count = int(item.get("rooms", {}).get("N", "0"))
        elif pk == "ROOMS" and sk != "lobby":
            self.registry.append(sk)
        elif pk.startswith("ROOM#") and sk == "COUNT" and pk != "ROOM#lobby":
            self.counts[pk[5:]] = int(item.get("members", {}).get("N", "0"))
        elif pk.startswith("ROOM#") and sk == "META":
            self.metas[pk[5:]] = item
        elif pk.startswith("ROOMKEY#"):
            self.room_keys.append(item)
        elif pk.startswith("INVITE#"):
            self.grants.append(item)


def rooms_problems(items: Iterable[Item]) -> list[str]:
    """The rooms' invariants (docs/rooms-design.md §2), empty when they hold:

    - every v2 MEMBER item has its twin CONN#<cid> / ROOM#<room> in the same shard, and
      every twin its MEMBER item; a MEMBER item carries its live connection's name;
    - a CONN item's `rooms` is the number of its memberships;
    - each room's COUNT (but the lobby's, which table_problems checks) equals its MEMBER
      items; the ROOMS counter is at least its entries (it drifts upwards as rooms expire);
    - a ROOMKEY# claim belongs to a room whose META lists that key;
    - a grant (INVITE#) names a room that was made.
    """
    index = _RoomsIndex()
    for item in items:
        index.add(item)
    connections, twins, room_members = index.connections, index.twins, index.members
    counts, metas = index.counts, index.metas
    room_keys, grants, registry = index.room_keys, index.grants, index.registry
    registry_count = index.registry_count
    problems: list[str] = []
    for (room, cid), (shard, member) in room_members.items():
        twin = twins.get((room, cid))
        if twin is None:
            problems.append(f"MEMBER item of {cid} in {room!r} has no CONN#/ROOM# twin")
        elif int(twin.get("shard", {}).get("N", "0")) != shard:
            problems.append(f"{cid}'s membership of {room!r} records another shard")
        conn = connections.get(cid)
        if conn is not None and _s(conn, "name") != _s(member, "name"):
            problems.append(f"MEMBER item of {cid} in {room!r} says {_s(member, 'name')!r}")
    problems += [
        f"membership of {cid} in {room!r} has no MEMBER item"
        for room, cid in twins
        if (room, cid) not in room_members
    ]
    for cid, conn in connections.items():
        recorded = int(conn.get("rooms", {}).get("N", "0"))
        actual = sum(1 for _, holder in twins if holder == cid)
        if recorded != actual:
            problems.append(f"connection {cid} says it is in {recorded} rooms, not {actual}")
    for room in {room for room, _ in room_members} | set(counts):
        if room == "lobby":
            continue
        actual = sum(1 for r, _ in room_members if r == room)
        if counts.get(room, 0) != actual:
            problems.append(f"COUNT of {room!r} says {counts.get(room)}, there are {actual}")
    if registry_count < len(registry):
        problems.append(f"ROOMS counts {registry_count} rooms, it lists {len(registry)}")
    for claim in room_keys:
        meta = metas.get(_s(claim, "room") or "")
        key = (_s(claim, "pk") or "").removeprefix("ROOMKEY#")
        if meta is None or key not in [k["S"] for k in meta.get("keys", {}).get("L", [])]:
            problems.append(f"ROOMKEY#{key} claims for {_s(claim, 'room')!r}, not its room")
    problems += [
        f"{_s(grant, 'pk')} grants {_s(grant, 'sk')}, a room never made"
        for grant in grants
        if (_s(grant, "sk") or "").removeprefix("ROOM#") not in metas
    ]
    return problems


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
