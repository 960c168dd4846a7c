"""Read `cdk diff` output, list destructive changes, write the pull-request comment, gate the check.

    cdk diff --all --method template --fail-on never --no-color 2>&1 | tee cdk-diff.txt
    bin/diff-guard cdk-diff.txt --markdown comment.md [--allow] [--title "…"] [--footer "…"]

Destructive means a resource is replaced (`replace`, and `may be replaced`, which a
template diff cannot rule out), deleted (`destroy`), or removed from the stack but kept
(`orphan`): the same four impacts the CLI's `--fail-on destructive` uses. The CLI prints
one line per changed resource, `[~] AWS::Type construct/path LogicalId <impact>`; property
lines below it (`└─ [~] Prop (requires replacement)`) say why.

Exit status (`EXIT_*` below; every one but 0 fails the check):

- 0 `EXIT_PASS`: nothing destructive, or `--allow` was given (the pull request carries the
  `allow-destructive` label);
- 1 `EXIT_DESTRUCTIVE`: a destructive change, not allowed;
- 2 `EXIT_INCOMPLETE`: the input is not a complete `cdk diff` output (it failed, or was cut
  short): a guard that cannot read the diff must not pass it;
- 3 `EXIT_UNREADABLE`: the diff file could not be read (missing, a directory, no
  permission) or the comment could not be written: one line on standard error, no
  traceback;
- 4 `EXIT_USAGE`: bad arguments (argparse's usual 2 would read as an incomplete diff).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

ALLOW_LABEL = "allow-destructive"
EXIT_PASS = 0
EXIT_DESTRUCTIVE = 1
EXIT_INCOMPLETE = 2
EXIT_UNREADABLE = 3
EXIT_USAGE = 4
# The impact words the CLI prints after a resource (aws-cdk's cloudformation-diff formatter).
DESTRUCTIVE_IMPACTS = {
    "replace": "will be replaced",
    "may be replaced": "may be replaced",
    "destroy": "will be deleted",
    "orphan": "will be orphaned (removed from the stack, kept in the account)",
}
# GitHub refuses comments over 65,536 characters; leave room for the summary around the diff.
MAX_DIFF_CHARS = 50_000

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STACK = re.compile(r"^Stack (?P<stack>\S+)")
_SUMMARY = re.compile(r"Number of stacks with differences: (?P<count>\d+)")
# "[~] AWS::Lambda::Function Chat/Function ChatFunctionD42E891B replace"; types are
# Vendor::Service::Resource (Custom::Name for custom resources).
_RESOURCE = re.compile(
    r"^\[(?P<op>[^\]]+)\] (?P<type>[A-Za-z0-9]+::[A-Za-z0-9:]+) (?P<rest>.+?)\s*$"
)
_IMPACT = re.compile(
    r"\s(?P<impact>" + "|".join(map(re.escape, DESTRUCTIVE_IMPACTS)) + r")(?:\s+\(OR .*\))?$"
)
_PROPERTY_REPLACEMENT = re.compile(
    r"^\s+[└├]─ \[.\] (?P<prop>.+?) \((?P<why>requires replacement|may cause replacement)\)"
)


@dataclass(frozen=True)
class Change:
    """One destructive change: which resource, and what happens to it."""

    stack: str
    resource_type: str
    resource: str  # "construct/path LogicalId", as the CLI prints it
    impact: str
    properties: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        because = f" ({', '.join(self.properties)})" if self.properties else ""
        return f"{self.resource_type} {self.resource} {DESTRUCTIVE_IMPACTS[self.impact]}{because}"


@dataclass
class DiffReport:
    """What one `cdk diff` run said."""

    stacks: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    stacks_with_differences: int | None = None  # None: no summary line, the diff is incomplete

    @property
    def complete(self) -> bool:
        return self.stacks_with_differences is not None


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


@dataclass
class _Resource:
    """A resource line being read, with the property lines under it."""

    stack: str
    resource_type: str
    resource: str
    impact: str | None
    properties: list[str] = field(default_factory=list)


def parse(text: str) -> DiffReport:
    """The stacks, the destructive changes and the summary count in `cdk diff` output."""
    report = DiffReport()
    stack = ""
    resources: list[_Resource] = []
    current: _Resource | None = None  # the resource whose property lines follow
    for line in strip_ansi(text).splitlines():
        if match := _STACK.match(line):
            stack = match["stack"]
            report.stacks.append(stack)
            current = None
        elif match := _SUMMARY.search(line):
            report.stacks_with_differences = int(match["count"])
        elif match := _RESOURCE.match(line):
            rest = match["rest"]
            impact = _IMPACT.search(rest)
            current = _Resource(
                stack=stack,
                resource_type=match["type"],
                resource=rest[: impact.start()] if impact else rest,
                impact=impact["impact"] if impact else None,
            )
            resources.append(current)
        elif current is not None and (match := _PROPERTY_REPLACEMENT.match(line)):
            current.properties.append(match["prop"])
            if current.impact is None:  # the CLI always prints the impact; fail closed anyway
                replaces = match["why"] == "requires replacement"
                current.impact = "replace" if replaces else "may be replaced"
        elif not line.startswith((" ", "\t")):
            current = None  # a new section (Outputs, IAM Statement Changes, ...)
    report.changes = [
        Change(r.stack, r.resource_type, r.resource, r.impact, tuple(r.properties))
        for r in resources
        if r.impact is not None
    ]
    return report


def verdict(report: DiffReport, *, allowed: bool) -> int:
    """The exit status: pass, destructive and not allowed, or incomplete diff."""
    if not report.complete:
        return EXIT_INCOMPLETE
    if report.changes and not allowed:
        return EXIT_DESTRUCTIVE
    return EXIT_PASS


def markdown(
    report: DiffReport, diff_text: str, *, allowed: bool, title: str, footer: str = ""
) -> str:
    """The pull-request comment: a verdict, the destructive changes, the whole diff folded."""
    lines = [f"### {title}", ""]
    status = verdict(report, allowed=allowed)
    if status == EXIT_INCOMPLETE:
        lines.append(
            "**The diff did not complete** (no `Number of stacks with differences` line): "
            "see the job log. The check fails until it does."
        )
    elif not report.changes:
        count = report.stacks_with_differences
        lines.append(
            f"No destructive changes ({count} stack(s) with differences)."
            if count
            else "No differences."
        )
    else:
        mark = "Allowed by the" if allowed else "**Blocked**: add the"
        after = "label." if allowed else "label to accept them, then re-run the check."
        lines += [
            f"**{len(report.changes)} destructive change(s).** {mark} `{ALLOW_LABEL}` {after}",
            "",
            "| stack | resource | what happens |",
            "|---|---|---|",
        ]
        for change in report.changes:
            why = f" ({', '.join(change.properties)})" if change.properties else ""
            lines.append(
                f"| `{change.stack}` | `{change.resource_type}` `{change.resource}` "
                f"| {DESTRUCTIVE_IMPACTS[change.impact]}{why} |"
            )
    body = strip_ansi(diff_text).strip("\n")
    truncated = len(body) > MAX_DIFF_CHARS
    if truncated:
        body = body[:MAX_DIFF_CHARS]
    fence = "```"
    while fence in body:
        fence += "`"
    lines += [
        "",
        f"<details><summary>cdk diff ({len(body.splitlines())} lines"
        f"{', truncated: the full text is in the job log' if truncated else ''})</summary>",
        "",
        f"{fence}text",
        body,
        fence,
        "",
        "</details>",
    ]
    if footer:
        lines += ["", footer]
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    """argparse, exiting with EXIT_USAGE: its own 2 is this tool's "incomplete diff"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text(errors="replace")


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(
        prog="bin/diff-guard",
        description="Fail on destructive changes in `cdk diff` output (see tools/diff_guard.py).",
    )
    parser.add_argument("diff", help="the saved `cdk diff` output, or - for standard input")
    parser.add_argument(
        "--allow",
        action="store_true",
        help=f"report destructive changes but pass (the PR has the {ALLOW_LABEL} label)",
    )
    parser.add_argument("--markdown", type=Path, help="write the pull-request comment here")
    parser.add_argument("--title", default="`cdk diff`", help="the comment's heading")
    parser.add_argument("--footer", default="", help="a last line for the comment")
    args = parser.parse_args(argv)
    try:
        text = _read(args.diff)
    except OSError as error:
        print(f"diff-guard: cannot read the diff {args.diff}: {_reason(error)}", file=sys.stderr)
        return EXIT_UNREADABLE
    report = parse(text)
    status = verdict(report, allowed=args.allow)
    if args.markdown:
        comment = markdown(report, text, allowed=args.allow, title=args.title, footer=args.footer)
        try:
            args.markdown.write_text(comment)
        except OSError as error:
            print(
                f"diff-guard: cannot write the comment {args.markdown}: {_reason(error)}",
                file=sys.stderr,
            )
            return EXIT_UNREADABLE
    for change in report.changes:
        print(f"destructive: {change.stack}: {change.description}")
    if status == EXIT_INCOMPLETE:
        print(
            "diff-guard: not a complete `cdk diff` output (no summary line): failing",
            file=sys.stderr,
        )
    elif report.changes:
        outcome = f"allowed by the {ALLOW_LABEL} label" if args.allow else "failing the check"
        print(f"diff-guard: {len(report.changes)} destructive change(s), {outcome}")
    else:
        print(f"diff-guard: no destructive changes in {len(report.stacks)} stack(s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
