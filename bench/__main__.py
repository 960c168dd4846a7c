"""Run the benchmarks: `make bench` or `python -m bench`.

Writes bench/results/latest.json (every figure, with its runs, min and max, and the
machine) and docs/performance.md with its plots (docs/performance/*.png).

The @connections stand-in serves HTTPS, as API Gateway does, with a certificate from a test
CA (trustme) that the measured clients trust through `AWS_CA_BUNDLE`; `--plain-http`
measures everything over plain HTTP instead.

`--only rooms-units` measures only the rooms (protocol v2) units per action
(bench/rooms_units.py, about a minute): it replaces their figures in the results file and
their section of docs/performance.md, and leaves every other figure as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# The engine's recommended number of posts in flight (docs/performance.md says why).
CHOSEN_K = 192
TODAY_K = 32


def _progress(text: str) -> None:
    print(f"==> {text}", flush=True)


def _environment() -> None:
    sys.path.insert(0, str(ROOT / "lambda_src"))
    sys.path.insert(0, str(ROOT))
    # Everything runs against local stand-ins; these keep boto3 from looking for AWS.
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_SESSION_TOKEN="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        POWERTOOLS_METRICS_DISABLED="true",
        LOG_LEVEL="ERROR",
    )
    os.environ.pop("AWS_PROFILE", None)
    import logging  # noqa: PLC0415

    logging.getLogger("chat").setLevel(logging.ERROR)


class Plan:
    """What to measure: the full run, or a light one (tests, `--quick`)."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.runs = 1 if quick else 3
        self.k_values = [4, 8] if quick else [32, 64, 128, 192, 256]
        self.chosen_k = 8 if quick else CHOSEN_K
        self.today_k = 4 if quick else TODAY_K
        self.compare_k = 8 if quick else CHOSEN_K
        self.candidate_n = 40 if quick else 5000
        self.other_n = 20 if quick else 2000
        self.aiohttp_n = 20 if quick else 1000
        self.sizes = [5, 20] if quick else [10, 100, 250, 1000, 5000, 10000]
        self.today_sizes = [5, 20] if quick else [10, 100, 1000, 2000]
        self.sequential_sizes = [5] if quick else [10, 100]
        self.huge_n = 100 if quick else 100_000
        self.memory_sizes = [20] if quick else [1000, 10000]
        self.room_sizes = [3, 6] if quick else [10, 100, 1000]
        # Rooms (protocol v2): the rooms a connection is in, for a rename and $disconnect.
        self.room_counts = [1, 2] if quick else [1, 5]
        self.frame_sizes = [10, 50] if quick else [10, 50, 100, 200, 240, 500, 1000, 5000, 10000]
        self.sandbox_sizes = [2] if quick else [2, 10, 50]
        # Within the chat's burst of 10 messages per sender (senders take turns).
        self.sandbox_messages = 3 if quick else 20
        self.coldstart_runs = 1 if quick else 3
        # Broadcasts at Lambda's memory sizes (the CPU share each gets, by cgroup quota).
        self.memory_mb = [256, 1769] if quick else [256, 512, 1024, 1769]
        self.memory_k = [4] if quick else [32, 192]
        self.memory_n = [20] if quick else [250, 1000]
        # Sharded fan-out: broadcasts split into shards of the stack's default size.
        self.shard_size = 10 if quick else 250
        self.sharded_sizes = [40] if quick else [10_000, 100_000]
        # A cold worker's connections (TLS handshakes, with and without resumption).
        self.handshake_k = [4, 8] if quick else [TODAY_K, CHOSEN_K]
        # Where a post's CPU goes: one profiled send of this many, in the calling thread.
        self.profile_n = 10 if quick else 100


