"""The benchmark harness sets the handler's environment as a Lambda would; undo it after
each test so that nothing it sets (LOG_LEVEL, TABLE_NAME, ...) leaks into later suites."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def restore_environment() -> Iterator[None]:
    saved = dict(os.environ)
    affinity = os.sched_getaffinity(0)
    yield
    os.environ.clear()
    os.environ.update(saved)
    os.sched_setaffinity(0, affinity)
    import handler  # noqa: PLC0415

    handler.reset()
