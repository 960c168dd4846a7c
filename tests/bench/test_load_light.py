"""`make load`, light: 20 clients and 300 messages through the sandbox, churning.

Nothing lost, duplicated or reordered, names unique by look, the table empty afterwards,
and every rejoin with `since` recovers what it missed. No timing is asserted (the figures
of the full run are in docs/reliability.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import load

pytestmark = pytest.mark.sandbox


def test_light_load_loses_duplicates_and_reorders_nothing(chat_template_path: Path) -> None:
    limits = load.Limits.from_template(chat_template_path)
    config = load.LoadConfig(
        clients=20,
        messages=300,
        sessions=3,
        private_ratio=0.3,
        think_s=0.2,
        ramp_s=2.0,
        pause_s=(0.1, 1.0),
        seed=7,
    )
    with (
        load.dynamodb_process() as (endpoint, _),
        load.sandbox(chat_template_path, 2, endpoint) as (url, dynamodb, _),
    ):
        report = load.measure(config, url, limits, dynamodb=dynamodb, workers=2, progress=None)
    totals = report["totals"]
    assert totals["acknowledged"] == 300, report["summary"]
    assert totals["sent"] == 300 + report["private_refused_recipient_gone"]
    assert totals["required"] > 0  # the definitions had something to check
    assert (totals["lost"], totals["duplicated"], totals["out_of_order"]) == (0, 0, 0)
    assert report["name_uniqueness"]["violations"] == 0
    assert report["name_uniqueness"]["member_lists_checked"] > 0
    assert report["table_after"] == {"members": 0, "name_claims": 0}
    assert report["recovery"]["rejoins_with_since"] > 0
    assert report["recovery"].get("missing_after_since", 0) == 0
    assert report["errors"] == {} and report["timeouts"] == 0
    assert report["clean"]
