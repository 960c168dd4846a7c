"""The chat's Lambda functions: the one that serves every route, and its fan-out worker."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

LAMBDA_SOURCE = Path(__file__).resolve().parent.parent / "lambda_src"
HANDLER = "handler.lambda_handler"
WORKER_HANDLER = "handler.fanout_handler"
ADMIN_HANDLER = "admin.handler"
# The newest Python that both this CDK release and Lambda support.
RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64


def own_log_group_and_role(
    scope: Construct,
    *,
    role_description: str,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
) -> tuple[logs.LogGroup, iam.Role]:
    """A function's own log group (`LogGroup`) and a role (`Role`) that Lambda assumes and
    that may write to that log group only: the start of every function's role in the stack
    (not AWSLambdaBasicExecutionRole, which allows any log group)."""
    log_group = logs.LogGroup(
        scope, "LogGroup", retention=log_retention, removal_policy=removal_policy
    )
    role = iam.Role(
        scope,
        "Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=role_description,
    )
    log_group.grant_write(role)
    return log_group, role


class ChatFunction(Construct):
    """Python on arm64, code from lambda_src/ as-is (the runtime provides boto3; `layers`,
    AWS's public Powertools layer, provides Powertools: infra/powertools.py).

    Its role starts empty: it may write to its own log group only (not the account-wide
    AWSLambdaBasicExecutionRole, which allows any log group); the stack adds the table and
    the @connections grants.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str | None,
        memory_mb: int,
        timeout_seconds: int,
        reserved_concurrency: int,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        layers: Sequence[lambda_.ILayerVersion] = (),
        tracing: bool = False,
        handler: str = HANDLER,
        description: str = "WebSocket chat: every route of the chat API",
        role_description: str = (
            "The chat function: its log group, its table, @connections on its stage"
        ),
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group, self.role = own_log_group_and_role(
            self,
            role_description=role_description,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(LAMBDA_SOURCE), exclude=["__pycache__", "*.pyc", ".mypy_cache"]
            ),
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_seconds),
            # A cap on what a flood of messages can cost; 0 = no reservation (shared pool).
            reserved_concurrent_executions=reserved_concurrency or None,
            role=self.role,
            log_group=self.log_group,
            environment={**({"TABLE_NAME": table_name} if table_name else {}), **environment},
            layers=list(layers),
            # X-Ray only when asked (context `tracing`): off, the role has no xray:* at all.
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
        )
        resource = self.function.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "Serverless-LambdaDLQ",
            "invoked synchronously only (API Gateway's AWS_PROXY integration; the fan-out "
            "worker by the chat function with RequestResponse), so the caller gets every "
            "error back; a dead-letter queue only ever receives failed asynchronous "
            "invocations",
        )
        if tracing:
            self._acknowledge_xray_wildcard()
        else:
            acknowledge(
                resource,
                "Serverless-LambdaTracing",
                "API Gateway WebSocket APIs do not support X-Ray, so a trace would start at "
                "the function; X-Ray needs xray:Put* on Resource '*', and the JSON logs "
                "already carry the request and connection ids for every invocation "
                "(context tracing=true turns it on)",
            )

    def _acknowledge_xray_wildcard(self) -> None:
        """AwsSolutions-IAM5 for Resource '*' of xray:PutTraceSegments/PutTelemetryRecords."""
        policy = self.role.node.find_child("DefaultPolicy")
        resource = policy.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "AwsSolutions-IAM5[Resource::*]",
            "active tracing (context tracing=true): xray:PutTraceSegments and "
            "xray:PutTelemetryRecords support no resource-level permissions, so X-Ray's own "
            "policy grants them on Resource '*' and nothing else",
        )

    def set_callback_url(self, url: str) -> None:
        """The @connections endpoint the function posts to (known once the stage exists)."""
        self.function.add_environment("CALLBACK_URL", url)
