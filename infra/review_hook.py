"""The review hook's function, built from a directory of the repository (`reviewHook`).

The chat function invokes it synchronously with each public message before recording it
(lambda_src/chat/review.py); docs/operations.md#review-hook gives the contract. Its role
starts empty, as the chat's functions' do: it may write to its own log group only.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.chat_function import ARCHITECTURE, RUNTIME, own_log_group_and_role
from infra.config import HOOK_HANDLER
from infra.nag import acknowledge

# A review is a word check on at most 4,000 bytes: the smallest size is plenty.
HOOK_MEMORY_MB = 128


class ReviewHook(Construct):
    """Python on arm64, code from `directory` as-is, its own log group and role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        directory: Path,
        timeout_seconds: int,
        log_level: str,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group, self.role = own_log_group_and_role(
            self,
            role_description="The chat's review hook: its log group only",
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description="WebSocket chat: reviews each public message (allow, deny, replace)",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=HOOK_HANDLER,
            code=lambda_.Code.from_asset(
                str(directory), exclude=["__pycache__", "*.pyc", ".mypy_cache", "tests"]
            ),
            memory_size=HOOK_MEMORY_MB,
            timeout=Duration.seconds(timeout_seconds),
            role=self.role,
            log_group=self.log_group,
            environment={"LOG_LEVEL": log_level},
        )
        resource = self.function.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "Serverless-LambdaDLQ",
            "invoked synchronously only, by the chat function (RequestResponse) with each "
            "public message, which applies reviewHookFallback to any error; a dead-letter "
            "queue only ever receives failed asynchronous invocations",
        )
        acknowledge(
            resource,
            "Serverless-LambdaTracing",
            "a review is one short call from the chat function, which logs and counts "
            "(ReviewHookFailures) every failure; X-Ray would need xray:Put* on Resource '*'",
        )
