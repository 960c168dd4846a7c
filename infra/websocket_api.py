"""The API Gateway WebSocket API, its routes, and the stage with throttling and access logs."""

from __future__ import annotations

import json
from collections.abc import Mapping

import jsii
from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import RouteThrottle
from infra.nag import acknowledge

ROUTE_SELECTION_EXPRESSION = "$request.body.action"
# Actions with a route of their own, each under its own stage throttle (infra/config.py's
# routeThrottling): protocol v1's three, then the rooms' (docs/protocol.md). `$default`
# serves the rest (`ping`, `history`, `listRooms`, `markRead`) and unknown actions. The
# chat function runs a routed action only on its route (lambda_src/handler.py's
# ROUTED_ACTIONS names the same actions).
V1_MESSAGE_ROUTES = ("setName", "sendPublic", "sendPrivate")
ROOM_ROUTES = (
    "joinRoom",
    "leaveRoom",
    "createRoom",
    "invite",
    "typing",
    "editMessage",
    "deleteMessage",
    "moderate",
)
MESSAGE_ROUTES = (*V1_MESSAGE_ROUTES, *ROOM_ROUTES)

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


def access_log_format(*, include_source_ip: bool) -> str:
    """The stage's JSON access-log line, with or without the client's IP (`sourceIp`)."""
    fields = {
        key: value
        for key, value in ACCESS_LOG_FORMAT.items()
        if include_source_ip or key != "sourceIp"
    }
    return json.dumps(fields)


def drop_source_ip_from_access_logs(stage: apigwv2.WebSocketStage) -> None:
    """Access logs without `sourceIp` (context accessLogSourceIp=false)."""
    resource = stage.node.default_child
    assert isinstance(resource, apigwv2.CfnStage)
    resource.add_property_override(
        "AccessLogSettings.Format", access_log_format(include_source_ip=False)
    )


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
        return apigw.AccessLogFormat.custom(access_log_format(include_source_ip=True))


class ChatWebSocketApi(Construct):
    """WebSocket API whose routes all invoke `handler`, deployed to one auto-deployed stage.

    `connect_authorizer`, if given, guards $connect (the only route API Gateway authorizes).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        stage_name: str,
        throttling_burst_limit: int,
        throttling_rate_limit: float,
        route_throttling: Mapping[str, RouteThrottle],
        create_cloudwatch_role: bool,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
        connect_authorizer: apigwv2.IWebSocketRouteAuthorizer | None = None,
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
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integration("Connect").integration, authorizer=connect_authorizer
            ),
            disconnect_route_options=integration("Disconnect"),
            default_route_options=integration("Default"),
        )
        for route in MESSAGE_ROUTES:
            self.api.add_route(route, integration=integration(route).integration)
        # The L2 creates the $-routes itself; their construct ids are "<routeKey>-Route".
        self.routes = {
            route: self.api.node.find_child(f"{route}-Route")
            for route in ("$connect", "$disconnect", "$default", *MESSAGE_ROUTES)
        }

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
        self._set_route_throttles(route_throttling)
        if create_cloudwatch_role:
            self._build_cloudwatch_role()
        self._acknowledge_routes_without_authorizer()

    def _set_route_throttles(self, throttles: Mapping[str, RouteThrottle]) -> None:
        """Per-route stage throttles (RouteSettings; the L2 stage has only the default one).

        API Gateway rejects RouteSettings that name a route it does not know yet, so the
        stage waits for the routes it throttles.
        """
        stage = self.stage.node.default_child
        assert isinstance(stage, apigwv2.CfnStage)
        stage.route_settings = {
            route: {
                "ThrottlingBurstLimit": throttle.burst,
                "ThrottlingRateLimit": throttle.rate,
            }
            for route, throttle in throttles.items()
        }
        for route in throttles:
            self.stage.node.add_dependency(self.routes[route])

    def _acknowledge_routes_without_authorizer(self) -> None:
        """AwsSolutions-APIG4 on each route that has no authorizer, with the reason why."""
        for key, route in self.routes.items():
            resource = route.node.default_child
            assert isinstance(resource, apigwv2.CfnRoute)
            if resource.authorization_type not in (None, "NONE"):
                continue
            if key == "$connect":
                reason = (
                    "sign-in is off (context signIn), so the chat is anonymous by design: "
                    "$connect checks the Origin, and stage throttles, reserved concurrency "
                    "and per-connection rate limits bound what anyone can do"
                )
            else:
                reason = (
                    "a WebSocket API can attach an authorizer to $connect only; messages on "
                    "this route travel on a connection that $connect already admitted"
                )
            acknowledge(resource, "AwsSolutions-APIG4", reason)

    def _build_cloudwatch_role(self) -> None:
        """The account-wide role API Gateway needs before any stage can write access logs.

        `AWS::ApiGateway::Account` is one setting per account and region, shared by every
        API there. Both it and the role are retained when the stack is deleted (or either
        is replaced), so deleting this stack never takes logging away from the other APIs.
        """
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
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        self.stage.node.add_dependency(account)
        resource = role.node.default_child
        assert resource is not None
        acknowledge(
            resource,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "AWS's documented policy for the account-level API Gateway logging role: the role "
            "serves every API in the region (their log groups are not known here), and AWS "
            "keeps the policy current",
        )
