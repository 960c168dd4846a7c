"""The local AWS the benchmarks run against, built from the sandbox's own parts.

DynamoDB is the sandbox's embedded moto server with the tables of the synthesized
template; events are the sandbox's API Gateway event builders. Nothing here imports
the tests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox import dynamodb
from sandbox.events import ConnectionInfo, connect_event, epoch_ms, message_event, new_id
from sandbox.template import find_template, load_template

ROOT = Path(__file__).resolve().parent.parent
CDK_OUT = ROOT / "cdk.out"
REGION = "us-east-1"
ROUTES = frozenset({"setName", "sendPublic", "sendPrivate"})


class LambdaContext:
    """The attributes of Lambda's context object that the handler reads."""

    function_name = "ChatFunction"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:ChatFunction"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


def chat_template() -> Path:
    """The chat stack's template in CDK_OUT, found by the sandbox's one finder
    (`sandbox.template.find_template`: the stacks the last synth listed, so `ChatStack`
    or a staged `Chat-<stage>`, never an earlier synth's; of several, the chat's)."""
    return find_template(CDK_OUT, None)


@contextmanager
def chat_table_process(
    template: Path | None = None, *, fast: bool = False
) -> Iterator[tuple[Any, str]]:
    """(DynamoDB client, table name) like `chat_table`, the moto server in another process
    (on the stand-ins' core), so that its CPU is not counted as ours. `fast`: that moto
    patched by `sandbox.moto_patch.speed_up_moto` (same answers; a transaction no longer
    copies the whole table), for tables of many thousand items."""
    from bench.measure import STANDIN_CPU, cores  # noqa: PLC0415
    from bench.standin import StandinProcess  # noqa: PLC0415

    template = template or chat_template()
    if not template.exists():
        raise FileNotFoundError(f"{template} is missing: run `make synth` first")
    cpu = STANDIN_CPU if cores() > 1 else None
    extra = ("--fast",) if fast else ()
    with StandinProcess(cpu, "--dynamodb", str(template), *extra) as child:
        endpoint, table = child.first["endpoint"], child.first["table"]
        yield dynamodb.client(endpoint, REGION, max_pool_connections=64), table


@contextmanager
def chat_table(template: Path | None = None) -> Iterator[tuple[Any, str]]:
    """(DynamoDB client, table name): an embedded moto server with the stack's one table."""
    template = template or chat_template()
    if not template.exists():
        raise FileNotFoundError(f"{template} is missing: run `make synth` first")
    (table,) = load_template(template, region=REGION).tables.values()
    server = dynamodb.EmbeddedDynamoDB()
    endpoint = server.start()
    try:
        dynamodb.create_tables(endpoint, REGION, [table])
        yield dynamodb.client(endpoint, REGION, max_pool_connections=64), table.name
    finally:
        server.stop()


def _info(connection_id: str) -> ConnectionInfo:
    return ConnectionInfo(
        connection_id=connection_id,
        connected_at=epoch_ms(),
        api_id="benchapi01",
        stage="production",
        domain_name="benchapi01.execute-api.us-east-1.amazonaws.com",
        source_ip="127.0.0.1",
        user_agent=None,
    )


def connect(connection_id: str) -> dict[str, Any]:
    """A CONNECT event for the connection."""
    return connect_event(
        _info(connection_id), headers=[], query=[], request_id=new_id(), request_ms=epoch_ms()
    )


def message(connection_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A MESSAGE event carrying `body`, routed as the stack's selection expression would."""
    action = body.get("action")
    return message_event(
        _info(connection_id),
        route_key=action if action in ROUTES else "$default",
        body=json.dumps(body),
        request_id=new_id(),
        message_id=new_id(),
        request_ms=epoch_ms(),
    )
