"""The benchmark harness still runs (its figures live in bench/REPORT.md, not in tests)."""

from __future__ import annotations

from bench import local_aws, scenarios


def test_name_race_scenario_reports_exactly_one_winner(chat_template_path, monkeypatch):
    monkeypatch.setattr(local_aws, "TEMPLATE", chat_template_path)
    section = scenarios.name_race(quick=True)
    assert "| 50 | 1 |" in section


def test_every_scenario_is_listed_with_a_title():
    titles = [title for title, _ in scenarios.ALL]
    assert len(titles) == len(set(titles)) >= 4
