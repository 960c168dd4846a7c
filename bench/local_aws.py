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
from sandbox.template import load_template

ROOT = Path(__file__).resolve().parent.parent
CDK_OUT = ROOT / "cdk.out"
TEMPLATE = CDK_OUT / "ChatStack.template.json"
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


def find_template(cdk_out: Path = CDK_OUT) -> Path:
    """The chat stack's template in cdk.out: `ChatStack` by default, or a staged stack
    (`Chat-<stage>`, app.py) — the first stack in the manifest whose template has the chat's
    WebSocket API and table."""
    default = cdk_out / "ChatStack.template.json"
    if default.exists():
        return default
    try:
        manifest = json.loads((cdk_out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        path = cdk_out / artifact.get("properties", {}).get("templateFile", "")
        try:
            resources = json.loads(path.read_text(encoding="utf-8")).get("Resources", {})
        except (OSError, ValueError):
            continue
        kinds = {r.get("Type") for r in resources.values()}
        tables = {"AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"}
        if "AWS::ApiGatewayV2::Api" in kinds and kinds & tables:
            return Path(path)
    return default


@contextmanager
def chat_table_process(template: Path | None = None) -> Iterator[tuple[Any, str]]:
    """(DynamoDB client, table name) like `chat_table`, the moto server in another process
    (on the stand-ins' core), so that its CPU is not counted as ours."""
    from bench.measure import STANDIN_CPU, cores  # noqa: PLC0415
    from bench.standin import StandinProcess  # noqa: PLC0415

    template = template or find_template()
    if not template.exists():
        raise FileNotFoundError(f"{template} is missing: run `make synth` first")
    cpu = STANDIN_CPU if cores() > 1 else None
    with StandinProcess(cpu, "--dynamodb", str(template)) as child:
        endpoint, table = child.first["endpoint"], child.first["table"]
        yield dynamodb.client(endpoint, REGION, max_pool_connections=64), table


@contextmanager
def chat_table(template: Path | None = None) -> Iterator[tuple[Any, str]]:
    """(DynamoDB client, table name): an embedded moto server with the stack's one table."""
    template = template or (TEMPLATE if TEMPLATE.exists() else find_template())
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
