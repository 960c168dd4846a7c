"""The one Lambda function that serves every route of the chat."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

LAMBDA_SOURCE = Path(__file__).resolve().parent.parent / "lambda_src"
HANDLER = "handler.lambda_handler"
# The newest Python that both this CDK release and Lambda support.
RUNTIME = lambda_.Runtime.PYTHON_3_14


class ChatFunction(Construct):
    """Python on arm64, code from lambda_src/ as-is (the runtime provides boto3)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table_name: str,
        memory_mb: int,
        timeout_seconds: int,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "LogGroup", retention=log_retention, removal_policy=removal_policy
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="WebSocket chat: every route of the chat API",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(
                str(LAMBDA_SOURCE), exclude=["__pycache__", "*.pyc", ".mypy_cache"]
            ),
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_seconds),
            log_group=self.log_group,
            environment={"TABLE_NAME": table_name, **environment},
        )

    def set_callback_url(self, url: str) -> None:
        """The @connections endpoint the function posts to (known once the stage exists)."""
        self.function.add_environment("CALLBACK_URL", url)
