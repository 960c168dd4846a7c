"""The functions' wiring: settings, the DynamoDB client, the @connections notifiers and the
fan-out workers' client, each built once per execution environment (`reset` forgets them).

The handler (`handler.py`) uses `chat_service()` and `worker_notifier()`; the retry and
timeout budgets are explained in docs/reliability.md and chat/sharding.py.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

from chat import logs, sharding, telemetry
from chat.events_out import EventBridgePublisher
from chat.fanout import FanoutEngine
from chat.notifier import ConnectionsNotifier
from chat.operator import Operator
from chat.ports import Notifier
from chat.review import ReviewGate
from chat.review_hook import REVIEW_THREADS, LambdaReviewer
from chat.service import ChatService, validate_message
from chat.settings import Settings
from chat.store import DynamoChatStore

# botocore's "standard" retry mode: exponential backoff with full jitter (a random wait of
# up to 1, 2, 4 s ...), on throttling (ProvisionedThroughputExceeded, ThrottlingException,
# 429 LimitExceeded), 5xx and connection errors; never on 410 Gone. `total_max_attempts`
# counts the first try too. DynamoDB gets 4 attempts (at most about 7 s of waiting, well
# inside the function's 20 s); a post gets 3 (at most about 3 s), because a broadcast
# waits for its slowest post, and a member that misses a message recovers it from the
# history when the next one shows the gap.
DYNAMODB_RETRIES: Any = {"mode": "standard", "total_max_attempts": 4}
POST_RETRIES: Any = {"mode": "standard", "total_max_attempts": 3}
# A fan-out worker is invoked once by botocore: a retried invocation that had already run
# would post its shard twice (chat/sharding.py retries a throttled one, which never ran,
# itself). It may take up to its own timeout (FANOUT_WORKER_TIMEOUT_SECONDS, 3 s below the
# chat function's), so the read timeout is that plus WORKER_READ_MARGIN_S for the Invoke
# round trip: 17 + 1 = 18 s with the defaults, inside the chat function's deadline (its
# 20 s timeout minus chat.deadline's 1 s margin). The arithmetic: chat/sharding.py.
WORKER_INVOKE: Any = {"mode": "standard", "total_max_attempts": 1}
WORKER_READ_MARGIN_S = 1
WORKER_CONNECT_TIMEOUT_S = 3
MAX_PARALLEL_WORKERS = 64
# The review hook is invoked once: its sender is waiting, and a retry would double the wait
# for an answer that did not come in reviewHookTimeoutMs (chat/review_hook.py).
REVIEW_INVOKE: Any = {"mode": "standard", "total_max_attempts": 1}
# PutEvents at the end of an invocation, after the chat's replies: two tries, short waits
# (at most about 2 x 3 s, inside the 1 s deadline margin only when the bus is slow; the
# events of an invocation out of time are dropped and counted instead).
EVENTS_RETRIES: Any = {"mode": "standard", "total_max_attempts": 2}
EVENTS_CONNECT_TIMEOUT_S = 1
EVENTS_READ_TIMEOUT_S = 2


@functools.cache
def settings() -> Settings:
    """The deployment's settings, read once per execution environment."""
    return Settings.from_env()


@functools.cache
def chat_service() -> ChatService:
    """The service wired to DynamoDB and API Gateway, built once per execution environment."""
    settings_ = settings()
    logs.configure(settings_.log_level)
    service = ChatService(
        DynamoChatStore(
            _dynamodb(), settings_.table_name, member_partitions=settings_.member_partitions
        ),
        notifier(settings_),
        connection_ttl_seconds=settings_.connection_ttl_seconds,
        limits=settings_.limits,
        retention=settings_.retention,
        rooms=settings_.rooms,
        moderation=settings_.moderation,
        reserved_names=settings_.reserved_names,
    )
    service.use_review(review_gate(settings_))
    if settings_.event_bus:
        service.use_events(
            event_publisher(settings_), include_bodies=settings_.events_include_bodies
        )
    return service


