"""The model's checks (tests/hostile/protocol.py) catch what issue 14 forbids.

Each test hands the checks an observation that breaks one rule, as the server before
issue 14 would have answered, and an observation that keeps it: the first must be
reported, the second not. Without this, a check that never fires would pass the corpus.
"""

from __future__ import annotations

import json
from typing import Any

from tests.hostile.protocol import (
    HISTORY_MAX_BYTES,
    Observation,
    Room,
    api_gateway_route,
    expected_outcomes,
    problems,
    routes,
)

ROOM = Room(sender_name="Hostile")


def error_observation(text: str, error: dict[str, Any], route: str | None = None) -> Observation:
    return Observation(
        text=text,
        sender_name="Hostile",
        sender=[{"error": error}],
        others={"Bob": [], "Carol": []},
        route=route,
    )


def test_frames_that_are_not_strict_json_may_only_be_refused():
    for text in [
        '{"action": "ping", "action": "sendPublic", "message": "hi"}',
        '{"action": "sendPublic", "message": "hi", "x": {"k": 1, "k": 1}}',
        '{"action": "sendPublic", "message": NaN}',
        '{"action": "ping", "n": -Infinity}',
    ]:
        assert expected_outcomes(text, ROOM) == {"INVALID_JSON"}, text


def test_a_key_given_twice_may_select_either_route():
    text = '{"action": "ping", "action": "sendPublic", "message": "hi"}'
    assert routes(text) == {"$default", "sendPublic"}
    assert api_gateway_route(text) == "$default"  # the first key
    assert api_gateway_route('{"action": "sendPublic", "action": "ping"}') == "sendPublic"


def test_a_routed_action_off_its_route_may_only_be_refused():
    public = json.dumps({"action": "sendPublic", "message": "hi"})
    assert expected_outcomes(public, ROOM, "$default") == {"INVALID_JSON"}
    assert expected_outcomes(public, ROOM, "setName") == {"INVALID_JSON"}
    assert expected_outcomes(public, ROOM) == {"ok:public"}


def test_an_error_that_repeats_what_was_sent_is_reported():
    text = json.dumps({"action": "sendPrivate", "to": "\u202eloraC", "message": "hi"})
    echoed = {
        "code": "UNKNOWN_RECIPIENT",
        "message": "Nobody called \u202eloraC is in the chat.",
        "action": "sendPrivate",
    }
    fixed = {**echoed, "message": "Nobody with that name (to) is in the chat."}
    assert any(
        "repeats" in p for p in problems("UNKNOWN_RECIPIENT", error_observation(text, echoed))
    )
    assert problems("UNKNOWN_RECIPIENT", error_observation(text, fixed)) == []


def test_name_taken_may_name_the_member_who_holds_it():
    text = json.dumps({"action": "setName", "name": "Carol"})
    error = {"code": "NAME_TAKEN", "message": 'The name "Carol" is already taken.'}
    error["action"] = "setName"
    assert problems("NAME_TAKEN", error_observation(text, error)) == []


def test_an_error_that_names_a_made_up_action_is_reported():
    text = json.dumps({"action": "<img src=x onerror=alert(1)>"})
    made_up = {"code": "UNKNOWN_ACTION", "message": "Unknown action (action).", "action": "x"}
    made_up["action"] = "<img src=x onerror=alert(1)>"
    found = problems("UNKNOWN_ACTION", error_observation(text, made_up))
    assert any(p.startswith("action") for p in found)
    assert problems("UNKNOWN_ACTION", error_observation(text, {**made_up, "action": None})) == []


def test_an_error_on_a_route_names_the_route():
    text = json.dumps({"action": "ping", "id": "r1"})
    error = {"code": "INVALID_JSON", "message": "Send strict JSON.", "id": "r1"}
    assert (
        problems(
            "INVALID_JSON", error_observation(text, {**error, "action": "sendPublic"}, "sendPublic")
        )
        == []
    )
    found = problems(
        "INVALID_JSON", error_observation(text, {**error, "action": "ping"}, "sendPublic")
    )
    assert any(p.startswith("action") for p in found)


def test_messages_over_4000_bytes_or_with_controls_are_refused():
    def outcomes(message: str) -> set[str]:
        return expected_outcomes(json.dumps({"action": "sendPublic", "message": message}), ROOM)

    assert outcomes("\U0001f600" * 1000) == {"ok:public"}
    assert outcomes("\U0001f600" * 1001) == {"MESSAGE_TOO_LONG"}
    assert outcomes("a\u202eb") == {"INVALID_MESSAGE"}
    assert outcomes("a\u200fb") == {"ok:public"}
    assert outcomes("a\r\nb") == {"INVALID_MESSAGE"}
    assert outcomes("\u0000" * 2001) == {"MESSAGE_TOO_LONG"}


def test_a_history_reply_over_its_bounds_is_reported():
    def message(seq: int, text: str) -> dict[str, Any]:
        return {
            "publicMessage": f"Bob: {text}",
            "from": "Bob",
            "text": text,
            "ts": 1,
            "seq": seq,
            "messageId": f"m{seq}",
            "prev": seq - 1,
        }

    def reply(messages: list[dict[str, Any]]) -> Observation:
        frames: list[dict[str, Any]] = [{"history": [m], "final": False} for m in messages]
        frames[-1] = {"history": [messages[-1]], "final": True, "complete": False}
        return Observation(
            text='{"action": "history"}',
            sender_name="Hostile",
            sender=frames,
            others={"Bob": [], "Carol": []},
        )

    many = [message(n, "hi") for n in range(1, 102)]
    assert any("101 messages" in p for p in problems("ok:history", reply(many)))
    assert problems("ok:history", reply(many[:100])) == []
    big = [message(n, "\U0001f600" * 1000) for n in range(1, 10)]  # about 8 KB each
    assert any(str(HISTORY_MAX_BYTES) in p for p in problems("ok:history", reply(big)))
    assert problems("ok:history", reply(big[:7])) == []


def test_reserved_names_are_refused_by_the_model():
    for name in ("admin", "SYSTEM", "Moderator"):
        text = json.dumps({"action": "setName", "name": name})
        assert expected_outcomes(text, ROOM) == {"INVALID_NAME"}, name
    assert "INVALID_NAME" in expected_outcomes(
        json.dumps({"action": "setName", "name": "adrnin"}), ROOM
    )
    assert expected_outcomes(json.dumps({"action": "setName", "name": "Servery"}), ROOM) == {
        "ok:rename"
    }


def test_a_bad_client_key_is_refused_whatever_else_is_wrong():
    for key in ("k" * 15, "k" * 65, "k" * 16 + "=", 5, ""):
        text = json.dumps({"action": "setName", "name": "a:b", "clientKey": key})
        assert expected_outcomes(text, Room(sender_name=None)) == {"INVALID_ID"}, key
    good = json.dumps({"action": "setName", "name": "Zed", "clientKey": "k" * 16})
    assert expected_outcomes(good, Room(sender_name=None)) == {"ok:join"}
