"""ChatStack: composes the table, the function and the WebSocket API, and wires the grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.chat_function import ChatFunction
from infra.config import ChatConfig
from infra.connections_table import ConnectionsTable
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
            environment=config.function_environment(),
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
            create_cloudwatch_role=config.create_api_gateway_cloudwatch_role,
            log_retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        stage = self.websocket.stage
        self.chat.set_callback_url(stage.callback_url)
        self.connections.table.grant_read_write_data(self.chat.function)
        stage.grant_management_api_access(self.chat.function)

        CfnOutput(self, "WebSocketUrl", value=stage.url, description="Connect clients here")
        CfnOutput(
            self,
            "CallbackUrl",
            value=stage.callback_url,
            description="@connections endpoint (API Gateway Management API)",
        )
        CfnOutput(self, "TableName", value=self.connections.table.table_name)
