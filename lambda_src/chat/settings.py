"""Configuration, read once from the environment the stack (or the sandbox) sets.

The defaults below are the function's own safe fallbacks; the stack always sets every
variable from infra/config.py, and a test checks that the two sets of defaults agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

# API Gateway closes every connection after 2 hours; items outlive that by an hour.
DEFAULT_CONNECTION_TTL_SECONDS = 3 * 3600
MIN_CONNECTION_TTL_SECONDS = 2 * 3600 + 60
LOOPBACK_ORIGINS = ("http://127.0.0.1", "http://localhost", "http://[::1]")
RESERVED_NAMES = ("admin", "administrator", "system", "server", "moderator")

T = TypeVar("T", int, float)


@dataclass(frozen=True)
class Limits:
    """Abuse limits: token buckets per connection, strikes before a close, room size."""

    message_burst: int = 10
    message_rate_per_second: float = 2.0
    name_burst: int = 3
    name_rate_per_second: float = 0.1
    rate_limit_strikes: int = 300
    max_room_size: int = 1000
    # Up to this many members every change sends the full list (protocol v1): 200 of the
    # longest names (32 four-byte characters) still fit one 32 KB frame.
    member_list_threshold: int = 200
    # `history` requests: their own, stricter bucket per connection.
    history_burst: int = 3
    history_rate_per_second: float = 0.2
    # Per source address across all its connections (and, with sign-in, per account):
    # handshakes, frames and joins; live connections; members in the room from one address.
    # Generous enough for a school or an office behind one NAT (docs/security.md).
    address_connect_burst: int = 30
    address_connect_rate_per_second: float = 1.0
    address_frame_burst: int = 100
    address_frame_rate_per_second: float = 20.0
    address_join_burst: int = 20
    address_join_rate_per_second: float = 0.5
    address_max_connections: int = 100
    address_max_members: int = 50
    account_max_connections: int = 10
    # A connection still without a name this long after its handshake is closed (the
    # next $connect of anyone sweeps them).
    unnamed_timeout_seconds: int = 300


@dataclass(frozen=True)
class Retention:
    """How long the room remembers: its history of public messages, and message ids."""

    history_count: int = 100
    # At most this many bytes of stored message frames in one history reply (a join's
    # or a `history` request's), the newest first.
    history_max_bytes: int = 65536
    history_max_age_seconds: int = 3600
    dedup_window_seconds: int = 600


@dataclass(frozen=True)
class Settings:
    """What the handler needs to know about its deployment."""

    table_name: str
    callback_url: str
    fanout_concurrency: int = 32
    # "socket": chat.fanout's engine (docs/performance.md); "boto3": boto3's client on a
    # thread pool (the slower path it replaced, kept as a switch).
    fanout_engine: str = "socket"
    # Sharded fan-out (chat/sharding.py): the worker function's name ("" = none), and the
    # most recipients one invocation posts to itself.
    fanout_worker: str = ""
    fanout_shard_size: int = 250
    fanout_posts_per_second: int = 5000
    # The worker function's timeout (infra sets it 3 s below the chat function's own): the
    # Invoke read timeout is this plus a margin, still inside the chat function's deadline.
    fanout_worker_timeout_seconds: int = 17
    # The room's member items spread over this many partitions (chat.store).
    member_partitions: int = 1
    connection_ttl_seconds: int = DEFAULT_CONNECTION_TTL_SECONDS
    log_level: str = "INFO"
    limits: Limits = field(default_factory=Limits)
    retention: Retention = field(default_factory=Retention)
    # Origins allowed on $connect ("*": any). Loopback ports are not compared.
    allowed_origins: tuple[str, ...] = LOOPBACK_ORIGINS
    allow_missing_origin: bool = True
    # With sign-in on, the authorizer's context must carry the chat name to bind.
    sign_in_required: bool = False
    # Names nobody may take, nor their look-alikes (chat.names).
    reserved_names: tuple[str, ...] = RESERVED_NAMES

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, worker: bool = False) -> Settings:
        """Raises KeyError/ValueError naming the variable that is missing or wrong.

        `worker`: the fan-out worker's settings, which need no table.
        """
        required = ("CALLBACK_URL",) if worker else ("TABLE_NAME", "CALLBACK_URL")
        missing = [k for k in required if not env.get(k)]
        if missing:
            raise KeyError(f"missing environment variables: {', '.join(missing)}")

        def number(name: str, kind: Callable[[str], T], default: T, low: T, high: T) -> T:
            raw = env.get(name)
            try:
                value = kind(raw) if raw else default
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}")
            return value

        def engine(raw: str) -> str:
            if raw not in ("socket", "boto3"):
                raise ValueError(f"FANOUT_ENGINE={raw!r} must be socket or boto3")
            return raw

        def reserved(raw: str | None) -> tuple[str, ...]:
            if raw is None:
                return RESERVED_NAMES
            return tuple(n.strip() for n in raw.split(",") if n.strip())

        def flag(name: str, default: bool) -> bool:
            raw = env.get(name, "").strip().lower()
            return default if not raw else raw in ("1", "true", "yes")

        defaults = Limits()
        limits = Limits(
            message_burst=number("MESSAGE_BURST", int, defaults.message_burst, 1, 1000),
            message_rate_per_second=number(
                "MESSAGE_RATE_PER_SECOND", float, defaults.message_rate_per_second, 0.01, 100.0
            ),
            name_burst=number("NAME_BURST", int, defaults.name_burst, 1, 100),
            name_rate_per_second=number(
                "NAME_RATE_PER_SECOND", float, defaults.name_rate_per_second, 0.001, 10.0
            ),
            rate_limit_strikes=number(
                "RATE_LIMIT_STRIKES", int, defaults.rate_limit_strikes, 1, 10000
            ),
            max_room_size=number("MAX_ROOM_SIZE", int, defaults.max_room_size, 2, 100_000),
            member_list_threshold=number(
                "MEMBER_LIST_THRESHOLD", int, defaults.member_list_threshold, 2, 240
            ),
            history_burst=number("HISTORY_BURST", int, defaults.history_burst, 1, 100),
            history_rate_per_second=number(
                "HISTORY_RATE_PER_SECOND", float, defaults.history_rate_per_second, 0.001, 10.0
            ),
            address_connect_burst=number(
                "ADDRESS_CONNECT_BURST", int, defaults.address_connect_burst, 1, 10_000
            ),
            address_connect_rate_per_second=number(
                "ADDRESS_CONNECT_RATE_PER_SECOND",
                float,
                defaults.address_connect_rate_per_second,
                0.001,
                1000.0,
            ),
            address_frame_burst=number(
                "ADDRESS_FRAME_BURST", int, defaults.address_frame_burst, 1, 100_000
            ),
            address_frame_rate_per_second=number(
                "ADDRESS_FRAME_RATE_PER_SECOND",
                float,
                defaults.address_frame_rate_per_second,
                0.01,
                10_000.0,
            ),
            address_join_burst=number(
                "ADDRESS_JOIN_BURST", int, defaults.address_join_burst, 1, 10_000
            ),
            address_join_rate_per_second=number(
                "ADDRESS_JOIN_RATE_PER_SECOND",
                float,
                defaults.address_join_rate_per_second,
                0.001,
                1000.0,
            ),
            address_max_connections=number(
                "ADDRESS_MAX_CONNECTIONS", int, defaults.address_max_connections, 1, 100_000
            ),
            address_max_members=number(
                "ADDRESS_MAX_MEMBERS", int, defaults.address_max_members, 1, 100_000
            ),
            account_max_connections=number(
                "ACCOUNT_MAX_CONNECTIONS", int, defaults.account_max_connections, 1, 1000
            ),
            unnamed_timeout_seconds=number(
                "UNNAMED_TIMEOUT_SECONDS", int, defaults.unnamed_timeout_seconds, 10, 7200
            ),
        )
        kept = Retention()
        retention = Retention(
            history_count=number("HISTORY_COUNT", int, kept.history_count, 0, 1000),
            history_max_bytes=number(
                "HISTORY_MAX_BYTES", int, kept.history_max_bytes, 16_384, 1_048_576
            ),
            history_max_age_seconds=number(
                "HISTORY_MAX_AGE_SECONDS", int, kept.history_max_age_seconds, 60, 7 * 86400
            ),
            dedup_window_seconds=number(
                "DEDUP_WINDOW_SECONDS", int, kept.dedup_window_seconds, 60, 86400
            ),
        )
        origins = tuple(
            o.strip().rstrip("/") for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()
        )
        ttl = number(
            "CONNECTION_TTL_SECONDS",
            int,
            DEFAULT_CONNECTION_TTL_SECONDS,
            MIN_CONNECTION_TTL_SECONDS,
            30 * 86400,
        )
        return cls(
            table_name=env.get("TABLE_NAME", ""),
            callback_url=env["CALLBACK_URL"],
            fanout_concurrency=number("FANOUT_CONCURRENCY", int, 32, 1, 256),
            fanout_engine=engine(env.get("FANOUT_ENGINE", "socket")),
            fanout_worker=env.get("FANOUT_WORKER", "").strip(),
            fanout_shard_size=number("FANOUT_SHARD_SIZE", int, 250, 1, 100_000),
            fanout_posts_per_second=number("FANOUT_POSTS_PER_SECOND", int, 5000, 100, 10_000),
            fanout_worker_timeout_seconds=number("FANOUT_WORKER_TIMEOUT_SECONDS", int, 17, 3, 26),
            member_partitions=number("MEMBER_PARTITIONS", int, 1, 1, 16),
            connection_ttl_seconds=ttl,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            limits=limits,
            retention=retention,
            allowed_origins=origins or LOOPBACK_ORIGINS,
            allow_missing_origin=flag("ALLOW_MISSING_ORIGIN", True),
            sign_in_required=flag("SIGN_IN_REQUIRED", False),
            reserved_names=reserved(env.get("RESERVED_NAMES")),
        )
