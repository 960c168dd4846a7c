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
from typing import Any, NoReturn

from botocore.exceptions import ClientError

from chat import aws_errors
from chat.ports import (
    Admission,
    ConcurrentUpdateError,
    Connection,
    Frame,
    Member,
    NameOwnedError,
    NameTakenError,
    Newcomer,
    PeerConnection,
    Receipt,
    RoomFullError,
    Sent,
    TokenBucket,
)

ROOM = "lobby"
HISTORY_PARTITION = f"HIST#{ROOM}"
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


def member_partition(shard: int) -> str:
    """The partition key of member shard `shard`: shard 0 is the room's own partition."""
    return f"ROOM#{ROOM}" if shard == 0 else f"ROOM#{ROOM}#{shard}"


def member_key(connection_id: str, shard: int = 0) -> Item:
    return {"pk": {"S": member_partition(shard)}, "sk": {"S": f"MEMBER#{connection_id}"}}


def recorded_shard(connection_item: Item) -> int:
    """The shard a CONN item says its MEMBER item is in (0 when it says nothing)."""
    return int(connection_item.get("memberShard", {}).get("N", "0"))


def count_key() -> Item:
    return {"pk": {"S": f"ROOM#{ROOM}"}, "sk": {"S": "COUNT"}}


def seq_key() -> Item:
    return {"pk": {"S": f"ROOM#{ROOM}"}, "sk": {"S": "SEQ"}}


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
    )


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
    ) -> None:
        # A joiner's MEMBER item goes to its shard under today's S. A member keeps the
        # shard it joined with: a rename first assumes that is today's too (the condition
        # on the CONN item checks it) and, if S changed since, repeats on the recorded one.
        shard = member_shard(connection.connection_id, self._partitions)
        for _ in range(2):
            actions, roles = self._claim(
                connection, name, keys, shard, max_members, sender_key=sender_key, owner=owner
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
    ) -> tuple[list[Item], list[tuple[str, str]]]:
        """The claim's transaction, and each action's role (what its failure means)."""
        cid = connection.connection_id
        joining = connection.name is None
        now = int(self._clock())
        values: Item = {
            ":name": {"S": name},
            ":keys": _keys_attribute(keys),
            ":shard": {"N": str(shard)},
        }
        if joining:
            unchanged = "attribute_exists(pk) AND attribute_not_exists(#name)"
            update = "SET #name = :name, nameKeys = :keys, memberShard = :shard"
            if sender_key is not None:
                update += ", senderKey = :sender"
                values[":sender"] = {"S": sender_key}
        else:
            unchanged = "attribute_exists(pk) AND #name = :previous AND " + (
                "(attribute_not_exists(memberShard) OR memberShard = :shard)"
                if shard == 0
                else "memberShard = :shard"
            )
            update = "SET #name = :name, nameKeys = :keys"
            values[":previous"] = {"S": connection.name or ""}
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
            },
        ]
        roles: list[tuple[str, str]] = [("connection", ""), ("member", "")]
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
        if joining:
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

    def _recorded_elsewhere(
        self, error: ClientError, connection: Connection, shard: int
    ) -> int | None:
        """The shard a renaming member joined with, when its claim failed only because that
        is not `shard` (S changed since it joined); None for any other failure."""
        if (
            connection.name is None
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

    def _recount(self, max_members: int) -> None:
        """The counter said full: count the live members; correct it, or confirm the room is full.

        The counter only drifts upwards (members whose items expired without a
        $disconnect), so a full room is always confirmed from the members themselves.
        """
        actual = len(self.list_members())
        if actual >= max_members:
            raise RoomFullError
        self._db.put_item(
            TableName=self._table, Item={**count_key(), "members": {"N": str(actual)}}
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

    def list_members(self) -> list[Member]:
        """The live members of every member partition, in connection id order (the order
        one partition's query returns them in); S partitions are queried in parallel."""
        if self._partitions == 1:
            return self._list_shard(0)
        with ThreadPoolExecutor(max_workers=self._partitions) as pool:
            shards = list(pool.map(self._list_shard, range(self._partitions)))
        return sorted((m for shard in shards for m in shard), key=lambda m: m.connection_id)

    def _list_shard(self, shard: int) -> list[Member]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND begins_with(sk, :member)",
            "ExpressionAttributeValues": {
                ":room": {"S": member_partition(shard)},
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
                Member(item["connectionId"]["S"], item["name"]["S"])
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
            leaves_room = named and not member_missing
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
            membership = self._db.delete_item(
                TableName=self._table,
                Key=member_key(connection_id, shard),
                ReturnValues="ALL_OLD",
            ).get("Attributes")
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
        advance = "seq = if_not_exists(seq, :zero) + :one"
        if public:  # the previous public message is what lastPublic held before this one
            advance += ", lastPublic = if_not_exists(seq, :zero) + :one"
        old = (
            self._db.update_item(
                TableName=self._table,
                Key=seq_key(),
                UpdateExpression=f"SET {advance}",
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
            or {}
        )
        seq = int(old.get("seq", {}).get("N", "0")) + 1
        return seq, int(old.get("lastPublic", {}).get("N", "0"))

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
            actions.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": HISTORY_PARTITION},
                            "sk": {"S": message_sort_key(receipt.seq)},
                            "frame": {
                                "S": json.dumps(
                                    receipt.public, ensure_ascii=False, separators=(",", ":")
                                )
                            },
                            "prev": {"N": str(receipt.prev)},
                            "ttl": {"N": str(receipt.history_expires_at)},
                        },
                    }
                }
            )
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

    def forget_message(self, sender_key: str, client_id: str) -> None:
        self._db.delete_item(TableName=self._table, Key=sent_key(sender_key, client_id))

    def history(self, after: int | None, limit: int, max_bytes: int) -> tuple[list[Frame], bool]:
        low = message_sort_key((after or 0) + 1)
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":room": {"S": HISTORY_PARTITION},
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
                if not self._live(item):
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
            return frames, int(kept[0]["prev"]["N"]) <= floor
        seq_item = self._get(seq_key(), consistent=False) or {}
        return frames, int(seq_item.get("lastPublic", {}).get("N", "0")) <= floor
