"""The sandbox's embedded DynamoDB keeps DynamoDB's atomicity under concurrent requests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.dynamodb import EmbeddedDynamoDB, client

pytestmark = pytest.mark.sandbox

TABLE = "race"


@pytest.fixture(scope="module")
def db() -> Iterator[Any]:
    embedded = EmbeddedDynamoDB()
    endpoint = embedded.start()
    dynamodb = client(endpoint, "us-east-1", max_pool_connections=32)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield dynamodb
    embedded.stop()


def test_a_failed_transaction_never_undoes_concurrent_writes(db):
    # GIVEN a table with some data, and an item that makes every transaction below fail
    for i in range(300):
        db.put_item(TableName=TABLE, Item={"pk": {"S": f"old{i}"}, "pad": {"S": "x" * 200}})
    db.put_item(TableName=TABLE, Item={"pk": {"S": "blocker"}})

    errors: list[str] = []

    def write(i: int) -> None:
        db.put_item(TableName=TABLE, Item={"pk": {"S": f"item{i}"}})

    def failing_transaction(i: int) -> None:
        try:
            db.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": {"pk": {"S": f"tx{i}"}}}},
                    {
                        "Put": {
                            "TableName": TABLE,
                            "Item": {"pk": {"S": "blocker"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            errors.append(error.response["Error"]["Code"])

    # WHEN plain writes and failing transactions run at the same time
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(300):
            pool.submit(write, i)
            pool.submit(failing_transaction, i)
    # THEN every plain write survived and no part of a failed transaction did
    keys = {
        item["pk"]["S"]
        for page in db.get_paginator("scan").paginate(TableName=TABLE)
        for item in page["Items"]
    }
    assert {f"item{i}" for i in range(300)} <= keys
    assert not any(key.startswith("tx") for key in keys)
    assert set(errors) == {"TransactionCanceledException"}
