"""Optional sign-in: a Lambda REQUEST authorizer on $connect that verifies the client's JWT.

Only built with `signIn=true` (infra/config.py). The authorizer's code is
`authorizer_src/` as-is; PyJWT and cryptography come from a layer built beforehand by
`make authorizer-layer` (infra/authorizer_layer.py), so synth stays offline.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.authorizer_layer import (
    BUILD_INFO,
    PLATFORM,
    PYTHON_VERSION,
    ROOT,
    check_built,
    requirements,
)
from infra.chat_function import RUNTIME, own_log_group_and_role
from infra.config import SignInConfig
from infra.nag import acknowledge

AUTHORIZER_SOURCE = ROOT / "authorizer_src"
HANDLER = "authorizer.handler"
# Verifying one signature takes milliseconds; the JWKS fetch (once per environment, then
# every 5 minutes) times out after 3 s.
MEMORY_MB = 256
TIMEOUT_SECONDS = 10


def authorizer_environment(config: SignInConfig, log_level: str) -> dict[str, str]:
    """The authorizer's settings (authorizer_src/authorizer.py: Settings.from_env)."""
    return {
        "SIGN_IN_ISSUER": config.issuer,
        "SIGN_IN_AUDIENCE": config.audience,
        "SIGN_IN_JWKS_URL": config.jwks_url,
        "SIGN_IN_NAME_CLAIM": config.name_claim,
        "SIGN_IN_GROUPS_CLAIM": config.groups_claim,
        "SIGN_IN_TOKEN_SOURCE": config.token_source,
        "LOG_LEVEL": log_level,
    }


class SignIn(Construct):
    """The authorizer function (own log group, dependencies in a layer) and the API Gateway
    authorizer to attach to the $connect route (`self.authorizer`).

    Raises infra.authorizer_layer.LayerNotBuiltError, naming the build command, if the layer is
    missing or stale.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: SignInConfig,
        log_level: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        layer_dir = check_built(config.layer_dir)
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            description=(
                f"Sign-in authorizer: {', '.join(requirements())} (cp{PYTHON_VERSION}, {PLATFORM})"
            )[:256],
            code=lambda_.Code.from_asset(str(layer_dir), exclude=[BUILD_INFO]),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
        )
        # It needs nothing but its own log group (the JWKS is fetched over HTTPS).
        self.log_group, self.role = own_log_group_and_role(
            self,
            role_description="The sign-in authorizer: writes to its own log group, nothing else",
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="WebSocket chat: sign-in authorizer on $connect (verifies a JWT)",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(AUTHORIZER_SOURCE),
                exclude=["__pycache__", "*.pyc", ".mypy_cache", "requirements.txt"],
            ),
            layers=[self.layer],
            memory_size=MEMORY_MB,
            timeout=Duration.seconds(TIMEOUT_SECONDS),
            role=self.role,
            log_group=self.log_group,
            environment=authorizer_environment(config, log_level),
        )
        resource = self.function.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "Serverless-LambdaDLQ",
            "API Gateway invokes the authorizer synchronously and gets its error back (the "
            "client gets 500); a dead-letter queue only receives failed asynchronous invocations",
        )
        acknowledge(
            resource,
            "Serverless-LambdaTracing",
            "API Gateway WebSocket APIs do not support X-Ray, so a trace would start at the "
            "authorizer; X-Ray needs xray:Put* on Resource '*', and each JSON log line carries "
            "the request and connection ids",
        )
        # Binding it to the route creates the AWS::ApiGatewayV2::Authorizer and a Lambda
        # permission for apigateway.amazonaws.com scoped to this API's authorizer ARN.
        self.authorizer = authorizers.WebSocketLambdaAuthorizer(
            "SignIn", self.function, identity_source=[config.identity_source]
        )
