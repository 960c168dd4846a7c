"""API Gateway adapter: posts frames to connections through the @connections API."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from chat.frames import Frame
from chat.ports import DeliveryReport

log = logging.getLogger("chat.notifier")

GONE = "gone"
SENT = "sent"
FAILED = "failed"


def encode(frame: Frame) -> bytes:
    """A frame as the UTF-8 JSON text the client receives."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _is_gone(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("GoneException", "410") or status == 410


class ConnectionsNotifier:
    """Notifier over a shared, thread-safe `apigatewaymanagementapi` client.

    Posts to different connections run concurrently on at most `concurrency` threads
    (the client's connection pool must be at least that large); the frames for one
    connection are posted in order, and stop at the first 410.
    """

    def __init__(self, client: Any, *, concurrency: int) -> None:
        self._client = client
        self._concurrency = max(1, concurrency)

    def send(self, deliveries: Mapping[str, Sequence[Frame]]) -> DeliveryReport:
        if not deliveries:
            return DeliveryReport(sent=0, gone=frozenset(), failed=0)
        encoded = {cid: [encode(f) for f in batch] for cid, batch in deliveries.items()}
        jobs = list(encoded.items())
        if len(jobs) == 1:
            outcomes = [self._post_all(*jobs[0])]
        else:
            workers = min(self._concurrency, len(jobs))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="post") as pool:
                outcomes = list(pool.map(lambda job: self._post_all(*job), jobs))
        gone = frozenset(
            cid for (cid, _), outcome in zip(jobs, outcomes, strict=True) if outcome == GONE
        )
        failed = sum(1 for outcome in outcomes if outcome == FAILED)
        sent = sum(1 for outcome in outcomes if outcome == SENT)
        if gone or failed:
            log.info(
                "delivery finished with losses",
                extra={"sent": sent, "gone": len(gone), "failed": failed},
            )
        return DeliveryReport(sent=sent, gone=gone, failed=failed)

    def _post_all(self, connection_id: str, payloads: Sequence[bytes]) -> str:
        for data in payloads:
            try:
                self._client.post_to_connection(ConnectionId=connection_id, Data=data)
            except ClientError as error:
                if _is_gone(error):
                    return GONE
                log.warning(
                    "post failed",
                    extra={"connectionId": connection_id, "error": str(error)},
                )
                return FAILED
            except Exception:  # a broken socket must not stop delivery to the others
                log.exception("post failed", extra={"connectionId": connection_id})
                return FAILED
        return SENT

    def close(self, connection_id: str) -> None:
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if not _is_gone(error):
                log.warning(
                    "could not close the connection",
                    extra={"connectionId": connection_id, "error": str(error)},
                )

    def is_gone(self, connection_id: str) -> bool:
        try:
            self._client.get_connection(ConnectionId=connection_id)
        except ClientError as error:
            return _is_gone(error)
        return False
