"""An example review hook for the chat: a word-list filter (docs/operations.md#review-hook).

Deploy it with `cdk deploy -c reviewHook=hooks/wordlist`. The chat function invokes it with
each public message before recording it:

    {"room": "lobby", "name": "Ana", "sub": "…", "message": "hello", "messageId": "…"}

and it answers

    {"decision": "allow"}                                 no listed word in the message
    {"decision": "replace", "message": "what a **** day"}  listed words masked with *
    {"decision": "deny", "reason": "…"}                   a word listed with ! in front

The list: the environment variable WORDLIST_WORDS (words separated by commas) when it is
set, else words.txt beside this file (one a line, `#` starts a comment). A word matches
whole, in any case (`Darn` matches `darn`, `darned` does not); a phrase matches with its
spaces. `!word` denies the message instead of masking the word. Standard library only.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORDS_FILE = Path(__file__).with_name("words.txt")
WORDS_VARIABLE = "WORDLIST_WORDS"
DENY_PREFIX = "!"
MASK = "*"
DENY_REASON = "it contains a word this chat does not allow"


@dataclass(frozen=True)
class WordList:
    """Words to mask and words that deny, each a pattern that matches the whole word."""

    masked: re.Pattern[str] | None
    denied: re.Pattern[str] | None

    @classmethod
    def parse(cls, entries: Iterable[str]) -> WordList:
        masked: list[str] = []
        denied: list[str] = []
        for raw in entries:
            entry = raw.split("#", 1)[0].strip()
            if entry.startswith(DENY_PREFIX):
                word = entry[len(DENY_PREFIX) :].strip()
                if word:
                    denied.append(word)
            elif entry:
                masked.append(entry)
        return cls(_pattern(masked), _pattern(denied))

    def review(self, message: str) -> dict[str, Any]:
        """The decision on one message."""
        if self.denied is not None and self.denied.search(message):
            return {"decision": "deny", "reason": DENY_REASON}
        if self.masked is None:
            return {"decision": "allow"}
        masked = self.masked.sub(lambda match: MASK * len(match.group(0)), message)
        if masked == message:
            return {"decision": "allow"}
        return {"decision": "replace", "message": masked}


def _pattern(words: list[str]) -> re.Pattern[str] | None:
    """One pattern for all the words, longest first, each matching whole words only."""
    if not words:
        return None
    ordered = sorted({w.casefold() for w in words}, key=len, reverse=True)
    alternatives = "|".join(re.escape(w) for w in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def load(environ: Mapping[str, str] = os.environ) -> WordList:
    """The list: WORDLIST_WORDS when set, else words.txt."""
    variable = environ.get(WORDS_VARIABLE)
    if variable is not None and variable.strip():
        return WordList.parse(variable.split(","))
    if WORDS_FILE.is_file():
        return WordList.parse(WORDS_FILE.read_text(encoding="utf-8").splitlines())
    return WordList(None, None)


@functools.cache
def word_list() -> WordList:
    """Read once per execution environment."""
    return load()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point. A request without a message is an error: the chat's
    reviewHookFallback decides, and counts it."""
    message = event.get("message") if isinstance(event, dict) else None
    if not isinstance(message, str):
        raise ValueError("a review request needs a message")
    return word_list().review(message)
