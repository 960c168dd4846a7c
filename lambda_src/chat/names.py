"""Chat names: which names are acceptable, and the keys that decide when two names clash.

A name is shown as its owner typed it (NFC). Uniqueness is decided on keys built from
NFKC, case folding and the Unicode confusable skeleton (UTS #39), so full-width and
mathematical letters, Cyrillic look-alikes and `aIice` (capital I) all clash with
`alice`. The confusable
and script data are Unicode's own (chat/unicode/, made by bin/build-unicode-data).
"""

from __future__ import annotations

import functools
import unicodedata
from bisect import bisect_right
from pathlib import Path

from chat.errors import ChatError, ErrorCode

NAME_MAX_LENGTH = 32
MAX_COMBINING_RUN = 3
# A key is a DynamoDB key part; NFKC and skeletons can expand a name many times over.
KEY_MAX_LENGTH = 512
DATA = Path(__file__).resolve().parent / "unicode"

# Characters that render as nothing or as blank space although Unicode does not call
# them format or space characters (UTS #39 and the Default_Ignorable_Code_Point list).
INVISIBLE = frozenset(
    [
        *(0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0),
        *range(0x180B, 0x1810),  # Mongolian free variation selectors, vowel separator
        *range(0xFE00, 0xFE10),  # variation selectors 1-16
        *range(0xE0100, 0xE01F0),  # variation selectors 17-256
    ]
)
CJK_WRITING = frozenset({"JPAN", "KORE", "HANB"})
# Characters of these scripts can be used with any script.
ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})
# UTS #39's augmented script sets: Han is part of the Japanese, Korean and Bopomofo
# writing systems, so those combinations are one script, not a mix.
AUGMENTED = {
    "HAN": frozenset({"HAN", "JPAN", "KORE", "HANB"}),
    "HIRAGANA": frozenset({"HIRAGANA", "JPAN"}),
    "KATAKANA": frozenset({"KATAKANA", "JPAN"}),
    "HANGUL": frozenset({"HANGUL", "KORE"}),
    "BOPOMOFO": frozenset({"BOPOMOFO", "HANB"}),
}


@functools.cache
def _prototypes() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in (DATA / "confusables.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            source, target = line.split(";")
            table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return table


@functools.cache
def _script_ranges() -> tuple[list[int], list[int], list[str]]:
    starts: list[int] = []
    ends: list[int] = []
    names: list[str] = []
    for line in (DATA / "scripts.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            first, last, name = line.split()
            starts.append(int(first, 16))
            ends.append(int(last, 16))
            names.append(name)
    return starts, ends, names


def script_of(char: str) -> str:
    """The Unicode Script property of one character (UNKNOWN when unassigned)."""
    starts, ends, names = _script_ranges()
    index = bisect_right(starts, ord(char)) - 1
    if index >= 0 and ord(char) <= ends[index]:
        return names[index]
    return "UNKNOWN"


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, each character replaced by its prototype, NFD again."""
    table = _prototypes()
    return unicodedata.normalize(
        "NFD", "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    )


def claim_keys(name: str) -> tuple[str, ...]:
    """The keys a name occupies; two names clash when their keys overlap.

    Two keys, because case folding and the skeleton do not commute: capital I and small
    l are confusable, but their case-folded forms (i, l) are not. So a name occupies
    skeleton(fold(name)) and fold(skeleton(name)): `aIice` clashes with `alice` through
    the second, `ALICE` with `alice` through the first.
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    first = skeleton(folded)
    second = skeleton(skeleton(unicodedata.normalize("NFKC", name)).casefold())
    return (first,) if first == second else (first, second)


def lookup_key(name: str) -> str:
    """The key a recipient's name (`to`) is looked up by: the first of its claim keys."""
    return skeleton(unicodedata.normalize("NFKC", name).casefold())


def single_script(text: str) -> bool:
    """UTS #39's "highly restrictive" level: one script, or Latin with Japanese, Korean or
    Chinese (Han with Bopomofo) writing, as in `Zoë`, `李雷`, `Mika-みか`."""
    if _scripts(text) != frozenset():
        return True
    rest = _scripts("".join(ch for ch in text if script_of(ch) != "LATIN"))
    return rest is None or bool(rest & CJK_WRITING)


def _scripts(text: str) -> frozenset[str] | None:
    """The scripts the whole text could belong to (None: any); empty when it mixes scripts."""
    possible: frozenset[str] | None = None
    for char in text:
        script = script_of(char)
        if script in ANY_SCRIPT:
            continue
        allowed = AUGMENTED.get(script, frozenset({script}))
        possible = allowed if possible is None else possible & allowed
    return possible


def validate_name(raw: object, *, reserved: tuple[str, ...] | list[str] = ()) -> str:
    """The name to show (trimmed, NFC). Raises ChatError(INVALID_NAME) with the reason."""
    if not isinstance(raw, str):
        raise _invalid("A name must be a string.")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in raw):
        raise _invalid("A name must be valid Unicode text.")
    name = unicodedata.normalize("NFC", raw.strip())
    if not name:
        raise _invalid("A name must not be empty.")
    if len(name) > NAME_MAX_LENGTH:
        raise _invalid(f"A name must be at most {NAME_MAX_LENGTH} characters.")
    if ":" in name:
        raise _invalid('A name must not contain ":".')
    run = 0
    for char in name:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp"):
            raise _invalid("A name must not contain control or invisible characters.")
        if ord(char) in INVISIBLE or (category == "Zs" and char != " "):
            raise _invalid("A name must not contain invisible or blank characters.")
        run = run + 1 if category in ("Mn", "Me") else 0
        if run > MAX_COMBINING_RUN:
            raise _invalid("A name must not stack more than three accents on one letter.")
    if "  " in name:
        raise _invalid("A name must not contain two spaces in a row.")
    if not single_script(name):
        raise _invalid(
            "A name must be written in one script (for example not Latin mixed with Cyrillic)."
        )
    if any(len(key) > KEY_MAX_LENGTH for key in claim_keys(name)):
        raise _invalid(f"A name must be at most {NAME_MAX_LENGTH} characters.")
    if set(claim_keys(name)) & {k for r in reserved for k in claim_keys(r)}:
        raise _invalid("That name is reserved.")
    return name


def _invalid(message: str) -> ChatError:
    return ChatError(ErrorCode.INVALID_NAME, message)
