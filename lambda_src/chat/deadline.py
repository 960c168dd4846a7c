"""One deadline per invocation: the time the function may still spend posting.

Lambda stops an invocation at its timeout, whatever it is doing; a broadcast cut off there
never reports which members it missed, and the sender's acknowledgement never goes out.
So each invocation takes its deadline from the Lambda context's remaining time, minus a
margin for the work after the posts (the acknowledgement, the log line), and everything
that waits (a post, a retry's backoff, a fan-out worker's invocation, a shard's start)
waits at most until then. What cannot be posted in time is reported failed, and members
recover it through `seq`/`prev` and `history` (docs/reliability.md).

The deadline travels in a context variable set by the entry points (`handler.py`); code
that hands work to threads reads it first (`current()`) and passes it along, since pool
threads do not inherit the caller's context.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# Left for the work after the posts: an acknowledgement, the request's log line.
DEFAULT_MARGIN_SECONDS = 1.0

Clock = Callable[[], float]


class Deadline:
    """A point on a monotonic clock, or none (`unlimited()`)."""

    __slots__ = ("_at", "_clock")

    def __init__(self, at: float, clock: Clock = time.monotonic) -> None:
        self._at = at
        self._clock = clock

    @classmethod
    def unlimited(cls) -> Deadline:
        return cls(math.inf)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + max(0.0, seconds), clock)

    @classmethod
    def from_context(
        cls,
        context: Any,
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
        clock: Clock = time.monotonic,
    ) -> Deadline:
        """From a Lambda context's `get_remaining_time_in_millis()`; unlimited without one."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:
            return cls.unlimited()
        try:
            seconds = float(remaining()) / 1000.0
        except (TypeError, ValueError):
            return cls.unlimited()
        return cls.after(seconds - margin_seconds, clock)

    @property
    def bounded(self) -> bool:
        return self._at != math.inf

    def remaining(self) -> float:
        """Seconds left (never negative; `inf` when unlimited)."""
        if not self.bounded:
            return math.inf
        return max(0.0, self._at - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, seconds: float) -> float:
        """`seconds`, or what is left if that is less."""
        return min(seconds, self.remaining())

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"


_UNLIMITED = Deadline.unlimited()
_current: ContextVar[Deadline | None] = ContextVar("chat_deadline", default=None)


def current() -> Deadline:
    """This invocation's deadline (unlimited outside an invocation, e.g. in tests)."""
    return _current.get() or _UNLIMITED


@contextmanager
def running(deadline: Deadline) -> Iterator[Deadline]:
    """Make `deadline` the current one for the duration of the block."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)
