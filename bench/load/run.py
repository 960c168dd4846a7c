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
from bench.load.rooms import ROOMS_REPORT, RoomLimits, RoomsConfig, run_rooms
from bench.load.rooms_count import (
    count_rooms,
    rooms_clean,
    rooms_summary_text,
    rooms_table_after,
    summarize_rooms,
)
from bench.load.summary import clean, machine, summarize, summary_text, table_after
from sandbox.template import find_template

DESCRIPTION = (
    "Load with counts: many clients on real WebSockets through the sandbox, churning, counting."
)
ROOMS = RoomsConfig()


def main(argv: list[str] | None = None) -> int:
    defaults = LoadConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=DESCRIPTION)
    parser.add_argument(
        "--scenario",
        choices=("lobby", "rooms"),
        default="lobby",
        help="lobby (default): protocol v1 clients in the one room, private and public "
        "messages, name contests; rooms: protocol v2 clients in --rooms rooms, joining, "
        "leaving, typing and posting (bench/load/rooms.py)",
    )
    parser.add_argument(
        "--clients", type=int, default=None, help=_both(defaults.clients, ROOMS.clients)
    )
    parser.add_argument(
        "--messages", type=int, default=None, help=_both(defaults.messages, ROOMS.messages)
    )
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
        default=None,
        help="mean seconds a client waits between messages; "
        + _both(defaults.think_s, ROOMS.think_s),
    )
    parser.add_argument(
        "--integration-timeout",
        type=float,
        default=29.0,
        help="the sandbox's integration timeout (AWS: 29 s)",
    )
    parser.add_argument("--contest", type=float, default=defaults.contest)
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds over which the clients start; " + _both(defaults.ramp_s, ROOMS.ramp_s),
    )
    rooms = parser.add_argument_group("the rooms scenario")
    rooms.add_argument("--rooms", type=int, default=ROOMS.rooms, help="rooms (%(default)s)")
    rooms.add_argument("--min-rooms", type=int, default=ROOMS.min_rooms)
    rooms.add_argument(
        "--max-rooms", type=int, default=ROOMS.max_rooms, help="rooms per client: min to max"
    )
    rooms.add_argument(
        "--typing-ratio",
        type=float,
        default=ROOMS.typing_ratio,
        help="share of posts preceded by typing (%(default)s)",
    )
    rooms.add_argument(
        "--rejoin-ratio",
        type=float,
        default=ROOMS.rejoin_ratio,
        help="chance after a post of leaving a room and rejoining it later (%(default)s)",
    )
    rooms.add_argument(
        "--leave-at-end",
        type=float,
        default=ROOMS.leave_at_end,
        help="share of clients that leave each room before closing (%(default)s)",
    )
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
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help=_both(REPORT.relative_to(ROOT), ROOMS_REPORT.relative_to(ROOT)),
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    if args.dynamodb_server:
        return serve_dynamodb()
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    if args.scenario == "rooms":
        return rooms_main(parser, args)
    config = LoadConfig(
        clients=_given(args.clients, defaults.clients),
        messages=_given(args.messages, defaults.messages),
        sessions=args.sessions,
        private_ratio=args.private_ratio,
        contest=args.contest,
        think_s=_given(args.think, defaults.think_s),
        ramp_s=_given(args.ramp, defaults.ramp_s),
        seed=args.seed,
    )
    args.report = args.report or REPORT
    template = args.template or find_template(CDK_OUT, args.stack)
    limits = Limits.from_template(template)
    if config.clients > limits.max_room_size:
        parser.error(f"--clients {config.clients}: the room holds {limits.max_room_size}")
    print(f"==> load: {config.clients} clients, {config.messages} messages, limits {limits}")
    with contextlib.ExitStack() as stack:
        url, dynamodb, workers = _target(stack, args, template)
        report = measure(config, url, limits, dynamodb=dynamodb, workers=workers)
        report["template"] = str(template)
    return _write(args.report, report)


