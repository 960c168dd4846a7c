"""docs/protocol.md (v1.1) as checks: what a sender and the other members must receive.

Two parts:

- `expected_outcomes(text, ...)`: a model of the protocol that says which outcomes a frame
  may have (used for the generated frames of the property tests; the corpus states its
  own). Where the protocol leaves a choice open (which of two duplicate keys counts, where
  INVALID_ID comes in the order of checks, what "trimmed" means) it allows every reading.
- `problems(outcome, observation)`: what is wrong with what everyone received, if the
  frame had that outcome. An observation passes when one allowed outcome has no problems.

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
ROUTES = frozenset({"$connect", "$disconnect", "$default", "setName", "sendPublic", "sendPrivate"})
NAME_MAX = 32
MESSAGE_MAX = 2000
ID_MAX = 64
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
    """The frame as a JSON value, for each reading of duplicate keys (last wins, first wins).

    Empty when it is not JSON for Python's json (which the server uses). A value is a
    dict for an object. Integers longer than Python's digit limit are read anyway (with
    their magnitude, not their digits): JSON sets no limit.
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


def strict_json(text: str) -> bool:
    """Is `text` JSON that any parser reads (no NaN/Infinity, no integers past 4300 digits)?"""

    def refuse(literal: str) -> Any:
        raise ValueError(literal)

    try:
        json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError):
        return False
    return True


def frame_ids(text: str) -> set[str | None]:
    """The id the error or acknowledgement must carry: the frame's valid id, else None."""
    ids: set[str | None] = set()
    for body in readings(text):
        if isinstance(body, dict):
            candidate = body.get("id")
            ids.add(candidate if valid_id(candidate) else None)
        else:
            ids.add(None)
    return ids or {None}


# --- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    """Who is in the room besides the sender, and the sender's own name (None: unnamed)."""

    sender_name: str | None
    members: tuple[str, ...] = ("Bob", "Carol")


def expected_outcomes(text: str, room: Room) -> set[str]:
    """Every outcome the protocol allows for `text` from the sender in `room`."""
    bodies = readings(text)
    if not bodies or not all(isinstance(b, dict) for b in bodies):
        return {"INVALID_JSON"}
    allowed: set[str] = set()
    for body in bodies:
        allowed |= _outcomes_of(body, room)
    if not strict_json(text):  # NaN, Infinity, or more digits than Python reads: either
        allowed.add("INVALID_JSON")
    return allowed


def _outcomes_of(body: dict[str, Any], room: Room) -> set[str]:
    action = body.get("action")
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
        if any(name.casefold() == m.casefold() for m in room.members):
            return {"NAME_TAKEN"}
        if any(_ascii_skeleton(name) == _ascii_skeleton(m) for m in room.members):
            return {"NAME_TAKEN", success}
        return {success}
    # Scripts, invisible characters and confusables need Unicode's tables: any of these.
    return {"INVALID_NAME", "NAME_TAKEN", success}


def _ascii_skeleton(name: str) -> str:
    """A rough UTS #39 skeleton for ASCII letters (rn/m, vv/w, cl/d, I/l), case folded."""
    out = name.replace("I", "l").casefold()
    for many, one in (("rn", "m"), ("vv", "w"), ("cl", "d")):
        out = out.replace(many, one)
    return out


def _send(body: dict[str, Any], room: Room, *, private: bool) -> set[str]:
    if room.sender_name is None:
        return {"NAME_REQUIRED"}
    message = body.get("message")
    if not isinstance(message, str) or has_surrogate(message):
        return {"INVALID_MESSAGE"}
    outcomes: set[str] = set()
    for text in trims(message):
        if not text:
            outcomes.add("INVALID_MESSAGE")
        elif len(text) > MESSAGE_MAX:
            outcomes.add("MESSAGE_TOO_LONG")
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
    if (
        to.isascii()
        and to.isalpha()
        and all(_ascii_skeleton(to) != _ascii_skeleton(n) for n in names)
    ):
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
    bodies = _bodies(obs) if code != "INVALID_JSON" else []  # unreadable: no action
    # The action is echoed when it is text that can be sent back (no lone surrogates),
    # cut to 64 characters; otherwise it is null (protocol.md: "could not be read").
    actions = {
        b["action"][:64]
        if isinstance(b.get("action"), str) and not has_surrogate(b["action"])
        else None
        for b in bodies
    }
    if error.get("action") not in (actions or {None}):
        found.append(f"action {str(error.get('action'))[:60]!r}, expected one of {actions}")
    ids = frame_ids(obs.text) if code != "INVALID_JSON" else {None}
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
        if len(json.dumps(frame).encode()) > 32 * 1024:
            found.append("a history frame is over 32 KB")
    if any(not isinstance(s, int) or s <= floor for s in seqs):
        found.append(f"history items with seq <= since ({floor})")
    if seqs != sorted(seqs, key=lambda s: s if isinstance(s, int) else 0):
        found.append("history is not oldest first")
    return found
