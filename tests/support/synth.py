"""`cdk synth` through the pinned CLI with extra context, offline, for suites that run a
stack configured differently from the session's default one (a low memberListThreshold,
sign-in against a local issuer)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def synth_template(out: Path, *context: str, stack: str = "ChatStack") -> Path:
    """Synthesize with `-c key=value` for each of `context` into `out`; the template's path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    tools = [ROOT / "node_modules" / ".bin", ROOT / ".venv" / "bin"]
    env["PATH"] = os.pathsep.join([*map(str, tools), env.get("PATH", "")])
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    env["HTTPS_PROXY"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"  # synth needs no network
    args = [arg for setting in context for arg in ("-c", setting)]
    result = subprocess.run(
        ["cdk", "synth", "--no-notices", "--quiet", "--output", str(out), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out / f"{stack}.template.json"
