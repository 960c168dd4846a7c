"""The real, pinned CDK CLI synthesizes the app offline, and cfn-lint accepts the template."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"

pytestmark = pytest.mark.synth


@pytest.fixture(scope="module")
def synth(cdk_out):
    return cdk_out


def test_pinned_cli_synthesizes_offline_without_credentials(synth):
    result, out = synth
    assert result.returncode == 0, result.stderr
    template = json.loads((out / "ChatStack.template.json").read_text())
    assert "AWS::ApiGatewayV2::Api" in json.dumps(template)


def test_function_asset_is_lambda_src_as_is_without_a_vendored_sdk(synth):
    _, out = synth
    template = json.loads((out / "ChatStack.template.json").read_text())
    (function,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"] == "handler.lambda_handler"
    ]
    assert function["Metadata"]["aws:asset:is-bundled"] is False
    asset = out / function["Metadata"]["aws:asset:path"]
    shipped = {p.relative_to(asset).as_posix() for p in asset.rglob("*.py")}
    expected = {
        p.relative_to(ROOT / "lambda_src").as_posix() for p in (ROOT / "lambda_src").rglob("*.py")
    }
    assert shipped == expected
    assert not any(part in ("boto3", "botocore") for p in shipped for part in p.split("/"))


def test_synth_prints_no_node_warning(synth):
    result, _ = synth
    output = (result.stdout + result.stderr).lower()
    assert "end-of-life" not in output
    assert "not supported" not in output
    assert "warning" not in output, result.stderr


def test_pinned_node_is_supported():
    version = subprocess.run(
        [str(BIN / "node"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert int(version.strip().lstrip("v").split(".")[0]) >= 22


def test_synthesized_template_has_no_cfn_lint_errors_or_warnings(synth):
    _, out = synth
    cfn_lint = shutil.which("cfn-lint", path=str(ROOT / ".venv" / "bin")) or "cfn-lint"
    # W3005 (a DependsOn also implied by GetAtt) is how CDK always renders a function's role.
    result = subprocess.run(
        [cfn_lint, "--ignore-checks", "W3005", "--", str(out / "ChatStack.template.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
