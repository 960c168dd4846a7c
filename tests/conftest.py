"""Shared test setup: import paths, fake AWS credentials, and the common fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.support.profiles  # noqa: F401 (hypothesis profiles: HYPOTHESIS_PROFILE)

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_SRC = ROOT / "lambda_src"
for path in (str(ROOT), str(LAMBDA_SRC)):
    if path not in sys.path:
        sys.path.insert(0, path)

# Nothing in the tests may reach real AWS.
for key, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}.items():
    os.environ[key] = value
os.environ.pop("AWS_PROFILE", None)


BIN = ROOT / "node_modules" / ".bin"
Synth = subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def cdk_out(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the pinned CDK CLI once per session, offline and without credentials."""
    out = tmp_path_factory.mktemp("cdk.out")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["CDK_DISABLE_CLI_TELEMETRY"] = "true"
    # An unroutable proxy: synth must need neither AWS nor the network.
    env["HTTPS_PROXY"] = env["HTTP_PROXY"] = "http://127.0.0.1:9"
    assert (BIN / "cdk").exists(), "run `make setup` first (npm ci installs the pinned CLI)"
    result = subprocess.run(
        [str(BIN / "cdk"), "synth", "--no-notices", "--quiet", "--output", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result, out


@pytest.fixture(scope="session")
def chat_template_path(cdk_out: tuple[Synth, Path]) -> Path:
    """The synthesized ChatStack template (what `cdk deploy` would ship)."""
    result, out = cdk_out
    assert result.returncode == 0, result.stderr
    return out / "ChatStack.template.json"


@pytest.fixture(scope="session")
def chat_sandbox(
    chat_template_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """`python -m sandbox` on the synthesized stack, serving web/, with two workers."""
    from tests.support.sandbox import running_sandbox  # noqa: PLC0415

    with running_sandbox(
        chat_template_path,
        tmp_path_factory.mktemp("chat-sandbox"),
        "--web-dir",
        str(ROOT / "web"),
        "--workers",
        "2",
        stage="production",
    ) as sandbox:
        yield sandbox


@pytest.fixture
def db() -> Iterator[Any]:
    """moto DynamoDB with the stack's table (tests.support.aws.TABLE), fresh for each test."""
    from tests.support.aws import chat_table  # noqa: PLC0415

    with chat_table() as client:
        yield client
