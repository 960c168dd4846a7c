"""The same commit synthesizes the same cloud assembly, byte for byte, wherever it is
checked out: templates, manifests, asset hashes and staged asset contents, with no
timestamps and no machine paths in them.

The pinned CLI synthesizes two copies of the project, at two different paths, into two
different output directories. The one file allowed to differ is the CLI's
performance-counters.json (its own timings of the run; not part of the assembly, which
manifest.json lists).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.synth import run_cdk

ROOT = Path(__file__).resolve().parents[2]
# The CLI's timings of its own run, rewritten on every synth; manifest.json never names it.
CLI_DIAGNOSTICS = {"performance-counters.json"}
# Not part of the project's sources: environments, caches and generated output.
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "cdk.out",
    "build",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "test-results",
    ".sandbox",
)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

pytestmark = pytest.mark.synth


def synthesize(project: Path, out: Path) -> None:
    """The pinned CLI's `cdk synth` of `project`, offline and without credentials."""
    result = run_cdk("synth", "--quiet", "--output", str(out), cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def files(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in CLI_DIAGNOSTICS
    }


@pytest.fixture(scope="module")
def two_synths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """One snapshot of the sources (so edits made meanwhile cannot differ between the two),
    copied to a second, differently named path; each synthesized into its own directory."""
    first = tmp_path_factory.mktemp("checkout") / "websocket-chat"
    shutil.copytree(ROOT, first, ignore=NOT_SOURCES)
    second = tmp_path_factory.mktemp("elsewhere") / "deeper" / "chat-copy"
    shutil.copytree(first, second)
    out_first = tmp_path_factory.mktemp("synth-one")
    out_second = tmp_path_factory.mktemp("synth-two")
    synthesize(first, out_first)
    synthesize(second, out_second)
    return out_first, out_second, [first, second, out_first, out_second]


def test_two_synths_are_byte_identical(two_synths):
    one, two, _ = two_synths
    first, second = files(one), files(two)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    # Templates, asset manifest and staged assets are all there to compare.
    assert "manifest.json" in first and "ChatStack.template.json" in first
    assert any(name.endswith(".nested.template.json") for name in first)
    assert any(name.startswith("asset.") for name in first)


def test_asset_hashes_are_the_same_and_name_their_staged_directories(two_synths):
    one, two, _ = two_synths
    assets_one = sorted(p.name for p in one.iterdir() if p.name.startswith("asset."))
    assets_two = sorted(p.name for p in two.iterdir() if p.name.startswith("asset."))
    assert assets_one == assets_two
    manifest = (one / "ChatStack.assets.json").read_text()
    for asset in assets_one:
        assert asset.removeprefix("asset.").removesuffix(".zip") in manifest, asset


def test_the_cli_diagnostics_are_not_part_of_the_assembly(two_synths):
    one, _, _ = two_synths
    for name in CLI_DIAGNOSTICS:
        assert name not in (one / "manifest.json").read_text()


def test_no_machine_path_or_timestamp_in_templates_or_manifests(two_synths):
    one, two, places = two_synths
    forbidden = {str(p) for p in places} | {
        str(ROOT),
        str(Path.home()),
        tempfile.gettempdir(),
        "/tmp/",
    }
    for out in (one, two):
        for path in sorted(out.iterdir()):
            # The assembly's own files (assets are copies of sources, compared above).
            if path.suffix != ".json" or path.name in CLI_DIAGNOSTICS:
                continue
            text = path.read_text()
            found = [f for f in forbidden if f in text]
            assert found == [], f"{path.name} names {found}"
            assert not TIMESTAMP.search(text), f"{path.name}: {TIMESTAMP.search(text)}"
