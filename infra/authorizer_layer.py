"""The sign-in authorizer's Lambda layer: PyJWT and cryptography built for Lambda's runtime.

cryptography is native code, so the layer is built on purpose for the function's runtime
(CPython 3.14, arm64, manylinux wheels only), from the pins in
`authorizer_src/requirements.txt`:

    make authorizer-layer          # = python -m infra.authorizer_layer (needs PyPI)

`cdk synth` never builds it and never needs the network: with `signIn=true` it only checks
the built layer (`check_built`) and fails with the command above if it is missing or was
built from other pins. With sign-in off the layer is not used at all.

Standard library only: building the layer does not start the CDK.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "authorizer_src" / "requirements.txt"
DEFAULT_LAYER_DIR = "build/authorizer-layer"
BUILD_INFO = "BUILD-INFO.json"
BUILD_COMMAND = "make authorizer-layer"

# The function's runtime (infra/chat_function.py: PYTHON_3_14 on ARM_64).
PYTHON_VERSION = "3.14"
IMPLEMENTATION = "cp"
PLATFORM = "manylinux2014_aarch64"
# Lambda puts a Python layer's `python/` directory on sys.path (/opt/python).
SITE_DIR = "python"
# What a built layer must contain (import names).
PACKAGES = ("jwt", "cryptography")


class LayerNotBuiltError(RuntimeError):
    """Sign-in is on but the layer is missing or stale; the message names the command."""


def resolve(layer_dir: str | Path) -> Path:
    """A layer directory as configured: relative paths are relative to the project root."""
    path = Path(layer_dir).expanduser()
    return path if path.is_absolute() else ROOT / path


def requirements() -> list[str]:
    """The pinned requirements, without comments or blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def build_info() -> dict[str, Any]:
    """What a layer built from the current pins records in its BUILD-INFO.json."""
    return {
        "requirements": requirements(),
        "pythonVersion": PYTHON_VERSION,
        "implementation": IMPLEMENTATION,
        "platform": PLATFORM,
    }


def pip_command(site_dir: Path) -> list[str]:
    """pip, told to fetch wheels for Lambda's runtime rather than for this machine."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",  # .pyc files of this machine's Python would be useless there
        "--target",
        str(site_dir),
        "--platform",
        PLATFORM,
        "--implementation",
        IMPLEMENTATION,
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
        "--requirement",
        str(REQUIREMENTS),
    ]


def problem(layer_dir: Path) -> str | None:
    """Why `layer_dir` is not a layer built from the current pins, or None if it is."""
    info = layer_dir / BUILD_INFO
    if not info.is_file() or not all((layer_dir / SITE_DIR / p).is_dir() for p in PACKAGES):
        return "is not built"
    try:
        recorded = json.loads(info.read_text())
    except ValueError:
        return f"has an unreadable {BUILD_INFO}"
    if recorded != build_info():
        return f"was built from other pins than {REQUIREMENTS.relative_to(ROOT)}"
    return None


def check_built(layer_dir: str | Path) -> Path:
    """The layer directory, if it holds a layer built from the current pins.

    Raises LayerNotBuiltError naming the command that builds it.
    """
    path = resolve(layer_dir)
    why = problem(path)
    if why is not None:
        command = BUILD_COMMAND
        if path != resolve(DEFAULT_LAYER_DIR):
            command = f"python -m infra.authorizer_layer --layer-dir {path}"
        raise LayerNotBuiltError(
            f"signIn=true needs the sign-in authorizer's layer (PyJWT and cryptography for "
            f"Python {PYTHON_VERSION} on arm64) in {path}, which {why}. Build it with "
            f"`{command}` (it downloads the pinned wheels from PyPI; synth stays offline)."
        )
    return path


def build(layer_dir: str | Path, *, force: bool = False) -> bool:
    """Build the layer into `layer_dir` unless it is already up to date; True if built."""
    path = resolve(layer_dir)
    if not force and problem(path) is None:
        return False
    staging = path.with_name(path.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    site_dir = staging / SITE_DIR
    site_dir.mkdir(parents=True)
    subprocess.run(pip_command(site_dir), check=True)
    # Console scripts with this machine's interpreter in their shebang: not for Lambda.
    shutil.rmtree(site_dir / "bin", ignore_errors=True)
    (staging / BUILD_INFO).write_text(json.dumps(build_info(), indent=2) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    staging.rename(path)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.authorizer_layer",
        description="Build the sign-in authorizer's Lambda layer (PyJWT + cryptography).",
    )
    parser.add_argument(
        "--layer-dir",
        default=DEFAULT_LAYER_DIR,
        help=f"where to build it (default {DEFAULT_LAYER_DIR}; context signInLayerDir)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    path = resolve(args.layer_dir)
    if build(path, force=args.force):
        print(f"Built the authorizer layer in {path} ({', '.join(requirements())})")
    else:
        print(f"The authorizer layer in {path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
