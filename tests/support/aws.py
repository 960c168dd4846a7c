"""moto fixtures: DynamoDB in memory, with requests applied one at a time as DynamoDB does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from sandbox.moto_patch import answer_as_json, moto_internals, transact_write_items_copying_written

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


def transactions_copy_written_items() -> bool:
    """Make moto's TransactWriteItems copy only the items it writes, to undo them if it is
    cancelled, rather than deep-copying every table it touches (the cost of which grows with
    the table: half of a transaction's time on a small one). The transaction is
    sandbox.moto_patch's, which `make load` runs: every condition checked on the state
    before it, then the writes applied, undone from those copies if one fails.

    The answers and the table afterwards are moto's own:
    tests/adapters/test_moto_transactions.py runs the transactions the chat writes, and
    the ways they fail, both ways and compares. Idempotent and reversible
    (`transact_write_items.moto_transact_write_items`); False when moto lacks the
    internals it replaces.
    """
    moto = moto_internals()
    if moto is None:
        return False
    backend = moto.backend
    if getattr(backend.transact_write_items, "copies_written_items", False):
        return True
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        transact_write_items_copying_written(moto, self, transact_items)

    transact_write_items.copies_written_items = True  # type: ignore[attr-defined]
    transact_write_items.moto_transact_write_items = original  # type: ignore[attr-defined]
    backend.transact_write_items = transact_write_items
    return True


def restore_motos_own(monkeypatch: Any, owner: Any, name: str, original_attr: str) -> None:
    """Undo, for one test, a speed-up that replaced `owner.name` and kept moto's own method
    as its `original_attr` (nothing to undo when the speed-up is off)."""
    original = getattr(getattr(owner, name), original_attr, None)
    if original is not None:
        monkeypatch.setattr(owner, name, original)


@contextmanager
def mocked_dynamodb() -> Iterator[Any]:
    """A moto-backed DynamoDB client (thread-safe, as boto3 clients are), answering in JSON
    as the sandbox's does (sandbox.moto_patch.answer_as_json), its transactions copying
    only what they write (transactions_copy_written_items)."""
    answer_as_json()
    transactions_copy_written_items()
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
