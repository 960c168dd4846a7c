"""DynamoDB adapter: connections, name claims, room membership and rate limits in one table.

Single-table layout (pk, sk are strings; `ttl` is the table's TTL attribute, epoch seconds):

    pk              sk                 attributes
    CONN#<cid>      CONN               connectionId, ttl, name?, nameKeys?, boundName?,
                                       memberShard? (the shard of its MEMBER item),
                                       rate-limit buckets (<bucket>Tokens, <bucket>At),
                                       strikes, rv (bucket version)
    NAME#<key>      NAME               connectionId, name, ttl     one per claim key
    ROOM#lobby      MEMBER#<cid>       connectionId, name, nameKeys, ttl   shard 0
    ROOM#lobby#<i>  MEMBER#<cid>       the same, shard i (1 <= i < member partitions)
    ROOM#lobby      COUNT              members (how many MEMBER items; see claim_name)
    ROOM#lobby      SEQ                seq (the room's last sequence number),
                                       lastPublic (the last public message's seq)
    ROOM#lobby      MSG#<seq, 12 digits>   frame (JSON), prev, ttl   the history
    SENT#<key>#<id> SENT               ack (JSON), ttl     a sender's message id, for
                                                           de-duplication

Member partitions: a member's item goes to shard member_shard(cid, S) of the S member
partitions (S = 1: all in ROOM#lobby), chosen when it joins and recorded on its CONN item
(memberShard; absent means 0). Everything later done to that member uses the recorded
shard, so raising S never strands a member; list_members reads all S partitions.

Every read is strongly consistent and ignores items whose TTL has passed, because
DynamoDB deletes expired items up to days late. Every change that touches more than
one item is one transaction.
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

from chat.errors import ConcurrentUpdateError, NameTakenError, RoomFullError
from chat.frames import Frame
from chat.ports import Admission, Connection, Member, Receipt, Sent, TokenBucket

ROOM = "lobby"
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


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _reasons(error: ClientError) -> list[str]:
    return [str(r.get("Code", "None")) for r in error.response.get("CancellationReasons") or []]


def _connection(item: Item) -> Connection:
    return Connection(
        connection_id=item["connectionId"]["S"],
        name=item.get("name", {}).get("S"),
        expires_at=int(item["ttl"]["N"]),
        name_keys=tuple(k["S"] for k in item.get("nameKeys", {}).get("L", [])),
        bound_name=item.get("boundName", {}).get("S"),
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

    def _get(self, key: Item) -> Item | None:
        item: Item | None = self._db.get_item(
            TableName=self._table, Key=key, ConsistentRead=True
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

    def admit(self, connection_id: str, bucket: str, limit: TokenBucket) -> Admission:
        item = self._get(connection_key(connection_id))
        for _ in range(ADMIT_ATTEMPTS):
            if item is None or not self._live(item):
                return Admission(connection=None, allowed=True)
            now_ms = int(self._clock() * 1000)
            tokens_attr, at_attr = f"{bucket}Tokens", f"{bucket}At"
            tokens = float(item[tokens_attr]["N"]) if tokens_attr in item else limit.capacity
            at_ms = int(item[at_attr]["N"]) if at_attr in item else now_ms
            tokens = min(
                limit.capacity, tokens + max(0, now_ms - at_ms) / 1000 * limit.rate_per_second
            )
            allowed = tokens >= 1
            strikes = int(item.get("strikes", {}).get("N", "0"))
            # Strikes count refusals until the client pauses long enough to refill its
            # bucket, so a steady flood that slips a frame through now and then adds up.
            strikes = 0 if tokens >= limit.capacity else strikes + (0 if allowed else 1)
            if allowed:
                tokens -= 1
            version = int(item.get("rv", {}).get("N", "0"))
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=connection_key(connection_id),
                    UpdateExpression=(
                        "SET #tokens = :tokens, #at = :at, strikes = :strikes, rv = :next"
                    ),
                    ConditionExpression=(
                        "attribute_exists(pk) AND (rv = :version OR attribute_not_exists(rv))"
                        if version == 0
                        else "attribute_exists(pk) AND rv = :version"
                    ),
                    ExpressionAttributeNames={"#tokens": tokens_attr, "#at": at_attr},
                    ExpressionAttributeValues={
                        ":tokens": {"N": f"{tokens:.4f}"},
                        ":at": {"N": str(now_ms)},
                        ":strikes": {"N": str(strikes)},
                        ":version": {"N": str(version)},
                        ":next": {"N": str(version + 1)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                item = error.response.get("Item")  # the winner's values: try again on them
                continue
            retry_after_ms = (
                0 if allowed else math.ceil((1 - tokens) / limit.rate_per_second * 1000)
            )
            return Admission(_connection(item), allowed, retry_after_ms, strikes)
        # Frames of one connection racing this hard for its bucket are a flood.
        connection = _connection(item) if item is not None else None
        return Admission(connection, allowed=False, retry_after_ms=1000, strikes=0)

    # --- names and membership -----------------------------------------------------------

    def claim_name(
        self,
        connection: Connection,
        name: str,
        keys: Sequence[str],
        *,
        max_members: int,
    ) -> None:
        # A joiner's MEMBER item goes to its shard under today's S. A member keeps the
        # shard it joined with: a rename first assumes that is today's too (the condition
        # on the CONN item checks it) and, if S changed since, repeats on the recorded one.
        shard = member_shard(connection.connection_id, self._partitions)
        for _ in range(2):
            try:
                self._claim(connection, name, keys, shard, max_members)
                return
            except ClientError as error:
                recorded = self._recorded_elsewhere(error, connection, shard)
                if recorded is None:
                    self._claim_failed(error, connection, keys, max_members)
                shard = recorded
        raise ConcurrentUpdateError

    def _claim(
        self,
        connection: Connection,
        name: str,
        keys: Sequence[str],
        shard: int,
        max_members: int,
    ) -> None:
        cid = connection.connection_id
        joining = connection.name is None
        values: Item = {
            ":name": {"S": name},
            ":keys": _keys_attribute(keys),
            ":shard": {"N": str(shard)},
        }
        if joining:
            unchanged = "attribute_exists(pk) AND attribute_not_exists(#name)"
            update = "SET #name = :name, nameKeys = :keys, memberShard = :shard"
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
                            ":now": {"N": str(int(self._clock()))},
                            ":cid": {"S": cid},
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        actions += [self._release(key, cid) for key in connection.name_keys if key not in keys]
        if joining:  # last: _claim_failed finds its reason there
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
        self._db.transact_write_items(TransactItems=actions)

    def _recorded_elsewhere(
        self, error: ClientError, connection: Connection, shard: int
    ) -> int | None:
        """The shard a renaming member joined with, when its claim failed only because that
        is not `shard` (S changed since it joined); None for any other failure."""
        if connection.name is None or _error_code(error) != "TransactionCanceledException":
            return None
        reasons = _reasons(error)
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
        keys: Sequence[str],
        max_members: int,
    ) -> NoReturn:
        """Raise what a failed claim transaction means (see _claim for the actions' order)."""
        cid = connection.connection_id
        first_claim = 2
        code = _error_code(error)
        if code == "TransactionConflictException":
            raise ConcurrentUpdateError from error
        if code != "TransactionCanceledException":
            raise error
        reasons = _reasons(error)
        if "TransactionConflict" in reasons or (reasons and reasons[0] != "None"):
            raise ConcurrentUpdateError from error
        raw_reasons = error.response.get("CancellationReasons") or []
        for index, key in enumerate(keys, start=first_claim):
            if index < len(reasons) and reasons[index] == "ConditionalCheckFailed":
                holder = raw_reasons[index].get("Item") or self._get(name_key(key))
                if self._live(holder) and holder["connectionId"]["S"] != cid:  # type: ignore[index]
                    raise NameTakenError(
                        holder["connectionId"]["S"],  # type: ignore[index]
                        holder["name"]["S"],  # type: ignore[index]
                        key,
                    ) from error
        if connection.name is None:  # a join: was the room's counter at its maximum?
            releases = [k for k in connection.name_keys if k not in keys]
            count_index = first_claim + len(keys) + len(releases)
            if count_index < len(reasons) and reasons[count_index] == "ConditionalCheckFailed":
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
            if _error_code(error) != "ConditionalCheckFailedException":
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
            try:
                self._db.transact_write_items(TransactItems=actions)
            except ClientError as error:
                if _error_code(error) not in (
                    "TransactionCanceledException",
                    "TransactionConflictException",
                ):
                    raise
                reasons = _reasons(error)
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
            if _error_code(error) != "ConditionalCheckFailedException":
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
                            "ack": {"S": json.dumps(receipt.ack, ensure_ascii=False)},
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
                            "pk": {"S": f"ROOM#{ROOM}"},
                            "sk": {"S": message_sort_key(receipt.seq)},
                            "frame": {"S": json.dumps(receipt.public, ensure_ascii=False)},
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
            duplicate = _error_code(error) == "TransactionCanceledException" and (
                _reasons(error)[:1] == ["ConditionalCheckFailed"]
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

    def history(self, after: int | None, limit: int) -> tuple[list[Frame], bool]:
        low = message_sort_key((after or 0) + 1)
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":room": {"S": f"ROOM#{ROOM}"},
                ":low": {"S": low},
                ":high": {"S": "MSG#~"},
            },
            "ScanIndexForward": False,  # newest first: the most recent `limit` win
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        newest_first: list[Item] = []
        while len(newest_first) <= limit:
            page = self._db.query(**request)
            newest_first += [item for item in page.get("Items", []) if self._live(item)]
            if not page.get("LastEvaluatedKey"):
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        kept = list(reversed(newest_first[:limit]))
        frames = [json.loads(item["frame"]["S"]) for item in kept]
        if len(newest_first) > limit:
            return frames, False
        floor = after or 0
        if kept:
            return frames, int(kept[0]["prev"]["N"]) <= floor
        seq_item = self._get(seq_key()) or {}
        return frames, int(seq_item.get("lastPublic", {}).get("N", "0")) <= floor
