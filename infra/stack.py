"""ChatStack: composes the table, the function and the WebSocket API, and wires the grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnElement, CfnOutput, CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.chat_function import ARCHITECTURE, RUNTIME, ChatFunction
from infra.config import ChatConfig
from infra.connections_table import ConnectionsTable
from infra.hosting import WebHosting
from infra.monitoring import ChatMonitoring, drop_source_ip_from_access_logs
from infra.nag import acknowledge
from infra.powertools import powertools_layer, telemetry_environment
from infra.sign_in import SignIn
from infra.websocket_api import ChatWebSocketApi


class ChatStack(Stack):
    """A real-time chat: API Gateway WebSocket API → one Lambda → one DynamoDB table."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: ChatConfig, **kwargs: Any
    ) -> None:
        # A stage's stack says which it is; prod is protected from deletion (config.py).
        kwargs.setdefault("termination_protection", config.termination_protection)
        kwargs.setdefault(
            "description",
            "Real-time chat: API Gateway WebSocket API, Lambda, DynamoDB"
            + (f" (stage {config.stage})" if config.stage else ""),
        )
        super().__init__(scope, construct_id, **kwargs)
        self.connections = ConnectionsTable(
            self, "Connections", removal_policy=config.removal_policy
        )
        self.chat = ChatFunction(
            self,
            "Chat",
            table_name=self.connections.table.table_name,
            memory_mb=config.lambda_memory_mb,
            timeout_seconds=config.lambda_timeout_seconds,
            reserved_concurrency=config.reserved_concurrency,
            environment={
                **config.function_environment(),
                **telemetry_environment(stage_name=config.stage_name, tracing=config.tracing),
            },
            log_retention=config.log_retention,
            removal_policy=config.log_removal_policy,
            # Powertools (logs, EMF metrics, tracing) from AWS's public layer.
            layers=[powertools_layer(self, "PowertoolsLayer", RUNTIME, ARCHITECTURE)],
            tracing=config.tracing,
        )
        # Optional sign-in (signIn=true): a JWT authorizer on $connect.
        self.sign_in: SignIn | None = None
        if config.sign_in is not None:
            self.sign_in = SignIn(
                self,
                "SignIn",
                config=config.sign_in,
                log_level=config.log_level,
                log_retention=config.log_retention,
                removal_policy=config.log_removal_policy,
            )
        self.websocket = ChatWebSocketApi(
            self,
            "WebSocket",
            handler=self.chat.function,
            stage_name=config.stage_name,
            throttling_burst_limit=config.throttling_burst_limit,
            throttling_rate_limit=config.throttling_rate_limit,
            route_throttling=config.route_throttling,
            create_cloudwatch_role=config.create_api_gateway_cloudwatch_role,
            log_retention=config.log_retention,
            removal_policy=config.log_removal_policy,
            connect_authorizer=self.sign_in.authorizer if self.sign_in else None,
        )
        # The API is named after the stack (Chat-dev, Chat-prod): stages never look alike.
        api = self.websocket.api.node.default_child
        assert isinstance(api, CfnResource)
        api.add_property_override("Name", config.stack_name)
        stage = self.websocket.stage
        self.chat.set_callback_url(stage.callback_url)
        self.connections.grant_data_access(self.chat.function)
        stage.grant_management_api_access(self.chat.function)
        self._acknowledge_connections_wildcard(config.stage_name)
        if not config.access_log_source_ip:
            drop_source_ip_from_access_logs(stage)
        # Alarms, the dashboard, and the alarm e-mails with alarmEmail (docs/operations.md).
        self.monitoring = ChatMonitoring(
            self,
            "Monitoring",
            function=self.chat.function,
            memory_mb=config.lambda_memory_mb,
            timeout_seconds=config.lambda_timeout_seconds,
            api=self.websocket.api,
            stage_name=config.stage_name,
            table=self.connections.table,
            alarm_email=config.alarm_email,
            removal_policy=config.removal_policy,
        )
        # The web client (hostWebClient), a nested stack that depends on the API's URL;
        # the function's Origin allow-list then takes the page's origin (a token).
        self.web: WebHosting | None = None
        if config.host_web_client:
            self.web = WebHosting(
                self,
                "Web",
                name=config.stack_name,
                endpoint=stage.url,
                removal_policy=config.removal_policy,
                log_removal_policy=config.log_removal_policy,
                log_retention=config.log_retention,
            )
            self.chat.function.add_environment(
                "ALLOWED_ORIGINS", ",".join(config.origin_allow_list(self.web.origin))
            )

        # Every description names the stack, so two stages' outputs never look alike.
        where = f" ({config.stack_name})"
        CfnOutput(self, "WebSocketUrl", value=stage.url, description="Connect clients here" + where)
        CfnOutput(
            self,
            "CallbackUrl",
            value=stage.callback_url,
            description="@connections endpoint (API Gateway Management API)" + where,
        )
        CfnOutput(
            self,
            "TableName",
            value=self.connections.table.table_name,
            description="Connections table" + where,
        )
        if self.web is not None:
            CfnOutput(
                self, "WebUrl", value=self.web.origin, description="The chat's web page" + where
            )

    def _acknowledge_connections_wildcard(self, stage_name: str) -> None:
        """AwsSolutions-IAM5 for the one wildcard ARN in the function's policy."""
        policy = self.chat.role.node.find_child("DefaultPolicy")
        assert isinstance(policy, iam.Policy)
        cfn_api = self.websocket.api.node.default_child
        assert isinstance(cfn_api, CfnElement)
        api = self.resolve(self.get_logical_id(cfn_api))  # as cdk-nag shows it: <LogicalId>
        resource = policy.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
            f"<AWS::AccountId>:<{api}>/{stage_name}/*/@connections/*]",
            "execute-api:ManageConnections on this API's stage only; the wildcards are the "
            "HTTP method (the function POSTs, GETs and DELETEs) and the connection id, "
            "which exists only at run time",
        )
