"""The sandbox for the tests: start it, talk to it raw, read the echo fixture's records."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import struct
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from websockets.http11 import Response
from websockets.sync.client import ClientConnection

from sandbox.launcher import ROOT, SandboxProcess, start_sandbox, wait_for

FIXTURES = ROOT / "tests" / "sandbox" / "fixtures"
ECHO_TEMPLATE = FIXTURES / "echo.template.json"
MINIMAL_TEMPLATE = FIXTURES / "minimal.template.json"
WEB_DIR = FIXTURES / "web"
REGION = "us-east-1"

__all__ = [
    "ECHO_TEMPLATE",
    "FIXTURES",
    "MINIMAL_TEMPLATE",
    "REGION",
    "ROOT",
    "WEB_DIR",
    "RawWebSocket",
    "Sandbox",
    "connection_id_of",
    "handshake",
    "new_tag",
    "recv_text",
    "running_sandbox",
    "wait_for",
]


class Sandbox(SandboxProcess):
    """A running sandbox, with helpers for the tests' clients and the echo fixture's records."""

    def management(self, endpoint_url: str | None = None) -> Any:
        """A boto3 apigatewaymanagementapi client for the callback URL (HTTPS, trusting the
        sandbox's CA)."""
        return boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=endpoint_url or self.callback_url,
            verify=self.ca_bundle,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    def dynamodb(self) -> Any:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.banner_value("DynamoDB"),
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def lambda_client(self) -> Any:
        """boto3's `lambda` client on the sandbox's Invoke API (sandbox/invoke.py)."""
        return boto3.client(
            "lambda",
            endpoint_url=self.api_url,
            verify=self.ca_bundle,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

    def function_name(self, handler: str) -> str:
        """The name of the stack's function whose handler is `handler` (from the banner)."""
        match = re.search(rf"^Function:\s+(\S+): {re.escape(handler)} ", self.log(), re.MULTILINE)
        assert match, f"no function with handler {handler} in the banner"
        return match.group(1)

    def records(self, connection_id: str) -> list[dict[str, Any]]:
        """The fixture Lambda's records for a connection, oldest first."""
        items = self.dynamodb().query(
            TableName="EventsTable",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": connection_id}},
        )["Items"]
        return [
            {
                "eventType": item["eventType"]["S"],
                "event": json.loads(item["event"]["S"]),
                "note": item["note"]["S"],
            }
            for item in items
        ]

    def events(self, connection_id: str, event_type: str) -> list[dict[str, Any]]:
        return [r["event"] for r in self.records(connection_id) if r["eventType"] == event_type]

    def wait_for_record(
        self, connection_id: str, event_type: str, timeout: float = 5.0
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            found = [r for r in self.records(connection_id) if r["eventType"] == event_type]
            return found[0] if found else None

        return wait_for(probe, timeout=timeout, what=f"a {event_type} record of {connection_id}")

    def wait_for_event(
        self, connection_id: str, event_type: str, timeout: float = 5.0
    ) -> dict[str, Any]:
        record: dict[str, Any] = self.wait_for_record(connection_id, event_type, timeout)["event"]
        return record

    def tagged_connection_id(self, tag: str, timeout: float = 5.0) -> str:
        """The connection id the fixture recorded for `?tag=<tag>` at $connect."""

        def probe() -> str | None:
            items = self.dynamodb().query(
                TableName="EventsTable",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"tag#{tag}"}},
            )["Items"]
            return str(items[0]["sk"]["S"]) if items else None

        return wait_for(probe, timeout=timeout, what=f"connection tagged {tag}")


@contextmanager
def running_sandbox(
    template: Path, log_dir: Path, *args: str, stage: str = "dev"
) -> Iterator[Sandbox]:
    """Start the sandbox on a free port (serving the fixture web/ unless args say otherwise)."""
    with start_sandbox(
        template, log_dir, "--web-dir", str(WEB_DIR), *args, stage=stage, kind=Sandbox
    ) as sandbox:
        yield sandbox


def new_tag() -> str:
    return uuid.uuid4().hex


def recv_text(ws: ClientConnection, timeout: float = 5.0) -> str:
    """The next message, which must be a text frame."""
    message = ws.recv(timeout=timeout)
    assert isinstance(message, str), f"expected a text frame, got {message!r}"
    return message


def handshake(ws: ClientConnection) -> Response:
    """The server's handshake response."""
    assert ws.response is not None
    return ws.response


def connection_id_of(ws: ClientConnection) -> str:
    """Ask the fixture's $default route (two-way, echoes the event) for this connection's id."""
    ws.send("{}")
    event = json.loads(ws.recv(timeout=5))
    return str(event["requestContext"]["connectionId"])


class RawWebSocket:
    """A minimal client that sends exactly the bytes a test needs (frames, headers, drops)."""

    def __init__(self, port: int, path: str, headers: list[tuple[str, str]] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers or []),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        self._buffer = b""

    def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        mask = os.urandom(4)
        first = (0x80 if fin else 0) | opcode
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", first, 0x80 | size)
        elif size < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def recv_frame(self, timeout: float = 5.0) -> tuple[bool, int, bytes]:
        """(fin, opcode, payload) of the next frame from the server."""
        self.sock.settimeout(timeout)
        first, second = self._read(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._read(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._read(8))
        return bool(first & 0x80), first & 0x0F, self._read(size)

    def recv_close_code(self, timeout: float = 5.0) -> int:
        """Skip data frames until the close frame; return its code."""
        while True:
            _, opcode, payload = self.recv_frame(timeout)
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005

    def drop(self) -> None:
        """Reset the TCP connection without a close frame."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self) -> None:
        self.sock.close()
