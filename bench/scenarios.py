"""Scenarios kept from the first report: the name race, and the sandbox end to end.

Imports of the chat and the test stand-ins are local to each scenario because
`bench/__main__.py` puts `lambda_src/` on the import path first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

POST_DELAY_SECONDS = 0.020


def _progress(text: str) -> None:
    print(f"    {text}", flush=True)


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


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


def _sandbox_latencies(sandbox: Any, members: int, messages: int) -> list[float]:
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
    return latencies


def sandbox_latencies(sizes: list[int], messages: int, rounds: int) -> dict[str, Any]:
    """Send-to-last-receipt time of a public message, real WebSockets through the sandbox:
    p50/p95/p99 of each round of `messages`, summarised over `rounds` (each round a new
    room of that size). The sandbox runs on the stand-ins' core; the clients on ours."""
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from bench.local_aws import ROOT, chat_template  # noqa: PLC0415
    from bench.measure import STANDIN_CPU, pinned, summary  # noqa: PLC0415
    from sandbox.launcher import SandboxProcess, start_sandbox  # noqa: PLC0415

    template = chat_template()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as logs:
        with pinned(STANDIN_CPU):  # the sandbox and its workers inherit the other core
            context = start_sandbox(
                template,
                Path(logs),
                "--web-dir",
                str(ROOT / "web"),
                stage="production",
                kind=SandboxProcess,
            )
            sandbox = context.__enter__()
        try:
            for members in sizes:
                per_round: dict[str, list[float]] = {"p50": [], "p95": [], "p99": []}
                for _ in range(rounds):
                    _progress(f"{members} members, {messages} messages")
                    latencies = _sandbox_latencies(sandbox, members, messages)
                    per_round["p50"].append(_percentile(latencies, 0.50))
                    per_round["p95"].append(_percentile(latencies, 0.95))
                    per_round["p99"].append(_percentile(latencies, 0.99))
                out[str(members)] = {key: summary(values) for key, values in per_round.items()}
        finally:
            context.__exit__(None, None, None)
    return out


ALL: list[tuple[str, Callable[..., str]]] = [
    ("Name race", name_race),
]
