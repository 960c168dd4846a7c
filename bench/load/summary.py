"""The load report: totals, the machine, the printed summary, the clean verdict, and what
the chat's table holds once everyone has gone."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.load.client import Run
from bench.load.config import REGION, ROOT
from bench.load.count import claim_violations, recoveries


def summarize(run: Run, counts: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    rows = counts["per_sender"]
    totals = {
        k: sum(r[k] for r in rows)
        for k in (
            "sent",
            "acknowledged",
            "delivered",
            "required",
            "lost",
            "duplicated",
            "out_of_order",
        )
    }
    violations = claim_violations(run)
    acked = [m for m in run.messages if m.acked]
    return {
        "totals": totals,
        "messages": {
            "public_acknowledged": sum(not m.private for m in acked),
            "private_acknowledged": sum(m.private for m in acked),
        },
        "name_uniqueness": {
            "claims": len(run.claims),
            "contested_claims_won": run.contested_wins,
            "contested_claims_refused": run.contested_losses,
            "violations": len(violations) + len(run.member_list_violations),
            "claim_overlaps": violations[:20],
            "member_list_violations": run.member_list_violations[:20],
            "member_lists_checked": sum(c.members_frames for c in run.conns if c.check_names),
        },
        "recovery": recoveries(run),
        "delivery_latency": counts["delivery_latency"],
        "ack_latency": counts["ack_latency"],
        "connections": len(run.conns),
        "rate_limited": run.rate_limited,
        "private_refused_recipient_gone": run.private_refused,
        "timeouts": run.timeouts,
        "errors": dict(run.errors),
        "foreign_frames": run.foreign_frames,
        **extra,
        "per_sender": rows,
    }


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine competes for the same cores: note how busy it was.
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def summary_text(report: dict[str, Any]) -> str:
    t = report["totals"]
    d, a = report["delivery_latency"], report["ack_latency"]
    names = report["name_uniqueness"]
    config = report["config"]
    lines = [
        f"{config['clients']} clients, {t['sent']} messages "
        f"({report['messages']['public_acknowledged']} public acknowledged), "
        f"{report['connections']} connections ("
        f"{config['sessions']} sessions each), {report['duration_s']:.0f} s, "
        f"{report['workers']} Lambda workers; {report['machine']['nproc']} x "
        f"{report['machine']['cpu']}, Python {report['machine']['python']}",
        f"acknowledged {t['acknowledged']}/{t['sent']} (private to a member who had left: "
        f"{report['private_refused_recipient_gone']}); delivered {t['delivered']} "
        f"(required {t['required']}); lost {t['lost']}, duplicated {t['duplicated']}, "
        f"out of order {t['out_of_order']}",
        f"names: {names['claims']} claims, {names['contested_claims_won']} contested won, "
        f"{names['contested_claims_refused']} refused; uniqueness violations "
        f"{names['violations']}; table after: {report.get('table_after', {})}",
        f"delivery latency p50 {d['p50_ms']} ms, p95 {d['p95_ms']} ms, p99 {d['p99_ms']} ms "
        f"(n={d['count']}); ack p50 {a['p50_ms']} ms, p95 {a['p95_ms']} ms, p99 {a['p99_ms']} ms",
        f"recovery after rejoin: {report['recovery']}; rate limited {report['rate_limited']}, "
        f"timeouts {report['timeouts']}, errors {report['errors'] or 0}",
    ]
    return "\n".join(lines)


def clean(report: dict[str, Any]) -> bool:
    t, names = report["totals"], report["name_uniqueness"]
    table = report.get("table_after", {})
    return (
        t["acknowledged"] == report["config"]["messages"]
        and t["sent"] == t["acknowledged"] + report["private_refused_recipient_gone"]
        and not report["errors"]
        and t["lost"] == t["duplicated"] == t["out_of_order"] == 0
        and names["violations"] == 0
        and not table.get("members")
        and not table.get("name_claims")
        and report.get("recovery", {}).get("missing_after_since", 0) == 0
    )


def table_after(dynamodb_endpoint: str, timeout_s: float = 30.0) -> dict[str, int]:
    """Members and name claims left in the chat's table once everyone has gone."""
    import boto3  # noqa: PLC0415

    db = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_endpoint,
        region_name=REGION,
        aws_access_key_id="load",
        aws_secret_access_key="load",
    )
    tables = [t for t in db.list_tables()["TableNames"] if "onnection" in t] or db.list_tables()[
        "TableNames"
    ]
    table = tables[0]
    # Every partition a member item can be in, whatever memberPartitions the run used.
    if str(ROOT / "lambda_src") not in sys.path:
        sys.path.insert(0, str(ROOT / "lambda_src"))
    from chat.store import MAX_MEMBER_PARTITIONS, member_partition  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    while True:
        members = sum(
            db.query(
                TableName=table,
                KeyConditionExpression="pk = :room AND begins_with(sk, :member)",
                ExpressionAttributeValues={
                    ":room": {"S": member_partition(shard)},
                    ":member": {"S": "MEMBER#"},
                },
                ConsistentRead=True,
            )["Count"]
            for shard in range(MAX_MEMBER_PARTITIONS)
        )
        if members == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    claims = 0
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "begins_with(pk, :name)",
        "ExpressionAttributeValues": {":name": {"S": "NAME#"}},
        "ConsistentRead": True,
    }
    while True:
        page = db.scan(**request)
        claims += page["Count"]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return {"members": members, "name_claims": claims}
