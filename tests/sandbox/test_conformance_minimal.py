"""Conformance (docs/sandbox.md) items 1 and 14: an API with no $connect and no $default route."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox import (
    MINIMAL_TEMPLATE,
    Sandbox,
    handshake,
    recv_text,
    running_sandbox,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def minimal_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A stack whose only route is "join" (two-way)."""
    log_dir: Path = tmp_path_factory.mktemp("minimal")
    with running_sandbox(MINIMAL_TEMPLATE, log_dir) as sandbox:
        yield sandbox


def test_without_connect_route_the_handshake_succeeds(minimal_sandbox: Sandbox) -> None:
    # GIVEN an API with no $connect route
    # WHEN a client connects
    with minimal_sandbox.connect() as ws:
        # THEN it gets 101 and the socket is usable
        assert handshake(ws).status_code == 101
        ws.send('{"action":"join"}')
        event = json.loads(ws.recv(timeout=5))
        assert event["requestContext"]["routeKey"] == "join"


def test_no_matching_route_and_no_default_sends_forbidden_frame(minimal_sandbox: Sandbox) -> None:
    # GIVEN an API with no $default route
    with minimal_sandbox.connect() as ws:
        ws.send('{"action":"join"}')
        cid = json.loads(ws.recv(timeout=5))["requestContext"]["connectionId"]
        # WHEN a message matches no route
        ws.send('{"action":"nope"}')
        frame = recv_text(ws)
        # THEN the exact Forbidden frame arrives
        assert re.fullmatch(
            rf'\{{"message": "Forbidden", "connectionId":"{re.escape(cid)}", '
            r'"requestId":"[A-Za-z0-9_-]{15}="\}',
            frame,
        )
        # AND no Lambda ran for it, and the socket stays open
        assert minimal_sandbox.events(cid, "MESSAGE") and all(
            e["requestContext"]["routeKey"] == "join"
            for e in minimal_sandbox.events(cid, "MESSAGE")
        )
        ws.send('{"action":"join"}')
        assert json.loads(ws.recv(timeout=5))["requestContext"]["connectionId"] == cid
