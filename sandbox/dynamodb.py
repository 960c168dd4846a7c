"""The DynamoDB the handlers talk to: an embedded moto server, and the stack's tables in it.

Its answers are written with json.dumps (moto_patch.answer_as_json), not moto's generic
serializer. moto_patch.py beside it also makes moto's transactions and queries proportional
to the items they touch; `make load` (bench/load) runs this server so patched in a process
of its own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config

from sandbox.faults import Faults, SdkAttempt, dynamodb_throttle_body
from sandbox.intrinsics import ACCOUNT_ID
from sandbox.moto_patch import answer_as_json
from sandbox.template import TableSpec

log = logging.getLogger("sandbox")


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/")


class _OneRequestAtATime:
    """WSGI wrapper that lets moto handle one request at a time.

    moto's TransactWriteItems snapshots whole tables and restores them when a condition
    fails, and deep-copies tables while other threads write to them. Under concurrent
    requests (every worker process of the sandbox is a client) that loses other
    requests' writes and fails with "dictionary changed size during iteration".
    Real DynamoDB applies each request atomically; serializing them restores that.

    With the throttling fault on, a share of the requests signed with `throttled_key` (the
    functions' credentials) is answered 400 with DynamoDB's throttling error instead.
    """

    def __init__(self, app: Any, faults: Faults | None = None, throttled_key: str = "") -> None:
        self._app = app
        self._lock = threading.Lock()
        self._faults = faults
        self._throttled_key = throttled_key

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        throttled = self._throttled(environ)
        if throttled is not None:
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
                    ("Content-Length", str(len(throttled))),
                ],
            )
            return [throttled]
        with self._lock:
            return list(self._app(environ, start_response))

    def _throttled(self, environ: dict[str, Any]) -> bytes | None:
        """The throttling answer for this request, or None to let moto handle it."""
        faults = self._faults
        if faults is None or faults.config.dynamodb_throttle_rate <= 0:
            return None
        credential = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if credential is None or credential.group(1) != self._throttled_key:
            return None
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        attempt = SdkAttempt.from_headers(
            lambda name: environ.get("HTTP_" + name.upper().replace("-", "_"))
        )
        if not faults.throttles(operation, attempt):
            return None
        table = _table_name(environ)
        arn = (
            f"arn:aws:dynamodb:{credential.group(2)}:{ACCOUNT_ID}:table/{table}" if table else None
        )
        error, body = dynamodb_throttle_body(operation, arn)
        log.info("fault: DynamoDB %s %s throttled: %s", operation, attempt.describe(), error)
        return body


def _table_name(environ: dict[str, Any]) -> str | None:
    """The (first) table a DynamoDB request names; consumes the request body."""
    try:
        size = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(size) or b"{}")
    except (ValueError, KeyError):
        return None
    if not isinstance(request, dict):
        return None
    if isinstance(request.get("TableName"), str):
        return str(request["TableName"])
    for item in request.get("TransactItems") or []:
        for action in item.values() if isinstance(item, dict) else []:
            if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                return str(action["TableName"])
    tables = request.get("RequestItems")
    if isinstance(tables, dict) and tables:
        return str(next(iter(tables)))
    return None


def _moto_server(host: str, faults: Faults | None, throttled_key: str) -> Any:
    """A ThreadedMotoServer whose app is wrapped in `_OneRequestAtATime`."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: PLC0415
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server  # noqa: PLC0415

    class SerializedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _OneRequestAtATime(
                DomainDispatcherApplication(create_backend_app), faults, throttled_key
            )
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            # stop() waits for the loop to see the shutdown: poll often (default 0.5 s).
            self._server.serve_forever(poll_interval=0.05)

    return SerializedMotoServer(ip_address=host, port=0, verbose=False)


class EmbeddedDynamoDB:
    """moto's server on a free loopback port, started and stopped with the sandbox.

    `faults` (the throttling switch) applies to requests signed with `throttled_key`.
    """

    def __init__(
        self, host: str = "127.0.0.1", *, faults: Faults | None = None, throttled_key: str = ""
    ) -> None:
        self._host = host
        self._faults = faults
        self._throttled_key = throttled_key
        self._server: Any = None
        self.endpoint = ""

    def start(self) -> str:
        """Start the server; return its endpoint URL."""
        # moto reads the account from the environment on every request.
        os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT_ID
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        answer_as_json()
        server = _moto_server(self._host, self._faults, self._throttled_key)
        server.start()
        self._server = server
        host, port = server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        """Stop the server (its data is discarded)."""
        if self._server is not None:
            self._server.stop()
            self._server = None


def client(endpoint: str, region: str, *, max_pool_connections: int = 10) -> Any:
    """A boto3 DynamoDB client for a local endpoint, with fake credentials."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(
            retries={"max_attempts": 2},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=max_pool_connections,
        ),
    )


def create_tables(endpoint: str, region: str, tables: Iterable[TableSpec]) -> None:
    """Create the tables that do not exist yet, with their GSIs, LSIs, stream and TTL."""
    dynamodb = client(endpoint, region)
    existing = set(dynamodb.list_tables().get("TableNames", []))
    for table in tables:
        if table.name in existing:
            continue
        request: dict[str, Any] = {
            "TableName": table.name,
            "KeySchema": table.key_schema,
            "AttributeDefinitions": table.attribute_definitions,
            "BillingMode": "PAY_PER_REQUEST",
        }
        if table.global_secondary_indexes:
            request["GlobalSecondaryIndexes"] = table.global_secondary_indexes
        if table.local_secondary_indexes:
            request["LocalSecondaryIndexes"] = table.local_secondary_indexes
        if table.stream_view_type:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": table.stream_view_type,
            }
        dynamodb.create_table(**request)
        dynamodb.get_waiter("table_exists").wait(
            TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
