"""The plots of ``report.html``: matplotlib figures rendered as SVG and inlined (no scripts, no
external resources). Every plot has a title, labelled axes with units and, where it shows more
than one series, a legend.

Text stays text (``svg.fonttype: none``), so it is searchable, accessible and escaped by
matplotlib's SVG writer; ``$`` is escaped so a name never turns into mathtext. Element ids are
prefixed with the plot's name, so several plots can live in one HTML document; the title and
the axis labels carry the ids ``<plot>-title``, ``<plot>-xlabel`` and ``<plot>-ylabel``.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from html import escape
from typing import Any

#: verdict colours, shared with the HTML badges
COLORS = {
    "caught": "#1a7f37",
    "clean": "#1a7f37",
    "unalerted": "#bf8700",
    "silent": "#cf222e",
    "false_alarm": "#8250df",
    "gate_crashed": "#953800",
    "not_reached": "#6e7781",
    "error": "#57606a",
    "not_applied": "#8c959f",
}
#: the order verdicts are stacked and listed in
VERDICT_ORDER = (
    "caught",
    "unalerted",
    "silent",
    "gate_crashed",
    "not_reached",
    "not_applied",
    "error",
    "clean",
    "false_alarm",
)
WIDTH_IN = 9.0  # 648 pt: fits the 1300 px page with room to spare
_RC: Any = {  # matplotlib types rcParams keys as Literals
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 11,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#d0d7de",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def label(text: Any, limit: int = 48) -> str:
    """A data value as plot text: one line, at most ``limit`` characters, ``$`` escaped."""
    line = " ".join(str(text).split())
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    return line.replace("$", r"\$")


def _figure(height_in: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(WIDTH_IN, height_in), layout="constrained")


def _decorate(ax: Any, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, loc="left").set_gid("title")
    ax.set_xlabel(xlabel).set_gid("xlabel")
    ax.set_ylabel(ylabel).set_gid("ylabel")
    ax.set_axisbelow(True)
    ax.patch.set_gid("plotarea")


def _legend(ax: Any, title: str | None = None) -> None:
    """The legend beside the plot area, never over the data."""
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def render(fig: Any, name: str, title: str) -> str:
    """The figure as an inline ``<svg>`` (prologue and metadata removed, ids prefixed with
    ``name``), labelled for screen readers with ``title``."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{name}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{name}-{m.group(1)})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{name}-{m.group(1)}"', svg)
    svg = svg.replace("*{stroke-linejoin", "svg *{stroke-linejoin", 1)
    head = svg.index(">") + 1
    root = svg[:head].replace(
        "<svg ", f"<svg class='plot' role='img' aria-label='{escape(title, quote=True)}' ", 1
    )
    return f"{root}<title>{escape(title)}</title>{svg[head:]}"


def _with_rc(build: Any) -> Any:
    import matplotlib

    with matplotlib.rc_context(_RC):
        return build()


# ------------------------------------------------------------------------------------ plots
def verdicts_svg(runs: list[dict[str, Any]]) -> str:
    """Stacked horizontal bars: fault experiments per verdict, one bar per orchestrator."""
    faults = [r for r in runs if not r.get("control")]
    if not faults:
        return ""
    orchs = sorted({str(r.get("orchestrator")) for r in faults})
    present = [v for v in VERDICT_ORDER if any(r["verdict"] == v for r in faults)]
    present += sorted({r["verdict"] for r in faults} - set(present))
    title = "Verdicts of the fault experiments per orchestrator"

    def build() -> Any:
        fig = _figure(0.9 + 0.42 * len(orchs))
        ax = fig.add_subplot()
        left = [0] * len(orchs)
        for verdict in present:
            counts = [
                sum(1 for r in faults if r["orchestrator"] == o and r["verdict"] == verdict)
                for o in orchs
            ]
            bars = ax.barh(
                [label(o) for o in orchs],
                counts,
                left=left,
                color=COLORS.get(verdict, "#57606a"),
                label=verdict,
                height=0.6,
            )
            ax.bar_label(
                bars,
                labels=[str(c) if c else "" for c in counts],
                label_type="center",
                color="white",
                fontsize=8,
            )
            left = [a + b for a, b in zip(left, counts, strict=True)]
        _decorate(ax, title, "fault experiments (count)", "orchestrator")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", visible=False)
        _legend(ax, "verdict")
        return fig

    return render(_with_rc(build), "verdicts", title)


def trend_svg(points: list[dict[str, Any]]) -> str:
    """Resilience score (0-100) of each suite run over time; the newest point is this suite."""
    if not points:
        return ""
    title = "Resilience score per suite run"

    def build() -> Any:
        fig = _figure(3.0)
        ax = fig.add_subplot()
        times = [_time(p.get("at")) for p in points]
        use_time = all(t is not None for t in times)
        xs: list[Any] = times if use_time else list(range(1, len(points) + 1))
        ys = [float(p["score"]) for p in points]
        (line,) = ax.plot(xs, ys, marker="o", color="#0969da", label="resilience score")
        line.set_gid("score-line")
        (current,) = ax.plot(
            xs[-1:], ys[-1:], marker="o", markersize=9, linestyle="", color="#cf222e"
        )
        current.set_label("this suite")
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:g}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center")
        ax.set_ylim(0, 105)
        if use_time:
            import matplotlib.dates as mdates

            locator = mdates.AutoDateLocator(maxticks=8)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            if len(xs) == 1:
                ax.set_xlim(xs[0] - dt.timedelta(days=1), xs[0] + dt.timedelta(days=1))
        else:
            ax.set_xticks(xs)
        _decorate(
            ax,
            title,
            "suite run start (UTC)" if use_time else "suite run (oldest first)",
            "resilience score (0-100)",
        )
        _legend(ax)
        return fig

    return render(_with_rc(build), "trend", title)


