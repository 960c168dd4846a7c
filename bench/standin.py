"""The @connections stand-in (sandbox/connections_standin.py) in a process of its own.

The benchmarks pin themselves to one core and run the stand-in here, on the other core,
so that its CPU is not counted as ours. The parent drives it over stdin/stdout, one JSON
object a line:

    {"op": "delay", "seconds": 0.02}     -> {"ok": true}
    {"op": "gone", "ids": [...]}         -> {"ok": true}
    {"op": "stats"}                      -> {"posts": n, "max_in_flight": m, "bytes": b,
                                             "connections": c, "resumed": r}
    {"op": "reset"}                      -> {"ok": true}   (forget posts, counters)

Run as `python -m bench.standin [--cpu N] [--tls]`; its first line is {"url": "..."}. With
`--tls` it serves HTTPS, as API Gateway does, with a certificate for 127.0.0.1 issued
through an intermediate CA by a root CA that `trustme` makes for this run, RSA 2048 keys
(the shape of an execute-api certificate's chain); the first line then also holds the root's
PEM ("ca_pem"), which the parent writes to a file (`ca_path`) for the clients to trust. With
`--dynamodb TEMPLATE` it is the embedded moto DynamoDB with the template's table instead;
its first line is {"endpoint": "...", "table": "..."}, and it stops when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class StandinProcess:
    """A `python -m bench.standin` child: `url`, and `delay`/`gone`/`stats`/`reset` on it.

    With `tls`, it serves HTTPS and `ca_path` is a PEM file of the CA to trust (removed
    on close)."""

    def __init__(self, cpu: int | None = None, *extra: str, tls: bool = False) -> None:
        args = [sys.executable, "-m", "bench.standin", *extra]
        if cpu is not None:
            args += ["--cpu", str(cpu)]
        if tls:
            args.append("--tls")
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
        self.ca_path: str | None = None
        if "ca_pem" in self.first:
            fd, self.ca_path = tempfile.mkstemp(prefix="bench-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as out:
                out.write(self.first["ca_pem"])

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
        if self.ca_path is not None:
            Path(self.ca_path).unlink(missing_ok=True)
            self.ca_path = None

    def __enter__(self) -> StandinProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _server_tls() -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate for 127.0.0.1 (leaf and intermediate sent, RSA
    keys) from a new test root CA, and the root's PEM."""
    import trustme  # noqa: PLC0415

    rsa = trustme.KeyType.RSA
    root = trustme.CA(key_type=rsa)
    intermediate = root.create_child_ca(key_type=rsa)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    intermediate.issue_cert("127.0.0.1", key_type=rsa).configure_cert(context)
    return context, root.cert_pem.bytes().decode()


def serve(cpu: int | None, tls: bool = False) -> None:
    from sandbox.connections_standin import running_connections_api  # noqa: PLC0415

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    context, ca_pem = _server_tls() if tls else (None, None)
    with running_connections_api(tls=context) as api:
        first: dict[str, Any] = {"url": api.url}
        if ca_pem is not None:
            first["ca_pem"] = ca_pem
        print(json.dumps(first), flush=True)
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
                        "connections": api.connections,
                        "resumed": api.resumed,
                    }
            elif op == "reset":
                with api.lock:
                    api.posts.clear()
                    api.gone.clear()
                    api.max_in_flight = 0
                    api.connections = api.resumed = 0
            print(json.dumps(answer), flush=True)


def serve_dynamodb(template: Path, cpu: int | None, *, fast: bool = False) -> None:
    """moto with the template's table; `fast`: patched by `sandbox.moto_patch.speed_up_moto`
    (the same answers, transactions and Queries proportional to the items they touch)."""
    from sandbox import dynamodb  # noqa: PLC0415
    from sandbox.moto_patch import speed_up_moto  # noqa: PLC0415
    from sandbox.template import load_template  # noqa: PLC0415

    if fast and not speed_up_moto():
        raise SystemExit("this moto cannot be sped up (sandbox/moto_patch.py)")
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
    parser.add_argument("--tls", action="store_true", help="serve HTTPS (a trustme CA)")
    parser.add_argument(
        "--fast", action="store_true", help="with --dynamodb: moto sped up (moto_patch)"
    )
    args = parser.parse_args()
    if args.dynamodb is not None:
        serve_dynamodb(args.dynamodb, args.cpu, fast=args.fast)
    else:
        serve(args.cpu, args.tls)


if __name__ == "__main__":
    main()