def fanout_section(plan: Plan, standin: Any, plain: Any = None) -> dict[str, Any]:
    """The fan-out figures against `standin`; `plain`, if given, is a plain-HTTP stand-in
    for one more candidate (the engine without TLS, to see what TLS costs a post)."""
    from bench import fanout_bench as fb  # noqa: PLC0415

    fb.quiet_telemetry()
    out: dict[str, Any] = {"rtt_seconds": fb.RTT_SECONDS, "candidates": [], "by_size": {}}
    candidates = [
        fb.Candidate(f"ours-k{k}", f"engine (http.client), k={k}", k, fb.ours)
        for k in plan.k_values
    ]
    # Fewer posts for the slow ones: each takes as long as the fastest, and CPU per
    # recipient does not depend on N once N is many times k.
    n_for: dict[str, int] = {
        c.key: plan.candidate_n if c.concurrency >= plan.compare_k else plan.other_n
        for c in candidates
    }
    k = plan.compare_k
    others = [
        fb.Candidate("urllib3", f"engine on urllib3's pool, k={k}", k, fb.ours_urllib3),
        fb.Candidate("aiohttp", f"asyncio + aiohttp, k={k}", k, fb.aiohttp_engine),
        fb.Candidate(
            f"boto3-k{plan.today_k}",
            f"boto3 client on a thread pool, k={plan.today_k} (the old path)",
            plan.today_k,
            fb.boto3_notifier,
        ),
        fb.Candidate(f"boto3-k{k}", f"boto3 client on a thread pool, k={k}", k, fb.boto3_notifier),
    ]
    for c in others:
        n_for[c.key] = plan.aiohttp_n if c.key == "aiohttp" else plan.other_n
    if standin.url.startswith("https:"):
        k = plan.chosen_k
        no_resume = fb.Candidate(
            f"ours-k{k}-no-resume",
            f"engine, k={k}, resume_sessions=False",
            k,
            functools.partial(fb.ours, resume_sessions=False),
        )
        others.insert(0, no_resume)
        n_for[no_resume.key] = plan.candidate_n
    runs: list[tuple[fb.Candidate, Any]] = [(c, standin) for c in candidates + others]
    if plain is not None:
        http = fb.Candidate(
            f"ours-k{plan.chosen_k}-http",
            f"engine, k={plan.chosen_k}, plain HTTP (no TLS)",
            plan.chosen_k,
            fb.ours,
        )
        n_for[http.key] = plan.candidate_n
        runs.insert(len(candidates), (http, plain))
    for candidate, target in runs:
        n = n_for[candidate.key]
        _progress(f"fan-out candidate: {candidate.label}, N={n}")
        figures = fb.run_engine(target, candidate, [n], plan.runs)[n]
        out["candidates"].append(
            {
                "key": candidate.key,
                "label": candidate.label,
                "k": candidate.concurrency,
                "n": n,
                **figures,
            }
        )
    series = [
        (
            "ours",
            fb.Candidate("ours", f"engine, k={plan.chosen_k}", plan.chosen_k, fb.ours),
            plan.sizes,
        ),
        (
            "boto3",
            fb.Candidate(
                "boto3", f"boto3 thread pool, k={plan.today_k}", plan.today_k, fb.boto3_notifier
            ),
            plan.today_sizes,
        ),
        (
            "sequential",
            fb.Candidate("sequential", "sequential (engine, k=1)", 1, fb.ours),
            plan.sequential_sizes,
        ),
    ]
    for key, candidate, sizes in series:
        _progress(f"broadcast time against N: {candidate.label}, N={sizes}")
        by_n = fb.run_engine(standin, candidate, sizes, plan.runs)
        out["by_size"][key] = {
            "label": candidate.label,
            "k": candidate.concurrency,
            "points": {str(n): f for n, f in by_n.items()},
        }
    out["floor"] = {str(n): fb.floor_seconds(n, plan.chosen_k) for n in [*plan.sizes, plan.huge_n]}
    out["ceiling"] = {str(n): fb.ceiling_seconds(n) for n in [*plan.sizes, plan.huge_n]}
    _progress(f"a {plan.huge_n:,}-member room (engine, k={plan.chosen_k})")
    huge = fb.Candidate("huge", "engine", plan.chosen_k, fb.ours)
    out["huge"] = {
        "n": plan.huge_n,
        "k": plan.chosen_k,
        **fb.run_engine(standin, huge, [plan.huge_n], plan.runs)[plan.huge_n],
    }
    for k in plan.handshake_k:
        _progress(f"a cold worker's connections, k={k}, TLS session resumption off and on")
        out.setdefault("handshakes", {})[str(k)] = fb.cold_handshakes(standin, k, plan.runs)
    _progress(f"where a post's CPU goes: cProfile of one send of {plan.profile_n} (k=1)")
    out["profile"] = fb.profile_send(standin, plan.profile_n)
    out["memory"] = memory_section(plan, standin)
    out["memory_sizes"] = memory_sizes_section(plan, standin)
    _progress(f"sharded fan-out: the caller's cost, N={plan.sharded_sizes}")
    out["sharding"] = {
        str(n): fb.sharding_costs(n, plan.shard_size, plan.runs) for n in plan.sharded_sizes
    }
    return out


