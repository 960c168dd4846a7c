"""docs/protocol.md (v1.1) as checks: what a sender and the other members must receive.

Two parts:

- `expected_outcomes(text, ...)`: a model of the protocol that says which outcomes a frame
  may have (used for the generated frames of the property tests; the corpus states its
  own). Where the protocol leaves a choice open (where INVALID_ID comes in the order of
  checks, what "trimmed" means, which names look alike) it allows every reading.
- `problems(outcome, observation)`: what is wrong with what everyone received, if the
  frame had that outcome. An observation passes when one allowed outcome has no problems.

Frames must be strict JSON (RFC 8259): a key given twice in any object, or NaN, Infinity
or -Infinity anywhere, is INVALID_JSON, whichever reading a parser would take. API
Gateway picks the route from `action` with a parser of its own; for a frame with two
`action` keys it may take either (`routes`). The function runs an action only on its own
route: a routed action (setName, sendPublic, sendPrivate) that arrives on `$default`, or a
frame whose action is not its route's, is INVALID_JSON too.

Error frames name the route's action (on `$default`, the body's action when it is one of
the protocol's, else null) and never repeat what the client made up: no error message
contains a string the frame sent (longer than 3 characters), except the member name a
NAME_TAKEN names.

Outcomes are error codes, or `ok:<kind>`:

    ok:public     the sender's own copy (with its id) and one copy to every other member
    ok:private    the message to the recipient; the sender gets an ack if it gave an id
    ok:rename     member list + rename notice to everyone; ack to the sender if id
    ok:join       member list (+ history) + join notice to the joiner; list + notice to all
    ok:same-name  nothing (an ack if id)
    ok:ping       nothing (an ack if id)
    ok:history    history frames to the sender only, the last one final (with the id)
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Frame = dict[str, Any]

ERROR_CODES = frozenset(
    {
        "INVALID_JSON",
        "UNKNOWN_ACTION",
        "INVALID_NAME",
        "NAME_TAKEN",
        "NAME_REQUIRED",
        "INVALID_MESSAGE",
        "MESSAGE_TOO_LONG",
        "UNKNOWN_RECIPIENT",
        "INVALID_ID",
        "RATE_LIMITED",
        "ROOM_FULL",
        "NOT_CONNECTED",
        "INTERNAL",
    }
)
OK_KINDS = frozenset({"public", "private", "rename", "join", "same-name", "ping", "history"})
ACTIONS = ("setName", "sendPublic", "sendPrivate", "ping", "history")
# The API's routes (infra/websocket_api.py): API Gateway picks one from `action`.
# The rooms' actions (protocol v2) have routes too; from the v1 connections the corpus uses
# they are unknown actions wherever they arrive.
ROOM_ROUTES = frozenset(
    {
        "joinRoom",
        "leaveRoom",
        "createRoom",
        "invite",
        "typing",
        "editMessage",
        "deleteMessage",
        "moderate",
    }
)
ROUTES = frozenset(
    {"$connect", "$disconnect", "$default", "setName", "sendPublic", "sendPrivate", *ROOM_ROUTES}
)
# A v1 connection's actions with a route of their own; $default serves ping, history and
# unknown actions. API Gateway selects any of the stack's routes (SELECTED).
ROUTED_ACTIONS = frozenset({"setName", "sendPublic", "sendPrivate"})
SELECTED = ROUTED_ACTIONS | ROOM_ROUTES
NAME_MAX = 32
MESSAGE_MAX = 2000
MESSAGE_MAX_BYTES = 4000  # UTF-8, after trimming
ID_MAX = 64
CLIENT_KEY_MIN = 16
CLIENT_KEY_MAX = 64
CLIENT_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# One history reply (a join's, or a `history` request's): at most this many messages and
# this many bytes of them (each as compact UTF-8 JSON), the newest ones.
HISTORY_MAX_MESSAGES = 100
HISTORY_MAX_BYTES = 65536
# Refused in messages: bidi embeddings, overrides (U+202A-U+202E) and isolates
# (U+2066-U+2069). The marks U+200E, U+200F and U+061C are allowed.
BIDI_CONTROLS = frozenset(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# Names nobody may take, nor their look-alikes (the default `reservedNames`).
RESERVED_NAMES = ("admin", "administrator", "system", "server", "moderator")
# Text an error message may hold whatever the frame said: the actions as the server lists
# them, the field names, the limits, the words of its fixed messages that tests also send
# as values, and INVALID_JSON's example frame. A sent string found only inside this is not
# an echo.
FIXED_TEXT = (
    "Valid actions: setName, sendPublic, sendPrivate, ping, history. "
    "Fields: action name message to id since clientKey. Nobody with that name (to). "
    '{"action": "setName", "name": "Alice"} Limits: 1-32, 1-64, 16-64, 2000, 4000.'
)
ECHO_MIN = 4  # a sent string this long must not appear in an error message
# JavaScript's String.prototype.trim: WhiteSpace and LineTerminator code points.
JS_SPACE = frozenset(
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def valid_id(value: object) -> bool:
    """1-64 printable ASCII characters, ! to ~."""
    return (
        isinstance(value, str)
        and 1 <= len(value) <= ID_MAX
        and all("!" <= ch <= "~" for ch in value)
    )


def valid_since(value: object) -> bool | None:
    """True for an integer >= 0, False for anything else, None when the protocol is silent
    (a number with an integral value written as a float: 1.0, 1e2)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return None
    return False


