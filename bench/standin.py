"""The @connections stand-in (sandbox/connections_standin.py) in a process of its own.

The benchmarks pin themselves to one core and run the stand-in here, on the other core,
so that its CPU is not counted as ours. The parent drives it over stdin/stdout, one JSON
object a line:

    {"op": "delay", "seconds": 0.02}     -> {"ok": true}
    {"op": "gone", "ids": [...]}         -> {"ok": true}
    {"op": "stats"}                      -> {"posts": n, "max_in_flight": m, "bytes": b}
    {"op": "reset"}                      -> {"ok": true}   (forget posts, counters)

Run as `python -m bench.standin [--cpu N]`; its first line is {"url": "..."}. With
`--dynamodb TEMPLATE` it is the embedded moto DynamoDB with the template's table instead;
its first line is {"endpoint": "...", "table": "..."}, and it stops when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class StandinProcess:
    """A `python -m bench.standin` child: `url`, and `delay`/`gone`/`stats`/`reset` on it."""

    def __init__(self, cpu: int | None = None, *extra: str) -> None:
        args = [sys.executable, "-m", "bench.standin", *extra]
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        self._proc = subprocess.Popen(
            args,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lambda_src'}"},
        )
        self.pid = self._proc.pid
        self.first: dict[str, Any] = self._read()
        self.url: str = self.first.get("url", "")

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the @connections stand-in exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _ask(self, **command: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def delay(self, seconds: float) -> None:
        self._ask(op="delay", seconds=seconds)

    def gone(self, ids: list[str]) -> None:
        self._ask(op="gone", ids=ids)

    def stats(self) -> dict[str, Any]:
        return self._ask(op="stats")

    def reset(self) -> None:
        self._ask(op="reset")

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> StandinProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(cpu: int | None) -> None:
    from sandbox.connections_standin import running_connections_api  # noqa: PLC0415

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    with running_connections_api() as api:
        print(json.dumps({"url": api.url}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            answer: dict[str, Any] = {"ok": True}
            if op == "delay":
                api.delay_seconds = float(command["seconds"])
            elif op == "gone":
                with api.lock:
                    api.gone.update(command["ids"])
            elif op == "stats":
                with api.lock:
                    answer = {
                        "posts": len(api.posts),
                        "bytes": sum(len(data) for _, data in api.posts),
                        "max_in_flight": api.max_in_flight,
                    }
            elif op == "reset":
                with api.lock:
                    api.posts.clear()
                    api.gone.clear()
                    api.max_in_flight = 0
            print(json.dumps(answer), flush=True)


def serve_dynamodb(template: Path, cpu: int | None) -> None:
    from sandbox import dynamodb  # noqa: PLC0415
    from sandbox.template import load_template  # noqa: PLC0415

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    region = "us-east-1"
    (table,) = load_template(template, region=region).tables.values()
    server = dynamodb.EmbeddedDynamoDB()
    endpoint = server.start()
    try:
        dynamodb.create_tables(endpoint, region, [table])
        print(json.dumps({"endpoint": endpoint, "table": table.name}), flush=True)
        for _ in sys.stdin:
            pass
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.standin", description=__doc__)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core")
    parser.add_argument("--dynamodb", type=Path, default=None, help="a synthesized template")
    args = parser.parse_args()
    if args.dynamodb is not None:
        serve_dynamodb(args.dynamodb, args.cpu)
    else:
        serve(args.cpu)


if __name__ == "__main__":
    main()