def event_publisher(settings_: Settings) -> EventBridgePublisher:
    """Events out to the stack's EventBridge bus (chat/events_out.py)."""
    client = boto3.client(
        "events",
        config=Config(
            retries=EVENTS_RETRIES,
            connect_timeout=EVENTS_CONNECT_TIMEOUT_S,
            read_timeout=EVENTS_READ_TIMEOUT_S,
        ),
    )
    return EventBridgePublisher(
        client, settings_.event_bus, on_failed=telemetry.record_events_failed
    )


def review_gate(settings_: Settings) -> ReviewGate | None:
    """The review hook's gate (chat/review.py), when the stack names a hook."""
    if not settings_.review_hook:
        return None
    timeout = settings_.review_hook_timeout_ms / 1000
    client = boto3.client(
        "lambda",
        config=Config(
            retries=REVIEW_INVOKE,
            connect_timeout=timeout,
            read_timeout=timeout,
            max_pool_connections=REVIEW_THREADS,
        ),
    )
    return ReviewGate(
        LambdaReviewer(client, settings_.review_hook),
        timeout_seconds=timeout,
        fallback_decision=settings_.review_hook_fallback,
        validate=validate_message,
        on_failure=telemetry.record_review_failure,
    )


@functools.cache
def operator() -> Operator:
    """The server API's reads (chat/operator.py), on the chat service's store."""
    settings_ = settings()
    return Operator(
        DynamoChatStore(
            _dynamodb(), settings_.table_name, member_partitions=settings_.member_partitions
        ),
        reserved=settings_.reserved_names,
    )


@functools.cache
def _dynamodb() -> Any:
    """One DynamoDB client per execution environment, shared by the service and the server
    API's reads (a client costs tens of milliseconds to make)."""
    return boto3.client("dynamodb", config=Config(retries=DYNAMODB_RETRIES))


def notifier(settings_: Settings) -> Notifier:
    """The @connections adapter: this invocation's own poster, and above the shard size,
    fan-out workers beside it (chat/sharding.py) when the stack names a worker function."""
    local = local_notifier(settings_)
    if not settings_.fanout_worker:
        return local
    invoker = boto3.client(
        "lambda",
        config=Config(
            retries=WORKER_INVOKE,
            max_pool_connections=MAX_PARALLEL_WORKERS,
            connect_timeout=WORKER_CONNECT_TIMEOUT_S,
            read_timeout=worker_read_timeout(settings_),
        ),
    )
    return sharding.ShardedNotifier(
        local,
        sharding.LambdaShardInvoker(invoker, settings_.fanout_worker),
        shard_size=settings_.fanout_shard_size,
        max_parallel=MAX_PARALLEL_WORKERS,
        posts_per_second=settings_.fanout_posts_per_second,
    )


def worker_read_timeout(settings_: Settings) -> int:
    """Seconds the chat function reads a worker's answer: its timeout plus the margin."""
    return settings_.fanout_worker_timeout_seconds + WORKER_READ_MARGIN_S


def local_notifier(settings_: Settings) -> Notifier:
    """Posts from this invocation: our fan-out engine (signed by botocore, posted on
    keep-alive sockets; docs/performance.md), or boto3's client on a thread pool."""
    if settings_.fanout_engine == "boto3":
        connections = boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=settings_.callback_url,
            config=Config(
                retries=POST_RETRIES,
                max_pool_connections=settings_.fanout_concurrency,
                connect_timeout=3,
                read_timeout=5,
            ),
        )
        return ConnectionsNotifier(connections, concurrency=settings_.fanout_concurrency)
    session = boto3.session.Session()
    return FanoutEngine(
        settings_.callback_url,
        region=session.region_name or "us-east-1",
        credentials=session.get_credentials(),
        concurrency=settings_.fanout_concurrency,
        max_attempts=POST_RETRIES["total_max_attempts"],
        connect_timeout=3,
        read_timeout=5,
        on_delivery=telemetry.record_delivery,
    )


@functools.cache
def worker_notifier() -> Notifier:
    """The fan-out worker function's poster, built once per execution environment."""
    settings_ = Settings.from_env(worker=True)
    logs.configure(settings_.log_level)
    return local_notifier(settings_)


def reset() -> None:
    """Forget the cached settings and clients (the next event reads the environment again)."""
    settings.cache_clear()
    chat_service.cache_clear()
    operator.cache_clear()
    _dynamodb.cache_clear()
    worker_notifier.cache_clear()
