"""Configuration, read once from the environment the stack (or the sandbox) sets.

Every setting's environment variable, type, default and range is written once, in
settings.json beside this module (read here at import, once per cold start). The stack
(infra/config.py) reads the same file for its context keys' defaults and ranges, and
bin/build-config-docs writes docs/configuration.md from it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SETTINGS_FILE = Path(__file__).with_name("settings.json")
_FILE: dict[str, Any] = json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Spec:
    """One function setting as settings.json states it."""

    env: str
    kind: str  # int, float, choice, str, flag, names or origins
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    key: str | None = None  # the CDK context key, or None when the stack derives it

    @property
    def field_name(self) -> str:
        """The dataclass field (Settings, Limits or Retention) that holds it."""
        return self.env.lower()

    def parse(self, raw: str | None) -> Any:
        """The value of `raw` (None or "": the default); ValueError names the variable."""
        if self.kind == "names":  # unset: the default; empty: none
            if raw is None:
                return tuple(self.default)
            return tuple(n.strip() for n in raw.split(",") if n.strip())
        raw = raw.strip() if raw else ""
        if self.kind == "origins":
            return tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        if self.kind == "flag":
            return self.default if not raw else raw.lower() in ("1", "true", "yes")
        if self.kind == "str":
            return raw or self.default
        if self.kind == "choice":
            if not raw:
                return self.default
            for choice in self.choices:  # any case: LOG_LEVEL=debug is DEBUG
                if raw.lower() == choice.lower():
                    return choice
            raise ValueError(f"{self.env}={raw!r} must be {' or '.join(self.choices)}")
        kind = int if self.kind == "int" else float
        try:
            number = kind(raw) if raw else kind(self.default)
        except ValueError:
            raise ValueError(f"{self.env}={raw!r} is not a number") from None
        assert self.low is not None and self.high is not None
        if not self.low <= number <= self.high:
            raise ValueError(f"{self.env} must be between {self.low:g} and {self.high:g}")
        return number


SPECS: dict[str, Spec] = {
    entry["env"]: Spec(
        env=entry["env"],
        kind=entry["type"],
        default=entry["default"],
        low=entry.get("min"),
        high=entry.get("max"),
        choices=tuple(entry.get("choices", ())),
        key=entry.get("key"),
    )
    for entry in _FILE["settings"]
}
_BY_FIELD = {spec.field_name: spec for spec in SPECS.values()}

LOOPBACK_ORIGINS: tuple[str, ...] = tuple(_FILE["loopbackOrigins"])
RESERVED_NAMES: tuple[str, ...] = tuple(SPECS["RESERVED_NAMES"].default)
# The chat's metrics: namespace, service and names (chat.telemetry, infra/monitoring.py).
METRICS: dict[str, Any] = _FILE["metrics"]
# API Gateway closes every connection after 2 hours; items outlive that by an hour.
DEFAULT_CONNECTION_TTL_SECONDS: int = SPECS["CONNECTION_TTL_SECONDS"].default
MIN_CONNECTION_TTL_SECONDS = int(SPECS["CONNECTION_TTL_SECONDS"].low or 0)


def _default(name: str) -> Any:
    """The default of the setting whose dataclass field is `name`."""
    spec = _BY_FIELD[name]
    if spec.kind == "float":
        return float(spec.default)
    if spec.kind == "names":
        return tuple(spec.default)
    return spec.default


@dataclass(frozen=True)
class Limits:
    """Abuse limits: token buckets per connection, strikes before a close, room size."""

    message_burst: int = _default("message_burst")
    message_rate_per_second: float = _default("message_rate_per_second")
    name_burst: int = _default("name_burst")
    name_rate_per_second: float = _default("name_rate_per_second")
    rate_limit_strikes: int = _default("rate_limit_strikes")
    max_room_size: int = _default("max_room_size")
    # Up to this many members every change sends the full list (protocol v1): 200 of the
    # longest names (32 four-byte characters) still fit one 32 KB frame.
    member_list_threshold: int = _default("member_list_threshold")
    # `history` requests: their own, stricter bucket per connection.
    history_burst: int = _default("history_burst")
    history_rate_per_second: float = _default("history_rate_per_second")
    # Per source address across all its connections (and, with sign-in, per account):
    # handshakes, frames and joins; live connections; members in the room from one address.
    # Generous enough for a school or an office behind one NAT (docs/security.md).
    address_connect_burst: int = _default("address_connect_burst")
    address_connect_rate_per_second: float = _default("address_connect_rate_per_second")
    address_frame_burst: int = _default("address_frame_burst")
    address_frame_rate_per_second: float = _default("address_frame_rate_per_second")
    address_join_burst: int = _default("address_join_burst")
    address_join_rate_per_second: float = _default("address_join_rate_per_second")
    address_max_connections: int = _default("address_max_connections")
    address_max_members: int = _default("address_max_members")
    account_max_connections: int = _default("account_max_connections")
    # A connection still without a name this long after its handshake is closed (the
    # next $connect of anyone sweeps them).
    unnamed_timeout_seconds: int = _default("unnamed_timeout_seconds")


@dataclass(frozen=True)
class Retention:
    """How long the room remembers: its history of public messages, and message ids."""

    history_count: int = _default("history_count")
    # At most this many bytes of stored message frames in one history reply (a join's
    # or a `history` request's), the newest first.
    history_max_bytes: int = _default("history_max_bytes")
    history_max_age_seconds: int = _default("history_max_age_seconds")
    dedup_window_seconds: int = _default("dedup_window_seconds")


@dataclass(frozen=True)
class Rooms:
    """Rooms (protocol v2, docs/rooms-design.md): how many, how long they live, edits,
    typing, invitations, read state, the room list, and direct conversations."""

    max_rooms_per_connection: int = _default("max_rooms_per_connection")
    max_rooms_per_creator: int = _default("max_rooms_per_creator")
    max_rooms: int = _default("max_rooms")
    room_ttl_seconds: int = _default("room_ttl_seconds")
    edit_window_seconds: int = _default("edit_window_seconds")
    typing_interval_seconds: float = _default("typing_interval_seconds")
    invite_ttl_seconds: int = _default("invite_ttl_seconds")
    read_state_ttl_seconds: int = _default("read_state_ttl_seconds")
    rooms_list_limit: int = _default("rooms_list_limit")
    direct_rooms: bool = _default("direct_rooms")


@dataclass(frozen=True)
class Moderation:
    """Moderation (issue 17, chat.moderation): who the stack's moderators are, how long the
    audit log keeps an action, the longest mute, ban and slow mode."""

    moderator_group: str = _default("moderator_group")
    audit_ttl_seconds: int = _default("audit_ttl_seconds")
    moderation_max_seconds: int = _default("moderation_max_seconds")
    slow_mode_max_seconds: int = _default("slow_mode_max_seconds")


@dataclass(frozen=True)
class Settings:
    """What the handler needs to know about its deployment."""

    table_name: str
    callback_url: str
    fanout_concurrency: int = _default("fanout_concurrency")
    # "socket": chat.fanout's engine (docs/performance.md); "boto3": boto3's client on a
    # thread pool (the slower path it replaced, kept as a switch).
    fanout_engine: str = _default("fanout_engine")
    # Sharded fan-out (chat/sharding.py): the worker function's name ("" = none), and the
    # most recipients one invocation posts to itself.
    fanout_worker: str = _default("fanout_worker")
    fanout_shard_size: int = _default("fanout_shard_size")
    fanout_posts_per_second: int = _default("fanout_posts_per_second")
    # The worker function's timeout (infra sets it 3 s below the chat function's own): the
    # Invoke read timeout is this plus a margin, still inside the chat function's deadline.
    fanout_worker_timeout_seconds: int = _default("fanout_worker_timeout_seconds")
    # The room's member items spread over this many partitions (chat.store).
    member_partitions: int = _default("member_partitions")
    connection_ttl_seconds: int = _default("connection_ttl_seconds")
    log_level: str = _default("log_level")
    limits: Limits = field(default_factory=Limits)
    retention: Retention = field(default_factory=Retention)
    rooms: Rooms = field(default_factory=Rooms)
    moderation: Moderation = field(default_factory=Moderation)
    # Origins allowed on $connect ("*": any). Loopback ports are not compared.
    allowed_origins: tuple[str, ...] = LOOPBACK_ORIGINS
    allow_missing_origin: bool = _default("allow_missing_origin")
    # With sign-in on, the authorizer's context must carry the chat name to bind.
    sign_in_required: bool = _default("sign_in_required")
    # Names nobody may take, nor their look-alikes (chat.names).
    reserved_names: tuple[str, ...] = RESERVED_NAMES
    # The review hook (chat/review.py): its function ("" = none), how long its answer is
    # waited for, and what decides when it gives none.
    review_hook: str = _default("review_hook")
    review_hook_timeout_ms: int = _default("review_hook_timeout_ms")
    review_hook_fallback: str = _default("review_hook_fallback")
    # Events out (chat/events_out.py): the EventBridge bus ("" = none), and whether events
    # carry the messages' text.
    event_bus: str = _default("event_bus")
    events_include_bodies: bool = _default("events_include_bodies")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, *, worker: bool = False) -> Settings:
        """Raises KeyError/ValueError naming the variable that is missing or wrong.

        `worker`: the fan-out worker's settings, which need no table.
        """
        required = ("CALLBACK_URL",) if worker else ("TABLE_NAME", "CALLBACK_URL")
        missing = [k for k in required if not env.get(k)]
        if missing:
            raise KeyError(f"missing environment variables: {', '.join(missing)}")

        def read(group: type) -> dict[str, Any]:
            """Every field of `group` that settings.json lists, read from `env`."""
            return {
                f.name: _BY_FIELD[f.name].parse(env.get(f.name.upper()))
                for f in fields(group)
                if f.name in _BY_FIELD
            }

        values = read(cls)
        values["allowed_origins"] = values["allowed_origins"] or LOOPBACK_ORIGINS
        return cls(
            table_name=env.get("TABLE_NAME", ""),
            callback_url=env["CALLBACK_URL"],
            limits=Limits(**read(Limits)),
            retention=Retention(**read(Retention)),
            rooms=Rooms(**read(Rooms)),
            moderation=Moderation(**read(Moderation)),
            **values,
        )
