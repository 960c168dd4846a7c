"""The processes a load run drives: its own sped-up moto DynamoDB and the sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from bench.load.config import ROOT
from sandbox.moto_patch import speed_up_moto


def serve_dynamodb() -> int:
    """`--dynamodb-server`: sped-up moto on a free port; print the endpoint, serve until killed."""
    from sandbox.dynamodb import EmbeddedDynamoDB  # noqa: PLC0415

    fast = speed_up_moto()
    server = EmbeddedDynamoDB(host="127.0.0.1")
    endpoint = server.start()
    print(json.dumps({"endpoint": endpoint, "fast": fast}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the load run died without stopping us
            break
    server.stop()
    return 0


@contextlib.contextmanager
def dynamodb_process() -> Iterator[tuple[str, bool]]:
    """(endpoint, sped up?) of a `--dynamodb-server` child process, stopped afterwards."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--dynamodb-server"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline() or "{}")
        if "endpoint" not in first:
            raise RuntimeError("the DynamoDB server did not start")
        yield str(first["endpoint"]), bool(first["fast"])
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def sandbox(
    template: Path, workers: int, dynamodb: str | None = None, integration_timeout: float = 29.0
) -> Iterator[tuple[str, str, Path]]:
    """(WebSocket URL, DynamoDB endpoint, log) of a sandbox running `template`."""
    from sandbox.launcher import SandboxProcess, start_sandbox  # noqa: PLC0415

    log_dir = Path(tempfile.mkdtemp(prefix="load-sandbox-"))
    args = ["--workers", str(workers), "--warm-workers", str(workers)]
    args += ["--integration-timeout", f"{integration_timeout:g}"]
    if dynamodb:
        args += ["--dynamodb-endpoint", dynamodb]
    with start_sandbox(template, log_dir, *args, stage="", kind=SandboxProcess) as process:
        yield (
            process.banner_value("WebSocket URL"),
            dynamodb or process.banner_value("DynamoDB"),
            process.log_path,
        )
