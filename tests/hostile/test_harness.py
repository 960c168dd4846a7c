"""The hostile room's own shortcuts keep its checks as strong as a full scan would.

The room scans only the items the consistency check reads (tests/support/consistency.py,
CHECKED_ITEMS), checks Bob and Carol from its last scan (or by key), and starts a fresh
table every few cases.
"""

from __future__ import annotations

import json

from tests.hostile.harness import HandlerRoom, handler_room, json_set_name
from tests.support.aws import TABLE
from tests.support.consistency import scan, table_problems

# The kinds the consistency check leaves alone: history, the SEQ counter, peers' buckets,
# de-duplication records, sign-in's owners.
UNCHECKED = ("HIST#", "SEQ", "LIMITS", "SENT#", "OWNER#")


def _key(item: dict) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


def _busy(room: HandlerRoom) -> None:
    """Traffic that leaves every kind of item behind: members, history, buckets, de-dup."""
    room.run(json.dumps({"action": "sendPublic", "message": "hello", "clientId": "c-1"}))
    room.run(json.dumps({"action": "history", "id": "h"}))
    room.run(json.dumps({"action": "sendPrivate", "to": "Bob", "message": "psst"}))
    stays = room.new_connection()
    room.send(stays, json_set_name("Dave"))
    room.new_connection()  # stays unnamed: listed under UNNAMED


def test_the_checked_scan_leaves_out_only_what_the_check_ignores() -> None:
    with handler_room() as room:
        _busy(room)
        full = scan(room.db, TABLE)
        checked = scan(room.db, TABLE, checked_only=True)
    dropped = {_key(item) for item in full} - {_key(item) for item in checked}
    assert dropped, "the traffic left no item the check ignores: this test checks nothing"
    for pk, sk in dropped:
        assert pk.startswith(UNCHECKED) or sk.startswith(UNCHECKED), (pk, sk)
    kept = {_key(item) for item in checked}
    for pk, sk in {_key(item) for item in full}:
        if pk.startswith(("CONN#", "NAME#", "UNNAMED")) or sk.startswith(("MEMBER#", "CONN#")):
            assert (pk, sk) in kept, (pk, sk)
    assert table_problems(checked) == table_problems(full) == []


def test_the_checked_scan_still_sees_orphans_and_leftovers() -> None:
    with handler_room() as room:
        gone = "gone0000000A="
        for item in (
            {"pk": "ROOM#lobby", "sk": f"MEMBER#{gone}", "name": "Ghost"},
            {"pk": "NAME#ghost", "sk": "NAME", "connectionId": gone},
            {"pk": "PEER#198.18.9.9", "sk": f"CONN#{gone}", "connectionId": gone},
        ):
            room.db.put_item(TableName=TABLE, Item={k: {"S": v} for k, v in item.items()})
        problems = table_problems(scan(room.db, TABLE, checked_only=True))
    assert any("orphaned MEMBER item 'Ghost'" in p for p in problems), problems
    assert any("orphaned NAME claim 'ghost'" in p for p in problems), problems
    assert any("lists gone connection" in p for p in problems), problems


def test_a_fresh_table_every_few_cases_keeps_bob_and_carol_in_the_room() -> None:
    with handler_room() as room:
        room.fresh_table_every = 2
        for n in range(5):
            result = room.run(json.dumps({"action": "sendPublic", "message": f"m{n}"}))
            assert result.table_problems == []
            for name in ("Bob", "Carol"):
                texts = [f.get("text") for f in result.observation.others[name]]
                assert f"m{n}" in texts, (name, result.observation.others)
        tables = room.tables
        rows = len(scan(room.db, TABLE))
    assert tables == 3
    # only the last table's items: Bob, Carol and one case's history, not five cases'
    assert rows < 30, rows


def test_a_bystander_who_left_between_cases_is_in_the_room_again_for_the_next() -> None:
    # Bob's and Carol's items are read from the last case's scan: any invocation since (here
    # Bob's $disconnect) makes the room read them again, and join Bob anew.
    with handler_room() as room:
        room.fresh_table_every = None
        assert room.run(json.dumps({"action": "sendPublic", "message": "m0"})).table_problems == []
        gone = room.bystanders["Bob"]
        room.disconnect(gone)
        result = room.run(json.dumps({"action": "sendPublic", "message": "m1"}))
    assert result.table_problems == []
    assert room.bystanders["Bob"] != gone
    for name in ("Bob", "Carol"):
        texts = [f.get("text") for f in result.observation.others[name]]
        assert "m1" in texts, (name, result.observation.others)
