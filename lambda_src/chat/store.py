"""DynamoDB adapter: connections, name claims and room membership in one table.

Single-table layout (pk, sk are strings; `ttl` is the table's TTL attribute, epoch seconds):

    pk              sk                 attributes
    CONN#<cid>      CONN               connectionId, name?, ttl        one per connection
    NAME#<folded>   NAME               connectionId, name, ttl         one per claimed name
    ROOM#lobby      MEMBER#<cid>       connectionId, name, ttl         one per named member

Every read is strongly consistent and ignores items whose TTL has passed, because
DynamoDB deletes expired items up to days late.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chat.errors import ConcurrentUpdateError, NameTakenError
from chat.ports import Connection, Member

ROOM = "lobby"
Item = dict[str, Any]


def connection_key(connection_id: str) -> Item:
    return {"pk": {"S": f"CONN#{connection_id}"}, "sk": {"S": "CONN"}}


def name_key(name: str) -> Item:
    return {"pk": {"S": f"NAME#{name.casefold()}"}, "sk": {"S": "NAME"}}


def member_key(connection_id: str) -> Item:
    return {"pk": {"S": f"ROOM#{ROOM}"}, "sk": {"S": f"MEMBER#{connection_id}"}}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class DynamoChatStore:
    """ChatStore on a DynamoDB table with the layout above."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        page_size: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = client
        self._table = table_name
        self._page_size = page_size
        self._clock = clock

    def _live(self, item: Item | None) -> bool:
        return bool(item) and int(item["ttl"]["N"]) > self._clock()  # type: ignore[index]

    def add_connection(self, connection_id: str, expires_at: int) -> None:
        self._db.put_item(
            TableName=self._table,
            Item={
                **connection_key(connection_id),
                "connectionId": {"S": connection_id},
                "ttl": {"N": str(expires_at)},
            },
        )

    def get_connection(self, connection_id: str) -> Connection | None:
        item = self._db.get_item(
            TableName=self._table, Key=connection_key(connection_id), ConsistentRead=True
        ).get("Item")
        if not self._live(item):
            return None
        name = item.get("name", {}).get("S")
        return Connection(connection_id, name, int(item["ttl"]["N"]))

    def claim_name(
        self, connection_id: str, name: str, previous: str | None, expires_at: int
    ) -> None:
        cid = {"S": connection_id}
        ttl = {"N": str(expires_at)}
        if previous is None:
            connection_condition = "attribute_exists(pk) AND attribute_not_exists(#name)"
            connection_values: Item = {":name": {"S": name}}
        else:
            connection_condition = "attribute_exists(pk) AND #name = :previous"
            connection_values = {":name": {"S": name}, ":previous": {"S": previous}}
        actions: list[Item] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": connection_key(connection_id),
                    "UpdateExpression": "SET #name = :name",
                    "ConditionExpression": connection_condition,
                    "ExpressionAttributeNames": {"#name": "name"},
                    "ExpressionAttributeValues": connection_values,
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **name_key(name),
                        "connectionId": cid,
                        "name": {"S": name},
                        "ttl": ttl,
                    },
                    # Free, expired, or already ours (a change of case only).
                    "ConditionExpression": (
                        "attribute_not_exists(pk) OR #ttl <= :now OR connectionId = :cid"
                    ),
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {
                        ":now": {"N": str(int(self._clock()))},
                        ":cid": cid,
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **member_key(connection_id),
                        "connectionId": cid,
                        "name": {"S": name},
                        "ttl": ttl,
                    },
                }
            },
        ]
        if previous is not None and previous.casefold() != name.casefold():
            actions.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": name_key(previous),
                        "ConditionExpression": "attribute_not_exists(pk) OR connectionId = :cid",
                        "ExpressionAttributeValues": {":cid": cid},
                    }
                }
            )
        try:
            self._db.transact_write_items(TransactItems=actions)
        except ClientError as error:
            code = _error_code(error)
            if code == "TransactionConflictException":
                raise ConcurrentUpdateError from error
            if code != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = [str(r.get("Code", "None")) for r in reasons]
            if "TransactionConflict" in codes or (codes and codes[0] != "None"):
                raise ConcurrentUpdateError from error
            holder = reasons[1].get("Item") if len(reasons) > 1 else None
            if holder is None:
                holder = self._db.get_item(
                    TableName=self._table, Key=name_key(name), ConsistentRead=True
                ).get("Item")
            if self._live(holder) and holder["connectionId"]["S"] != connection_id:
                raise NameTakenError(holder["connectionId"]["S"], holder["name"]["S"]) from error
            raise ConcurrentUpdateError from error

    def find_member(self, name: str) -> Member | None:
        item = self._db.get_item(
            TableName=self._table, Key=name_key(name), ConsistentRead=True
        ).get("Item")
        if not self._live(item):
            return None
        return Member(item["connectionId"]["S"], item["name"]["S"])

    def list_members(self) -> list[Member]:
        request: Item = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :room AND begins_with(sk, :member)",
            "ExpressionAttributeValues": {
                ":room": {"S": f"ROOM#{ROOM}"},
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
        connection = self._db.delete_item(
            TableName=self._table, Key=connection_key(connection_id), ReturnValues="ALL_OLD"
        ).get("Attributes")
        membership = self._db.delete_item(
            TableName=self._table, Key=member_key(connection_id), ReturnValues="ALL_OLD"
        ).get("Attributes")
        name = ((membership or connection or {}).get("name") or {}).get("S")
        if name:
            try:
                self._db.delete_item(
                    TableName=self._table,
                    Key=name_key(name),
                    ConditionExpression="connectionId = :cid",
                    ExpressionAttributeValues={":cid": {"S": connection_id}},
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
        if name and self._live(membership):
            return Member(connection_id, name)
        return None
