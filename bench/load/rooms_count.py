"""Counting a rooms run, per room: required deliveries, lost, duplicated, out of order,
recoveries after a rejoin, typing, and the latency of each action (definitions in
bench/load/rooms.py); the report, its summary and its clean verdict."""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from typing import Any

from bench.load.config import REGION
from bench.load.count import percentiles
from bench.load.rooms import ACTIONS, Post, RoomsRun, Stay

COUNTS = (
    "posts",
    "acknowledged",
    "required",
    "delivered",
    "lost",
    "duplicated",
    "out_of_order",
    "recovered_from_history",
    "crossed_senders",
)
FAULTS = ("lost", "duplicated", "out_of_order")


def count_rooms(run: RoomsRun) -> dict[str, Any]:
    """Per room: members, stays, posts, required, delivered, lost, duplicated, out of order;
    the latencies per action; recoveries; typing."""
    per: dict[str, Counter[str]] = {room: Counter() for room in run.room_names}
    by_room: dict[str, list[Post]] = defaultdict(list)
    for post in run.posts:
        row = per[post.room]
        row["posts"] += 1
        row["acknowledged"] += post.acked
        row["duplicated"] += len(post.other_ids)
        if post.acked:
            by_room[post.room].append(post)
    # the server's order of one sender's posts in one room
    last_seq: dict[tuple[int, str], int] = {}
    for post in run.posts:
        if post.acked and post.seq is not None:
            key = (post.client, post.room)
            if post.seq <= last_seq.get(key, -1):
                per[post.room]["out_of_order"] += 1
            last_seq[key] = post.seq
    for posts in by_room.values():
        posts.sort(key=lambda p: p.t_send)
    live, deliveries = _live(run, per)
    members = _required(run, per, by_room, live)
    rows = []
    for room in run.room_names:
        row = per[room]
        rows.append(
            {
                "room": room,
                "members": len(members[room]),
                "stays": sum(1 for s in run.stays if s.room == room),
                **{k: row[k] for k in COUNTS},
            }
        )
    typed = [t.t_first - t.t_send for t in run.typings if not math.isinf(t.t_first)]
    latency = {
        action: percentiles(list(run.latency[action]))
        for action in ACTIONS
        if action not in ("typing_first_receiver", "sendPublic_to_members")
    }
    latency["typing_first_receiver"] = percentiles(typed)
    latency["sendPublic_to_members"] = percentiles(deliveries)
    return {
        "per_room": rows,
        "latency": {action: latency[action] for action in ACTIONS},
        "recovery": recoveries(run, by_room, live),
        "typing": {
            "sent": len(run.typings),
            "deliveries": sum(t.receivers for t in run.typings),
            "reached_nobody": sum(1 for t in run.typings if t.receivers == 0),
            "in_history": run.typing_in_history,
            "to_sender": run.typing_to_sender,
            "unmatched": run.typing_unmatched,
        },
    }


def _live(
    run: RoomsRun, per: dict[str, Counter[str]]
) -> tuple[dict[tuple[int, str], set[int]], list[float]]:
    """The live copies: duplicates and order per (client, room); the set of posts each
    client got live in each room, and the latency of every first copy."""
    live: dict[tuple[int, str], set[int]] = {}
    deliveries: list[float] = []
    for (client, room), receipts in run.receipts.items():
        row = per[room]
        seen: set[int] = set()
        last_from: dict[int, int] = {}
        top_seq = -1
        for index, t in zip(receipts.index, receipts.time, strict=True):
            post = run.posts[index]
            if index in seen:
                row["duplicated"] += 1
                continue
            seen.add(index)
            row["delivered"] += 1
            deliveries.append(t - post.t_send)
            if index < last_from.get(post.client, -1):
                row["out_of_order"] += 1
            last_from[post.client] = max(index, last_from.get(post.client, -1))
            if post.seq is not None:
                if post.seq < top_seq:
                    row["crossed_senders"] += 1  # allowed: seq orders them
                top_seq = max(top_seq, post.seq)
        live[(client, room)] = seen
    return live, deliveries


def _required(
    run: RoomsRun,
    per: dict[str, Counter[str]],
    by_room: dict[str, list[Post]],
    live: dict[tuple[int, str], set[int]],
) -> dict[str, set[int]]:
    """Count each stay's required posts, lost or recovered from history; the clients that
    were ever in each room."""
    sends = {room: [p.t_send for p in posts] for room, posts in by_room.items()}
    histories: dict[tuple[int, str], set[int]] = defaultdict(set)
    members: dict[str, set[int]] = defaultdict(set)
    for stay in run.stays:
        histories[(stay.client, stay.room)] |= stay.history
        members[stay.room].add(stay.client)
    for stay in run.stays:
        row = per[stay.room]
        got = live.get((stay.client, stay.room), set())
        kept = histories[(stay.client, stay.room)]
        posts = by_room.get(stay.room, [])
        for post in posts[bisect_left(sends.get(stay.room, []), stay.t_joined) :]:
            if post.client == stay.client or post.t_ack > stay.t_left:
                continue
            row["required"] += 1
            if post.index in got:
                continue
            if post.index in kept:
                row["recovered_from_history"] += 1
            else:
                row["lost"] += 1
    return members


