"""The figures and counts the docs quote, checked against what they count.

Each test reads a number from its source (the synthesized template, tools/conformance.py,
infra/config.py, docs/sandbox.md's own list, docs/performance.md's measured tables) and
every place in README.md and docs/ that quotes it. Cheap by design: one in-process synth,
shared with the other infra tests, and regular expressions over the Markdown.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from chat.sharding import POSTS_PER_SECOND_PER_INVOCATION
from infra.config import DEFAULTS
from tests.support.stack import chat_template
from tools.conformance import CHECKS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
# CloudWatch's always-free tier, per account: 10 standard-resolution alarm metrics, and
# $0.10 per alarm metric a month beyond them (https://aws.amazon.com/cloudwatch/pricing/).
FREE_ALARM_METRICS = 10
ALARM_METRIC_MONTH = Decimal("0.10")
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
WORDS += ["eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"]
WORDS += ["eighteen", "nineteen", "twenty"]
NUMBER_WORDS = {word: n for n, word in enumerate(WORDS)}
MINUS = "\u2212"  # the docs' minus sign


def text(path: Path) -> str:
    """The page with its line breaks folded into spaces, so a phrase may wrap."""
    return re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))


def number(token: str) -> int:
    return NUMBER_WORDS[token.lower()] if token.isalpha() else int(token.replace(",", ""))


def quotes(pattern: str, pages: list[Path] = PAGES) -> list[tuple[str, int]]:
    """(page, number) for each place `pattern` (its first group the number) occurs."""
    found = []
    for page in pages:
        for match in re.finditer(pattern, text(page), flags=re.IGNORECASE):
            found.append((page.relative_to(ROOT).as_posix(), number(match.group(1))))
    return found


NUMBER = r"\b(\d[\d,]*|" + "|".join(NUMBER_WORDS) + r")"


# --- the alarms and what they cost at rest ---------------------------------------------------


def alarm_counts() -> tuple[int, int]:
    """(alarms, alarm metrics) in the default stack: a metric-math alarm bills each metric."""
    alarms = chat_template().find_resources("AWS::CloudWatch::Alarm")
    metrics = 0
    for alarm in alarms.values():
        math = alarm["Properties"].get("Metrics")
        metrics += sum("MetricStat" in m for m in math) if math else 1
    return len(alarms), metrics


def test_every_quoted_number_of_alarms_is_the_templates() -> None:
    # GIVEN the alarms and alarm metrics the synthesized stack declares
    alarms, metrics = alarm_counts()
    # WHEN the docs say how many alarms and alarm metrics a stage has
    said_alarms = quotes(NUMBER + r" alarms\b")
    said_metrics = quotes(r"(?<!free )(?<!always-free )" + NUMBER + r" alarm metrics\b")
    # THEN they are quoted, and every quote is the template's count
    assert said_alarms and said_metrics, "the docs no longer say how many alarms a stage has"
    assert [q for q in said_alarms if q[1] != alarms] == [], f"the stack has {alarms} alarms"
    assert [q for q in said_metrics if q[1] != metrics] == [], f"it has {metrics} alarm metrics"


def test_the_alarms_monthly_cost_at_rest_is_the_same_everywhere_and_adds_up() -> None:
    # GIVEN what one and two stages' alarm metrics cost beyond the account's free ones
    _, metrics = alarm_counts()
    one = max(0, metrics - FREE_ALARM_METRICS) * ALARM_METRIC_MONTH
    two = max(0, 2 * metrics - FREE_ALARM_METRICS) * ALARM_METRIC_MONTH
    pattern = r"\$(\d+\.\d\d) a month for one stage, \$(\d+\.\d\d) for two"
    # WHEN README, aws-facts.md and operations.md state it THEN they agree with the sum
    for page in (README, DOCS / "aws-facts.md", DOCS / "operations.md"):
        said = re.findall(pattern, text(page))
        assert said, f"{page.name} does not state the alarms' cost at rest"
        assert {(Decimal(a), Decimal(b)) for a, b in said} == {(one, two)}, page.name
    # AND deploy.md's table shows the same arithmetic
    deploy = text(DOCS / "deploy.md")
    expected = (
        f"one stage ${one:.2f} a month for alarms "
        f"({metrics} {MINUS} {FREE_ALARM_METRICS} metrics), "
        f"two stages ${two:.2f} ({2 * metrics} {MINUS} {FREE_ALARM_METRICS})"
    )
    assert expected in deploy


def test_every_page_on_costs_at_rest_names_the_alarms_dashboard_and_kms_key() -> None:
    # GIVEN the pages that say what a stage costs while nobody chats
    for page in (README, DOCS / "aws-facts.md", DOCS / "deploy.md", DOCS / "operations.md"):
        body = text(page)
        # THEN each names the three standing charges and their prices
        for phrase in ("dashboard", "KMS key", "$3.00", "$1.00", "$0.10"):
            assert phrase in body, f"{page.name} leaves out {phrase!r}"
    # AND nobody says that only logs and point-in-time recovery cost money at rest
    for page in PAGES:
        assert "costs money while idle except" not in text(page), page.name
        assert "Nothing else in the stack costs money" not in text(page), page.name


# --- the conformance list and the conformance checks -----------------------------------------


def conformance_items() -> list[int]:
    """The numbers of docs/sandbox.md's conformance list, in order."""
    page = (DOCS / "sandbox.md").read_text(encoding="utf-8")
    section = page.split("\n## Conformance list\n", 1)[1].split("\n### The other sandbox tests", 1)[
        0
    ]
    return [int(n) for n in re.findall(r"^(\d+)\. \*\*", section, flags=re.MULTILINE)]