def trims(text: str) -> set[str]:
    """The message after trimming, in both readings of "trimmed" (Python's, JavaScript's)."""
    return {text.strip(), text.strip("".join(JS_SPACE))}


def has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def readings(text: str) -> list[Any]:
    """The frame as a lenient parser reads it, for each reading of duplicate keys (last
    wins, first wins), NaN and Infinity accepted: what API Gateway's route selection, or a
    parser that is not strict, might make of it.

    Empty when it is not JSON even for Python's json. A value is a dict for an object.
    Integers longer than Python's digit limit are read anyway (with their magnitude, not
    their digits): JSON sets no limit.
    """

    def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            out.setdefault(key, value)
        return out

    out: list[Any] = []
    for hook in (None, first_wins):
        try:
            value = json.loads(text, object_pairs_hook=hook, parse_int=_parse_int)
        except (ValueError, RecursionError):
            return []
        if not out or value != out[0]:
            out.append(value)
    return out


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) <= 4000:
        return int(digits)
    return int(digits[:4000]) * 10 ** (len(digits) - 4000)


class _NotStrictError(ValueError):
    pass


def _each_key_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body = dict(pairs)
    if len(body) != len(pairs):
        raise _NotStrictError("a key given twice")
    return body


def _refuse_constant(literal: str) -> Any:
    raise _NotStrictError(literal)


_NOT_STRICT: Any = object()


def strict_value(text: str, *, digit_limit: bool = False) -> Any:
    """The frame as strict JSON (each key once in every object, no NaN or Infinity), or
    `_NOT_STRICT`. With `digit_limit`, also refused when an integer is longer than Python's
    parser reads (4300 digits), as the server's parser does; JSON itself sets no limit."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_each_key_once,
            parse_constant=_refuse_constant,
            parse_int=None if digit_limit else _parse_int,
        )
    except (ValueError, RecursionError):
        return _NOT_STRICT


def is_strict(text: str) -> bool:
    """Is `text` strict JSON (RFC 8259: each key once, no NaN/Infinity)?"""
    return strict_value(text) is not _NOT_STRICT


def server_body(text: str) -> dict[str, Any] | None:
    """The frame's object as the server reads it: strict JSON, integers within Python's
    digit limit (None when it cannot read one)."""
    value = strict_value(text, digit_limit=True)
    return value if isinstance(value, dict) else None


def routes(text: str) -> set[str]:
    """Every route API Gateway might select for `text` (`$request.body.action`): the
    action of either reading of duplicate keys when it has a route, else `$default`. With
    NaN or Infinity in the frame its parser may also fail, which selects `$default`."""
    out = set()
    for value in readings(text):
        action = value.get("action") if isinstance(value, dict) else None
        out.add(action if isinstance(action, str) and action in SELECTED else "$default")
    if not out or not is_strict(text):
        out.add("$default")
    return out


def api_gateway_route(text: str) -> str:
    """One route API Gateway may select for `text`: for a key given twice, the first one
    (Python's json, and so the sandbox's route selection, takes the last: between the two
    harnesses both readings are sent)."""
    bodies = [b for b in readings(text) if isinstance(b, dict)]
    if not bodies:
        return "$default"
    first = bodies[-1]  # readings(): last wins, then first wins when it differs
    action = first.get("action")
    return action if isinstance(action, str) and action in SELECTED else "$default"


def frame_ids(text: str) -> set[str | None]:
    """The id the error or acknowledgement must carry: the frame's valid id, else None
    (also when the server cannot read the frame)."""
    body = server_body(text)
    candidate = body.get("id") if body is not None else None
    return {candidate if valid_id(candidate) else None}


def valid_client_key(value: object) -> bool:
    """setName's `clientKey`: absent or null, or 16-64 of A-Z a-z 0-9 _ -."""
    return value is None or (
        isinstance(value, str)
        and CLIENT_KEY_MIN <= len(value) <= CLIENT_KEY_MAX
        and set(value) <= CLIENT_KEY_CHARS
    )