def recoveries(
    run: RoomsRun, by_room: dict[str, list[Post]], live: dict[tuple[int, str], set[int]]
) -> dict[str, int]:
    """Rejoins with `since`: did their history and live posts hold every post after it?"""
    out = Counter[str]()
    ordered = {
        room: sorted((p for p in posts if p.seq is not None), key=lambda p: p.seq or 0)
        for room, posts in by_room.items()
    }
    for stay in run.stays:
        if stay.since is None:
            continue
        out["rejoins_with_since"] += 1
        if stay.history_complete is False:
            out["incomplete_history"] += 1
            continue
        posts = ordered.get(stay.room, [])
        have = stay.history | live.get((stay.client, stay.room), set())
        start = bisect_left([p.seq or 0 for p in posts], stay.since + 1)
        for post in posts[start:]:
            if post.t_ack > stay.t_left or post.client == stay.client:
                continue
            out["expected_after_since"] += 1
            if post.index not in have:
                out["missing_after_since"] += 1
        out["history_items"] += len(stay.history)
        out["history_and_live"] += len(stay.history & live.get((stay.client, stay.room), set()))
    return dict(out)


def summarize_rooms(run: RoomsRun, counts: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    rows = counts["per_room"]
    totals = {k: sum(r[k] for r in rows) for k in COUNTS}
    worst = max(rows, key=lambda r: (sum(r[k] for k in FAULTS), r["lost"], r["required"]))
    sizes = [r["members"] for r in rows]
    stays: list[Stay] = run.stays
    return {
        "totals": totals,
        "worst_room": worst,
        "rooms": {
            "rooms": len(rows),
            "used": sum(1 for r in rows if r["acknowledged"] and r["members"] >= 2),
            "members_min_median_max": [min(sizes), sorted(sizes)[len(sizes) // 2], max(sizes)]
            if sizes
            else [],
            "joins": len(stays),
            "creations": sum(s.creating for s in stays),
            "rejoins_with_since": sum(s.since is not None for s in stays),
            "leaves": counts["latency"]["leaveRoom"]["count"],
        },
        "latency": counts["latency"],
        "recovery": counts["recovery"],
        "typing": counts["typing"],
        "rate_limited": run.rate_limited,
        "timeouts": run.timeouts,
        "errors": dict(run.errors),
        "foreign_frames": run.foreign_frames,
        **extra,
        "per_room": rows,
    }


def rooms_summary_text(report: dict[str, Any]) -> str:
    t, config, rooms = report["totals"], report["config"], report["rooms"]
    worst = report["worst_room"]
    lines = [
        f"{config['clients']} clients in {rooms['rooms']} rooms ({rooms['used']} used; members "
        f"min/median/max {rooms['members_min_median_max']}), {rooms['joins']} joins "
        f"({rooms['creations']} creating, {rooms['rejoins_with_since']} rejoins with since), "
        f"{rooms['leaves']} leaves, {report['duration_s']:.0f} s, {report['workers']} Lambda "
        f"workers; {report['machine']['nproc']} x {report['machine']['cpu']}, load average "
        f"{report['machine']['load_average_before']} before, {report['machine']['load_average']}"
        " after",
        f"posts acknowledged {t['acknowledged']}/{t['posts']}; delivered {t['delivered']} "
        f"(required {t['required']}, {t['recovered_from_history']} of them from history); "
        f"lost {t['lost']}, duplicated {t['duplicated']}, out of order {t['out_of_order']} "
        f"(worst room {worst['room']}: {worst['lost']}/{worst['duplicated']}/"
        f"{worst['out_of_order']}); senders crossing in seq order {t['crossed_senders']} "
        "(allowed)",
        f"typing: {report['typing']}; recovery after rejoin: {report['recovery']}",
        f"table after: {report.get('table_after', {})}; rate limited "
        f"{report['rate_limited']}, timeouts {report['timeouts']}, errors "
        f"{report['errors'] or 0}",
        "latency (p50 / p99 ms, n):",
    ]
    for action, p in report["latency"].items():
        lines.append(f"  {action:24s} {p['p50_ms']} / {p['p99_ms']}  (n={p['count']})")
    return "\n".join(lines)


def rooms_clean(report: dict[str, Any]) -> bool:
    t, typing, rooms = report["totals"], report["typing"], report["rooms"]
    table = report.get("table_after", {})
    return (
        t["acknowledged"] == t["posts"] == report["config"]["messages"]
        and not report["errors"]
        and t["lost"] == t["duplicated"] == t["out_of_order"] == 0
        and rooms["used"] == rooms["rooms"]
        and typing["in_history"] == typing["to_sender"] == 0
        and report["recovery"].get("missing_after_since", 0) == 0
        and not any(table.values())
    )


def rooms_table_after(dynamodb_endpoint: str, timeout_s: float = 30.0) -> dict[str, int]:
    """What is left in the chat's table once everyone has gone: room members, connections'
    room memberships, connections and name claims (a v2 `$disconnect` leaves its rooms one
    transaction each after the socket closed: wait until it settles)."""
    import boto3  # noqa: PLC0415

    db = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        region_name=REGION,
        aws_access_key_id="load",
        aws_secret_access_key="load",
    )
    names = db.list_tables()["TableNames"]
    table = ([t for t in names if "onnection" in t] or names)[0]
    deadline = time.monotonic() + timeout_s
    while True:
        left = Counter[str]()
        request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = db.scan(**request)
            for item in page["Items"]:
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                if pk.startswith("ROOM#") and sk.startswith("MEMBER#"):
                    left["members"] += 1
                elif pk.startswith("CONN#"):
                    left["memberships" if sk.startswith("ROOM#") else "connections"] += 1
                elif pk.startswith("NAME#"):
                    left["name_claims"] += 1
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {k: left[k] for k in ("members", "memberships", "connections", "name_claims")}
