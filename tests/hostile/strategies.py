"""Hypothesis strategies for client frames, built from the grammar in docs/protocol.md.

A frame is an object with an `action` and any of `name`, `message`, `to`, `id`, `since`,
`clientKey` and unknown keys; each field is drawn from its valid values, its edges (the
length and byte limits and one past them), hostile Unicode, and every other JSON type.
The serialized frame is then sent as is, or mutated as text (truncated, a character
spliced in, a key doubled at the top or deeper, wrapped in an array, a BOM in front, NaN
or Infinity for a value).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.hostile.protocol import (
    ACTIONS,
    CLIENT_KEY_MAX,
    CLIENT_KEY_MIN,
    ID_MAX,
    MESSAGE_MAX,
    NAME_MAX,
    RESERVED_NAMES,
)

# Characters that break naive code: controls, surrogates, invisible and direction marks,
# non-characters, the last code point, combining marks, confusables, quotes.
HOSTILE_CHARS = [
    "\u0000",
    "\u0007",
    "\r",
    "\u009b",
    "\u061c",
    "\u200f",
    "\u202a",
    "\u2069",
    "\u001b",
    "\u007f",
    "\u0085",
    "\u00a0",
    "\u00ad",
    "\u034f",
    "\u0301",
    "\u0334",
    "\u200b",
    "\u200d",
    "\u200e",
    "\u202e",
    "\u2028",
    "\u2066",
    "\u3000",
    "\u3164",
    "\ufe0f",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\ufdd0",
    "\ud800",
    "\udc00",
    "\ud83d",
    "\U0010ffff",
    "\U000e0041",
    "\ue000",
    "\u0430",
    "\u0412",
    "\u0399",
    "\uff22",
    "\U0001d401",
    "\U0001f600",
    ":",
    '"',
    "\\",
    "'",
    "\n",
    "\t",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
not_strings = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children | st.text(max_size=4), max_size=3)
        | st.dictionaries(st.text(max_size=4), children, max_size=2)
    ),
    max_leaves=4,
)
hostile_text = st.lists(
    st.sampled_from(HOSTILE_CHARS) | st.characters(codec=None) | st.sampled_from("aZ "),
    max_size=12,
).map("".join)


def _repeat(alphabet: str, sizes: list[int]) -> st.SearchStrategy[str]:
    return st.builds(lambda ch, n: ch * n, st.sampled_from(alphabet), st.sampled_from(sizes))


actions = (
    st.sampled_from(ACTIONS)
    | st.sampled_from(["SetName", "sendpublic", " ping", "history\u0000", "$disconnect", ""])
    | hostile_text
    | not_strings
)
names = (
    st.sampled_from(["Zed", "Zoë", "Zoe\u0308", "李雷", "Дмитрий", "O'Brien", "Hyp", "Mika-みか"])
    | st.sampled_from(["Bob", "bob", "BOB", "CaroI", "\uff22\uff4f\uff42", "B0b", "Carol "])
    | st.sampled_from([*RESERVED_NAMES, "ADMIN", "Server.", "adrnin", "sysadmin", "B\u014db"])
    | st.sampled_from(["\u0299\u1d0f\u0299", "C\u00e4rol", "\u0421\u0430\u0433\u043e\u04cf"])
    | st.from_regex(r"[A-Za-z]{1,32}", fullmatch=True)
    | _repeat("Zé雷😀", [NAME_MAX - 1, NAME_MAX, NAME_MAX + 1])
    | hostile_text
    | not_strings
)
messages = (
    st.text(max_size=40)
    | _repeat("m😀 \n", [MESSAGE_MAX - 1, MESSAGE_MAX, MESSAGE_MAX + 1])
    | _repeat("é€😀\u0000", [1000, 1001, 1333, 1334, MESSAGE_MAX])
    | st.builds(lambda pad: pad + "m" * MESSAGE_MAX + pad, st.sampled_from([" ", "\n", "\u3000"]))
    | hostile_text
    | not_strings
)
recipients = (
    st.sampled_from(["Bob", " bob ", "CAROL", "\uff22\uff2f\uff22", "Nobody", "Hyp", ""])
    | st.sampled_from(["Carol\u0301", "\u0299\u1d0f\u0299", "Bob has left the chat. Eve"])
    | _repeat("B", [NAME_MAX, NAME_MAX + 1, 5000])
    | hostile_text
    | not_strings
)
ids = (
    st.from_regex(r"[!-~]{1,64}", fullmatch=True)
    | _repeat("i~!", [ID_MAX, ID_MAX + 1])
    | st.sampled_from(["", " ", "a b", "caf\u00e9", "\u0000"])
    | hostile_text
    | not_strings
)
sinces = (
    st.integers(min_value=0, max_value=2**53 - 1)
    | st.integers(max_value=-1)
    | st.floats(allow_nan=False)
    | st.sampled_from([True, False, "5", None, 2**53, 2**64])
    | not_strings
)
client_keys = (
    st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True)
    | _repeat("k_-", [CLIENT_KEY_MIN - 1, CLIENT_KEY_MIN, CLIENT_KEY_MAX, CLIENT_KEY_MAX + 1])
    | st.sampled_from(["", " " + "k" * 16, "k" * 16 + "=", "\u00e9" * 16, None])
    | hostile_text
    | not_strings
)
extra_keys = st.dictionaries(
    st.sampled_from(["from", "seq", "messageId", "ts", "__proto__", "", "x"]) | st.text(max_size=5),
    json_values,
    max_size=2,
)


@st.composite
def frame_objects(draw: st.DrawFn) -> dict[str, Any]:
    """A frame as a JSON object: mostly well-formed for its action, sometimes not."""
    action = draw(actions)
    frame: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        frame["action"] = action
    fields = {
        "name": names,
        "message": messages,
        "to": recipients,
        "id": ids,
        "since": sinces,
        "clientKey": client_keys,
    }
    wanted = {
        "setName": ["name", "since", "clientKey"],
        "sendPublic": ["message"],
        "sendPrivate": ["to", "message"],
        "history": ["since"],
    }.get(action if isinstance(action, str) else "", [])
    for key, strategy in fields.items():
        likely = key in wanted or key == "id"
        if draw(st.integers(0, 9)) < (7 if likely else 1):
            frame[key] = draw(strategy)
    frame.update(draw(extra_keys))
    return frame


@st.composite
def frame_texts(draw: st.DrawFn) -> str:
    """A frame as sent: the serialized object, or that text mutated."""
    frame = draw(frame_objects())
    text = json.dumps(frame, ensure_ascii=draw(st.booleans()))
    mutation = draw(
        st.sampled_from(
            ["none"] * 6
            + ["truncate", "splice", "duplicate-key", "duplicate-nested", "wrap", "bom", "nan"]
            + ["garbage", "random"]
        )
    )
    if mutation == "truncate":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if mutation == "splice":
        at = draw(st.integers(0, len(text)))
        return (
            text[:at] + draw(st.sampled_from([*HOSTILE_CHARS, "{", "}", ",", "[", "]"])) + text[at:]
        )
    if mutation == "duplicate-key" and text.startswith("{") and len(text) > 2:
        key = draw(st.sampled_from(["action", "name", "message", "to", "id", "since"]))
        value = json.dumps(draw(json_values | st.sampled_from(ACTIONS)))
        return '{"' + key + '": ' + value + ", " + text[1:]
    if mutation == "duplicate-nested" and text.startswith("{") and len(text) > 2:
        value = json.dumps(draw(json_values))
        return '{"x": [{"k": ' + value + ', "k": ' + value + "}], " + text[1:]
    if mutation == "wrap":
        return "[" + text + "]"
    if mutation == "bom":
        return "\ufeff" + text
    if mutation == "nan" and ":" in text:
        at = text.index(":")
        return (
            text[: at + 1]
            + " "
            + draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
            + ("}" if text.endswith("}") else "")
        )
    if mutation == "garbage":
        return text + draw(st.text(min_size=1, max_size=5))
    if mutation == "random":
        return draw(st.text(max_size=60))
    return text
