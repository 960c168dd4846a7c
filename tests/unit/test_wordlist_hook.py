"""The example review hook, hooks/wordlist: whole words masked, `!` words denied, the list
from WORDLIST_WORDS or words.txt."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HOOK = Path(__file__).resolve().parents[2] / "hooks" / "wordlist" / "handler.py"


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wordlist_hook", HOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_message_without_listed_words_is_allowed(hook):
    words = hook.WordList.parse(["darn"])
    assert words.review("what a lovely day") == {"decision": "allow"}


def test_listed_words_are_masked_whole_and_in_any_case(hook):
    words = hook.WordList.parse(["darn", "heck"])
    assert words.review("Darn it, what the HECK; darned fine") == {
        "decision": "replace",
        "message": "**** it, what the ****; darned fine",
    }


def test_a_word_after_a_bang_denies_the_message_with_a_reason(hook):
    words = hook.WordList.parse(["darn", "!free crypto"])
    answer = words.review("get FREE CRYPTO, darn")
    assert answer["decision"] == "deny"
    assert answer["reason"]


def test_comments_and_blank_lines_are_ignored_and_phrases_match_with_their_spaces(hook):
    words = hook.WordList.parse(["# a comment", "", "  buy followers  # inline", "!"])
    assert words.review("buy followers now")["message"] == "************* now"
    assert words.review("buy some followers") == {"decision": "allow"}


def test_an_empty_list_allows_everything(hook):
    assert hook.WordList.parse([]).review("anything") == {"decision": "allow"}


def test_the_variable_wins_over_the_file(hook):
    from_variable = hook.load({"WORDLIST_WORDS": "plum, !pear"})
    assert from_variable.review("a plum")["message"] == "a ****"
    assert from_variable.review("a pear")["decision"] == "deny"
    shipped = hook.load({})
    assert shipped.review("darn")["message"] == "****"
    assert shipped.review("free crypto here")["decision"] == "deny"


def test_the_handler_answers_a_request_and_refuses_one_without_a_message(hook):
    assert hook.handler({"room": "lobby", "name": "Ana", "message": "hello"}, None) == {
        "decision": "allow"
    }
    with pytest.raises(ValueError, match="needs a message"):
        hook.handler({"room": "lobby"}, None)
