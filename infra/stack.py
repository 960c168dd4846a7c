"""ChatStack: composes the table, the function and the WebSocket API, and wires the grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnElement, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.chat_function import ChatFunction
from infra.config import ChatConfig
from infra.connections_table import ConnectionsTable
from infra.nag import acknowledge
from infra.sign_in import SignIn
from infra.websocket_api import ChatWebSocketApi


class ChatStack(Stack):
    """A real-time chat: API Gateway WebSocket API → one Lambda → one DynamoDB table."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: ChatConfig, **kwargs: Any
    ) -> None:
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
            environment=config.function_environment(),
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
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
                removal_policy=config.removal_policy,
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
            removal_policy=config.removal_policy,
            connect_authorizer=self.sign_in.authorizer if self.sign_in else None,
        )
        stage = self.websocket.stage
        self.chat.set_callback_url(stage.callback_url)
        self.connections.grant_data_access(self.chat.function)
        stage.grant_management_api_access(self.chat.function)
        self._acknowledge_connections_wildcard(config.stage_name)

        CfnOutput(self, "WebSocketUrl", value=stage.url, description="Connect clients here")
        CfnOutput(
            self,
            "CallbackUrl",
            value=stage.callback_url,
            description="@connections endpoint (API Gateway Management API)",
        )
        CfnOutput(self, "TableName", value=self.connections.table.table_name)

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