def test_the_conformance_list_is_numbered_without_gaps_and_its_size_is_quoted() -> None:
    # GIVEN the conformance list
    items = conformance_items()
    # THEN it runs 1, 2, ... without a gap or a repeat
    assert items == list(range(1, len(items) + 1))
    # AND each section heading names its first item
    page = (DOCS / "sandbox.md").read_text(encoding="utf-8")
    for first, body in re.findall(r"\(items (\d+) and on\)\n+(.*?)\n### ", page, flags=re.DOTALL):
        assert re.search(rf"^{first}\. \*\*", body, flags=re.MULTILINE), f"items {first} and on"
    # AND every count of behaviours the docs quote is the list's length
    said = quotes(NUMBER + r" behaviours\b")
    assert said, "README no longer says how many behaviours the list has"
    assert [q for q in said if q[1] != len(items)] == [], f"the list has {len(items)} items"


def test_the_number_of_conformance_checks_quoted_is_bin_conformances() -> None:
    # GIVEN bin/conformance's checks
    names = {check.name for check in CHECKS}
    # THEN the count the README quotes is theirs
    said = quotes(NUMBER + r" checks\b")
    assert said, "README no longer says how many checks bin/conformance runs"
    assert [q for q in said if q[1] != len(names)] == [], f"bin/conformance has {len(names)}"
    # AND every check docs/sandbox.md names exists
    named = set(
        re.findall(
            r"`((?:handshake|sign-in|close|chat|connections)\.[a-z0-9-]+)`",
            (DOCS / "sandbox.md").read_text(encoding="utf-8"),
        )
    )
    assert named and named <= names, named - names


# --- settings ----------------------------------------------------------------------------------


def test_the_number_of_context_keys_quoted_is_the_defaults() -> None:
    # GIVEN every context key infra/config.py knows
    keys = len(DEFAULTS)
    # THEN every count of them in the docs is that number
    said = quotes(NUMBER + r" (?:context keys|settings)\b")
    assert said, "the docs no longer say how many context keys there are"
    assert [q for q in said if q[1] != keys] == [], f"infra/config.py has {keys} keys"


# --- measured figures --------------------------------------------------------------------------


def test_api_gateways_share_of_the_cost_is_the_one_performance_md_measured() -> None:
    # GIVEN the shares the benchmark report computed
    measured = re.search(
        r"API Gateway's share of the total: (\d+)% at 10, (\d+)% at 100, (\d+)% at 1,000, "
        r"(\d+)% at 10,000",
        text(DOCS / "performance.md"),
    )
    assert measured is not None
    # THEN README and aws-facts.md quote exactly those
    pattern = r"(\d+) % at N = 10, (\d+) % at 100, (\d+) % at 1,000 and (\d+) % at 10,000"
    for page in (README, DOCS / "aws-facts.md"):
        said = re.findall(pattern, text(page))
        assert said == [measured.groups()], page.name


def test_one_invocations_posting_rate_is_the_measured_one_rounded_down() -> None:
    # GIVEN the posts a second one invocation reached in performance.md's big broadcast
    big_room = text(DOCS / "performance.md")
    measured = re.search(r"engine with k = 192: [^,]+, ([\d,]+) \([^)]*\) posts/s", big_room)
    assert measured is not None
    rate = int(measured.group(1).replace(",", ""))
    # THEN the clock's figure is below it
    assert rate >= POSTS_PER_SECOND_PER_INVOCATION
    # AND sharding.py and performance.md's own summary quote that measurement
    sharding = text(ROOT / "lambda_src" / "chat" / "sharding.py")
    assert f"docs/performance.md measured {rate:,}" in sharding
    assert f"posts about {rate:,} frames a second" in big_room


# --- links -------------------------------------------------------------------------------------


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings (lower case, punctuation dropped)."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6} (.*)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_to_a_section_finds_its_heading(page: Path) -> None:
    # GIVEN the page's links into this repository's Markdown, with a #section
    links = re.findall(r"\]\(([^)\s]*?\.md|)#([^)\s]+)\)", page.read_text(encoding="utf-8"))
    # THEN each names a heading of the page it points at
    missing = [
        f"{target}#{section}"
        for target, section in links
        if section not in anchors((page.parent / target) if target else page)
    ]
    assert missing == []
