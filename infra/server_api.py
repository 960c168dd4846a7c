"""The server API: an HTTP API for operators, every route IAM-authorized (SigV4).

Operators and other systems call it with AWS credentials: `bin/chat-admin`, `awscurl`,
or any SDK's signer. API Gateway checks the signature and that the signer may
`execute-api:Invoke` the route, then invokes the admin function (lambda_src/admin.py).
Nobody may call it until an administrator attaches the stack's operator policy (output
`OperatorPolicyArn`) to a user or role. docs/operations.md, "The server API".
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

# Every route of the server API (method, path); lambda_src/admin.py's ROUTES serves the
# same keys (tests/infra/test_server_api.py checks that they agree).
SERVER_API_ROUTES = (
    ("GET", "/rooms"),
    ("GET", "/rooms/{room}/members"),
)
# The stage's throttle, for all callers together: operators' tools, not a public API.
THROTTLE_BURST = 20
THROTTLE_RATE = 10
# One JSON line per request: who signed it (the IAM principal), the route, the status.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "requestTime": "$context.requestTimeEpoch",
    "caller": "$context.identity.userArn",
    "sourceIp": "$context.identity.sourceIp",
    "integrationStatus": "$context.integrationStatus",
    "error": "$context.error.message",
}


class ServerApi(Construct):
    """An HTTP API whose every route requires IAM (SigV4), invoking `handler`, on the
    auto-deployed `$default` stage with a throttle and JSON access logs; and a managed
    policy that allows invoking exactly these routes, for operators."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name=f"{Stack.of(self).stack_name}-server",
            description="The chat's server API for operators (IAM-signed requests only)",
            create_default_stage=False,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(burst_limit=THROTTLE_BURST, rate_limit=THROTTLE_RATE),
            access_log_settings=_AccessLogs(self.access_log_group),
        )
        integration = integrations.HttpLambdaIntegration("Admin", handler)
        authorizer = authorizers.HttpIamAuthorizer()
        self.routes = [
            apigwv2.HttpRoute(
                self,
                f"{method}{path.replace('/', '-').replace('{', '').replace('}', '')}",
                http_api=self.api,
                route_key=apigwv2.HttpRouteKey.with_(path, apigwv2.HttpMethod(method)),
                integration=integration,
                authorizer=authorizer,
            )
            for method, path in SERVER_API_ROUTES
        ]
        self.operator_policy = iam.ManagedPolicy(
            self,
            "OperatorPolicy",
            description="Call the chat's server API (attach to the operators' users or roles)",
            statements=[
                iam.PolicyStatement(
                    actions=["execute-api:Invoke"],
                    resources=[
                        self.api.arn_for_execute_api(method, _arn_path(path), "$default")
                        for method, path in SERVER_API_ROUTES
                    ],
                )
            ],
        )
        policy = self.operator_policy.node.default_child
        assert policy is not None
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
            f"<AWS::AccountId>:<{_logical_id(self.api)}>/$default/GET/rooms/*/members]",
            "execute-api:Invoke on this API's routes only, one ARN per route; the wildcard "
            "is the route's {room} path parameter, which callers choose",
        )

    @property
    def url(self) -> str:
        """The stage's base URL (`https://<id>.execute-api.<region>.amazonaws.com/`)."""
        url = self.stage.url
        assert url is not None
        return url


def _arn_path(path: str) -> str:
    """A route's path as its execute-api ARN names it: each {parameter} is `*`."""
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))


def _logical_id(api: apigwv2.HttpApi) -> str:
    resource = api.node.default_child
    assert isinstance(resource, apigwv2.CfnApi)
    return str(api.stack.resolve(api.stack.get_logical_id(resource)))


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """Access-log settings: the log group and our JSON line format (HTTP API variables)."""

    def __init__(self, log_group: logs.ILogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT))
