"""Conformance (docs/sandbox.md) item 31: idle timeout and maximum connection duration, with small
--idle-timeout and --max-duration values."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from tests.support.sandbox import ECHO_TEMPLATE, Sandbox, connection_id_of, running_sandbox

pytestmark = pytest.mark.sandbox

# The idle timeout is long enough for an echo through a Lambda worker on a busy machine
# (no traffic flows while the function runs), the maximum duration for the slowest test.
IDLE_S = 3.0
MAX_S = 10.0


@dataclass
class BusyConnection:
    """A connection that sends a one-way frame every 0.4 s until the server closes it."""

    connection_id: str
    started: float  # when it was opened
    ended: threading.Event = field(default_factory=threading.Event)
    close_code: int | None = None
    closed_after: float | None = None  # seconds from `started` to the close


def keep_busy(ws: ClientConnection, busy: BusyConnection) -> None:
    try:
        while time.monotonic() - busy.started < MAX_S + 3:
            ws.send('{"action":"oneway"}')
            time.sleep(0.4)
    except ConnectionClosed as closed:
        busy.closed_after = time.monotonic() - busy.started
        busy.close_code = closed.rcvd.code if closed.rcvd is not None else None
    finally:
        busy.ended.set()


@pytest.fixture(scope="module")
def limits_started(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sandbox, BusyConnection]]:
    """The echo stack with a 3 s idle timeout and a 10 s maximum duration, and a busy
    connection opened with it: its maximum duration passes while the other tests run,
    instead of in a wait of its own."""
    with running_sandbox(
        ECHO_TEMPLATE,
        tmp_path_factory.mktemp("limits"),
        "--idle-timeout",
        str(IDLE_S),
        "--max-duration",
        str(MAX_S),
    ) as sandbox:
        started = time.monotonic()
        with sandbox.connect() as ws:
            busy = BusyConnection(connection_id_of(ws), started)
            sender = threading.Thread(target=keep_busy, args=(ws, busy), daemon=True)
            sender.start()
            yield sandbox, busy
            sender.join()


@pytest.fixture(scope="module")
def limits_sandbox(limits_started: tuple[Sandbox, BusyConnection]) -> Sandbox:
    return limits_started[0]


def closed_by_server(ws: ClientConnection, timeout: float) -> tuple[int, str, float]:
    """Wait for the server's close frame; return (code, reason, seconds waited)."""
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=timeout)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic() - started


def test_idle_connection_is_closed_with_1001_and_disconnect_runs(limits_sandbox: Sandbox) -> None:
    # GIVEN a connection with no traffic
    with limits_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        # WHEN the idle timeout passes
        code, reason, waited = closed_by_server(ws, timeout=IDLE_S + 3)
    # THEN the server closes it with 1001 "Going away" after about the idle timeout
    assert (code, reason) == (1001, "Going away")
    assert IDLE_S - 0.3 < waited < IDLE_S + 1.5
    # AND $disconnect runs with 1001
    context = limits_sandbox.wait_for_event(cid, "DISCONNECT")["requestContext"]
    assert context["disconnectStatusCode"] == 1001


def test_client_messages_reset_the_idle_timer(limits_sandbox: Sandbox) -> None:
    # GIVEN a connection whose client sends a message every 0.5 s (one-way route), for
    # longer than the idle timeout
    with limits_sandbox.connect() as ws:
        connection_id_of(ws)
        for _ in range(round(IDLE_S / 0.5) + 2):
            time.sleep(0.5)
            ws.send('{"action":"oneway"}')
        # THEN it outlives the idle timeout
        connection_id_of(ws)


def test_posts_to_the_client_reset_the_idle_timer(limits_sandbox: Sandbox) -> None:
    # GIVEN a connection that only receives posts, every 0.5 s
    client = limits_sandbox.management()
    with limits_sandbox.connect() as ws:
        cid = connection_id_of(ws)
        for _ in range(round(IDLE_S / 0.5) + 2):
            time.sleep(0.5)
            client.post_to_connection(ConnectionId=cid, Data=b"tick")
            assert ws.recv(timeout=5) == "tick"
        # THEN it outlives the idle timeout too (traffic either way counts)
        assert connection_id_of(ws) == cid


def test_connection_is_closed_at_maximum_duration_despite_traffic(
    limits_started: tuple[Sandbox, BusyConnection],
) -> None:
    # GIVEN a busy connection (opened with the sandbox, sending every 0.4 s)
    sandbox, busy = limits_started
    # WHEN the maximum duration passes THEN the server closes it with 1001
    assert busy.ended.wait(MAX_S + 5), "the busy connection's sender never ended"
    assert busy.close_code == 1001, f"closed with {busy.close_code} after {busy.closed_after}"
    assert busy.closed_after is not None
    assert MAX_S - 0.3 < busy.closed_after < MAX_S + 1.5
    context = sandbox.wait_for_event(busy.connection_id, "DISCONNECT")["requestContext"]
    assert context["disconnectStatusCode"] == 1001
