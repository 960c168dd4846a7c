"""ChatStack: composes the table, the function and the WebSocket API, and wires the grants."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnElement, CfnOutput, CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.chat_function import ADMIN_HANDLER, ARCHITECTURE, RUNTIME, WORKER_HANDLER, ChatFunction
from infra.config import ChatConfig
from infra.connections_table import ConnectionsTable
from infra.hosting import WebHosting
from infra.monitoring import EVENTS_ALARM, REVIEW_HOOK_ALARM, ChatMonitoring
from infra.nag import acknowledge
from infra.powertools import powertools_layer, telemetry_environment
from infra.review_hook import ReviewHook
from infra.server_api import ServerApi
from infra.sign_in import SignIn
from infra.websocket_api import ChatWebSocketApi, drop_source_ip_from_access_logs


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
        # Powertools (logs, EMF metrics, tracing) from AWS's public layer.
        powertools = powertools_layer(self, "PowertoolsLayer", RUNTIME, ARCHITECTURE)
        telemetry = telemetry_environment(stage_name=config.stage_name, tracing=config.tracing)
        # Big broadcasts are split among invocations of this worker (docs/performance.md,
        # "Beyond one invocation"); it only posts to connections. Its timeout is 3 s below
        # the chat function's (at least 3 s), so the chat function, which waits for it,
        # always outlives it: the chat function reads its answer for that timeout plus 1 s
        # (FANOUT_WORKER_TIMEOUT_SECONDS, config.py; the arithmetic: lambda_src/chat/sharding.py).
        self.fanout_worker = ChatFunction(
            self,
            "FanoutWorker",
            table_name=None,
            memory_mb=config.fanout_worker_memory_mb,
            timeout_seconds=config.fanout_worker_timeout_seconds,
            reserved_concurrency=config.fanout_worker_reserved_concurrency,
            environment={**config.worker_environment(), **telemetry},
            log_retention=config.log_retention,
            removal_policy=config.log_removal_policy,
            layers=[powertools],
            tracing=config.tracing,
            handler=WORKER_HANDLER,
            description="WebSocket chat: posts one shard of a big broadcast (fan-out worker)",
            role_description="The fan-out worker: its log group, @connections on its stage",
        )
        # The chat function and the server API's share the settings, the code and the
        # grants (`_with_chat_settings`, `_grant_chat_access`); they differ in the handler.
        chat_settings = self._with_chat_settings(config, powertools, telemetry)
        self.chat = ChatFunction(
            self, "Chat", reserved_concurrency=config.reserved_concurrency, **chat_settings
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
        self.fanout_worker.set_callback_url(stage.callback_url)
        stage.grant_management_api_access(self.fanout_worker.function)
        self._grant_chat_access(self.chat, config)
        # The server API for operators (IAM-signed; docs/operations.md "The server API"):
        # its own function, with the chat function's settings, table and @connections.
        self.admin = ChatFunction(
            self,
            "Admin",
            reserved_concurrency=0,
            handler=ADMIN_HANDLER,
            description="WebSocket chat: the server API for operators (IAM-signed requests)",
            role_description="The server API's function: its log group, the chat's table, "
            "@connections on its stage",
            **chat_settings,
        )
        self._grant_chat_access(self.admin, config)
        self.server_api = ServerApi(
            self,
            "ServerApi",
            handler=self.admin.function,
            log_retention=config.log_retention,
            removal_policy=config.log_removal_policy,
        )
        self.review_hook = self._review_hook(config)
        self._events_out(config)
        self._acknowledge_connections_wildcard(self.fanout_worker, config.stage_name)
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
            message_rate_alarm_per_second=config.message_rate_alarm_per_second,
        )
        self._integration_alarms(config)
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
                sign_in=config.sign_in,
                auto_delete_buckets=config.auto_delete_buckets,
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
        CfnOutput(
            self,
            "ServerApiUrl",
            value=self.server_api.url,
            description="The server API for operators, IAM-signed (bin/chat-admin)" + where,
        )
        CfnOutput(
            self,
            "OperatorPolicyArn",
            value=self.server_api.operator_policy.managed_policy_arn,
            description="Attach to the users or roles that may call the server API" + where,
        )
        if self.web is not None:
            CfnOutput(
                self, "WebUrl", value=self.web.origin, description="The chat's web page" + where
            )

    def _with_chat_settings(
        self, config: ChatConfig, powertools: Any, telemetry: dict[str, str]
    ) -> dict[str, Any]:
        """What the chat function and the server API's have in common: the table, memory,
        timeout, the function's settings (and the fan-out worker's name), logs, layers."""
        return {
            "table_name": self.connections.table.table_name,
            "memory_mb": config.lambda_memory_mb,
            "timeout_seconds": config.lambda_timeout_seconds,
            "environment": {
                **config.function_environment(),
                "FANOUT_WORKER": self.fanout_worker.function.function_name,
                **telemetry,
            },
            "log_retention": config.log_retention,
            "removal_policy": config.log_removal_policy,
            "layers": [powertools],
            "tracing": config.tracing,
        }

    def _grant_chat_access(self, function: ChatFunction, config: ChatConfig) -> None:
        """The chat's grants: its table, @connections on the stage (the callback URL), and
        invoking the fan-out worker's unqualified ARN only (grant_invoke would add
        "<arn>:*" for versions and aliases, which the stack does not have)."""
        stage = self.websocket.stage
        function.set_callback_url(stage.callback_url)
        self.connections.grant_data_access(function.function)
        stage.grant_management_api_access(function.function)
        iam.Grant.add_to_principal(
            grantee=function.function,
            actions=["lambda:InvokeFunction"],
            resource_arns=[self.fanout_worker.function.function_arn],
        )
        self._acknowledge_connections_wildcard(function, config.stage_name)

    def _review_hook(self, config: ChatConfig) -> ReviewHook | None:
        """The review hook (reviewHook: built here; reviewHookArn: an existing function),
        which the chat function may invoke, exactly it; None and nothing without one."""
        hook: ReviewHook | None = None
        if config.review_hook_dir is not None:
            hook = ReviewHook(
                self,
                "ReviewHook",
                directory=config.review_hook_dir,
                timeout_seconds=config.review_hook_function_timeout_seconds,
                log_level=config.log_level,
                log_retention=config.log_retention,
                removal_policy=config.log_removal_policy,
            )
            reference, arn = hook.function.function_name, hook.function.function_arn
        elif config.review_hook_arn is not None:
            reference = arn = config.review_hook_arn
        else:
            return None
        self.chat.function.add_environment("REVIEW_HOOK", reference)
        # The unqualified ARN (or the one given) only, as for the fan-out worker.
        iam.Grant.add_to_principal(
            grantee=self.chat.function, actions=["lambda:InvokeFunction"], resource_arns=[arn]
        )
        return hook

    def _integration_alarms(self, config: ChatConfig) -> None:
        """The review hook's and the event bus's alarms, only with them."""
        if config.review_hook:
            self.monitoring.add_optional_alarm(REVIEW_HOOK_ALARM)
        if config.event_bus_name is not None:
            self.monitoring.add_optional_alarm(EVENTS_ALARM)

    def _events_out(self, config: ChatConfig) -> None:
        """With eventBusName: the bus the chat publishes to, and events:PutEvents on it."""
        bus = config.event_bus_name
        if bus is None:
            return
        arn = (
            bus
            if bus.startswith("arn:")
            else self.format_arn(service="events", resource="event-bus", resource_name=bus)
        )
        # The chat function, and the server API's, whose actions publish events too.
        for publisher in (self.chat, self.admin):
            publisher.function.add_environment("EVENT_BUS", bus)
            iam.Grant.add_to_principal(
                grantee=publisher.function, actions=["events:PutEvents"], resource_arns=[arn]
            )

    def _acknowledge_connections_wildcard(self, function: ChatFunction, stage_name: str) -> None:
        """AwsSolutions-IAM5 for the one wildcard ARN in a function's policy."""
        policy = function.role.node.find_child("DefaultPolicy")
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