def message_problem(text: str) -> str | None:
    """What is wrong with a trimmed message, in the server's order of checks, or None."""
    if not text:
        return "INVALID_MESSAGE"
    if len(text) > MESSAGE_MAX or len(text.encode("utf-8")) > MESSAGE_MAX_BYTES:
        return "MESSAGE_TOO_LONG"
    if any((ch != "\n" and unicodedata.category(ch) == "Cc") or ch in BIDI_CONTROLS for ch in text):
        return "INVALID_MESSAGE"
    return None


# --- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    """Who is in the room besides the sender, and the sender's own name (None: unnamed)."""

    sender_name: str | None
    members: tuple[str, ...] = ("Bob", "Carol")


def expected_outcomes(text: str, room: Room, route: str | None = None) -> set[str]:
    """Every outcome the protocol allows for `text` from the sender in `room`, sent on
    `route` (by default the route API Gateway selects for it)."""
    body = strict_value(text)
    if not isinstance(body, dict):  # not strict JSON, or not an object
        return {"INVALID_JSON"}
    allowed = _outcomes_of(body, room, route or api_gateway_route(text))
    if server_body(text) is None:  # an integer longer than Python reads: JSON allows it
        allowed.add("INVALID_JSON")
    return allowed


def _outcomes_of(body: dict[str, Any], room: Room, route: str) -> set[str]:
    action = body.get("action")
    if route not in ("$default", action) or (
        route == "$default" and isinstance(action, str) and action in ROUTED_ACTIONS
    ):
        # The route and the body disagree: another parser read another action.
        # The `id` is read first (null is no id).
        bad_id = body.get("id") is not None and not valid_id(body["id"])
        return {"INVALID_ID"} if bad_id else {"INVALID_JSON"}
    if not isinstance(action, str) or action not in ACTIONS:
        rest = {"UNKNOWN_ACTION"}
    elif action == "setName":
        rest = _set_name(body, room)
    elif action in ("sendPublic", "sendPrivate"):
        rest = _send(body, room, private=action == "sendPrivate")
    elif action == "ping":
        rest = {"ok:ping"}
    else:
        rest = {"ok:history"} if room.sender_name else {"ok:history", "NAME_REQUIRED"}
    bad = False
    if "id" in body and body["id"] is None:  # null: missing or bad, the protocol does not say
        rest = rest | {"INVALID_ID"}
    elif "id" in body and not valid_id(body["id"]):
        bad = True
    if isinstance(action, str) and action in ("setName", "history") and "since" in body:
        verdict = valid_since(body["since"])
        if verdict and body["since"] >= 2**53:  # past JavaScript's exact integers: not written
            rest = rest | {"INVALID_ID"}
        if body["since"] is None or verdict is None:
            rest = rest | {"INVALID_ID"}
        elif verdict is False:
            bad = True
    if action == "setName" and not valid_client_key(body.get("clientKey")):
        # Checked after `id` and `since`, before the name: INVALID_ID whatever else is wrong.
        return {"INVALID_ID"}
    if not bad:
        return rest
    # Where INVALID_ID comes among the other checks is not written: any error that
    # a check could raise first is allowed, a success is not.
    return {"INVALID_ID"} | {o for o in rest if not o.startswith("ok:")}


