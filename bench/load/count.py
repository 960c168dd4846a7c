"""Counting a run: per-sender deliveries, losses, duplicates and order, latencies,
recoveries and name-claim overlaps (definitions in bench/load/__init__.py)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from typing import Any

from bench.load.client import Run


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1000, 1)

    return {
        "count": len(ordered),
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def count(run: Run) -> dict[str, Any]:
    """Per sender: sent, acknowledged, delivered, required, lost, duplicated, out of order."""
    messages = run.messages
    per: dict[int, Counter[str]] = defaultdict(Counter)
    for m in messages:
        row = per[m.client]
        row["sent"] += 1
        row["acknowledged"] += m.acked
        if m.failed:
            row[f"failed {m.failed}"] += 1
        row["duplicated"] += len(m.other_ids)
    # the server's order of one sender's messages
    last_seq: dict[int, int] = {}
    for m in messages:
        if m.acked and m.seq is not None:
            if m.seq <= last_seq.get(m.client, -1):
                per[m.client]["out_of_order"] += 1
            last_seq[m.client] = m.seq
    acked_public = [m for m in messages if m.acked and not m.private]
    acked_public.sort(key=lambda m: m.t_send)
    sends = [m.t_send for m in acked_public]
    latencies: list[float] = []
    for conn in run.conns:
        received: dict[int, int] = {}
        last_from: dict[int, int] = {}
        for index, t in zip(conn.recv_index, conn.recv_time, strict=True):
            m = messages[index]
            received[index] = received.get(index, 0) + 1
            if received[index] > 1:
                per[m.client]["duplicated"] += 1
                continue
            per[m.client]["delivered"] += 1
            latencies.append(t - m.t_send)
            if index < last_from.get(m.client, -1):
                per[m.client]["out_of_order"] += 1
            last_from[m.client] = max(index, last_from.get(m.client, -1))
        # required public deliveries: sent after this connection joined, acknowledged
        # before it began to leave
        start = bisect_left(sends, conn.t_joined)
        for m in acked_public[start:]:
            if m.conn == conn.serial or m.t_ack > conn.t_left:
                continue
            per[m.client]["required"] += 1
            if m.index not in received:
                per[m.client]["lost"] += 1
    conns = run.conns
    received_by: dict[int, set[int]] = {}
    for m in messages:
        if m.private and m.acked:
            target = conns[m.target]
            if target.t_joined <= m.t_send and target.t_left >= m.t_ack:
                per[m.client]["required"] += 1
                got = received_by.setdefault(m.target, set(target.recv_index))
                if m.index not in got:
                    per[m.client]["lost"] += 1
    rows = []
    for client in sorted(per):
        row = per[client]
        rows.append(
            {
                "client": client,
                **{k: row[k] for k in ("sent", "acknowledged", "delivered", "required")},
                **{k: row[k] for k in ("lost", "duplicated", "out_of_order")},
                "failed": {k[7:]: v for k, v in row.items() if k.startswith("failed ")},
            }
        )
    acks = [m.t_ack - m.t_last_send for m in messages if m.acked]
    return {
        "per_sender": rows,
        "delivery_latency": percentiles(latencies),
        "ack_latency": percentiles(acks),
    }


def recoveries(run: Run) -> dict[str, int]:
    """Rejoins with `since`: did history + live deliveries hold every message after it?"""
    by_seq = sorted(
        (m for m in run.messages if m.acked and not m.private and m.seq is not None),
        key=lambda m: m.seq or 0,
    )
    seqs = [m.seq or 0 for m in by_seq]
    out = Counter[str]()
    for conn in run.conns:
        if conn.since is None or conn.name is None:
            continue
        out["rejoins_with_since"] += 1
        if conn.history_complete is False:
            out["incomplete_history"] += 1
            continue
        have = set(conn.history) | set(conn.recv_index)
        start = bisect_left(seqs, conn.since + 1)
        for m in by_seq[start:]:
            if m.t_ack > conn.t_left or m.client == conn.client:  # own messages: acks
                continue
            out["expected_after_since"] += 1
            if m.index not in have:
                out["missing_after_since"] += 1
        out["history_items"] += len(conn.history)
        out["history_and_live"] += len(set(conn.history) & set(conn.recv_index))
    return dict(out)


def claim_violations(run: Run) -> list[str]:
    """Two look-alike names held at once: one claim made entirely within the other's hold."""
    found = []
    claims = sorted(run.claims, key=lambda c: c.t_sent)
    for i, a in enumerate(claims):
        for b in claims[i + 1 :]:
            if b.t_sent > a.t_left:
                break
            if a.conn != b.conn and a.keys & b.keys and a.t_ack <= b.t_sent and b.t_ack <= a.t_left:
                found.append(f"{b.name!r} claimed while {a.name!r} was held")
    return found
