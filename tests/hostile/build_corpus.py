"""Write the hostile-frame corpus: tests/hostile/corpus/{frames,large}.jsonl and raw/.

Run `python -m tests.hostile.build_corpus` after editing a case below; a test fails while
the committed files differ from what this writes. Every expectation here is read from
docs/protocol.md (v1.1), not from the server's code:

- `expect` lists the acceptable outcomes: an error code the sender must receive (and
  nobody else), or `ok:<kind>` for a frame the protocol accepts (kinds in
  tests/hostile/outcomes.py). More than one entry means that the protocol leaves the
  choice open; `note` says why.
- `sender` is the state of the sending connection: `named` (it joined as `Hostile`, or
  as `sender_name`) or `unnamed` (connected, no name). The room also holds `Bob` and
  `Carol`, who must receive exactly what the outcome says, and nothing for an error.
- `frame` is sent as `json.dumps(frame)`; `text` is sent verbatim (frames that JSON
  cannot build: duplicate keys, NaN, broken syntax, nesting thousands deep).
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
ID_MAX = 64

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
        "three stacked combining marks (U+0334 does not compose)",
        "ok:rename",
        frame=_set("Ze\u0334\u0334\u0334d"),
    )
    c.add(
        "name-4-marks",
        cat,
        "four stacked combining marks",
        "INVALID_NAME",
        frame=_set("Ze\u0334\u0334\u0334\u0334d"),
    )
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
        "2000 emoji (4000 UTF-16 units, 8000 UTF-8 bytes): length counts code points",
        "ok:public",
        frame=_public("😀" * 2000),
    )
    c.add(
        "message-2001-astral",
        cat,
        "2001 emoji",
        "MESSAGE_TOO_LONG",
        frame=_public("😀" * 2001),
    )
    c.add(
        "message-2000-nul",
        cat,
        "2000 NUL characters (valid Unicode; 12,000 bytes escaped)",
        "ok:public",
        frame=_public("\u0000" * 2000),
    )
    c.add(
        "message-2001-private",
        cat,
        "a 2001-character private message to Bob",
        "MESSAGE_TOO_LONG",
        frame={"action": "sendPrivate", "to": "Bob", "message": "m" * 2001},
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
    ]
    for label, value, what in invalid_names:
        c.add(
            f"name-{label}",
            cat,
            f"setName with {what}",
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
        ("nul", "\u0000", "only NUL"),
        ("nul-inside", "a\u0000b", "NUL inside"),
        ("bom", "\ufeffhi", "a BOM in front"),
        ("rlo", "\u202ehi olleh", "RIGHT-TO-LEFT OVERRIDE"),
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
        ("crlf-inside", "a\r\nb", "CRLF inside (kept)"),
        ("html", "<script>alert(1)</script>", "a script tag"),
        ("template", "${jndi:ldap://x/a} {{7*7}} %s%n", "template and format strings"),
        ("ansi", "\u001b[2J\u001b[31mred", "ANSI escapes"),
        ("sql", "'; DROP TABLE chat; --", "SQL"),
        ("json-in-text", '{"action":"setName","name":"Bob"}', "a frame inside the text"),
        ("surrogate-pair", "\U0001f600", "a valid surrogate pair (an emoji)"),
        ("fake-prefix", "Bob: I am Bob", "text that imitates another sender"),
    ]
    for label, value, what in messages:
        c.add(f"message-{label}", cat, f"sendPublic with {what}", "ok:public", frame=_public(value))
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
            f"sendPublic with {what}",
            ["INVALID_MESSAGE", "ok:public"],
            frame=_public(value),
            note="white space for Python's str.strip, not for JavaScript's trim: "
            "'trimmed' is not defined",
        )
    for label, value in [
        ("lone-surrogate", "\ud83d"),
        ("nul", "Bob\u0000"),
        ("rlo-reversed", "\u202eboB"),
        ("cyrillic", "\u0412ob"),
    ]:
        c.add(
            f"to-{label}",
            cat,
            f"sendPrivate to {value!r}",
            "UNKNOWN_RECIPIENT",
            frame={"action": "sendPrivate", "to": value, "message": "psst"},
        )
    c.add(
        "to-decomposed",
        cat,
        "sendPrivate to Carol + U+0301 (NFD of Caroĺ): another name",
        "UNKNOWN_RECIPIENT",
        frame={"action": "sendPrivate", "to": "Carol\u0301", "message": "psst"},
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
    # Duplicate keys: the protocol does not say which one counts (Python's json and API
    # Gateway's route selection may even disagree), so either is acceptable, but every
    # member must see the same result.
    for label, text, outcomes in [
        (
            "action",
            '{"action": "sendPublic", "action": "dance", "message": "hi"}',
            ["ok:public", "UNKNOWN_ACTION"],
        ),
        ("action-2", '{"action": "dance", "action": "ping"}', ["ok:ping", "UNKNOWN_ACTION"]),
        (
            "message",
            '{"action": "sendPublic", "message": "first", "message": "second"}',
            ["ok:public"],
        ),
        (
            "name",
            '{"action": "setName", "name": "Bob", "name": "Zed"}',
            ["ok:rename", "NAME_TAKEN"],
        ),
        ("id", '{"action": "ping", "id": "first", "id": "second"}', ["ok:ping"]),
        ("id-bad", '{"action": "ping", "id": "ok", "id": ""}', ["ok:ping", "INVALID_ID"]),
        (
            "to",
            '{"action": "sendPrivate", "to": "Bob", "to": "Carol", "message": "psst"}',
            ["ok:private"],
        ),
        ("since", '{"action": "history", "since": 0, "since": -1}', ["ok:history", "INVALID_ID"]),
    ]:
        c.add(
            f"duplicate-{label}",
            cat,
            f"duplicate {label} keys",
            outcomes,
            text=text,
            note="the protocol does not say which of two equal keys counts",
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
    for label, text, outcomes in [
        ("nan-id", '{"action": "ping", "id": NaN}', ["INVALID_JSON", "INVALID_ID"]),
        (
            "infinity-since",
            '{"action": "history", "since": Infinity}',
            ["INVALID_JSON", "INVALID_ID"],
        ),
        ("nan-action", '{"action": NaN}', ["INVALID_JSON", "UNKNOWN_ACTION"]),
        (
            "nan-message",
            '{"action": "sendPublic", "message": NaN}',
            ["INVALID_JSON", "INVALID_MESSAGE"],
        ),
    ]:
        c.add(
            f"literal-{label}",
            cat,
            f"a non-JSON literal: {label}",
            outcomes,
            text=text,
            note="NaN and Infinity are not JSON; Python's json accepts them",
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
}


def build() -> tuple[list[Case], list[dict[str, Any]]]:
    corpus = Corpus()
    for section in (wrong_types, limits, unicode_cases, structure, check_order, oversize):
        section(corpus)
    unknown = SANDBOX_IDS - {case["id"] for case in corpus.cases}
    if unknown:
        raise ValueError(f"SANDBOX_IDS names no case: {sorted(unknown)}")
    for case in corpus.cases:
        if case["id"] in SANDBOX_IDS:
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
