"""The benchmark scenarios; each returns a Markdown section body.

Imports of the chat and the test stand-ins are local to each scenario because
`bench/__main__.py` puts `lambda_src/` on the import path first.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

POST_DELAY_SECONDS = 0.020


def _progress(text: str) -> None:
    print(f"    {text}", flush=True)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# --- fan-out ----------------------------------------------------------------------------


def _broadcast_row(url: str, n: int, concurrency: int) -> list[Any]:
    from chat.notifier import ConnectionsNotifier  # noqa: PLC0415

    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(max_pool_connections=concurrency),
    )
    notifier = ConnectionsNotifier(client, concurrency=concurrency)
    deliveries = {f"conn{i:05}=": [{"members": ["x"] * 10}] for i in range(n)}
    started = time.perf_counter()
    report = notifier.send(deliveries)
    elapsed = time.perf_counter() - started
    if report.sent != n:
        raise RuntimeError(f"fan-out lost posts: {report}")
    model = (n + concurrency - 1) // concurrency * POST_DELAY_SECONDS
    return [n, concurrency, _ms(elapsed), _ms(model), f"{n / elapsed:.0f}"]


def fanout(*, quick: bool) -> str:
    """Broadcast time against an @connections stand-in that answers after a fixed delay."""
    from sandbox.connections_standin import running_connections_api  # noqa: PLC0415

    sizes = [10, 100] if quick else [10, 100, 500]
    pools = [1, 10, 32] if quick else [1, 10, 32, 64]
    rows = []
    with running_connections_api() as api:
        api.delay_seconds = POST_DELAY_SECONDS
        for concurrency in pools:
            for n in sizes:
                if concurrency == 1 and n > 100:
                    continue
                _progress(f"{n} connections, concurrency {concurrency}")
                rows.append(_broadcast_row(api.url, n, concurrency))
                api.clear()
    return (
        f"`ConnectionsNotifier.send` to N connections; the stand-in answers every post after "
        f"{POST_DELAY_SECONDS * 1000:.0f} ms (standing in for API Gateway's round trip). "
        "Model: ceil(N / k) * delay.\n\n"
        + _table(["N", "concurrency k", "measured ms", "model ms", "posts/s"], rows)
    )


# --- handler ----------------------------------------------------------------------------


def _timed_invoke(event: dict[str, Any]) -> float:
    import handler  # noqa: PLC0415
    from bench.local_aws import LambdaContext  # noqa: PLC0415

    started = time.perf_counter()
    handler.lambda_handler(event, LambdaContext())
    return time.perf_counter() - started


def _room_row(n: int, repeats: int) -> list[Any]:
    import handler  # noqa: PLC0415
    from bench.local_aws import chat_table, connect, message  # noqa: PLC0415
    from sandbox.connections_standin import running_connections_api  # noqa: PLC0415

    with running_connections_api() as api, chat_table() as (_, table):
        os.environ.update(TABLE_NAME=table, CALLBACK_URL=api.url, LOG_LEVEL="WARNING")
        handler.reset()
        ids = [f"member{i:05}AAAA=" for i in range(n)]
        for i, cid in enumerate(ids):
            _timed_invoke(connect(cid))
            _timed_invoke(message(cid, {"action": "setName", "name": f"user{i}"}))
        api.clear()
        public_event = message(ids[0], {"action": "sendPublic", "message": "hi"})
        private_event = message(ids[0], {"action": "sendPrivate", "to": "user1", "message": "x"})
        public = [_timed_invoke(public_event) for _ in range(repeats)]
        private = [_timed_invoke(private_event) for _ in range(repeats)]
    handler.reset()
    return [
        n,
        _ms(statistics.median(public)),
        _ms(max(public)),
        _ms(statistics.median(private)),
    ]


def handler_requests(*, quick: bool) -> str:
    """Handler latency per request with N members, DynamoDB in moto (in-process)."""
    sizes = [10, 100] if quick else [10, 100, 500]
    repeats = 5 if quick else 20
    rows = []
    for n in sizes:
        _progress(f"{n} members (joining them costs O(n^2) posts)")
        rows.append(_room_row(n, repeats))
    headers = ["N members", "sendPublic median ms", "sendPublic max ms", "sendPrivate median ms"]
    return (
        "`lambda_handler` wall time for one request with N named members; DynamoDB is moto "
        "in the same process and @connections answers at once, so this is our code plus "
        f"moto's, not AWS's. {repeats} requests each.\n\n" + _table(headers, rows)
    )


# --- name race --------------------------------------------------------------------------


def _race_row(racers: int) -> list[Any]:
    from bench.local_aws import chat_table  # noqa: PLC0415
    from chat.errors import NameTakenError  # noqa: PLC0415
    from chat.names import claim_keys  # noqa: PLC0415
    from chat.ports import Connection  # noqa: PLC0415
    from chat.store import DynamoChatStore  # noqa: PLC0415

    with chat_table() as (db, table):
        store = DynamoChatStore(db, table)
        expires = int(time.time()) + 10_800
        ids = [f"racer{i:04}=" for i in range(racers)]
        for cid in ids:
            store.add_connection(cid, expires)

        def claim(cid: str) -> bool:
            try:
                store.claim_name(
                    Connection(cid, None, expires), "Alice", claim_keys("Alice"), max_members=1000
                )
            except NameTakenError:
                return False
            return True

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=racers) as pool:
            wins = sum(pool.map(claim, ids))
        return [racers, wins, _ms(time.perf_counter() - started)]


def name_race(*, quick: bool) -> str:
    """Many connections claim one name at once: exactly one must win."""
    rows = []
    for racers in [50] if quick else [50, 200]:
        _progress(f"{racers} racers")
        rows.append(_race_row(racers))
    return (
        "Concurrent `claim_name` of one name (the sandbox's moto server, requests applied one "
        "at a time as "
        "DynamoDB applies each atomically).\n\n" + _table(["racers", "winners", "total ms"], rows)
    )


# --- the whole chat through the sandbox ---------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _sandbox_row(sandbox: Any, members: int, messages: int) -> list[Any]:
    import json  # noqa: PLC0415

    clients = [sandbox.connect().__enter__() for _ in range(members)]
    try:
        for i, ws in enumerate(clients):
            ws.send(json.dumps({"action": "setName", "name": f"bench{members}-{i}"}))
        for ws in clients:  # drain until every member has seen the full member list
            while len(json.loads(ws.recv(timeout=30)).get("members", [])) != members:
                pass
        latencies = []
        for n in range(messages):
            started = time.perf_counter()
            # Senders take turns, so that no one client exceeds the chat's rate limit.
            sender = clients[n % len(clients)]
            sender.send(json.dumps({"action": "sendPublic", "message": f"m{n}"}))
            for ws in clients:
                while json.loads(ws.recv(timeout=30)).get("text") != f"m{n}":
                    pass
            latencies.append(time.perf_counter() - started)
    finally:
        for ws in clients:
            ws.close()
    return [
        members,
        messages,
        _ms(statistics.median(latencies)),
        _ms(_percentile(latencies, 0.95)),
        _ms(max(latencies)),
    ]


def sandbox_round_trip(*, quick: bool) -> str:
    """Send-to-last-receipt time of a public message, real WebSockets through the sandbox."""
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from bench.local_aws import ROOT, TEMPLATE  # noqa: PLC0415
    from sandbox.launcher import SandboxProcess, start_sandbox  # noqa: PLC0415

    template = TEMPLATE
    if not template.exists():
        return "Skipped: run `make synth` first (`make bench` does)."
    sizes = [2, 10] if quick else [2, 10, 50]
    messages = 10 if quick else 20
    rows = []
    with (
        tempfile.TemporaryDirectory() as logs,
        start_sandbox(
            template,
            Path(logs),
            "--web-dir",
            str(ROOT / "web"),
            stage="production",
            kind=SandboxProcess,
        ) as sandbox,
    ):
        for members in sizes:
            _progress(f"{members} members, {messages} messages")
            rows.append(_sandbox_row(sandbox, members, messages))
    headers = ["members", "messages", "median ms", "p95 ms", "max ms"]
    return (
        "`python -m sandbox` on the synthesized template (4 worker processes, embedded "
        "moto), websockets clients in this process: time from sending `sendPublic` until "
        f"every member has received it. {messages} messages per size.\n\n" + _table(headers, rows)
    )


ALL: list[tuple[str, Callable[..., str]]] = [
    ("Fan-out: broadcast time against concurrency", fanout),
    ("Handler: request time against room size", handler_requests),
    ("Name race", name_race),
    ("The whole chat through the sandbox", sandbox_round_trip),
]
