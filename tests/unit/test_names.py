"""Names nobody can impersonate: look-alikes clash, invisible and mixed-script names are refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chat.errors import ChatError, ErrorCode
from chat.names import claim_keys, lookup_key, script_of, skeleton, validate_name

ROOT = Path(__file__).resolve().parents[2]


def clash(a: str, b: str) -> bool:
    return bool(set(claim_keys(validate_name(a))) & set(claim_keys(validate_name(b))))


@pytest.mark.parametrize(
    "impostor",
    [
        "\uff21\uff2c\uff29\uff23\uff25",  # full-width
        "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",  # mathematical bold
        "ᵃˡⁱᶜᵉ",  # modifier letters
        "aIice",  # capital I for small l
        "ALICE",
        "Alice",
    ],
)
def test_look_alikes_of_a_name_clash_with_it(impostor):
    assert clash("alice", impostor)


@pytest.mark.parametrize(
    "name",
    [
        "\u0430lice",  # Cyrillic a, then Latin
        "alic\u0435",  # Latin, then Cyrillic ie
        "alpha-\u03b1\u03b2",  # Latin and Greek
    ],
)
def test_mixed_script_names_are_refused(name):
    with pytest.raises(ChatError) as excinfo:
        validate_name(name)
    assert excinfo.value.code is ErrorCode.INVALID_NAME
    assert "one script" in excinfo.value.message


@pytest.mark.parametrize(
    "name",
    [
        "alice\u3164",  # Hangul filler
        "alice\u2800",  # braille blank
        "alice\u115f",  # Hangul choseong filler
        "alice\ufe0f",  # variation selector
        "alice\U000e0100",  # variation selector supplement
        "ali\u034fce",  # combining grapheme joiner
        "alice\u200b",  # zero width space (a format character)
        "ali\u202ece",  # right-to-left override
        "alix\u0301\u0302\u0303\u0304",  # a run of four combining marks
        "ali\u00a0ce",  # no-break space
        "ali  ce",  # two spaces
        "\ud83d",  # a lone surrogate
    ],
)
def test_invisible_blank_and_broken_names_are_refused(name):
    with pytest.raises(ChatError) as excinfo:
        validate_name(name)
    assert excinfo.value.code is ErrorCode.INVALID_NAME


@pytest.mark.parametrize(
    "name",
    [
        "Zoë",
        "李雷",
        "Дмитрий",
        "محمد",
        "O'Brien",
        "Mary Ann",
        "Ünïcødé-名前",
        "Mika-みか",
        "Nguyễn",
    ],
)
def test_ordinary_names_in_one_script_are_accepted_as_typed(name):
    assert validate_name(name) == name


def test_a_decomposed_name_is_shown_composed_and_clashes_with_the_composed_one():
    decomposed = "Alice\u0301"
    assert validate_name(decomposed) == "Alic\u00e9"
    assert clash("Alic\u00e9", decomposed)
    assert lookup_key(decomposed) == lookup_key("ALICÉ")


def test_a_recipient_is_looked_up_by_the_first_claim_key():
    for name in ("Alice", "aIice", "Zoë"):
        assert lookup_key(name) == claim_keys(name)[0]


def test_different_names_do_not_clash():
    assert not clash("alice", "alicia")
    assert not clash("Bob", "Rob")


def test_scripts_and_skeleton_come_from_unicode_data():
    assert script_of("a") == "LATIN"
    assert script_of("\u0430") == "CYRILLIC"
    assert script_of("1") == "COMMON"
    assert skeleton("\u0430") == "a"  # Cyrillic a looks like Latin a
    assert skeleton("rn") == skeleton("m")


def test_the_committed_unicode_data_is_what_the_generator_makes(tmp_path):
    # GIVEN the generator run into a scratch copy of the data directory
    committed = ROOT / "lambda_src" / "chat" / "unicode"
    script = (ROOT / "bin" / "build-unicode-data").read_text(encoding="utf-8")
    patched = script.replace(
        'OUT = Path(__file__).resolve().parent.parent / "lambda_src" / "chat" / "unicode"',
        f"OUT = Path({str(tmp_path)!r})",
    )
    assert patched != script
    (tmp_path / "gen.py").write_text(patched, encoding="utf-8")
    subprocess.run([sys.executable, str(tmp_path / "gen.py")], check=True, capture_output=True)
    # THEN it matches what the Lambda ships, byte for byte
    for name in ("confusables.txt", "scripts.txt"):
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name