def rooms_main(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """`--scenario rooms`: see bench/load/rooms.py."""
    config = RoomsConfig(
        clients=_given(args.clients, ROOMS.clients),
        rooms=args.rooms,
        min_rooms=args.min_rooms,
        max_rooms=args.max_rooms,
        messages=_given(args.messages, ROOMS.messages),
        think_s=_given(args.think, ROOMS.think_s),
        typing_ratio=args.typing_ratio,
        rejoin_ratio=args.rejoin_ratio,
        leave_at_end=args.leave_at_end,
        ramp_s=_given(args.ramp, ROOMS.ramp_s),
        seed=args.seed,
    )
    template = args.template or find_template(CDK_OUT, args.stack)
    limits = RoomLimits.from_template(template)
    if config.rooms > config.clients:
        parser.error(f"--rooms {config.rooms}: each room needs a creator, at most --clients")
    if config.max_rooms > limits.max_rooms_per_connection:
        parser.error(
            f"--max-rooms {config.max_rooms}: a connection may be in at most "
            f"{limits.max_rooms_per_connection}"
        )
    if config.clients > limits.max_room_size:
        parser.error(f"--clients {config.clients}: a room holds {limits.max_room_size}")
    print(
        f"==> load, rooms: {config.clients} clients in {config.rooms} rooms "
        f"({config.min_rooms}-{config.max_rooms} each), {config.messages} posts, limits {limits}"
    )
    with contextlib.ExitStack() as stack:
        url, dynamodb, workers = _target(stack, args, template)
        report = measure_rooms(config, url, limits, dynamodb=dynamodb, workers=workers)
        report["template"] = str(template)
    return _write(args.report or ROOMS_REPORT, report)


def _both(lobby: object, rooms: object) -> str:
    return f"default {lobby} (with --scenario rooms: {rooms})"


def _given(value: Any, default: Any) -> Any:
    return default if value is None else value


def _target(
    stack: contextlib.ExitStack, args: argparse.Namespace, template: Path
) -> tuple[str, str | None, int | None]:
    """(WebSocket URL, DynamoDB endpoint, workers): --url's, or a sandbox started here."""
    if args.url:
        return args.url, args.dynamodb, None
    external = None
    if not args.embedded_dynamodb:
        external, fast = stack.enter_context(dynamodb_process())
        print(f"    DynamoDB {external} (moto, own process, sped up: {fast})")
    url, dynamodb, log = stack.enter_context(
        sandbox(template, args.workers, external, args.integration_timeout)
    )
    print(f"    sandbox {url} ({args.workers} workers), log {log}", flush=True)
    return url, dynamodb, args.workers


def _write(path: Path, report: dict[str, Any]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(report["summary"])
    print(f"Report: {path} ({'clean' if report['clean'] else 'NOT CLEAN'})")
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


def measure_rooms(
    config: RoomsConfig,
    url: str,
    limits: RoomLimits,
    *,
    dynamodb: str | None = None,
    workers: int | None = None,
    progress: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Run the rooms scenario against `url` and count: the report (`clean` says all is
    well)."""
    started = time.monotonic()
    load_before = [round(x, 2) for x in os.getloadavg()]
    run = asyncio.run(run_rooms(config, url, limits, progress=progress))
    duration = time.monotonic() - run.started
    counts = count_rooms(run)
    report = summarize_rooms(
        run,
        counts,
        {
            "scenario": "rooms",
            "config": asdict(config),
            "limits": asdict(limits),
            "workers": workers,
            "machine": {**machine(), "load_average_before": load_before},
            "duration_s": round(duration, 1),
            "table_after": rooms_table_after(dynamodb) if dynamodb else {},
            "wall_s": round(time.monotonic() - started, 1),
        },
    )
    report["summary"] = rooms_summary_text(report)
    report["clean"] = rooms_clean(report)
    return report
