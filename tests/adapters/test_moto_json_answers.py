"""moto answering in plain JSON (sandbox.moto_patch.answer_as_json) tells boto3 exactly what
moto's own serializer tells it, for every kind of request the chat, the sandbox and the
tests make: the patch saves CPU and changes no answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.moto_patch import answer_as_json, moto_internals
from tests.support.aws import restore_motos_own

TABLE = "Answers"
Call = Callable[[Any], Any]


def item(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **extra}


RICH = {
    "n": {"N": "12.50"},
    "s": {"S": 'héllo 👋 "quoted" \\ </script>'},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "list": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"deep": {"SS": ["x", "y"]}}}]},
    "map": {"M": {"empty": {"L": []}, "ns": {"NS": ["1", "2.5"]}}},
    "ttl": {"N": "4102444800"},
}


def seed(db: Any) -> None:
    db.put_item(TableName=TABLE, Item=item("ROOM#lobby", "COUNT", members={"N": "2"}))
    for i in range(7):
        db.put_item(TableName=TABLE, Item=item("HIST#lobby", f"MSG#{i:012d}", frame={"S": "x" * i}))
    db.put_item(TableName=TABLE, Item=item("CONN#a", "CONN", **RICH))


# Each call is one request, written as the store, the sandbox or a test writes it.
CALLS: dict[str, Call] = {
    "get_item found": lambda db: db.get_item(
        TableName=TABLE, Key=item("CONN#a", "CONN"), ConsistentRead=True
    ),
    "get_item missing": lambda db: db.get_item(TableName=TABLE, Key=item("CONN#b", "CONN")),
    "get_item projected": lambda db: db.get_item(
        TableName=TABLE,
        Key=item("CONN#a", "CONN"),
        ProjectionExpression="#n, #l[2], #m.ns",
        ExpressionAttributeNames={"#n": "n", "#l": "list", "#m": "map"},
    ),
    "put_item returning old": lambda db: db.put_item(
        TableName=TABLE, Item=item("CONN#a", "CONN", n={"N": "1"}), ReturnValues="ALL_OLD"
    ),
    "put_item consumed capacity": lambda db: db.put_item(
        TableName=TABLE, Item=item("X", "Y"), ReturnConsumedCapacity="TOTAL"
    ),
    "update_item all new": lambda db: db.update_item(
        TableName=TABLE,
        Key=item("ROOM#lobby", "COUNT"),
        UpdateExpression="ADD members :one SET #t = :t",
        ExpressionAttributeNames={"#t": "touched"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"L": [{"S": "z"}]}},
        ReturnValues="ALL_NEW",
    ),
    "update_item updated old": lambda db: db.update_item(
        TableName=TABLE,
        Key=item("ROOM#lobby", "COUNT"),
        UpdateExpression="SET members = :n",
        ExpressionAttributeValues={":n": {"N": "9"}},
        ReturnValues="UPDATED_OLD",
    ),
    "delete_item returning old": lambda db: db.delete_item(
        TableName=TABLE, Key=item("CONN#a", "CONN"), ReturnValues="ALL_OLD"
    ),
    "query a page": lambda db: db.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p AND begins_with(sk, :m)",
        ExpressionAttributeValues={":p": {"S": "HIST#lobby"}, ":m": {"S": "MSG#"}},
        Limit=3,
        ScanIndexForward=False,
    ),
    "query from a start key": lambda db: db.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "HIST#lobby"}},
        ExclusiveStartKey=item("HIST#lobby", f"MSG#{2:012d}"),
        ConsistentRead=True,
    ),
    "query count": lambda db: db.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "HIST#lobby"}},
        Select="COUNT",
    ),
    "query nothing": lambda db: db.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "NOBODY"}},
    ),
    "scan filtered": lambda db: db.scan(
        TableName=TABLE,
        FilterExpression="attribute_exists(#f)",
        ExpressionAttributeNames={"#f": "frame"},
    ),
    "transact write": lambda db: db.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": item("NAME#alice", "NAME")}},
            {
                "Update": {
                    "TableName": TABLE,
                    "Key": item("ROOM#lobby", "COUNT"),
                    "UpdateExpression": "ADD members :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    ),
    "transact get": lambda db: db.transact_get_items(
        TransactItems=[
            {"Get": {"TableName": TABLE, "Key": item("CONN#a", "CONN")}},
            {"Get": {"TableName": TABLE, "Key": item("CONN#none", "CONN")}},
        ]
    ),
    "batch get": lambda db: db.batch_get_item(
        RequestItems={TABLE: {"Keys": [item("CONN#a", "CONN"), item("ROOM#lobby", "COUNT")]}}
    ),
    "binary value": lambda db: (
        db.put_item(
            TableName=TABLE, Item=item("BIN", "B", b={"B": b"\x00\xff"}), ReturnValues="ALL_OLD"
        )
        and db.get_item(TableName=TABLE, Key=item("BIN", "B"))
    ),
    "describe table": lambda db: db.describe_table(TableName=TABLE)["Table"]["KeySchema"],
    "condition fails with the old item": lambda db: db.put_item(
        TableName=TABLE,
        Item=item("CONN#a", "CONN"),
        ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    ),
    "transaction cancelled": lambda db: db.transact_write_items(
        TransactItems=[
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": item("CONN#a", "CONN"),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {"Put": {"TableName": TABLE, "Item": item("NEW", "ONE")}},
        ]
    ),
}


def answer(call: Call) -> Any:
    """What boto3 reads for `call` on a fresh seeded table: the parsed answer without its
    request metadata, or the error's code, message and parsed extras."""
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        seed(db)
        try:
            result = call(db)
        except ClientError as error:
            result = {k: v for k, v in error.response.items() if k != "ResponseMetadata"}
        if isinstance(result, dict):
            result.pop("ResponseMetadata", None)
        return result


