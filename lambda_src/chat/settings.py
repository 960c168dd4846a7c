"""Configuration, read once from the environment the stack (or the sandbox) sets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

# API Gateway closes every connection after 2 hours; items outlive that by an hour.
DEFAULT_CONNECTION_TTL_SECONDS = 3 * 3600
MIN_CONNECTION_TTL_SECONDS = 2 * 3600 + 60


@dataclass(frozen=True)
class Settings:
    """What the handler needs to know about its deployment."""

    table_name: str
    callback_url: str
    fanout_concurrency: int = 32
    connection_ttl_seconds: int = DEFAULT_CONNECTION_TTL_SECONDS
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Raises KeyError/ValueError naming the variable that is missing or wrong."""
        missing = [k for k in ("TABLE_NAME", "CALLBACK_URL") if not env.get(k)]
        if missing:
            raise KeyError(f"missing environment variables: {', '.join(missing)}")
        concurrency = int(env.get("FANOUT_CONCURRENCY", "32"))
        if not 1 <= concurrency <= 256:
            raise ValueError("FANOUT_CONCURRENCY must be between 1 and 256")
        ttl = int(env.get("CONNECTION_TTL_SECONDS", str(DEFAULT_CONNECTION_TTL_SECONDS)))
        if ttl < MIN_CONNECTION_TTL_SECONDS:
            raise ValueError(
                f"CONNECTION_TTL_SECONDS must be at least {MIN_CONNECTION_TTL_SECONDS} "
                "(past API Gateway's 2-hour connection limit)"
            )
        return cls(
            table_name=env["TABLE_NAME"],
            callback_url=env["CALLBACK_URL"],
            fanout_concurrency=concurrency,
            connection_ttl_seconds=ttl,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
        )