def _set_name(body: dict[str, Any], room: Room) -> set[str]:
    raw = body.get("name")
    if not isinstance(raw, str) or has_surrogate(raw):
        return {"INVALID_NAME"}
    name = unicodedata.normalize("NFC", raw.strip())
    if not name or len(name) > NAME_MAX or ":" in name or "  " in name:
        return {"INVALID_NAME"}
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp") for ch in name):
        return {"INVALID_NAME"}
    success = "ok:join" if room.sender_name is None else "ok:rename"
    if name == room.sender_name:
        return {"ok:same-name"}
    if name.isascii() and name.isalpha():
        if name.casefold() in RESERVED_NAMES:
            return {"INVALID_NAME"}
        # A look-alike of a reserved name is refused; the rough keys may see one too many.
        reserved = {"INVALID_NAME"} if _ascii_keys(name) & _reserved_keys() else set()
        if any(name.casefold() == m.casefold() for m in room.members):
            return reserved | {"NAME_TAKEN"}
        if any(_ascii_keys(name) & _ascii_keys(m) for m in room.members):
            return reserved | {"NAME_TAKEN", success}
        return reserved | {success}
    # Scripts, invisible characters, marks and confusables need Unicode's tables: any.
    return {"INVALID_NAME", "NAME_TAKEN", success}


def _ascii_keys(name: str) -> set[str]:
    """Rough UTS #39 keys of ASCII letters (rn/m, vv/w, cl/d, I/l) in both orders of case
    folding and skeleton, as names occupy both (`ALICE` and `aIice` clash with `alice`):
    every pair of names whose real keys meet has rough keys that meet."""

    def merged(text: str) -> str:
        for many, one in (("rn", "m"), ("vv", "w"), ("cl", "d")):
            text = text.replace(many, one)
        return text

    return {merged(name.casefold()), merged(name.replace("I", "l").casefold())}


def _reserved_keys() -> set[str]:
    keys: set[str] = set()
    for name in RESERVED_NAMES:
        for variant in (name, name.upper(), name.title()):
            keys |= _ascii_keys(variant)
    return keys


def _send(body: dict[str, Any], room: Room, *, private: bool) -> set[str]:
    if room.sender_name is None:
        return {"NAME_REQUIRED"}
    message = body.get("message")
    if not isinstance(message, str) or has_surrogate(message):
        return {"INVALID_MESSAGE"}
    outcomes: set[str] = set()
    for text in trims(message):
        problem = message_problem(text)
        if problem is not None:
            outcomes.add(problem)
        elif not private:
            outcomes.add("ok:public")
        else:
            outcomes |= _recipient(body.get("to"), room)
    return outcomes


def _recipient(raw: object, room: Room) -> set[str]:
    if not isinstance(raw, str) or not raw.strip():
        return {"UNKNOWN_RECIPIENT"}
    to = raw.strip()
    if len(to) > NAME_MAX or has_surrogate(to):
        return {"UNKNOWN_RECIPIENT"}
    names = [*room.members, *([room.sender_name] if room.sender_name else [])]
    folded = unicodedata.normalize("NFKC", to).casefold()
    if any(folded == unicodedata.normalize("NFKC", n).casefold() for n in names):
        return {"ok:private"}
    if to.isascii() and to.isalpha() and all(not _ascii_keys(to) & _ascii_keys(n) for n in names):
        return {"UNKNOWN_RECIPIENT"}
    return {"UNKNOWN_RECIPIENT", "ok:private"}


# --- checking what was received ---------------------------------------------------------


