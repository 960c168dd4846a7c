"""The benchmark scenarios; each returns a Markdown section body."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def fanout(*, quick: bool) -> str:
    """Broadcast time against an @connections stand-in that answers after a fixed delay."""
    from chat.notifier import ConnectionsNotifier  # noqa: PLC0415
    from tests.support.connections_api import running_connections_api  # noqa: PLC0415

    delay = 0.020
    sizes = [10, 100] if quick else [10, 100, 500]
    pools = [1, 10, 32] if quick else [1, 10, 32, 64]
    rows = []
    with running_connections_api() as api:
        api.delay_seconds = delay
        for concurrency in pools:
            client = boto3.client(
                "apigatewaymanagementapi",
                endpoint_url=api.url,
                region_name="us-east-1",
                config=Config(max_pool_connections=concurrency),
            )
            notifier = ConnectionsNotifier(client, concurrency=concurrency)
            for n in sizes:
                if concurrency == 1 and n > 100:
                    rows.append([n, concurrency, "skipped (serial)", "", ""])
                    continue
                deliveries = {f"conn{i:05}=": [{"members": ["x"] * 10}] for i in range(n)}
                started = time.perf_counter()
                report = notifier.send(deliveries)
                elapsed = time.perf_counter() - started
                assert report.sent == n, report
                model = (n + concurrency - 1) // concurrency * delay
                rows.append([n, concurrency, _ms(elapsed), _ms(model), f"{n / elapsed:.0f}"])
                api.clear()
    return (
        f"`ConnectionsNotifier.send` to N connections; every post takes {delay * 1000:.0f} ms "
        "at the stand-in (a stand-in for API Gateway's round trip). Model: "
        "⌈N/k⌉ × delay.\n\n"
        + _table(["N", "concurrency k", "measured ms", "model ms", "posts/s"], rows)
    )


def handler_requests(*, quick: bool) -> str:
    """Handler latency per request with N members, DynamoDB in moto (in-process)."""
    import handler  # noqa: PLC0415
    from tests.support.aws import mocked_dynamodb  # noqa: PLC0415
    from tests.support.connections_api import running_connections_api  # noqa: PLC0415
    from tests.support.events import (  # noqa: PLC0415
        LambdaContext,
        connect_event,
        message_event,
    )
    from tests.support.stack import create_table  # noqa: PLC0415

    import os  # noqa: PLC0415

    sizes = [10, 100] if quick else [10, 100, 500]
    repeats = 5 if quick else 20
    rows = []
    for n in sizes:
        with running_connections_api() as api, mocked_dynamodb() as db:
            create_table(db, "bench")
            os.environ.update(TABLE_NAME="bench", CALLBACK_URL=api.url, LOG_LEVEL="WARNING")
            handler.chat_service.cache_clear()
            context = LambdaContext()

            def invoke(event: dict[str, Any]) -> float:
                started = time.perf_counter()
                handler.lambda_handler(event, context)
                return time.perf_counter() - started

            ids = [f"member{i:05}AAAA=" for i in range(n)]
            for i, cid in enumerate(ids):
                invoke(connect_event(cid))
                invoke(message_event(cid, {"action": "setName", "name": f"user{i}"}))
            api.clear()
            public = [
                invoke(message_event(ids[0], {"action": "sendPublic", "message": "hi"}))
                for _ in range(repeats)
            ]
            private = [
                invoke(
                    message_event(ids[0], {"action": "sendPrivate", "to": "user1", "message": "x"})
                )
                for _ in range(repeats)
            ]
            rows.append(
                [n, _ms(statistics.median(public)), _ms(max(public)), _ms(statistics.median(private))]
            )
        handler.chat_service.cache_clear()
    return (
        "`lambda_handler` wall time for one request with N named members; DynamoDB is moto "
        "in the same process and @connections answers at once, so this is our code plus "
        f"moto's, not AWS's. {repeats} requests each.\n\n"
        + _table(["N members", "sendPublic median ms", "sendPublic max ms", "sendPrivate median ms"], rows)
    )


def name_race(*, quick: bool) -> str:
    """Many connections claim one name at once: exactly one must win."""
    from chat.errors import NameTakenError  # noqa: PLC0415
    from chat.store import DynamoChatStore  # noqa: PLC0415
    from tests.support.aws import mocked_dynamodb  # noqa: PLC0415
    from tests.support.stack import create_table  # noqa: PLC0415

    rows = []
    for racers in [50] if quick else [50, 200]:
        with mocked_dynamodb() as db:
            create_table(db, "race")
            store = DynamoChatStore(db, "race")
            expires = int(time.time()) + 10_800
            ids = [f"racer{i:04}=" for i in range(racers)]
            for cid in ids:
                store.add_connection(cid, expires)

            def claim(cid: str) -> bool:
                try:
                    store.claim_name(cid, "Alice", None, expires)
                    return True
                except NameTakenError:
                    return False

            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=racers) as pool:
                wins = sum(pool.map(claim, ids))
            rows.append([racers, wins, _ms(time.perf_counter() - started)])
    return "Concurrent `claim_name` of one name (moto, requests serialized as DynamoDB does).\n\n" + _table(
        ["racers", "winners", "total ms"], rows
    )


ALL: list[tuple[str, Callable[..., str]]] = [
    ("Fan-out: broadcast time against concurrency", fanout),
    ("Handler: request time against room size", handler_requests),
    ("Name race", name_race),
]
