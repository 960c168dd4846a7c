"""HYPOTHESIS_PROFILE picks the search: `dev` (the default) is short and random, `ci` is the
full one and derandomized, `explore` the full one at random; CI runs `ci`
(tests/support/profiles.py)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import profiles

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def load_profile(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Reload the profiles under a given HYPOTHESIS_PROFILE; restore the session's after."""

    def load(value: str | None) -> ModuleType:
        if value is None:
            monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
        else:
            monkeypatch.setenv("HYPOTHESIS_PROFILE", value)
        return importlib.reload(profiles)

    yield load
    monkeypatch.undo()
    importlib.reload(profiles)


def test_the_default_profile_is_the_short_dev_search(load_profile) -> None:
    dev = load_profile(None)
    assert dev.PROFILE == "dev"
    assert dev.examples(200) == 40
    assert dev.examples(25) == 5
    assert dev.examples(3) == 3  # never more than the full count
    assert dev.examples(100, dev=7) == 7
    assert settings().max_examples < 100


def test_the_ci_profile_runs_every_test_s_full_count(load_profile) -> None:
    ci = load_profile("ci")
    assert [ci.examples(n) for n in (200, 60, 40, 25)] == [200, 60, 40, 25]
    assert ci.examples(100, dev=7) == 100
    assert settings().max_examples == 100


def test_the_ci_profile_draws_the_same_examples_on_every_run(load_profile) -> None:
    load_profile("ci")
    assert settings().derandomize is True
    assert settings().database is None  # nothing an earlier run saved changes the search

    def draws() -> list[int]:
        seen: list[int] = []

        @given(st.integers(0, 10**9))
        def record(value: int) -> None:
            seen.append(value)

        record()
        return seen

    first = draws()
    assert len(first) > 1
    assert draws() == first


def test_dev_and_explore_search_at_random_and_explore_runs_the_full_count(load_profile) -> None:
    dev = load_profile("dev")
    assert (settings().derandomize, settings().print_blob) == (False, True)
    assert dev.examples(200) == 40
    explore = load_profile("explore")
    assert (settings().derandomize, settings().print_blob) == (False, True)
    assert [explore.examples(n) for n in (200, 40)] == [200, 40]
    assert settings().max_examples == 100


def test_an_unknown_profile_is_refused(load_profile) -> None:
    with pytest.raises(RuntimeError, match="HYPOTHESIS_PROFILE='full'"):
        load_profile("full")


def test_ci_runs_the_full_search() -> None:
    assert "export HYPOTHESIS_PROFILE=ci\nmake test" in (ROOT / ".ci/run").read_text()
    workflow = (ROOT / ".github/workflows/ship.yml").read_text()
    assert (
        'run: bash .ci/run\n        env:\n          CI: "true"\n          HYPOTHESIS_PROFILE: ci'
        in workflow
    )
