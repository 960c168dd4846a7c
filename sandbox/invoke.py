"""Lambda's Invoke API for the template's functions, as the functions themselves call it.

The handler's fan-out (lambda_src/chat/sharding.py) invokes its worker function through
boto3's `lambda` client; in the sandbox every execution environment has
`AWS_ENDPOINT_URL_LAMBDA` pointing here, so that call runs the worker from the same
template in its own warm worker process (docs/sandbox.md, items 52-57):

- `POST /2015-03-31/functions/{FunctionName}/invocations`, where FunctionName is the
  function's name, its ARN, or a partial ARN (`<account>:function:<name>`), optionally with
  the `$LATEST` qualifier (a template has no versions or aliases);
- `X-Amz-Invocation-Type`: `RequestResponse` (the default) answers 200 with the function's
  payload, and a function error or timeout as 200 with `X-Amz-Function-Error: Unhandled`
  and the error object; `Event` answers 202 at once and runs the function in the
  background; `DryRun` answers 204;
- payloads above 6 MB (synchronous) or 1 MB (Event) get 413 `RequestTooLargeException`, a
  body that is not JSON 400 `InvalidRequestContentException`, an unknown function 404
  `ResourceNotFoundException`.

Not emulated: IAM (any caller may invoke), Lambda's retries of failed Event invocations,
and the account's concurrency limit (each function has the sandbox's worker pool).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from sandbox.intrinsics import ACCOUNT_ID, arn
from sandbox.lambdas import LambdaService
from sandbox.responses import json_response, request_id_header
from sandbox.template import FunctionSpec

log = logging.getLogger("sandbox")

API_VERSION = "2015-03-31"
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024  # 6 MB, the Invoke API reference
EVENT_PAYLOAD_LIMIT = 1024 * 1024  # 1 MB


def is_invoke_path(segments: list[str]) -> bool:
    """`/2015-03-31/functions/{FunctionName}/invocations`, split on `/`."""
    return (
        len(segments) == 4
        and segments[0] == API_VERSION
        and segments[1] == "functions"
        and segments[3] == "invocations"
    )


class InvokeApi:
    """Invoke by name or ARN for every function of the stack (logical id -> spec)."""

    def __init__(
        self, functions: Mapping[str, FunctionSpec], lambdas: LambdaService, *, region: str
    ) -> None:
        self._lambdas = lambdas
        self._region = region
        self._by_name = {spec.name: logical_id for logical_id, spec in functions.items()}
        self._background: set[asyncio.Task[Any]] = set()

    def _function(self, reference: str) -> str | None:
        """The logical id `reference` (name, ARN or partial ARN, `$LATEST` allowed) names."""
        name = reference
        if name.startswith("arn:"):
            parts = name.split(":")
            # arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
            if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
                return None
            if parts[3] != self._region or parts[4] != ACCOUNT_ID:
                return None
            name = ":".join(parts[6:])
        elif ":function:" in name:
            account, _, name = name.partition(":function:")
            if account != ACCOUNT_ID:
                return None
        name, _, qualifier = name.partition(":")
        if qualifier not in ("", "$LATEST"):
            return None
        return self._by_name.get(name)

    async def handle(self, request: web.Request, reference: str) -> web.StreamResponse:
        if request.method != "POST":
            return json_response(
                405, {"message": "Method not allowed"}, error_type="MethodNotAllowedException"
            )
        reference = unquote(reference)
        function_id = self._function(reference)
        if function_id is None:
            where = reference if reference.startswith("arn:") else self._arn(reference)
            return json_response(
                404,
                {"Type": "User", "Message": f"Function not found: {where}"},
                error_type="ResourceNotFoundException",
            )
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            return json_response(
                400,
                {"Type": "User", "message": f"Invalid InvocationType {invocation_type!r}"},
                error_type="InvalidParameterValueException",
            )
        body = await request.read()
        limit = EVENT_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(body) > limit:
            return json_response(
                413,
                {
                    "Type": "User",
                    "message": f"Request must be smaller than {limit} bytes for the "
                    "InvokeFunction operation",
                },
                error_type="RequestTooLargeException",
            )
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            return json_response(
                400,
                {"Type": "User", "message": "Could not parse request body into json"},
                error_type="InvalidRequestContentException",
            )
        if invocation_type == "DryRun":
            return web.Response(status=204, headers=request_id_header())
        if invocation_type == "Event":
            task = asyncio.create_task(self._run_in_background(function_id, event))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return web.Response(status=202, headers=request_id_header())
        result = await self._lambdas.invoke(function_id, event, label="Invoke")
        headers = {**request_id_header(), "X-Amz-Executed-Version": "$LATEST"}
        if result.status == "ok":
            return web.Response(
                status=200,
                body=json.dumps(result.payload).encode(),
                content_type="application/json",
                headers=headers,
            )
        headers["X-Amz-Function-Error"] = "Unhandled"
        return web.Response(
            status=200,
            body=json.dumps(result.error or {}).encode(),
            content_type="application/json",
            headers=headers,
        )

    async def _run_in_background(self, function_id: str, event: Any) -> None:
        result = await self._lambdas.invoke(function_id, event, label="Invoke (Event)")
        if result.status != "ok":
            log.warning(
                "sandbox: asynchronous invocation of %s failed: %s", function_id, result.error
            )

    async def shutdown(self) -> None:
        """Wait briefly for Event invocations still running, then cancel them."""
        if not self._background:
            return
        _, pending = await asyncio.wait(set(self._background), timeout=2.0)
        for task in pending:
            task.cancel()

    def _arn(self, name: str) -> str:
        return arn("lambda", self._region, f"function:{name}")