def latency_svg(runs: list[dict[str, Any]]) -> str:
    """Seconds from the fault to the final failure (detection) and to the alert, per run."""
    rows = [
        r
        for r in runs
        if r.get("detection_latency_s") is not None or r.get("alert_latency_s") is not None
    ]
    if not rows:
        return ""
    title = "Detection and alert latency (from the fault being applied)"

    def build() -> Any:
        fig = _figure(1.1 + 0.3 * len(rows))
        ax = fig.add_subplot()
        names = [label(f"{r['orchestrator']}: {r['experiment']}", 40) for r in rows]
        pos = list(range(len(rows)))
        height = 0.38
        det = [_num(r.get("detection_latency_s")) for r in rows]
        alr = [_num(r.get("alert_latency_s")) for r in rows]
        b1 = ax.barh([p - height / 2 for p in pos], det, height, color="#0969da", label="detection")
        b2 = ax.barh(
            [p + height / 2 for p in pos], alr, height, color="#bf8700", label="alert delivered"
        )
        for bars, values in ((b1, det), (b2, alr)):
            ax.bar_label(
                bars, labels=[f"{v:.2f}" if v else "" for v in values], padding=2, fontsize=7
            )
        ax.set_yticks(pos, names)
        ax.invert_yaxis()
        ax.margins(x=0.12)
        ax.grid(axis="y", visible=False)
        _decorate(ax, title, "seconds after the fault (s)", "orchestrator: experiment")
        _legend(ax)
        return fig

    return render(_with_rc(build), "latency", title)


def sweep_svg(points: list[dict[str, Any]], experiment: str, parameter: str = "fraction") -> str:
    """Verdict at each intensity (log scale), one row per orchestrator, coloured by verdict."""
    if not points:
        return ""
    title = f"Intensity sweep of {label(experiment)}"

    def build() -> Any:
        fig = _figure(1.3 + 0.45 * len({p["orchestrator"] for p in points}))
        ax = fig.add_subplot()
        orchs = sorted({str(p["orchestrator"]) for p in points})
        positive = all(float(p["intensity"]) > 0 for p in points)
        for verdict in sorted({p["verdict"] for p in points}, key=_verdict_rank):
            chosen = [p for p in points if p["verdict"] == verdict]
            ax.scatter(
                [float(p["intensity"]) for p in chosen],
                [orchs.index(str(p["orchestrator"])) for p in chosen],
                s=70,
                color=COLORS.get(verdict, "#57606a"),
                label=verdict,
                zorder=3,
            )
        values = sorted({float(p["intensity"]) for p in points})
        if positive:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.set_yticks(range(len(orchs)), [label(o) for o in orchs])
        ax.set_ylim(-0.6, len(orchs) - 0.4)
        ax.grid(axis="y", visible=False)
        _decorate(
            ax,
            title,
            f"fault intensity: {label(parameter)}"
            + (" (share of rows)" if parameter == "fraction" else "")
            + (", log scale" if positive else ""),
            "orchestrator",
        )
        _legend(ax, "verdict")
        return fig

    return render(_with_rc(build), "sweep", title)


def impact_svg(
    impact: dict[str, Any], minimum_detected: dict[str, float | None], experiment: str
) -> str:
    """The trained model's metric drop per intensity (a line; a cross where no model could be
    trained), with a dashed line at the intensity from which each orchestrator's gate detects."""
    points = impact.get("points") or []
    if not points:
        return ""
    metric = str(impact.get("metric") or "metric")
    title = f"Model {label(metric)} drop under {label(experiment)}"

    def build() -> Any:
        fig = _figure(3.0)
        ax = fig.add_subplot()
        positive = all(float(p["intensity"]) > 0 for p in points)
        trained = [p for p in points if p.get("drop") is not None]
        failed = [p for p in points if p.get("drop") is None]
        ax.plot(
            [float(p["intensity"]) for p in trained],
            [float(p["drop"]) for p in trained],
            marker="o",
            color="#0969da",
            label=f"{label(metric)} drop on a clean holdout",
            zorder=3,
        )
        top = max([float(p["drop"]) for p in trained] + [0.01])
        if failed:
            ax.scatter(
                [float(p["intensity"]) for p in failed],
                [top] * len(failed),
                marker="x",
                s=60,
                color=COLORS["silent"],
                label="no model (training failed)",
                zorder=3,
            )
        ax.axhline(0, color="#57606a", linewidth=0.8)
        for i, (orch, minimum) in enumerate(sorted(minimum_detected.items())):
            if minimum is not None:
                ax.axvline(
                    minimum,
                    linestyle="--",
                    color=_SERIES[i % len(_SERIES)],
                    label=f"{label(orch)}: gate detects from {minimum:g}",
                )
        values = sorted({float(p["intensity"]) for p in points})
        if positive:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(values, [f"{v:g}" for v in values])
        parameter = str(impact.get("parameter") or "fraction")
        _decorate(
            ax,
            title,
            f"fault intensity: {label(parameter)}" + (", log scale" if positive else ""),
            f"{label(metric)} drop vs clean model (baseline {impact.get('baseline')})",
        )
        _legend(ax)
        return fig

    return render(_with_rc(build), "impact", title)


_SERIES = ("#8250df", "#bf8700", "#1a7f37", "#cf222e")


def _verdict_rank(verdict: str) -> int:
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def _num(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# ------------------------------------------------------------- building blocks for other reports
#: the report's matplotlib style, its figure factory, axis decoration and legend placement, for
#: other report sections (the game day's post-mortem) that must look the same
STYLE = _RC
new_figure = _figure
decorate = _decorate
legend_beside = _legend
