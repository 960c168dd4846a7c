"""EventBridge's PutEvents, as the chat function calls it: the events it would have sent.

With `eventBusName` the chat function publishes its events (lambda_src/chat/events_out.py)
through boto3's `events` client; in the sandbox every execution environment has
`AWS_ENDPOINT_URL_EVENTBRIDGE` pointing at the HTTPS listener, which answers PutEvents here
(JSON 1.1, `X-Amz-Target: AWSEvents.PutEvents`). Each event is appended to a JSON-lines
file (`--events-file`, named in the banner), printed in the sandbox's log, and listed at
`/events` on the plain port. Checked as EventBridge does: 1 to 10 entries, each with
`Source`, `DetailType` and a `Detail` that is a JSON object; a bad entry fails alone
(`FailedEntryCount`). Not emulated: rules, targets, IAM, the 256 KB limit.
"""

from __future__ import annotations

import html
import json
import logging
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from sandbox.events import epoch_ms
from sandbox.responses import json_response

log = logging.getLogger("sandbox")

TARGET_PREFIX = "AWSEvents."
PUT_EVENTS = "AWSEvents.PutEvents"
MAX_ENTRIES = 10
PAGE_LIMIT = 200  # the newest events /events shows


def is_eventbridge_call(request: web.Request) -> bool:
    return request.headers.get("X-Amz-Target", "").startswith(TARGET_PREFIX)


class EventsRecorder:
    """PutEvents into a JSON-lines file, and a page that shows them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        target = request.headers.get("X-Amz-Target", "")
        if target != PUT_EVENTS:
            return _error(400, "UnknownOperationException", f"{target} is not emulated")
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return _error(400, "SerializationException", "the body is not JSON")
        entries = body.get("Entries") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            return _error(400, "ValidationException", "Entries must hold 1 to 10 entries")
        results: list[dict[str, str]] = []
        failed = 0
        for entry in entries:
            record, problem = _record(entry)
            if problem is not None:
                failed += 1
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": problem})
                continue
            results.append({"EventId": record["id"]})
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.info(
                "sandbox: event %s %s %s",
                record["detail-type"],
                record["source"],
                json.dumps(record["detail"], ensure_ascii=False),
            )
        return web.Response(
            body=json.dumps({"FailedEntryCount": failed, "Entries": results}).encode(),
            content_type="application/x-amz-json-1.1",
        )

    def recorded(self) -> list[dict[str, Any]]:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    async def page(self, request: web.Request) -> web.StreamResponse:
        """`/events`: the newest events, newest first (`?format=json`: the list as JSON)."""
        events = self.recorded()[-PAGE_LIMIT:][::-1]
        if request.query.get("format") == "json":
            return json_response(200, events)
        rows = "\n".join(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>".format(
                html.escape(str(e.get("time", ""))),
                html.escape(str(e.get("detail-type", ""))),
                html.escape(json.dumps(e.get("detail"), ensure_ascii=False)),
            )
            for e in events
        )
        document = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Sandbox events</title>"
            "<h1>Events the chat sent (newest first)</h1>"
            f"<p>{len(events)} shown; all of them are in <code>{html.escape(str(self.path))}"
            "</code>.</p><table><thead><tr><th>time</th><th>detail-type</th><th>detail</th>"
            f"</tr></thead><tbody>{rows}</tbody></table></html>"
        )
        return web.Response(text=document, content_type="text/html")


def _record(entry: object) -> tuple[dict[str, Any], str | None]:
    """The event as EventBridge would deliver it, or why the entry is refused."""
    if not isinstance(entry, dict):
        return {}, "an entry must be an object"
    source, detail_type, raw = entry.get("Source"), entry.get("DetailType"), entry.get("Detail")
    if not source or not detail_type or not isinstance(raw, str):
        return {}, "Source, DetailType and Detail are required"
    try:
        detail = json.loads(raw)
    except ValueError:
        return {}, "Detail is not valid JSON"
    if not isinstance(detail, dict):
        return {}, "Detail must be a JSON object"
    record = {
        "id": str(uuid.uuid4()),
        "time": epoch_ms(),
        "source": source,
        "detail-type": detail_type,
        "bus": entry.get("EventBusName") or "default",
        "detail": detail,
    }
    return record, None


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"__type": error_type, "message": message}).encode(),
        content_type="application/x-amz-json-1.1",
    )
