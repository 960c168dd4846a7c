"""`python -m bench.load`: parse the options, start what is needed, run, write the report."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.load.client import run_load
from bench.load.config import CDK_OUT, REPORT, ROOT, Limits, LoadConfig
from bench.load.count import count
from bench.load.processes import dynamodb_process, sandbox, serve_dynamodb
from bench.load.summary import clean, machine, summarize, summary_text, table_after
from sandbox.template import find_template

DESCRIPTION = (
    "Load with counts: many clients on real WebSockets through the sandbox, churning, counting."
)


def main(argv: list[str] | None = None) -> int:
    defaults = LoadConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=DESCRIPTION)
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--messages", type=int, default=defaults.messages)
    parser.add_argument(
        "--sessions",
        type=int,
        default=defaults.sessions,
        help="sessions per client: one join plus sessions-1 leave-and-rejoins",
    )
    parser.add_argument(
        "--private-ratio",
        type=float,
        default=defaults.private_ratio,
        help="the share of messages sent privately (default %(default)s)",
    )
    parser.add_argument(
        "--think",
        type=float,
        default=defaults.think_s,
        help="mean seconds a client waits between messages (default %(default)s)",
    )
    parser.add_argument(
        "--integration-timeout",
        type=float,
        default=29.0,
        help="the sandbox's integration timeout (AWS: 29 s)",
    )
    parser.add_argument("--contest", type=float, default=defaults.contest)
    parser.add_argument("--ramp", type=float, default=defaults.ramp_s)
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        help="the sandbox's Lambda workers (execution environments)",
    )
    parser.add_argument("--template", type=Path, help="default: the chat stack in cdk.out")
    parser.add_argument("--stack", help="the stack whose template to run (cdk.out/<stack>...)")
    parser.add_argument("--url", help="an already running stage (ws://...); no sandbox started")
    parser.add_argument("--dynamodb", help="with --url: its DynamoDB endpoint, for the end check")
    parser.add_argument(
        "--embedded-dynamodb",
        action="store_true",
        help="use the sandbox's own moto (O(table) transactions: short runs)",
    )
    parser.add_argument("--dynamodb-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    if args.dynamodb_server:
        return serve_dynamodb()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    config = LoadConfig(
        clients=args.clients,
        messages=args.messages,
        sessions=args.sessions,
        private_ratio=args.private_ratio,
        contest=args.contest,
        think_s=args.think,
        ramp_s=args.ramp,
        seed=args.seed,
    )
    template = args.template or find_template(CDK_OUT, args.stack)
    limits = Limits.from_template(template)
    if config.clients > limits.max_room_size:
        parser.error(f"--clients {config.clients}: the room holds {limits.max_room_size}")
    print(f"==> load: {config.clients} clients, {config.messages} messages, limits {limits}")
    with contextlib.ExitStack() as stack:
        if args.url:
            url, dynamodb, workers = args.url, args.dynamodb, None
        else:
            external = None
            if not args.embedded_dynamodb:
                external, fast = stack.enter_context(dynamodb_process())
                print(f"    DynamoDB {external} (moto, own process, sped up: {fast})")
            url, dynamodb, log = stack.enter_context(
                sandbox(template, args.workers, external, args.integration_timeout)
            )
            workers = args.workers
            print(f"    sandbox {url} ({workers} workers), log {log}", flush=True)
        report = measure(config, url, limits, dynamodb=dynamodb, workers=workers)
        report["template"] = str(template)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(report["summary"])
    print(f"Report: {args.report} ({'clean' if report['clean'] else 'NOT CLEAN'})")
    return 0 if report["clean"] else 1


def measure(
    config: LoadConfig,
    url: str,
    limits: Limits,
    *,
    dynamodb: str | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run the load against `url` and count: the report (`clean` says all is well)."""
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    run = asyncio.run(run_load(config, url, limits, progress=progress))
    duration = time.monotonic() - run.started
    counts = count(run)
    report = summarize(
        run,
        counts,
        {
            "config": asdict(config),
            "limits": asdict(limits),
            "workers": workers,
            "machine": {**machine(), "load_average_before": load_before},
            "duration_s": round(duration, 1),
            "table_after": table_after(dynamodb) if dynamodb else {},
            "wall_s": round(time.monotonic() - started, 1),
        },
    )
    report["summary"] = summary_text(report)
    report["clean"] = clean(report)
    return report
