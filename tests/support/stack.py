"""The stack's synthesized template, built in-process once per test session."""

from __future__ import annotations

import functools
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


def template_with(**context: Any) -> Template:
    defaults = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())
    app = build_app({**defaults["context"], **context})
    stack = app.node.find_child(ChatConfig.from_context(app.node).stack_name)
    return Template.from_stack(stack)  # type: ignore[arg-type]


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
