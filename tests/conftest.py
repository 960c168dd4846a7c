"""Shared test setup: import paths, fake AWS credentials, and the common fixtures."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import subprocess
import sys
import zlib
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


def _share_botocore_models() -> None:
    """Let every boto3 session in this process share one botocore loader.

    Each session otherwise parses botocore's JSON service models again (about 0.1 s a
    client); tests make a fresh session for every moto table and every `handler.reset()`.
    A warm Lambda process keeps its clients, so sharing the parsed models changes nothing
    the tests check.
    """
    import botocore.loaders  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)


_share_botocore_models()


BIN = ROOT / "node_modules" / ".bin"
Synth = subprocess.CompletedProcess[str]


# Modules too long to run on one worker: pytest-xdist's loadscope keeps a module on one
# worker, so these are cut into that many parts, each a unit of its own (its module-scoped
# fixtures are then made once per part's worker). Their tests are independent cases.
SPLIT_MODULES = {
    "tests/hostile/test_corpus_handler.py": 3,
    "tests/hostile/test_corpus_sandbox.py": 2,
    "tests/e2e/test_faults.py": 3,  # a sandbox per test: nothing shared to make twice
    "tests/e2e/test_tls_faults.py": 2,
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope`, but with SPLIT_MODULES cut into parts."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415

    class SplitLongModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            parts = SPLIT_MODULES.get(module)
            if parts is None:
                return str(super()._split_scope(nodeid))
            return f"{module}::part{zlib.crc32(nodeid.encode()) % parts}"

    return SplitLongModules(config, log)


def run_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by every worker of this test run (pytest-xdist gives each worker
    its own base temp directory inside the run's)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def cdk_out(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the pinned CDK CLI once per test run, offline and without credentials.

    The first worker to get here synthesizes; the others wait on the lock and read its
    result, so a run of several workers synthesizes the default stack once.
    """
    shared = run_directory(tmp_path_factory) / "default-synth"
    shared.mkdir(exist_ok=True)
    out, record = shared / "cdk.out", shared / "result.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            result = _synthesize(out)
            record.write_text(
                json.dumps([result.args, result.returncode, result.stdout, result.stderr])
            )
    args, returncode, stdout, stderr = json.loads(record.read_text())
    return subprocess.CompletedProcess(args, returncode, stdout, stderr), out


def _synthesize(out: Path) -> subprocess.CompletedProcess[str]:
    from tests.support.synth import run_cdk  # noqa: PLC0415

    return run_cdk("synth", "--quiet", "--output", str(out))


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
