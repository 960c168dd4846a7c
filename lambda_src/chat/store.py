"""DynamoDB adapter: connections, name claims, room membership and rate limits in one table.

The table's items, its member partitions and its reads (every read but the history's is
strongly consistent, none trusts an expired item, every change to several items is one
transaction) are described in docs/architecture.md, "Data model (one table)".
"""

from __future__ import annotations

import json
import math
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from chat import aws_errors
from chat.ports import (
    DELETE,
    DIRECT,
    LOBBY,
    MSG,
    PRIVATE,
    PUBLIC,
    UNREAD_CAP,
    Admission,
    ConcurrentUpdateError,
    Connection,
    EditWindowClosedError,
    EventSeq,
    Frame,
    Invite,
    Joined,
    ListedRoom,
    Member,
    Membership,
    NameOwnedError,
    NameTakenError,
    Newcomer,
    NotInRoomError,
    NotYoursError,
    PeerConnection,
    ReadState,
    Receipt,
    Rewrite,
    RoomExistsError,
    RoomFullError,
    RoomLimitError,
    RoomLimits,
    RoomMeta,
    RoomNotFoundError,
    RoomRequest,
    Sent,
    TokenBucket,
    TooManyRoomsError,
    UnknownMessageError,
)

ROOM = LOBBY
HISTORY_PARTITION = f"HIST#{ROOM}"
REGISTRY_PARTITION = "ROOMS"
# A join, leave or creation whose transaction lost a race is tried again this many times.
ROOM_ATTEMPTS = 4
UNNAMED_PARTITION = "UNNAMED"
# A peer's shared buckets are forgotten after a day without a frame.
PEER_LIMITS_TTL_SECONDS = 86400
# Sign-in: an account keeps its name's keys this long after it last took the name.
OWNERSHIP_SECONDS = 400 * 86400
# History is read in pages of this many items, so a byte bound stops the read early.
HISTORY_PAGE = 25
ADMIT_ATTEMPTS = 3
REMOVE_ATTEMPTS = 5
MAX_MEMBER_PARTITIONS = 16
Item = dict[str, Any]


