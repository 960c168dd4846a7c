"""Events out: the chat's events, queued during an invocation and sent to an EventBridge bus
at its end with PutEvents (up to 10 entries a call), never failing the chat's action.

The EventPublisher port's adapter; what each event carries is docs/events.md. A call that
fails, an entry the bus refuses, or an invocation out of time: logged and counted
(EventsFailed), and the events are dropped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chat import aws_errors, deadline

log = logging.getLogger("chat.events")

SOURCE = "websocket-chat"
BATCH = 10  # PutEvents takes at most 10 entries a call
# What one invocation queues at most (a disconnect from 50 rooms is 51); more are dropped.
MAX_QUEUED = 100


class EventBridgePublisher:
    """Queues events and sends them to `bus` with boto3's `events` client at `flush`."""

    def __init__(
        self,
        client: Any,
        bus: str,
        *,
        on_failed: Callable[[int], None] = lambda _count: None,
        source: str = SOURCE,
    ) -> None:
        self._client = client
        self._bus = bus
        self._source = source
        self._on_failed = on_failed
        self._queued: list[dict[str, str]] = []
        self._dropped = 0

    @property
    def client(self) -> Any:
        return self._client

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        if len(self._queued) >= MAX_QUEUED:
            self._dropped += 1
            return
        self._queued.append(
            {
                "Source": self._source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":")),
                "EventBusName": self._bus,
            }
        )

    def flush(self) -> None:
        entries, self._queued = self._queued, []
        failed, self._dropped = self._dropped, 0
        for start in range(0, len(entries), BATCH):
            batch = entries[start : start + BATCH]
            if deadline.current().expired():
                failed += len(entries) - start
                log.error("events not published: the invocation is out of time")
                break
            failed += self._put(batch)
        if failed:
            self._on_failed(failed)

    def _put(self, batch: list[dict[str, str]]) -> int:
        """Send one batch; how many of its entries were not published."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            answer = self._client.put_events(Entries=batch)
        except ClientError as error:
            log.error(
                "events not published",
                extra={"error": aws_errors.error_name(error), "events": len(batch)},
            )
            return len(batch)
        except BotoCoreError as error:
            log.error(
                "events not published", extra={"error": type(error).__name__, "events": len(batch)}
            )
            return len(batch)
        failed = int(answer.get("FailedEntryCount") or 0)
        if failed:
            codes = sorted(
                {str(e.get("ErrorCode")) for e in answer.get("Entries", []) if e.get("ErrorCode")}
            )
            log.error("events not published", extra={"errors": codes, "events": failed})
        return failed
