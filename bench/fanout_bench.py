"""Fan-out measurements: the candidate engines, broadcast time against N, a 100,000 room.

Every engine posts to the @connections stand-in running in another process (on the other
core), which answers each post after `RTT_SECONDS`. This process is pinned to one core; CPU
per recipient is this process's user + system CPU during one `send`, divided by N. Before
each measured `send`, a warm-up `send` opens the engine's connections (a warm Lambda
execution environment), then the stand-in's counters are reset.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.measure import cpu_seconds, repeat

RTT_SECONDS = 0.020
ACCOUNT_CEILING_PER_SECOND = 10_000
REGION = "us-east-1"


@dataclass(frozen=True)
class Candidate:
    """An engine to measure: `make(url, k)` returns an object with `send` (and maybe
    `shutdown`)."""

    key: str
    label: str
    concurrency: int
    make: Callable[[str, int], Any]


def _credentials() -> Any:
    import boto3  # noqa: PLC0415

    return boto3.Session().get_credentials()


def _telemetry_hook() -> Any:
    from chat import telemetry  # noqa: PLC0415

    return telemetry.record_delivery


def quiet_telemetry() -> None:
    """Both engines report each delivery to chat.telemetry (ConnectionsNotifier itself, the
    engine through `on_delivery`), so both pay for it; Powertools prints its EMF lines
    whenever 100 values pile up, which would fill the benchmark's output: keep the work,
    drop the printing."""
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415

    from chat import telemetry  # noqa: PLC0415

    record = telemetry.record_delivery
    if getattr(record, "quiet", False):
        return

    def quiet(**figures: Any) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            record(**figures)

    quiet.quiet = True  # type: ignore[attr-defined]
    telemetry.record_delivery = quiet


def ours(url: str, k: int) -> Any:
    from chat.fanout import FanoutEngine  # noqa: PLC0415

    return FanoutEngine(
        url,
        region=REGION,
        credentials=_credentials(),
        concurrency=k,
        on_delivery=_telemetry_hook(),
    )


def ours_urllib3(url: str, k: int) -> Any:
    from bench.candidates import Urllib3Transport  # noqa: PLC0415
    from chat.fanout import FanoutEngine  # noqa: PLC0415

    return FanoutEngine(
        url,
        region=REGION,
        credentials=_credentials(),
        concurrency=k,
        transport=Urllib3Transport(url, maxsize=k),
        on_delivery=_telemetry_hook(),
    )


def aiohttp_engine(url: str, k: int) -> Any:
    from bench.candidates import AiohttpFanout  # noqa: PLC0415

    return AiohttpFanout(url, region=REGION, credentials=_credentials(), concurrency=k)


def boto3_notifier(url: str, k: int) -> Any:
    """Today's path: chat.notifier.ConnectionsNotifier on a boto3 client, as handler.py
    builds it (standard retries, 3 attempts; a pool as large as the thread pool)."""
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    from chat.notifier import ConnectionsNotifier  # noqa: PLC0415

    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=url,
        region_name=REGION,
        config=Config(
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=k,
            connect_timeout=3,
            read_timeout=5,
        ),
    )
    return ConnectionsNotifier(client, concurrency=k)


def public_frame() -> dict[str, Any]:
    """A typical broadcast: a public message of a few words."""
    from chat import frames  # noqa: PLC0415

    stamp = frames.Stamp(seq=4242, message_id="0123456789abcdef", ts=1_795_000_000_000, prev=4241)
    return frames.public_message("Alice", "Hello everyone, how is it going?", stamp)


def measure_send(standin: Any, engine: Any, n: int, concurrency: int) -> dict[str, float]:
    """One broadcast of `public_frame()` to n connections: wall time, CPU, what arrived."""
    batch = [public_frame()]
    deliveries = {f"conn{i:06d}AAAA=": batch for i in range(n)}
    warm = dict(list(deliveries.items())[: min(n, concurrency)])
    engine.send(warm)
    standin.reset()
    gc.collect()
    started_cpu = cpu_seconds()
    started = time.perf_counter()
    report = engine.send(deliveries)
    elapsed = time.perf_counter() - started
    used = cpu_seconds() - started_cpu
    stats = standin.stats()
    if report.sent != n or stats["posts"] != n:
        raise RuntimeError(f"lost posts: {report}, stand-in saw {stats['posts']} of {n}")
    return {
        "seconds": elapsed,
        "cpu_seconds": used,
        "cpu_ms_per_recipient": used / n * 1000,
        "posts_per_second": n / elapsed,
        "max_in_flight": float(stats["max_in_flight"]),
    }


def run_engine(
    standin: Any, candidate: Candidate, sizes: list[int], runs: int
) -> dict[int, dict[str, dict[str, float]]]:
    """Each size `runs` times with one engine (kept across runs, as a warm Lambda keeps it)."""
    engine = candidate.make(standin.url, candidate.concurrency)
    try:
        return {
            n: repeat(
                runs, functools.partial(measure_send, standin, engine, n, candidate.concurrency)
            )
            for n in sizes
        }
    finally:
        if hasattr(engine, "shutdown"):
            engine.shutdown()


def floor_seconds(n: int, k: int, rtt: float = RTT_SECONDS) -> float:
    """The network floor: ceil(N / k) rounds of one round trip each."""
    return -(-n // k) * rtt


def ceiling_seconds(n: int) -> float:
    """The account ceiling: N posts at 10,000 requests/s (shared by the whole account)."""
    return n / ACCOUNT_CEILING_PER_SECOND


def sharding_costs(n: int, shard_size: int, runs: int) -> dict[str, Any]:
    """What sharding costs the calling invocation for a broadcast to `n` (chat/sharding.py):
    splitting the deliveries and writing each worker's request as the Invoke API's JSON body
    (what `LambdaShardInvoker` sends), on this pinned core. The posts themselves are each
    shard's broadcast, measured above."""
    import json  # noqa: PLC0415

    from chat.sharding import encode_request, split  # noqa: PLC0415

    batch = [public_frame()]
    deliveries = {f"conn{i:06d}AAAA=": batch for i in range(n)}
    sizes: list[int] = []

    def measure() -> dict[str, float]:
        gc.collect()
        started = cpu_seconds()
        _, *others = split(deliveries, shard_size)
        bodies = [
            json.dumps(encode_request(s), ensure_ascii=False, separators=(",", ":")).encode()
            for s in others
        ]
        cpu = cpu_seconds() - started
        sizes[:] = [len(b) for b in bodies]
        return {"caller_cpu_ms": cpu * 1000}

    figures: dict[str, Any] = repeat(runs, measure)
    figures.update(
        n=n,
        shard_size=shard_size,
        workers=len(sizes),
        max_request_bytes=max(sizes, default=0),
    )
    return figures