def memory_sizes_section(plan: Plan, standin: Any) -> dict[str, Any]:
    """Broadcast time with the CPU share of each memory size (bench/cpu_share.py)."""
    from bench import cpu_share  # noqa: PLC0415

    why_not = cpu_share.available()
    if why_not is not None:
        _progress(f"memory sizes: skipped ({why_not}); the report keeps to the model")
        return {"unavailable": why_not}
    rows = []
    for memory_mb in plan.memory_mb:
        for n in plan.memory_n:
            for k in plan.memory_k:
                _progress(f"memory size {memory_mb} MB: N={n}, k={k}")
                standin.reset()
                rows.append(cpu_share.measure(standin.url, memory_mb, n, k, plan.runs))
    return {"rows": rows}


def memory_section(plan: Plan, standin: Any) -> dict[str, Any]:
    """Python heap allocated during one send (tracemalloc peak), by room size."""
    from bench import fanout_bench as fb  # noqa: PLC0415
    from bench.measure import summary  # noqa: PLC0415

    out: dict[str, Any] = {}
    engine = fb.ours(standin.url, plan.chosen_k)
    try:
        for n in plan.memory_sizes:
            _progress(f"heap during one send, N={n}")
            batch = [fb.public_frame()]
            peaks = []
            for _ in range(plan.runs):
                deliveries = {f"conn{i:06d}AAAA=": batch for i in range(n)}
                engine.send(dict(list(deliveries.items())[: plan.chosen_k]))
                tracemalloc.start()
                engine.send(deliveries)
                peaks.append(float(tracemalloc.get_traced_memory()[1]))
                tracemalloc.stop()
                standin.reset()
            out[str(n)] = summary(peaks)
    finally:
        engine.shutdown()
    return out


@contextlib.contextmanager
def _standins(cpu: int | None, *, tls: bool) -> Iterator[tuple[Any, Any]]:
    """The @connections stand-in (HTTPS with `tls`, its CA trusted through AWS_CA_BUNDLE
    while it runs) and, with `tls`, a plain-HTTP one too; both answer after RTT_SECONDS."""
    from bench.fanout_bench import RTT_SECONDS  # noqa: PLC0415
    from bench.standin import StandinProcess  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        standin = stack.enter_context(StandinProcess(cpu, tls=tls))
        plain = stack.enter_context(StandinProcess(cpu)) if tls else None
        if standin.ca_path is not None:
            # botocore, the engine and the candidates trust the stand-in's test CA.
            os.environ["AWS_CA_BUNDLE"] = standin.ca_path
            stack.callback(os.environ.pop, "AWS_CA_BUNDLE", None)
        for each in (standin, plain):
            if each is not None:
                each.delay(RTT_SECONDS)
        yield standin, plain


def sandbox_section(plan: Plan, results: dict[str, Any], timed: Any) -> None:
    """The whole chat through the sandbox; a run that fails (e.g. a WebSocket handshake
    timing out on a busy machine) is reported as failed, without losing the other figures."""
    from bench import scenarios  # noqa: PLC0415

    try:
        results["sandbox"] = timed(
            "sandbox",
            lambda: scenarios.sandbox_latencies(
                plan.sandbox_sizes, plan.sandbox_messages, plan.runs
            ),
        )
    except (OSError, RuntimeError) as error:
        results["sandbox_error"] = f"{type(error).__name__}: {error}"


def _transport_facts(url: str) -> dict[str, Any]:
    """What the measured posts went over: HTTPS (protocol, cipher, certificate) or HTTP."""
    from bench.fanout_bench import tls_session_facts  # noqa: PLC0415

    if not url.startswith("https:"):
        return {"tls": False}
    return {
        "tls": True,
        **tls_session_facts(url),
        "certificate": "RSA 2048 for 127.0.0.1, sent with an intermediate; test root (trustme)",
    }


ROOMS_UNITS = "rooms-units"


def _rooms_units(plan: Plan, template: Path) -> dict[str, Any]:
    from bench import rooms_units  # noqa: PLC0415
    from bench.measure import machine  # noqa: PLC0415

    return {
        **rooms_units.rooms_units(template, plan.room_sizes, plan.room_counts),
        "measured_utc": machine()["date_utc"],
        "quick": plan.quick,
    }


