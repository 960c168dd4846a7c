"""cdk-nag: the rule packs every synth runs, and the findings acknowledged resource by resource.

cdk-nag 3 runs as a CDK policy-validation plugin (`Validations.of(app).add_plugins`, which
replaced v2's Aspects; v2's NagSuppressions became CDK's `Validations.acknowledge`). Any
finding that is not acknowledged, a warning as much as an error, fails the synth: in memory
(tests) `app.synth()` raises ValidationFailed, and under the CDK CLI app.py exits non-zero,
so `cdk synth`, `make synth` and every test that synthesizes the app fail on it.
Acknowledgments go on the one CloudFormation resource they are about (never on a stack or a
parent construct, which would cover resources added later), each with a reason;
docs/security.md lists them and tests/infra/test_nag.py pins the list.

cdk-nag's rules recognise a resource by its L1 class (`node instanceof CfnRole`), so a
resource that a library declares as a plain `CfnResource` of an AWS type (aws-cdk-lib's
custom-resource providers do, for their role and function) is checked by no rule at all.
Each such resource carries a review instead (`review_outside_nag`), and `unseen_by_nag`
lists those without one: tests/infra/test_nag.py fails on any.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Acknowledgment, App, CfnResource, Validations, cx_api
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct

# The packs' names, which prefix their rule ids (AwsSolutions-IAM4, Serverless-LambdaDLQ).
PACKS = ("AwsSolutions", "Serverless")
STRICT_VALIDATION = "@aws-cdk/core:strictCfnValidateErrors"
# A reason must say why the rule does not apply here, not just that it is acknowledged.
MIN_REASON_LENGTH = 40
# Metadata key of a review recorded for a resource cdk-nag cannot see.
REVIEWED_OUTSIDE_NAG = "chat:reviewed-outside-cdk-nag"


def add_rule_packs(app: App) -> None:
    """Run the AwsSolutions and Serverless packs over the whole app on every synth.

    CDK fails the synth on a plugin's errors only; its strict mode (a cx-api context key,
    `cxapi.STRICT_CFN_VALIDATE_ERRORS`) fails it on any unacknowledged warning as well.
    """
    app.node.set_context(STRICT_VALIDATION, True)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def unacknowledged_findings(assembly: cx_api.CloudAssembly) -> list[str]:
    """The findings left in the assembly's validation report, one line each.

    In memory (tests) strict mode makes `synth()` raise on them; under the CDK CLI, CDK
    only sets the exit code of its own Node.js process, so app.py checks with this.
    """
    path = Path(assembly.directory) / "validation-report.json"
    if not path.exists():
        return []
    report = json.loads(path.read_text())
    return [
        f"{violation['severity'].upper()} {violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]


def acknowledge(resource: IConstruct, rule_id: str, reason: str) -> None:
    """Acknowledge one cdk-nag rule (or one granular finding, `Rule[Finding]`) on one resource."""
    if not isinstance(resource, CfnResource):
        raise TypeError(
            f"acknowledge {rule_id} on a CloudFormation resource, not on {resource.node.path}"
        )
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"the reason for acknowledging {rule_id} must say why it does not apply")
    pack = rule_id.split("-", 1)[0]
    if pack not in PACKS:
        raise ValueError(f"{rule_id} is not a rule of {', '.join(PACKS)}")
    # `Pack::Rule` is how CDK names a plugin's finding (the report's "Acknowledge with").
    Validations.of(resource).acknowledge(Acknowledgment(id=f"{pack}::{rule_id}", reason=reason))


def acknowledgments(scope: IConstruct) -> list[tuple[str, str, str]]:
    """Every acknowledgment under `scope`: (resource path, rule id, reason), in tree order."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                for rule, reason in entry.data.items():
                    found.append((construct.node.path, rule.split("::", 1)[-1], reason))
    return found


def review_outside_nag(resource: IConstruct, reason: str) -> None:
    """Record why `resource`, which cdk-nag's rules cannot see, is acceptable as it is."""
    if not isinstance(resource, CfnResource):
        raise TypeError(f"review a CloudFormation resource, not {resource.node.path}")
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError("the review must say what the resource can do and why it is needed")
    resource.node.add_metadata(REVIEWED_OUTSIDE_NAG, reason)


def reviews_outside_nag(scope: IConstruct) -> list[tuple[str, str]]:
    """Every review under `scope`: (resource path, reason), in tree order."""
    return [
        (construct.node.path, str(entry.data))
        for construct in scope.node.find_all()
        for entry in construct.node.metadata
        if entry.type == REVIEWED_OUTSIDE_NAG
    ]


def unseen_by_nag(scope: IConstruct) -> list[str]:
    """Resources of an AWS type declared as a plain CfnResource (no L1 class, so no cdk-nag
    rule applies to them) that carry no review: the paths of each."""
    reviewed = {path for path, _ in reviews_outside_nag(scope)}
    return [
        construct.node.path
        for construct in scope.node.find_all()
        if type(construct) is CfnResource
        and construct.cfn_resource_type.startswith("AWS::")
        and construct.node.path not in reviewed
    ]
