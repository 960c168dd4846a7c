"""Hypothesis profiles: `dev` (the default, a short search for the inner loop) and `ci` (the
full search), chosen by the environment variable HYPOTHESIS_PROFILE.

A test that sets `max_examples` itself overrides the profile, so such tests take their
count from `examples(full)`: `full` under `ci`, a fraction of it under `dev`.
See https://hypothesis.readthedocs.io/en/latest/reference/api.html#settings-profiles
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILES = ("dev", "ci")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev") or "dev"
if PROFILE not in PROFILES:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r}: expected one of {', '.join(PROFILES)}")

# Under dev, a test runs this fraction of its full count of examples (at least DEV_MINIMUM).
DEV_FRACTION = 0.2
DEV_MINIMUM = 5

settings.register_profile("ci", max_examples=100)
settings.register_profile("dev", max_examples=20)
settings.load_profile(PROFILE)


def examples(full: int, dev: int | None = None) -> int:
    """The number of examples a test runs: `full` under ci; under dev `dev` if given, else
    DEV_FRACTION of `full` (at least DEV_MINIMUM, at most `full`)."""
    if PROFILE == "ci":
        return full
    if dev is None:
        dev = max(DEV_MINIMUM, round(full * DEV_FRACTION))
    return min(full, dev)
