"""`make load`'s rooms scenario, light: 20 protocol v2 clients in 6 rooms through the
sandbox, joining, leaving and rejoining with `since`, typing and posting.

Per room nothing lost, duplicated or reordered, every room used, every rejoin recovers what
it missed, typing never in a history reply nor sent back to its typist, and the table
empty afterwards. No timing is asserted (the figures of the full run are in
docs/reliability.md). The counting itself is checked on made-up records below, so that a
loss, a duplicate or a reordering is seen to be counted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import load
from bench.load.rooms import Post, Receipts, RoomLimits, RoomsConfig, RoomsRun, Stay, plan
from bench.load.rooms_count import count_rooms


@pytest.mark.sandbox
def test_light_rooms_load_loses_duplicates_and_reorders_nothing_in_any_room(
    chat_template_path: Path,
) -> None:
    limits = RoomLimits.from_template(chat_template_path)
    assert limits.routes["sendPublic"] == (20, 10.0)  # the stage's throttles were read
    config = RoomsConfig(
        clients=20,
        rooms=6,
        max_rooms=3,
        messages=150,
        think_s=0.3,
        typing_ratio=0.4,
        rejoin_ratio=0.15,
        pause_s=(0.2, 1.5),
        ramp_s=1.0,
        seed=11,
    )
    with (
        load.dynamodb_process() as (endpoint, _),
        load.sandbox(chat_template_path, 2, endpoint) as (url, dynamodb, _),
    ):
        report = load.measure_rooms(
            config, url, limits, dynamodb=dynamodb, workers=2, progress=None
        )
    totals, rooms = report["totals"], report["rooms"]
    assert totals["acknowledged"] == totals["posts"] == 150, report["summary"]
    assert rooms["used"] == 6 and rooms["creations"] == 6, report["summary"]
    assert all(row["required"] > 0 for row in report["per_room"]), report["summary"]
    assert (totals["lost"], totals["duplicated"], totals["out_of_order"]) == (0, 0, 0)
    worst = report["worst_room"]
    assert (worst["lost"], worst["duplicated"], worst["out_of_order"]) == (0, 0, 0)
    assert report["recovery"]["rejoins_with_since"] > 0, report["summary"]
    assert report["recovery"].get("missing_after_since", 0) == 0
    typing = report["typing"]
    assert typing["sent"] > 0 and typing["deliveries"] > 0, report["summary"]
    assert (typing["in_history"], typing["to_sender"], typing["unmatched"]) == (0, 0, 0)
    assert set(report["table_after"].values()) == {0}, report["table_after"]
    assert report["errors"] == {} and report["timeouts"] == 0 and report["rate_limited"] == 0
    assert report["clean"]


def _run_with(receipts: list[int], *, left: float = 100.0) -> RoomsRun:
    """Client 0 posts three messages in room A; client 1 stays in A from t=0 to `left` and
    received `receipts` live (indexes of the posts, in arrival order)."""
    run = RoomsRun(RoomsConfig(clients=2, rooms=1, messages=3), RoomLimits(), "Rtest")
    room = run.room_names[0]
    for i in range(3):
        post = Post(i, 0, room, f"Rtest {i}", f"m{i}", t_send=10.0 + i, t_ack=10.5 + i)
        post.t_last_send, post.seq = post.t_send, i + 1
        run.posts.append(post)
    run.stays.append(Stay(0, room, True, None, 0.0, t_joined=1.0, ok=True))
    run.stays.append(Stay(1, room, False, None, 0.0, t_joined=2.0, t_left=left, ok=True))
    got = run.receipts[(1, room)] = Receipts()
    for index in receipts:
        got.index.append(index)
        got.time.append(20.0)
    return run


@pytest.mark.parametrize(
    ("receipts", "left", "expected"),
    [
        ([0, 1, 2], 100.0, {"required": 3, "lost": 0, "duplicated": 0, "out_of_order": 0}),
        ([0, 2], 100.0, {"required": 3, "lost": 1, "duplicated": 0, "out_of_order": 0}),
        ([0, 1, 1, 2], 100.0, {"required": 3, "lost": 0, "duplicated": 1, "out_of_order": 0}),
        ([0, 2, 1], 100.0, {"required": 3, "lost": 0, "duplicated": 0, "out_of_order": 1}),
        # left at 11.8: only the posts acknowledged before (10.5, 11.5) were required
        ([0], 11.8, {"required": 2, "lost": 1, "duplicated": 0, "out_of_order": 0}),
    ],
    ids=["all", "one-lost", "one-twice", "reordered", "left-early"],
)
def test_the_rooms_count_sees_a_loss_a_duplicate_and_a_reordering(
    receipts: list[int], left: float, expected: dict[str, int]
) -> None:
    (row,) = count_rooms(_run_with(receipts, left=left))["per_room"]
    assert {k: row[k] for k in expected} == expected


def test_a_post_missed_live_but_in_the_rejoins_history_is_recovered_not_lost() -> None:
    run = _run_with([0, 2])
    run.stays[1].history.add(1)
    (row,) = count_rooms(run)["per_room"]
    assert (row["lost"], row["recovered_from_history"]) == (0, 1)


def test_every_room_has_its_creator_and_every_client_one_to_five_rooms() -> None:
    import random  # noqa: PLC0415

    plans = plan(RoomsConfig(), random.Random(1))
    assert len(plans) == 200
    assert all(1 <= len(rooms) <= 5 for rooms, _ in plans)
    creators = {room: client for client, (_, creates) in enumerate(plans) for room in creates}
    assert sorted(creators) == list(range(50))
    assert all(room in plans[client][0] for room, client in creators.items())
