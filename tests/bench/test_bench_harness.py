"""The benchmark harness still runs (its figures live in bench/REPORT.md, not in tests)."""

from __future__ import annotations

from bench import scenarios


def test_name_race_scenario_reports_exactly_one_winner():
    section = scenarios.name_race(quick=True)
    assert "| 50 | 1 |" in section


def test_every_scenario_is_listed_with_a_title():
    titles = [title for title, _ in scenarios.ALL]
    assert len(titles) == len(set(titles)) >= 4
