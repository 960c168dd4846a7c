"""Conformance (docs/sandbox.md) items 5 and 16: API Gateway's integration timeout (29 s in AWS),
shortened with --integration-timeout so that it expires before the Lambda's own timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.sandbox import (
    ECHO_TEMPLATE,
    Sandbox,
    connection_id_of,
    recv_text,
    running_sandbox,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def short_integration_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The echo stack (Lambda timeout 2 s) with a 1 s integration timeout, 3 warm workers."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path_factory.mktemp("integration"),
        "--integration-timeout",
        "1",
        "--warm-workers",
        "3",
    ) as sandbox:
        yield sandbox


def test_connect_past_integration_timeout_fails_handshake_with_504(
    short_integration_sandbox: Sandbox,
) -> None:
    # GIVEN a $connect Lambda slower than the integration timeout (but within its own)
    started = time.monotonic()
    # WHEN a client connects
    with pytest.raises(InvalidStatus) as rejected:
        short_integration_sandbox.connect("sleep=1.5")
    # THEN the handshake fails with a 5xx (504) once the integration timeout passes,
    # although the Lambda itself would have succeeded
    assert rejected.value.response.status_code == 504
    assert 0.9 < time.monotonic() - started < 3.0


def test_route_past_integration_timeout_sends_timed_out_frame(
    short_integration_sandbox: Sandbox,
) -> None:
    # GIVEN a route Lambda slower than the integration timeout
    with short_integration_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN it is called
        ws.send('{"action":"sleep","seconds":1.5}')
        frame = recv_text(ws)
        # THEN the client gets the gateway's timeout frame, and the socket stays open
        assert frame.startswith('{"message": "Endpoint request timed out",')
        assert f'"connectionId":"{cid}"' in frame
        assert connection_id_of(ws) == cid
