"""moto's TransactWriteItems copying only the items it writes
(tests.support.aws.transactions_copy_written_items, which every moto-backed test uses)
answers exactly as moto's own, which deep-copies every table it touches, and leaves the
table exactly as moto's own does: for the transactions the chat writes and for each way
one is refused or cancelled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox.moto_patch import moto_internals
from tests.support.aws import restore_motos_own, transactions_copy_written_items

TABLE = "Transactions"
Action = dict[str, Any]


def item(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, **extra}


def put(pk: str, sk: str, condition: str | None = None, **extra: Any) -> Action:
    action: dict[str, Any] = {"TableName": TABLE, "Item": item(pk, sk, **extra)}
    if condition is not None:
        action["ConditionExpression"] = condition
        action["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Put": action}


def update(pk: str, sk: str, expression: str, values: dict[str, Any], **more: Any) -> Action:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": item(pk, sk),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
            **more,
        }
    }


def delete(pk: str, sk: str, **more: Any) -> Action:
    return {"Delete": {"TableName": TABLE, "Key": item(pk, sk), **more}}


ONE = {":one": {"N": "1"}}
# Written as lambda_src/chat/store.py writes them: a join claims a name, counts and lists
# the member; a rename moves a claim; a leave takes them back; conditions on versions.
TRANSACTIONS: dict[str, list[Action]] = {
    "a join claims, counts and lists": [
        put("NAME#carol", "NAME", "attribute_not_exists(pk)", connectionId={"S": "c3"}),
        update("ROOM#lobby", "COUNT", "ADD members :one", ONE),
        put("ROOM#lobby", "MEMBER#c3", name={"S": "carol"}),
        update(
            "CONN#c3",
            "CONN",
            "SET #n = :n",
            {":n": {"S": "carol"}},
            ExpressionAttributeNames={"#n": "name"},
            ConditionExpression="attribute_exists(pk)",
        ),
    ],
    "a rename moves the claim": [
        delete(
            "NAME#alice",
            "NAME",
            ConditionExpression="connectionId = :c",
            ExpressionAttributeValues={":c": {"S": "c1"}},
        ),
        put("NAME#alicia", "NAME", "attribute_not_exists(pk)", connectionId={"S": "c1"}),
        {
            "ConditionCheck": {
                "TableName": TABLE,
                "Key": item("CONN#c1", "CONN"),
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ],
    "a leave takes the member back": [
        delete("ROOM#lobby", "MEMBER#c1"),
        update("ROOM#lobby", "COUNT", "ADD members :minus", {":minus": {"N": "-1"}}),
        delete("NAME#alice", "NAME"),
    ],
    "a claim that is taken cancels it with the holder": [
        put("ROOM#lobby", "MEMBER#c3", name={"S": "alice"}),
        update("ROOM#lobby", "COUNT", "ADD members :one", ONE),
        put("NAME#alice", "NAME", "attribute_not_exists(pk)", connectionId={"S": "c3"}),
    ],
    "two conditions fail, one without its old item": [
        put("NAME#alice", "NAME", "attribute_not_exists(pk)", connectionId={"S": "c9"}),
        update(
            "CONN#gone",
            "CONN",
            "SET rv = :one",
            ONE,
            ConditionExpression="attribute_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        update("ROOM#lobby", "COUNT", "ADD members :one", ONE),
    ],
    "a version that moved on": [
        update(
            "CONN#c1",
            "CONN",
            "SET rv = :next",
            {":v": {"N": "6"}, ":next": {"N": "8"}},
            ConditionExpression="rv = :v",
        ),
        put("HIST#lobby", "MSG#000000000002", frame={"S": "x"}),
    ],
    "an update that cannot apply rolls back what went before": [
        put("HIST#lobby", "MSG#000000000002", frame={"S": "x"}),
        update("ROOM#lobby", "COUNT", "ADD members :one", ONE),
        update("CONN#c1", "CONN", "ADD #n :one", ONE, ExpressionAttributeNames={"#n": "name"}),
    ],
    "an undefined value is refused": [
        put("HIST#lobby", "MSG#000000000002", frame={"S": "x"}),
        update("ROOM#lobby", "COUNT", "SET members = :missing", ONE),
    ],
    "one item twice is refused": [
        update("ROOM#lobby", "COUNT", "ADD members :one", ONE),
        update("ROOM#lobby", "COUNT", "ADD members :one", ONE),
    ],
    "two actions in one element are refused": [
        {**put("HIST#lobby", "MSG#000000000002"), **delete("ROOM#lobby", "MEMBER#c1")},
    ],
    "more than a hundred actions are refused": [
        put("HIST#lobby", f"MSG#{i:012d}", frame={"S": "x"}) for i in range(101)
    ],
}


def seed(db: Any) -> None:
    db.put_item(TableName=TABLE, Item=item("ROOM#lobby", "COUNT", members={"N": "2"}))
    for cid, name in (("c1", "alice"), ("c2", "bob")):
        db.put_item(
            TableName=TABLE, Item=item(f"CONN#{cid}", "CONN", name={"S": name}, rv={"N": "7"})
        )
        db.put_item(TableName=TABLE, Item=item("ROOM#lobby", f"MEMBER#{cid}", name={"S": name}))
        db.put_item(TableName=TABLE, Item=item(f"NAME#{name}", "NAME", connectionId={"S": cid}))
    db.put_item(TableName=TABLE, Item=item("CONN#c3", "CONN", rv={"N": "0"}))  # not named yet
    db.put_item(TableName=TABLE, Item=item("HIST#lobby", "MSG#000000000001", frame={"S": "hi"}))


def outcome(actions: list[Action]) -> tuple[Any, list[dict[str, Any]]]:
    """What boto3 reads for the transaction on a fresh seeded table (the answer without its
    request metadata, or the error's code, message and reasons), and the table after it."""
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
            answer: Any = db.transact_write_items(TransactItems=actions)
        except ClientError as error:
            answer = error.response
        answer.pop("ResponseMetadata", None)
        items = db.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        return answer, sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


@pytest.fixture
def motos_own(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Switch this test back to moto's own TransactWriteItems (the patch may be on already)."""

    def use_motos_own() -> None:
        backend = moto_internals().backend
        restore_motos_own(monkeypatch, backend, "transact_write_items", "moto_transact_write_items")

    return use_motos_own


@pytest.mark.parametrize("name", list(TRANSACTIONS))
def test_copying_written_items_answers_and_leaves_the_table_as_moto_does(
    name: str, motos_own: Callable[[], None]
) -> None:
    # GIVEN moto's own transaction, and what it answers and leaves
    motos_own()
    expected = outcome(TRANSACTIONS[name])
    # WHEN the transaction copies only the items it writes
    assert transactions_copy_written_items()
    actual = outcome(TRANSACTIONS[name])
    # THEN boto3 reads the same answer, and the table holds the same items
    assert actual == expected


def test_the_transactions_cover_success_cancellation_and_refusal(
    motos_own: Callable[[], None],
) -> None:
    # The comparison above is not vacuous: with moto's own, some transactions write, some
    # are cancelled with their reasons and leave the table as seeded, some are refused.
    motos_own()
    answers = {name: outcome(actions) for name, actions in TRANSACTIONS.items()}
    code = {name: answer.get("Error", {}).get("Code") for name, (answer, _) in answers.items()}
    _, seeded = answers["more than a hundred actions are refused"]
    assert code["a join claims, counts and lists"] is None
    assert answers["a join claims, counts and lists"][1] != seeded
    for cancelled in (
        "a claim that is taken cancels it with the holder",
        "two conditions fail, one without its old item",
        "a version that moved on",
    ):
        answer, table = answers[cancelled]
        assert code[cancelled] == "TransactionCanceledException", answer
        assert len(answer["CancellationReasons"]) == len(TRANSACTIONS[cancelled])
        assert table == seeded
    # An update that cannot apply is refused after the put before it was written: undone.
    answer, table = answers["an update that cannot apply rolls back what went before"]
    assert answer["Error"]["Code"] == "ValidationException"
    assert table == seeded
    assert code["one item twice is refused"] == "ValidationException"


def test_copying_written_items_is_idempotent_and_reversible(
    motos_own: Callable[[], None],
) -> None:
    backend = moto_internals().backend
    assert transactions_copy_written_items()
    patched = backend.transact_write_items
    assert transactions_copy_written_items()
    assert backend.transact_write_items is patched  # applied once, not wrapped twice
    motos_own()
    assert not getattr(backend.transact_write_items, "copies_written_items", False)
