"""The API Gateway WebSocket API, its routes, and the stage with throttling and access logs."""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

ROUTE_SELECTION_EXPRESSION = "$request.body.action"
MESSAGE_ROUTES = ("setName", "sendPublic", "sendPrivate")

# One JSON object per access-log line; never message bodies.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "messageId": "$context.messageId",
    "status": "$context.status",
    "requestTime": "$context.requestTimeEpoch",
    "sourceIp": "$context.identity.sourceIp",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "error": "$context.error.message",
}


@jsii.implements(apigwv2.IAccessLogSettings)
class JsonAccessLogs:
    """Access-log settings for a stage: the log group and our JSON line format."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT))


class ChatWebSocketApi(Construct):
    """WebSocket API whose routes all invoke `handler`, deployed to one auto-deployed stage."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        stage_name: str,
        throttling_burst_limit: int,
        throttling_rate_limit: float,
        create_cloudwatch_role: bool,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        def integration(route: str) -> apigwv2.WebSocketRouteOptions:
            return apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(f"{route}Integration", handler)
            )

        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            description="Real-time chat",
            route_selection_expression=ROUTE_SELECTION_EXPRESSION,
            connect_route_options=integration("Connect"),
            disconnect_route_options=integration("Disconnect"),
            default_route_options=integration("Default"),
        )
        for route in MESSAGE_ROUTES:
            self.api.add_route(route, integration=integration(route).integration)

        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                burst_limit=throttling_burst_limit, rate_limit=throttling_rate_limit
            ),
            access_log_settings=JsonAccessLogs(self.access_log_group),
        )
        if create_cloudwatch_role:
            self._build_cloudwatch_role()

    def _build_cloudwatch_role(self) -> None:
        """The account-wide role API Gateway needs before any stage can write access logs."""
        role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
        self.stage.node.add_dependency(account)
