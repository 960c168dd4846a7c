"""Measuring on a noisy machine: one core for us, the other for the stand-ins; medians.

Lambda gives a function at 1,769 MB about one vCPU, so the process that runs our code is
pinned to one core (`MEASURED_CPU`) and the stand-ins (@connections, DynamoDB, the
sandbox) run in other processes on the other (`STANDIN_CPU`), so that their CPU is not
counted as ours. Every figure is the median of `repeats` runs, with the min and the max.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

MEASURED_CPU = 0
STANDIN_CPU = 1


def cores() -> int:
    return os.cpu_count() or 1


def pin(cpu: int) -> None:
    """Pin this process to one core, when the machine has it (no-op elsewhere)."""
    if hasattr(os, "sched_setaffinity") and cpu < cores():
        os.sched_setaffinity(0, {cpu})


@contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """Run the block on `cpu` (children started in it inherit that core), then go back."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    pin(cpu)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def cpu_seconds() -> float:
    """User + system CPU of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summary(values: list[float]) -> dict[str, float]:
    """{"median", "min", "max", "runs"} of the values."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def repeat(runs: int, measure: Callable[[], dict[str, float]]) -> dict[str, dict[str, float]]:
    """Run `measure` `runs` times; each key's summary over the runs."""
    results = [measure() for _ in range(runs)]
    return {key: summary([r[key] for r in results]) for key in results[0]}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith(("model name", "Model")):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "arch": platform.machine(),
        "cpu_model": model or platform.processor(),
        "cores": cores(),
        "kernel": platform.release(),
        "measured_on_core": MEASURED_CPU if cores() > 1 else None,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
