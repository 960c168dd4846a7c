"""bin/diff-guard: destructive changes in `cdk diff` output fail the pull request's check.

The samples in fixtures/cdk-diff/ were printed by the pinned CLI (see their README); the last
test runs the CLI itself, so a change in its output format cannot go unnoticed.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Synth
from tests.support.synth import run_cdk
from tools import diff_guard
from tools.diff_guard import (
    ALLOW_LABEL,
    EXIT_DESTRUCTIVE,
    EXIT_INCOMPLETE,
    EXIT_PASS,
    EXIT_UNREADABLE,
    EXIT_USAGE,
    MAX_DIFF_CHARS,
    Change,
    main,
    markdown,
    parse,
    verdict,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = Path(__file__).parent / "fixtures" / "cdk-diff"


def sample(name: str) -> str:
    return (SAMPLES / f"{name}.txt").read_text()


def found(name: str) -> list[tuple[str, str, str, str]]:
    return [(c.stack, c.resource_type, c.resource, c.impact) for c in parse(sample(name)).changes]


@pytest.mark.parametrize("name", ["same", "update"])
def test_no_destructive_change_passes(name):
    report = parse(sample(name))
    assert report.stacks == ["ChatStack"]
    assert report.changes == []
    assert verdict(report, allowed=False) == 0


def test_counts_the_stacks_with_differences():
    assert parse(sample("same")).stacks_with_differences == 0
    assert parse(sample("update")).stacks_with_differences == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("destroy", [("ChatStack", "AWS::SQS::Queue", "LegacyQueue1234ABCD", "destroy")]),
        ("orphan", [("ChatStack", "AWS::S3::Bucket", "LegacyBucket5678EFAB", "orphan")]),
        (
            "replace",
            [
                (
                    "ChatStack",
                    "AWS::DynamoDB::GlobalTable",
                    "Connections/Table ConnectionsTable916FDB22",
                    "replace",
                )
            ],
        ),
    ],
)
def test_a_removal_or_replacement_fails(name, expected):
    report = parse(sample(name))
    assert found(name) == expected
    assert verdict(report, allowed=False) == 1


def test_the_replacing_property_is_named():
    (change,) = parse(sample("replace")).changes
    assert change.properties == ("TableName",)
    assert change.description == (
        "AWS::DynamoDB::GlobalTable Connections/Table ConnectionsTable916FDB22 "
        "will be replaced (TableName)"
    )


def test_colours_make_no_difference():
    assert parse(sample("replace-color")).changes == parse(sample("replace")).changes


def test_only_resources_count_not_iam_tables_outputs_or_json_lines():
    # mixed: an IAM statement change, an updated policy whose JSON diff has "[+]" lines, a
    # removed output, plus three destructive changes, "may be replaced" among them.
    assert found("mixed") == [
        ("ChatStack", "AWS::SNS::Topic", "LegacyTopic", "destroy"),
        (
            "ChatStack",
            "AWS::ApiGatewayV2::Stage",
            "WebSocket/Stage WebSocketStageE8999091",
            "replace",
        ),
        ("ChatStack", "AWS::EC2::Instance", "Box", "may be replaced"),
    ]


def test_each_change_is_attributed_to_its_stack():
    assert found("two-stacks") == [
        ("ChatHosting-prod", "AWS::S3::Bucket", "Site/Bucket SiteBucket397A1860", "orphan"),
        ("ChatHosting-prod", "AWS::Logs::LogGroup", "Site/Logs SiteLogsB0E2F3A1", "replace"),
    ]
    assert parse(sample("two-stacks")).stacks == ["Chat-prod", "ChatHosting-prod"]


def test_the_label_lets_destructive_changes_through_but_still_lists_them():
    report = parse(sample("mixed"))
    assert verdict(report, allowed=True) == 0
    comment = markdown(report, sample("mixed"), allowed=True, title="t")
    assert f"Allowed by the `{ALLOW_LABEL}` label" in comment
    assert "`LegacyTopic` | will be deleted |" in comment


@pytest.mark.parametrize("name", ["error", "cut-short"])
def test_a_failed_or_cut_short_diff_fails_even_with_the_label(name):
    report = parse(sample(name))
    assert not report.complete
    assert verdict(report, allowed=True) == 2
    assert "did not complete" in markdown(report, sample(name), allowed=True, title="t")


def test_a_resource_line_without_an_impact_word_still_fails_on_requires_replacement():
    text = (
        "Stack S\nResources\n[~] AWS::IAM::Role R RoleABC\n"
        " └─ [~] RoleName (requires replacement)\n\n✨  Number of stacks with differences: 1\n"
    )
    assert parse(text).changes == [
        Change("S", "AWS::IAM::Role", "R RoleABC", "replace", ("RoleName",))
    ]


def test_the_comment_blocks_and_says_how_to_unblock():
    comment = markdown(
        parse(sample("mixed")), sample("mixed"), allowed=False, title="cdk diff against prod"
    )
    assert comment.startswith("### cdk diff against prod\n")
    assert f"**Blocked**: add the `{ALLOW_LABEL}` label" in comment
    assert "| `ChatStack` | `AWS::ApiGatewayV2::Stage` `WebSocket/Stage " in comment
    assert "will be replaced (StageName) |" in comment
    assert "<details><summary>cdk diff (" in comment
    assert "[-] AWS::SNS::Topic LegacyTopic destroy" in comment  # the whole diff, folded


def test_the_comment_for_a_harmless_diff():
    comment = markdown(parse(sample("update")), sample("update"), allowed=False, title="t")
    assert "No destructive changes (1 stack(s) with differences)." in comment
    same = markdown(parse(sample("same")), sample("same"), allowed=False, title="t")
    assert "No differences." in same


def test_the_comment_stays_under_githubs_limit_and_keeps_its_fence():
    huge = sample("update").replace("MemorySize", "MemorySize ```" + "x" * 200_000)
    comment = markdown(parse(huge), huge, allowed=False, title="t", footer="f")
    assert len(comment) < 65_536
    assert MAX_DIFF_CHARS < 65_536
    assert "truncated" in comment
    assert "\n````text\n" in comment  # a longer fence than any run of backticks inside
    assert comment.rstrip().endswith("f")


def test_the_command_line(tmp_path, capsys):
    comment = tmp_path / "comment.md"
    code = main([str(SAMPLES / "replace.txt"), "--markdown", str(comment), "--title", "T"])
    assert code == 1
    out = capsys.readouterr().out
    assert "destructive: ChatStack: AWS::DynamoDB::GlobalTable" in out
    assert "failing the check" in out
    assert comment.read_text().startswith("### T\n")
    assert main([str(SAMPLES / "replace.txt"), "--allow"]) == 0
    assert main([str(SAMPLES / "error.txt")]) == 2


def test_bin_diff_guard_reads_standard_input():
    result = subprocess.run(
        [str(ROOT / "bin" / "diff-guard"), "-"],
        input=sample("update"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no destructive changes in 1 stack(s)" in result.stdout


@pytest.mark.synth
def test_agrees_with_the_pinned_clis_own_destructive_check(cdk_out: tuple[Synth, Path], tmp_path):
    result, out = cdk_out
    assert result.returncode == 0, result.stderr
    new = json.loads((out / "ChatStack.template.json").read_text())
    old = copy.deepcopy(new)
    resources = old["Resources"]
    resources["OldQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    resources["OldBucket"] = {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"}
    resources["WebSocketStageE8999091"]["Properties"]["StageName"] = "old"
    resources["ChatFunctionD42E891B"]["Properties"]["MemorySize"] = 128
    (tmp_path / "old.json").write_text(json.dumps(old))

    def cdk_diff(fail_on: str) -> subprocess.CompletedProcess[str]:
        return run_cdk(
            *("diff", "ChatStack", "--app", str(out), "--template", str(tmp_path / "old.json")),
            *("--no-color", "--fail-on", fail_on),
        )

    ours = cdk_diff("never")
    assert ours.returncode == 0, ours.stderr
    report = parse(ours.stdout + ours.stderr)
    assert report.complete
    assert sorted((c.resource.split()[-1], c.impact) for c in report.changes) == [
        ("OldBucket", "orphan"),
        ("OldQueue", "destroy"),
        ("WebSocketStageE8999091", "replace"),
    ]
    theirs = cdk_diff("destructive")
    assert theirs.returncode == 1
    # The CLI's list: "  ChatStack: AWS::S3::Bucket OldBucket will be orphaned", ...
    listed = re.findall(
        r": AWS::\S+ (?:\S+ )?(\S+) (?:will|may) be ", theirs.stdout + theirs.stderr
    )
    assert sorted(listed) == ["OldBucket", "OldQueue", "WebSocketStageE8999091"]


def test_a_missing_diff_file_is_a_clear_error_with_its_own_exit_status(tmp_path):
    missing = tmp_path / "cdk-diff.txt"
    result = subprocess.run(
        [str(ROOT / "bin" / "diff-guard"), str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_UNREADABLE
    assert (
        result.stderr == f"diff-guard: cannot read the diff {missing}: No such file or directory\n"
    )
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_directory_or_an_unwritable_comment_is_the_same_clear_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == EXIT_UNREADABLE
    assert "diff-guard: cannot read the diff" in capsys.readouterr().err
    comment = tmp_path / "no-such-dir" / "comment.md"
    assert main([str(SAMPLES / "update.txt"), "--markdown", str(comment)]) == EXIT_UNREADABLE
    assert f"diff-guard: cannot write the comment {comment}:" in capsys.readouterr().err


def test_bad_arguments_exit_apart_from_every_verdict(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(SAMPLES / "update.txt"), "--no-such-option"])
    assert exit_.value.code == EXIT_USAGE
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_every_exit_status_is_distinct_and_documented():
    codes = {
        "EXIT_PASS": EXIT_PASS,
        "EXIT_DESTRUCTIVE": EXIT_DESTRUCTIVE,
        "EXIT_INCOMPLETE": EXIT_INCOMPLETE,
        "EXIT_UNREADABLE": EXIT_UNREADABLE,
        "EXIT_USAGE": EXIT_USAGE,
    }
    assert sorted(codes.values()) == [0, 1, 2, 3, 4]
    doc = diff_guard.__doc__ or ""
    for name, code in codes.items():
        assert f"- {code} `{name}`" in doc
    wrapper = (ROOT / "bin" / "diff-guard").read_text()
    assert "3 the diff cannot be read" in wrapper
    assert "4 bad arguments" in wrapper
