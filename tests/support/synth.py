"""The pinned CDK CLI, offline and without credentials, as every suite that runs it needs it.

`run_cdk` is the one way the tests call `cdk`; `synth_template` synthesizes a stack
configured differently from the session's default one (a low memberListThreshold, sign-in
against a local issuer).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
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


def synth_template(
    out: Path, *context: str, stack: str = "ChatStack", cached: bool = False
) -> Path:
    """Synthesize with `-c key=value` for each of `context` into `out`; the template's path.

    `cached`: for a test that runs what the synth makes (a sandbox), not the CLI itself. The
    whole cloud assembly is kept in .pytest_cache/chat-cli-synths/ under a hash of every file
    a synth reads (`tests.support.stack.sources_digest`), of the context, and of the files
    of any context value that names a path in the project (a review hook's directory), and
    copied into `out`: a later run synthesizes again only after a change. Only for context
    that is the same from run to run (no temporary paths or ports in it); `make clean`
    drops the cache.
    """
    if not cached:
        return _synth_into(out, context, stack)
    from tests.support.stack import sources_digest  # noqa: PLC0415 (imports aws_cdk)

    sources = sources_digest()[:16]
    digest = hashlib.sha256(
        json.dumps([sources, stack, context, _context_files_digest(context)]).encode()
    ).hexdigest()[:32]
    CLI_SYNTH_CACHE.mkdir(parents=True, exist_ok=True)
    kept = CLI_SYNTH_CACHE / f"{sources}-{digest}"
    with (CLI_SYNTH_CACHE / f"{sources}-{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker synthesizes, the others wait for it
        if not kept.exists():
            for stale in CLI_SYNTH_CACHE.iterdir():  # synths of sources that changed since
                if not stale.name.startswith(sources):
                    _remove(stale)
            partial = CLI_SYNTH_CACHE / f"{kept.name}.partial"
            _remove(partial)
            _synth_into(partial, context, stack)
            partial.rename(kept)
    shutil.copytree(kept, out, symlinks=True)
    return out / f"{stack}.template.json"


CLI_SYNTH_CACHE = ROOT / ".pytest_cache" / "chat-cli-synths"


def _synth_into(out: Path, context: tuple[str, ...], stack: str) -> Path:
    args = [arg for setting in context for arg in ("-c", setting)]
    result = run_cdk("synth", "--quiet", "--output", str(out), *args)
    assert result.returncode == 0, result.stderr
    return out / f"{stack}.template.json"


def _context_files_digest(context: tuple[str, ...]) -> str:
    """A hash of the files under every context value that names a path in the project."""
    from tests.support.stack import files_digest  # noqa: PLC0415 (imports aws_cdk)

    files: list[Path] = []
    for setting in context:
        value = setting.partition("=")[2]
        path = ROOT / value
        if not value or not path.exists() or ROOT not in path.resolve().parents:
            continue
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [file for file in found if "__pycache__" not in file.parts]
    return files_digest(files)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
