"""docs/performance.md and its plots, from the results `python -m bench` measured.

Only the figures in the results are reported; what is derived (costs, the memory model,
the 10,000-member room's DynamoDB units) says how it was derived.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# docs/aws-facts.md, "Prices" (us-east-1, read 2026-11-26).
API_MESSAGE_USD = 1.00 / 1_000_000  # per 32 KB unit, sent or received
API_UNIT_BYTES = 32 * 1024
LAMBDA_GB_SECOND_USD = 0.0000133334  # arm64
LAMBDA_REQUEST_USD = 0.20 / 1_000_000
RRU_USD = 0.125 / 1_000_000
WRU_USD = 0.625 / 1_000_000
ONE_VCPU_MB = 1769
MEMORY_SIZES_MB = [256, 512, 1024, 1769]
COST_SIZES = [10, 100, 1000, 10000]
CPU_GOAL_MS = 0.25
RATE_GOAL = 5000
CPU_RATIO_GOAL = 3.0


# --- derived figures --------------------------------------------------------------------


def _candidate(results: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((c for c in results["fanout"]["candidates"] if c["key"] == key), None)


def _median(figure: dict[str, Any]) -> float:
    return float(figure["median"])


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Goals, costs and the memory model, from the measured figures."""
    fan = results["fanout"]
    k = results["chosen_k"]
    ours = _candidate(results, f"ours-k{k}")
    today = _candidate(results, f"boto3-k{results['today_k']}")
    derived: dict[str, Any] = {}
    if ours and today:
        cpu = _median(ours["cpu_ms_per_recipient"])
        rate = _median(ours["posts_per_second"])
        ratio = _median(today["cpu_ms_per_recipient"]) / cpu
        derived["goals"] = {
            "posts_per_second": {"value": rate, "goal": RATE_GOAL, "met": rate >= RATE_GOAL},
            "cpu_ms_per_recipient": {"value": cpu, "goal": CPU_GOAL_MS, "met": cpu <= CPU_GOAL_MS},
            "cpu_ratio_vs_boto3": {
                "value": ratio,
                "goal": CPU_RATIO_GOAL,
                "met": ratio >= CPU_RATIO_GOAL,
            },
            "n": ours["n"],
            "k": k,
        }
        # The same ratio against boto3's client and the engine on urllib3's pool at k.
        for key in (f"boto3-k{k}", "urllib3"):
            other = _candidate(results, key)
            if other:
                derived["goals"][f"cpu_ratio_vs_{key}"] = (
                    _median(other["cpu_ms_per_recipient"]) / cpu
                )
        # What TLS (without resumption) and TLS session resumption add to a warm post.
        http = _candidate(results, f"ours-k{k}-http")
        no_resume = _candidate(results, f"ours-k{k}-no-resume")
        if http and no_resume:
            derived["per_post_cpu_ms"] = {
                "tls": _difference(no_resume, http),
                "resumption": _difference(ours, no_resume),
            }
        derived["memory_model"] = memory_model(cpu / 1000, k, fan["rtt_seconds"])
    if fan.get("handshakes"):
        derived["resumption"] = resumption_verdict(fan["handshakes"])
    derived["cost"] = cost_table(results)
    return derived


