"""The load run's settings: the function's abuse limits (from the template or
lambda_src/chat/settings.json) and the run's own configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CDK_OUT = ROOT / "cdk.out"
RESULTS = ROOT / "bench" / "results"
REPORT = RESULTS / "load.json"
REGION = "us-east-1"
# Contested names: every join may first try one of these, written as a look-alike.
POOL = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")
FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}

Frame = dict[str, Any]


# The function's settings, each written once (its environment variable -> its default).
SETTINGS_FILE = ROOT / "lambda_src" / "chat" / "settings.json"
FUNCTION_DEFAULTS: dict[str, Any] = {
    entry["env"]: entry["default"]
    for entry in json.loads(SETTINGS_FILE.read_text(encoding="utf-8"))["settings"]
}


@dataclass(frozen=True)
class Limits:
    """The abuse limits the function enforces (its environment in the template; defaults
    from lambda_src/chat/settings.json)."""

    message_burst: int = FUNCTION_DEFAULTS["MESSAGE_BURST"]
    message_rate_per_second: float = float(FUNCTION_DEFAULTS["MESSAGE_RATE_PER_SECOND"])
    name_burst: int = FUNCTION_DEFAULTS["NAME_BURST"]
    name_rate_per_second: float = float(FUNCTION_DEFAULTS["NAME_RATE_PER_SECOND"])
    max_room_size: int = FUNCTION_DEFAULTS["MAX_ROOM_SIZE"]

    @classmethod
    def from_template(cls, template: Path) -> Limits:
        resources = json.loads(template.read_text(encoding="utf-8")).get("Resources", {})
        for resource in resources.values():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            env = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if "MESSAGE_BURST" in env:
                return cls.from_environment(env)
        return cls()

    @classmethod
    def from_environment(cls, env: dict[str, Any]) -> Limits:
        defaults = cls()

        def value(key: str, kind: Callable[[Any], Any], default: Any) -> Any:
            raw = env.get(key)
            return kind(raw) if isinstance(raw, (str, int, float)) and raw != "" else default

        return cls(
            message_burst=value("MESSAGE_BURST", int, defaults.message_burst),
            message_rate_per_second=value(
                "MESSAGE_RATE_PER_SECOND", float, defaults.message_rate_per_second
            ),
            name_burst=value("NAME_BURST", int, defaults.name_burst),
            name_rate_per_second=value(
                "NAME_RATE_PER_SECOND", float, defaults.name_rate_per_second
            ),
            max_room_size=value("MAX_ROOM_SIZE", int, defaults.max_room_size),
        )


@dataclass(frozen=True)
class LoadConfig:
    clients: int = 200
    messages: int = 10_000
    sessions: int = 2  # per client: 1 join + (sessions - 1) leave-and-rejoins
    # A public message costs a post per member (200 here), a private one a single post:
    # with 2 cores, a run of 10,000 public messages (2 million posts) takes hours.
    private_ratio: float = 0.9
    # Mean pause between a client's acknowledgement and its next message: 200 clients
    # offer ~10 messages/s, about what the sandbox on 2 cores sustains with this mix.
    think_s: float = 20.0
    contest: float = 0.5  # chance that a join first tries a contested name
    pause_s: tuple[float, float] = (0.2, 2.0)  # between a leave and the rejoin
    ramp_s: float = 30.0  # clients start spread over this time (a join is a broadcast)
    ack_timeout_s: float = 60.0
    pace: float = 0.9  # fraction of the server's rates the clients use
    sample_connections: int = 10  # clients whose member lists are checked for look-alikes
    seed: int = 1