def _only_rooms_units(args: argparse.Namespace) -> int:
    """`--only rooms-units`: measure the rooms units; put them into the results file and
    their section into the report, leaving the rest of both as they were."""
    from bench import report  # noqa: PLC0415
    from bench.local_aws import chat_template  # noqa: PLC0415
    from sandbox.template import TemplateError  # noqa: PLC0415

    if not args.json.exists() or not args.markdown.exists():
        print(f"--only needs a full run's {args.json} and {args.markdown}", file=sys.stderr)
        return 2
    try:
        template = chat_template()
    except TemplateError as error:
        print(error, file=sys.stderr)
        return 2
    plan = Plan(args.quick)
    results = json.loads(args.json.read_text())
    _progress(
        f"rooms (protocol v2): DynamoDB units per action, N = {plan.room_sizes}, "
        f"R = {plan.room_counts}"
    )
    started = time.perf_counter()
    results["rooms_v2"] = _rooms_units(plan, template)
    results.setdefault("timings", {})["rooms_v2"] = time.perf_counter() - started
    args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    report.write_rooms_units(results, args.markdown, args.plots)
    print(f"Results: {args.json}\nReport: {args.markdown}\nPlot: {args.plots}")
    return 0


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one run (a smoke run)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--plots", type=Path, default=ROOT / "docs" / "performance")
    parser.add_argument("--skip-sandbox", action="store_true", help="leave out the sandbox run")
    parser.add_argument(
        "--plain-http", action="store_true", help="a plain-HTTP stand-in instead of HTTPS"
    )
    parser.add_argument(
        "--only",
        choices=[ROOMS_UNITS],
        help="measure only this part; the other figures of --json and --markdown are kept",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    _environment()
    if args.only == ROOMS_UNITS:
        return _only_rooms_units(args)

    from bench import coldstart, report, room_bench  # noqa: PLC0415
    from bench.local_aws import chat_table_process, chat_template  # noqa: PLC0415
    from bench.measure import MEASURED_CPU, STANDIN_CPU, cores, machine, pin  # noqa: PLC0415
    from chat.settings import Limits  # noqa: PLC0415
    from sandbox.template import TemplateError  # noqa: PLC0415

    plan = Plan(args.quick)
    started = time.perf_counter()
    try:
        template = chat_template()
    except TemplateError as error:
        print(error, file=sys.stderr)
        return 2
    pin(MEASURED_CPU)
    other = STANDIN_CPU if cores() > 1 else None
    results: dict[str, Any] = {
        "machine": machine(),
        "quick": plan.quick,
        "runs": plan.runs,
        "template": str(template.relative_to(ROOT))
        if template.is_relative_to(ROOT)
        else str(template),
        "chosen_k": plan.chosen_k,
        "today_k": plan.today_k,
        "timings": {},
    }

    def timed(name: str, run: Any) -> Any:
        t0 = time.perf_counter()
        value = run()
        results["timings"][name] = time.perf_counter() - t0
        return value

    with _standins(other, tls=not args.plain_http) as (standin, plain):
        results["transport"] = _transport_facts(standin.url)
        results["fanout"] = timed("fanout", lambda: fanout_section(plan, standin, plain))
        _progress("rooms: DynamoDB units per action")
        results["rooms"] = timed(
            "rooms",
            lambda: room_bench.room_actions(
                plan.room_sizes, 1, template, standin.url, plan.chosen_k
            ),
        )
        biggest = max(plan.room_sizes)
        _progress(f"rooms: the same actions with memberPartitions = 4, N = {biggest:,}")
        results["rooms_partitioned"] = timed(
            "rooms_partitioned",
            lambda: room_bench.room_actions(
                [biggest], 1, template, standin.url, plan.chosen_k, member_partitions=4
            ),
        )
        _progress(
            f"rooms (protocol v2): DynamoDB units per action, N = {plan.room_sizes}, "
            f"R = {plan.room_counts}"
        )
        results["rooms_v2"] = timed("rooms_v2", lambda: _rooms_units(plan, template))
        _progress("cold start")

        def cold() -> dict[str, Any]:
            with chat_table_process(template) as (client, table):
                endpoint = client.meta.endpoint_url
                return {
                    "imports": coldstart.import_times(plan.coldstart_runs),
                    "assets": coldstart.asset_sizes(),
                    "first_invocation": coldstart.first_invocation(
                        plan.coldstart_runs,
                        table=table,
                        dynamodb_endpoint=endpoint,
                        connections_url=standin.url,
                        concurrency=plan.chosen_k,
                    ),
                }

        results["cold_start"] = timed("cold_start", cold)
    results["frames"] = room_bench.frame_bytes(plan.frame_sizes, Limits().member_list_threshold)
    if not args.skip_sandbox:
        _progress("the whole chat through the sandbox")
        sandbox_section(plan, results, timed)
    results["timings"]["total"] = time.perf_counter() - started
    results["derived"] = report.derive(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    report.write(results, args.markdown, args.plots)
    print(f"Results: {args.json}\nReport: {args.markdown}\nPlots: {args.plots}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
