"""Fan-out measurements: the candidate engines, broadcast time against N, a 100,000 room.

Every engine posts to the @connections stand-in running in another process (on the other
core), which answers each post after `RTT_SECONDS`, over HTTPS by default (as API Gateway;
the clients trust the stand-in's test CA through `AWS_CA_BUNDLE`, which `ca_bundle()`
reads). This process is pinned to one core; CPU per recipient is this process's user +
system CPU during one `send`, divided by N. Before each measured `send`, warm-up sends open
the engine's connections (a warm Lambda execution environment), then the stand-in's
counters are reset; the connections the measured `send` still had to open are counted.

`cold_handshakes` measures what a cold worker pays to open its connections (TLS handshakes,
with and without session resumption); `profile_send` where one send's CPU goes.
"""

from __future__ import annotations

import cProfile
import functools
import gc
import os
import pstats
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.measure import cpu_seconds, repeat, summary

RTT_SECONDS = 0.020
WARM_UPS = 6
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


def ca_bundle() -> str | None:
    """The CA bundle the clients trust (the stand-in's test CA over HTTPS)."""
    return os.environ.get("AWS_CA_BUNDLE") or None


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


def ours(url: str, k: int, *, resume_sessions: bool = True) -> Any:
    from chat.fanout import FanoutEngine  # noqa: PLC0415

    return FanoutEngine(
        url,
        region=REGION,
        credentials=_credentials(),
        concurrency=k,
        resume_sessions=resume_sessions,
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
        transport=Urllib3Transport(url, maxsize=k, ca_certs=ca_bundle()),
        on_delivery=_telemetry_hook(),
    )


def aiohttp_engine(url: str, k: int) -> Any:
    from bench.candidates import AiohttpFanout  # noqa: PLC0415

    return AiohttpFanout(
        url, region=REGION, credentials=_credentials(), concurrency=k, ca_certs=ca_bundle()
    )


def boto3_notifier(url: str, k: int) -> Any:
    """Today's path: chat.notifier.ConnectionsNotifier on a boto3 client, as handler.py
    builds it (standard retries, 3 attempts; a pool as large as the thread pool). botocore
    verifies TLS against `AWS_CA_BUNDLE` itself."""
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
    # Warm-ups of up to 2k until one opens no connection (at most WARM_UPS): a thread pool
    # starts a thread only when none is idle, so on a busy core one send may leave some of
    # the k threads (and their connections) unstarted.
    warm = dict(list(deliveries.items())[: min(n, 2 * concurrency)])
    for _ in range(WARM_UPS):
        standin.reset()
        engine.send(warm)
        if not standin.stats()["connections"]:
            break
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
        "new_connections": float(stats["connections"]),
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


def tls_session_facts(url: str, reads: int = 200) -> dict[str, Any]:
    """What one engine connection to the stand-in negotiated (protocol, cipher), and what
    one read of its `SSLSocket.session` costs (CPU ms, the median of `reads` after a first
    answer): `_Sessions.keep` makes one after every answer when resumption is on."""
    from chat.fanout import HttpClientTransport  # noqa: PLC0415

    if not url.startswith("https:"):
        return {}
    transport = HttpClientTransport(url, resume_sessions=False)
    try:
        transport.request("GET", urlsplit(url).path + "/@connections/probe", None, {}, 5.0)
        conn = transport._connection(5.0)  # the benchmark looks inside
        sock: Any = conn.sock
        cipher = sock.cipher()
        times = []
        for _ in range(reads):
            started = time.process_time()
            sock.session  # noqa: B018 (the read is what is measured)
            times.append((time.process_time() - started) * 1000)
        return {
            "version": sock.version(),
            "cipher": cipher[0] if cipher else "",
            "session_read_ms": summary(times)["median"],
        }
    finally:
        transport.close()


def _deliveries(n: int, prefix: str = "conn") -> dict[str, list[Any]]:
    batch = [public_frame()]
    return {f"{prefix}{i:06d}AAAA=": batch for i in range(n)}


def _timed_send(standin: Any, engine: Any, deliveries: Any) -> dict[str, float]:
    """One measured send: wall time, this process's CPU, connections the stand-in accepted
    and how many of them resumed a TLS session, connections the engine opened."""
    transport = engine._transport  # the benchmark looks inside
    made = transport.connections_made
    standin.reset()
    gc.collect()
    started_cpu = cpu_seconds()
    started = time.perf_counter()
    report = engine.send(deliveries)
    elapsed = time.perf_counter() - started
    used = cpu_seconds() - started_cpu
    stats = standin.stats()
    if report.sent != len(deliveries):
        raise RuntimeError(f"lost posts: {report}")
    return {
        "seconds": elapsed,
        "cpu_ms": used * 1000,
        "connections": float(stats["connections"]),
        "resumed": float(stats["resumed"]),
        "connections_made": float(transport.connections_made - made),
    }


HANDSHAKE_VARIANTS = {
    # name: (resume_sessions, a first send of 1 before the measured send of k)
    "cold_off": (False, False),
    "cold_on": (True, False),
    "first_off": (False, True),
    "first_on": (True, True),
}


