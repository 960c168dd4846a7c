"""Write the hostile-frame corpus: tests/hostile/corpus/{frames,large}.jsonl and raw/.

Run `python -m tests.hostile.build_corpus` after editing a case below; a test fails while
the committed files differ from what this writes. Every expectation here is read from
docs/protocol.md (v1.1), not from the server's code:

- `expect` lists the acceptable outcomes: an error code the sender must receive (and
  nobody else), or `ok:<kind>` for a frame the protocol accepts (kinds in
  tests/hostile/protocol.py). More than one entry means that the protocol leaves the
  choice open; `note` says why.
- `sender` is the state of the sending connection: `named` (it joined as `Hostile`, or
  as `sender_name`) or `unnamed` (connected, no name). The room also holds `Bob` and
  `Carol`, who must receive exactly what the outcome says, and nothing for an error.
- `frame` is sent as `json.dumps(frame)`; `text` is sent verbatim (frames that JSON
  cannot build: duplicate keys, NaN, broken syntax, nesting thousands deep).
- `route` sends the frame on that route whatever its `action` says (a frame that API
  Gateway read otherwise than the function: handler only). Without it the harness picks
  the route API Gateway would (tests/hostile/protocol.py `api_gateway_route`).
- `sandbox: true` marks the cases also sent through the sandbox over a real WebSocket
  (tests/hostile/test_corpus_sandbox.py); `close` is the code API Gateway closes with
  there (1009 for a frame over 32 KB), where the handler would still answer.

The file is JSON Lines with ASCII escapes, so invisible characters, lone surrogates and
the like are visible in a diff (`\\u202e`, `\\ud800`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FRAMES = CORPUS / "frames.jsonl"
LARGE = CORPUS / "large.jsonl"  # cases whose line is over LARGE_LINE bytes
LARGE_LINE = 4096
RAW = CORPUS / "raw"
RAW_INDEX = RAW / "cases.json"

NAME_MAX = 32
MESSAGE_MAX = 2000
MESSAGE_MAX_BYTES = 4000
ID_MAX = 64
CLIENT_KEY = "k" * 15 + "0123456789_-AZaz"  # 31 characters, every kind allowed

Case = dict[str, Any]

# Values of every JSON type but the one a field wants (strings are covered by the limit
# and Unicode cases). `null` is listed apart: the protocol does not say whether a key set
# to null is "missing" or "of the wrong type".
WRONG_TYPES: list[tuple[str, Any]] = [
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("int", 42),
    ("negative", -1),
    ("float", 1.5),
    ("float-max", 1.7976931348623157e308),
    ("empty-list", []),
    ("list-of-string", ["x"]),
    ("empty-object", {}),
    ("object", {"text": "hi"}),
]


class Corpus:
    """Collects cases; checks ids are unique (the harness and `pytest -k` rely on it)."""

    def __init__(self) -> None:
        self.cases: list[Case] = []
        self._ids: set[str] = set()
        self._frame_ids = 0

    def fresh_id(self) -> str:
        """A frame `id` unique in the corpus (so that de-duplication never joins two cases)."""
        self._frame_ids += 1
        return f"h{self._frame_ids:03d}"

    def add(
        self,
        case_id: str,
        category: str,
        description: str,
        expect: str | list[str],
        *,
        frame: Any = None,
        text: str | None = None,
        sender: str = "named",
        **extra: Any,
    ) -> None:
        if case_id in self._ids:
            raise ValueError(f"duplicate case id {case_id}")
        if (frame is None) == (text is None):
            raise ValueError(f"{case_id}: give exactly one of frame and text")
        self._ids.add(case_id)
        case: Case = {"id": case_id, "category": category, "description": description}
        case["sender"] = sender
        if frame is not None:
            case["frame"] = frame
        else:
            case["text"] = text
        case["expect"] = [expect] if isinstance(expect, str) else list(expect)
        case.update({k: v for k, v in extra.items() if v is not None})
        self.cases.append(case)


def wrong_types(c: Corpus) -> None:
    cat = "wrong-type"
    for label, value in [*WRONG_TYPES, ("string-number", "7")]:
        if label != "string-number":
            c.add(
                f"action-{label}",
                cat,
                f"action is {label} ({json.dumps(value)})",
                "UNKNOWN_ACTION",
                frame={"action": value, "message": "hi"},
            )
        c.add(
            f"name-{label}",
            cat,
            f"setName with name {label} ({json.dumps(value)})",
            "ok:rename" if label == "string-number" else "INVALID_NAME",
            frame={"action": "setName", "name": value},
        )
        c.add(
            f"message-{label}",
            cat,
            f"sendPublic with message {label} ({json.dumps(value)})",
            "ok:public" if label == "string-number" else "INVALID_MESSAGE",
            frame={"action": "sendPublic", "message": value},
        )
        c.add(
            f"to-{label}",
            cat,
            f"sendPrivate with to {label} ({json.dumps(value)})",
            "UNKNOWN_RECIPIENT",
            frame={"action": "sendPrivate", "to": value, "message": "hi"},
        )
        if label != "string-number":
            c.add(
                f"id-{label}",
                cat,
                f"ping with id {label} ({json.dumps(value)}): ids are strings",
                "INVALID_ID",
                frame={"action": "ping", "id": value},
            )
        if label != "string-number":
            c.add(
                f"clientKey-{label}",
                cat,
                f"a join with clientKey {label} ({json.dumps(value)}): keys are strings",
                "INVALID_ID",
                frame={"action": "setName", "name": "Zed", "clientKey": value},
                sender="unnamed",
            )
        if label in ("zero", "int"):
            continue  # valid values of `since`: see limits
        since_expect: str | list[str] = "INVALID_ID"
        note = None
        if label == "float-max":
            since_expect = ["INVALID_ID", "ok:history"]
            note = "1.7976931348623157e308 is a whole number written as a float; 'integer' is open"
        c.add(
            f"since-{label}",
            cat,
            f"history with since {label} ({json.dumps(value)})",
            since_expect,
            frame={"action": "history", "since": value},
            note=note,
        )
    c.add("action-missing", cat, "no action key", "UNKNOWN_ACTION", frame={"message": "hi"})
    c.add("action-null", cat, "action null", "UNKNOWN_ACTION", frame={"action": None})
    c.add("name-missing", cat, "setName without name", "INVALID_NAME", frame={"action": "setName"})
    c.add(
        "name-null",
        cat,
        "setName with name null",
        "INVALID_NAME",
        frame={"action": "setName", "name": None},
    )
    c.add(
        "message-missing",
        cat,
        "sendPublic without message",
        "INVALID_MESSAGE",
        frame={"action": "sendPublic"},
    )
    c.add(
        "message-null",
        cat,
        "sendPublic with message null",
        "INVALID_MESSAGE",
        frame={"action": "sendPublic", "message": None},
    )
    c.add(
        "private-message-list",
        cat,
        "sendPrivate to Bob with message a list",
        "INVALID_MESSAGE",
        frame={"action": "sendPrivate", "to": "Bob", "message": ["hi"]},
    )
    c.add(
        "to-missing",
        cat,
        "sendPrivate without to",
        "UNKNOWN_RECIPIENT",
        frame={"action": "sendPrivate", "message": "hi"},
    )
    c.add(
        "to-null",
        cat,
        "sendPrivate with to null",
        "UNKNOWN_RECIPIENT",
        frame={"action": "sendPrivate", "to": None, "message": "hi"},
    )
    c.add(
        "id-null",
        cat,
        "ping with id null",
        ["INVALID_ID", "ok:ping"],
        frame={"action": "ping", "id": None},
        note="the protocol does not say whether a null id is a missing id or a bad one",
    )
    c.add(
        "clientKey-null",
        cat,
        "a join with clientKey null: the same as none",
        "ok:join",
        frame={"action": "setName", "name": "Zed", "clientKey": None},
        sender="unnamed",
    )
    c.add(
        "since-null",
        cat,
        "history with since null",
        ["INVALID_ID", "ok:history"],
        frame={"action": "history", "since": None},
        note="the protocol does not say whether a null since is missing or bad",
    )
    for label, value in [("string", "5"), ("negative", -1), ("true", True), ("list", [1])]:
        c.add(
            f"setname-since-{label}",
            cat,
            f"a join (setName) with since {label} ({json.dumps(value)})",
            ["INVALID_ID"],
            frame={"action": "setName", "name": "Zed", "since": value},
            sender="unnamed",
        )
    for label, value in [("true", True), ("object", {"id": "x"}), ("int", 7)]:
        c.add(
            f"public-id-{label}",
            cat,
            f"an otherwise valid sendPublic with id {label}: refused, delivered to nobody",
            "INVALID_ID",
            frame={"action": "sendPublic", "message": "hi", "id": value},
        )


def limits(c: Corpus) -> None:
    cat = "limits"
    # names: 1-32 characters after trimming and NFC
    for size, expect in [(1, "ok:rename"), (31, "ok:rename"), (32, "ok:rename")]:
        name = ("Zed" * 11)[:size] if size > 1 else "Z"
        c.add(f"name-{size}", cat, f"a {size}-character name", expect, frame=_set(name))
    c.add("name-33", cat, "a 33-character name", "INVALID_NAME", frame=_set("Zed" * 11))
    c.add("name-1000", cat, "a 1000-character name", "INVALID_NAME", frame=_set("Z" * 1000))
    c.add(
        "name-32-padded",
        cat,
        "32 characters between spaces (36 before trimming)",
        "ok:rename",
        frame=_set("  " + "Zed" * 10 + "Ze  "),
        shown="Zed" * 10 + "Ze",
    )
    c.add("name-32-han", cat, "32 Han characters", "ok:rename", frame=_set("雷" * 32))
    c.add("name-33-han", cat, "33 Han characters", "INVALID_NAME", frame=_set("雷" * 33))
    c.add(
        "name-32-astral",
        cat,
        "32 astral characters (64 UTF-16 units): length counts code points",
        "ok:rename",
        frame=_set("𠀀" * 32),
    )
    c.add(
        "name-33-astral",
        cat,
        "33 astral characters",
        "INVALID_NAME",
        frame=_set("𠀀" * 33),
    )
    c.add(
        "name-nfd-shrinks",
        cat,
        "41 code points in NFD (e + U+0301) that NFC composes to 27",
        "ok:rename",
        frame=_set("Ze\u0301" * 13 + "e\u0301"),
        shown="Z\u00e9" * 13 + "\u00e9",
    )
    c.add(
        "name-nfc-grows-30",
        cat,
        "10 x U+FB2C, which NFC expands to 30 characters",
        "ok:rename",
        frame=_set("\ufb2c" * 10),
        shown="\u05e9\u05bc\u05c1" * 10,
    )
    c.add(
        "name-nfc-grows-33",
        cat,
        "11 x U+FB2C: 11 characters as sent, 33 after NFC",
        "INVALID_NAME",
        frame=_set("\ufb2c" * 11),
    )
    for label, value in [("empty", ""), ("space", " "), ("blank", " \t\n\r ")]:
        c.add(f"name-{label}", cat, f"name {label}", "INVALID_NAME", frame=_set(value))
    c.add(
        "name-3-marks",
        cat,
        "three different stacked combining marks (U+0334-U+0336 do not compose)",
        "ok:rename",
        frame=_set("Ze\u0334\u0335\u0336d"),
    )
    c.add(
        "name-4-marks",
        cat,
        "four different stacked combining marks",
        "INVALID_NAME",
        frame=_set("Ze\u0334\u0335\u0336\u0337d"),
    )
    c.add(
        "name-4-same-marks",
        cat,
        "four times the same combining mark",
        "INVALID_NAME",
        frame=_set("Ze\u0334\u0334\u0334\u0334d"),
    )


def message_limits(c: Corpus) -> None:
    cat = "limits"
    # messages: 1-2000 characters after trimming
    for size, expect in [(1, "ok:public"), (1999, "ok:public"), (2000, "ok:public")]:
        c.add(
            f"message-{size}",
            cat,
            f"a {size}-character message",
            expect,
            frame=_public("m" * size),
        )
    for size in (2001, 5000, 30000):
        c.add(
            f"message-{size}",
            cat,
            f"a {size}-character message",
            "MESSAGE_TOO_LONG",
            frame=_public("m" * size),
        )
    c.add(
        "message-2000-padded",
        cat,
        "2000 characters between 10 spaces and newlines",
        "ok:public",
        frame=_public("  \n  " + "m" * 2000 + " \n \t "),
    )
    c.add(
        "message-2000-inner-spaces",
        cat,
        "a, 1998 spaces, b: 2000 characters, inner spaces kept",
        "ok:public",
        frame=_public("a" + " " * 1998 + "b"),
    )
    c.add(
        "message-2000-astral",
        cat,
        "2000 emoji: 2000 characters but 8000 UTF-8 bytes",
        "MESSAGE_TOO_LONG",
        frame=_public("😀" * 2000),
    )
    c.add(
        "message-2001-astral",
        cat,
        "2001 emoji",
        "MESSAGE_TOO_LONG",
        frame=_public("😀" * 2001),
    )
    # ... and at most 4000 bytes of UTF-8 after trimming
    for label, text, expect in [
        ("1000-emoji", "😀" * 1000, "ok:public"),
        ("1001-emoji", "😀" * 1001, "MESSAGE_TOO_LONG"),
        ("2000-two-byte", "é" * 2000, "ok:public"),
        ("1999-two-byte-and-emoji", "é" * 1999 + "😀", "MESSAGE_TOO_LONG"),
        ("1333-euro", "€" * 1333, "ok:public"),
        ("1334-euro", "€" * 1334, "MESSAGE_TOO_LONG"),
        ("3999-bytes", "😀" * 999 + "mmm", "ok:public"),
        ("4000-bytes-padded", "  \n" + "😀" * 1000 + " \n ", "ok:public"),
        ("4001-bytes", "😀" * 1000 + "m", "MESSAGE_TOO_LONG"),
    ]:
        size = len(text.strip().encode())
        c.add(
            f"message-{label}",
            cat,
            f"a message of {len(text.strip())} characters, {size} UTF-8 bytes after trimming",
            expect,
            frame=_public(text),
        )
    c.add(
        "message-2000-nul",
        cat,
        "2000 NUL characters: within the length, but control characters",
        "INVALID_MESSAGE",
        frame=_public("\u0000" * 2000),
    )
    c.add(
        "message-2001-nul",
        cat,
        "2001 NUL characters: the length is checked before the characters",
        "MESSAGE_TOO_LONG",
        frame=_public("\u0000" * 2001),
    )
    c.add(
        "message-2001-private",
        cat,
        "a 2001-character private message to Bob",
        "MESSAGE_TOO_LONG",
        frame={"action": "sendPrivate", "to": "Bob", "message": "m" * 2001},
    )
    c.add(
        "message-4002-bytes-private",
        cat,
        "a private message to Bob of 1334 euro signs (4002 bytes)",
        "MESSAGE_TOO_LONG",
        frame={"action": "sendPrivate", "to": "Bob", "message": "€" * 1334},
    )
    c.add(
        "message-2000-private",
        cat,
        "a 2000-character private message to Bob",
        "ok:private",
        frame={"action": "sendPrivate", "to": "Bob", "message": "m" * 2000},
        recipient="Bob",
    )
    for label, value in [
        ("empty", ""),
        ("space", " "),
        ("blank", "\n\t \r\n"),
        ("ideographic-space", "\u3000"),
        ("nbsp", "\u00a0\u00a0"),
        ("line-separator", "\u2028"),
    ]:
        c.add(f"message-{label}", cat, f"message {label}", "INVALID_MESSAGE", frame=_public(value))


def id_limits(c: Corpus) -> None:
    cat = "limits"
    # ids: 1-64 printable ASCII characters (! to ~)
    c.add("id-1", cat, "a 1-character id", "ok:ping", frame=_ping("a"))
    c.add("id-64", cat, "a 64-character id", "ok:ping", frame=_ping("i" * 64))
    c.add("id-65", cat, "a 65-character id", "INVALID_ID", frame=_ping("i" * 65))
    c.add("id-10000", cat, "a 10,000-character id", "INVALID_ID", frame=_ping("i" * 10000))
    c.add("id-empty", cat, "an empty id", "INVALID_ID", frame=_ping(""))
    c.add("id-bang", cat, "id '!' (lowest printable)", "ok:ping", frame=_ping("!"))
    c.add("id-tilde", cat, "id '~' (highest printable)", "ok:ping", frame=_ping("~"))
    c.add(
        "id-all-printable",
        cat,
        "id of the 64 characters ! to ` (quotes and backslash included)",
        "ok:ping",
        frame=_ping("".join(chr(c) for c in range(0x21, 0x61))),
    )
    for label, value in [
        ("space", " "),
        ("inner-space", "a b"),
        ("del", "a\u007f"),
        ("tab", "a\tb"),
        ("newline", "a\n"),
        ("latin1", "caf\u00e9"),
        ("nul", "a\u0000"),
    ]:
        c.add(f"id-{label}", cat, f"id with {label}", "INVALID_ID", frame=_ping(value))
    c.add(
        "id-64-public",
        cat,
        "sendPublic with a 64-character id: delivered, acknowledged with it",
        "ok:public",
        frame={"action": "sendPublic", "message": "hi", "id": "p" * 63 + "1"},
    )
    c.add(
        "id-65-public",
        cat,
        "sendPublic with a 65-character id: refused, delivered to nobody",
        "INVALID_ID",
        frame={"action": "sendPublic", "message": "hi", "id": "p" * 65},
    )
    c.add(
        "id-65-private",
        cat,
        "sendPrivate to Bob with a 65-character id: refused, Bob gets nothing",
        "INVALID_ID",
        frame={"action": "sendPrivate", "to": "Bob", "message": "hi", "id": "q" * 65},
    )
    c.add(
        "id-setname",
        cat,
        "a rename with an id: acknowledged",
        "ok:rename",
        frame={"action": "setName", "name": "Zed", "id": c.fresh_id()},
    )
    c.add(
        "id-join",
        cat,
        "a join with an id: acknowledged after the member list",
        "ok:join",
        frame={"action": "setName", "name": "Zed", "id": c.fresh_id()},
        sender="unnamed",
    )
    # to: matched by key; over 32 characters is unknown without a lookup
    for label, value in [
        ("exact", "Bob"),
        ("padded", "  Bob \n"),
        ("lower", "bob"),
        ("upper", "BOB"),
        ("fullwidth", "\uff22\uff2f\uff22"),
        ("math-bold", "\U0001d401\U0001d428\U0001d41b"),
    ]:
        c.add(
            f"to-{label}",
            cat,
            f"sendPrivate to {label} Bob ({value!r})",
            "ok:private",
            frame={"action": "sendPrivate", "to": value, "message": "psst"},
            recipient="Bob",
        )
    c.add(
        "to-self",
        cat,
        "sendPrivate to oneself (allowed)",
        "ok:private",
        frame={"action": "sendPrivate", "to": "Hostile", "message": "note to self"},
        recipient="Hostile",
    )
    for label, value in [
        ("prefix", "Bo"),
        ("32", "B" * 32),
        ("33", "B" * 33),
        ("33-bob", "Bob" + " x" * 15),
        ("5000", "x" * 5000),
        ("empty", ""),
        ("blank", " \t "),
    ]:
        c.add(
            f"to-{label}",
            cat,
            f"sendPrivate to {label}",
            "UNKNOWN_RECIPIENT",
            frame={"action": "sendPrivate", "to": value, "message": "psst"},
        )
    # since: an integer >= 0
    for label, number in [
        ("zero", 0),
        ("one", 1),
        ("2p31", 2**31),
        ("2p53-minus-1", 2**53 - 1),
    ]:
        c.add(
            f"since-{label}",
            cat,
            f"history since {number}",
            "ok:history",
            frame={"action": "history", "since": number, "id": c.fresh_id()},
        )
    for label, number in [
        ("2p53", 2**53),
        ("2p63-minus-1", 2**63 - 1),
        ("2p64", 2**64),
        ("10p38", 10**38),
        ("10p39", 10**39),
        ("10p400", 10**400),
    ]:
        c.add(
            f"since-{label}",
            cat,
            f"history since {number} (past JavaScript's exact integers)",
            ["ok:history", "INVALID_ID"],
            frame={"action": "history", "since": number, "id": c.fresh_id()},
            note="an integer >= 0 by the letter of the protocol, which sets no upper bound; "
            "the server refuses since >= 2^53",
        )
    c.add(
        "since-negative-zero",
        cat,
        "history since -0 (JSON's -0 is the integer 0)",
        "ok:history",
        text='{"action": "history", "since": -0}',
    )
    c.add(
        "since-minus-one",
        cat,
        "history since -1",
        "INVALID_ID",
        frame={"action": "history", "since": -1},
    )
    c.add(
        "since-one-point-zero",
        cat,
        "history since 1.0",
        ["ok:history", "INVALID_ID"],
        text='{"action": "history", "since": 1.0}',
        note="1.0 is an integer in value but not in form; the protocol does not say",
    )
    c.add(
        "since-exponent",
        cat,
        "history since 1e2",
        ["ok:history", "INVALID_ID"],
        text='{"action": "history", "since": 1e2}',
        note="1e2 is an integer in value but not in form; the protocol does not say",
    )
    c.add(
        "since-join",
        cat,
        "a join with since 0 (a client re-claiming its name)",
        "ok:join",
        frame={"action": "setName", "name": "Zed", "since": 0},
        sender="unnamed",
    )


def client_key_limits(c: Corpus) -> None:
    cat = "limits"
    # clientKey (setName): 16-64 characters of A-Z a-z 0-9 _ -
    for label, key, expect in [
        ("16", "k" * 16, "ok:join"),
        ("64", "K" * 63 + "-", "ok:join"),
        ("all-kinds", CLIENT_KEY, "ok:join"),
        ("15", "k" * 15, "INVALID_ID"),
        ("65", "k" * 65, "INVALID_ID"),
        ("10000", "k" * 10000, "INVALID_ID"),
        ("empty", "", "INVALID_ID"),
        ("space", "k" * 15 + " k", "INVALID_ID"),
        ("padded", " " + "k" * 16 + " ", "INVALID_ID"),
        ("dot", "k" * 16 + ".", "INVALID_ID"),
        ("plus-slash", "k" * 14 + "+/", "INVALID_ID"),
        ("equals", "k" * 16 + "==", "INVALID_ID"),
        ("latin1", "\u00e9" * 16, "INVALID_ID"),
        ("fullwidth", "\uff4b" * 16, "INVALID_ID"),
        ("nul", "k" * 16 + "\u0000", "INVALID_ID"),
        ("newline", "k" * 16 + "\n", "INVALID_ID"),
        ("lone-surrogate", "k" * 16 + "\ud800", "INVALID_ID"),
    ]:
        c.add(
            f"clientKey-{label}",
            cat,
            f"a join with a clientKey {label} ({len(key)} characters)",
            expect,
            frame={"action": "setName", "name": "Zed", "clientKey": key, "id": c.fresh_id()},
            sender="unnamed",
        )
    c.add(
        "clientKey-rename",
        cat,
        "a rename with a valid clientKey",
        "ok:rename",
        frame={"action": "setName", "name": "Zed", "clientKey": CLIENT_KEY},
    )
    c.add(
        "clientKey-rename-bad",
        cat,
        "a rename with a 15-character clientKey: refused like a join's",
        "INVALID_ID",
        frame={"action": "setName", "name": "Zed", "clientKey": "k" * 15},
    )
    c.add(
        "clientKey-same-name-bad",
        cat,
        "setName with one's own name and a bad clientKey",
        "INVALID_ID",
        frame={"action": "setName", "name": "Hostile", "clientKey": "!"},
    )
    c.add(
        "clientKey-on-public",
        cat,
        "a bad clientKey on sendPublic: not a field of sendPublic, ignored",
        "ok:public",
        frame={"action": "sendPublic", "message": "hi", "clientKey": "!"},
    )


def unicode_cases(c: Corpus) -> None:
    cat = "unicode"
    invalid_names = [
        ("lone-high", "\ud800", "a lone high surrogate"),
        ("lone-low", "Zed\udc00", "a lone low surrogate after letters"),
        ("reversed-pair", "\ude00\ud83d", "a surrogate pair in the wrong order"),
        ("nul", "Ze\u0000d", "NUL inside"),
        ("nul-only", "\u0000", "only NUL"),
        ("bell", "Zed\u0007", "BEL"),
        ("escape", "\u001b[31mZed", "an ANSI escape sequence"),
        ("nel", "Z\u0085ed", "NEL (C1 control) inside"),
        ("bom", "\ufeffZed", "a BOM (U+FEFF) in front"),
        ("rlo", "Zed\u202e", "RIGHT-TO-LEFT OVERRIDE"),
        ("rlo-inside", "Z\u202edeZ", "RIGHT-TO-LEFT OVERRIDE inside"),
        ("isolate", "\u2066Zed\u2069", "LEFT-TO-RIGHT ISOLATE ... POP"),
        ("lrm", "Ze\u200ed", "LEFT-TO-RIGHT MARK"),
        ("zwsp", "Z\u200bed", "ZERO WIDTH SPACE"),
        ("zwj", "Z\u200ded", "ZERO WIDTH JOINER"),
        ("word-joiner", "Ze\u2060d", "WORD JOINER"),
        ("soft-hyphen", "Ze\u00add", "SOFT HYPHEN"),
        ("tag", "Zed\U000e0041", "a TAG character"),
        ("nonchar-fffe", "Zed\ufffe", "non-character U+FFFE"),
        ("nonchar-ffff", "\uffff", "non-character U+FFFF"),
        ("nonchar-fdd0", "Ze\ufdd0d", "non-character U+FDD0"),
        ("max-code-point", "Zed\U0010ffff", "U+10FFFF, the last code point (a non-character)"),
        ("private-use", "\ue000Zed", "a private-use character"),
        ("private-use-plane-15", "\U000f0000", "a plane-15 private-use character"),
        ("unassigned", "Zed\u0378", "an unassigned code point (U+0378)"),
        ("hangul-filler", "\u3164", "HANGUL FILLER"),
        ("halfwidth-filler", "Z\uffa0ed", "HALFWIDTH HANGUL FILLER"),
        ("braille-blank", "\u2800Zed", "BRAILLE PATTERN BLANK"),
        ("variation-selector", "Zed\ufe0f", "VARIATION SELECTOR-16"),
        ("cgj", "Ze\u034fd", "COMBINING GRAPHEME JOINER"),
        ("nbsp", "Z\u00a0ed", "NO-BREAK SPACE"),
        ("em-space", "Z\u2003ed", "EM SPACE"),
        ("ideographic-space", "雷\u3000雷", "IDEOGRAPHIC SPACE"),
        ("two-spaces", "Z  ed", "two spaces in a row"),
        ("line-separator", "Z\u2028ed", "LINE SEPARATOR"),
        ("colon", "Ze:d", "a colon"),
        ("colon-only", ":", "only a colon"),
        ("combining-run", "Z" + "\u0334" * 40, "a run of 40 combining marks"),
        ("zalgo", "Z\u0300\u0301\u0302\u0303\u0304ed", "five stacked accents"),
        ("mixed-cyrillic", "Z\u0435d", "Latin with a Cyrillic e"),
        ("mixed-greek", "\u0396ed", "a Greek capital Zeta before Latin"),
        ("mixed-cherokee", "\u13aaed", "a Cherokee letter before Latin"),
        ("mixed-arabic-latin", "Zed\u0645", "Latin and Arabic"),
        ("cyrillic-bob", "\u0412ob", "Cyrillic Ve with Latin ob"),
        ("repeated-mark", "Ze\u0334\u0334d", "the same combining mark twice on one letter"),
        ("repeated-diaeresis", "Zoe\u0308\u0308", "a diaeresis twice on one letter"),
        ("leading-mark", "\u0301Zed", "a combining mark with no letter under it"),
        ("mark-after-space", "Zed \u0301x", "a combining mark on a space"),
        ("hangul-choseong-filler", "\u115fZed", "HANGUL CHOSEONG FILLER (no glyph)"),
        ("null-notehead", "Zed\U0001d159", "MUSICAL SYMBOL NULL NOTEHEAD (no glyph)"),
        ("half-fill-space", "Zed\u303f", "IDEOGRAPHIC HALF FILL SPACE (no glyph)"),
        ("mongolian-vowel-separator", "Ze\u180ed", "MONGOLIAN VOWEL SEPARATOR"),
    ]
    for label, value, what in invalid_names:
        c.add(
            f"name-{label}",
            cat,
            f"setName with {what}",
            "INVALID_NAME",
            frame=_set(value),
        )
    # Reserved names (the default reservedNames) and their look-alikes: refused.
    for label, value in [
        ("admin", "admin"),
        ("administrator", "Administrator"),
        ("system-upper", "SYSTEM"),
        ("server", "Server"),
        ("moderator", "moderator"),
        ("system-brackets", "[system]"),
        ("server-dot", "Server."),
        ("admin-spaced", "a d m i n"),
        ("admin-dot-below", "Adm\u1ecbn"),
        ("admin-rn", "adrnin"),
        ("admin-capital-i", "AdmIn"),
        ("moderator-zero", "Moderat0r"),
        ("admin-fullwidth", "\uff41\uff44\uff4d\uff49\uff4e"),
        ("admin-small-capitals", "\u1d00\u1d05\u1d0d\u026a\u0274"),
    ]:
        c.add(
            f"name-reserved-{label}",
            cat,
            f"setName {value!r}: a reserved name or a look-alike of one",
            "INVALID_NAME",
            frame=_set(value),
        )
    valid_names = [
        ("diaeresis", "Zo\u00eb", "Zo\u00eb", "Zoë (NFC)"),
        ("decomposed", "Zoe\u0308", "Zo\u00eb", "Zoë in NFD: shown in NFC"),
        ("han", "李雷", "李雷", "Han"),
        ("cyrillic", "Дмитрий", "Дмитрий", "Cyrillic"),
        ("greek", "Ελένη", "Ελένη", "Greek"),
        ("arabic", "محمد", "محمد", "Arabic (right to left)"),
        ("hebrew", "שלום", "שלום", "Hebrew (right to left)"),
        ("hangul", "김민준", "김민준", "Hangul"),
        ("kana-latin", "Mika-みか", "Mika-みか", "Latin with kana"),
        ("apostrophe", "O'Brien", "O'Brien", "an apostrophe"),
        ("single-space", "Zed Zed", "Zed Zed", "one inner space"),
        ("trailing-newline", "Zed\n", "Zed", "a trailing newline (trimmed)"),
        ("emoji", "Zed\U0001f600", "Zed\U0001f600", "Latin and an emoji (Common script)"),
        ("html", "<b>Zed</b>", "<b>Zed</b>", "HTML markup (clients must escape it)"),
        ("sysadmin", "sysadmin", "sysadmin", "a reserved name inside a longer one"),
        ("servery", "Servery", "Servery", "a reserved name plus a letter"),
        ("admin2", "admin2", "admin2", "a reserved name plus a digit"),
        ("jose", "Jos\u00e9", "Jos\u00e9", "an accent (its key drops it: nobody holds Jose)"),
        (
            "cyrillic-vera",
            "\u0412\u0435\u0440\u0430",
            "\u0412\u0435\u0440\u0430",
            "Cyrillic Vera (key Bepa)",
        ),
        ("arabic-ali", "\u0639\u0644\u064a", "\u0639\u0644\u064a", "Arabic Ali"),
        (
            "notice-spoof",
            "Bob has left the chat. Eve",
            "Bob has left the chat. Eve",
            "a name that reads as a notice (clients show a notice's name apart)",
        ),
    ]
    for label, value, shown, what in valid_names:
        c.add(f"name-{label}", cat, f"setName: {what}", "ok:rename", frame=_set(value), shown=shown)
    taken = [
        ("exact", "Bob", "Bob itself"),
        ("lower", "bob", "bob"),
        ("upper", "BOB", "BOB"),
        ("fullwidth", "\uff22\uff4f\uff42", "full-width Bob"),
        ("math-bold", "\U0001d401\U0001d428\U0001d41b", "mathematical bold Bob"),
        ("capital-i", "CaroI", "CaroI (capital I for l)"),
        ("digit-one", "Caro1", "Caro1 (digit one for l)"),
        ("padded", "  Carol  ", "Carol between spaces"),
        ("circled", "\u24b7\u24de\u24d1", "circled Bob"),
        ("cyrillic-carol", "\u0421\u0430\u0433\u043e\u04cf", "Carol spelled in Cyrillic"),
        (
            "cyrillic-capital-palochka",
            "\u0421\u0430\u0433\u043e\u04c0",
            "Cyrillic Carol, capital palochka",
        ),
        ("diaeresis", "C\u00e4rol", "Carol with a diaeresis"),
        ("dot-below", "B\u1ecdb", "Bob with a dot below"),
        ("macron", "B\u014db", "Bob with a macron"),
        ("decomposed-acute", "Carol\u0301", "Carol with a combining acute"),
        ("small-capitals", "\u0299\u1d0f\u0299", "Bob in small capitals"),
        ("small-capitals-carol", "\u1d04\u1d00\u0280\u1d0f\u029f", "Carol in small capitals"),
        ("vertical-line", "Caro|", "Caro and a vertical line"),
        ("roman-one", "Caro\u2160", "Caro and ROMAN NUMERAL ONE"),
    ]
    for label, value, what in taken:
        c.add(
            f"name-taken-{label}",
            cat,
            f"setName {what}: a look-alike of a member",
            "NAME_TAKEN",
            frame=_set(value),
        )
    messages = [
        ("bom", "\ufeffhi", "a BOM in front"),
        ("lrm", "\u200ehi", "LEFT-TO-RIGHT MARK (a mark, not an override)"),
        ("rlm", "hi\u200f!", "RIGHT-TO-LEFT MARK"),
        ("alm", "\u0645\u061c1", "ARABIC LETTER MARK"),
        ("newline-inside", "a\nb", "a line break inside (kept)"),
        ("line-separator-inside", "a\u2028b", "LINE SEPARATOR inside (not a control)"),
        ("zwsp-only", "\u200b", "only a ZERO WIDTH SPACE (not white space)"),
        ("nonchars", "\ufffe\uffff\ufdd0", "non-characters"),
        ("max-code-point", "\U0010ffff", "U+10FFFF"),
        ("private-use", "\ue000\U000f0000", "private-use characters"),
        ("unassigned", "\u0378", "an unassigned code point"),
        ("combining-alone", "\u0301", "a combining mark with no base"),
        ("zalgo", "Z" + "\u0334\u0301\u0300" * 300, "a run of 900 combining marks"),
        (
            "family-emoji",
            "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
            "a ZWJ emoji",
        ),
        ("flag", "\U0001f1fa\U0001f1f3", "a flag (regional indicators)"),
        ("html", "<script>alert(1)</script>", "a script tag"),
        ("template", "${jndi:ldap://x/a} {{7*7}} %s%n", "template and format strings"),
        ("sql", "'; DROP TABLE chat; --", "SQL"),
        ("json-in-text", '{"action":"setName","name":"Bob"}', "a frame inside the text"),
        ("surrogate-pair", "\U0001f600", "a valid surrogate pair (an emoji)"),
        ("fake-prefix", "Bob: I am Bob", "text that imitates another sender"),
    ]
    for label, value, what in messages:
        c.add(f"message-{label}", cat, f"sendPublic with {what}", "ok:public", frame=_public(value))
    # Control characters other than the line break, and bidi embeddings, overrides and
    # isolates: refused.
    for label, value, what in [
        ("nul", "\u0000", "only NUL"),
        ("nul-inside", "a\u0000b", "NUL inside"),
        ("crlf-inside", "a\r\nb", "CRLF inside (a carriage return is a control)"),
        ("tab-inside", "a\tb", "a tab inside"),
        ("bell", "ding\u0007", "BEL"),
        ("ansi", "\u001b[2J\u001b[31mred", "ANSI escapes"),
        ("del", "a\u007fb", "DEL"),
        ("nel-inside", "a\u0085b", "NEL (a C1 control) inside"),
        ("csi", "a\u009b31mb", "CSI (a C1 control) inside"),
        ("rlo", "\u202ehi olleh", "RIGHT-TO-LEFT OVERRIDE"),
        ("lre", "a\u202ab", "LEFT-TO-RIGHT EMBEDDING"),
        ("rle", "a\u202bb", "RIGHT-TO-LEFT EMBEDDING"),
        ("pdf", "a\u202cb", "POP DIRECTIONAL FORMATTING"),
        ("lro", "a\u202db", "LEFT-TO-RIGHT OVERRIDE"),
        ("lri", "a\u2066b", "LEFT-TO-RIGHT ISOLATE"),
        ("rli", "a\u2067b", "RIGHT-TO-LEFT ISOLATE"),
        ("fsi", "a\u2068b", "FIRST STRONG ISOLATE"),
        ("pdi", "a\u2069b", "POP DIRECTIONAL ISOLATE"),
        ("rlo-at-end", "Bob: hi\u202e", "an override at the end"),
        ("rlo-2000", "m" * 1999 + "\u202e", "2000 characters, the last an override"),
    ]:
        c.add(
            f"message-{label}",
            cat,
            f"sendPublic with {what}",
            "INVALID_MESSAGE",
            frame=_public(value),
        )
    c.add(
        "message-private-rlo",
        cat,
        "sendPrivate to Bob with an override: Bob gets nothing",
        "INVALID_MESSAGE",
        frame={"action": "sendPrivate", "to": "Bob", "message": "\u202eyeh"},
    )
    for label, value, what in [
        ("lone-high", "\ud800", "a lone high surrogate"),
        ("lone-low", "\udfff", "a lone low surrogate"),
        ("high-then-text", "a\ud83db", "a high surrogate between letters"),
        ("two-highs", "\ud83d\ud83d", "two high surrogates"),
        ("reversed-pair", "\ude00\ud83d", "a surrogate pair in the wrong order"),
        ("surrogate-after-2000", "m" * 1999 + "\ud800", "2000 characters ending in a surrogate"),
    ]:
        c.add(
            f"message-{label}",
            cat,
            f"sendPublic with {what}",
            "INVALID_MESSAGE",
            frame=_public(value),
        )
    c.add(
        "message-private-lone-surrogate",
        cat,
        "sendPrivate to Bob with a lone surrogate",
        "INVALID_MESSAGE",
        frame={"action": "sendPrivate", "to": "Bob", "message": "\udc00"},
    )
    for label, value, what in [
        ("file-separators", "\u001c\u001d\u001e\u001f", "only U+001C-U+001F"),
        ("nel", "\u0085", "only NEL (U+0085)"),
    ]:
        c.add(
            f"message-{label}",
            cat,
            f"sendPublic with {what}: white space for Python's strip, not for "
            "JavaScript's trim, and control characters: refused either way",
            "INVALID_MESSAGE",
            frame=_public(value),
        )
    for label, value in [
        ("lone-surrogate", "\ud83d"),
        ("nul", "Bob\u0000"),
        ("rlo-reversed", "\u202eboB"),
    ]:
        c.add(
            f"to-{label}",
            cat,
            f"sendPrivate to {value!r}",
            "UNKNOWN_RECIPIENT",
            frame={"action": "sendPrivate", "to": value, "message": "psst"},
        )
    for label, value, recipient in [
        ("decomposed", "Carol\u0301", "Carol"),
        ("accented", "C\u00e4rol", "Carol"),
        ("dot-below", "B\u1ecdb", "Bob"),
        ("small-capitals", "\u0299\u1d0f\u0299", "Bob"),
        ("cyrillic-carol", "\u0421\u0430\u0433\u043e\u04cf", "Carol"),
        ("cyrillic", "\u0412ob", "Bob"),  # Cyrillic Ve is a small capital B
    ]:
        c.add(
            f"to-{label}",
            cat,
            f"sendPrivate to {value!r}: the key of {recipient}'s name (accents, small "
            "capitals and look-alikes are left out of it)",
            "ok:private",
            frame={"action": "sendPrivate", "to": value, "message": "psst"},
            recipient=recipient,
        )
    # Errors never repeat what the client made up (the model checks every error message).
    for label, value in [
        ("notice-spoof", "Bob has left the chat. Eve"),
        ("script-tag", "<script>alert(1)</script>"),
        ("rlo-name", "\u202eloraC"),
        ("ansi-name", "\u001b[31mCarol"),
        ("newline-name", "Nobody\nBob: hi"),
    ]:
        c.add(
            f"to-echo-{label}",
            cat,
            f"sendPrivate to {value!r}: UNKNOWN_RECIPIENT, without repeating it",
            "UNKNOWN_RECIPIENT",
            frame={"action": "sendPrivate", "to": value, "message": "psst", "id": c.fresh_id()},
        )
    for label, value in [
        ("script-tag", "<img src=x onerror=alert(1)>"),
        ("rlo", "\u202eemaNtes"),
        ("notice", "Bob has joined the chat"),
    ]:
        c.add(
            f"action-echo-{label}",
            cat,
            f"action {value!r}: UNKNOWN_ACTION with action null, without repeating it",
            "UNKNOWN_ACTION",
            frame={"action": value, "id": c.fresh_id()},
        )
    for label, value in [
        ("emoji", "\U0001f600"),
        ("lone-surrogate", "\ud83d"),
        ("zwsp", "a\u200b"),
        ("fullwidth", "\uff41"),
        ("nbsp", "a\u00a0b"),
    ]:
        c.add(f"id-{label}", cat, f"ping with id {value!r}", "INVALID_ID", frame=_ping(value))
    for label, value in [
        ("nul-suffix", "sendPublic\u0000"),
        ("cyrillic-e", "s\u0435ndPublic"),
        ("fullwidth", "\uff53\uff45\uff4e\uff44\uff30\uff55\uff42\uff4c\uff49\uff43"),
        ("zwsp", "sendPublic\u200b"),
        ("bom", "\ufeffsendPublic"),
        ("upper", "SENDPUBLIC"),
        ("lower", "sendpublic"),
        ("leading-space", " sendPublic"),
        ("trailing-space", "setName "),
        ("lone-surrogate", "\ud83d"),
        ("empty", ""),
    ]:
        c.add(
            f"action-{label}",
            cat,
            f"action {value!r}: actions are exact",
            "UNKNOWN_ACTION",
            frame={"action": value, "message": "hi", "name": "Zed"},
        )


def structure(c: Corpus) -> None:
    cat = "structure"
    for label, text in [
        ("empty", ""),
        ("space", " "),
        ("word", "hello"),
        ("open-brace", "{"),
        ("close-brace", "}"),
        ("truncated", '{"action": "ping", "id": "x"'),
        ("single-quotes", "{'action': 'ping'}"),
        ("trailing-comma", '{"action": "ping",}'),
        ("trailing-garbage", '{"action": "ping"} x'),
        ("two-objects", '{"action": "ping"}{"action": "ping"}'),
        ("comment", '/* hi */ {"action": "ping"}'),
        ("line-comment", '{"action": "ping" // hi\n}'),
        ("bom", '\ufeff{"action": "ping"}'),
        ("trailing-nul", '{"action": "ping"}\u0000'),
        ("raw-tab-in-string", '{"action": "sendPublic", "message": "a\tb"}'),
        ("raw-newline-in-string", '{"action": "sendPublic", "message": "a\nb"}'),
        ("bad-escape", '{"action": "sendPublic", "message": "\\x41"}'),
        ("short-unicode-escape", '{"action": "sendPublic", "message": "\\u12"}'),
        ("unquoted-key", '{action: "ping"}'),
        ("hex-number", '{"action": "history", "since": 0x10}'),
        ("leading-zero", '{"action": "history", "since": 01}'),
        ("plus-number", '{"action": "history", "since": +1}'),
        ("python-literals", '{"action": "ping", "id": None}'),
        ("undefined", '{"action": "ping", "id": undefined}'),
        ("nested-deep-10000", "[" * 10000 + "]" * 10000),
        ("object-deep-5000", '{"a":' * 5000 + "1" + "}" * 5000),
        (
            "message-deep-10000",
            '{"action": "sendPublic", "message": ' + "[" * 10000 + "]" * 10000 + "}",
        ),
        (
            "ignored-key-deep-10000",
            '{"action": "ping", "extra": ' + "[" * 10000 + "]" * 10000 + "}",
        ),
    ]:
        c.add(f"json-{label}", cat, f"not JSON: {label}", "INVALID_JSON", text=text)
    for label, text in [
        ("empty-array", "[]"),
        ("array-of-frame", '[{"action": "ping"}]'),
        ("number", "42"),
        ("negative-zero", "-0"),
        ("null", "null"),
        ("true", "true"),
        ("string", '"ping"'),
        ("string-of-frame", json.dumps('{"action": "ping"}')),
    ]:
        c.add(
            f"not-object-{label}",
            cat,
            f"JSON but not an object: {label}",
            "INVALID_JSON",
            text=text,
        )
    deep = 50
    for field, frame_base, expect in [
        ("message", {"action": "sendPublic"}, "INVALID_MESSAGE"),
        ("name", {"action": "setName"}, "INVALID_NAME"),
        ("to", {"action": "sendPrivate", "message": "hi"}, "UNKNOWN_RECIPIENT"),
        ("id", {"action": "ping"}, "INVALID_ID"),
        ("since", {"action": "history"}, "INVALID_ID"),
        ("action", {}, "UNKNOWN_ACTION"),
    ]:
        nested: Any = "x"
        for _ in range(deep):
            nested = {"a": [nested]}
        c.add(
            f"nested-{field}",
            cat,
            f"{field} nested {deep * 2} levels deep",
            expect,
            frame={**frame_base, field: nested},
        )
    nested_extra: Any = 1
    for _ in range(200):
        nested_extra = [nested_extra]
    c.add(
        "nested-ignored-key",
        cat,
        "a ping with an unknown key nested 200 deep (ignored)",
        "ok:ping",
        frame={"action": "ping", "extra": nested_extra},
    )
    # Duplicate keys: parsers disagree on which one counts (Python's json keeps the last,
    # others the first, API Gateway's route selection may read either), so such a frame
    # means two things: refused, in any object at any depth, whichever route it took.
    for label, text in [
        ("action", '{"action": "sendPublic", "action": "dance", "message": "hi"}'),
        ("action-2", '{"action": "dance", "action": "ping"}'),
        ("action-ping-public", '{"action": "ping", "action": "sendPublic", "message": "hi"}'),
        ("action-same", '{"action": "ping", "action": "ping"}'),
        ("action-routes", '{"action": "setName", "action": "sendPublic", "name": "Zed"}'),
        ("message", '{"action": "sendPublic", "message": "first", "message": "second"}'),
        ("message-same", '{"action": "sendPublic", "message": "hi", "message": "hi"}'),
        ("name", '{"action": "setName", "name": "Bob", "name": "Zed"}'),
        ("id", '{"action": "ping", "id": "first", "id": "second"}'),
        ("id-bad", '{"action": "ping", "id": "ok", "id": ""}'),
        ("to", '{"action": "sendPrivate", "to": "Bob", "to": "Carol", "message": "psst"}'),
        ("since", '{"action": "history", "since": 0, "since": -1}'),
        (
            "client-key",
            '{"action": "setName", "name": "Zed", "clientKey": "' + CLIENT_KEY + '", '
            '"clientKey": "' + CLIENT_KEY + '"}',
        ),
        ("ignored-key", '{"action": "ping", "x": 1, "x": 2}'),
        ("nested", '{"action": "ping", "extra": {"a": 1, "a": 1}}'),
        ("nested-in-list", '{"action": "sendPublic", "message": "hi", "x": [{"k": 1, "k": 2}]}'),
        ("deep", '{"action": "ping", "x": [[[{"y": {"z": 1, "z": 1}}]]]}'),
        ("empty-key", '{"action": "ping", "": 1, "": 2}'),
        ("escaped", '{"action": "ping", "\\u0061ction": "sendPublic"}'),
    ]:
        c.add(
            f"duplicate-{label}",
            cat,
            f"duplicate {label} keys: not strict JSON",
            "INVALID_JSON",
            text=text,
        )
    big_int = "1" + "0" * 5000
    for label, text, outcomes in [
        ("action-inf", '{"action": 1e999}', ["UNKNOWN_ACTION"]),
        ("message-inf", '{"action": "sendPublic", "message": -1e999}', ["INVALID_MESSAGE"]),
        (
            "message-400-digits",
            '{"action": "sendPublic", "message": 1' + "0" * 400 + "}",
            ["INVALID_MESSAGE"],
        ),
        ("name-400-digits", '{"action": "setName", "name": 1' + "0" * 400 + "}", ["INVALID_NAME"]),
        ("id-inf", '{"action": "ping", "id": 1e999}', ["INVALID_ID"]),
        ("id-400-digits", '{"action": "ping", "id": 1' + "0" * 400 + "}", ["INVALID_ID"]),
        ("since-inf", '{"action": "history", "since": 1e999}', ["INVALID_ID"]),
        ("since-minus-inf", '{"action": "history", "since": -1e999}', ["INVALID_ID"]),
        ("since-tiny", '{"action": "history", "since": 1e-999}', ["INVALID_ID", "ok:history"]),
        (
            "message-5000-digits",
            '{"action": "sendPublic", "message": ' + big_int + "}",
            ["INVALID_MESSAGE", "INVALID_JSON"],
        ),
        (
            "since-5000-digits",
            '{"action": "history", "since": ' + big_int + "}",
            ["ok:history", "INVALID_ID", "INVALID_JSON"],
        ),
    ]:
        c.add(
            f"number-{label}",
            cat,
            f"huge number: {label}",
            outcomes,
            text=text,
            note="beyond double precision; JSON sets no limit" if len(outcomes) > 1 else None,
        )
    for label, text in [
        ("nan-id", '{"action": "ping", "id": NaN}'),
        ("infinity-since", '{"action": "history", "since": Infinity}'),
        ("nan-action", '{"action": NaN}'),
        ("nan-message", '{"action": "sendPublic", "message": NaN}'),
        ("nan-ignored", '{"action": "sendPublic", "message": "hi", "n": NaN}'),
        ("minus-infinity-ignored", '{"action": "ping", "n": -Infinity}'),
        ("infinity-in-list", '{"action": "setName", "name": "Zed", "x": [1, Infinity]}'),
        ("nan-nested", '{"action": "history", "x": {"y": [NaN]}}'),
    ]:
        c.add(
            f"literal-{label}",
            cat,
            f"a non-JSON literal: {label} (Python's json reads it; strict JSON does not)",
            "INVALID_JSON",
            text=text,
        )
    # A frame that arrives on a route other than its action's: API Gateway and the
    # function read it differently. Refused (never run outside its route's throttle);
    # the error names the route's action (on $default the frame's, when it is one).
    for label, frame, route, expect in [
        ("public-on-default", _public("hi"), "$default", "INVALID_JSON"),
        (
            "private-on-default",
            {"action": "sendPrivate", "to": "Bob", "message": "hi"},
            "$default",
            "INVALID_JSON",
        ),
        ("setname-on-default", _set("Zed"), "$default", "INVALID_JSON"),
        ("ping-on-send-public", {"action": "ping"}, "sendPublic", "INVALID_JSON"),
        ("history-on-set-name", {"action": "history"}, "setName", "INVALID_JSON"),
        ("unknown-on-send-private", {"action": "dance"}, "sendPrivate", "INVALID_JSON"),
        ("none-on-set-name", {"name": "Zed"}, "setName", "INVALID_JSON"),
        ("public-on-set-name", _public("hi"), "setName", "INVALID_JSON"),
        (
            "private-on-send-public",
            {"action": "sendPrivate", "to": "Bob", "message": "hi"},
            "sendPublic",
            "INVALID_JSON",
        ),
        ("bad-id-on-default", {**_public("hi"), "id": ""}, "$default", "INVALID_ID"),
    ]:
        c.add(
            f"misrouted-{label}",
            cat,
            f"{json.dumps(frame)[:60]} on the {route} route",
            expect,
            frame={**frame, "id": frame.get("id", c.fresh_id())},
            route=route,
        )
    # Keys the server sets, or that mean something elsewhere: ignored.
    c.add(
        "spoof-public",
        cat,
        "sendPublic that names another sender and its own seq/messageId/ts",
        "ok:public",
        frame={
            "action": "sendPublic",
            "message": "hi",
            "from": "Bob",
            "name": "Bob",
            "seq": 1,
            "prev": 0,
            "messageId": "spoofed",
            "ts": 0,
            "publicMessage": "Bob: spoofed",
        },
    )
    c.add(
        "spoof-private",
        cat,
        "sendPrivate to Bob claiming to be from Carol",
        "ok:private",
        frame={"action": "sendPrivate", "to": "Bob", "message": "hi", "from": "Carol"},
        recipient="Bob",
    )
    c.add(
        "spoof-rename",
        cat,
        "setName with a previous name and an event",
        "ok:rename",
        frame={"action": "setName", "name": "Zed", "previous": "Bob", "event": "leave"},
    )
    c.add(
        "spoof-context",
        cat,
        "a ping carrying requestContext and connectionId keys",
        "ok:ping",
        frame={
            "action": "ping",
            "requestContext": {"connectionId": "Bob", "routeKey": "$disconnect"},
            "connectionId": "Bob",
        },
    )
    c.add(
        "proto-keys",
        cat,
        "a ping with __proto__ and constructor keys",
        "ok:ping",
        frame={"action": "ping", "__proto__": {"admin": True}, "constructor": {"x": 1}},
    )
    c.add(
        "odd-keys",
        cat,
        "a ping with an empty key, a NUL key and a lone-surrogate key",
        "ok:ping",
        frame={"action": "ping", "": 1, "\u0000": 2, "\ud800": 3},
    )
    c.add(
        "key-case",
        cat,
        "Action instead of action",
        "UNKNOWN_ACTION",
        frame={"Action": "ping"},
    )
    c.add(
        "many-keys",
        cat,
        "a ping with 2500 other keys (about 30 KB)",
        "ok:ping",
        frame={"action": "ping", **{f"k{i}": i for i in range(2500)}},
    )
    for label, action in [
        ("connect", "$connect"),
        ("disconnect", "$disconnect"),
        ("default", "$default"),
        ("proto", "__proto__"),
        ("to-string", "toString"),
        ("history-case", "History"),
        ("admit", "admit"),
        ("notify", "notify"),
    ]:
        c.add(
            f"route-{label}",
            cat,
            f"action {action!r}: not a client action (the sender stays in the room)",
            "UNKNOWN_ACTION",
            frame={"action": action, "name": "Zed", "message": "hi"},
        )
    c.add(
        "action-long",
        cat,
        "an action of 30,000 characters",
        "UNKNOWN_ACTION",
        frame={"action": "a" * 30000},
    )


def check_order(c: Corpus) -> None:
    cat = "check-order"
    c.add(
        "unnamed-public",
        cat,
        "sendPublic before a name",
        "NAME_REQUIRED",
        frame=_public("hi"),
        sender="unnamed",
    )
    c.add(
        "unnamed-public-bad-message",
        cat,
        "sendPublic before a name, with a bad message: the name is checked first",
        "NAME_REQUIRED",
        frame={"action": "sendPublic", "message": 5},
        sender="unnamed",
    )
    c.add(
        "unnamed-private",
        cat,
        "sendPrivate to Bob before a name: Bob gets nothing",
        "NAME_REQUIRED",
        frame={"action": "sendPrivate", "to": "Bob", "message": "hi"},
        sender="unnamed",
    )
    c.add(
        "unnamed-private-all-bad",
        cat,
        "sendPrivate before a name with a bad to and message",
        "NAME_REQUIRED",
        frame={"action": "sendPrivate", "to": 1, "message": 2},
        sender="unnamed",
    )
    c.add(
        "unnamed-public-with-id",
        cat,
        "sendPublic before a name, with an id: the error carries it",
        "NAME_REQUIRED",
        frame={"action": "sendPublic", "message": "hi", "id": c.fresh_id()},
        sender="unnamed",
    )
    c.add(
        "unnamed-ping",
        cat,
        "ping before a name",
        "ok:ping",
        frame={"action": "ping", "id": c.fresh_id()},
        sender="unnamed",
    )
    c.add(
        "unnamed-history",
        cat,
        "history before a name",
        ["ok:history", "NAME_REQUIRED"],
        frame={"action": "history", "since": 0},
        sender="unnamed",
        note="the protocol does not say whether a connection without a name may read history",
    )
    c.add(
        "message-before-recipient",
        cat,
        "sendPrivate with an empty message to nobody: the message is checked first",
        "INVALID_MESSAGE",
        frame={"action": "sendPrivate", "to": "Nobody", "message": " "},
    )
    c.add(
        "too-long-before-recipient",
        cat,
        "sendPrivate with 2001 characters to nobody",
        "MESSAGE_TOO_LONG",
        frame={"action": "sendPrivate", "to": "Nobody", "message": "m" * 2001},
    )
    c.add(
        "unknown-recipient-with-id",
        cat,
        "sendPrivate to nobody, with an id: the error carries it",
        "UNKNOWN_RECIPIENT",
        frame={"action": "sendPrivate", "to": "Nobody", "message": "hi", "id": c.fresh_id()},
    )
    c.add(
        "invalid-message-with-id",
        cat,
        "an empty sendPublic with an id",
        "INVALID_MESSAGE",
        frame={"action": "sendPublic", "message": "", "id": c.fresh_id()},
    )
    c.add(
        "invalid-name-with-id",
        cat,
        "an invalid name with an id",
        "INVALID_NAME",
        frame={"action": "setName", "name": "a:b", "id": c.fresh_id()},
    )
    c.add(
        "taken-name-with-id",
        cat,
        "a taken name with an id",
        "NAME_TAKEN",
        frame={"action": "setName", "name": "carol", "id": c.fresh_id()},
    )
    c.add(
        "unknown-action-with-id",
        cat,
        "an unknown action with an id",
        "UNKNOWN_ACTION",
        frame={"action": "dance", "id": c.fresh_id()},
    )
    c.add(
        "unknown-action-bad-id",
        cat,
        "an unknown action with a bad id",
        ["UNKNOWN_ACTION", "INVALID_ID"],
        frame={"action": "dance", "id": ""},
        note="where INVALID_ID comes in the order of checks is not written",
    )
    c.add(
        "bad-message-bad-id",
        cat,
        "an empty sendPublic with a bad id",
        ["INVALID_MESSAGE", "INVALID_ID"],
        frame={"action": "sendPublic", "message": "", "id": 5},
        note="where INVALID_ID comes in the order of checks is not written",
    )
    c.add(
        "unnamed-bad-id",
        cat,
        "sendPublic before a name, with a bad id",
        ["NAME_REQUIRED", "INVALID_ID"],
        frame={"action": "sendPublic", "message": "hi", "id": "\u00e9"},
        sender="unnamed",
        note="where INVALID_ID comes in the order of checks is not written",
    )
    c.add(
        "client-key-before-name",
        cat,
        "a join with a bad clientKey and a bad name: the clientKey is checked first",
        "INVALID_ID",
        frame={"action": "setName", "name": "a:b", "clientKey": "short"},
        sender="unnamed",
    )
    c.add(
        "client-key-before-taken-name",
        cat,
        "a join as Bob with a bad clientKey: INVALID_ID, not NAME_TAKEN",
        "INVALID_ID",
        frame={"action": "setName", "name": "Bob", "clientKey": "k" * 65},
        sender="unnamed",
    )
    c.add(
        "client-key-before-reserved-name",
        cat,
        "a join as admin with a bad clientKey",
        "INVALID_ID",
        frame={"action": "setName", "name": "admin", "clientKey": 5},
        sender="unnamed",
    )
    c.add(
        "since-and-client-key",
        cat,
        "a join with a bad since and a bad clientKey",
        "INVALID_ID",
        frame={"action": "setName", "name": "Zed", "since": -1, "clientKey": ""},
        sender="unnamed",
    )
    c.add(
        "too-long-before-control",
        cat,
        "2001 characters with an override: the length is checked first",
        "MESSAGE_TOO_LONG",
        frame=_public("\u202e" * 2001),
    )
    c.add(
        "too-many-bytes-before-control",
        cat,
        "1000 emoji and a NUL (4001 bytes): the size is checked first",
        "MESSAGE_TOO_LONG",
        frame=_public("😀" * 1000 + "\u0000"),
    )
    c.add(
        "control-before-recipient",
        cat,
        "sendPrivate with a NUL in the message to nobody: the message is checked first",
        "INVALID_MESSAGE",
        frame={"action": "sendPrivate", "to": "Nobody", "message": "a\u0000"},
    )
    c.add(
        "unnamed-control",
        cat,
        "sendPublic with a control character before a name: the name is checked first",
        "NAME_REQUIRED",
        frame=_public("\u0007"),
        sender="unnamed",
    )
    c.add(
        "reserved-before-taken",
        cat,
        "setName ADMIN: refused as reserved (no member holds it)",
        "INVALID_NAME",
        frame={"action": "setName", "name": "ADMIN", "id": c.fresh_id()},
    )
    c.add(
        "not-json-with-id",
        cat,
        "a truncated frame with an id: unreadable, so the error has none",
        "INVALID_JSON",
        text='{"action": "sendPublic", "message": "hi", "id": "z1"',
    )
    c.add(
        "same-name",
        cat,
        "setName with one's own name: nothing is sent",
        "ok:same-name",
        frame=_set("Hostile"),
    )
    c.add(
        "same-name-padded",
        cat,
        "setName with one's own name between spaces: nothing is sent",
        "ok:same-name",
        frame=_set("  Hostile "),
    )
    c.add(
        "same-name-with-id",
        cat,
        "setName with one's own name and an id: only the acknowledgement",
        "ok:same-name",
        frame={"action": "setName", "name": "Hostile", "id": c.fresh_id()},
    )
    c.add(
        "same-name-decomposed",
        cat,
        "setName Zoë in NFD while named Zoë in NFC: the same name",
        "ok:same-name",
        frame=_set("Zoe\u0308"),
        sender_name="Zo\u00eb",
    )
    c.add(
        "case-only-rename",
        cat,
        "a change of case only is a rename",
        "ok:rename",
        frame=_set("HOSTILE"),
    )
    c.add(
        "unnamed-join",
        cat,
        "a plain join",
        "ok:join",
        frame=_set("Zed"),
        sender="unnamed",
    )
    c.add(
        "unnamed-join-taken",
        cat,
        "a join with a look-alike of Bob",
        "NAME_TAKEN",
        frame=_set("B0b"),
        sender="unnamed",
    )


def oversize(c: Corpus) -> None:
    cat = "oversize"
    for label, frame, expect in [
        ("message-40k", _public("m" * 40000), "MESSAGE_TOO_LONG"),
        ("message-120k", _public("m" * 120000), "MESSAGE_TOO_LONG"),
        ("name-40k", _set("Z" * 40000), "INVALID_NAME"),
        (
            "to-40k",
            {"action": "sendPrivate", "to": "B" * 40000, "message": "hi"},
            "UNKNOWN_RECIPIENT",
        ),
        ("id-40k", _ping("i" * 40000), "INVALID_ID"),
        ("ignored-key-100k", {"action": "ping", "pad": "p" * 100000}, "ok:ping"),
        ("action-40k", {"action": "x" * 40000}, "UNKNOWN_ACTION"),
    ]:
        c.add(
            f"frame-{label}",
            cat,
            f"a frame over 32 KB: {label} (API Gateway closes the socket; the handler still "
            "answers when it is sent in fragments)",
            expect,
            frame=frame,
            sandbox=label in ("message-40k", "name-40k", "ignored-key-100k"),
            close=1009,
        )
    c.add(
        "nesting-50000",
        cat,
        "arrays nested 50,000 deep (100 KB)",
        "INVALID_JSON",
        text="[" * 50000 + "]" * 50000,
        close=1009,
    )
    frame_32k = _public("m" * 32000)
    c.add(
        "frame-just-under-32k",
        cat,
        "a frame of 32,768 bytes exactly (API Gateway's limit): answered",
        "MESSAGE_TOO_LONG",
        frame=_pad(frame_32k, 32768),
        sandbox=True,
    )
    c.add(
        "frame-just-over-32k",
        cat,
        "a frame of 32,769 bytes: API Gateway closes with 1009",
        "MESSAGE_TOO_LONG",
        frame=_pad(frame_32k, 32769),
        sandbox=True,
        close=1009,
    )


def _pad(frame: dict[str, Any], size: int) -> dict[str, Any]:
    """`frame` with its message grown so that json.dumps(frame) is `size` bytes."""
    out = dict(frame)
    grow = size - len(json.dumps(out).encode())
    out["message"] = out["message"] + "m" * grow
    assert len(json.dumps(out).encode()) == size
    return out


def _set(name: Any) -> dict[str, Any]:
    return {"action": "setName", "name": name}


def _public(message: Any) -> dict[str, Any]:
    return {"action": "sendPublic", "message": message}


def _ping(frame_id: Any) -> dict[str, Any]:
    return {"action": "ping", "id": frame_id}


# --- raw byte cases: through the sandbox only (a Lambda event's body is always text) -------

RAW_CASES: list[dict[str, Any]] = [
    {
        "file": "binary-ping.bin",
        "bytes": b'{"action": "ping"}',
        "opcode": "binary",
        "close": 1003,
        "description": "a valid frame sent as a binary frame",
    },
    {
        "file": "binary-garbage.bin",
        "bytes": bytes(range(256)),
        "opcode": "binary",
        "close": 1003,
        "description": "every byte value in a binary frame",
    },
    {
        "file": "utf8-overlong-slash.bin",
        "bytes": b'{"action": "sendPublic", "message": "\xc0\xaf"}',
        "opcode": "text",
        "close": 1007,
        "description": "an overlong UTF-8 encoding of / in a text frame",
    },
    {
        "file": "utf8-cesu-surrogate.bin",
        "bytes": b'{"action": "sendPublic", "message": "\xed\xa0\x80"}',
        "opcode": "text",
        "close": 1007,
        "description": "a UTF-8-encoded surrogate (CESU-8) in a text frame",
    },
    {
        "file": "utf8-truncated.bin",
        "bytes": b'{"action": "sendPublic", "message": "\xe2\x82"}',
        "opcode": "text",
        "close": 1007,
        "description": "a truncated three-byte sequence in a text frame",
    },
    {
        "file": "utf8-ff.bin",
        "bytes": b'{"action": "setName", "name": "\xff\xfe"}',
        "opcode": "text",
        "close": 1007,
        "description": "bytes FF FE, never valid UTF-8, in a text frame",
    },
    {
        "file": "utf8-above-max.bin",
        "bytes": b'{"action": "sendPublic", "message": "\xf4\x90\x80\x80"}',
        "opcode": "text",
        "close": 1007,
        "description": "a four-byte sequence above U+10FFFF in a text frame",
    },
    {
        "file": "raw-nul-bytes.bin",
        "bytes": b'{"action": "ping"}\x00\x00',
        "opcode": "text",
        "expect": "INVALID_JSON",
        "description": "valid UTF-8 with raw NUL bytes after the object",
    },
    {
        "file": "raw-bom.bin",
        "bytes": b'\xef\xbb\xbf{"action": "ping"}',
        "opcode": "text",
        "expect": "INVALID_JSON",
        "description": "a UTF-8 BOM before the object",
    },
    {
        "file": "raw-utf16.bin",
        "bytes": '{"action": "ping"}'.encode("utf-16-le"),
        "opcode": "text",
        "expect": "INVALID_JSON",
        "description": "the frame in UTF-16 (valid UTF-8 bytes: ASCII and NULs)",
    },
    {
        "file": "fragmented-100k.bin",
        "bytes": json.dumps(_public("m" * 100000)).encode(),
        "opcode": "text",
        "fragments": 4,
        "expect": "NAME_REQUIRED",
        "description": "a 100 KB sendPublic in four 25 KB fragments: within API Gateway's "
        "limits, so the function gets it (and answers this unnamed socket NAME_REQUIRED)",
    },
    {
        "file": "fragmented-140k.bin",
        "bytes": json.dumps(_public("m" * 140000)).encode(),
        "opcode": "text",
        "fragments": 5,
        "close": 1009,
        "description": "a 140 KB message in five 28 KB fragments: over 128 KB",
    },
]


# Also sent through the sandbox over a real WebSocket: one or two of each kind.
SANDBOX_IDS = {
    "action-object",
    "name-float",
    "message-empty-list",
    "to-null",
    "id-true",
    "since-string-number",
    "name-33",
    "message-2001",
    "message-2000-astral",
    "id-65-public",
    "to-fullwidth",
    "since-zero",
    "name-rlo",
    "name-mixed-cyrillic",
    "name-taken-math-bold",
    "message-lone-high",
    "message-nul",
    "action-cyrillic-e",
    "json-nested-deep-10000",
    "json-bom",
    "not-object-array-of-frame",
    "duplicate-action",
    "literal-nan-id",
    "number-since-inf",
    "spoof-public",
    "route-disconnect",
    "unnamed-private",
    "not-json-with-id",
    "unnamed-join",
    "duplicate-action-ping-public",
    "literal-nan-ignored",
    "message-rlo",
    "message-1001-emoji",
    "clientKey-15",
    "name-reserved-system-brackets",
    "name-taken-cyrillic-carol",
    "to-decomposed",
    "to-echo-rlo-name",
    "action-echo-script-tag",
}


def build() -> tuple[list[Case], list[dict[str, Any]]]:
    corpus = Corpus()
    sections = (wrong_types, limits, message_limits, id_limits, client_key_limits)
    for section in (*sections, unicode_cases, structure, check_order, oversize):
        section(corpus)
    unknown = SANDBOX_IDS - {case["id"] for case in corpus.cases}
    if unknown:
        raise ValueError(f"SANDBOX_IDS names no case: {sorted(unknown)}")
    for case in corpus.cases:
        if case["id"] in SANDBOX_IDS:
            if "route" in case:
                raise ValueError(f"{case['id']}: the sandbox routes frames itself")
            case["sandbox"] = True
    raw_index = [{k: v for k, v in case.items() if k != "bytes"} for case in RAW_CASES]
    return corpus.cases, raw_index


def render() -> dict[Path, bytes]:
    """Every corpus file and its content."""
    cases, raw_index = build()
    lines = [json.dumps(case, ensure_ascii=True) + "\n" for case in cases]
    files = {
        FRAMES: "".join(line for line in lines if len(line) <= LARGE_LINE).encode(),
        LARGE: "".join(line for line in lines if len(line) > LARGE_LINE).encode(),
        RAW_INDEX: (json.dumps(raw_index, indent=2, ensure_ascii=True) + "\n").encode(),
    }
    for case in RAW_CASES:
        files[RAW / case["file"]] = case["bytes"]
    return files


def main() -> None:
    RAW.mkdir(parents=True, exist_ok=True)
    files = render()
    for path, content in files.items():
        path.write_bytes(content)
    cases, raw_index = build()
    print(f"{len(cases)} frames in {FRAMES.name} and {LARGE.name}, {len(raw_index)} raw cases")


if __name__ == "__main__":
    main()
