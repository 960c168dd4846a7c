"""Hypothesis profiles, chosen by the environment variable HYPOTHESIS_PROFILE:

- `dev` (the default): a short random search for the inner loop, different on every run;
- `ci`: the full search, derandomized: every run draws the same examples (seeded from
  each test's own code), so whether a change lands depends on the change, never on the
  draw; a failure there fails again on any machine with the same profile;
- `explore`: the full search, random, for looking further than CI does (a failure prints
  the `@reproduce_failure` line that replays it; keep what it finds as an explicit test).

A test that sets `max_examples` itself overrides the profile, so such tests take their
count from `examples(full)`: `full` under ci and explore, a fraction of it under dev.
See https://hypothesis.readthedocs.io/en/latest/reference/api.html#settings-profiles
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILES = ("dev", "ci", "explore")
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev") or "dev"
if PROFILE not in PROFILES:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={PROFILE!r}: expected one of {', '.join(PROFILES)}")

# Under dev, a test runs this fraction of its full count of examples (at least DEV_MINIMUM).
DEV_FRACTION = 0.2
DEV_MINIMUM = 5

# derandomize also leaves out the example database: nothing saved by an earlier run
# changes what CI tries.
# Each from Hypothesis's own defaults, never from the profile loaded before (a reload).
DEFAULTS = settings.get_profile("default")
settings.register_profile("ci", DEFAULTS, max_examples=100, derandomize=True)
settings.register_profile("explore", DEFAULTS, max_examples=100, print_blob=True)
settings.register_profile("dev", DEFAULTS, max_examples=20, print_blob=True)
settings.load_profile(PROFILE)


def examples(full: int, dev: int | None = None) -> int:
    """The number of examples a test runs: `full` under ci and explore; under dev `dev` if
    given, else DEV_FRACTION of `full` (at least DEV_MINIMUM, at most `full`)."""
    if PROFILE != "dev":
        return full
    if dev is None:
        dev = max(DEV_MINIMUM, round(full * DEV_FRACTION))
    return min(full, dev)