@dataclass
class Observation:
    """What everyone received after the sender sent `text`."""

    text: str
    sender_name: str | None  # before the frame
    sender: list[Frame]
    others: dict[str, list[Frame]]  # name -> frames, for every other member
    sender_name_after: str | None = None  # the name the table holds afterwards
    shown: str | None = None  # the expected name after a rename/join, when known
    recipient: str | None = None  # the expected recipient of a private message
    route: str | None = None  # the route it was sent on (None: whichever API Gateway picks)
    notes: list[str] = field(default_factory=list)


Check = Callable[[Observation], list[str]]


def problems(outcome: str, obs: Observation) -> list[str]:
    """What is wrong if the frame's outcome is `outcome` (empty: it matches)."""
    if outcome in ERROR_CODES:
        return _error(outcome, obs)
    check = {
        "ok:public": _public,
        "ok:private": _private,
        "ok:rename": _rename,
        "ok:join": _join,
        "ok:same-name": _quiet_with_ack("setName"),
        "ok:ping": _quiet_with_ack("ping"),
        "ok:history": _history,
    }[outcome]
    return check(obs)


def matching_outcome(allowed: Iterable[str], obs: Observation) -> tuple[str | None, str]:
    """The first allowed outcome that matches, and a report of why each other one did not."""
    report = []
    for outcome in allowed:
        found = problems(outcome, obs)
        if not found:
            return outcome, ""
        report.append(f"  as {outcome}: " + "; ".join(found))
    received = json.dumps({"sender": obs.sender, **obs.others}, ensure_ascii=True)
    if len(received) > 3000:
        received = received[:3000] + "..."
    return None, "\n".join(report) + f"\n  received: {received}"


def _bodies(obs: Observation) -> list[dict[str, Any]]:
    return [b for b in readings(obs.text) if isinstance(b, dict)]


def _nobody_else(obs: Observation, *, except_: str | None = None) -> list[str]:
    return [
        f"{name} received {len(frames)} frame(s): {_short(frames)}"
        for name, frames in obs.others.items()
        if frames and name != except_
    ]


def _short(frames: list[Frame]) -> str:
    text = json.dumps(frames, ensure_ascii=True)
    return text if len(text) < 300 else text[:300] + "..."


def _error(code: str, obs: Observation) -> list[str]:
    found = _nobody_else(obs)
    if len(obs.sender) != 1 or set(obs.sender[0]) != {"error"}:
        return [*found, f"the sender should get one error frame, got {_short(obs.sender)}"]
    error = obs.sender[0]["error"]
    if error.get("code") != code:
        found.append(f"code {error.get('code')!r}, expected {code}")
    if not isinstance(error.get("message"), str) or not error["message"]:
        found.append("the error has no message")
    else:
        found += _echoes(error["message"], code, obs)
    actions = _error_actions(obs)
    if error.get("action") not in actions:
        found.append(f"action {str(error.get('action'))[:60]!r}, expected one of {actions}")
    ids = frame_ids(obs.text)
    if error.get("id") not in ids:
        found.append(f"id {error.get('id')!r}, expected {ids}")
    if ("id" in error) != (error.get("id") is not None):
        found.append("id null instead of absent")
    allowed_keys = {"code", "message", "action", "id"} | (
        {"retryAfterMs"} if code == "RATE_LIMITED" else set()
    )
    if set(error) - allowed_keys:
        found.append(f"unexpected keys {sorted(set(error) - allowed_keys)}")
    return found


def _error_actions(obs: Observation) -> set[str | None]:
    """What an error's `action` may be: the route's action; on `$default` the body's action
    when the server read the frame and it is one of the protocol's, else null."""
    out: set[str | None] = set()
    for route in {obs.route} if obs.route else routes(obs.text):
        if route != "$default":
            out.add(route)
            continue
        body = server_body(obs.text)
        action = body.get("action") if body is not None else None
        out.add(action if isinstance(action, str) and action in ACTIONS else None)
    return out


