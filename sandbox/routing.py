"""Route selection: evaluate the API's route selection expression against a message."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

DEFAULT_ROUTE = "$default"
_CONNECTION_ROUTES = frozenset({"$connect", "$disconnect"})
_TEMPLATE_VARIABLE = re.compile(r"\$\{request\.body\.([^}]+)\}")
_BARE_VARIABLE = re.compile(r"^\$request\.body\.([A-Za-z0-9_\-.\[\]]+)$")
_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class _Part:
    literal: str | None
    path: tuple[str | int, ...]


class RouteSelector:
    """A parsed route selection expression such as `$request.body.action`."""

    def __init__(self, expression: str) -> None:
        """Parse `expression`; raise ValueError for forms API Gateway would not accept here."""
        self._parts = _parse(expression)

    def evaluate(self, body: str) -> str | None:
        """The route key the expression yields for `body`, or None if it cannot be evaluated.

        Missing values yield "" and non-string values are stringified, as API Gateway does.
        A body that is not a JSON object cannot be evaluated (the message goes to $default).
        """
        if all(part.path == () for part in self._parts):
            return "".join(part.literal or "" for part in self._parts)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
            return None
        if not isinstance(document, dict):
            return None
        out = []
        for part in self._parts:
            if part.literal is not None:
                out.append(part.literal)
            else:
                out.append(stringify(_lookup(document, part.path)))
        return "".join(out)

    def select(self, body: str, route_keys: Collection[str]) -> str | None:
        """The route that handles `body`: an exact match, else $default, else None (Forbidden)."""
        key = self.evaluate(body)
        if key is not None and key in route_keys and key not in _CONNECTION_ROUTES:
            return key
        return DEFAULT_ROUTE if DEFAULT_ROUTE in route_keys else None


def stringify(value: Any) -> str:
    """Render a JSON value the way route selection compares it (`[a, b]` for arrays)."""
    if value is None:
        return ""
    return _render(value)


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_render(item)}" for key, item in value.items()) + "}"
    return str(value)


def _lookup(document: Any, path: tuple[str | int, ...]) -> Any:
    current = document
    for step in path:
        in_list = isinstance(step, int) and isinstance(current, list) and step < len(current)
        in_object = isinstance(step, str) and isinstance(current, dict) and step in current
        if not (in_list or in_object):
            return None
        current = current[step]
    return current


def _parse_path(text: str, expression: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    position = 0
    for match in _PATH_STEP.finditer(text):
        between = text[position : match.start()]
        if between not in ("", "."):
            raise ValueError(f"route selection expression {expression!r}: bad path {text!r}")
        name, index = match.groups()
        steps.append(int(index) if index is not None else name)
        position = match.end()
    if not steps or text[position:] != "":
        raise ValueError(f"route selection expression {expression!r}: bad path {text!r}")
    return tuple(steps)


def _parse(expression: str) -> list[_Part]:
    if expression in (r"\$default", DEFAULT_ROUTE):
        return [_Part(literal=DEFAULT_ROUTE, path=())]
    bare = _BARE_VARIABLE.match(expression)
    if bare:
        return [_Part(literal=None, path=_parse_path(bare.group(1), expression))]
    parts: list[_Part] = []
    position = 0
    for match in _TEMPLATE_VARIABLE.finditer(expression):
        if match.start() > position:
            parts.append(_Part(literal=expression[position : match.start()], path=()))
        parts.append(_Part(literal=None, path=_parse_path(match.group(1), expression)))
        position = match.end()
    if position < len(expression):
        parts.append(_Part(literal=expression[position:], path=()))
    for part in parts:
        if part.literal is not None and re.search(r"\$\{?request\.", part.literal):
            raise ValueError(
                f"route selection expression {expression!r}: only $request.body.* is supported"
            )
    return parts
