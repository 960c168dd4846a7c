"""The corpus is what tests/hostile/build_corpus.py writes, and covers what it must."""

from __future__ import annotations

from collections import Counter

from tests.hostile import build_corpus
from tests.hostile.corpus import load_cases, load_raw_cases
from tests.hostile.protocol import ERROR_CODES, OK_KINDS, Room, expected_outcomes


def test_the_corpus_files_are_current():
    stale = [
        path.name
        for path, content in build_corpus.render().items()
        if not path.exists() or path.read_bytes() != content
    ]
    assert not stale, "run `python -m tests.hostile.build_corpus`: " + ", ".join(stale)


def test_the_corpus_has_at_least_200_frames_in_every_category():
    cases = load_cases()
    assert len(cases) >= 200
    assert len({case.id for case in cases}) == len(cases)
    by_category = Counter(case.category for case in cases)
    assert set(by_category) == {
        "wrong-type",
        "limits",
        "unicode",
        "structure",
        "check-order",
        "oversize",
    }
    assert len(load_raw_cases()) >= 10


def test_every_expectation_is_a_protocol_outcome():
    for case in load_cases():
        for outcome in case.expect:
            assert outcome in ERROR_CODES or outcome.removeprefix("ok:") in OK_KINDS, case.id
        assert len(case.expect) == 1 or case.note, f"{case.id}: say why the choice is open"


def test_every_field_meets_every_wrong_type():
    ids = {case.id for case in load_cases()}
    for field in ("action", "name", "message", "to", "id", "since", "clientKey"):
        for label in ("true", "false", "int", "float", "empty-list", "object"):
            if (field, label) != ("since", "int"):  # an integer is what since wants
                assert f"{field}-{label}" in ids


def test_the_model_allows_what_the_corpus_expects():
    """The property tests' model of the protocol agrees with the hand-written expectations."""
    disagreements = []
    for case in load_cases():
        room = Room(sender_name=case.sender_name if case.named else None)
        allowed = expected_outcomes(case.text, room, case.route)
        if not set(case.expect) <= allowed:
            disagreements.append(f"{case.id}: corpus {list(case.expect)}, model {sorted(allowed)}")
    assert not disagreements, "\n".join(disagreements)