def _strings(value: Any) -> Iterable[str]:
    """Every string value in a JSON value (not the keys)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


def _echoes(message: str, code: str, obs: Observation) -> list[str]:
    """The sent strings (of ECHO_MIN characters or more) that the error message repeats.

    A NAME_TAKEN names the member who holds the name (its name passed the checks when it
    joined): a member's name is taken out of the message first.
    """
    if code == "NAME_TAKEN":
        for member in [*obs.others, *([obs.sender_name] if obs.sender_name else [])]:
            message = message.replace(f'"{member}"', '""')
    sent = {value for reading in readings(obs.text) for value in _strings(reading)}
    return [
        f"the error message repeats the sent text {value[:40]!r}"
        for value in sorted(sent)
        if len(value) >= ECHO_MIN and value in message and value not in FIXED_TEXT
    ]


def _message_fields(frame: Frame, kind: str, sender: str, texts: set[str]) -> list[str]:
    found = []
    if frame.get("from") != sender:
        found.append(f"from {frame.get('from')!r}, expected {sender!r}")
    text = frame.get("text")
    if text not in texts:
        found.append(f"text {str(text)[:40]!r} is not the trimmed message")
    if frame.get(kind) != f"{frame.get('from')}: {text}":
        found.append(f"{kind} is not 'from: text'")
    for key in ("ts", "seq"):
        if not isinstance(frame.get(key), int) or isinstance(frame.get(key), bool):
            found.append(f"{key} missing or not an integer")
    if not isinstance(frame.get("messageId"), str) or not frame.get("messageId"):
        found.append("messageId missing")
    if frame.get("messageId") == "spoofed":
        found.append("the client's messageId was used")
    return found


def _texts(obs: Observation) -> set[str]:
    out: set[str] = set()
    for body in _bodies(obs):
        if isinstance(body.get("message"), str):
            out |= trims(body["message"])
    return out


def _public(obs: Observation) -> list[str]:
    sender = obs.sender_name or ""
    texts = _texts(obs)
    ids = frame_ids(obs.text)
    found: list[str] = []
    copies: list[Frame] = []
    for name, frames in obs.others.items():
        if len(frames) != 1 or "publicMessage" not in frames[0]:
            found.append(f"{name} should get one publicMessage, got {_short(frames)}")
            continue
        frame = frames[0]
        found += [f"{name}: {p}" for p in _message_fields(frame, "publicMessage", sender, texts)]
        if "id" in frame:
            found.append(f"{name}'s copy carries the sender's id")
        prev = frame.get("prev")
        if not isinstance(prev, int) or not 0 <= prev < int(frame.get("seq") or 0):
            found.append(f"{name}: prev {prev!r} is not below seq")
        copies.append(frame)
    if len(obs.sender) != 1 or "publicMessage" not in obs.sender[0]:
        return [*found, f"the sender should get its own copy, got {_short(obs.sender)}"]
    own = dict(obs.sender[0])
    if own.get("id") not in ids:
        found.append(f"the sender's copy has id {own.get('id')!r}, expected {ids}")
    own.pop("id", None)
    for copy in copies:
        if copy != own:
            found.append("the copies differ (seq, messageId, ts or text)")
            break
    if not copies:
        found += _message_fields(own, "publicMessage", sender, texts)
    return found


def _private(obs: Observation) -> list[str]:
    sender = obs.sender_name or ""
    texts = _texts(obs)
    ids = frame_ids(obs.text)
    everyone = {**obs.others, sender: obs.sender}
    got = [n for n, fs in everyone.items() if any("privateMessage" in f for f in fs)]
    if len(got) != 1:
        return [f"exactly one member should get the private message; got it: {got}"]
    (recipient,) = got
    found: list[str] = []
    if obs.recipient is not None and recipient != obs.recipient:
        found.append(f"{recipient} got it, expected {obs.recipient}")
    found += _nobody_else(obs, except_=recipient)
    frames = everyone[recipient]
    (message,) = [f for f in frames if "privateMessage" in f]
    found += _message_fields(message, "privateMessage", sender, texts)
    if message.get("to") != recipient:
        found.append(f"to {message.get('to')!r}, expected {recipient!r}")
    if "id" in message:
        found.append("the private message carries the sender's id")
    acks = [f for f in obs.sender if "ack" in f]
    rest = [f for f in obs.sender if "ack" not in f and "privateMessage" not in f]
    if rest:
        found.append(f"the sender got {_short(rest)}")
    expected_id = next(iter(ids)) if len(ids) == 1 else None
    if len(ids) > 1:  # duplicate id keys: either
        expected_id = acks[0].get("id") if acks else None
    if expected_id is None:
        if acks:
            found.append(f"an ack without an id: {_short(acks)}")
        if recipient != sender and [f for f in obs.sender if "privateMessage" in f]:
            found.append("the sender got a copy of its private message")
        return found
    want = {
        "ack": "sendPrivate",
        "id": expected_id,
        "seq": message.get("seq"),
        "messageId": message.get("messageId"),
        "to": recipient,
    }
    if len(acks) != 1:
        return [*found, f"the sender should get one ack, got {_short(obs.sender)}"]
    ack = acks[0]
    for key, value in want.items():
        if ack.get(key) != value:
            found.append(f"ack {key} {ack.get(key)!r}, expected {value!r}")
    if not isinstance(ack.get("ts"), int):
        found.append("ack ts missing")
    return found


def _new_name(obs: Observation) -> set[str]:
    if obs.shown is not None:
        return {obs.shown}
    return {
        unicodedata.normalize("NFC", b["name"].strip())
        for b in _bodies(obs)
        if isinstance(b.get("name"), str)
    }


def _members_frame(frame: Frame, must: set[str], must_not: set[str]) -> list[str]:
    names = frame.get("members")
    if not isinstance(names, list):
        return [f"expected a member list, got {_short([frame])}"]
    found = []
    if names != sorted(names, key=lambda n: (n.casefold(), n)):
        found.append("the member list is not sorted case-insensitively")
    if len(set(names)) != len(names):
        found.append("a name appears twice in the member list")
    if not must <= set(names):
        found.append(f"the member list lacks {sorted(must - set(names))}")
    if must_not & set(names):
        found.append(f"the member list still has {sorted(must_not & set(names))}")
    return found


def _ack_ok(acks: list[Frame], action: str, obs: Observation, **fields: Any) -> list[str]:
    ids = frame_ids(obs.text)
    if ids == {None}:
        return [f"an ack without an id: {_short(acks)}"] if acks else []
    if len(acks) != 1:
        return [f"expected one {action} ack, got {_short(acks)}"]
    ack = acks[0]
    found = []
    if ack.get("ack") != action or ack.get("id") not in ids:
        found.append(f"ack {_short([ack])}, expected ack {action!r} with id in {ids}")
    for key, value in fields.items():
        if ack.get(key) != value:
            found.append(f"ack {key} {ack.get(key)!r}, expected {value!r}")
    return found


def _rename(obs: Observation) -> list[str]:
    old = obs.sender_name or ""
    found: list[str] = []
    for new in _new_name(obs):
        found = []
        notice = {
            "systemMessage": f"{old} is now known as {new}",
            "event": "rename",
            "name": new,
            "previous": old,
        }
        everyone = {**obs.others, "(sender)": obs.sender}
        for who, frames in everyone.items():
            plain = [f for f in frames if "ack" not in f]
            if len(plain) != 2 or plain[1] != notice:
                found.append(f"{who} should get the member list and {notice}, got {_short(frames)}")
                continue
            found += [f"{who}: {p}" for p in _members_frame(plain[0], {new}, {old} - {new})]
        acks = [f for f in obs.sender if "ack" in f]
        found += _ack_ok(acks, "setName", obs, name=new)
        if acks and obs.sender.index(acks[0]) == 0:
            found.append("the ack came before the member list")
        if obs.sender_name_after not in (None, new):
            found.append(f"the table holds {obs.sender_name_after!r}, not {new!r}")
        if not found:
            return []
    return found


def _join(obs: Observation) -> list[str]:
    found: list[str] = []
    for new in _new_name(obs):
        found = []
        notice = {"systemMessage": f"{new} has joined the chat", "event": "join", "name": new}
        for who, frames in obs.others.items():
            if len(frames) != 2 or frames[1] != notice:
                found.append(f"{who} should get the member list and {notice}, got {_short(frames)}")
                continue
            found += [f"{who}: {p}" for p in _members_frame(frames[0], {new}, set())]
        plain = [f for f in obs.sender if "ack" not in f and "history" not in f]
        if len(plain) != 2 or plain[1] != notice or "members" not in plain[0]:
            found.append(f"the joiner should get the member list and {notice}")
        else:
            found += _members_frame(plain[0], {new}, set())
            history = [i for i, f in enumerate(obs.sender) if "history" in f]
            members_at = obs.sender.index(plain[0])
            notice_at = obs.sender.index(plain[1])
            if any(not members_at < i < notice_at for i in history):
                found.append("history frames outside member list ... join notice")
            found += history_bound_problems([obs.sender[i] for i in history])
        acks = [f for f in obs.sender if "ack" in f]
        found += _ack_ok(acks, "setName", obs, name=new)
        if obs.sender_name_after not in (None, new):
            found.append(f"the table holds {obs.sender_name_after!r}, not {new!r}")
        if not found:
            return []
    return found


def _quiet_with_ack(action: str) -> Check:
    def check(obs: Observation) -> list[str]:
        found = _nobody_else(obs)
        acks = [f for f in obs.sender if "ack" in f]
        if len(acks) != len(obs.sender):
            found.append(f"the sender got {_short(obs.sender)}")
        extra = {"name": obs.sender_name} if action == "setName" else {}
        found += _ack_ok(acks, action, obs, **extra)
        if action == "setName" and obs.sender_name_after not in (None, obs.sender_name):
            found.append(f"the name changed to {obs.sender_name_after!r}")
        return found

    return check


def _wire(value: Any) -> bytes:
    """A frame (or a message in it) as the server sends it: compact UTF-8 JSON, without
    `\\u` escapes for characters that need none."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def history_bound_problems(frames: list[Frame]) -> list[str]:
    """One history reply (its frames): at most HISTORY_MAX_MESSAGES messages and
    HISTORY_MAX_BYTES bytes of them, each counted as compact UTF-8 JSON."""
    items = [item for f in frames if isinstance(f.get("history"), list) for item in f["history"]]
    size = sum(len(_wire(item)) for item in items)
    found = []
    if len(items) > HISTORY_MAX_MESSAGES:
        found.append(f"a history reply of {len(items)} messages (at most {HISTORY_MAX_MESSAGES})")
    if size > HISTORY_MAX_BYTES:
        found.append(f"a history reply of {size} bytes of messages (at most {HISTORY_MAX_BYTES})")
    return found


