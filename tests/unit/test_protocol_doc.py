"""docs/protocol.md against the code: every error code a client can receive has a row in
one of its error tables, and every protocol v2 action a row in the v2 action table, with
the route the handler runs it on."""

from __future__ import annotations

import re
from pathlib import Path

import handler
from chat.errors import ErrorCode
from infra.websocket_api import ROOM_ROUTES

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
V2_HEADING = "## Protocol v2: rooms"


def page() -> str:
    return PROTOCOL.read_text(encoding="utf-8")


def v2_section() -> str:
    text = page()
    assert V2_HEADING in text, "protocol.md has no protocol v2 section"
    return text.split(V2_HEADING, 1)[1]


def table_rows(text: str) -> dict[str, list[str]]:
    """The Markdown table rows whose first cell is one `code` span: that span's text, and
    the row's cells."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and (first := re.fullmatch(r"`([^`]+)`", cells[0])):
            rows.setdefault(first.group(1), cells)
    return rows


def test_every_error_code_has_a_row_in_an_error_table():
    rows = table_rows(page())
    missing = [code.value for code in ErrorCode if code.value not in rows]
    assert missing == [], f"error codes without a row in docs/protocol.md: {missing}"


def test_every_v2_error_code_has_an_example_frame_with_that_code():
    rows = table_rows(v2_section())
    v2_codes = list(ErrorCode)[list(ErrorCode).index(ErrorCode.INVALID_ROOM) :]
    for code in v2_codes:
        assert code.value in rows, f"{code.value} has no row in the v2 error table"
        example = rows[code.value][-1]
        assert f'"code":"{code.value}"' in example, f"{code.value}'s example is not its frame"


def test_every_v2_action_has_a_row_with_the_route_it_runs_on():
    rows = table_rows(v2_section())
    v2_actions = [name for name in handler.ACTIONS if name not in handler.V1_ACTIONS]
    assert v2_actions, "the handler has no v2 actions"
    for action in v2_actions:
        assert action in rows, f"{action} has no row in protocol.md's v2 action table"
        route = rows[action][1]
        if action in handler.ROUTED_ACTIONS:
            assert route == "own", f"{action} has its own route, the page says {route}"
            assert action in ROOM_ROUTES
        else:
            assert route == "`$default`", f"{action} runs on $default, the page says {route}"
