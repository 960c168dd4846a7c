"""moto's DynamoDB made proportional to what an operation touches, for long load runs.

The sandbox's embedded moto answers TransactWriteItems by deep-copying every table it
touches (to roll back), and a Query by sorting the whole table: both O(items in the
table). v1.1 keeps two items per message (history, de-duplication record) until their
TTL, which moto never enforces, so after a few thousand messages every sendPublic costs
seconds. For `make load` the load tool (bench/load) runs its own moto server in a
separate process (`--dynamodb-server`), with the sandbox's one-request-at-a-time lock,
patched by `speed_up_moto` so that those two operations are proportional to what they
touch: a transaction checks every condition
against the state before it (each item at most once, as DynamoDB requires), then
applies its writes, undoing them from per-item copies if one fails; a Query on the
table reads only its partition. Answers are the same; only the cost differs.

`answer_as_json` alone (json.dumps of moto's result rather than its generic serializer)
applies wherever moto serves the chat: the tests, the sandbox and `make load`.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

_partition = threading.local()


def moto_internals() -> Any:
    """The moto internals the speed-ups use, or None when this moto lacks them."""
    import types  # noqa: PLC0415

    try:
        from moto.dynamodb import exceptions, models, responses  # noqa: PLC0415
        from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
        from moto.dynamodb.models.table import Table  # noqa: PLC0415
    except ImportError:
        return None
    needed = [
        hasattr(models.DynamoDBBackend, "transact_write_items"),
        hasattr(models, "get_filter_expression"),
        hasattr(Table, "query") and hasattr(Table, "all_items"),
        hasattr(getattr(responses, "DynamoResult", None), "execute_result"),
    ]
    if not all(needed):
        return None
    return types.SimpleNamespace(
        backend=models.DynamoDBBackend,
        condition=models.get_filter_expression,  # type: ignore[attr-defined]
        DynamoType=DynamoType,
        DynamoResult=responses.DynamoResult,
        Table=Table,
        errors=exceptions,
    )


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _restore(moto: Any, backend: Any, table_name: str, key: dict[str, Any], old: Any) -> None:
    """Put back the item `key` as it was (`old`, None: absent), bypassing every check."""
    table = backend.get_table(table_name)
    hash_key = moto.DynamoType(key[table.hash_key_attr])
    if table.range_key_attr is None:
        if old is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = old
        return
    range_key = moto.DynamoType(key[table.range_key_attr])
    if old is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = old


def _apply(backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    common = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": names,
        "expression_attribute_values": values,
    }
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], **common)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key, **common)
    elif op_type == "Update":
        backend.update_item(
            op["TableName"], key, update_expression=op["UpdateExpression"], **common
        )


def _check(moto: Any, backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> Any:
    """The transaction's cancellation reason for one action, checked on the state before it."""
    original = None
    try:
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if not moto.condition(condition, names, values).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original = current.to_json()["Attributes"]
                raise moto.errors.ConditionalCheckFailed(item=original)
    except moto.errors.MockValidationException:
        raise
    except moto.errors.ConditionalCheckFailed as error:
        return ("ConditionalCheckFailed", str(error.message), original)
    except Exception as error:
        return (type(error).__name__, str(error), original)
    return (None, None, None)


def transact_write_items_copying_written(
    moto: Any, backend: Any, transact_items: list[dict[str, Any]]
) -> None:
    """moto's TransactWriteItems, copying only the items it writes (see above)."""
    errors = moto.errors
    if len(transact_items) > 100:
        raise errors.TooManyTransactionsException()
    ops: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    targets: set[tuple[str, str]] = set()
    for item in transact_items:
        if len(item) > 1:
            raise errors.TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        key = _key_of(backend, op_type, op)
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in targets:
            raise errors.MultipleTransactionsException()
        targets.add(target)
        ops.append((op_type, op, key))
    reasons = [_check(moto, backend, op_type, op, key) for op_type, op, key in ops]
    if any(code is not None for code, _, _ in reasons):
        raise errors.TransactionCanceledException(reasons)
    undo: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for index, (op_type, op, key) in enumerate(ops):
            current = backend.get_item(op["TableName"], key)
            undo.append((op["TableName"], key, copy.deepcopy(current)))
            try:
                _apply(backend, op_type, op, key)
            except errors.MockValidationException:
                raise
            except Exception as error:
                failed: list[Any] = [(None, None, None)] * len(ops)
                failed[index] = (type(error).__name__, str(error), None)
                raise errors.TransactionCanceledException(failed) from error
    except Exception:
        for table_name, key, old in reversed(undo):
            _restore(moto, backend, table_name, key, old)
        raise


def speed_up_moto() -> bool:
    """Patch moto's DynamoDB in this process as described above; False if moto changed."""
    moto = moto_internals()
    if moto is None:
        return False
    original_query = moto.Table.query
    original_all_items = moto.Table.all_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        transact_write_items_copying_written(moto, self, transact_items)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is None and hash_key is not None and self.range_key_attr:
            _partition.current = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.current = None

    def all_items(self: Any) -> Any:
        current = getattr(_partition, "current", None)
        if current is not None and current[0] is self:
            part = self.items.get(current[1], {})
            return sorted(part.values(), key=lambda item: item.range_key)
        return original_all_items(self)

    moto.backend.transact_write_items = transact_write_items
    moto.Table.query = query
    moto.Table.all_items = all_items
    answer_as_json()
    return True


def answer_as_json() -> bool:
    """Answer moto's DynamoDB item operations with `json.dumps` of its result, as DynamoDB's
    JSON protocol is, instead of moto's generic shape-walking serializer (about a fifth of
    the CPU of a moto request, and ~50 ms for a Query of 200 items). Anything json cannot
    write (DescribeTable's dates, binary values) and every error take moto's own way.

    The answers are the same ones: tests/adapters/test_moto_json_answers.py runs each
    operation the chat uses both ways and compares what boto3 reads. Idempotent; False when
    this moto lacks the internals it replaces. The tests' moto, the sandbox's embedded
    DynamoDB and `make load`'s moto server all answer this way.
    """
    moto = moto_internals()
    if moto is None:
        return False
    result_class = moto.DynamoResult
    if getattr(result_class.execute_result, "answers_as_json", False):
        return True
    original = result_class.execute_result
    headers = {"Content-Type": "application/x-amz-json-1.0"}

    def without_none(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [without_none(v) for v in value]
        return value

    def execute_result(self: Any, context: Any) -> Any:
        try:
            body = json.dumps(without_none(self.result), separators=(",", ":"))
        except (TypeError, ValueError):
            return original(self, context)
        return 200, dict(headers), body

    execute_result.answers_as_json = True  # type: ignore[attr-defined]
    execute_result.moto_execute_result = original  # type: ignore[attr-defined]
    result_class.execute_result = execute_result
    return True
