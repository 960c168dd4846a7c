"""Chat names: which names are acceptable, and the keys that decide when two names clash.

A name is shown as its owner typed it (NFC). Uniqueness is decided on keys built from
NFKC, case folding and the Unicode confusable skeleton (UTS #39), so full-width and
mathematical letters, Cyrillic look-alikes and `aIice` (capital I) all clash with
`alice`. The confusable, script and default-ignorable data are Unicode's own
(chat/unicode/, made by bin/build-unicode-data); small capitals are found by their
Unicode names in Python's `unicodedata`.

The rules, and why each is the one chosen:

- **Whole-script confusables clash; they are not refused.** UTS #39 section 4 calls a
  name whole-script confusable when its skeleton can be written in another single script:
  `alice` spelled in Cyrillic (U+0430 U+04CF U+0456 U+0441 U+0435) looks like the Latin
  one. Refusing such names would refuse real ones: the Russian name Vera, in Cyrillic, has
  the skeleton `Bepa`, the word sor has `cop`. So the keys of a name in
  Cyrillic, Greek or any script are its skeleton, which is the Latin name's key when every
  letter has a Latin look-alike; the two cannot be online together, whoever came first.
  When the Latin holder is offline the look-alike can be taken, but so can `alice`
  itself: without sign-in a name is a claim among the people online, not an account, and
  a look-alike gains nothing the name itself would not give. `whole_script_confusable()`
  tells which names these are.
- **Why Cyrillic `alice` passed before.** Unicode's confusables.txt maps CYRILLIC SMALL
  LETTER PALOCHKA (U+04CF) to `i` (through the dotless i), while browsers' fonts draw it as the
  full-height stroke of its capital U+04C0, which the same file maps to `l`. The keys now
  treat it as a member of the `l` family, below.
- **The `l` family of every script is one letter.** Every character whose skeleton is
  `l` (I, 1, |, the Latin dental click, Cyrillic palochka, Greek capital iota, Hebrew vav,
  Arabic alef, NKo a, Tifinagh yan, script l, Roman numeral one... 74 characters, read
  from confusables.txt, not listed here)
  keeps its look in the key: one that NFKC would turn into something else (U+FFE8
  HALFWIDTH FORMS LIGHT VERTICAL becomes a box-drawing line) is replaced by `l` first,
  and a cased one (Latin I, Greek iota, Cyrillic palochka), which case folding makes an
  `i`, gets the second key, skeleton before case folding. U+04CF, the small palochka,
  joins the family as its capital's twin; the small iotas of Greek and Latin and the
  dotless i are drawn at x-height, like an i without its dot, and stay with `i`.
- **Marks on Latin, Greek and Cyrillic letters are left out of the key.** A dot below or
  above, a macron, ring or tilde below, an extra dot on i or j barely change a letter's
  look, and which marks are "barely visible" depends on the font, so the key drops every
  nonspacing mark (Mn) that sits on a Latin, Greek, Cyrillic or Common character, as
  Chromium's IDN spoof checker removes nonspacing marks before it compares a hostname's
  skeleton with known domains (components/url_formatter/spoof_checks/idn_spoof_checker.cc
  in https://chromium.googlesource.com/chromium/src). `José` and
  `Jose`, `Zoë` and `Zoe` therefore clash; both are still accepted. Marks of other
  scripts (Devanagari vowel signs, Arabic harakat, Hebrew points, the kana voicing marks)
  are letters of their words there and stay in the key. The same nonspacing mark twice
  on one letter is refused (UTS #39 section 5.4), as is a mark with no letter under it.
- **Small capitals are capitals.** `ᴀʟɪᴄᴇ` has no compatibility decomposition and is
  barely in confusables.txt; a character named "... LETTER SMALL CAPITAL X" is keyed as
  "... CAPITAL LETTER X", so it folds like `ALICE`.
- **No glyph, no name.** Refused: controls, format characters, private use and
  unassigned code points (general categories Cc, Cf, Co, Cn), line and paragraph
  separators and every space but U+0020; Default_Ignorable_Code_Point
  (DerivedCoreProperties.txt: "should be rendered invisibly", Unicode Standard section
  5.21), which covers the Hangul fillers U+115F, U+1160, U+3164, U+FFA0, variation
  selectors, the combining grapheme joiner and the tag characters U+E0000-E0FFF; and the
  few symbols whose Unicode name says their glyph is blank (BLANK_GLYPHS).
- **Reserved names.** `validate_name` refuses a name whose key, with punctuation,
  symbols and spaces taken out, equals the key of a reserved name (in lower, upper or
  title case), so `ADMIN`, `[system]`, `Server.`, `a d m i n`, `Admịn` are refused. It
  is an exact match, not a substring: `sysadmin`, `Servery`, `admin2` stay allowed.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Collection, Iterable
from pathlib import Path

from chat.errors import ChatError, ErrorCode

NAME_MAX_LENGTH = 32
MAX_COMBINING_RUN = 3
# A key is a DynamoDB key part; NFKC and skeletons can expand a name many times over.
KEY_MAX_LENGTH = 512
DATA = Path(__file__).resolve().parent / "unicode"
DEFAULT_RESERVED_NAMES: tuple[str, ...] = (
    "admin",
    "administrator",
    "system",
    "server",
    "moderator",
)

# Symbols that are neither spaces nor default-ignorable, but whose glyph is blank: their
# Unicode names say so.
BLANK_GLYPHS = frozenset(
    {
        0x2800,  # BRAILLE PATTERN BLANK
        0x303F,  # IDEOGRAPHIC HALF FILL SPACE
        0x1D159,  # MUSICAL SYMBOL NULL NOTEHEAD
    }
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
# Scripts whose nonspacing marks are diacritics on a letter, left out of the key.
DIACRITIC_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC", "COMMON"})
# The Combining Diacritical Marks blocks (and its Extended, Supplement, for Symbols and
# Half Marks blocks): marks of no script in particular.
GENERIC_DIACRITICS = (
    *((0x0300, 0x0370), (0x1AB0, 0x1B00), (0x1DC0, 0x1E00)),
    *((0x20D0, 0x2100), (0xFE20, 0xFE30)),
)
# The blocks Unicode puts phonetic small capitals in: IPA Extensions, Phonetic Extensions
# (and Supplement), Latin Extended-D, -F and -G.
SMALL_CAPITAL_BLOCKS = (
    *((0x0250, 0x02B0), (0x1D00, 0x1DC0), (0xA720, 0xA800)),
    *((0x10780, 0x107C0), (0x1DF00, 0x1E000)),
)
SMALL_CAPITAL = re.compile(
    r"(LATIN|GREEK|CYRILLIC|MODIFIER) "
    r"(?:LETTER SMALL CAPITAL|SMALL CAPITAL LETTER|CAPITAL LETTER SMALL CAPITAL) (.+)"
)
# Characters keyed as `l` although confusables.txt maps them elsewhere (see the module
# docstring): CYRILLIC SMALL LETTER PALOCHKA.
STROKE_EXTRA = frozenset({"\u04cf"})


@functools.cache
def _prototypes() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in (DATA / "confusables.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            source, target = line.split(";")
            table[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    for char in STROKE_EXTRA:
        table[char] = "l"
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


@functools.cache
def _ignorable() -> frozenset[int]:
    code_points: set[int] = set()
    for line in (DATA / "ignorable.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            first, last = line.split()
            code_points.update(range(int(first, 16), int(last, 16) + 1))
    return frozenset(code_points | BLANK_GLYPHS)


@functools.cache
def _key_folds() -> dict[str, str]:
    """What the key replaces before NFKC and case folding: small capitals by their
    capitals, and the members of the `l` family that NFKC would take out of it by `l`."""
    folds: dict[str, str] = {}
    for first, end in SMALL_CAPITAL_BLOCKS:
        for code_point in range(first, end):
            char = chr(code_point)
            match = SMALL_CAPITAL.fullmatch(unicodedata.name(char, ""))
            if match is None:
                continue
            script = "LATIN" if match[1] == "MODIFIER" else match[1]
            try:
                folds[char] = unicodedata.lookup(f"{script} CAPITAL LETTER {match[2]}")
            except KeyError:
                continue
    for char, prototype in _prototypes().items():
        if prototype == "l" and skeleton(unicodedata.normalize("NFKC", char)) != "l":
            folds[char] = "l"
    return folds


@functools.lru_cache(maxsize=8192)
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


def _without_diacritics(text: str, *, generic_only: bool = False) -> str:
    """NFD text without the nonspacing marks that sit on Latin, Greek, Cyrillic or Common
    characters (marks of other scripts are kept); with `generic_only`, only the marks of
    the Combining Diacritical Marks blocks (a skeleton writes Arabic alef as `l`, and the
    hamza on it stays)."""
    kept: list[str] = []
    base_script = ""
    for char in text:
        if unicodedata.category(char) == "Mn":
            if base_script in DIACRITIC_SCRIPTS and (not generic_only or _generic(char)):
                continue
        else:
            base_script = script_of(char)
        kept.append(char)
    return "".join(kept)


def _generic(mark: str) -> bool:
    return any(first <= ord(mark) < end for first, end in GENERIC_DIACRITICS)


@functools.cache
def _skeleton_folds() -> dict[str, str]:
    """What a skeleton still holds of small capitals, made capitals: the small capitals
    themselves, and the prototype confusables.txt gives some of them. Cyrillic т, в and м
    are small capitals in a Latin font: their prototypes are ᴛ, ʙ and ʍ (the prototype
    of small capital M), which must key as T, B and M."""
    folds: dict[str, str] = {}
    for char, capital in _key_folds().items():
        if capital == "l" or not capital.isascii():  # Latin small capitals only
            continue
        folds[char] = capital
        prototype = skeleton(char)
        if len(prototype) == 1 and not prototype.isascii():
            folds.setdefault(prototype, capital)
    return folds


def _refold(key: str) -> str:
    """A key with the small capitals its skeleton made folded like any capital letter."""
    folds = _skeleton_folds()
    if not any(ch in folds for ch in key):
        return key
    return skeleton("".join(folds.get(ch, ch) for ch in key).casefold())


def _key_base(name: str) -> str:
    folds = _key_folds()
    text = unicodedata.normalize("NFKC", "".join(folds.get(ch, ch) for ch in name))
    text = "".join(folds.get(ch, ch) for ch in text)
    return _without_diacritics(unicodedata.normalize("NFD", text))


@functools.lru_cache(maxsize=4096)
def claim_keys(name: str) -> tuple[str, ...]:
    """The keys a name occupies; two names clash when their keys overlap.

    Two keys, because case folding and the skeleton do not commute: capital I and small
    l are confusable, but their case-folded forms (i, l) are not. So a name occupies
    skeleton(fold(name)) and fold(skeleton(name)): `aIice` clashes with `alice` through
    the second, `ALICE` with `alice` through the first. Both are built on the name with
    small capitals made capitals, the uncased `l` family made `l` and diacritics left out,
    and have their diacritics left out again after the skeleton.
    """
    base = _key_base(name)
    first = _without_diacritics(_refold(skeleton(base.casefold())), generic_only=True)
    second = _without_diacritics(_refold(skeleton(skeleton(base).casefold())), generic_only=True)
    return (first,) if first == second else (first, second)


def lookup_key(name: str) -> str:
    """The key a recipient's name (`to`) is looked up by: the first of its claim keys."""
    return _without_diacritics(_refold(skeleton(_key_base(name).casefold())), generic_only=True)


