"""The hostile-frame corpus as the tests read it (written by tests/hostile/build_corpus.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"
FRAME_FILES = (CORPUS / "frames.jsonl", CORPUS / "large.jsonl")
RAW = CORPUS / "raw"


@dataclass(frozen=True)
class Case:
    """One hostile frame, the state of its sender, and the outcomes the protocol allows."""

    id: str
    category: str
    description: str
    sender: str  # "named" or "unnamed"
    text: str  # exactly what is sent
    expect: tuple[str, ...]  # error codes and/or "ok:<kind>"
    note: str | None = None
    sender_name: str = "Hostile"
    shown: str | None = None  # the name shown after an ok:rename/ok:join, when given
    recipient: str | None = None  # who receives an ok:private
    sandbox: bool = False  # also sent through the sandbox
    close: int | None = None  # the sandbox (API Gateway) closes the socket with this code
    route: str | None = None  # sent on this route (None: the one API Gateway selects)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def named(self) -> bool:
        return self.sender == "named"


@dataclass(frozen=True)
class RawCase:
    """A byte-level case: sent through the sandbox only (a Lambda body is always text)."""

    file: str
    description: str
    opcode: str  # "text" or "binary"
    payload: bytes
    close: int | None = None
    expect: str | None = None  # the error code when the socket stays open
    fragments: int = 1


def _case(raw: dict[str, Any]) -> Case:
    text = raw["text"] if "text" in raw else json.dumps(raw["frame"])
    return Case(
        id=raw["id"],
        category=raw["category"],
        description=raw["description"],
        sender=raw["sender"],
        text=text,
        expect=tuple(raw["expect"]),
        note=raw.get("note"),
        sender_name=raw.get("sender_name", "Hostile"),
        shown=raw.get("shown"),
        recipient=raw.get("recipient"),
        sandbox=bool(raw.get("sandbox", False)),
        close=raw.get("close"),
        route=raw.get("route"),
    )


@cache
def load_cases() -> tuple[Case, ...]:
    cases: list[Case] = []
    for path in FRAME_FILES:
        for line in path.read_text(encoding="ascii").splitlines():
            if line.strip():
                cases.append(_case(json.loads(line)))
    return tuple(cases)


@cache
def load_raw_cases() -> tuple[RawCase, ...]:
    index = json.loads((RAW / "cases.json").read_text(encoding="ascii"))
    return tuple(
        RawCase(
            file=entry["file"],
            description=entry["description"],
            opcode=entry["opcode"],
            payload=(RAW / entry["file"]).read_bytes(),
            close=entry.get("close"),
            expect=entry.get("expect"),
            fragments=int(entry.get("fragments", 1)),
        )
        for entry in index
    )
