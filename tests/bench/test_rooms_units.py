"""The rooms (protocol v2) units bench at a tiny size: every action measured, through the
handler, with the store's calls and DynamoDB's formulas. No timing is asserted."""

from __future__ import annotations

import pytest

from bench import rooms_units
from tests.support.aws import TABLE

N = 3
R = (1, 2)


@pytest.fixture(scope="module")
def table():
    """The stack's table on moto, for this module (one measurement serves every test)."""
    from tests.support.aws import chat_table  # noqa: PLC0415

    with chat_table() as client:
        yield client


@pytest.fixture(scope="module")
def measured(table):
    return rooms_units.measure(table, TABLE, [N], R)


def test_every_rooms_action_is_measured_with_positive_units(measured):
    (size,) = measured["sizes"].values()
    assert list(size["actions"]) == list(rooms_units.ACTIONS)
    assert set(size["by_r"]) == {str(r) for r in R}
    figures = list(size["actions"].values())
    figures += [f for by_r in size["by_r"].values() for f in by_r.values()]
    for figure in figures:
        assert figure["rru"] > 0
        assert figure["wru"] > 0
        assert figure["calls"]


def test_nothing_scans_and_only_the_stores_own_calls_are_made(measured):
    (size,) = measured["sizes"].values()
    figures = list(size["actions"].values())
    figures += [f for by_r in size["by_r"].values() for f in by_r.values()]
    called = {c.split("(")[0] for f in figures for c in f["calls"]}
    assert called <= {
        "GetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "TransactWriteItems",
        "BatchGetItem",  # the sanctions a join or setName checks (moderation)
    }
    assert "Scan" not in called


def test_a_rename_and_a_disconnect_cost_more_in_more_rooms(measured):
    (size,) = measured["sizes"].values()
    one, two = size["by_r"]["1"], size["by_r"]["2"]
    for action in rooms_units.BY_R:
        assert two[action]["rru"] > one[action]["rru"]
        assert two[action]["wru"] > one[action]["wru"]
        assert len(two[action]["calls"]) > len(one[action]["calls"])


def test_typing_and_edits_reach_the_rooms_members(measured):
    (size,) = measured["sizes"].values()
    actions = size["actions"]
    # The measured connection and N members are in the room: the others get each frame.
    assert actions["typing"]["posts"] == N
    assert actions["editMessage"]["posts"] >= N + 1  # theirs, then its own and the ack


def test_the_report_section_is_replaced_alone_and_names_every_action(measured):
    from bench import report  # noqa: PLC0415

    results = {"rooms_v2": {**measured, "measured_utc": "2026-12-07 20:00", "quick": True}}
    before = (
        "# Performance\n\n## DynamoDB units per action\n\nlobby figures\n\n"
        "## Can room reads be eventually consistent?\n\nkept\n"
    )
    once = report.replace_rooms_units(before, results)
    assert once.startswith(before[: before.index("## Can room")])
    assert once.endswith("## Can room reads be eventually consistent?\n\nkept\n")
    section = once[once.index(report.ROOMS_UNITS_HEADING) : once.index("## Can room")]
    for action in (*rooms_units.ACTIONS, *rooms_units.BY_R):
        assert f"| {action} |" in section
    assert "**What grows with R**" in section
    assert report.replace_rooms_units(once, results) == once


def test_a_counting_or_filtered_query_is_priced_by_the_items_it_read(table):
    from bench.room_bench import UnitCounter  # noqa: PLC0415

    for i in range(3):
        item = {"pk": {"S": "HIST#pricing"}, "sk": {"S": f"MSG#{i}"}, "frame": {"S": "a" * 3000}}
        table.put_item(TableName=TABLE, Item=item)
    counter = UnitCounter(table)
    query = {
        "TableName": TABLE,
        "KeyConditionExpression": "pk = :pk",
        "ConsistentRead": True,
    }
    counter.query(**query, ExpressionAttributeValues={":pk": {"S": "HIST#pricing"}}, Select="COUNT")
    assert counter.rru == 3  # about 9 KB read, though no item came back
    counter.reset()
    counter.query(
        **query,
        ExpressionAttributeValues={":pk": {"S": "HIST#pricing"}, ":none": {"S": "b"}},
        FilterExpression="frame = :none",
    )
    assert counter.rru == 3
    counter.reset()
    counter.scan(TableName=TABLE, Limit=1)
    assert counter.calls == ["Scan"]


def test_only_the_rooms_plot_and_section_are_rewritten(measured, tmp_path):
    from bench import report  # noqa: PLC0415

    results = {"rooms_v2": {**measured, "measured_utc": "2026-12-07 20:00", "quick": True}}
    markdown = tmp_path / "docs" / "performance.md"
    plots = tmp_path / "docs" / "performance"
    markdown.parent.mkdir()
    markdown.write_text("# P\n\n## Can room reads be eventually consistent?\n\nkept\n")
    report.write_rooms_units(results, markdown, plots)
    assert [p.name for p in plots.iterdir()] == ["rooms_units.png"]
    assert (plots / "rooms_units.png").read_bytes().startswith(b"\x89PNG")
    text = markdown.read_text()
    assert "](performance/rooms_units.png)" in text
    assert text.endswith("## Can room reads be eventually consistent?\n\nkept\n")