def connection_key(connection_id: str) -> Item:
    return {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": "CONN"}}


def name_key(key: str) -> Item:
    return {"pk": {"S": f"NAME#{key}"}, "sk": {"S": "NAME"}}


def member_shard(connection_id: str, partitions: int) -> int:
    """The shard a joining connection's MEMBER item goes to, of `partitions` (stable)."""
    return zlib.crc32(connection_id.encode()) % partitions


def member_partition(shard: int, room: str = ROOM) -> str:
    """The partition key of a room's member shard `shard`: shard 0 is the room's own
    partition (`ROOM#<room>`), shard i `ROOM#<room>#<i>`."""
    return f"ROOM#{room}" if shard == 0 else f"ROOM#{room}#{shard}"


def member_key(connection_id: str, shard: int = 0, room: str = ROOM) -> Item:
    return {"pk": {"S": member_partition(shard, room)}, "sk": {"S": f"MEMBER#{connection_id}"}}


def recorded_shard(connection_item: Item) -> int:
    """The shard a CONN item says its MEMBER item is in (0 when it says nothing)."""
    return int(connection_item.get("memberShard", {}).get("N", "0"))


def count_key(room: str = ROOM) -> Item:
    return {"pk": {"S": f"ROOM#{room}"}, "sk": {"S": "COUNT"}}


def seq_key(room: str = ROOM) -> Item:
    return {"pk": {"S": f"ROOM#{room}"}, "sk": {"S": "SEQ"}}


def meta_key(room: str) -> Item:
    return {"pk": {"S": f"ROOM#{room}"}, "sk": {"S": "META"}}


def history_partition(room: str = ROOM) -> str:
    return f"HIST#{room}"


def history_key(room: str, seq: int) -> Item:
    return {"pk": {"S": history_partition(room)}, "sk": {"S": message_sort_key(seq)}}


def membership_key(connection_id: str, room: str) -> Item:
    """A connection's membership of a room, in the connection's partition (v2 only)."""
    return {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": f"ROOM#{room}"}}


def room_name_key(key: str) -> Item:
    """A room's claim on one of its name's keys (`ROOMKEY#<k>`)."""
    return {"pk": {"S": f"ROOMKEY#{key}"}, "sk": {"S": "ROOMKEY"}}


def registry_key(room: str) -> Item:
    return {"pk": {"S": REGISTRY_PARTITION}, "sk": {"S": room}}


def registry_count_key() -> Item:
    return {"pk": {"S": REGISTRY_PARTITION}, "sk": {"S": "COUNT"}}


def invite_key(identity: str, room: str) -> Item:
    return {"pk": {"S": f"INVITE#{identity}"}, "sk": {"S": f"ROOM#{room}"}}


def read_key(identity: str, room: str) -> Item:
    return {"pk": {"S": f"READ#{identity}"}, "sk": {"S": f"ROOM#{room}"}}


def message_sort_key(seq: int) -> str:
    return f"MSG#{seq:012d}"


def peer_connection_key(peer: str, connection_id: str) -> Item:
    return {"pk": {"S": f"PEER#{peer}"}, "sk": {"S": f"CONN#{connection_id}"}}


def peer_limits_key(peer: str) -> Item:
    return {"pk": {"S": f"PEER#{peer}"}, "sk": {"S": "LIMITS"}}


def unnamed_key(connected_at_ms: int, connection_id: str) -> Item:
    return {"pk": {"S": UNNAMED_PARTITION}, "sk": {"S": f"{connected_at_ms:013d}#{connection_id}"}}


def owner_key(key: str) -> Item:
    return {"pk": {"S": f"OWNER#{key}"}, "sk": {"S": "OWNER"}}


def sent_key(sender_key: str, client_id: str) -> Item:
    return {"pk": {"S": f"SENT#{sender_key}#{client_id}"}, "sk": {"S": "SENT"}}


def _owned(key: Item, connection_id: str, name: str, expires_at: int, **extra: Any) -> Item:
    """An item a connection owns because of its name (a claim or its membership)."""
    return {
        **key,
        "connectionId": {"S": connection_id},
        "name": {"S": name},
        "ttl": {"N": str(expires_at)},
        **extra,
    }


def _keys_attribute(keys: Sequence[str]) -> Item:
    return {"L": [{"S": key} for key in keys]}


def _connection(item: Item) -> Connection:
    return Connection(
        connection_id=item["connectionId"]["S"],
        name=item.get("name", {}).get("S"),
        expires_at=int(item["ttl"]["N"]),
        name_keys=tuple(k["S"] for k in item.get("nameKeys", {}).get("L", [])),
        bound_name=item.get("boundName", {}).get("S"),
        peers=tuple(k["S"] for k in item.get("peers", {}).get("L", [])),
        sender_key=item.get("senderKey", {}).get("S"),
        subject=item.get("subject", {}).get("S"),
        connected_at_ms=int(item.get("connectedAt", {}).get("N", "0")),
        protocol=int(item.get("proto", {}).get("N", "1")),
        rooms=int(item.get("rooms", {}).get("N", "0")),
        groups=tuple(g["S"] for g in item.get("groups", {}).get("L", [])),
    )


def _room_meta(item: Item) -> RoomMeta:
    return RoomMeta(
        key=item["pk"]["S"].removeprefix("ROOM#"),
        name=item["name"]["S"],
        kind=item["kind"]["S"],
        creator=item.get("creator", {}).get("S", ""),
        created_at=int(item.get("createdAt", {}).get("N", "0")),
        group=item.get("group", {}).get("S"),
        parties=frozenset(item.get("parties", {}).get("SS", [])),
        names=tuple(n["S"] for n in item.get("names", {}).get("L", [])),
        expires_at=int(item.get("ttl", {}).get("N", "0")),
    )


def _read_state(item: Item) -> ReadState:
    return ReadState(
        room=item["sk"]["S"].removeprefix("ROOM#"),
        seq=int(item["seq"]["N"]),
        room_name=item.get("name", {}).get("S", ""),
        kind=item.get("kind", {}).get("S", PUBLIC),
        expires_at=int(item["ttl"]["N"]),
    )


def _invite(item: Item) -> Invite:
    return Invite(
        room=item["sk"]["S"].removeprefix("ROOM#"),
        room_name=item.get("name", {}).get("S", ""),
        sender=item.get("from", {}).get("S", ""),
        at=int(item.get("at", {}).get("N", "0")),
        expires_at=int(item["ttl"]["N"]),
    )


def _membership(item: Item) -> Membership:
    return Membership(
        room=item["room"]["S"],
        room_name=item.get("roomName", {}).get("S", ""),
        shard=int(item.get("shard", {}).get("N", "0")),
        joined_at=int(item.get("joinedAt", {}).get("N", "0")),
    )


def _json(frame: Frame) -> Item:
    return {"S": json.dumps(frame, ensure_ascii=False, separators=(",", ":"))}


def _kind(item: Item) -> str:
    """A history item's kind: MSG, EDIT or DELETE (items written before rooms: MSG)."""
    return str(item.get("kind", {}).get("S", MSG))


class _LostRaceError(Exception):
    """A room transaction lost a race the caller resolves by reading again."""


class DynamoChatStore:
    """ChatStore on a DynamoDB table with the layout above."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        page_size: int | None = None,
        clock: Callable[[], float] = time.time,
        member_partitions: int = 1,
    ) -> None:
        if not 1 <= member_partitions <= MAX_MEMBER_PARTITIONS:
            raise ValueError(f"member_partitions must be between 1 and {MAX_MEMBER_PARTITIONS}")
        self._db = client
        self._table = table_name
        self._page_size = page_size
        self._clock = clock
        self._partitions = member_partitions

    @property
    def member_partitions(self) -> int:
        return self._partitions

    def _live(self, item: Item | None) -> bool:
        return bool(item) and int(item["ttl"]["N"]) > self._clock()  # type: ignore[index]

    def _alive(self, item: Item | None) -> bool:
        """Like _live, for items that may have no TTL (the lobby's, which never expire)."""
        return bool(item) and ("ttl" not in item or self._live(item))  # type: ignore[operator]

    def _get(self, key: Item, *, consistent: bool = True) -> Item | None:
        item: Item | None = self._db.get_item(
            TableName=self._table, Key=key, ConsistentRead=consistent
        ).get("Item")
        return item

    # --- connections --------------------------------------------------------------------

    def add_connection(
        self, connection_id: str, expires_at: int, bound_name: str | None = None
    ) -> None:
        item: Item = {
            **connection_key(connection_id),
            "connectionId": {"S": connection_id},
            "ttl": {"N": str(expires_at)},
        }
        if bound_name is not None:
            item["boundName"] = {"S": bound_name}
        self._db.put_item(TableName=self._table, Item=item)

    def get_connection(self, connection_id: str) -> Connection | None:
        item = self._get(connection_key(connection_id))
        return _connection(item) if item is not None and self._live(item) else None

    def open_connection(self, newcomer: Newcomer) -> None:
        cid = newcomer.connection_id
        item: Item = {
            **connection_key(cid),
            "connectionId": {"S": cid},
            "ttl": {"N": str(newcomer.expires_at)},
            "connectedAt": {"N": str(newcomer.connected_at_ms)},
        }
        if newcomer.bound_name is not None:
            item["boundName"] = {"S": newcomer.bound_name}
        if newcomer.subject is not None:
            item["subject"] = {"S": newcomer.subject}
        if newcomer.peers:
            item["peers"] = _keys_attribute(newcomer.peers)
        if newcomer.groups:
            item["groups"] = _keys_attribute(newcomer.groups)
        owned = {"connectionId": {"S": cid}, "ttl": {"N": str(newcomer.expires_at)}}
        puts = [item, {**unnamed_key(newcomer.connected_at_ms, cid), **owned}]
        puts += [{**peer_connection_key(peer, cid), **owned} for peer in newcomer.peers]
        self._db.transact_write_items(
            TransactItems=[{"Put": {"TableName": self._table, "Item": put}} for put in puts]
        )

    def peer_connections(self, peer: str) -> list[PeerConnection]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :peer AND begins_with(sk, :conn)",
            "ExpressionAttributeValues": {":peer": {"S": f"PEER#{peer}"}, ":conn": {"S": "CONN#"}},
            "ConsistentRead": True,
        }
        found: list[PeerConnection] = []
        while True:
            page = self._db.query(**request)
            found += [
                PeerConnection(item["connectionId"]["S"], "named" in item)
                for item in page.get("Items", [])
                if self._live(item)
            ]
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def stale_unnamed(self, connected_before_ms: int, limit: int) -> list[str]:
        page = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :unnamed AND sk < :before",
            ExpressionAttributeValues={
                ":unnamed": {"S": UNNAMED_PARTITION},
                ":before": {"S": f"{connected_before_ms:013d}"},
            },
            Limit=limit,
        )
        taken: list[str] = []
        for item in page.get("Items", []):
            try:  # whoever deletes the entry closes the connection; nobody else
                self._db.delete_item(
                    TableName=self._table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    ConditionExpression="attribute_exists(pk)",
                )
            except ClientError as error:
                if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                    raise
                continue
            if self._live(item):
                taken.append(item["connectionId"]["S"])
        return taken

    def admit(self, connection_id: str, bucket: str, limit: TokenBucket) -> Admission:
        key = connection_key(connection_id)
        item = self._get(key)
        for _ in range(ADMIT_ATTEMPTS):
            if item is None or not self._live(item):
                return Admission(connection=None, allowed=True)
            outcome = self._spend(key, item, bucket, limit, strikes=True)
            if outcome is None:
                item = self._get(key)
                continue
            winner, admission = outcome
            if winner is not None:  # lost a race: try again on the winner's values
                item = winner
                continue
            return Admission(_connection(item), *admission)
        # Frames of one connection racing this hard for its bucket are a flood.
        connection = _connection(item) if item is not None else None
        return Admission(connection, allowed=False, retry_after_ms=1000, strikes=0)

    def take(self, peer: str, bucket: str, limit: TokenBucket) -> Admission:
        key = peer_limits_key(peer)
        item = self._get(key)
        for _ in range(ADMIT_ATTEMPTS):
            live = item if item is not None and self._live(item) else None
            outcome = self._spend(key, live, bucket, limit, strikes=False, version_of=item)
            if outcome is None:
                item = self._get(key)
                continue
            winner, admission = outcome
            if winner is not None:
                item = winner
                continue
            return Admission(None, *admission)
        return Admission(None, allowed=False, retry_after_ms=1000)

    def _spend(
        self,
        key: Item,
        item: Item | None,
        bucket: str,
        limit: TokenBucket,
        *,
        strikes: bool,
        version_of: Item | None = None,
    ) -> tuple[Item | None, tuple[bool, int, int]] | None:
        """Take a token from `bucket` on `item` in one write conditioned on its version.

        Returns (None, (allowed, retry_after_ms, strikes)), or (the winner's item, ...)
        when another frame wrote first, or None when the winner's values are unknown.
        `item` None: the bucket starts full (a peer's first frame, or its item expired);
        `version_of` is the item as read (expired or not), whose version the write needs.
        """
        now_ms = int(self._clock() * 1000)
        tokens_attr, at_attr = f"{bucket}Tokens", f"{bucket}At"
        current = item or {}
        tokens = float(current[tokens_attr]["N"]) if tokens_attr in current else limit.capacity
        at_ms = int(current[at_attr]["N"]) if at_attr in current else now_ms
        tokens = min(limit.capacity, tokens + max(0, now_ms - at_ms) / 1000 * limit.rate_per_second)
        allowed = tokens >= 1
        count = int(current.get("strikes", {}).get("N", "0"))
        # Strikes count refusals until the client pauses long enough to refill its
        # bucket, so a steady flood that slips a frame through now and then adds up.
        count = 0 if tokens >= limit.capacity else count + (0 if allowed else 1)
        if allowed:
            tokens -= 1
        versioned = version_of if version_of is not None else item
        version = int((versioned or {}).get("rv", {}).get("N", "0"))
        update = "SET #tokens = :tokens, #at = :at, rv = :next"
        values: Item = {
            ":tokens": {"N": f"{tokens:.4f}"},
            ":at": {"N": str(now_ms)},
            ":version": {"N": str(version)},
            ":next": {"N": str(version + 1)},
        }
        names = {"#tokens": tokens_attr, "#at": at_attr}
        if strikes:
            update += ", strikes = :strikes"
            values[":strikes"] = {"N": str(count)}
            exists = "attribute_exists(pk) AND "
        else:  # a peer's item: created by its first frame, kept for a day after its last
            update += ", #ttl = :ttl"
            names["#ttl"] = "ttl"
            values[":ttl"] = {"N": str(now_ms // 1000 + PEER_LIMITS_TTL_SECONDS)}
            exists = "" if version == 0 else "attribute_exists(pk) AND "
        condition = (
            f"{exists}(rv = :version OR attribute_not_exists(rv))"
            if version == 0
            else f"{exists}rv = :version"
        )
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                raise
            winner: Item | None = error.response.get("Item")
            if winner is None:
                return None
            return winner, (False, 0, 0)
        retry_after_ms = 0 if allowed else math.ceil((1 - tokens) / limit.rate_per_second * 1000)
        return None, (allowed, retry_after_ms, count if strikes else 0)

    # --- names and membership -----------------------------------------------------------

    def claim_name(
        self,
        connection: Connection,
        name: str,
        keys: Sequence[str],
        *,
        max_members: int,
        sender_key: str | None = None,
        owner: str | None = None,
        protocol: int = 1,
    ) -> None:
        # A joiner's MEMBER item goes to its shard under today's S. A member keeps the
        # shard it joined with: a rename first assumes that is today's too (the condition
        # on the CONN item checks it) and, if S changed since, repeats on the recorded one.
        # A v2 connection has no lobby MEMBER item of its own: its first name joins no
        # room, and a rename renames the MEMBER item of each room it is in.
        shard = member_shard(connection.connection_id, self._partitions)
        v2 = protocol == 2 if connection.name is None else connection.protocol == 2
        rooms = self.memberships(connection.connection_id) if v2 else None
        for _ in range(2):
            actions, roles = self._claim(
                connection,
                name,
                keys,
                shard,
                max_members,
                sender_key=sender_key,
                owner=owner,
                rooms=rooms,
            )
            try:
                self._db.transact_write_items(TransactItems=actions)
                return
            except ClientError as error:
                recorded = self._recorded_elsewhere(error, connection, shard)
                if recorded is None:
                    self._claim_failed(error, connection, roles, max_members)
                shard = recorded
        raise ConcurrentUpdateError

    def _claim(
        self,
        connection: Connection,
        name: str,
        keys: Sequence[str],
        shard: int,
        max_members: int,
        *,
        sender_key: str | None,
        owner: str | None,
        rooms: list[Membership] | None = None,
    ) -> tuple[list[Item], list[tuple[str, str]]]:
        """The claim's transaction, and each action's role (what its failure means).

        `rooms` None: a v1 connection (its MEMBER item is the lobby's legacy one); else a
        v2 connection and the rooms it is in."""
        cid = connection.connection_id
        joining = connection.name is None
        now = int(self._clock())
        update, unchanged, values = self._connection_change(
            connection, name, keys, shard, sender_key=sender_key, rooms=rooms
        )
        actions: list[Item] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": connection_key(cid),
                    "UpdateExpression": update,
                    "ConditionExpression": unchanged,
                    "ExpressionAttributeNames": {"#name": "name"},
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        roles: list[tuple[str, str]] = [("connection", "")]
        if rooms is None:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _owned(
                            member_key(cid, shard),
                            cid,
                            name,
                            connection.expires_at,
                            nameKeys=_keys_attribute(keys),
                        ),
                    }
                }
            )
            roles.append(("member", ""))
        for room in rooms or ():  # a v2 rename: the MEMBER item of each of its rooms
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": member_key(cid, room.shard, room.room),
                        "UpdateExpression": "SET #name = :name, nameKeys = :keys",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#name": "name"},
                        "ExpressionAttributeValues": {
                            ":name": {"S": name},
                            ":keys": _keys_attribute(keys),
                        },
                    }
                }
            )
            roles.append(("member", room.room))
        for key in keys:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _owned(name_key(key), cid, name, connection.expires_at),
                        # Free, expired, or already ours (a change of case only).
                        "ConditionExpression": (
                            "attribute_not_exists(pk) OR #ttl <= :now OR connectionId = :cid"
                        ),
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {
                            ":now": {"N": str(now)},
                            ":cid": {"S": cid},
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
            roles.append(("claim", key))
        for key in connection.name_keys:
            if key not in keys:
                actions.append(self._release(key, cid))
                roles.append(("release", key))
        if joining and rooms is None:
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": count_key(),
                        "UpdateExpression": "ADD members :one",
                        "ConditionExpression": "attribute_not_exists(members) OR members < :max",
                        "ExpressionAttributeValues": {
                            ":one": {"N": "1"},
                            ":max": {"N": str(max_members)},
                        },
                    }
                }
            )
            roles.append(("count", ""))
        if joining:
            for peer in connection.peers:  # counted among the peer's members from now on
                actions.append(
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                **peer_connection_key(peer, cid),
                                "connectionId": {"S": cid},
                                "ttl": {"N": str(connection.expires_at)},
                                "named": {"BOOL": True},
                            },
                        }
                    }
                )
                roles.append(("peer", peer))
            if connection.connected_at_ms:
                actions.append(
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": unnamed_key(connection.connected_at_ms, cid),
                        }
                    }
                )
                roles.append(("unnamed", ""))
        if owner is not None:
            for key in keys:
                actions.append(
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                **owner_key(key),
                                "sub": {"S": owner},
                                "name": {"S": name},
                                "ttl": {"N": str(now + OWNERSHIP_SECONDS)},
                            },
                            # Nobody's, or this account's (a lapsed ownership is nobody's).
                            "ConditionExpression": (
                                "attribute_not_exists(pk) OR #sub = :sub OR #ttl <= :now"
                            ),
                            "ExpressionAttributeNames": {"#sub": "sub", "#ttl": "ttl"},
                            "ExpressionAttributeValues": {
                                ":sub": {"S": owner},
                                ":now": {"N": str(now)},
                            },
                        }
                    }
                )
                roles.append(("owner", key))
        return actions, roles

    @staticmethod
    def _connection_change(
        connection: Connection,
        name: str,
        keys: Sequence[str],
        shard: int,
        *,
        sender_key: str | None,
        rooms: list[Membership] | None,
    ) -> tuple[str, str, Item]:
        """The claim's update of the CONN item: expression, condition, values."""
        values: Item = {":name": {"S": name}, ":keys": _keys_attribute(keys)}
        update = "SET #name = :name, nameKeys = :keys"
        if connection.name is None:
            unchanged = "attribute_exists(pk) AND attribute_not_exists(#name)"
            if rooms is None:
                update += ", memberShard = :shard"
                values[":shard"] = {"N": str(shard)}
            else:  # a v2 connection: `proto`, and no room yet
                update += ", proto = :proto"
                values[":proto"] = {"N": "2"}
            if sender_key is not None:
                update += ", senderKey = :sender"
                values[":sender"] = {"S": sender_key}
            return update, unchanged, values
        values[":previous"] = {"S": connection.name}
        if rooms is not None:  # unchanged, and in the same rooms (a join changes `rooms`)
            values[":rooms"] = {"N": str(len(rooms))}
            return (
                update,
                "attribute_exists(pk) AND #name = :previous"
                " AND (attribute_not_exists(rooms) OR rooms = :rooms)",
                values,
            )
        values[":shard"] = {"N": str(shard)}
        unchanged = "attribute_exists(pk) AND #name = :previous AND " + (
            "(attribute_not_exists(memberShard) OR memberShard = :shard)"
            if shard == 0
            else "memberShard = :shard"
        )
        return update, unchanged, values

    def _recorded_elsewhere(
        self, error: ClientError, connection: Connection, shard: int
    ) -> int | None:
        """The shard a renaming member joined with, when its claim failed only because that
        is not `shard` (S changed since it joined); None for any other failure."""
        if (
            connection.name is None
            or connection.protocol != 1
            or aws_errors.error_code(error) != aws_errors.TRANSACTION_CANCELED
        ):
            return None
        reasons = aws_errors.cancellation_reasons(error)
        if reasons[:1] != ["ConditionalCheckFailed"]:
            return None
        raw = error.response.get("CancellationReasons") or [{}]
        item = raw[0].get("Item") or self._get(connection_key(connection.connection_id))
        if item is None or item.get("name", {}).get("S") != connection.name:
            return None  # removed or renamed meanwhile
        recorded = recorded_shard(item)
        return recorded if recorded != shard else None

    def _claim_failed(
        self,
        error: ClientError,
        connection: Connection,
        roles: Sequence[tuple[str, str]],
        max_members: int,
    ) -> NoReturn:
        """Raise what a failed claim transaction means (`roles`: see _claim)."""
        cid = connection.connection_id
        code = aws_errors.error_code(error)
        if code == aws_errors.TRANSACTION_CONFLICT:
            raise ConcurrentUpdateError from error
        if code != aws_errors.TRANSACTION_CANCELED:
            raise error
        reasons = aws_errors.cancellation_reasons(error)
        if "TransactionConflict" in reasons or (reasons and reasons[0] != "None"):
            raise ConcurrentUpdateError from error
        raw_reasons = error.response.get("CancellationReasons") or []
        failed = [
            (role, key)
            for (role, key), reason in zip(roles, reasons, strict=False)
            if reason == "ConditionalCheckFailed"
        ]
        for index, (role, key) in enumerate(roles):
            if (role, key) not in failed or role != "claim":
                continue
            holder = raw_reasons[index].get("Item") or self._get(name_key(key))
            if self._live(holder) and holder["connectionId"]["S"] != cid:  # type: ignore[index]
                raise NameTakenError(
                    holder["connectionId"]["S"],  # type: ignore[index]
                    holder["name"]["S"],  # type: ignore[index]
                    key,
                ) from error
        if any(role == "owner" for role, _ in failed):
            raise NameOwnedError from error
        if ("count", "") in failed:  # a join: was the room's counter at its maximum?
            self._recount(max_members)
        raise ConcurrentUpdateError from error

    def _recount(self, max_members: int, room: str = ROOM) -> None:
        """The counter said full: count the live members; correct it, or confirm the room is full.

        The counter only drifts upwards (members whose items expired without a
        $disconnect), so a full room is always confirmed from the members themselves.
        """
        actual = len(self.list_members(room))
        if actual >= max_members:
            raise RoomFullError
        if room == ROOM:
            self._db.put_item(
                TableName=self._table, Item={**count_key(), "members": {"N": str(actual)}}
            )
            return
        self._db.update_item(  # keeps the counter's TTL
            TableName=self._table,
            Key=count_key(room),
            UpdateExpression="SET members = :n",
            ExpressionAttributeValues={":n": {"N": str(actual)}},
        )

    def _release(self, key: str, connection_id: str) -> Item:
        """A transaction action that deletes the claim on `key` unless another holds it."""
        return {
            "Delete": {
                "TableName": self._table,
                "Key": name_key(key),
                "ConditionExpression": "attribute_not_exists(pk) OR connectionId = :cid",
                "ExpressionAttributeValues": {":cid": {"S": connection_id}},
            }
        }

    def release_claim(self, key: str, holder_connection_id: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key=name_key(key),
                ConditionExpression="connectionId = :cid",
                ExpressionAttributeValues={":cid": {"S": holder_connection_id}},
            )
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                raise

    def find_member(self, key: str) -> Member | None:
        item = self._get(name_key(key))
        if item is None or not self._live(item):
            return None
        return Member(item["connectionId"]["S"], item["name"]["S"])

    def list_members(self, room: str = ROOM) -> list[Member]:
        """The live members of every member partition, in connection id order (the order
        one partition's query returns them in); S partitions are queried in parallel."""
        if self._partitions == 1:
            return self._list_shard(0, room)
        with ThreadPoolExecutor(max_workers=self._partitions) as pool:
            shards = list(pool.map(lambda s: self._list_shard(s, room), range(self._partitions)))
        return sorted((m for shard in shards for m in shard), key=lambda m: m.connection_id)

    def _list_shard(self, shard: int, room: str = ROOM) -> list[Member]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND begins_with(sk, :member)",
            "ExpressionAttributeValues": {
                ":room": {"S": member_partition(shard, room)},
                ":member": {"S": "MEMBER#"},
            },
            "ConsistentRead": True,
        }
        if self._page_size:
            request["Limit"] = self._page_size
        members: list[Member] = []
        while True:
            page = self._db.query(**request)
            members.extend(
                Member(
                    item["connectionId"]["S"],
                    item["name"]["S"],
                    protocol=int(item.get("v", {}).get("N", "1")),
                )
                for item in page.get("Items", [])
                if self._live(item)
            )
            last_key = page.get("LastEvaluatedKey")
            if not last_key:
                return members
            request["ExclusiveStartKey"] = last_key

    def remove_connection(self, connection_id: str) -> Member | None:
        held_by_others: set[str] = set()  # claim keys that expired and were taken over
        member_missing = False
        for _ in range(REMOVE_ATTEMPTS):
            item = self._get(connection_key(connection_id))
            if item is None:
                return self._remove_orphaned_membership(connection_id)
            connection = _connection(item)
            named = connection.name is not None
            delete_connection: Item = {
                "TableName": self._table,
                "Key": connection_key(connection_id),
                # Unchanged since it was read; otherwise read it again.
                "ConditionExpression": (
                    "attribute_exists(pk) AND #name = :name"
                    if named
                    else "attribute_exists(pk) AND attribute_not_exists(#name)"
                ),
                "ExpressionAttributeNames": {"#name": "name"},
            }
            if named:
                delete_connection["ExpressionAttributeValues"] = {":name": {"S": connection.name}}
            actions: list[Item] = [{"Delete": delete_connection}]
            # A v2 connection's rooms are left one by one afterwards (memberships, leave_room).
            leaves_room = named and not member_missing and connection.protocol == 1
            if leaves_room:
                actions.append(
                    {
                        "Delete": {
                            "TableName": self._table,
                            "Key": member_key(connection_id, recorded_shard(item)),
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    }
                )
                actions.append(self._count_down())
            releases = [k for k in connection.name_keys if k not in held_by_others]
            first_release = len(actions)
            actions += [self._release(key, connection_id) for key in releases]
            # Last, unconditional: it is no longer one of its peers' connections, nor unnamed.
            actions += [
                {"Delete": {"TableName": self._table, "Key": key}}
                for key in self._bookkeeping(connection, named)
            ]
            try:
                self._db.transact_write_items(TransactItems=actions)
            except ClientError as error:
                if aws_errors.error_code(error) not in (
                    aws_errors.TRANSACTION_CANCELED,
                    aws_errors.TRANSACTION_CONFLICT,
                ):
                    raise
                reasons = aws_errors.cancellation_reasons(error)
                if not reasons or reasons[0] != "None":
                    continue  # the connection changed, or a conflict: read it again
                if leaves_room and reasons[1] == "ConditionalCheckFailed":
                    member_missing = True  # never expected; do not count the room down
                for index, key in enumerate(releases, start=first_release):
                    if index < len(reasons) and reasons[index] == "ConditionalCheckFailed":
                        held_by_others.add(key)  # leave it to its new owner
                continue
            return self._member_if_live(connection, item) if leaves_room else None
        raise ConcurrentUpdateError

    @staticmethod
    def _bookkeeping(connection: Connection, named: bool) -> list[Item]:
        """The items that list a connection under its peers, and among the unnamed ones."""
        keys = [peer_connection_key(peer, connection.connection_id) for peer in connection.peers]
        if not named and connection.connected_at_ms:
            keys.append(unnamed_key(connection.connected_at_ms, connection.connection_id))
        return keys

    def _remove_orphaned_membership(self, connection_id: str) -> Member | None:
        """No connection item: remove a membership left without one (never expected).

        Without the CONN item its recorded shard is unknown: the shard it would join under
        today's S, then shard 0 (where every member was before there were shards).
        """
        membership = None
        for shard in dict.fromkeys((member_shard(connection_id, self._partitions), 0)):
            try:  # a v2 connection's lobby MEMBER item (`v`) is left to its leave_room
                membership = self._db.delete_item(
                    TableName=self._table,
                    Key=member_key(connection_id, shard),
                    ConditionExpression="attribute_not_exists(v)",
                    ReturnValues="ALL_OLD",
                ).get("Attributes")
            except ClientError as error:
                if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                    raise
                continue
            if membership:
                break
        if not membership:
            return None
        self._db.update_item(**self._count_down()["Update"])
        orphan = _connection(membership)
        for key in orphan.name_keys:
            self.release_claim(key, connection_id)
        return Member(connection_id, orphan.name or "") if self._live(membership) else None

    def _count_down(self) -> Item:
        return {
            "Update": {
                "TableName": self._table,
                "Key": count_key(),
                "UpdateExpression": "ADD members :minus",
                "ExpressionAttributeValues": {":minus": {"N": "-1"}},
            }
        }

    def _member_if_live(self, connection: Connection, item: Item) -> Member | None:
        if connection.name is None or not self._live(item):
            return None
        return Member(connection.connection_id, connection.name)

    # --- messages: sequence numbers, de-duplication, history ------------------------------

    def next_seq(self, *, public: bool) -> tuple[int, int]:
        taken = self.next_event(ROOM, MSG if public else None)
        return taken.seq, taken.prev_public

    def next_event(self, room: str, kind: str | None) -> EventSeq:
        advance = "seq = if_not_exists(seq, :zero) + :one"
        if kind == MSG:  # the previous public message is what lastPublic held before this one
            advance += ", lastPublic = if_not_exists(seq, :zero) + :one"
        if kind is not None:
            advance += ", lastEvent = if_not_exists(seq, :zero) + :one"
        old = (
            self._db.update_item(
                TableName=self._table,
                Key=seq_key(room),
                UpdateExpression=f"SET {advance}",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
            or {}
        )
        last_public = int(old.get("lastPublic", {}).get("N", "0"))
        # A SEQ item written before rooms has no lastEvent: its events were its messages.
        last_event = int(old.get("lastEvent", {}).get("N", str(last_public)))
        return EventSeq(int(old.get("seq", {}).get("N", "0")) + 1, last_public, last_event)

    def sent_before(self, sender_key: str, client_id: str) -> Sent | None:
        item = self._get(sent_key(sender_key, client_id))
        if item is None or not self._live(item):
            return None
        return Sent(json.loads(item["ack"]["S"]), delivered="pending" not in item)

    def mark_delivered(self, sender_key: str, client_id: str) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=sent_key(sender_key, client_id),
                UpdateExpression="REMOVE pending",
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                raise

    def record_message(self, receipt: Receipt) -> Sent | None:
        actions: list[Item] = []
        if receipt.client_id is not None:
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            **sent_key(receipt.sender_key, receipt.client_id),
                            "ack": {
                                "S": json.dumps(
                                    receipt.ack, ensure_ascii=False, separators=(",", ":")
                                )
                            },
                            "pending": {"BOOL": True},
                            "ttl": {"N": str(receipt.dedup_expires_at)},
                        },
                        "ConditionExpression": "attribute_not_exists(pk) OR #ttl <= :now",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {":now": {"N": str(int(self._clock()))}},
                    }
                }
            )
        if receipt.public is not None:
            entry: Item = {
                **history_key(receipt.room, receipt.seq),
                "frame": _json(receipt.public),
                "prev": {"N": str(receipt.prev)},
                "ttl": {"N": str(receipt.history_expires_at)},
            }
            if receipt.prev_event is not None:
                entry["prevEvent"] = {"N": str(receipt.prev_event)}
            if receipt.message_id is not None:  # what an edit or delete checks
                entry["by"] = {"S": receipt.sender_key}
                entry["mid"] = {"S": receipt.message_id}
                entry["ts"] = {"N": str(receipt.sent_at_ms)}
            actions.append({"Put": {"TableName": self._table, "Item": entry}})
        if receipt.client_id is None:
            if actions:
                self._db.put_item(**actions[0]["Put"])
            return None
        try:
            self._db.transact_write_items(TransactItems=actions)
        except ClientError as error:
            duplicate = aws_errors.error_code(error) == aws_errors.TRANSACTION_CANCELED and (
                aws_errors.cancellation_reasons(error)[:1] == ["ConditionalCheckFailed"]
            )
            if not duplicate:
                raise
            earlier = self.sent_before(receipt.sender_key, receipt.client_id)
            if earlier is None:  # it expired between the two requests: a race lost twice
                raise ConcurrentUpdateError from error
            return earlier
        return None

    def withdraw_message(self, receipt: Receipt, tombstone: Frame | None = None) -> None:
        forget: list[Item] = []
        if receipt.client_id is not None:
            key = sent_key(receipt.sender_key, receipt.client_id)
            forget.append({"Delete": {"TableName": self._table, "Key": key}})
        if receipt.public is None:
            if forget:
                self._db.delete_item(**forget[0]["Delete"])
            return
        entry = history_key(receipt.room, receipt.seq)
        prev_event = receipt.prev if receipt.prev_event is None else receipt.prev_event
        rewind = {
            "Update": {
                "TableName": self._table,
                "Key": seq_key(receipt.room),
                "UpdateExpression": "SET lastPublic = :public, lastEvent = :event",
                # Nothing took a seq in the room since: no event points at this one yet.
                "ConditionExpression": "seq = :seq",
                "ExpressionAttributeValues": {
                    ":public": {"N": str(receipt.prev)},
                    ":event": {"N": str(prev_event)},
                    ":seq": {"N": str(receipt.seq)},
                },
            }
        }
        delete = {"Delete": {"TableName": self._table, "Key": entry}}
        try:
            self._db.transact_write_items(TransactItems=[delete, rewind, *forget])
            return
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.TRANSACTION_CANCELED:
                raise
        # A later event took a seq (or the counter was busy): keep the chain, drop the text.
        if tombstone is None:
            self._db.delete_item(**delete["Delete"])
        else:
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=entry,
                    UpdateExpression="SET #frame = :frame, deleted = :true",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#frame": "frame"},
                    ExpressionAttributeValues={":frame": _json(tombstone), ":true": {"BOOL": True}},
                )
            except ClientError as error:
                if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                    raise
        if forget:
            self._db.delete_item(**forget[0]["Delete"])

    def history(
        self,
        after: int | None,
        limit: int,
        max_bytes: int,
        *,
        room: str = ROOM,
        events: bool = False,
    ) -> tuple[list[Frame], bool]:
        low = message_sort_key((after or 0) + 1)
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":room": {"S": history_partition(room)},
                ":low": {"S": low},
                ":high": {"S": "MSG#~"},
            },
            "ScanIndexForward": False,  # newest first: the most recent ones win
            "ConsistentRead": False,  # half the read units; the room's partition untouched
            "Limit": min(limit + 1, HISTORY_PAGE),
        }
        newest_first: list[Item] = []
        used = 0
        cut = False  # a message after `after` was left out (count or bytes)
        while not cut:
            page = self._db.query(**request)
            for item in page.get("Items", []):
                if not self._live(item) or (not events and _kind(item) != MSG):
                    continue
                size = len(item["frame"]["S"].encode("utf-8"))
                if len(newest_first) >= limit or used + size > max_bytes:
                    cut = True
                    break
                newest_first.append(item)
                used += size
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        kept = list(reversed(newest_first))
        frames = [json.loads(item["frame"]["S"]) for item in kept]
        if cut:
            return frames, False
        floor = after or 0
        if kept:
            first = kept[0]
            prev: Item = first["prevEvent"] if events and "prevEvent" in first else first["prev"]
            return frames, int(prev["N"]) <= floor
        seq_item = self._get(seq_key(room), consistent=False) or {}
        last_public: Item = seq_item.get("lastPublic", {"N": "0"})
        last: Item = seq_item.get("lastEvent", last_public) if events else last_public
        return frames, int(last["N"]) <= floor

    # --- rooms (protocol v2): docs/rooms-design.md §2 ---------------------------------------

    def _room_item(self, room: str) -> Item | None:
        item = self._get(meta_key(room))
        return item if self._alive(item) else None

    def room_meta(self, room: str, claim_keys: Sequence[str] = ()) -> RoomMeta | None:
        item = self._room_item(room)
        if item is not None:
            return _room_meta(item)
        if room == ROOM or ROOM in claim_keys:  # the lobby (or a look-alike) always exists
            lobby = self._room_item(ROOM) if room != ROOM else None
            return _room_meta(lobby) if lobby is not None else RoomMeta(ROOM, ROOM, PUBLIC)
        for key in claim_keys:  # a look-alike: the room holding one of the name's keys
            holder = self._get(room_name_key(key))
            if holder is not None and self._alive(holder):
                found = self._room_item(holder["room"]["S"])
                if found is not None:
                    return _room_meta(found)
        return None

    def _may_join(self, meta: RoomMeta, identity: str, groups: frozenset[str]) -> bool:
        """chat.rooms.may_join, with the invitation read from the table."""
        if meta.kind == PUBLIC:
            return True
        if meta.kind == PRIVATE:
            if meta.group is not None and meta.group in groups:
                return True
            return self._live(self._get(invite_key(identity, meta.key)))
        return identity in meta.parties

    def join_room(
        self,
        connection: Connection,
        request: RoomRequest,
        *,
        identity: str,
        groups: frozenset[str] = frozenset(),
        limits: RoomLimits,
    ) -> Joined:
        for _ in range(ROOM_ATTEMPTS):
            meta = self.room_meta(request.key, request.claim_keys)
            if meta is None and (request.kind != PUBLIC or request.key.startswith("@")):
                raise RoomNotFoundError
            if meta is not None and not self._may_join(meta, identity, groups):
                raise RoomNotFoundError
            try:
                joined = self._enter(connection, meta, request, identity, limits)
            except _LostRaceError:
                continue  # a look-alike was made, or the room expired, meanwhile: read again
            if meta is not None and meta.kind == PRIVATE and meta.group not in groups:
                self._refresh_grant(identity, meta, limits)
            return joined
        raise ConcurrentUpdateError

    def _refresh_grant(self, identity: str, meta: RoomMeta, limits: RoomLimits) -> None:
        """A join by invitation keeps the invitation for another `invite_ttl_seconds`."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=invite_key(identity, meta.key),
                UpdateExpression="SET #ttl = :ttl",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":ttl": {"N": str(int(self._clock()) + limits.invite_ttl_seconds)}
                },
            )
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                raise

    def create_room(
        self,
        connection: Connection,
        request: RoomRequest,
        *,
        identity: str,
        limits: RoomLimits,
    ) -> Joined:
        for _ in range(ROOM_ATTEMPTS):
            if self.room_meta(request.key, request.claim_keys) is not None:
                raise RoomExistsError
            try:
                return self._enter(connection, None, request, identity, limits)
            except _LostRaceError:
                continue
        raise ConcurrentUpdateError

    def _enter(
        self,
        connection: Connection,
        meta: RoomMeta | None,
        request: RoomRequest,
        identity: str,
        limits: RoomLimits,
    ) -> Joined:
        """Join `meta`'s room, or make the request's room and join it (meta None), in one
        transaction. Raises _LostRaceError when a race changed the room; retries after
        correcting a counter."""
        cid = connection.connection_id
        room = meta.key if meta is not None else request.key
        if connection.name is None:
            raise ConcurrentUpdateError
        for _ in range(ROOM_ATTEMPTS):
            # No read first: the transaction's conditions say whether the connection is
            # still what `connection` says, and whether it is a member already.
            actions, roles, made = self._join_actions(connection, meta, request, identity, limits)
            try:
                self._db.transact_write_items(TransactItems=actions)
            except ClientError as error:
                if self._join_failed(
                    error, roles, connection_id=cid, name=connection.name, room=room, limits=limits
                ):
                    return self._joined(meta or made, identity, limits, created=False, already=True)
                continue  # a counter was corrected, or a conflict: try again
            created = meta is None
            return self._joined(meta or made, identity, limits, created=created, already=False)
        raise ConcurrentUpdateError

    def _join_actions(
        self,
        connection: Connection,
        meta: RoomMeta | None,
        request: RoomRequest,
        identity: str,
        limits: RoomLimits,
    ) -> tuple[list[Item], list[str], RoomMeta]:
        """The join's transaction, each action's role, and the room as it will be."""
        cid = connection.connection_id
        now = int(self._clock())
        room = meta.key if meta is not None else request.key
        shard = member_shard(cid, self._partitions)
        expires = now + limits.room_ttl_seconds
        table = self._table
        ttl_names = {"#ttl": "ttl"}
        actions: list[Item] = [
            {
                "Put": {
                    "TableName": table,
                    "Item": _owned(
                        member_key(cid, shard, room),
                        cid,
                        connection.name or "",
                        connection.expires_at,
                        nameKeys=_keys_attribute(connection.name_keys),
                        v={"N": "2"},
                        shard={"N": str(shard)},
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        **membership_key(cid, room),
                        "room": {"S": room},
                        "roomName": {"S": meta.name if meta is not None else request.name},
                        "shard": {"N": str(shard)},
                        "joinedAt": {"N": str(now)},
                        "connectionId": {"S": cid},
                        "ttl": {"N": str(connection.expires_at)},
                    },
                }
            },
            {
                "Update": {
                    "TableName": table,
                    "Key": connection_key(cid),
                    "UpdateExpression": "ADD rooms :one",
                    "ConditionExpression": (
                        "attribute_exists(pk) AND #name = :name"
                        " AND (attribute_not_exists(rooms) OR rooms < :max)"
                    ),
                    "ExpressionAttributeNames": {"#name": "name"},
                    "ExpressionAttributeValues": {
                        ":name": {"S": connection.name or ""},
                        ":one": {"N": "1"},
                        ":max": {"N": str(limits.max_rooms_per_connection)},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ]
        roles = ["member", "membership", "connection"]
        count: Item = {
            "TableName": table,
            "Key": count_key(room),
            "UpdateExpression": "ADD members :one",
            "ConditionExpression": "attribute_not_exists(members) OR members < :max",
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":max": {"N": str(limits.max_members)},
            },
        }
        actions.append({"Update": count})
        roles.append("count")
        if meta is None:
            made = RoomMeta(
                room,
                request.name,
                request.kind,
                creator=identity,
                created_at=now,
                group=request.group,
                expires_at=expires,
            )
            count["UpdateExpression"] = "SET members = :one, #ttl = :ttl"  # a fresh count
            count["ExpressionAttributeNames"] = ttl_names
            count["ExpressionAttributeValues"] = {":one": {"N": "1"}, ":ttl": {"N": str(expires)}}
            del count["ConditionExpression"]
            creation, creation_roles = self._creation(made, request, identity, limits, now)
            return actions + creation, roles + creation_roles, made
        if room == ROOM and not meta.created_at:
            # The lobby's META, keys and registry entry are written by its first v2 join
            # (room_meta made up the lobby's: its META was not there).
            lobby, lobby_roles = self._lobby_items()
            return actions + lobby, roles + lobby_roles, meta
        if room == ROOM:
            return actions, roles, meta
        # The room must still be live; a join past half its life refreshes its items.
        check: Item = {
            "TableName": table,
            "Key": meta_key(room),
            "ConditionExpression": "attribute_exists(pk) AND #ttl > :now",
            "ExpressionAttributeNames": ttl_names,
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
        }
        if meta.expires_at - now >= limits.room_ttl_seconds // 2:
            actions.append({"ConditionCheck": check})
            roles.append("meta")
            return actions, roles, meta
        check["UpdateExpression"] = "SET #ttl = :ttl"
        check["ExpressionAttributeValues"][":ttl"] = {"N": str(expires)}
        actions.append({"Update": check})
        roles.append("meta")
        count["UpdateExpression"] = "ADD members :one SET #ttl = :ttl"
        count["ExpressionAttributeNames"] = ttl_names
        count["ExpressionAttributeValues"][":ttl"] = {"N": str(expires)}
        refreshed = [seq_key(room)]
        if meta.kind != DIRECT:
            refreshed.append(registry_key(room))
        meta_item = self._get(meta_key(room)) or {}
        refreshed += [room_name_key(k["S"]) for k in meta_item.get("keys", {}).get("L", [])]
        for key in refreshed:
            actions.append(
                {
                    "Update": {
                        "TableName": table,
                        "Key": key,
                        "UpdateExpression": "SET #ttl = :ttl",
                        "ExpressionAttributeNames": ttl_names,
                        "ExpressionAttributeValues": {":ttl": {"N": str(expires)}},
                    }
                }
            )
            roles.append("refresh")
        return actions, roles, replace(meta, expires_at=expires)

    def _creation(
        self,
        made: RoomMeta,
        request: RoomRequest,
        identity: str,
        limits: RoomLimits,
        now: int,
    ) -> tuple[list[Item], list[str]]:
        """A new room's items: META, SEQ (its seq kept), ROOMKEY#s, registry, creator's grant."""
        table = self._table
        ttl = {"N": str(made.expires_at)}
        meta: Item = {
            **meta_key(made.key),
            "name": {"S": made.name},
            "kind": {"S": made.kind},
            "creator": {"S": identity},
            "createdAt": {"N": str(now)},
            "keys": _keys_attribute(request.claim_keys),
            "ttl": ttl,
        }
        if made.group is not None:
            meta["group"] = {"S": made.group}
        expired = "attribute_not_exists(pk) OR #ttl <= :now"
        now_value = {":now": {"N": str(now)}}
        actions: list[Item] = [
            {
                "Put": {
                    "TableName": table,
                    "Item": meta,
                    "ConditionExpression": expired,
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": now_value,
                }
            },
            self._keep_seq(made.key, made.expires_at),
            {
                "Put": {
                    "TableName": table,
                    "Item": {
                        **registry_key(made.key),
                        "name": {"S": made.name},
                        "kind": {"S": made.kind},
                        "createdAt": {"N": str(now)},
                        "ttl": ttl,
                    },
                }
            },
            {
                "Update": {
                    "TableName": table,
                    "Key": registry_count_key(),
                    "UpdateExpression": "ADD rooms :one",
                    "ConditionExpression": "attribute_not_exists(rooms) OR rooms < :max",
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":max": {"N": str(limits.max_rooms)},
                    },
                }
            },
        ]
        roles = ["meta", "seq", "registry-entry", "registry"]
        for key in request.claim_keys:
            actions.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": {
                            **room_name_key(key),
                            "room": {"S": made.key},
                            "name": {"S": made.name},
                            "ttl": ttl,
                        },
                        "ConditionExpression": f"{expired} OR room = :room",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {**now_value, ":room": {"S": made.key}},
                    }
                }
            )
            roles.append("roomkey")
        if made.kind == PRIVATE:
            actions.append(
                {"Put": {"TableName": table, "Item": self._grant(identity, made, "", limits)}}
            )
            roles.append("grant")
        return actions, roles

    def _keep_seq(self, room: str, expires_at: int) -> Item:
        """An update that gives a new room's SEQ item its TTL and keeps the seq it had."""
        return {
            "Update": {
                "TableName": self._table,
                "Key": seq_key(room),
                "UpdateExpression": "SET #ttl = :ttl, seq = if_not_exists(seq, :zero)",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {
                    ":ttl": {"N": str(expires_at)},
                    ":zero": {"N": "0"},
                },
            }
        }

    def _lobby_items(self) -> tuple[list[Item], list[str]]:
        """The lobby's META, registry entry and name keys: no TTL, never counted."""
        now = {"N": str(int(self._clock()))}
        items: list[Item] = [
            {
                **meta_key(ROOM),
                "name": {"S": ROOM},
                "kind": {"S": PUBLIC},
                "createdAt": now,
                "keys": _keys_attribute([ROOM]),
            },
            {**registry_key(ROOM), "name": {"S": ROOM}, "kind": {"S": PUBLIC}, "createdAt": now},
        ]
        items += [
            {**room_name_key(key), "room": {"S": ROOM}, "name": {"S": ROOM}} for key in [ROOM]
        ]
        return [{"Put": {"TableName": self._table, "Item": item}} for item in items], [
            "lobby"
        ] * len(items)

    def _join_failed(
        self,
        error: ClientError,
        roles: Sequence[str],
        *,
        connection_id: str,
        name: str | None,
        room: str,
        limits: RoomLimits,
    ) -> bool:
        """What a cancelled join means: raises the refusal, or _LostRaceError; returns True when the
        connection turned out to be a member already, False to try again."""
        code = aws_errors.error_code(error)
        if code == aws_errors.TRANSACTION_CONFLICT:
            return False
        if code != aws_errors.TRANSACTION_CANCELED:
            raise error
        reasons = aws_errors.cancellation_reasons(error)
        failed = {
            role
            for role, reason in zip(roles, reasons, strict=False)
            if reason == "ConditionalCheckFailed"
        }
        if not failed:
            return False  # conflicts only
        if "connection" in failed:
            raw = error.response.get("CancellationReasons") or []
            item = raw[roles.index("connection")].get("Item") if raw else None
            item = item or self._get(connection_key(connection_id))
            current = _connection(item) if item else None
            if current is None or current.name != name:
                raise ConcurrentUpdateError from error  # gone, or renamed: read it again
        if "member" in failed:
            return True  # a member already (a join of a room one is in changes nothing)
        if "connection" in failed:
            if current is not None and current.rooms >= limits.max_rooms_per_connection:
                raise TooManyRoomsError from error
            return False
        if "meta" in failed or "roomkey" in failed:
            raise _LostRaceError from error
        if "count" in failed:
            self._recount(limits.max_members, room)
            return False
        if "registry" in failed:
            self._recount_rooms(limits.max_rooms)
            return False
        raise ConcurrentUpdateError from error

    def _recount_rooms(self, max_rooms: int) -> None:
        """The registry's counter said full: count the live rooms (Query `ROOMS`); correct
        the counter, or confirm the stack is full. Like _recount, it only drifts upwards."""
        actual = sum(1 for entry in self._registry() if entry.room != ROOM)
        if actual >= max_rooms:
            raise RoomLimitError
        self._db.put_item(
            TableName=self._table, Item={**registry_count_key(), "rooms": {"N": str(actual)}}
        )

    def _registry(self, limit: int | None = None) -> list[ListedRoom]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :rooms",
            "ExpressionAttributeValues": {":rooms": {"S": REGISTRY_PARTITION}},
            "ConsistentRead": True,
        }
        found: list[ListedRoom] = []
        while limit is None or len(found) < limit:
            page = self._db.query(**request)
            found += [
                ListedRoom(
                    item["sk"]["S"],
                    item["name"]["S"],
                    item["kind"]["S"],
                    int(item.get("createdAt", {}).get("N", "0")),
                )
                for item in page.get("Items", [])
                if item["sk"]["S"] != "COUNT" and self._alive(item)
            ]
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def _joined(
        self,
        meta: RoomMeta,
        identity: str,
        limits: RoomLimits,
        *,
        created: bool,
        already: bool,
    ) -> Joined:
        """A join's outcome: the room's counter and last event, the joiner's read state
        (recorded at the room's last event on a first join)."""
        seq_item = self._get(seq_key(meta.key)) or {}
        last_public: Item = seq_item.get("lastPublic", {"N": "0"})
        last_event = int(seq_item.get("lastEvent", last_public)["N"])
        count_item = self._get(count_key(meta.key)) or {}
        count = int(count_item.get("members", {}).get("N", "0"))
        read = self._get(read_key(identity, meta.key))
        if read is not None and self._live(read):
            last_read = int(read["seq"]["N"])
        else:
            last_read = self.mark_read(identity, meta, last_event, limits=limits).seq
        return Joined(meta, created, already, count, last_event, last_read)

    def open_direct_room(self, request: RoomRequest, *, limits: RoomLimits) -> RoomMeta:
        for _ in range(ROOM_ATTEMPTS):
            found = self._room_item(request.key)
            if found is not None:
                return _room_meta(found)
            now = int(self._clock())
            expires = now + limits.room_ttl_seconds
            meta: Item = {
                **meta_key(request.key),
                "name": {"S": request.name},
                "kind": {"S": DIRECT},
                "createdAt": {"N": str(now)},
                "parties": {"SS": sorted(request.parties)},
                "names": _keys_attribute(request.names),
                "ttl": {"N": str(expires)},
            }
            try:
                self._db.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": meta,
                                "ConditionExpression": "attribute_not_exists(pk) OR #ttl <= :now",
                                "ExpressionAttributeNames": {"#ttl": "ttl"},
                                "ExpressionAttributeValues": {":now": {"N": str(now)}},
                            }
                        },
                        self._keep_seq(request.key, expires),
                        {
                            "Put": {
                                "TableName": self._table,
                                "Item": {
                                    **count_key(request.key),
                                    "members": {"N": "0"},
                                    "ttl": {"N": str(expires)},
                                },
                            }
                        },
                    ]
                )
            except ClientError as error:
                if aws_errors.error_code(error) not in (
                    aws_errors.TRANSACTION_CANCELED,
                    aws_errors.TRANSACTION_CONFLICT,
                ):
                    raise
                continue  # the other party opened it first: read it
            return _room_meta(meta)
        raise ConcurrentUpdateError

    def leave_room(self, connection_id: str, room: str, *, disconnected: bool = False) -> Member:
        with_connection = not disconnected
        for _ in range(ROOM_ATTEMPTS):
            membership = self._get(membership_key(connection_id, room))
            if membership is None:
                raise NotInRoomError
            key = member_key(connection_id, int(membership.get("shard", {}).get("N", "0")), room)
            member = self._get(key)
            actions: list[Item] = [
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": key,
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": membership_key(connection_id, room),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": count_key(room),
                        "UpdateExpression": "ADD members :minus",
                        "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                    }
                },
            ]
            if with_connection:  # after $disconnect there is no CONN item to count down
                actions.append(
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": connection_key(connection_id),
                            "UpdateExpression": "ADD rooms :minus",
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                        }
                    }
                )
            try:
                self._db.transact_write_items(TransactItems=actions)
            except ClientError as error:
                code = aws_errors.error_code(error)
                if code == aws_errors.TRANSACTION_CONFLICT:
                    continue
                if code != aws_errors.TRANSACTION_CANCELED:
                    raise
                reasons = aws_errors.cancellation_reasons(error)
                if reasons[:2] != ["None", "None"] and "ConditionalCheckFailed" in reasons[:2]:
                    raise NotInRoomError from error  # another leave got there first
                if len(reasons) > 3 and reasons[3] == "ConditionalCheckFailed":
                    with_connection = False
                continue
            return Member(connection_id, (member or {}).get("name", {}).get("S", ""))
        raise ConcurrentUpdateError

    def memberships(self, connection_id: str) -> list[Membership]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :conn AND begins_with(sk, :room)",
            "ExpressionAttributeValues": {
                ":conn": {"S": f"CONN#{connection_id}"},
                ":room": {"S": "ROOM#"},
            },
            "ConsistentRead": True,
        }
        found: list[Membership] = []
        while True:
            page = self._db.query(**request)
            found += [_membership(item) for item in page.get("Items", [])]
            if not page.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def membership(self, connection_id: str, room: str) -> Membership | None:
        item = self._get(membership_key(connection_id, room))
        return _membership(item) if item is not None and self._live(item) else None

    def rewrite_message(self, change: Rewrite) -> EventSeq:
        key = history_key(change.room, change.of)
        original = self._check_rewrite(self._get(key), change)
        taken = self.next_event(change.room, change.kind)
        latest, event = change.build(taken, json.loads(original["frame"]["S"]))
        update = "SET #frame = :frame, edits = if_not_exists(edits, :zero) + :one"
        if change.kind == DELETE:
            update += ", deleted = :true"
        values: Item = {
            ":frame": _json(latest),
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":by": {"S": change.by},
            ":mid": {"S": change.message_id},
            ":start": {"N": str(change.window_start_ms)},
            ":msg": {"S": MSG},
        }
        if change.kind == DELETE:
            values[":true"] = {"BOOL": True}
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self._table,
                            "Key": key,
                            "UpdateExpression": update,
                            "ConditionExpression": (
                                "#by = :by AND #mid = :mid AND #ts > :start"
                                " AND attribute_not_exists(deleted)"
                                " AND (attribute_not_exists(#kind) OR #kind = :msg)"
                            ),
                            "ExpressionAttributeNames": {
                                "#frame": "frame",
                                "#by": "by",
                                "#mid": "mid",
                                "#ts": "ts",
                                "#kind": "kind",
                            },
                            "ExpressionAttributeValues": values,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": {
                                **history_key(change.room, taken.seq),
                                "frame": _json(event),
                                "prev": {"N": str(taken.prev_public)},
                                "prevEvent": {"N": str(taken.prev_event)},
                                "kind": {"S": change.kind},
                                "by": {"S": change.by},
                                "mid": {"S": change.message_id},
                                "of": {"N": str(change.of)},
                                "ts": {"N": str(int(self._clock() * 1000))},
                                "ttl": {"N": str(change.event_expires_at)},
                            },
                        }
                    },
                ]
            )
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.TRANSACTION_CANCELED:
                raise
            # Changed between the read and the write (a concurrent delete): say why.
            self._check_rewrite(self._get(key), change)
            raise UnknownMessageError from error
        return taken

    def _check_rewrite(self, item: Item | None, change: Rewrite) -> Item:
        """The history item `change` may rewrite; raises why it may not."""
        if (
            item is None
            or not self._live(item)
            or _kind(item) != MSG
            or "deleted" in item
            or item.get("mid", {}).get("S") != change.message_id
        ):
            raise UnknownMessageError
        if item.get("by", {}).get("S") != change.by:
            raise NotYoursError
        if int(item.get("ts", {}).get("N", "0")) <= change.window_start_ms:
            raise EditWindowClosedError
        return item

    def _grant(self, identity: str, room: RoomMeta, sender: str, limits: RoomLimits) -> Item:
        now = int(self._clock())
        return {
            **invite_key(identity, room.key),
            "name": {"S": room.name},
            "from": {"S": sender},
            "at": {"N": str(now)},
            "ttl": {"N": str(now + limits.invite_ttl_seconds)},
        }

    def put_invite(
        self, identity: str, room: RoomMeta, sender: str, *, limits: RoomLimits
    ) -> Invite:
        item = self._grant(identity, room, sender, limits)
        self._db.put_item(TableName=self._table, Item=item)
        return _invite(item)

    def _own_items(self, partition: str, limit: int) -> list[Item]:
        """The live `ROOM#` items of one identity's partition (grants, read states)."""
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :room)",
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":room": {"S": "ROOM#"}},
            "ConsistentRead": True,
        }
        found: list[Item] = []
        while len(found) < limit:
            page = self._db.query(**request)
            found += [item for item in page.get("Items", []) if self._live(item)]
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    def invites(self, identity: str, limit: int) -> list[Invite]:
        return [_invite(item) for item in self._own_items(f"INVITE#{identity}", limit)]

    def mark_read(
        self, identity: str, room: RoomMeta, seq: int, *, limits: RoomLimits
    ) -> ReadState:
        now = int(self._clock())
        try:
            item = self._db.update_item(
                TableName=self._table,
                Key=read_key(identity, room.key),
                UpdateExpression="SET seq = :seq, #name = :name, #kind = :kind, #ttl = :ttl",
                ConditionExpression=("attribute_not_exists(seq) OR seq < :seq OR #ttl <= :now"),
                ExpressionAttributeNames={"#name": "name", "#kind": "kind", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":seq": {"N": str(seq)},
                    ":name": {"S": room.name},
                    ":kind": {"S": room.kind},
                    ":ttl": {"N": str(now + limits.read_state_ttl_seconds)},
                    ":now": {"N": str(now)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if aws_errors.error_code(error) != aws_errors.CONDITIONAL_CHECK_FAILED:
                raise
            item = error.response.get("Item") or self._get(read_key(identity, room.key))
        return _read_state(item)

    def read_states(self, identity: str, limit: int) -> list[ReadState]:
        return [_read_state(item) for item in self._own_items(f"READ#{identity}", limit)]

    def unread(self, room: str, after: int, cap: int = UNREAD_CAP) -> int:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND sk BETWEEN :low AND :high",
            "FilterExpression": (
                "(attribute_not_exists(#kind) OR #kind = :msg)"
                " AND attribute_not_exists(deleted) AND #ttl > :now"
            ),
            "ExpressionAttributeNames": {"#kind": "kind", "#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":room": {"S": history_partition(room)},
                ":low": {"S": message_sort_key(after + 1)},
                ":high": {"S": "MSG#~"},
                ":msg": {"S": MSG},
                ":now": {"N": str(int(self._clock()))},
            },
            "Select": "COUNT",
            "Limit": cap + 1,
        }
        count = 0
        while count < cap:
            page = self._db.query(**request)
            count += int(page.get("Count", 0))
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return min(count, cap)

    def public_rooms(self, limit: int) -> tuple[list[ListedRoom], bool]:
        found = [entry for entry in self._registry(limit + 1) if entry.kind != DIRECT]
        return found[:limit], len(found) <= limit
