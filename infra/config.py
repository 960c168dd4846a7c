"""Deployment settings, read from CDK context (defaults live in cdk.json)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

REMOVAL_POLICIES = {
    "destroy": RemovalPolicy.DESTROY,
    "retain": RemovalPolicy.RETAIN,
    "snapshot": RemovalPolicy.SNAPSHOT,
}

# CloudWatch Logs accepts only these retention periods (days).
RETENTION_DAYS = dict(
    zip(
        (
            1,
            3,
            5,
            7,
            14,
            30,
            60,
            90,
            120,
            150,
            180,
            365,
            400,
            545,
            731,
            1096,
            1827,
            2192,
            2557,
            2922,
            3288,
            3653,
        ),
        list(logs.RetentionDays)[:-1],
        strict=True,
    )
)

# Every context key the app reads, with the value used when cdk.json does not set it.
DEFAULTS: dict[str, Any] = {
    "stackName": "ChatStack",
    "stageName": "production",
    "removalPolicy": "destroy",
    "throttlingBurstLimit": 500,
    "throttlingRateLimit": 1000,
    "createApiGatewayCloudWatchRole": True,
    "logRetentionDays": 30,
    "lambdaMemoryMb": 256,
    "lambdaTimeoutSeconds": 20,
    "fanoutConcurrency": 32,
    "connectionTtlSeconds": 10800,
    "logLevel": "INFO",
}


class ConfigError(ValueError):
    """A context value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ChatConfig:
    """Typed deployment settings."""

    stack_name: str
    stage_name: str
    removal_policy: RemovalPolicy
    throttling_burst_limit: int
    throttling_rate_limit: float
    create_api_gateway_cloudwatch_role: bool
    log_retention: logs.RetentionDays
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    fanout_concurrency: int
    connection_ttl_seconds: int
    log_level: str
    account: str | None = None
    region: str | None = None

    @classmethod
    def from_context(cls, node: Node) -> ChatConfig:
        """Raises ConfigError naming the context key that is wrong."""

        def get(key: str) -> Any:
            value = node.try_get_context(key)
            return DEFAULTS.get(key) if value is None else value

        def number(key: str, low: float, high: float) -> float:
            raw = get(key)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"context {key}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise ConfigError(f"context {key}={raw!r} must be between {low:g} and {high:g}")
            return value

        def flag(key: str) -> bool:
            raw = get(key)
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes"):
                return True
            if str(raw).lower() in ("false", "0", "no"):
                return False
            raise ConfigError(f"context {key}={raw!r} must be true or false")

        removal = str(get("removalPolicy")).lower()
        if removal not in REMOVAL_POLICIES:
            raise ConfigError(
                f"context removalPolicy={removal!r} must be one of {', '.join(REMOVAL_POLICIES)}"
            )
        retention_days = int(number("logRetentionDays", 1, 3653))
        if retention_days not in RETENTION_DAYS:
            allowed = ", ".join(map(str, RETENTION_DAYS))
            raise ConfigError(
                f"context logRetentionDays={retention_days} is not one CloudWatch allows: {allowed}"
            )
        retention = RETENTION_DAYS[retention_days]
        stage_name = str(get("stageName"))
        if not stage_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"context stageName={stage_name!r} must be letters, digits, - or _")
        log_level = str(get("logLevel")).upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"context logLevel={log_level!r} must be DEBUG, INFO, WARNING or ERROR"
            )
        return cls(
            stack_name=str(get("stackName")),
            stage_name=stage_name,
            removal_policy=REMOVAL_POLICIES[removal],
            throttling_burst_limit=int(number("throttlingBurstLimit", 1, 5000)),
            throttling_rate_limit=number("throttlingRateLimit", 1, 10000),
            create_api_gateway_cloudwatch_role=flag("createApiGatewayCloudWatchRole"),
            log_retention=retention,
            lambda_memory_mb=int(number("lambdaMemoryMb", 128, 10240)),
            lambda_timeout_seconds=int(number("lambdaTimeoutSeconds", 3, 29)),
            fanout_concurrency=int(number("fanoutConcurrency", 1, 256)),
            connection_ttl_seconds=int(number("connectionTtlSeconds", 7260, 30 * 86400)),
            log_level=log_level,
            account=node.try_get_context("account") or None,
            region=node.try_get_context("region") or None,
        )
