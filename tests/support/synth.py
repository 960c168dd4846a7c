"""The pinned CDK CLI, offline and without credentials, as every suite that runs it needs it.

`run_cdk` is the one way the tests call `cdk`; `synth_template` synthesizes a stack
configured differently from the session's default one (a low memberListThreshold, sign-in
against a local issuer).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def offline_cdk_env() -> dict[str, str]:
    """This environment without AWS credentials, region or account, with the pinned Node and
    CLI first on PATH, no telemetry, no bytecode written, and an unroutable proxy: nothing
    may need the network."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
    }
    tools = [str(ROOT / "node_modules" / ".bin"), str(ROOT / ".venv" / "bin")]
    env["PATH"] = os.pathsep.join([*tools, env.get("PATH", "")])
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    env["HTTPS_PROXY"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a synth leaves the project's tree as it was
    return env


def run_cdk(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`cdk <args> --no-notices` in `cwd`, offline (offline_cdk_env); never raises on failure."""
    assert CDK.exists(), "run `make setup` first (npm ci installs the pinned CLI)"
    return subprocess.run(
        [str(CDK), *args, "--no-notices"],
        cwd=cwd,
        env=offline_cdk_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def synth_template(out: Path, *context: str, stack: str = "ChatStack") -> Path:
    """Synthesize with `-c key=value` for each of `context` into `out`; the template's path."""
    args = [arg for setting in context for arg in ("-c", setting)]
    result = run_cdk("synth", "--quiet", "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    return out / f"{stack}.template.json"
