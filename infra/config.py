"""Deployment settings: every context key, its default and its check.

The stack's own keys have their defaults here (INFRA_DEFAULTS) and their ranges in RANGES;
the chat function's keys are written once, in lambda_src/chat/settings.json (read as data
by infra/function_settings.py: infra never imports the function's code), which gives their
defaults, ranges and environment variables. docs/configuration.md is generated from both.

Override any key with `cdk synth -c key=value` (or in cdk.json's `context`). A bad value
fails synth with a ConfigError that names the key.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Node

from infra import function_settings
from infra.authorizer_layer import DEFAULT_LAYER_DIR
from infra.function_settings import BY_KEY as FUNCTION_SETTINGS_BY_KEY
from infra.function_settings import FUNCTION_SETTINGS, FunctionSetting

REMOVAL_POLICIES = {
    "destroy": RemovalPolicy.DESTROY,
    "retain": RemovalPolicy.RETAIN,
    "snapshot": RemovalPolicy.SNAPSHOT,
}

# CloudWatch Logs accepts only these retention periods; named explicitly so that the
# mapping never depends on the order of the CDK enum.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

# The routes whose stage throttles can be set one by one (`routeThrottling`): every route
# but `$disconnect` (infra/websocket_api.py's MESSAGE_ROUTES, and $connect and $default).
THROTTLED_ROUTES = (
    "$connect",
    "$default",
    "setName",
    "sendPublic",
    "sendPrivate",
    "joinRoom",
    "leaveRoom",
    "createRoom",
    "invite",
    "typing",
    "editMessage",
    "deleteMessage",
    "moderate",
)

# The stack's own context keys (the function's are in lambda_src/chat/settings.json, read
# below) and their defaults. docs/configuration.md is generated from both
# (bin/build-config-docs; descriptions in infra/context_keys.json; a test keeps it current).
INFRA_DEFAULTS: dict[str, Any] = {
    # A deployment stage (`-c stage=dev`, `-c stage=prod`): it changes the defaults in
    # stage_defaults() below. Unset: the one stack ChatStack, API stage production, as before.
    "stage": "",
    "stackName": "ChatStack",
    "stageName": "production",
    "terminationProtection": False,
    "removalPolicy": "destroy",
    "logRemovalPolicy": "",  # empty: removalPolicy
    "throttlingBurstLimit": 500,
    "throttlingRateLimit": 1000,
    # Broadcast routes (sendPublic, setName, joinRoom, leaveRoom, typing, editMessage,
    # deleteMessage, moderate) cost one post per member: keep each one's rate x the posts a full
    # room's broadcast makes within the account's 10,000 requests/s (docs/security.md,
    # "Route throttles").
    "routeThrottling": {
        "$connect": {"burst": 100, "rate": 50},
        "$default": {"burst": 50, "rate": 25},
        "setName": {"burst": 20, "rate": 5},
        "sendPublic": {"burst": 20, "rate": 10},
        "sendPrivate": {"burst": 100, "rate": 50},
        "joinRoom": {"burst": 50, "rate": 10},
        "leaveRoom": {"burst": 20, "rate": 5},
        "createRoom": {"burst": 10, "rate": 1},
        "invite": {"burst": 20, "rate": 5},
        "typing": {"burst": 50, "rate": 10},
        "editMessage": {"burst": 20, "rate": 5},
        "deleteMessage": {"burst": 20, "rate": 5},
        "moderate": {"burst": 20, "rate": 5},
    },
    "createApiGatewayCloudWatchRole": True,
    "logRetentionDays": 30,
    "lambdaMemoryMb": 256,
    "lambdaTimeoutSeconds": 20,
    "reservedConcurrency": 100,
    # Sharded fan-out (lambda_src/chat/sharding.py): the fan-out worker function has this
    # much memory (1,769 MB is one whole vCPU: docs/performance.md).
    "fanoutWorkerMemoryMb": 1769,
    "fanoutWorkerConcurrency": 192,
    "fanoutWorkerReservedConcurrency": 0,  # 0: none (the account's shared pool)
    # Observability (infra/monitoring.py, docs/operations.md): X-Ray tracing, where alarms
    # send e-mail (empty: alarms without notifications), client IPs in the access logs.
    "tracing": False,
    "alarmEmail": "",
    "accessLogSourceIp": True,
    # The stage-wide alarm on API Gateway's MessageCount (frames in and posts out), against
    # the account's 10,000 requests/s shared by every API in the Region: 80 % of it.
    "messageRateAlarmPerSecond": 8000,
    # Empty and delete the web client's buckets with the stack (CDK's auto-delete custom
    # resource, docs/security.md); false: they are retained and the template has no such
    # resource.
    "autoDeleteBuckets": False,
    # The web client on S3 and CloudFront (infra/hosting.py); $connect allows its origin.
    "hostWebClient": True,
    # Sign-in (docs/security.md#sign-in): off unless signIn is true.
    "signIn": False,
    "signInIssuer": "",
    "signInAudience": "",
    "signInJwksUrl": "",  # empty: <signInIssuer>/.well-known/jwks.json
    "signInNameClaim": "cognito:username",
    # The claim whose values admit to a private room's `group` (docs/rooms-design.md).
    "signInGroupsClaim": "cognito:groups",
    "signInTokenSource": "query",
    "signInDomain": "",  # empty: <signInIssuer>'s origin
    "signInLayerDir": DEFAULT_LAYER_DIR,
    # A review hook (docs/operations.md#review-hook): a directory of this repository with a
    # handler.py the stack builds into a function, or an existing function's ARN; at most one.
    "reviewHook": "",
    "reviewHookArn": "",
    # Events out (docs/events.md): the EventBridge bus the chat publishes to; empty: none.
    "eventBusName": "",
    # The pipeline's deploy-role stack (infra/deploy_role.py, docs/deploy.md): created only
    # when githubRepository (owner/name) is set.
    "githubRepository": "",
    "githubOidcProviderArn": "",  # empty: the stack creates the account's GitHub provider
}
# Every context key the app reads and its default: the stack's, then the function's.
DEFAULTS: dict[str, Any] = {
    **INFRA_DEFAULTS,
    **{key: setting.default for key, setting in FUNCTION_SETTINGS_BY_KEY.items()},
}

MAX_LAMBDA_TIMEOUT_SECONDS = 29  # API Gateway's integration timeout
MAX_FANOUT_POSTS_PER_SECOND = 10_000  # API Gateway's account-wide request rate
# messageRateAlarmPerSecond: the account's rate can be raised on request, so the alarm
# accepts up to ten times the default quota.
MAX_MESSAGE_RATE_ALARM_PER_SECOND = 100_000
# Every numeric context key's range (inclusive): the stack's, then the function's.
RANGES: dict[str, tuple[float, float]] = {
    "throttlingBurstLimit": (1, 5000),
    "throttlingRateLimit": (1, 10000),
    "logRetentionDays": (1, 3653),
    "lambdaMemoryMb": (128, 10240),
    "lambdaTimeoutSeconds": (3, MAX_LAMBDA_TIMEOUT_SECONDS),
    "reservedConcurrency": (0, 10000),
    "fanoutWorkerMemoryMb": (128, 10240),
    "fanoutWorkerConcurrency": (1, 256),
    "fanoutWorkerReservedConcurrency": (0, 10000),
    "messageRateAlarmPerSecond": (1, MAX_MESSAGE_RATE_ALARM_PER_SECOND),
    **{
        key: (setting.low, setting.high)
        for key, setting in FUNCTION_SETTINGS_BY_KEY.items()
        if setting.low is not None and setting.high is not None
    },
}
# routeThrottling's burst and rate, per route (the stage's own limits, as above).
ROUTE_BURST_RANGE = RANGES["throttlingBurstLimit"]
ROUTE_RATE_RANGE = RANGES["throttlingRateLimit"]

# A stage name goes into stack, API stage and resource names: lowercase letters, digits, -.
STAGE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,23}")
# What a stage changes beyond its names; a key given explicitly (-c, cdk.json) still wins.
STAGE_PROFILES: dict[str, dict[str, Any]] = {
    "prod": {"terminationProtection": True, "logRetentionDays": 365, "logRemovalPolicy": "retain"},
}
# alarmEmail: one address (SNS checks it for real when it sends the confirmation).
EMAIL_PATTERN = re.compile(r"[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+")
# The review hook: a directory with this file, whose function answers each review.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOOK_HANDLER_FILE = "handler.py"
HOOK_HANDLER = "handler.handler"
FUNCTION_ARN_PATTERN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?"
)
# EventBridge: a bus's name (PutEvents' EventBusName) or its ARN.
EVENT_BUS_NAME_PATTERN = re.compile(r"[/.\-_A-Za-z0-9]{1,256}")
EVENT_BUS_ARN_PATTERN = re.compile(
    r"arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[/.\-_A-Za-z0-9]{1,256}"
)
# CloudFormation stack names.
STACK_NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def stage_defaults(stage: str) -> dict[str, Any]:
    """The defaults `stage` sets: stack Chat-<stage>, API stage <stage>, and its profile."""
    if not stage:
        return {}
    return {"stackName": f"Chat-{stage}", "stageName": stage, **STAGE_PROFILES.get(stage, {})}


# Origins $connect always accepts, for the sandbox (lambda_src/chat/settings.json).
LOOPBACK_ORIGINS = function_settings.LOOPBACK_ORIGINS

# Where the authorizer finds the token (signInTokenSource): an API Gateway identity source.
SIGN_IN_TOKEN_SOURCES = {
    "query": "route.request.querystring.token",
    "protocol": "route.request.header.Sec-WebSocket-Protocol",
}


# --- the fan-out's clock (lambda_src/chat/sharding.py's docstring has the arithmetic) -----
# The fan-out worker's timeout is the chat function's minus this, and at least
# MIN_WORKER_TIMEOUT_SECONDS. The chat function reads a worker's answer for the worker's
# timeout plus WORKER_READ_MARGIN_SECONDS (lambda_src/chat/wiring.py, WORKER_READ_MARGIN_S), so
# a worker invoked at once that runs into its own timeout is answered while the chat
# function still has 1 s before its deadline. The rest of the 3 s is for the chat
# function's own work around the posts: reading the room, the Invoke round trip and a
# worker's cold start, the acknowledgement.
WORKER_TIMEOUT_HEADROOM_SECONDS = 3
MIN_WORKER_TIMEOUT_SECONDS = 3
WORKER_READ_MARGIN_SECONDS = 1
# Copies of the function's figures (tests/infra/test_config.py compares them):
# chat.deadline.DEFAULT_MARGIN_SECONDS, what an invocation keeps back after its posts;
DEADLINE_MARGIN_SECONDS = 1.0
# chat.sharding.BURST_SECONDS, how much of fanoutPostsPerSecond starts at once;
FANOUT_BURST_SECONDS = 0.4
# chat.sharding.POSTS_PER_SECOND_PER_INVOCATION: the posts one invocation with a whole vCPU
# makes a second (docs/performance.md measured 3,723 over HTTPS from one invocation to 100,000
# connections, 20 ms a post; rounded down). Smaller functions have a share of a vCPU, and
# post proportionally slower; more memory than one vCPU does not post faster (one
# Python process).
POSTS_PER_SECOND_PER_INVOCATION = 3500
ONE_VCPU_MB = 1769


def posts_per_second_at(memory_mb: int) -> float:
    """What one invocation with `memory_mb` posts a second (its share of a vCPU)."""
    return POSTS_PER_SECOND_PER_INVOCATION * min(1.0, memory_mb / ONE_VCPU_MB)


class ConfigError(ValueError):
    """A context value that cannot be used; the message names the key."""


@dataclass(frozen=True)
class RouteThrottle:
    """A stage throttle for one route: burst (requests) and steady rate (requests/s)."""

    burst: int
    rate: float


@dataclass(frozen=True)
class SignInConfig:
    """Sign-in: whose JWTs the $connect authorizer accepts, and where they arrive."""

    issuer: str
    audience: str
    jwks_url: str
    name_claim: str
    token_source: str
    layer_dir: Path
    # The origin of the issuer's authorization and token endpoints (Cognito: the user
    # pool's domain), which the hosted page's CSP lets it fetch tokens from.
    domain: str = ""
    # The claim whose values are the groups a private room's `group` admits.
    groups_claim: str = "cognito:groups"

    @property
    def identity_source(self) -> str:
        return SIGN_IN_TOKEN_SOURCES[self.token_source]

    @property
    def client_id(self) -> str:
        """The OAuth client the page signs in as: an ID token's `aud` is its client's id."""
        return self.audience


@dataclass(frozen=True)
class FanoutTiming:
    """A broadcast to a full room (`maxRoomSize` members), on the clock.

    Sharded (maxRoomSize > fanoutShardSize), the last shard starts when the pace allows
    the room's posts, (maxRoomSize x posts per recipient - burst) / fanoutPostsPerSecond
    seconds in (the burst is 0.4 s of the rate), and then a worker needs fanoutShardSize x
    posts per recipient / its posting rate; meanwhile the chat function posts the first
    shard itself, at its own (smaller) rate. Unsharded, the chat function posts the whole
    room. Whichever ends last, plus the deadline's 1 s margin, must fit in the fan-out
    worker's timeout (lambdaTimeoutSeconds - 3 s), and so in the chat function's.
    """

    max_room_size: int
    posts_per_recipient: int
    shard_size: int
    posts_per_second: int
    sharded: bool
    chat_posts_per_second: float
    worker_posts_per_second: float
    lambda_timeout_seconds: int
    lambda_memory_mb: int
    worker_memory_mb: int
    worker_timeout_seconds: int

    @property
    def room_posts(self) -> int:
        return self.max_room_size * self.posts_per_recipient

    @property
    def shard_posts(self) -> int:
        return min(self.shard_size, self.max_room_size) * self.posts_per_recipient

    @property
    def burst(self) -> float:
        return self.posts_per_second * FANOUT_BURST_SECONDS

    @property
    def last_shard_starts(self) -> float:
        """Seconds in when the last shard may start (0 unsharded)."""
        if not self.sharded:
            return 0.0
        return max(0.0, (self.room_posts - self.burst) / self.posts_per_second)

    @property
    def last_shard_needs(self) -> float:
        return self.shard_posts / self.worker_posts_per_second

    @property
    def own_shard_needs(self) -> float:
        """The chat function's own posts: its first shard, or the whole room unsharded."""
        own = self.shard_posts if self.sharded else self.room_posts
        return own / self.chat_posts_per_second

    @property
    def budget(self) -> float:
        """The seconds a broadcast may post for."""
        return self.worker_timeout_seconds - DEADLINE_MARGIN_SECONDS

    def check(self) -> None:
        """Raises ConfigError, naming the keys and what to change, when it cannot fit."""
        if self.sharded:
            self._check_worker_timeout()
            self._check_last_shard()
        self._check_own_posts()

    def _numbers(self) -> str:
        return (
            f"context maxRoomSize={self.max_room_size}, fanoutShardSize={self.shard_size}, "
            f"fanoutPostsPerSecond={self.posts_per_second}, "
            f"lambdaTimeoutSeconds={self.lambda_timeout_seconds}"
        )

    def _check_worker_timeout(self) -> None:
        lowest = MIN_WORKER_TIMEOUT_SECONDS + WORKER_TIMEOUT_HEADROOM_SECONDS
        if self.lambda_timeout_seconds < lowest:
            raise ConfigError(
                f"{self._numbers()}: a full room is sharded (maxRoomSize > fanoutShardSize), "
                f"and the fan-out worker's timeout, lambdaTimeoutSeconds - "
                f"{WORKER_TIMEOUT_HEADROOM_SECONDS} s (at least "
                f"{MIN_WORKER_TIMEOUT_SECONDS} s), plus the {WORKER_READ_MARGIN_SECONDS} s "
                f"the chat function reads its answer longer, must end before the chat "
                f"function's deadline. Raise lambdaTimeoutSeconds to at least {lowest}, or "
                f"fanoutShardSize to maxRoomSize ({self.max_room_size}: no sharding)"
            )

    def _check_last_shard(self) -> None:
        total = self.last_shard_starts + self.last_shard_needs + DEADLINE_MARGIN_SECONDS
        if total <= self.worker_timeout_seconds:
            return
        advice = []
        timeout = math.ceil(total) + WORKER_TIMEOUT_HEADROOM_SECONDS
        if timeout <= MAX_LAMBDA_TIMEOUT_SECONDS:
            advice.append(f"raise lambdaTimeoutSeconds to at least {timeout}")
        posting = self.budget - self.last_shard_needs  # seconds the pace may take
        # (room_posts - 0.4 rate) / rate <= posting  <=>  rate >= room_posts / (posting + 0.4)
        if posting > 0:
            rate = math.ceil(self.room_posts / (posting + FANOUT_BURST_SECONDS))
            if rate <= MAX_FANOUT_POSTS_PER_SECOND:
                advice.append(f"raise fanoutPostsPerSecond to at least {rate}")
            room = math.floor(
                (self.burst + posting * self.posts_per_second) / self.posts_per_recipient
            )
            if room >= 2:
                advice.append(f"lower maxRoomSize to at most {room}")
        else:  # one shard alone does not fit
            advice.append("lower fanoutShardSize, or raise fanoutWorkerMemoryMb towards 1769")
        raise ConfigError(
            f"{self._numbers()}: a broadcast to a full room cannot be posted in time. Its "
            f"last shard starts {self.last_shard_starts:.2f} s in (({self.max_room_size} "
            f"members x {self.posts_per_recipient} post - a burst of {self.burst:g}) / "
            f"{self.posts_per_second} posts a second) and a worker needs "
            f"{self.last_shard_needs:.2f} s more ({self.shard_posts} posts at about "
            f"{self.worker_posts_per_second:.0f} a second, fanoutWorkerMemoryMb="
            f"{self.worker_memory_mb}): {total:.2f} s with the "
            f"{DEADLINE_MARGIN_SECONDS:g} s deadline margin, more than the fan-out worker's "
            f"{self.worker_timeout_seconds} s timeout (lambdaTimeoutSeconds - "
            f"{WORKER_TIMEOUT_HEADROOM_SECONDS}). To fit: "
            + ("; or ".join(advice) or "lower maxRoomSize or raise fanoutPostsPerSecond")
        )

    def _check_own_posts(self) -> None:
        total = self.own_shard_needs + DEADLINE_MARGIN_SECONDS
        if total <= self.worker_timeout_seconds:
            return
        what = "its first shard" if self.sharded else "the whole room (not sharded)"
        key = "fanoutShardSize" if self.sharded else "maxRoomSize"
        largest = math.floor(self.budget * self.chat_posts_per_second / self.posts_per_recipient)
        own_posts = self.shard_posts if self.sharded else self.room_posts
        # own_posts / (rate x memory / ONE_VCPU_MB) <= budget  <=>  memory >= ...
        memory = math.ceil(
            own_posts * ONE_VCPU_MB / (POSTS_PER_SECOND_PER_INVOCATION * self.budget)
        )
        raise ConfigError(
            f"{self._numbers()}, lambdaMemoryMb={self.lambda_memory_mb}: the chat function "
            f"posts {what} itself, {own_posts} "
            f"posts at about {self.chat_posts_per_second:.0f} a second "
            f"({POSTS_PER_SECOND_PER_INVOCATION} at {ONE_VCPU_MB} MB, one vCPU, and "
            f"proportionally less below): {total:.2f} s with the "
            f"{DEADLINE_MARGIN_SECONDS:g} s deadline margin, more than "
            f"{self.worker_timeout_seconds} s (lambdaTimeoutSeconds - "
            f"{WORKER_TIMEOUT_HEADROOM_SECONDS}). To fit: lower {key} to at most "
            f"{max(1, largest)}"
            + ("" if self.sharded else " or set fanoutShardSize below it (sharding)")
            + (
                f"; or raise lambdaMemoryMb to at least {memory}"
                if self.lambda_memory_mb < memory <= ONE_VCPU_MB
                else ""
            )
        )


