"""API Gateway's own HTTP answers: request-id and error-type headers, and JSON error bodies."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web


def request_id_header() -> dict[str, str]:
    """A fresh `x-amzn-RequestId` header, which every API Gateway answer carries."""
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def json_response(status: int, body: Any, *, error_type: str | None = None) -> web.Response:
    """A JSON answer with a request id, and `x-amzn-ErrorType` when `error_type` is given."""
    headers = request_id_header()
    if error_type is not None:
        headers["x-amzn-ErrorType"] = error_type
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def gone() -> web.Response:
    """410 GoneException, as the @connections API answers for a connection that is not open."""
    # AWS's 410 body is not JSON; botocore takes the error code from the header.
    headers = request_id_header()
    headers["x-amzn-ErrorType"] = "GoneException"
    return web.Response(status=410, headers=headers)