@pytest.fixture
def moto_serializer(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Switch this test back to moto's own serializer (the patch may be on already)."""

    def use_moto_serializer() -> None:
        result_class = moto_internals().DynamoResult
        restore_motos_own(monkeypatch, result_class, "execute_result", "moto_execute_result")

    return use_moto_serializer


@pytest.mark.parametrize("name", list(CALLS))
def test_json_answers_read_the_same_as_motos_own(
    name: str, moto_serializer: Callable[[], None]
) -> None:
    # GIVEN moto's own serializer, and the same request answered with it
    moto_serializer()
    expected = answer(CALLS[name])
    # WHEN moto answers in plain JSON instead
    assert answer_as_json()
    actual = answer(CALLS[name])
    # THEN boto3 reads exactly the same answer
    assert actual == expected
    assert expected is not None, "the call must answer something to compare"


def test_answering_in_json_is_idempotent_and_reversible(
    moto_serializer: Callable[[], None],
) -> None:
    result_class = moto_internals().DynamoResult
    assert answer_as_json()
    patched = result_class.execute_result
    assert answer_as_json()
    assert result_class.execute_result is patched  # applied once, not wrapped twice
    moto_serializer()
    assert not getattr(result_class.execute_result, "answers_as_json", False)


@pytest.mark.parametrize("patched", [False, True])
def test_json_answers_skip_motos_serializer(
    patched: bool, moto_serializer: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The comparison above is not vacuous: with the patch on, moto's serializer is not used
    # for an item answer; with it off, it is.
    moto_serializer()
    if patched:
        assert answer_as_json()
    from moto.core.serialize import ResponseSerializer  # noqa: PLC0415

    calls: list[str] = []
    original = ResponseSerializer.serialize

    def counted(self: Any, result: Any) -> Any:
        calls.append(type(self).__name__)
        return original(self, result)

    def query_counted(db: Any) -> Any:
        monkeypatch.setattr(ResponseSerializer, "serialize", counted)
        return CALLS["query a page"](db)

    answer(query_counted)
    assert (calls == []) is patched