@dataclass(frozen=True)
class ChatConfig:
    """Typed deployment settings."""

    stack_name: str
    stage_name: str
    removal_policy: RemovalPolicy
    log_removal_policy: RemovalPolicy
    termination_protection: bool
    host_web_client: bool
    throttling_burst_limit: int
    throttling_rate_limit: float
    route_throttling: dict[str, RouteThrottle]
    create_api_gateway_cloudwatch_role: bool
    log_retention: logs.RetentionDays
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    reserved_concurrency: int
    fanout_concurrency: int
    fanout_engine: str
    fanout_shard_size: int
    fanout_posts_per_second: int
    fanout_worker_memory_mb: int
    fanout_worker_concurrency: int
    fanout_worker_reserved_concurrency: int
    member_partitions: int
    connection_ttl_seconds: int
    log_level: str
    message_burst: int
    message_rate_per_second: float
    name_burst: int
    name_rate_per_second: float
    rate_limit_strikes: int
    max_room_size: int
    member_list_threshold: int
    history_count: int
    history_max_age_seconds: int
    dedup_window_seconds: int
    history_burst: int
    history_rate_per_second: float
    history_max_bytes: int
    address_connect_burst: int
    address_connect_rate_per_second: float
    address_frame_burst: int
    address_frame_rate_per_second: float
    address_join_burst: int
    address_join_rate_per_second: float
    address_max_connections: int
    address_max_members: int
    account_max_connections: int
    unnamed_timeout_seconds: int
    max_rooms_per_connection: int
    max_rooms_per_creator: int
    max_rooms: int
    room_ttl_seconds: int
    edit_window_seconds: int
    typing_interval_seconds: float
    invite_ttl_seconds: int
    read_state_ttl_seconds: int
    rooms_list_limit: int
    direct_rooms: bool
    moderator_group: str
    audit_ttl_seconds: int
    moderation_max_seconds: int
    slow_mode_max_seconds: int
    reserved_names: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allow_missing_origin: bool
    account: str | None = None
    region: str | None = None
    sign_in: SignInConfig | None = None
    stage: str | None = None
    tracing: bool = False
    alarm_email: str | None = None
    access_log_source_ip: bool = True
    message_rate_alarm_per_second: int = 8000
    auto_delete_buckets: bool = False
    # The review hook: a directory to build (absolute), or an existing function's ARN.
    review_hook_dir: Path | None = None
    review_hook_arn: str | None = None
    review_hook_timeout_ms: int = function_settings.BY_ENV["REVIEW_HOOK_TIMEOUT_MS"].default
    review_hook_fallback: str = function_settings.BY_ENV["REVIEW_HOOK_FALLBACK"].default
    # Events out: the EventBridge bus's name or ARN.
    event_bus_name: str | None = None
    events_include_bodies: bool = function_settings.BY_ENV["EVENTS_INCLUDE_BODIES"].default

    @classmethod
    def from_context(cls, node: Node) -> ChatConfig:
        """Raises ConfigError naming the context key that is wrong."""
        read = _Reader(node)
        stage = read.stage()
        removal = read.removal_policy("removalPolicy")
        stack_name = str(read.get("stackName"))
        if not STACK_NAME_PATTERN.fullmatch(stack_name):
            raise ConfigError(
                f"context stackName={stack_name!r} must start with a letter and be letters, "
                "digits or - (at most 128)"
            )
        retention_days = int(read.number("logRetentionDays"))
        if retention_days not in RETENTION_DAYS:
            allowed = ", ".join(map(str, RETENTION_DAYS))
            raise ConfigError(
                f"context logRetentionDays={retention_days} is not one CloudWatch allows: {allowed}"
            )
        stage_name = str(read.get("stageName"))
        if not stage_name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"context stageName={stage_name!r} must be letters, digits, - or _")
        config = cls(
            stack_name=stack_name,
            stage_name=stage_name,
            removal_policy=removal,
            log_removal_policy=read.removal_policy("logRemovalPolicy", removal, logs=True),
            termination_protection=read.flag("terminationProtection"),
            host_web_client=read.flag("hostWebClient"),
            throttling_burst_limit=int(read.number("throttlingBurstLimit")),
            throttling_rate_limit=read.number("throttlingRateLimit"),
            route_throttling=read.route_throttling("routeThrottling"),
            create_api_gateway_cloudwatch_role=read.flag("createApiGatewayCloudWatchRole"),
            log_retention=RETENTION_DAYS[retention_days],
            lambda_memory_mb=int(read.number("lambdaMemoryMb")),
            lambda_timeout_seconds=int(read.number("lambdaTimeoutSeconds")),
            reserved_concurrency=int(read.number("reservedConcurrency")),
            fanout_worker_memory_mb=int(read.number("fanoutWorkerMemoryMb")),
            fanout_worker_concurrency=int(read.number("fanoutWorkerConcurrency")),
            fanout_worker_reserved_concurrency=int(read.number("fanoutWorkerReservedConcurrency")),
            **read.function_settings(),
            account=node.try_get_context("account") or None,
            region=node.try_get_context("region") or None,
            sign_in=read.sign_in(),
            stage=stage,
            tracing=read.flag("tracing"),
            alarm_email=read.email("alarmEmail"),
            access_log_source_ip=read.flag("accessLogSourceIp"),
            message_rate_alarm_per_second=int(read.number("messageRateAlarmPerSecond")),
            auto_delete_buckets=read.flag("autoDeleteBuckets"),
            review_hook_dir=read.hook_dir("reviewHook"),
            review_hook_arn=read.function_arn("reviewHookArn"),
            event_bus_name=read.event_bus("eventBusName"),
        )
        config.fanout_timing().check()
        if config.review_hook_dir is not None and config.review_hook_arn is not None:
            raise ConfigError(
                "context reviewHook and reviewHookArn are both set: name one review hook, "
                "a directory to build or an existing function's ARN"
            )
        if config.edit_window_seconds > config.history_max_age_seconds:
            raise ConfigError(
                f"context editWindowSeconds={config.edit_window_seconds} must not exceed "
                f"historyMaxAgeSeconds={config.history_max_age_seconds}: a message must still "
                "be in the history while its author may edit it"
            )
        return config

    @property
    def sharded(self) -> bool:
        """Whether a full room's broadcast is split among fan-out workers (the stack always
        has the worker; it is invoked only for deliveries above fanoutShardSize)."""
        return self.max_room_size > self.fanout_shard_size

    @property
    def fanout_worker_timeout_seconds(self) -> int:
        """The fan-out worker's timeout: 3 s below the chat function's, at least 3 s."""
        return max(
            MIN_WORKER_TIMEOUT_SECONDS,
            self.lambda_timeout_seconds - WORKER_TIMEOUT_HEADROOM_SECONDS,
        )

    def fanout_timing(self) -> FanoutTiming:
        """How long a broadcast to a full room takes with these settings."""
        # A join or rename in a room up to memberListThreshold sends every member the list
        # and the notice; above it, the notice only (lambda_src/chat/service.py).
        per_recipient = 2 if self.max_room_size <= self.member_list_threshold else 1
        return FanoutTiming(
            max_room_size=self.max_room_size,
            posts_per_recipient=per_recipient,
            shard_size=self.fanout_shard_size,
            posts_per_second=self.fanout_posts_per_second,
            sharded=self.sharded,
            chat_posts_per_second=posts_per_second_at(self.lambda_memory_mb),
            worker_posts_per_second=posts_per_second_at(self.fanout_worker_memory_mb),
            lambda_timeout_seconds=self.lambda_timeout_seconds,
            lambda_memory_mb=self.lambda_memory_mb,
            worker_memory_mb=self.fanout_worker_memory_mb,
            worker_timeout_seconds=self.fanout_worker_timeout_seconds,
        )

    def function_environment(self) -> dict[str, str]:
        """The function's settings (lambda_src/chat/settings.json), as environment variables.

        Every setting with a context key, and those the stack derives: the fan-out worker's
        timeout and whether sign-in is on. FANOUT_WORKER (a function name) is set by
        infra/stack.py, which creates the worker.
        """
        derived = {
            "FANOUT_WORKER_TIMEOUT_SECONDS": str(self.fanout_worker_timeout_seconds),
            "SIGN_IN_REQUIRED": str(self.sign_in is not None).lower(),
        }
        environment: dict[str, str] = {}
        for setting in FUNCTION_SETTINGS:
            if setting.only_with and not any(self.configured(k) for k in setting.only_with):
                continue  # the hook's or the bus's settings, without a hook or a bus
            if setting.env in derived:
                environment[setting.env] = derived[setting.env]
            elif setting.key:
                environment[setting.env] = self._variable(setting)
        return environment

    def configured(self, key: str) -> bool:
        """Whether an optional integration's key (reviewHook, reviewHookArn, eventBusName)
        is set."""
        values = {
            "reviewHook": self.review_hook_dir,
            "reviewHookArn": self.review_hook_arn,
            "eventBusName": self.event_bus_name,
        }
        return values[key] is not None

    @property
    def review_hook(self) -> bool:
        """Whether public messages go through a review hook."""
        return self.review_hook_dir is not None or self.review_hook_arn is not None

    @property
    def review_hook_function_timeout_seconds(self) -> int:
        """The built hook's own timeout: a second past the chat function's wait for it, so a
        hook that hangs is stopped soon after nobody waits for it any more."""
        return math.ceil(self.review_hook_timeout_ms / 1000) + 1

    def _variable(self, setting: FunctionSetting) -> str:
        """A function setting's value as the function reads it (chat.settings.Spec.parse)."""
        value = getattr(self, setting.field_name)
        if setting.kind == "float":
            return f"{value:g}"
        if setting.kind == "flag":
            return str(value).lower()
        if setting.kind == "origins":
            return ",".join(self.origin_allow_list())
        if setting.kind == "names":
            return ",".join(value)
        return str(value)

    def worker_environment(self) -> dict[str, str]:
        """The fan-out worker's settings: how it posts (it needs no table)."""
        return {
            "FANOUT_CONCURRENCY": str(self.fanout_worker_concurrency),
            "FANOUT_ENGINE": self.fanout_engine,
            "LOG_LEVEL": self.log_level,
        }

    def origin_allow_list(self, hosted_origin: str | None = None) -> tuple[str, ...]:
        """The origins $connect accepts: the configured ones, the hosted web client's
        (`https://<distribution domain>`, a deploy-time token) and loopback for the sandbox."""
        if "*" in self.allowed_origins:
            return ("*",)
        hosted = (hosted_origin,) if hosted_origin else ()
        return tuple(dict.fromkeys((*self.allowed_origins, *hosted, *LOOPBACK_ORIGINS)))