def cold_handshakes(standin: Any, k: int, runs: int) -> dict[str, Any]:
    """What a cold engine (k workers, no connection yet) pays to open its connections, with
    and without TLS session resumption.

    TLS 1.3 sends session tickets after the handshake, so a client has one to offer only
    after its first answer. "cold_*": a fresh engine's send of k: its connections open at
    once, mostly before any answer, so resumption can help only those opened late (the
    stand-in counts how many resumed). "first_*": a fresh engine's send of 1 (one
    connection, whose answer brings the tickets), then the measured send of k, whose new
    connections can all resume: the case resumption is for. "warm": the same send of k
    once every connection is open (warm-ups until one opens none), with ("warm_on") and
    without ("warm_off") resumption, to subtract: what a new connection costs is (variant -
    warm with the same setting) / connections opened, handshake and worker thread start
    together (every variant starts its threads alike, so the differences between variants
    are the handshakes'). warm_on - warm_off is what resumption costs a warm engine's posts.
    """
    names = [*HANDSHAKE_VARIANTS, "warm_off", "warm_on"]
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for run in range(runs):
        for name, (resume, first) in HANDSHAKE_VARIANTS.items():
            engine = ours(standin.url, k, resume_sessions=resume)
            try:
                if first:
                    engine.send(_deliveries(1, f"first{run}"))
                rows[name].append(_timed_send(standin, engine, _deliveries(k)))
                if first:
                    for _ in range(WARM_UPS):
                        if not _timed_send(standin, engine, _deliveries(k))["connections"]:
                            break
                    warm = "warm_on" if resume else "warm_off"
                    rows[warm].append(_timed_send(standin, engine, _deliveries(k)))
            finally:
                engine.shutdown()
    out: dict[str, Any] = {"k": k}
    for name, measured in rows.items():
        figures: dict[str, Any] = {key: summary([r[key] for r in measured]) for key in measured[0]}
        if not name.startswith("warm"):
            warm_cpu = summary([r["cpu_ms"] for r in rows["warm_" + name.split("_")[1]]])
            figures["cpu_ms_per_connection"] = summary(
                [(r["cpu_ms"] - warm_cpu["median"]) / max(1.0, r["connections"]) for r in measured]
            )
        out[name] = figures
    return out


# Where a post's CPU goes, by the functions that do each part (cumulative time).
PROFILE_STAGES = {
    "the whole post (FanoutEngine._request_with_retries)": ("fanout.py", "_request_with_retries"),
    "signing (FanoutEngine._signed_headers: AWSRequest, SigV4Auth)": (
        "fanout.py",
        "_signed_headers",
    ),
    "HttpClientTransport.request": ("fanout.py", "request"),
    "reuse check (HttpClientTransport._connection)": ("fanout.py", "_connection"),
    "writing the request (HTTPConnection.request)": ("http/client.py", "request"),
    "reading the answer (HTTPConnection.getresponse)": ("http/client.py", "getresponse"),
    "keeping the TLS session (_Sessions.keep)": ("fanout.py", "keep"),
    "request id (uuid.uuid4)": ("uuid.py", "uuid4"),
}


def profile_send(standin: Any, n: int) -> dict[str, Any]:
    """Where one send's CPU goes: cProfile of a warm engine's send of n in the calling
    thread (k = 1: cProfile sees only the thread it runs in, and with one worker the engine
    posts from the caller). The same send unprofiled gives k = 1's CPU per recipient, to
    set against the threaded figures (the difference is the cost of k threads)."""
    engine = ours(standin.url, 1)
    try:
        engine.send(_deliveries(1, "warm"))
        plain = _timed_send(standin, engine, _deliveries(n))
        profiler = cProfile.Profile(time.process_time)  # CPU, not the wait for answers
        standin.reset()
        profiler.enable()
        engine.send(_deliveries(n))
        profiler.disable()
    finally:
        engine.shutdown()
    stats = pstats.Stats(profiler)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(row[2] for row in table.values())

    def name(key: tuple[str, int, str]) -> str:
        filename, line, function = key
        if filename == "~":  # a built-in
            return function
        parts = filename.replace(os.sep, "/").split("/")
        short = "/".join(parts[-2:]) if "site-packages" in filename else parts[-1]
        return f"{short}:{line}({function})"

    def rows(by: int, count: int) -> list[dict[str, Any]]:
        ranked = sorted(table.items(), key=lambda item: item[1][by], reverse=True)[:count]
        return [
            {
                "function": name(key),
                "calls_per_post": row[1] / n,
                "own_ms_per_post": row[2] / n * 1000,
                "cumulative_ms_per_post": row[3] / n * 1000,
            }
            for key, row in ranked
        ]

    def stage(pattern: tuple[str, str]) -> float:
        """Cumulative CPU ms per post of the functions named `pattern` (file, function)."""
        seconds: float = sum(
            row[3]
            for (filename, _, function), row in table.items()
            if filename.endswith(pattern[0]) and function == pattern[1]
        )
        return seconds / n * 1000

    return {
        "n": n,
        "cpu_ms_per_recipient_k1": plain["cpu_ms"] / n,
        "profiled_ms_per_post": total / n * 1000,
        "stages": {label: stage(pattern) for label, pattern in PROFILE_STAGES.items()},
        "by_own_time": rows(2, 15),
    }
