"""The pipeline's identity in AWS: GitHub's OIDC provider and two roles that can only hop on.

Created by app.py only with `-c githubRepository=owner/name` (so the default synth is
unchanged), and deployed once by hand with administrator credentials (docs/deploy.md);
the pipeline (.github/workflows/ship.yml) never deploys it, so it cannot widen itself.

- **Deploy role**, for the `dev` and `prod` deploy jobs: trusted only for tokens whose
  `sub` is `repo:<owner/name>:environment:dev` or `…:environment:prod`. A job that names
  a GitHub environment gets that environment in its `sub` instead of the branch, so the
  environments' own rules (main only, required reviewers for prod) decide who gets in; a
  job on main without an environment is not trusted, or it could skip prod's reviewers.
  Its only permission: `sts:AssumeRole` on the CDK bootstrap roles of this account and
  Region (deploy, file-publishing, image-publishing, lookup), which do the work.
- **Diff role**, for the pull-request `cdk diff` job: trusted only for
  `repo:<owner/name>:pull_request` and may assume the bootstrap **lookup** role only
  (read-only), which is what `cdk diff --method template` uses to read the deployed
  templates. Pull requests from forks get no OIDC token at all.

Both trust policies also require `aud` = `sts.amazonaws.com`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import Arn, ArnComponents, CfnOutput, DefaultStackSynthesizer, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct, Node

from infra.config import DEFAULTS, ConfigError

DEPLOY_ROLE_STACK_NAME = "ChatDeployRole"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
# The GitHub environments the deploy jobs run in (.github/workflows/ship.yml), one per stage.
DEPLOY_ENVIRONMENTS = ("dev", "prod")
# The roles `cdk bootstrap` creates: cdk-<qualifier>-<kind>-role-<account>-<region>.
BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"

# GitHub: an owner is letters, digits and single hyphens (at most 39); a repository name is
# letters, digits, '.', '_' and '-' (at most 100), and never "." or "..".
_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]{1,100}$")
_PROVIDER_ARN = re.compile(
    rf"^arn:aws[a-z-]*:iam::\d{{12}}:oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$"
)
_QUALIFIER = re.compile(r"^[A-Za-z0-9_-]{1,10}$")


@dataclass(frozen=True)
class GitHubDeployConfig:
    """Which repository may deploy, and whether the account already has GitHub's provider."""

    repository: str
    oidc_provider_arn: str | None = None
    qualifier: str = DefaultStackSynthesizer.DEFAULT_QUALIFIER

    @classmethod
    def from_context(cls, node: Node) -> GitHubDeployConfig | None:
        """None unless githubRepository is set; raises ConfigError naming a bad key."""
        repository = str(_context(node, "githubRepository") or "").strip()
        if not repository:
            return None
        if not _REPOSITORY.match(repository) or repository.split("/")[1] in (".", ".."):
            raise ConfigError(
                f"context githubRepository={repository!r} must be a GitHub repository as "
                "owner/name, e.g. octo-org/websocket-chat"
            )
        provider = str(_context(node, "githubOidcProviderArn") or "").strip()
        if provider and not _PROVIDER_ARN.match(provider):
            raise ConfigError(
                f"context githubOidcProviderArn={provider!r} must be the ARN of the account's "
                f"existing {GITHUB_OIDC_HOST} provider, e.g. arn:aws:iam::123456789012:"
                f"oidc-provider/{GITHUB_OIDC_HOST} (or empty, to create it)"
            )
        qualifier = str(
            node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT)
            or DefaultStackSynthesizer.DEFAULT_QUALIFIER
        )
        if not _QUALIFIER.match(qualifier):
            raise ConfigError(
                f"context {BOOTSTRAP_QUALIFIER_CONTEXT}={qualifier!r} is not a bootstrap qualifier"
            )
        return cls(repository=repository, oidc_provider_arn=provider or None, qualifier=qualifier)

    def subjects(self, *claims: str) -> list[str]:
        """The token `sub` values for this repository: repo:<owner/name>:<claim>."""
        return [f"repo:{self.repository}:{claim}" for claim in claims]

    @property
    def deploy_subjects(self) -> list[str]:
        return self.subjects(*(f"environment:{name}" for name in DEPLOY_ENVIRONMENTS))

    @property
    def diff_subjects(self) -> list[str]:
        return self.subjects("pull_request")


def _context(node: Node, key: str) -> Any:
    value = node.try_get_context(key)
    return DEFAULTS[key] if value is None else value


class DeployRoleStack(Stack):
    """GitHub's OIDC provider (or the account's existing one) and the deploy and diff roles."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: GitHubDeployConfig, **kwargs: Any
    ) -> None:
        kwargs.setdefault(
            "description",
            f"GitHub Actions deploy roles for {config.repository} (docs/deploy.md)",
        )
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        if config.oidc_provider_arn:
            provider_arn = config.oidc_provider_arn
        else:
            # One provider per URL per account: import it (githubOidcProviderArn) if another
            # stack or a person already created it. IAM fetches the certificate thumbprint
            # itself when none is given.
            provider = iam.OidcProviderNative(
                self, "GitHubOidcProvider", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE]
            )
            provider_arn = provider.oidc_provider_arn

        self.deploy_role = self._role(
            "DeployRole",
            provider_arn,
            config.deploy_subjects,
            BOOTSTRAP_ROLE_KINDS,
            "GitHub Actions deploy jobs (environments "
            f"{', '.join(DEPLOY_ENVIRONMENTS)}) of {config.repository}: may only assume the "
            "CDK bootstrap roles",
        )
        self.diff_role = self._role(
            "DiffRole",
            provider_arn,
            config.diff_subjects,
            ("lookup",),
            f"GitHub Actions pull-request cdk diff of {config.repository}: may only assume the "
            "read-only CDK lookup role",
        )

        CfnOutput(
            self,
            "DeployRoleArn",
            value=self.deploy_role.role_arn,
            description="GitHub variable AWS_DEPLOY_ROLE_ARN (environments dev and prod)",
        )
        CfnOutput(
            self,
            "DiffRoleArn",
            value=self.diff_role.role_arn,
            description="GitHub variable AWS_DIFF_ROLE_ARN (pull requests)",
        )
        CfnOutput(self, "GitHubOidcProviderArn", value=provider_arn)

    def bootstrap_role_arn(self, kind: str) -> str:
        """arn:<partition>:iam::<account>:role/cdk-<qualifier>-<kind>-role-<account>-<region>."""
        return Arn.format(
            ArnComponents(
                service="iam",
                region="",
                resource="role",
                resource_name=(
                    f"cdk-{self.config.qualifier}-{kind}-role-{self.account}-{self.region}"
                ),
            ),
            self,
        )

    def _role(
        self,
        construct_id: str,
        provider_arn: str,
        subjects: list[str],
        kinds: tuple[str, ...],
        description: str,
    ) -> iam.Role:
        return iam.Role(
            self,
            construct_id,
            description=description,
            # Exact subjects (StringEquals), never a wildcard: another branch, another
            # environment, a fork or another repository cannot match.
            assumed_by=iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": subjects,
                    }
                },
            ),
            inline_policies={
                "AssumeCdkBootstrapRoles": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=["sts:AssumeRole"],
                            resources=[self.bootstrap_role_arn(kind) for kind in kinds],
                        )
                    ]
                )
            },
        )