def whole_script_confusable(name: str) -> bool:
    """True when a name written in one script other than Latin has a Latin look-alike
    (UTS #39 section 4): one of its keys is in Latin and Common characters only, as
    `alice` spelled in Cyrillic (key `alice`) or the Russian name Vera (key `bepa`)."""
    scripts = {script_of(ch) for ch in name} - ANY_SCRIPT
    if not scripts or "LATIN" in scripts:
        return False
    return any(all(script_of(ch) in ("LATIN", "COMMON") for ch in key) for key in claim_keys(name))


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


def _bare(keys: Iterable[str]) -> set[str]:
    """Keys with everything but letters, digits and marks taken out (empty ones dropped)."""
    bare = {"".join(ch for ch in key if unicodedata.category(ch)[0] in "LNM") for key in keys}
    bare.discard("")
    return bare


@functools.cache
def _reserved_keys(reserved: tuple[str, ...]) -> frozenset[str]:
    keys: set[str] = set()
    for name in reserved:
        for variant in (name, name.lower(), name.upper(), name.title()):
            keys |= _bare(claim_keys(variant))
    return frozenset(keys)


def validate_name(raw: object, *, reserved: Collection[str] = DEFAULT_RESERVED_NAMES) -> str:
    """The name to show (trimmed, NFC). Raises ChatError(INVALID_NAME) with the reason.

    `reserved` are names nobody may take, nor their look-alikes (see the module docstring).
    No message repeats the name.
    """
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
    ignorable = _ignorable()
    for char in name:
        category = unicodedata.category(char)
        if category in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp"):
            raise _invalid("A name must not contain control or invisible characters.")
        if ord(char) in ignorable or (category == "Zs" and char != " "):
            raise _invalid("A name must not contain invisible or blank characters.")
    _check_marks(unicodedata.normalize("NFD", name))
    if "  " in name:
        raise _invalid("A name must not contain two spaces in a row.")
    if not single_script(name):
        raise _invalid(
            "A name must be written in one script (for example not Latin mixed with Cyrillic)."
        )
    keys = claim_keys(name)
    if any(len(key) > KEY_MAX_LENGTH for key in keys):
        raise _invalid(f"A name must be at most {NAME_MAX_LENGTH} characters.")
    if reserved and _bare(keys) & _reserved_keys(tuple(reserved)):
        raise _invalid("A name must not be a reserved name or look like one.")
    return name


def _check_marks(decomposed: str) -> None:
    """Combining marks: on a letter, at most three on one, never the same one twice."""
    run = 0
    previous = " "
    for char in decomposed:
        category = unicodedata.category(char)
        if category[0] == "M" and previous == " ":
            raise _invalid("A name must not have an accent without a letter under it.")
        if category == "Mn" and char == previous:
            raise _invalid("A name must not repeat an accent on one letter.")
        run = run + 1 if category in ("Mn", "Me") else 0
        if run > MAX_COMBINING_RUN:
            raise _invalid("A name must not stack more than three accents on one letter.")
        previous = char


def _invalid(message: str) -> ChatError:
    return ChatError(ErrorCode.INVALID_NAME, message)
