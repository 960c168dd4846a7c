#!/usr/bin/env python3
"""CDK app: builds ChatStack from its context (defaults in infra/config.py, -c overrides)."""

from __future__ import annotations

import aws_cdk as cdk

from infra.config import ChatConfig
from infra.stack import ChatStack


def build_app(context: dict[str, object] | None = None) -> cdk.App:
    """The app with its one stack; environment-agnostic unless account/region are given."""
    app = cdk.App(context=context)
    config = ChatConfig.from_context(app.node)
    env = None
    if config.account or config.region:
        env = cdk.Environment(account=config.account, region=config.region)
    ChatStack(app, config.stack_name, config=config, env=env)
    return app


if __name__ == "__main__":
    build_app().synth()