_UNSET = object()


class _Reader:
    """Reads and checks context values; every error names its key."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._stage_defaults: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        value = self._node.try_get_context(key)
        if value is None:
            return self._stage_defaults.get(key, DEFAULTS[key])
        return value

    def stage(self) -> str | None:
        """The stage, or None; from here on get() answers with the stage's defaults."""
        stage = str(self.get("stage") or "").strip()
        if stage and not STAGE_PATTERN.fullmatch(stage):
            raise ConfigError(
                f"context stage={stage!r} must be 1-24 lowercase letters, digits or -, "
                "starting with a letter (e.g. dev, prod)"
            )
        self._stage_defaults = stage_defaults(stage)
        return stage or None

    def removal_policy(
        self, key: str, default: RemovalPolicy | None = None, *, logs: bool = False
    ) -> RemovalPolicy:
        """destroy, retain or snapshot (not for logs); empty means `default`."""
        raw = str(self.get(key) or "").lower()
        if not raw and default is not None:
            return default
        allowed = [name for name in REMOVAL_POLICIES if not (logs and name == "snapshot")]
        if raw not in allowed:
            raise ConfigError(f"context {key}={raw!r} must be one of {', '.join(allowed)}")
        return REMOVAL_POLICIES[raw]

    def number(
        self, key: str, low: float | None = None, high: float | None = None, raw: Any = _UNSET
    ) -> float:
        """A number within [low, high], by default the key's range in RANGES."""
        if low is None or high is None:
            low, high = RANGES[key]
        raw = self.get(key) if raw is _UNSET else raw
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"context {key}={raw!r} is not a number") from None
        if not low <= value <= high:
            raise ConfigError(f"context {key}={raw!r} must be between {low:g} and {high:g}")
        return value

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        """One of `allowed`, in any case (logLevel=debug is DEBUG)."""
        raw = str(self.get(key))
        for choice in allowed:
            if raw.strip().lower() == choice.lower():
                return choice
        raise ConfigError(f"context {key}={raw!r} must be one of {', '.join(allowed)}")

    def function_settings(self) -> dict[str, Any]:
        """ChatConfig's fields for the function's context keys, read as settings.json says."""
        return {
            setting.field_name: self.function_setting(key, setting)
            for key, setting in FUNCTION_SETTINGS_BY_KEY.items()
        }

    def function_setting(self, key: str, setting: FunctionSetting) -> Any:
        if setting.kind == "int":
            return int(self.number(key))
        if setting.kind == "float":
            return self.number(key)
        if setting.kind == "choice":
            return self.choice(key, setting.choices)
        if setting.kind == "flag":
            return self.flag(key)
        if setting.kind == "names":
            return self.names(key)
        if setting.kind == "origins":
            return self.origins(key)
        return str(self.get(key)).strip()

    def flag(self, key: str) -> bool:
        raw = self.get(key)
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"context {key}={raw!r} must be true or false")

    def hook_dir(self, key: str) -> Path | None:
        """A directory of this repository with a handler.py (relative to the project, or
        absolute), or None when empty."""
        raw = str(self.get(key) or "").strip()
        if not raw:
            return None
        path = Path(raw)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        if not (path / HOOK_HANDLER_FILE).is_file():
            raise ConfigError(
                f"context {key}={raw!r} must be a directory with a {HOOK_HANDLER_FILE} "
                f"(its `{HOOK_HANDLER}` answers each review), such as hooks/wordlist"
            )
        return path.resolve()

    def function_arn(self, key: str) -> str | None:
        """A Lambda function's ARN (unqualified or with a version or alias), or None."""
        raw = str(self.get(key) or "").strip()
        if not raw:
            return None
        if not FUNCTION_ARN_PATTERN.fullmatch(raw):
            raise ConfigError(
                f"context {key}={raw!r} must be a Lambda function's ARN, such as "
                "arn:aws:lambda:eu-west-1:123456789012:function:chat-review"
            )
        return raw

    def event_bus(self, key: str) -> str | None:
        """An EventBridge bus's name or ARN, or None when empty."""
        raw = str(self.get(key) or "").strip()
        if not raw:
            return None
        if not (EVENT_BUS_NAME_PATTERN.fullmatch(raw) or EVENT_BUS_ARN_PATTERN.fullmatch(raw)):
            raise ConfigError(
                f"context {key}={raw!r} must be an EventBridge bus's name (letters, digits, "
                "., -, _ or /, at most 256) or its ARN"
            )
        return raw

    def email(self, key: str) -> str | None:
        """One e-mail address, or None when empty."""
        value = str(self.get(key) or "").strip()
        if not value:
            return None
        if not EMAIL_PATTERN.fullmatch(value):
            raise ConfigError(f"context {key}={value!r} must be one e-mail address")
        return value

    def _json(self, key: str) -> Any:
        raw = self.get(key)
        if isinstance(raw, str):  # `-c key=...` always arrives as a string
            try:
                return json.loads(raw)
            except ValueError:
                raise ConfigError(f"context {key}={raw!r} is not valid JSON") from None
        return raw

    def names(self, key: str) -> tuple[str, ...]:
        """A list of chat names (a JSON list, or names separated by commas)."""
        raw = self.get(key)
        if isinstance(raw, str) and not raw.strip().startswith("["):
            values: Any = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values = self._json(key)
        if not isinstance(values, list) or not all(
            isinstance(v, str) and 0 < len(v.strip()) <= 32 and "," not in v for v in values
        ):
            raise ConfigError(
                f"context {key}={raw!r} must be a list of names of 1-32 characters, without commas"
            )
        return tuple(v.strip() for v in values)

    def origins(self, key: str) -> tuple[str, ...]:
        raw = self.get(key)
        if isinstance(raw, str) and not raw.strip().startswith("["):
            values: Any = [part.strip() for part in raw.split(",") if part.strip()]
        else:
            values = self._json(key)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"context {key}={raw!r} must be a list of origins")
        for origin in values:
            if origin == "*":
                continue
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest:
                raise ConfigError(
                    f"context {key}: {origin!r} is not an origin such as https://chat.example.com"
                    ' (scheme and host, no path), or "*"'
                )
        return tuple(v.rstrip("/") for v in values)

    def sign_in(self) -> SignInConfig | None:
        """The sign-in settings, or None when signIn is false (the other keys are ignored)."""
        if not self.flag("signIn"):
            return None
        issuer = self.url("signInIssuer")
        audience = str(self.get("signInAudience")).strip()
        if not audience or len(audience) > 256 or any(c.isspace() or c == "," for c in audience):
            raise ConfigError(
                f"context signInAudience={audience!r} must be one audience (a Cognito app "
                "client id) when signIn is true"
            )
        jwks_url = self.url("signInJwksUrl", f"{issuer.rstrip('/')}/.well-known/jwks.json")
        name_claim = self.claim("signInNameClaim")
        groups_claim = self.claim("signInGroupsClaim")
        source = str(self.get("signInTokenSource")).lower()
        if source not in SIGN_IN_TOKEN_SOURCES:
            raise ConfigError(f"context signInTokenSource={source!r} must be query or protocol")
        layer_dir = str(self.get("signInLayerDir")).strip()
        if not layer_dir:
            raise ConfigError("context signInLayerDir must be a directory")
        issuer_parts = urlsplit(issuer)
        domain = self.url("signInDomain", f"{issuer_parts.scheme}://{issuer_parts.netloc}")
        if urlsplit(domain).path not in ("", "/"):
            raise ConfigError(
                f"context signInDomain={domain!r} must be an origin (scheme and host, no "
                "path), such as https://chat.auth.eu-west-1.amazoncognito.com"
            )
        return SignInConfig(
            issuer=issuer,
            audience=audience,
            jwks_url=jwks_url,
            name_claim=name_claim,
            token_source=source,
            layer_dir=Path(layer_dir),
            domain=domain.rstrip("/"),
            groups_claim=groups_claim,
        )

    def claim(self, key: str) -> str:
        """The name of a token claim: 1-128 printable characters."""
        raw = self.get(key)
        claim = raw.strip() if isinstance(raw, str) else ""
        if not claim or len(claim) > 128 or not claim.isprintable():
            raise ConfigError(f"context {key}={raw!r} must name a claim")
        return claim

    def url(self, key: str, default: str = "") -> str:
        """An https URL (http only on loopback, for local tests), required with signIn."""
        raw = self.get(key)
        value = str(raw or default).strip()
        if not value:
            raise ConfigError(f"context {key} is required when signIn is true")
        try:
            parts = urlsplit(value)
        except ValueError:
            raise ConfigError(f"context {key}={value!r} is not a URL") from None
        local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if (
            not (parts.scheme == "https" or local)
            or not parts.hostname
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
        ):
            raise ConfigError(
                f"context {key}={value!r} must be an https URL such as "
                "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123 "
                "(http only on loopback)"
            )
        return value

    def route_throttling(self, key: str) -> dict[str, RouteThrottle]:
        raw = self._json(key)
        if not isinstance(raw, dict):
            raise ConfigError(f"context {key} must be an object of route: {{burst, rate}}")
        unknown = set(raw) - set(THROTTLED_ROUTES)
        if unknown:
            raise ConfigError(
                f"context {key}: unknown route {sorted(unknown)[0]!r}; "
                f"routes are {', '.join(THROTTLED_ROUTES)}"
            )
        throttles = {}
        for route in THROTTLED_ROUTES:
            entry = {**DEFAULTS[key][route], **(raw.get(route) or {})}
            where = f"{key}.{route}"
            throttles[route] = RouteThrottle(
                burst=int(self.number(where, *ROUTE_BURST_RANGE, entry.get("burst"))),
                rate=self.number(where, *ROUTE_RATE_RANGE, entry.get("rate")),
            )
        return throttles
