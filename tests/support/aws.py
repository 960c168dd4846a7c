"""moto fixtures: DynamoDB in memory, with requests applied one at a time as DynamoDB does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from sandbox.moto_patch import answer_as_json

# The @connections calls go to sandbox.connections_standin, not to moto's model of it
# (which answers 200 for any id and so cannot say "gone").
MOTO_CONFIG: Any = {"core": {"passthrough": {"services": ["apigatewaymanagementapi"]}}}

_serial = threading.RLock()


@contextmanager
def serialized_moto() -> Iterator[None]:
    """Make moto apply each request atomically.

    moto's TransactWriteItems snapshots and restores whole tables, so two threads
    interleaving inside moto can lose each other's writes; real DynamoDB serializes
    conflicting writes. A lock around each request restores that guarantee.
    """
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with _serial:
            return original(self, request)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


@contextmanager
def mocked_dynamodb() -> Iterator[Any]:
    """A moto-backed DynamoDB client (thread-safe, as boto3 clients are), answering in JSON
    as the sandbox's does (sandbox.moto_patch.answer_as_json)."""
    answer_as_json()
    with mock_aws(config=MOTO_CONFIG), serialized_moto():
        yield boto3.client("dynamodb", region_name="us-east-1")


TABLE = "ChatStack-Connections"


@contextmanager
def chat_table() -> Iterator[Any]:
    """A moto DynamoDB client with the stack's table, named TABLE, created from the template."""
    from tests.support.stack import create_table  # noqa: PLC0415 (synthesizes the stack)

    with mocked_dynamodb() as client:
        create_table(client, TABLE)
        yield client
