"""The figures and counts the docs quote, checked against what they count.

Each test reads a number from its source (the synthesized template, tools/conformance.py,
infra/config.py, docs/sandbox.md's own list, docs/performance.md's measured tables,
docs/aws-facts.md's price list) and every place in README.md and docs/ that quotes it;
docs/costs.md, the home of every cost figure, must quote them. Cheap by design: two
in-process synths (the default stack, and with `alarmEmail`), shared with the other infra
tests, and regular expressions over the Markdown.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import handler
from bench.room_bench import UnitCounter
from chat.service import ChatService
from chat.sharding import POSTS_PER_SECOND_PER_INVOCATION
from chat.store import DynamoChatStore
from infra.config import DEFAULTS
from tests.support.aws import TABLE
from tests.support.fakes import RecordingNotifier
from tests.support.stack import alarm_email_template, chat_template
from tools.conformance import CHECKS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
COSTS = DOCS / "costs.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
# CloudWatch's always-free tier, per account: 10 standard-resolution alarm metrics and 3
# dashboards; beyond them $0.10 per alarm metric and $3.00 per dashboard a month
# (https://aws.amazon.com/cloudwatch/pricing/). A KMS key: $1.00 a month in its first year
# (https://aws.amazon.com/kms/pricing/). docs/aws-facts.md#prices is the record.
FREE_ALARM_METRICS = 10
ALARM_METRIC_MONTH = Decimal("0.10")
FREE_DASHBOARDS = 3
DASHBOARD_MONTH = Decimal("3.00")
KMS_KEY_MONTH = Decimal("1.00")
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
    # THEN they are quoted, costs.md among them, and every quote is the template's count
    assert "docs/costs.md" in {page for page, _ in said_alarms}, "costs.md counts no alarms"
    assert "docs/costs.md" in {page for page, _ in said_metrics}, "nor alarm metrics"
    assert [q for q in said_alarms if q[1] != alarms] == [], f"the stack has {alarms} alarms"
    assert [q for q in said_metrics if q[1] != metrics] == [], f"it has {metrics} alarm metrics"


def alarms_a_month(stages: int, *, free_tier: bool = True) -> Decimal:
    _, metrics = alarm_counts()
    free = FREE_ALARM_METRICS if free_tier else 0
    return max(0, stages * metrics - free) * ALARM_METRIC_MONTH


def test_the_alarms_monthly_cost_at_rest_is_the_same_everywhere_and_adds_up() -> None:
    # GIVEN what one and two stages' alarm metrics cost beyond the account's free ones
    _, metrics = alarm_counts()
    one, two = alarms_a_month(1), alarms_a_month(2)
    pattern = r"\$(\d+\.\d\d) a month for one stage,? (?:and )?\$(\d+\.\d\d) for two"
    # WHEN costs.md and any other page state it
    said = {page.name: re.findall(pattern, text(page)) for page in PAGES}
    # THEN costs.md does, and every page that does agrees with the sum
    assert said["costs.md"], "costs.md does not state the alarms' cost at rest"
    for name, figures in said.items():
        assert {(Decimal(a), Decimal(b)) for a, b in figures} <= {(one, two)}, name
    # AND costs.md's table shows the arithmetic
    expected = (
        f"({metrics} {MINUS} {FREE_ALARM_METRICS} metrics; "
        f"{2 * metrics} {MINUS} {FREE_ALARM_METRICS})"
    )
    assert expected in text(COSTS)
    assert f"${alarms_a_month(1, free_tier=False):.2f} a stage once other alarms" in text(COSTS)


def test_the_monthly_totals_at_rest_add_up_from_what_the_template_declares() -> None:
    # GIVEN the stack's dashboards, and the KMS keys it adds with alarmEmail
    dashboards = len(chat_template().find_resources("AWS::CloudWatch::Dashboard"))
    keys = len(alarm_email_template().find_resources("AWS::KMS::Key"))
    assert chat_template().find_resources("AWS::KMS::Key") == {}  # none without alarmEmail
    assert (dashboards, keys) == (1, 1)
    # WHEN one and two stages are priced, with the account's free tier unused or used up
    rows = {}
    for email in (False, True):
        for free_tier in (True, False):
            totals = []
            for stages in (1, 2):
                free = FREE_DASHBOARDS if free_tier else 0
                total = alarms_a_month(stages, free_tier=free_tier)
                total += max(0, stages * dashboards - free) * DASHBOARD_MONTH
                total += stages * keys * KMS_KEY_MONTH if email else 0
                totals.append(total)
            label = (
                f"{'with' if email else 'without'} `alarmEmail`, "
                f"free tier {'unused' if free_tier else 'used up'}"
            )
            rows[label] = f"| {label} | ${totals[0]:.2f} | ${totals[1]:.2f} |"
    # THEN costs.md's table of totals has each row, with those sums
    page = COSTS.read_text(encoding="utf-8")
    for label, row in rows.items():
        assert row in page, f"costs.md's total {label!r} should read {row}"
    # AND the row of each standing charge states its price and this stack's count
    body = text(COSTS)
    assert "| CloudWatch dashboard | $3.00 a month each, after the account's always-free 3" in body
    assert f"| {dashboards} dashboard (`<stack>-<stageName>`) |" in body
    assert "| KMS key | $1.00 a month per customer managed key" in body
    assert f"| {keys} key, only with `alarmEmail`" in body
    assert "| CloudWatch Logs storage | $0.03 per GB-month" in body


def test_every_page_that_spoke_of_costs_links_to_the_costs_page() -> None:
    # GIVEN the pages that used to carry their own copies of the cost figures
    for page in (README, *(DOCS / name for name in ("aws-facts.md", "deploy.md"))):
        # THEN each points to docs/costs.md
        assert "costs.md)" in text(page) or "costs.md#" in text(page), page.name
    for name in ("operations.md", "security.md"):
        assert "](costs.md" in text(DOCS / name), name
    # AND the figures at rest live on costs.md alone: nobody else prices the dashboard
    for page in PAGES:
        if page not in (COSTS, DOCS / "aws-facts.md"):
            assert "$3.00" not in text(page), f"{page.name} prices the dashboard again"
    # AND nobody says that only logs and point-in-time recovery cost money at rest
    for page in PAGES:
        assert "costs money while idle except" not in text(page), page.name
        assert "Nothing else in the stack costs money" not in text(page), page.name


def test_an_idle_clients_ping_and_reconnect_cost_the_units_costs_md_prices(db: Any) -> None:
    # GIVEN two members of the room connected from one address, on moto, the store's calls
    # counted in DynamoDB's units
    counter = UnitCounter(db)
    ttl = int(DEFAULTS["connectionTtlSeconds"])
    chat = ChatService(
        DynamoChatStore(counter, TABLE), RecordingNotifier(), connection_ttl_seconds=ttl
    )

    def join(cid: str, name: str) -> None:
        chat.connect(cid, source_ip="203.0.113.9")
        set_name = handler.ClientFrame.read(json.dumps({"action": "setName", "name": name}))
        handler.handle_message(chat, cid, "setName", set_name)

    join("AAAAAAAAAAA=", "Ada")
    join("BBBBBBBBBBB=", "Bo")
    # WHEN one of them sends a keep-alive ping
    counter.reset()
    ping = handler.ClientFrame.read(json.dumps({"action": "ping"}))
    handler.handle_message(chat, "AAAAAAAAAAA=", "$default", ping)
    ping_units = (counter.rru, counter.wru)
    # AND the other is cut off after its 2 hours and comes back under its name
    counter.reset()
    chat.disconnect("BBBBBBBBBBB=")
    join("CCCCCCCCCCC=", "Bo")
    reconnect_units = (counter.rru, counter.wru)
    # THEN costs.md prices the units they took
    body = text(COSTS)
    assert f"({ping_units[0]:g} RRU, {ping_units[1]:g} WRU: $" in body, ping_units
    assert f"{reconnect_units[0]:g} RRU (more in a big room" in body, reconnect_units
    assert f"and {reconnect_units[1]:g} WRU with the address's limits" in body, reconnect_units


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


def measured_costs() -> dict[str, tuple[str, str]]:
    """{N: (total per 1,000 public messages, API Gateway's share)} from performance.md."""
    page = text(DOCS / "performance.md")
    section = page.split("## Cost per 1,000 public messages", 1)[1].split(" ## ", 1)[0]
    totals = re.findall(r"\| ([\d,]+) \| [^|]+ \| [^|]+ \|(?: [^|]+ \|){3} (\$[\d.]+) \|", section)
    shares = re.search(
        r"API Gateway's share of the total: (\d+)% at 10, (\d+)% at 100, (\d+)% at 1,000, "
        r"(\d+)% at 10,000",
        section,
    )
    assert shares is not None and len(totals) == 4, "performance.md's cost table changed shape"
    assert [n for n, _ in totals] == ["10", "100", "1,000", "10,000"]
    return {n: (total, share) for (n, total), share in zip(totals, shares.groups(), strict=True)}


def test_api_gateways_share_of_the_cost_is_the_one_performance_md_measured() -> None:
    # GIVEN the cost and the shares the benchmark report computed at each room size
    measured = measured_costs()
    # THEN costs.md quotes each, in a row of its table, and says where they come from
    page = COSTS.read_text(encoding="utf-8")
    for n, (total, share) in measured.items():
        assert f"| {n} | {total} | {share} % |" in page, f"costs.md's row for N = {n}"
    assert "`make bench`" in page
    assert "(performance.md#cost-per-1000-public-messages)" in page
    # AND every other page that quotes the shares quotes exactly those
    pattern = r"(\d+) % at N = 10, (\d+) % at 100, (\d+) % at 1,000 and (\d+) % at 10,000"
    shares = tuple(share for _, share in measured.values())
    said = {page.name: re.findall(pattern, text(page)) for page in PAGES}
    assert said["README.md"], "README no longer summarises API Gateway's share"
    assert [name for name, found in said.items() if set(found) - {shares}] == []


def test_every_lambda_price_quoted_is_the_arm64_one_in_the_price_list() -> None:
    # GIVEN the GB-second price of Lambda on arm64, the functions' architecture
    prices = text(DOCS / "aws-facts.md").split("## Prices", 1)[1]
    listed = re.search(r"\| Lambda, arm64 \| \$(0\.0+\d+) per GB-second", prices)
    assert listed is not None
    # WHEN any page quotes a price per GB-second
    said = quotes(r"\$0\.0000(\d+) per GB-s(?:econd)?\b")
    # THEN it is that one (quotes() reads the digits after $0.0000 as a number)
    assert said, "no page quotes Lambda's price"
    assert [q for q in said if q[1] != int(listed.group(1)[6:])] == []


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
