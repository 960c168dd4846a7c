"""The stack's synthesized template, built in-process, and kept until its sources change."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from app import build_app
from infra.config import ChatConfig


@functools.cache
def chat_template() -> Template:
    """ChatStack with the default configuration (and cdk.json's feature flags)."""
    return template_with()


@functools.cache
def alarm_email_template() -> Template:
    """ChatStack with `alarmEmail` set: the alarm topic and its KMS key."""
    return template_with(alarmEmail="ops@example.com")


ROOT = Path(__file__).resolve().parents[2]
# Everything a synth reads: the app, its context, the constructs, the function's code and
# settings, the web client (a deployed asset), and the pinned aws-cdk-lib.
SYNTH_INPUTS = ("app.py", "cdk.json", "requirements.txt", "requirements-run.txt")
SYNTH_INPUT_TREES = ("infra", "lambda_src", "hooks", "web")
TEMPLATE_CACHE = ROOT / ".pytest_cache" / "chat-templates"


def template_with(**context: Any) -> Template:
    """ChatStack synthesized with cdk.json's context plus `context`.

    A synth in-process takes 5-25 s of the jsii runtime, and the same template is asked for
    by many modules and by every test worker. So the template is kept in
    .pytest_cache/chat-templates/ under a hash of the context and of every file a synth
    reads (`sources_digest`): any change to the app, the constructs, the function, the web
    client or the pinned CDK makes a new synth. A synth that fails is not kept.
    """
    digest = hashlib.sha256(
        json.dumps([sources_digest(), context], sort_keys=True, default=str).encode()
    ).hexdigest()[:32]
    TEMPLATE_CACHE.mkdir(parents=True, exist_ok=True)
    cached = TEMPLATE_CACHE / f"{digest}.json"
    with (TEMPLATE_CACHE / f"{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker synthesizes, the others wait for it
        if not cached.exists():
            partial = cached.with_suffix(".partial")
            partial.write_text(json.dumps(synthesize(**context).to_json()))
            partial.replace(cached)
    return Template.from_json(json.loads(cached.read_text()))


def synthesize(**context: Any) -> Template:
    """ChatStack synthesized now, in this process (no cache)."""
    defaults = json.loads((ROOT / "cdk.json").read_text())
    app = build_app({**defaults["context"], **context})
    stack = app.node.find_child(ChatConfig.from_context(app.node).stack_name)
    return Template.from_stack(stack)  # type: ignore[arg-type]


@functools.cache
def sources_digest() -> str:
    """A hash of every file a synth reads (SYNTH_INPUTS and the trees SYNTH_INPUT_TREES)."""
    files = [ROOT / name for name in SYNTH_INPUTS]
    for tree in SYNTH_INPUT_TREES:
        files += sorted(
            path
            for path in (ROOT / tree).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts
        )
    return files_digest(files)


def files_digest(files: list[Path]) -> str:
    """A hash of these project files: each one's path in the project and its bytes."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def table_definition(template: Template) -> dict[str, Any]:
    """The one DynamoDB table's properties, as the stack declares them."""
    tables = template.find_resources("AWS::DynamoDB::GlobalTable")
    assert len(tables) == 1, tables
    (table,) = tables.values()
    return dict(table["Properties"])


def create_table(client: Any, name: str, template: Template | None = None) -> str:
    """Create `name` in (moto's) DynamoDB with the key schema and TTL the stack declares."""
    props = table_definition(template or chat_template())
    client.create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    return name


def websocket_api_id(template: Template) -> str:
    """The chat's WebSocket API (the stack also has the server API, an HTTP API)."""
    (found,) = template.find_resources(
        "AWS::ApiGatewayV2::Api", {"Properties": {"ProtocolType": "WEBSOCKET"}}
    )
    return str(found)


def websocket_resources(template: Template, kind: str) -> dict[str, Any]:
    """The resources of type `kind` (routes, integrations, stages) of the WebSocket API."""
    api = {"Ref": websocket_api_id(template)}
    return dict(template.find_resources(kind, {"Properties": {"ApiId": api}}))