def _history(obs: Observation) -> list[str]:
    found = _nobody_else(obs)
    if not obs.sender or any("history" not in f for f in obs.sender):
        return [*found, f"the sender should get history frames only, got {_short(obs.sender)}"]
    *earlier, last = obs.sender
    if last.get("final") is not True or not isinstance(last.get("complete"), bool):
        found.append("the last history frame is not final with complete true/false")
    if any(f.get("final") for f in earlier):
        found.append("a history frame before the last is final")
    ids = frame_ids(obs.text)
    if last.get("id") not in ids:
        found.append(f"the last history frame has id {last.get('id')!r}, expected {ids}")
    since = [b.get("since") for b in _bodies(obs)]
    floor = min((s for s in since if isinstance(s, int) and not isinstance(s, bool)), default=0)
    seqs = []
    for frame in obs.sender:
        if not isinstance(frame["history"], list):
            found.append("history is not a list")
            continue
        for item in frame["history"]:
            if not isinstance(item, dict) or "publicMessage" not in item:
                found.append(f"a history item is not a public message: {_short([item])}")
                continue
            seqs.append(item.get("seq"))
        if len(_wire(frame)) > 32 * 1024:  # one API Gateway frame (and billing unit)
            found.append("a history frame is over 32 KB")
    found += history_bound_problems(obs.sender)
    if any(not isinstance(s, int) or s <= floor for s in seqs):
        found.append(f"history items with seq <= since ({floor})")
    if seqs != sorted(seqs, key=lambda s: s if isinstance(s, int) else 0):
        found.append("history is not oldest first")
    return found
