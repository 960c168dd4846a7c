"""The chat function's settings as lambda_src/chat/settings.json states them.

That file is the one place a function setting's context key, environment variable, type,
default, range and description are written; the function reads it at import
(lambda_src/chat/settings.py) and the stack reads it here, as data: infra never imports
the function's code. It also names the chat's metrics and the loopback origins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETTINGS_FILE = Path(__file__).resolve().parent.parent / "lambda_src" / "chat" / "settings.json"
_FILE: dict[str, Any] = json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class FunctionSetting:
    """One entry of settings.json's `settings`."""

    key: str | None  # the CDK context key; None when the stack derives the value
    env: str
    kind: str  # int, float, choice, str, flag, names or origins
    default: Any
    low: float | None
    high: float | None
    choices: tuple[str, ...]
    description: str
    # Context keys of which one must be set for the stack to pass this setting to the
    # function (the review hook's, the event bus's): without them the template is unchanged.
    only_with: tuple[str, ...] = ()

    @property
    def field_name(self) -> str:
        """ChatConfig's field (and the function's dataclass field) for this setting."""
        return self.env.lower()


FUNCTION_SETTINGS: tuple[FunctionSetting, ...] = tuple(
    FunctionSetting(
        key=entry.get("key"),
        env=entry["env"],
        kind=entry["type"],
        default=entry["default"],
        low=entry.get("min"),
        high=entry.get("max"),
        choices=tuple(entry.get("choices", ())),
        description=entry["description"],
        only_with=tuple(entry.get("onlyWith", ())),
    )
    for entry in _FILE["settings"]
)
# The settings a context key sets, by key.
BY_KEY: dict[str, FunctionSetting] = {s.key: s for s in FUNCTION_SETTINGS if s.key}
BY_ENV: dict[str, FunctionSetting] = {s.env: s for s in FUNCTION_SETTINGS}

LOOPBACK_ORIGINS: tuple[str, ...] = tuple(_FILE["loopbackOrigins"])

METRICS_NAMESPACE: str = _FILE["metrics"]["namespace"]
METRICS_SERVICE: str = _FILE["metrics"]["service"]
METRIC_ROUTES: tuple[str, ...] = tuple(_FILE["metrics"]["routes"])
# Constant name (FRAMES_IN) -> metric name (FramesIn), and its one-line description.
METRIC_NAMES: dict[str, str] = {k: m["name"] for k, m in _FILE["metrics"]["names"].items()}
METRIC_DESCRIPTIONS: dict[str, str] = {
    m["name"]: m["description"] for m in _FILE["metrics"]["names"].values()
}