def memory_model(cpu_seconds_per_post: float, k: int, rtt: float) -> dict[str, Any]:
    """Broadcast time at each memory size: the larger of the network floor and the CPU
    time, with the CPU in proportion to memory (1,769 MB = 1 vCPU; the engine's Python
    threads use at most one)."""
    rows = []
    for n in (100, 1000, 10000, 100000):
        row: dict[str, Any] = {"n": n}
        for mb in MEMORY_SIZES_MB:
            share = min(1.0, mb / ONE_VCPU_MB)
            seconds = max(-(-n // k) * rtt, n * cpu_seconds_per_post / share)
            row[str(mb)] = {
                "seconds": seconds,
                "usd": mb / 1024 * seconds * LAMBDA_GB_SECOND_USD,
            }
        rows.append(row)
    return {"cpu_seconds_per_post": cpu_seconds_per_post, "k": k, "rtt": rtt, "rows": rows}


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """a's CPU per recipient - b's (medians), and whether their min-max ranges overlap (then
    the difference is within the run's spread)."""
    fa, fb = a["cpu_ms_per_recipient"], b["cpu_ms_per_recipient"]
    overlap = fa["min"] <= fb["max"] and fb["min"] <= fa["max"]
    return {"ms": _median(fa) - _median(fb), "within_spread": overlap}


def resumption_verdict(handshakes: dict[str, Any]) -> dict[str, Any]:
    """Whether TLS session resumption pays, from bench/fanout_bench.cold_handshakes: the
    CPU it saves per connection opened after a first answer, against what it adds to each
    post of a warm engine (warm_on - warm_off), at each k."""
    rows = {}
    for k, h in handshakes.items():
        saved = _median(h["first_off"]["cpu_ms_per_connection"]) - _median(
            h["first_on"]["cpu_ms_per_connection"]
        )
        per_post = (_median(h["warm_on"]["cpu_ms"]) - _median(h["warm_off"]["cpu_ms"])) / int(k)
        rows[k] = {
            "saved_cpu_ms_per_connection": saved,
            "added_cpu_ms_per_warm_post": per_post,
            "wall_ms_off": _median(h["first_off"]["seconds"]) * 1000,
            "wall_ms_on": _median(h["first_on"]["seconds"]) * 1000,
            "resumed": _median(h["first_on"]["resumed"]),
            "connections": _median(h["first_on"]["connections"]),
        }
    # Pays when it saves CPU on new connections without costing warm posts (within noise:
    # a tenth of the saving per connection per post).
    pays = all(
        r["saved_cpu_ms_per_connection"] > 0
        and r["added_cpu_ms_per_warm_post"] <= 0.1 * r["saved_cpu_ms_per_connection"]
        for r in rows.values()
    )
    return {"by_k": rows, "pays": pays}


DYNAMODB_CALL_SECONDS = 0.010  # an assumption (moto's times are not DynamoDB's)


def cost_table(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Cost of 1,000 public messages at room size N, at 1,769 MB.

    API Gateway: 1 message in and N out (N - 1 others and the sender's own copy), each one
    32 KB unit. Lambda: the engine's broadcast time measured at N, plus an assumed
    DYNAMODB_CALL_SECONDS for each DynamoDB call sendPublic makes (counted in the room
    runs). DynamoDB: sendPublic's units (formulas); for a room larger than the largest
    built, the room read's units scaled by the member count.
    """
    rooms = results["rooms"]["sizes"]
    by_size = results["fanout"]["by_size"]["ours"]["points"]
    built = sorted(int(n) for n in rooms)
    if not built:
        return []
    largest = rooms[str(built[-1])]
    frame_bytes = 330  # a public message frame with a short text (bench/fanout_bench.py)
    rows = []
    for n in COST_SIZES:
        if str(n) not in by_size:
            continue
        if str(n) in rooms:
            action = rooms[str(n)]["actions"]["sendPublic"]
            rru, wru = _median(action["rru"]), _median(action["wru"])
            calls = len(action["calls"])
            how = "units measured at N"
        else:
            action = largest["actions"]["sendPublic"]
            read = largest["room_read"]["strong"]
            room_bytes = read["bytes"] / read["items"] * n
            pages = math.ceil(room_bytes / (1024 * 1024))  # a Query page holds 1 MB
            rru = _median(action["rru"]) - read["rru"] + math.ceil(room_bytes / 4096)
            wru = _median(action["wru"])
            calls = len(action["calls"]) - read["pages"] + pages
            how = f"room read scaled from {built[-1]:,} members"
        broadcast = _median(by_size[str(n)]["seconds"])
        seconds = broadcast + calls * DYNAMODB_CALL_SECONDS
        api = 1000 * (n + 1) * math.ceil(frame_bytes / API_UNIT_BYTES) * API_MESSAGE_USD
        lam = 1000 * (ONE_VCPU_MB / 1024 * seconds * LAMBDA_GB_SECOND_USD + LAMBDA_REQUEST_USD)
        ddb = 1000 * (rru * RRU_USD + wru * WRU_USD)
        rows.append(
            {
                "n": n,
                "broadcast_seconds": broadcast,
                "dynamodb_calls": calls,
                "seconds": seconds,
                "rru": rru,
                "wru": wru,
                "api_usd": api,
                "lambda_usd": lam,
                "dynamodb_usd": ddb,
                "total_usd": api + lam + ddb,
                "how": how,
            }
        )
    return rows


# --- formatting -------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _spread(figure: dict[str, Any], scale: float = 1.0, digits: int = 1) -> str:
    """median (min-max)."""
    f = f"{{:,.{digits}f}}"
    median = f.format(figure["median"] * scale)
    if figure.get("runs", 1) <= 1:
        return median
    return f"{median} ({f.format(figure['min'] * scale)}-{f.format(figure['max'] * scale)})"


def _usd(value: float) -> str:
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


# --- plots ------------------------------------------------------------------------------
#
# Every plot is a `Figure` built from the results (or None when the results lack its
# data), drawn by the one function `_draw`.


@dataclass
class Series:
    """One data series of a panel: a line, a line with min-max error bars, or bars."""

    x: Sequence[float]
    y: Sequence[float]
    label: str | None = None
    fmt: str = "o-"  # lines: matplotlib's format string
    spread: tuple[list[float], list[float]] | None = None  # (below, above) the value
    kind: str = "line"  # "line", "bar" (vertical) or "barh" (horizontal)
    width: float = 0.8  # bars


@dataclass
class Panel:
    """One set of axes: its series, reference lines, scales and labels."""

    series: list[Series]
    title: str
    xlabel: str
    ylabel: str | None = None
    log: str = ""  # the axes with a log scale: "", "x", "y" or "xy"
    # Reference lines: (value, label, colour, line style).
    hlines: list[tuple[float, str, str, str]] = field(default_factory=list)
    vlines: list[tuple[float, str, str, str]] = field(default_factory=list)
    # Category ticks: (positions, labels, keyword arguments of set_xticks/set_yticks).
    xticks: tuple[Sequence[float], list[str], dict[str, Any]] | None = None
    yticks: tuple[Sequence[float], list[str], dict[str, Any]] | None = None
    grid: dict[str, Any] | None = field(default_factory=lambda: {"which": "both"})
    legend: bool = True
    invert_y: bool = False


@dataclass
class Figure:
    """A plot: its key in the report, its file name, its size and its panels (side by side)."""

    key: str
    file: str
    size: tuple[float, float]
    panels: list[Panel]


def _draw(plt: Any, directory: Path, figure: Figure) -> str:
    """Draw `figure` into `directory`; return its file name."""
    fig, axes = plt.subplots(1, len(figure.panels), figsize=figure.size, squeeze=False)
    for ax, panel in zip(axes[0], figure.panels, strict=True):
        for s in panel.series:
            spread = list(s.spread) if s.spread is not None else None
            if s.kind == "barh":
                ax.barh(s.x, s.y, xerr=spread, capsize=3, color="tab:blue", label=s.label)
            elif s.kind == "bar":
                ax.bar(s.x, s.y, s.width, label=s.label)
            elif spread is not None:
                ax.errorbar(s.x, s.y, yerr=spread, fmt=s.fmt, capsize=3, label=s.label)
            else:
                ax.plot(s.x, s.y, s.fmt, label=s.label)
        for value, label, color, style in panel.hlines:
            ax.axhline(value, color=color, linestyle=style, label=label)
        for value, label, color, style in panel.vlines:
            ax.axvline(value, color=color, linestyle=style, label=label)
        if panel.xticks is not None:
            ax.set_xticks(panel.xticks[0], panel.xticks[1], **panel.xticks[2])
        if panel.yticks is not None:
            ax.set_yticks(panel.yticks[0], panel.yticks[1], **panel.yticks[2])
        if panel.invert_y:
            ax.invert_yaxis()
        if "x" in panel.log:
            ax.set_xscale("log")
        if "y" in panel.log:
            ax.set_yscale("log")
        ax.set_xlabel(panel.xlabel)
        if panel.ylabel is not None:
            ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title)
        if panel.grid is not None:
            ax.grid(True, alpha=0.3, **panel.grid)
        if panel.legend:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(directory / figure.file, dpi=110)
    plt.close(fig)
    return figure.file


def _spread_of(figures: list[dict[str, Any]], scale: float = 1.0) -> Series:
    """A series of figures' medians (x: their index), with their min-max as the spread."""
    med = [f["median"] * scale for f in figures]
    low = [m - f["min"] * scale for f, m in zip(figures, med, strict=True)]
    high = [f["max"] * scale - m for f, m in zip(figures, med, strict=True)]
    return Series(list(range(len(figures))), med, spread=(low, high))


def _broadcast_figure(results: dict[str, Any]) -> Figure | None:
    """Broadcast time against N."""
    fan = results["fanout"]
    series = []
    for key, style in (("ours", "o-"), ("boto3", "s-"), ("sequential", "^-")):
        data = fan["by_size"].get(key)
        if not data:
            continue
        ns = sorted(int(n) for n in data["points"])
        line = _spread_of([data["points"][str(n)]["seconds"] for n in ns])
        series.append(replace(line, x=ns, fmt=style, label=data["label"]))
    huge = fan.get("huge")
    if huge:
        point = _spread_of([huge["seconds"]])
        label = f"engine, k={huge['k']}: simulated {huge['n']:,}-member room"
        series.append(replace(point, x=[huge["n"]], fmt="D", label=label))
    floor_n = sorted(int(n) for n in fan["floor"])
    rtt_ms = fan["rtt_seconds"] * 1000
    series += [
        Series(
            floor_n,
            [fan["floor"][str(n)] for n in floor_n],
            f"floor ⌈N/k⌉·RTT, k={results['chosen_k']}, RTT={rtt_ms:.0f} ms",
            "k--",
        ),
        Series(floor_n, [fan["ceiling"][str(n)] for n in floor_n], "ceiling N/10,000 s", "r:"),
    ]
    panel = Panel(
        series,
        title="Broadcast time against room size (median, min-max)",
        xlabel="room size N (recipients)",
        ylabel="broadcast time (s)",
        log="xy",
    )
    return Figure("broadcast", "broadcast_time.png", (7.5, 4.8), [panel])


def _bars_figure(
    key: str,
    file: str,
    bars: list[tuple[str, dict[str, Any]]],
    *,
    xlabel: str,
    title: str,
    goal: tuple[float, str] | None = None,
) -> Figure:
    """Horizontal bars of (label, figure): each figure's median, with its min-max."""
    series = replace(_spread_of([f for _, f in bars]), kind="barh")
    y = list(range(len(bars)))
    panel = Panel(
        [series],
        title=title,
        xlabel=xlabel,
        vlines=[(goal[0], goal[1], "r", ":")] if goal is not None else [],
        yticks=(y, [label for label, _ in bars], {"fontsize": 7}),
        grid=None,
        legend=goal is not None,
        invert_y=True,
    )
    return Figure(key, file, (7.5, max(3.0, 0.9 + 0.38 * len(bars))), [panel])


def _cpu_figure(results: dict[str, Any]) -> Figure | None:
    return _bars_figure(
        "cpu",
        "cpu_per_recipient.png",
        [(c["label"], c["cpu_ms_per_recipient"]) for c in results["fanout"]["candidates"]],
        xlabel="CPU per recipient (ms, one core, user + system)",
        title="CPU per recipient by engine (median, min-max)",
        goal=(CPU_GOAL_MS, f"goal {CPU_GOAL_MS} ms"),
    )


HANDSHAKE_LABELS = {
    "cold_off": "cold send of k, resumption off",
    "cold_on": "cold send of k, resumption on",
    "first_off": "send of 1, then of k, resumption off",
    "first_on": "send of 1, then of k, resumption on",
}


def _handshakes_figure(results: dict[str, Any]) -> Figure | None:
    handshakes = results["fanout"].get("handshakes")
    if not handshakes:
        return None
    return _bars_figure(
        "handshakes",
        "handshakes.png",
        [
            (f"k={k}: {label}", h[name]["cpu_ms_per_connection"])
            for k, h in handshakes.items()
            for name, label in HANDSHAKE_LABELS.items()
        ],
        xlabel="CPU per new connection (ms: handshake and worker thread start)",
        title="A cold worker's connections (median, min-max)",
    )


def _frames_figure(results: dict[str, Any]) -> Figure | None:
    """Frame bytes against N."""
    frames = results["frames"]
    rows = frames["rows"]
    ns = [r["n"] for r in rows]
    series = []
    for label, style in (("typical", "-"), ("longest", "--")):
        series += [
            Series(
                ns,
                [r[label]["members_frame"] for r in rows],
                f"one members frame ({label} names)",
                "o" + style,
            ),
            Series(
                ns,
                [r[label]["largest_page"] for r in rows],
                f"largest memberList part ({label} names)",
                "s" + style,
            ),
        ]
    threshold = frames["threshold"]
    panel = Panel(
        series,
        title="Member list frame bytes against room size",
        xlabel="room size N",
        ylabel="bytes",
        log="xy",
        hlines=[(API_UNIT_BYTES, "32 KB (one billing unit, one frame)", "r", ":")],
        vlines=[(threshold, f"memberListThreshold = {threshold}", "gray", "-.")],
    )
    return Figure("frames", "frame_bytes.png", (7.5, 4.8), [panel])


def _cost_figure(results: dict[str, Any]) -> Figure | None:
    """Cost per 1,000 public messages."""
    cost = results["derived"]["cost"]
    if not cost:
        return None
    ns = [r["n"] for r in cost]
    parts = (
        ("api_usd", "API Gateway messages"),
        ("lambda_usd", "Lambda (1,769 MB, arm64)"),
        ("dynamodb_usd", "DynamoDB on-demand"),
    )
    panel = Panel(
        [Series(ns, [r[key] for r in cost], label) for key, label in parts],
        title="Cost per 1,000 public messages, by part",
        xlabel="room size N",
        ylabel="USD per 1,000 public messages",
        log="xy",
    )
    return Figure("cost", "cost.png", (7.5, 4.8), [panel])


def _units_figure(results: dict[str, Any]) -> Figure | None:
    """DynamoDB read and write units of each action, one group of bars per room size."""
    sizes = results["rooms"]["sizes"]
    if not sizes:
        return None
    actions = list(next(iter(sizes.values()))["actions"])
    width = 0.8 / max(1, len(sizes))
    ticks = [x + width * (len(sizes) - 1) / 2 for x in range(len(actions))]
    panels = [
        Panel(
            [
                Series(
                    [x + i * width for x in range(len(actions))],
                    [data["actions"][a][unit]["median"] for a in actions],
                    f"N = {int(n):,}",
                    kind="bar",
                    width=width,
                )
                for i, (n, data) in enumerate(sizes.items())
            ],
            title=f"DynamoDB {title} per action",
            xlabel="",
            ylabel=unit.upper(),
            log="y",
            xticks=(ticks, actions, {"rotation": 30, "ha": "right", "fontsize": 7}),
            grid={"axis": "y", "which": "both"},
        )
        for unit, title in (("rru", "read units"), ("wru", "write units"))
    ]
    return Figure("units", "dynamodb_units.png", (10, 4.8), panels)


def _sandbox_figure(results: dict[str, Any]) -> Figure | None:
    """End-to-end latency through the sandbox: p50, p95 and p99 against room size."""
    sandbox = results.get("sandbox")
    if not sandbox:
        return None
    ns = sorted(sandbox, key=int)
    series = [
        replace(
            _spread_of([sandbox[n][key] for n in ns], scale=1000),
            x=[int(n) for n in ns],
            fmt=marker,
            label=key,
        )
        for key, marker in (("p50", "o-"), ("p95", "s--"), ("p99", "^:"))
    ]
    panel = Panel(
        series,
        title="The whole chat through the sandbox (median, min-max)",
        xlabel="members in the room",
        ylabel="ms, send until every member has it",
        grid={},
    )
    return Figure("sandbox", "sandbox_latency.png", (7.5, 4.8), [panel])


def _rooms_units_figure(results: dict[str, Any]) -> Figure | None:
    """Read units against N of the rooms actions that read the room, and of a rename and a
    $disconnect at each R."""
    data = results.get("rooms_v2")
    if not data:
        return None
    ns = sorted(int(n) for n in data["sizes"])
    series = [
        Series(ns, [data["sizes"][str(n)]["actions"][action]["rru"] for n in ns], label, fmt)
        for action, label, fmt in (
            ("sendPublic", "sendPublic, editMessage, deleteMessage", "o-"),
            ("joinRoom (existing room)", "joinRoom (existing room)", "s-"),
            ("leaveRoom", "leaveRoom", "^-"),
            ("typing", "typing", "v-"),
        )
    ]
    for action, style in (("setName (v2 rename)", "--"), ("$disconnect (v2)", ":")):
        for r, marker in zip(sorted(data["rooms"]), "xDP*", strict=False):
            rru = [data["sizes"][str(n)]["by_r"][str(r)][action]["rru"] for n in ns]
            series.append(Series(ns, rru, f"{action}, R = {r}", marker + style))
    panel = Panel(
        series,
        title="DynamoDB read units per rooms action (R = 1 unless said)",
        xlabel="members in the room N",
        ylabel="RRU",
        log="xy",
    )
    return Figure("rooms_units", "rooms_units.png", (7.5, 4.8), [panel])


FIGURES = (
    _broadcast_figure,
    _cpu_figure,
    _handshakes_figure,
    _frames_figure,
    _cost_figure,
    _units_figure,
    _rooms_units_figure,
    _sandbox_figure,
)


def _plots(
    results: dict[str, Any], directory: Path, figures: Sequence[Any] = FIGURES
) -> dict[str, str]:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for build in figures:
        figure = build(results)
        if figure is not None:
            names[figure.key] = _draw(plt, directory, figure)
    return names


# --- the document -------------------------------------------------------------------------


def write_rooms_units(results: dict[str, Any], markdown: Path, plots: Path) -> None:
    """Only the rooms units: their plot, and their section of the existing `markdown`."""
    names = _plots(results, plots, [_rooms_units_figure])
    rel = plots.name if plots.parent == markdown.parent else str(plots)
    images = {k: f"{rel}/{v}" for k, v in names.items()}
    markdown.write_text(replace_rooms_units(markdown.read_text(), results, images))


def write(results: dict[str, Any], markdown: Path, plots: Path) -> None:
    names = _plots(results, plots)
    rel = plots.name if plots.parent == markdown.parent else str(plots)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render(results, {k: f"{rel}/{v}" for k, v in names.items()}))


def _over(results: dict[str, Any]) -> str:
    """What the posts went over, in words."""
    transport = results.get("transport", {})
    if not transport.get("tls"):
        return "plain HTTP"
    return f"HTTPS ({transport.get('version', 'TLS')})"


GOAL_WORDS = {
    "posts_per_second": "posts per second",
    "cpu_ms_per_recipient": "CPU per recipient",
    "cpu_ratio_vs_boto3": "CPU against boto3",
}


def _met(goal: dict[str, Any]) -> str:
    return "met" if goal["met"] else "**not met**"


def _section_summary(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    k = results["chosen_k"]
    rtt_ms = fan["rtt_seconds"] * 1000
    add = out.append
    goals = results["derived"].get("goals")
    if not goals:
        return
    add("## Summary\n")
    over = _over(results)
    rows = [
        [
            f"posts per second, N = {goals['n']:,}, {rtt_ms:.0f} ms per post, one core, {over}",
            f"≥ {RATE_GOAL:,}",
            f"{goals['posts_per_second']['value']:,.0f}",
            _met(goals["posts_per_second"]),
        ],
        [
            f"CPU per recipient, {over}",
            f"≤ {CPU_GOAL_MS} ms",
            f"{goals['cpu_ms_per_recipient']['value']:.3f} ms",
            _met(goals["cpu_ms_per_recipient"]),
        ],
        [
            f"CPU against the boto3 path it replaced (k = {results['today_k']}), same run",
            f"≥ {CPU_RATIO_GOAL:.0f}x less",
            f"{goals['cpu_ratio_vs_boto3']['value']:.1f}x less",
            _met(goals["cpu_ratio_vs_boto3"]),
        ],
    ]
    for key, label in (
        (f"boto3-k{k}", f"boto3's client at k = {k}"),
        ("urllib3", f"the engine on urllib3's pool at k = {k}"),
    ):
        ratio = goals.get(f"cpu_ratio_vs_{key}")
        if ratio is not None:
            rows.append([f"CPU against {label}, same run", "", f"{ratio:.1f}x less", ""])
    add(_table(["goal", "target", f"engine, k = {k}", ""], rows) + "\n")
    add(
        f"The engine is `chat.fanout.FanoutEngine` with its default transport "
        f"(`HttpClientTransport`: the standard library's `http.client`, one keep-alive "
        f"`HTTPSConnection` per worker thread, TLS session resumption on), k = {k} worker "
        "threads, each request signed by botocore's `SigV4Auth`. The candidates below ran in "
        "the same process, one after the other, against the same stand-in.\n"
    )
    missed = [name for name, goal in goals.items() if isinstance(goal, dict) and not goal["met"]]
    if missed:
        per_post = results["derived"].get("per_post_cpu_ms", {})
        parts = []
        if per_post:

            def words(d: dict[str, Any]) -> str:
                spread = ", within this run's spread" if d["within_spread"] else ""
                return f"{d['ms']:+.3f} ms a post{spread}"

            parts.append(
                f"On a warm engine, TLS adds {words(per_post['tls'])} (the engine with "
                "`resume_sessions=False` against plain HTTP), and keeping TLS sessions for "
                f"resumption {words(per_post['resumption'])} (the default against "
                "`resume_sessions=False`)"
            )
        add(
            "**Targets missed in this run: "
            + ", ".join(GOAL_WORDS.get(m, m) for m in missed)
            + ".** "
            + ("; ".join(parts) + ". " if parts else "")
            + "Where the rest goes is profiled below (Where a post's CPU goes).\n"
        )


def _section_candidates(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    add = out.append
    add("## Candidates: CPU per recipient and broadcast rate\n")
    rows = []
    for c in fan["candidates"]:
        new = c.get("new_connections")
        rows.append(
            [
                c["label"],
                f"{c['n']:,}",
                _spread(c["seconds"], 1.0, 2),
                _spread(c["posts_per_second"], 1.0, 0),
                _spread(c["cpu_ms_per_recipient"], 1.0, 3),
                f"{c['max_in_flight']['median']:.0f}",
                f"{new['max']:.0f}" if new else "—",
            ]
        )
    add(
        _table(
            [
                "engine",
                "N",
                "broadcast s",
                "posts/s",
                "CPU ms / recipient",
                "max in flight",
                "new connections",
            ],
            rows,
        )
        + "\n"
    )
    if "cpu" in images:
        add(f"![CPU per recipient by engine]({images['cpu']})\n")
    add(
        f'Over {_over(results)} unless the label says otherwise. "New connections" is the '
        "most connections the stand-in accepted during a measured broadcast (after the "
        "warm-ups): 0 means the figure is a warm engine's, with no handshake in it.\n"
    )
    add(
        "- **boto3 client** (the path it replaced): every `post_to_connection` runs "
        "botocore's whole pipeline: parameter validation, REST serialization, endpoint "
        "rules, event hooks, retry handler, response parsing.\n"
        "- **engine on urllib3's pool**: the same engine (signing, retries, threads) over "
        "urllib3's connection pool (what botocore itself uses), verifying TLS against the "
        "same CA (`ca_certs=`).\n"
        "- **asyncio + aiohttp**: one thread, no thread switches; it is not in the Lambda "
        "runtime: it would have to be bundled (see Cold start).\n"
        "- **engine (chosen)**: `http.client` on one keep-alive connection per worker "
        "thread; `resume_sessions=False` and plain HTTP are the same engine without TLS "
        "session resumption and without TLS, to show what each costs a post.\n"
    )


def _section_handshakes(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    handshakes = results["fanout"].get("handshakes")
    if not handshakes:
        return
    add = out.append
    add("## A cold worker's connections: TLS handshakes and session resumption\n")
    add(
        "A fresh engine (a cold execution environment, or one whose connections were "
        "closed) opens one connection per worker thread on its first broadcast. TLS 1.3 "
        "sends session tickets after the handshake, so a client has a session to offer only "
        "once a first answer has come back: a **cold send of k** opens its connections at "
        "once, mostly before any ticket, and resumption can help only those it opens late; "
        "a **send of 1, then of k** (one connection whose answer brings the tickets, then "
        "the broadcast) is the case resumption is for. Each variant is a fresh engine "
        "(`HttpClientTransport(..., resume_sessions=False / True)`), k recipients, the "
        "stand-in counting the connections it accepted and how many resumed. CPU per "
        "connection is (the send's CPU - the same send on the same engine once warm) / "
        "connections opened: the client's handshake plus starting a worker thread (alike "
        "in every variant, so the differences are the handshakes'). The server's half of "
        "each handshake runs in the stand-in, on the other core, and is not counted.\n"
    )
    rows = []
    for k, h in handshakes.items():
        for name, label in HANDSHAKE_LABELS.items():
            v = h[name]
            rows.append(
                [
                    k,
                    label,
                    _spread(v["seconds"], 1000.0, 0),
                    _spread(v["cpu_ms"], 1.0, 1),
                    f"{v['connections']['median']:.0f}",
                    f"{v['resumed']['median']:.0f}",
                    _spread(v["cpu_ms_per_connection"], 1.0, 3),
                ]
            )
        for name in ("warm_off", "warm_on"):
            v = h[name]
            rows.append(
                [
                    k,
                    f"warm send of k, resumption {name[5:]}",
                    _spread(v["seconds"], 1000.0, 0),
                    _spread(v["cpu_ms"], 1.0, 1),
                    f"{v['connections']['median']:.0f}",
                    "—",
                    "—",
                ]
            )
    add(
        _table(
            [
                "k",
                "measured send",
                "wall ms",
                "CPU ms",
                "new connections",
                "resumed",
                "CPU ms / connection",
            ],
            rows,
        )
        + "\n"
    )
    if "handshakes" in images:
        add(f"![A cold worker's connections]({images['handshakes']})\n")
    add(
        "A cold send of k opens fewer than k connections when the core is busy: a thread "
        "pool starts a thread only when none is idle, and a started thread takes the next "
        "recipient as soon as it is done with one.\n"
    )
    verdict = results["derived"].get("resumption")
    if verdict:
        parts = [
            f"k = {k}: with it, a connection opened after a first answer cost "
            f"{r['saved_cpu_ms_per_connection']:.3f} ms less CPU ({r['resumed']:.0f} of "
            f"{r['connections']:.0f} resumed) and that send took {r['wall_ms_on']:.0f} ms "
            f"(without: {r['wall_ms_off']:.0f} ms); a warm post cost "
            f"{r['added_cpu_ms_per_warm_post']:.3f} ms more CPU"
            for k, r in verdict["by_k"].items()
        ]
        add(
            "**Does resumption pay? "
            + ("Yes" if verdict["pays"] else "Not as it stands")
            + ".** "
            + "; ".join(parts)
            + ". "
            + (
                "It saves handshake CPU on new connections and costs warm posts nothing measurable."
                if verdict["pays"]
                else "What it saves is paid once per new connection; what it adds is paid "
                "on every post of a warm engine, which makes many more posts than "
                "connections: `_Sessions.keep` reads `SSLSocket.session` after every answer "
                f"({_session_read(results)}; Where a post's CPU goes, below)."
            )
            + "\n"
        )


def _session_read(results: dict[str, Any]) -> str:
    read = results.get("transport", {}).get("session_read_ms")
    if read is None:
        return "a read not measured in this run"
    return f"{read:.3f} ms of CPU a read, measured alone on a warm connection"


def _section_profile(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    profile = results["fanout"].get("profile")
    if not profile:
        return
    add = out.append
    n = profile["n"]
    add("## Where a post's CPU goes\n")
    add(
        f"`cProfile` (CPU time: `time.process_time`) of one warm send of {n} over "
        f"{_over(results)}, with k = 1: `cProfile` sees only the thread it runs in, and with "
        "one worker the engine posts from the calling thread. The profiler slows Python "
        f"code several times ({profile['profiled_ms_per_post']:.2f} ms a post profiled, "
        f"{profile['cpu_ms_per_recipient_k1']:.3f} ms the same send unprofiled), so read "
        "the shares, not the milliseconds; the CPU figures with k threads are the "
        "candidates' above.\n"
    )
    whole = max(profile["stages"].values()) or 1.0
    rows = [
        [label, f"{ms:.3f}", f"{ms / whole:.0%}"]
        for label, ms in profile["stages"].items()
        if ms > 0
    ]
    add(_table(["part of a post (cumulative)", "ms per post, profiled", "share"], rows) + "\n")
    rows = [
        [
            f"`{r['function']}`",
            f"{r['calls_per_post']:.2f}",
            f"{r['own_ms_per_post']:.3f}",
            f"{r['cumulative_ms_per_post']:.3f}",
        ]
        for r in profile["by_own_time"][:12]
    ]
    add(
        "The functions with the most time of their own:\n\n"
        + _table(["function", "calls per post", "own ms", "cumulative ms"], rows)
        + "\n"
    )


def _section_broadcast(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    k = results["chosen_k"]
    add = out.append
    add("## Broadcast time against room size\n")
    rows = []
    sizes = sorted({int(n) for s in fan["by_size"].values() for n in s["points"]})
    for n in sizes:
        row: list[Any] = [f"{n:,}"]
        for key in ("ours", "boto3", "sequential"):
            point = fan["by_size"].get(key, {}).get("points", {}).get(str(n))
            row.append(_spread(point["seconds"], 1.0, 3) if point else "—")
        row.append(f"{fan['floor'].get(str(n), -(-n // k) * fan['rtt_seconds']):.3f}")
        row.append(f"{fan['ceiling'].get(str(n), n / 10000):.3f}")
        rows.append(row)
    labels = [fan["by_size"][key]["label"] for key in ("ours", "boto3", "sequential")]
    add(
        _table(
            [
                "N",
                *[f"{label} (s)" for label in labels],
                f"floor ⌈N/{k}⌉·RTT (s)",
                "ceiling N/10,000 (s)",
            ],
            rows,
        )
        + "\n"
    )
    if "broadcast" in images:
        add(f"![Broadcast time against room size]({images['broadcast']})\n")
    add(
        "The floor is the network's: ⌈N/k⌉ rounds of one round trip. The ceiling is the "
        "account's: API Gateway's 10,000 requests/s per account and Region, shared by every "
        "API and every broadcast of the account (docs/aws-facts.md). The sequential poster "
        f"was measured only up to {max(int(n) for n in fan['by_size']['sequential']['points']):,} "
        f"members (one round trip per member); the boto3 pool up to "
        f"{max(int(n) for n in fan['by_size']['boto3']['points']):,}.\n"
    )


def _section_huge(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    rtt_ms = fan["rtt_seconds"] * 1000
    add = out.append
    huge = fan["huge"]
    add(f"## A {huge['n']:,}-member room (simulation)\n")
    seconds = huge["seconds"]["median"]
    lambda_usd = ONE_VCPU_MB / 1024 * seconds * LAMBDA_GB_SECOND_USD
    reads = [r["room_read"]["strong"] for r in results["rooms"]["sizes"].values()]
    item_bytes = max(r["bytes"] / r["items"] for r in reads) if reads else 150.0
    add(
        f"One broadcast to {huge['n']:,} connections of the stand-in ({rtt_ms:.0f} ms per "
        f"post), engine with k = {huge['k']}: {_spread(huge['seconds'], 1.0, 2)} s, "
        f"{_spread(huge['posts_per_second'], 1.0, 0)} posts/s, "
        f"{_spread(huge['cpu_ms_per_recipient'], 1.0, 3)} ms CPU per recipient. At the "
        f"account ceiling such a broadcast takes {huge['n'] / 10000:.0f} s; one invocation "
        f"takes {seconds:.1f} s on one core, so it alone uses "
        f"{huge['posts_per_second']['median'] / 10000:.0%} of the account's request rate. "
        "The chat does not post that from one invocation: it shards the broadcast among "
        "fan-out workers (Beyond one invocation, below), and then the account's ceiling is "
        "what limits it.\n"
    )
    add(
        f"What it costs: {huge['n']:,} API Gateway messages = "
        f"{_usd(huge['n'] * API_MESSAGE_USD)} per broadcast; Lambda at 1,769 MB for "
        f"{seconds:.1f} s = {_usd(lambda_usd)}; the room read: "
        f"{math.ceil(huge['n'] * item_bytes / 4096):,} RRU strongly consistent "
        f"({item_bytes:.0f} bytes a member item as measured, by the formula), "
        f"{_usd(math.ceil(huge['n'] * item_bytes / 4096) * RRU_USD)}. A room that size "
        "also needs: a `maxRoomSize` above its default 1,000; a function timeout above the "
        "broadcast time (the stack caps it at 29 s, API Gateway's integration timeout); "
        "and the member list in parts "
        "(memberList frames, below).\n"
    )


def _section_memory(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    add = out.append
    model = results["derived"].get("memory_model")
    add("## Memory size against room size\n")
    memory = fan.get("memory", {})
    if memory:
        rows = [[f"{int(n):,}", _spread(v, 1 / 1e6, 2)] for n, v in memory.items()]
        add(
            "Python heap allocated during one broadcast (tracemalloc peak; the frame's bytes "
            "are shared, so this is the per-recipient bookkeeping):\n\n"
            + _table(["N", "peak heap during send (MB)"], rows)
            + "\n"
        )
    sizes = fan.get("memory_sizes", {})
    if sizes.get("rows"):
        by_cell: dict[tuple[int, int], dict[int, str]] = {}
        ks = sorted({r["k"] for r in sizes["rows"]})
        for r in sizes["rows"]:
            by_cell.setdefault((r["n"], r["memory_mb"]), {})[r["k"]] = _spread(r["seconds"], 1, 2)
        mbs = sorted({r["memory_mb"] for r in sizes["rows"]})
        ns = sorted({r["n"] for r in sizes["rows"]})
        rows = [
            [f"{n:,}"] + [" / ".join(by_cell[(n, mb)].get(k, "—") for k in ks) for mb in mbs]
            for n in ns
        ]
        add(
            "**Measured at each size.** The engine ran in a child process pinned to the "
            "measured core and confined by a cgroup CPU quota to the share of a vCPU each "
            "memory size gets (256 MB: 14.5%; `bench/cpu_share.py`), against the same "
            f"stand-in. Broadcast seconds with k = {' / k = '.join(map(str, ks))} posts in "
            "flight (an emulation: Lambda's scheduler is not a CFS quota):\n\n"
            + _table(["N", *[f"{mb} MB" for mb in mbs]], rows)
            + "\n"
        )
        add(
            "So at small sizes more posts in flight do not help and cost CPU (threads "
            "switching on a seventh of a CPU): the chat function keeps `fanoutConcurrency` = "
            "32 at its default 256 MB, and the fan-out worker, at 1,769 MB, uses 192.\n"
        )
    elif sizes.get("unavailable"):
        add(
            "The measurement at each memory size was skipped on this machine "
            f"({sizes['unavailable']}); the table below is the model only.\n"
        )
    if model:
        add(
            f"Lambda gives CPU in proportion to memory (1,769 MB = 1 vCPU). With the measured "
            f"{model['cpu_seconds_per_post'] * 1000:.3f} ms of CPU per recipient (k = "
            f"{model['k']}, {model['rtt'] * 1000:.0f} ms round trip), a broadcast takes the "
            "larger of the network floor and its CPU time at that share of a vCPU "
            "(a model from the measured figure, for the sizes and rooms not measured above):\n"
        )
        rows = []
        for row in model["rows"]:
            rows.append(
                [f"{row['n']:,}"]
                + [
                    f"{row[str(mb)]['seconds']:.2f} s / {_usd(row[str(mb)]['usd'])}"
                    for mb in MEMORY_SIZES_MB
                ]
            )
        add(_table(["N", *[f"{mb} MB" for mb in MEMORY_SIZES_MB]], rows) + "\n")
        add(
            "Above 1,769 MB a function gets a second vCPU, which the engine's threads (one "
            "interpreter lock) cannot use: 1,769 MB is the size that buys the most fan-out. "
            "Below it, a big broadcast is CPU-bound and takes proportionally longer for about "
            "the same GB-seconds, so the smaller size saves nothing on big rooms and only "
            "makes them slower.\n"
        )


def _section_frames(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    add = out.append
    frames = results["frames"]
    add("## Frame bytes against room size\n")
    rows = []
    for r in frames["rows"]:
        rows.append(
            [
                f"{r['n']:,}",
                f"{r['typical']['members_frame']:,}",
                f"{r['typical']['member_pages']} x ≤ {r['typical']['largest_page']:,}",
                f"{r['longest']['members_frame']:,}",
                f"{r['longest']['member_pages']} x ≤ {r['longest']['largest_page']:,}",
            ]
        )
    add(
        _table(
            [
                "N",
                "members frame, 10-char names (bytes)",
                "memberList parts",
                "members frame, longest names",
                "memberList parts",
            ],
            rows,
        )
        + "\n"
    )
    if "frames" in images:
        add(f"![Frame bytes against room size]({images['frames']})\n")
    add(
        f"Up to `memberListThreshold` ({frames['threshold']} members) every join and leave "
        "sends every member the whole list (protocol v1): one frame of up to 32 KB with the "
        "longest names, to each of N members. Above it, only the joiner gets the list, in "
        f"parts that each stay under {frames['budget']:,} bytes (one 32 KB billing unit); "
        "the others get the one-line notice. A single members frame passes 32 KB (two "
        "billing units per recipient, and beyond 128 KB a frame API Gateway refuses) long "
        "before 10,000 members.\n"
    )


def _section_units(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    add = out.append
    rooms = results["rooms"]
    add("## DynamoDB units per action\n")
    add(
        "Units from DynamoDB's documented formulas applied to the sizes of the items each call "
        "read or wrote (moto returns a constant `ConsumedCapacity`, so it is not used): a "
        "strongly consistent read is 1 RRU per 4 KB (a Query adds up its items' sizes), a "
        "write 1 WRU per KB, twice in a transaction. Rooms were built in the store's own item "
        "layout, in batches ("
        + ", ".join(f"{int(n):,} members in {s:.1f} s" for n, s in rooms["build_seconds"].items())
        + "), then each action ran through `handler.handle_message` on a `ChatService` with "
        "`DynamoChatStore` and the engine, with a client `id`; the join through "
        "`DynamoChatStore.claim_name`'s transaction. One run at each size: the units follow "
        "from the items' sizes and do not vary between runs (moto's times are not reported: "
        "they are not DynamoDB's).\n"
    )
    rows = []
    for n, data in rooms["sizes"].items():
        for action, figures in data["actions"].items():
            rows.append(
                [
                    f"{int(n):,}",
                    action,
                    _spread(figures["rru"], 1.0, 1),
                    _spread(figures["wru"], 1.0, 1),
                    ", ".join(figures["calls"]),
                ]
            )
    add(_table(["N", "action", "RRU", "WRU", "calls (last run)"], rows) + "\n")
    partitioned = results.get("rooms_partitioned", {}).get("sizes", {})
    for n, data in partitioned.items():
        single = rooms["sizes"].get(n)
        strong = data["room_read"]["strong"]
        parts = ", ".join(f"{u:g}" for u in strong.get("rru_per_partition", []))
        public = data["actions"]["sendPublic"]["rru"]["median"]
        add(
            f"With `memberPartitions` = 4 at N = {int(n):,}, the room read is "
            f"{strong['rru']:g} RRU in all (per partition: {parts}), against "
            f"{single['room_read']['strong']['rru']:g} RRU from the one partition with the "
            f"default 1; a `sendPublic` costs {public:g} RRU. The bytes read are the same; "
            "each partition carries a quarter of them, and each Query costs at least 1 RRU "
            "(docs/architecture.md, Member partitions).\n"
            if single
            else ""
        )
    if "units" in images:
        add(f"![DynamoDB units per action]({images['units']})\n")


ROOMS_UNITS_HEADING = "## DynamoDB units per rooms action"


def _calls_in_short(calls: list[str]) -> str:
    """The calls of an action, each kind once with its count, in the order first made."""
    counts: dict[str, int] = {}
    for call in calls:
        counts[call] = counts.get(call, 0) + 1
    return ", ".join(c if k == 1 else f"{c} x{k}" for c, k in counts.items())


def _across(values: list[float]) -> str:
    """One figure when it is the same at every size, else each, slash-separated."""
    shown = [f"{v:g}" for v in values]
    return shown[0] if len(set(shown)) == 1 else " / ".join(shown)


def _section_rooms_units(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    from bench.rooms_units import ACTIONS, BY_R  # noqa: PLC0415

    data = results.get("rooms_v2")
    if not data:
        return
    add = out.append
    ns = sorted(data["sizes"], key=int)
    rs = sorted(data["rooms"])
    biggest = data["sizes"][ns[-1]]
    sizes = " / ".join(f"{int(n):,}" for n in ns)
    add(f"{ROOMS_UNITS_HEADING}\n")
    add(
        "Protocol v2 ([protocol.md](protocol.md#protocol-v2-rooms)), measured as above "
        "(`bench/rooms_units.py`, `python -m bench --only rooms-units`"
        + (" --quick" if data.get("quick") else "")
        + f", {data.get('measured_utc', '')} UTC): DynamoDB's formulas applied to the items "
        "each call read or wrote, every frame through `handler.handle_message` (with a client "
        "`id` where the action takes one), `$disconnect` through `ChatService.disconnect`; "
        "so each frame with its admission: the connection's bucket and, unlike the lobby's table "
        "above, its address's bucket too (1 RRU + 1 WRU each; every measured connection came "
        "from an address of its own, as a real client's does). A Query with a filter or "
        "`Select=COUNT` is priced by the items it read, not by what it returned; a "
        "transaction's `ConditionCheck` as a transactional write of its item.\n"
    )
    add(
        f"The rooms were made by the chat (a founder's `joinRoom`), then filled to N = {sizes} "
        "members in the store's own item layout (the member and membership items of the "
        "store's join transaction, every member a v2 connection with a `clientKey` in all "
        f"{max(rs)} rooms, 25 items a BatchWriteItem: "
        + ", ".join(f"{int(n):,} in {data['build_seconds'][n]:.1f} s" for n in ns)
        + f"); a member item is {data['member_item_bytes']:.0f} bytes on average. At each N a "
        "fresh connection joined the first room (N + 1 members while it is in) and ran every "
        "action below there, in this order, so R = 1 for them; R matters only to a rename "
        "and a `$disconnect`, measured for connections in R = "
        + " and ".join(str(r) for r in rs)
        + " rooms. `createRoom` and the creating `joinRoom` make rooms of their own (the "
        "creator alone in them), `invite` grants the private one to a member; `sendPrivate` "
        "goes to a member with a `clientKey`, so it is kept "
        "in their direct room, which the first message opens. One run: the units follow "
        "from the items' sizes. Posts are the frames the action sent (at the largest N).\n"
    )
    rows = []
    for action in ACTIONS:
        figures = [data["sizes"][n]["actions"][action] for n in ns]
        rows.append(
            [
                action,
                "1",
                _across([f["rru"] for f in figures]),
                _across([f["wru"] for f in figures]),
                f"{figures[-1]['posts']:,}",
                _calls_in_short(figures[-1]["calls"]),
            ]
        )
    for action in BY_R:
        for r in rs:
            figures = [data["sizes"][n]["by_r"][str(r)][action] for n in ns]
            rows.append(
                [
                    action,
                    str(r),
                    _across([f["rru"] for f in figures]),
                    _across([f["wru"] for f in figures]),
                    f"{figures[-1]['posts']:,}",
                    _calls_in_short(figures[-1]["calls"]),
                ]
            )
    add(
        _table(
            [
                "action",
                "R",
                f"RRU at N = {sizes}",
                f"WRU at N = {sizes}",
                "posts",
                f"calls (N = {int(ns[-1]):,})",
            ],
            rows,
        )
        + "\n"
    )
    growing = [
        a
        for a in ACTIONS
        if biggest["actions"][a]["rru"] > data["sizes"][ns[0]]["actions"][a]["rru"]
    ]
    add(
        f"**What grows with N** (RRU at N = {int(ns[-1]):,} above N = {int(ns[0]):,}): "
        + ", ".join(f"`{a}`" for a in growing)
        + "; each reads the room's members once (its broadcast), and no write grows with N. "
        "Everything else reads the same at every N.\n"
    )
    if len(rs) > 1:
        low, high = str(rs[0]), str(rs[-1])
        steps = rs[-1] - rs[0]
        parts = []
        for action in BY_R:
            per_room = [
                (
                    (
                        data["sizes"][n]["by_r"][high][action]["rru"]
                        - data["sizes"][n]["by_r"][low][action]["rru"]
                    )
                    / steps,
                    (
                        data["sizes"][n]["by_r"][high][action]["wru"]
                        - data["sizes"][n]["by_r"][low][action]["wru"]
                    )
                    / steps,
                )
                for n in ns
            ]
            parts.append(
                f"`{action}` {_across([u for u, _ in per_room])} RRU and "
                f"{_across([w for _, w in per_room])} WRU"
            )
        add(
            "**What grows with R**: each room beyond the first adds to "
            + " and to ".join(parts)
            + f" (at N = {sizes}): a member read and a broadcast per room, and per room an "
            "item more in a rename's transaction, a leave transaction in a `$disconnect`.\n"
        )
    if "rooms_units" in images:
        add(f"![DynamoDB read units per rooms action]({images['rooms_units']})\n")


def replace_rooms_units(
    markdown: str, results: dict[str, Any], images: dict[str, str] | None = None
) -> str:
    """`markdown` (docs/performance.md) with its rooms units section made from `results`
    (inserted before the section on eventually consistent reads when it has none)."""
    section: list[str] = []
    _section_rooms_units(results, images or {}, section)
    text = "\n".join(section) + "\n"
    start = markdown.find(ROOMS_UNITS_HEADING + "\n")
    if start < 0:
        start = end = markdown.index("## Can room reads be eventually consistent?")
    else:
        end = markdown.find("\n## ", start + len(ROOMS_UNITS_HEADING)) + 1
        end = end if end > 0 else len(markdown)
    return markdown[:start] + text + markdown[end:]


def _section_consistency(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    add = out.append
    rooms = results["rooms"]
    add("## Can room reads be eventually consistent?\n")
    rows = []
    for n, data in rooms["sizes"].items():
        strong, eventual = data["room_read"]["strong"], data["room_read"]["eventual"]
        rows.append(
            [
                f"{int(n):,}",
                f"{strong['bytes']:,}",
                strong["pages"],
                f"{strong['rru']:g}",
                f"{eventual['rru']:g}",
                f"{strong['rru'] * RRU_USD * 1000:.6f}",
            ]
        )
    add(
        _table(
            [
                "N",
                "member items (bytes)",
                "pages",
                "RRU strong",
                "RRU eventual",
                "USD per 1,000 reads (strong)",
            ],
            rows,
        )
        + "\n"
    )
    cost_rows = {r["n"]: r for r in results["derived"]["cost"]}
    savings = []
    for n, data in rooms["sizes"].items():
        if int(n) in cost_rows:
            saved = data["room_read"]["strong"]["rru"] - data["room_read"]["eventual"]["rru"]
            saved_usd = saved * RRU_USD * 1000
            share = saved_usd / cost_rows[int(n)]["total_usd"]
            savings.append(f"{_usd(saved_usd)} ({share:.2%}) at {int(n):,}")
    reads = [d["room_read"]["strong"] for d in rooms["sizes"].values()]
    item_bytes = max(r["bytes"] / r["items"] for r in reads) if reads else 0
    big_read = math.ceil(10_000 * item_bytes / 4096)
    add(
        "**Decision: keep them strongly consistent.** Measured: an eventually consistent "
        "room read costs half the read units; moto has no replicas, so the staleness itself "
        "cannot be measured here. Saved per 1,000 public messages (against the total in the "
        "cost table below): " + ("; ".join(savings) or "—") + ". What it would cost: a "
        "member whose join committed just before a broadcast could be missing from a stale "
        "read and miss that message; the client can recover it from `prev` and `history`, "
        "but only when its next message shows the gap. The partition limit (3,000 RRU/s on "
        "`ROOM#lobby`, with the default `memberPartitions` = 1) does not force it either: "
        f"at 10,000 members of {item_bytes:.0f} bytes a "
        f"strongly consistent room read is {big_read:,} RRU, {3000 / big_read:.0f} "
        "broadcasts a second, while API Gateway's account ceiling allows one such broadcast "
        "a second.\n"
    )


def _section_cost(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    rtt_ms = fan["rtt_seconds"] * 1000
    add = out.append
    cost = results["derived"]["cost"]
    if cost:
        add("## Cost per 1,000 public messages\n")
        add(
            "What a stage costs at rest, per idle client and per message, all in one place: "
            "[docs/costs.md](costs.md). This section measures the per-message part.\n"
        )
        rows = [
            [
                f"{r['n']:,}",
                f"{r['broadcast_seconds'] * 1000:,.0f} + {r['dynamodb_calls']} x "
                f"{DYNAMODB_CALL_SECONDS * 1000:.0f}",
                f"{r['rru']:g} / {r['wru']:g}",
                _usd(r["api_usd"]),
                _usd(r["lambda_usd"]),
                _usd(r["dynamodb_usd"]),
                _usd(r["total_usd"]),
                r["how"],
            ]
            for r in cost
        ]
        add(
            _table(
                [
                    "N",
                    "Lambda ms: broadcast + DynamoDB calls",
                    "RRU / WRU",
                    "API Gateway",
                    "Lambda",
                    "DynamoDB",
                    "total",
                    "how",
                ],
                rows,
            )
            + "\n"
        )
        if "cost" in images:
            add(f"![Cost per 1,000 public messages]({images['cost']})\n")
        add(
            "Prices from docs/aws-facts.md (us-east-1): API Gateway $1.00 per million messages "
            "in 32 KB units (a public message frame is one unit), Lambda arm64 "
            "$0.0000133334 per GB-s and $0.20 per million requests, at 1,769 MB; DynamoDB "
            "on-demand $0.125 per million RRU and $0.625 per million WRU. The Lambda time is the "
            f"engine's broadcast measured at N (the stand-in at {rtt_ms:.0f} ms a post) plus "
            f"{DYNAMODB_CALL_SECONDS * 1000:.0f} ms for each DynamoDB call sendPublic makes: that "
            "per-call figure is an assumption, not a measurement (moto's times are not "
            "DynamoDB's: it took seconds to read 1,000 members). API Gateway's share of the "
            "total: "
            + ", ".join(f"{r['api_usd'] / r['total_usd']:.0%} at {r['n']:,}" for r in cost)
            + ".\n"
        )


def _section_cold(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    add = out.append
    cold = results["cold_start"]
    add("## Cold start\n")
    rows = [[label, _spread(v, 1000.0, 0)] for label, v in cold["imports"].items()]
    add(_table(["in a fresh interpreter", "ms"], rows) + "\n")
    first = {key: _spread(value, 1000.0, 0) for key, value in cold["first_invocation"].items()}
    ours_kb = cold["assets"]["lambda_src_zip_bytes"] / 1024
    bundle_kb = cold["assets"]["aiohttp_bundle_zip_bytes"] / 1024
    k = results["chosen_k"]
    add(
        f"- Asset: `lambda_src/` zipped is {ours_kb:,.0f} KB; aiohttp and its dependencies "
        f"would add {bundle_kb:,.0f} KB zipped (this machine's wheels; a Lambda bundle needs "
        "the manylinux aarch64 ones), plus their import time above, to every cold start.\n"
        f"- First invocation in a fresh process: `import handler` {first['import']} ms, the "
        "first `$connect` (creating the boto3 clients, one DynamoDB write) "
        f"{first['first']} ms, the second {first['second']} ms.\n"
        f"- The engine's first broadcast to {k} connections (starting its threads and "
        f"opening {k} sockets) {first['first_send']} ms, a warm one "
        f"{first['warm_send']} ms"
        + (
            " (over HTTPS: the first includes the TLS handshakes).\n"
            if results.get("transport", {}).get("tls")
            else ". Against API Gateway each new socket also needs a TLS handshake, which "
            "this plain-HTTP run does not measure.\n"
        )
    )


def _section_sandbox(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    add = out.append
    sandbox = results.get("sandbox")
    if results.get("sandbox_error"):
        out.append(
            "## The whole chat through the sandbox\n\nThis run failed: "
            f"`{results['sandbox_error']}`.\n"
        )
    if sandbox:
        add("## The whole chat through the sandbox\n")
        rows = [
            [
                f"{int(n):,}",
                _spread(sandbox[n]["p50"], 1000.0, 1),
                _spread(sandbox[n]["p95"], 1000.0, 1),
                _spread(sandbox[n]["p99"], 1000.0, 1),
            ]
            for n in sorted(sandbox, key=int)
        ]
        add(
            "`python -m sandbox` on the synthesized template (the handler with its default "
            "settings, so the engine), real WebSocket clients in the measuring process: time "
            "from sending `sendPublic` until every member has received it; percentiles of "
            "each round, median over the rounds. With 20 messages a round (the chat's burst "
            "allows 10 per sender), p95 and p99 are both the round's slowest message. The "
            "sandbox, its functions and moto share this machine's two cores with the clients: "
            "these are the chat's local latencies, not AWS's.\n\n"
            + _table(["members", "p50 ms", "p95 ms", "p99 ms"], rows)
            + "\n"
        )
        if "sandbox" in images:
            add(f"![Sandbox end-to-end latency]({images['sandbox']})\n")


def _section_integration(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    fan = results["fanout"]
    add = out.append
    add("## How the chat uses the engine\n")
    add(
        "The engine is the functions' default (`fanoutEngine=socket`; `boto3` switches back "
        "to boto3's client on a thread pool). `lambda_src/chat/wiring.py` builds it once per "
        "execution environment with the function's own credentials (refreshed), "
        "`fanoutConcurrency` posts in flight (default 32, about what a 256 MB function's "
        "seventh of a vCPU keeps busy), 3 attempts per post, and the chat's metrics. Each "
        "request is signed by botocore's `SigV4Auth`; a unit test checks that the "
        "`Authorization` header is byte for byte the one boto3's own client computes for "
        "the same post. `is_gone` and `close` are signed the same way.\n"
    )
    add("## Beyond one invocation\n")
    rtt_ms = fan["rtt_seconds"] * 1000
    sharding = fan.get("sharding") or {}
    by_size = fan["by_size"]["ours"]["points"]
    shard_row = None
    if sharding:
        shard_size = next(iter(sharding.values()))["shard_size"]
        shard_row = by_size.get(str(shard_size))
    add(
        "One invocation on one vCPU posts about "
        f"{fan['huge']['posts_per_second']['median']:,.0f} frames a second, below the "
        "account's 10,000; at smaller memory sizes, proportionally fewer (above). So a "
        "broadcast to more than `fanoutShardSize` members (default 250) is split "
        "(`lambda_src/chat/sharding.py`): the chat function posts the first shard itself and "
        "invokes the fan-out worker function (`handler.fanout_handler`, the same code, "
        "`fanoutWorkerMemoryMb` = 1,769 MB: one vCPU each) for every other shard, all in "
        "parallel, and waits for their reports. Gone connections come back in the reports "
        "and are pruned as usual.\n"
    )
    add(
        "- **Synchronous on purpose.** The workers are invoked with `RequestResponse` from "
        "a pool of threads, not as `Event`s: the sender's acknowledgement must wait until "
        "every other member has the message (the ordering guarantee in docs/protocol.md), "
        "and Lambda retries a failed `Event` invocation, which would post its shard twice.\n"
        "- **Failures.** A throttled invocation (429, `TooManyRequestsException`: the worker "
        "did not run) is tried once more after a full-jitter wait of up to 0.5 s; a worker "
        "that could not be run at all (still throttled, missing, not allowed, the connection "
        "to Lambda never made) has its shard posted by the chat function itself. A worker "
        "that ran and failed, or whose answer was lost, may have posted part of its shard, so "
        "the shard is counted failed, not posted again: those members see the gap in `prev` "
        "at the next message and fetch `history`. The `FanoutShardFailures` alarm fires on "
        "any.\n"
        "- **The clock.** Every shard runs under the chat function's deadline (its remaining "
        "time less 1 s). The fan-out worker times out 3 s before the chat function (17 s by "
        "default), which reads its answer for 1 s longer; a shard whose paced start plus its "
        "posting time would end after the deadline is not started and counts as failed. "
        "`cdk synth` refuses a `maxRoomSize` whose last shard, starting at (N x posts per "
        "member - 2,000) / 5,000 s and posting at 3,500 a second, would not end 1 s before "
        "the worker's timeout: 100,000 members need `lambdaTimeoutSeconds` of at least 24. "
        "Pacing counts posts (frames), not recipients.\n"
        "- **Order.** A connection's frames always travel in one shard, in order.\n"
    )
    if sharding:
        rows = [
            [
                f"{int(n):,}",
                f"{f['workers']:,}",
                f"{f['max_request_bytes'] / 1024:,.0f} KB",
                _spread(f["caller_cpu_ms"], 1.0, 1),
            ]
            for n, f in sharding.items()
        ]
        add(
            "What sharding costs the chat function, measured (one core, as above): "
            "splitting the deliveries and writing each worker's request as the Invoke API's "
            "JSON body. A shared frame is written once per request, so a request stays far "
            "below the 6 MB limit of a synchronous invocation.\n\n"
            + _table(["N", "worker invocations", "largest request", "CPU ms"], rows)
            + "\n"
        )
    if shard_row is not None and sharding:
        from chat.settings import Settings  # noqa: PLC0415
        from chat.sharding import BURST_SECONDS  # noqa: PLC0415

        rate = Settings(table_name="", callback_url="").fanout_posts_per_second
        burst = rate * BURST_SECONDS
        shard_seconds = shard_row["seconds"]["median"]
        rows = []
        for n in sharding:
            last_start = max(0.0, (int(n) - burst) / rate)
            rows.append(
                [
                    f"{int(n):,}",
                    f"{shard_seconds:.2f}",
                    f"{last_start:.1f}",
                    f"{int(n) / 10_000:.1f}",
                    f"{last_start + shard_seconds:.1f}",
                ]
            )
        add(
            "What a sharded broadcast takes, as a model from the figures above (not "
            "measured end to end: this machine has two cores, one for the measured process "
            "and one for the stand-ins, so parallel workers cannot be timed here). Each "
            f"shard is a broadcast to {shard_size:,} at k = {results['chosen_k']} "
            f"({shard_seconds:.2f} s measured, {rtt_ms:.0f} ms per post). Shards are paced "
            f"(`fanoutPostsPerSecond`, default {rate:,}: half the account's 10,000, which "
            "inbound messages and other APIs share): they start at once within a burst of "
            f"{burst:,.0f} posts, then as the rate allows, so the broadcast ends one shard "
            "(plus an Invoke round trip, not measured here) after its last shard starts. "
            "Unpaced, hundreds of workers at once would meet API Gateway's 429s faster than "
            "three short retries absorb them.\n\n"
            + _table(
                [
                    "N",
                    "one shard s",
                    "last shard starts at s",
                    "account ceiling s",
                    "broadcast s (model)",
                ],
                rows,
            )
            + "\n"
        )
    cpu_ms = fan["huge"]["cpu_ms_per_recipient"]["median"]
    if sharding:
        small = shard_size * cpu_ms / 1000 * ONE_VCPU_MB / 256
        big = 1000 * cpu_ms / 1000 * ONE_VCPU_MB / 256
        add(
            f"Why shards of {shard_size:,} by default: the chat function keeps the first "
            "shard, and at its default 256 MB it has about a seventh of a vCPU, so its own "
            f"posts cost {cpu_ms:.3f} ms times 1,769/256 of CPU each (the measured CPU per "
            f"recipient, scaled): {small:.2f} s for a shard of {shard_size:,}, against "
            f"{big:.2f} s for 1,000. The workers have a whole vCPU each. A worker "
            "invocation costs $0.20 per million requests plus its GB-seconds (1.769 GB for "
            "a fraction of a second): far below the API Gateway messages of the shard it "
            "posts ($1.00 per million). With a bigger `lambdaMemoryMb` the chat function "
            "can keep a bigger shard.\n"
        )
    add(
        "The end-to-end behaviour is tested through the sandbox, which runs the worker from "
        "the template behind an emulated Lambda Invoke API "
        "(`tests/e2e/test_sharded_fanout.py`, docs/sandbox.md items 52-57).\n"
    )


def _section_runtime(results: dict[str, Any], images: dict[str, str], out: list[str]) -> None:
    add = out.append
    add("## Run time\n")
    rows = [[name, f"{seconds:.0f}"] for name, seconds in results["timings"].items()]
    add(_table(["part", "s"], rows) + "\n")


def _transport_words(results: dict[str, Any]) -> str:
    transport = results.get("transport", {})
    if not transport.get("tls"):
        return "plain HTTP (`python -m bench --plain-http`): no TLS is measured"
    return (
        f"HTTPS as API Gateway ({transport.get('version', 'TLS')}, "
        f"{transport.get('cipher', '')}; a certificate for 127.0.0.1, RSA 2048, sent with an "
        "intermediate, from a root CA `trustme` makes for the run, which the measured clients "
        "trust through `AWS_CA_BUNDLE`, urllib3 and aiohttp through `ca_certs`)"
    )


def render(results: dict[str, Any], images: dict[str, str]) -> str:
    """The whole document, section by section."""
    out: list[str] = []
    m = results["machine"]
    add = out.append
    fan = results["fanout"]
    rtt_ms = fan["rtt_seconds"] * 1000
    add("# Performance: fan-out to big rooms\n")
    add(
        "Generated by `make bench` (`python -m bench`"
        + (" --quick" if results["quick"] else "")
        + f") on {m['date_utc']} UTC in {results['timings']['total']:.0f} s. Machine: "
        f"{m['cpu_model']} ({m['arch']}, {m['cores']} cores, shared), Linux {m['kernel']}, "
        f"{m['implementation']} {m['python']}. Every figure is the median of "
        f"{results['runs']} runs, with the min-max in brackets; the raw figures are in "
        "`bench/results/latest.json`.\n"
    )
    add(
        "How it was measured: the measured process is pinned to one core (a Lambda function "
        "at 1,769 MB has about one vCPU); the @connections stand-in "
        "(`sandbox/connections_standin.py`), the embedded moto DynamoDB and the sandbox run "
        "in other processes on the other core, so their CPU is not counted as ours. The "
        f"stand-in answers every post after {rtt_ms:.0f} ms (standing in for API Gateway's "
        f"round trip), over {_transport_words(results)}. CPU is this process's user + "
        "system time during one broadcast, divided "
        "by the recipients; warm-up broadcasts first open the connections, as in a warm "
        "execution environment. These are this machine's figures against local stand-ins, "
        "not AWS latencies: read them as the cost of our code and the shape of the scaling. "
        "A Graviton vCPU is not this core; the ratios between engines are what carries over.\n"
    )

    _section_summary(results, images, out)
    _section_candidates(results, images, out)
    _section_handshakes(results, images, out)
    _section_profile(results, images, out)
    _section_broadcast(results, images, out)
    _section_huge(results, images, out)
    _section_memory(results, images, out)
    _section_frames(results, images, out)
    _section_units(results, images, out)
    _section_rooms_units(results, images, out)
    _section_consistency(results, images, out)
    _section_cost(results, images, out)
    _section_cold(results, images, out)
    _section_sandbox(results, images, out)
    _section_integration(results, images, out)
    _section_runtime(results, images, out)
    return "\n".join(out)
