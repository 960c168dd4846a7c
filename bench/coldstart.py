"""Cold start: import times in fresh interpreters, the asset's size, the first invocation.

Each import is timed inside a new `python` process (so nothing is cached in memory; the
files are in the page cache, as on a warm Lambda host), on this process's core.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from bench.measure import summary

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"

IMPORTS = {
    "import boto3": "import boto3",
    "import handler (the function today)": "import handler",
    "import chat.fanout": "import chat.fanout",
    "import aiohttp (would need bundling)": "import aiohttp",
}

_TIMED = """
import sys, time
sys.path[:0] = [{src!r}]
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""

_FIRST_INVOCATION = """
import json, sys, time
sys.path[:0] = [{src!r}, {root!r}]
t0 = time.perf_counter()
import handler
from bench.local_aws import connect
t1 = time.perf_counter()
handler.lambda_handler(connect("first0000AAAA="), None)
t2 = time.perf_counter()
handler.lambda_handler(connect("second000AAAA="), None)
t3 = time.perf_counter()
from chat.fanout import FanoutEngine
import boto3
engine = FanoutEngine({url!r}, region="us-east-1",
                      credentials=boto3.Session().get_credentials(), concurrency={k})
frame = [{{"publicMessage": "a: b"}}]
t4 = time.perf_counter()
engine.send({{f"c{{i}}AAAA=": frame for i in range({k})}})
t5 = time.perf_counter()
engine.send({{f"c{{i}}AAAA=": frame for i in range({k})}})
t6 = time.perf_counter()
print(json.dumps({{"import": t1 - t0, "first": t2 - t1, "second": t3 - t2,
                   "first_send": t5 - t4, "warm_send": t6 - t5}}))
"""


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(extra or {})}
    env.pop("PYTHONPATH", None)
    return env


def import_times(runs: int) -> dict[str, dict[str, float]]:
    out = {}
    for label, statement in IMPORTS.items():
        samples = []
        for _ in range(runs):
            code = _TIMED.format(src=str(LAMBDA_SRC), statement=statement)
            done = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                env=_child_env(),
                cwd=ROOT,
            )
            samples.append(float(done.stdout.strip().splitlines()[-1]))
        out[label] = summary(samples)
    return out


def first_invocation(
    runs: int, *, table: str, dynamodb_endpoint: str, connections_url: str, concurrency: int
) -> dict[str, dict[str, float]]:
    """A fresh process: import the handler, its first and second $connect (DynamoDB in the
    moto process), then an engine's first send to k connections (k threads and sockets
    opened, over HTTPS with their TLS handshakes when the stand-in serves it) against a
    warm one."""
    env = _child_env(
        {
            "TABLE_NAME": table,
            "CALLBACK_URL": connections_url,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
            "LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
    )
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        code = _FIRST_INVOCATION.format(
            src=str(LAMBDA_SRC), root=str(ROOT), url=connections_url, k=concurrency
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=ROOT,
        )
        samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: summary([s[key] for s in samples]) for key in samples[0]}


def _zipped_size(files: list[tuple[Path, str]]) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            archive.write(path, name)
    return len(buffer.getvalue())


def asset_sizes() -> dict[str, int]:
    """The function's asset zipped (lambda_src/ as shipped), and what aiohttp would add."""
    ours = [
        (p, str(p.relative_to(LAMBDA_SRC)))
        for p in sorted(LAMBDA_SRC.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]
    bundle: list[tuple[Path, str]] = []
    for dist_name in (
        "aiohttp",
        "aiohappyeyeballs",
        "aiosignal",
        "attrs",
        "frozenlist",
        "multidict",
        "propcache",
        "yarl",
    ):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.append((path, f"{dist_name}/{file}"))
    return {
        "lambda_src_zip_bytes": _zipped_size(ours),
        "aiohttp_bundle_zip_bytes": _zipped_size(bundle) if bundle else 0,
    }
