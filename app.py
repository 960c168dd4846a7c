#!/usr/bin/env python3
"""CDK app: builds ChatStack from its context (defaults in infra/config.py, -c overrides).

Every synth runs cdk-nag's AwsSolutions and Serverless packs (infra/nag.py): a finding that
is not acknowledged on its resource, error or warning, fails the synth.
"""

from __future__ import annotations

import sys

import aws_cdk as cdk

from infra.config import ChatConfig
from infra.deploy_role import DEPLOY_ROLE_STACK_NAME, DeployRoleStack, GitHubDeployConfig
from infra.nag import add_rule_packs, unacknowledged_findings
from infra.stack import ChatStack


def build_app(context: dict[str, object] | None = None) -> cdk.App:
    """The app with its one stack; environment-agnostic unless account/region are given."""
    app = cdk.App(context=context)
    add_rule_packs(app)
    config = ChatConfig.from_context(app.node)
    env = None
    if config.account or config.region:
        env = cdk.Environment(account=config.account, region=config.region)
    ChatStack(app, config.stack_name, config=config, env=env)
    # The pipeline's deploy roles, only with -c githubRepository=owner/name (docs/deploy.md).
    github = GitHubDeployConfig.from_context(app.node)
    if github is not None:
        DeployRoleStack(app, DEPLOY_ROLE_STACK_NAME, config=github, env=env)
    return app


def main(app: cdk.App | None = None) -> None:
    """Synthesize; exit non-zero if cdk-nag left any finding, warnings included."""
    findings = unacknowledged_findings((app or build_app()).synth())
    if findings:
        sys.exit(
            "cdk-nag findings fail the synth (fix them, or acknowledge them with a reason "
            "on their resource: infra/nag.py):\n  " + "\n  ".join(findings)
        )


if __name__ == "__main__":
    main()
