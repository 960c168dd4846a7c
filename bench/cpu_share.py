"""Broadcast time at Lambda's memory sizes: the engine run with the CPU share each size gets.

Lambda allocates CPU in proportion to memory: 1,769 MB is one vCPU, so 256 MB is about
14.5% of one (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). Here
a child process runs the engine pinned to the measured core and inside its own cgroup whose
CPU quota is that share (cgroup v1 `cpu.cfs_quota_us`, or v2 `cpu.max`), so the broadcast
runs on the CPU a function of that size would have. This is an emulation: Lambda's own
scheduler is not CFS quotas, and a Graviton vCPU is not this core.

It needs permission to create cgroups (root on a machine with the cpu controller mounted);
without it, `available()` says why and the report keeps to the model.

Run as a child: `python -m bench.cpu_share --url URL --n N --k K --share S --runs R`; its
last line is JSON: {"seconds": [...], "cpu_seconds": [...], "sent": [...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import MEASURED_CPU, cpu_seconds, pin, summary

ROOT = Path(__file__).resolve().parent.parent
ONE_VCPU_MB = 1769
PERIOD_US = 100_000
V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")


def share_of(memory_mb: int) -> float:
    """The CPU a function of `memory_mb` gets, as a fraction of one vCPU (at most 1)."""
    return min(1.0, memory_mb / ONE_VCPU_MB)


def _root() -> tuple[Path, str] | None:
    if (V2 / "cgroup.controllers").exists() and "cpu" in (V2 / "cgroup.controllers").read_text():
        return V2, "v2"
    if (V1 / "cpu.cfs_quota_us").exists():
        return V1, "v1"
    return None


def available() -> str | None:
    """None when CPU quotas can be set here; else why not."""
    root = _root()
    if root is None:
        return "no cgroup cpu controller is mounted"
    probe = root[0] / f"chat-bench-probe-{os.getpid()}"
    sleeper = subprocess.Popen(["sleep", "5"])  # a process to move in and out
    try:
        probe.mkdir()
        try:
            quota = "cpu.cfs_quota_us" if root[1] == "v1" else "cpu.max"
            (probe / quota).write_text("50000" if root[1] == "v1" else "50000 100000")
            (probe / "cgroup.procs").write_text(str(sleeper.pid))
            (root[0] / "cgroup.procs").write_text(str(sleeper.pid))
        finally:
            sleeper.kill()
            sleeper.wait()
            for _ in range(50):
                try:
                    probe.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)
    except OSError as error:
        return f"cannot set a CPU quota under {root[0]}: {error.strerror}"
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
    return None


class _Quota:
    """This process in a new cgroup with `share` of one CPU; back to the parent on exit."""

    def __init__(self, share: float) -> None:
        found = _root()
        if found is None:
            raise RuntimeError("no cgroup cpu controller")
        self.root, self.version = found
        self.path = self.root / f"chat-bench-{os.getpid()}"
        self.share = share

    def __enter__(self) -> _Quota:
        self.path.mkdir()
        quota = max(1000, int(self.share * PERIOD_US))
        if self.version == "v1":
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        (self.path / "cgroup.procs").write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        # Every thread of this process moves with it (cgroup.procs), then the group goes.
        (self.root / "cgroup.procs").write_text(str(os.getpid()))
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.02)


def _child(url: str, n: int, k: int, share: float, runs: int) -> dict[str, list[float]]:
    from bench.fanout_bench import ours, public_frame  # noqa: PLC0415

    pin(MEASURED_CPU)
    out: dict[str, list[float]] = {"seconds": [], "cpu_seconds": [], "sent": []}
    with _Quota(share):
        engine = ours(url, k)
        try:
            batch = [public_frame()]
            deliveries = {f"conn{i:06d}AAAA=": batch for i in range(n)}
            engine.send(dict(list(deliveries.items())[: min(n, k)]))  # warm: open sockets
            for _ in range(runs):
                started_cpu = cpu_seconds()
                started = time.perf_counter()
                report = engine.send(deliveries)
                out["seconds"].append(time.perf_counter() - started)
                out["cpu_seconds"].append(cpu_seconds() - started_cpu)
                out["sent"].append(float(report.sent))
        finally:
            engine.shutdown()
    return out


def measure(url: str, memory_mb: int, n: int, k: int, runs: int) -> dict[str, Any]:
    """A broadcast to `n` at k posts in flight with the CPU of a `memory_mb` function: the
    median, min and max of `runs` broadcasts, in one child process (a warm environment)."""
    share = share_of(memory_mb)
    command = [
        sys.executable,
        "-m",
        "bench.cpu_share",
        *("--url", url, "--n", str(n), "--k", str(k)),
        *("--share", f"{share:.4f}", "--runs", str(runs)),
    ]
    env = {
        # Fake credentials: the stand-in checks nothing, and nothing may reach AWS.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'lambda_src'}",
    }
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, check=False, cwd=ROOT, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.cpu_share failed: {result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    if any(sent != n for sent in figures["sent"]):
        raise RuntimeError(f"lost posts at {memory_mb} MB: {figures['sent']} of {n}")
    return {
        "memory_mb": memory_mb,
        "share": share,
        "n": n,
        "k": k,
        "seconds": summary(figures["seconds"]),
        "cpu_ms_per_recipient": summary([c / n * 1000 for c in figures["cpu_seconds"]]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_share", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--share", type=float, required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.url, args.n, args.k, args.share, args.runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
