"""Structured JSON logs through Powertools' Logger: one JSON object per line on stdout.

Every `chat.*` logger (chat.handler, chat.notifier, ...) writes through the `chat` logger
that Powertools configures, so each line carries `level`, `message`, `timestamp`,
`service`, the invocation's keys (`function_request_id`, `cold_start`, and the `route`,
`connectionId` and `requestId` that chat/telemetry.py appends) and whatever the call
passed in `extra=`. Message bodies, names and tokens are never passed: log ids, routes,
outcomes and counts only.
"""

from __future__ import annotations

import sys

from aws_lambda_powertools import Logger

# The logger's name is the service's: records of chat.handler, chat.notifier, ... reach it.
SERVICE = "chat"


class _Stdout:
    """Whatever sys.stdout is at the time of writing (Lambda's, or a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_logger: Logger | None = None


def configure(level: str) -> Logger:
    """The `chat` Powertools logger at `level` (set up on the first call, reused after)."""
    global _logger  # noqa: PLW0603 - one logger per execution environment
    if _logger is None:
        _logger = Logger(service=SERVICE, level=level, stream=_Stdout(), utc=True)  # type: ignore[arg-type]
    else:
        _logger.setLevel(level)
    return _logger
