"""The report's plots, drawn with matplotlib into inline SVG.

matplotlib's object API (``Figure``, no pyplot) needs no display and no
global backend choice, and SVG embeds in the page as text: the report opens
offline, with no JavaScript to fail. Collections of thousands of marks are
rasterised inside the SVG, which keeps a 10 000-point page small and quick.
"""
from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .table import Table

MAX_METRICS = 8
RASTER_ABOVE = 500
_MIB = 1024 ** 2
_STATE_COLOURS = {"COMPLETED": "#4c9a2a", "FAILED": "#c0392b", "TIMEOUT": "#e67e22",
                  "OUT_OF_MEMORY": "#8e44ad", "CANCELLED": "#7f8c8d"}


@dataclass
class Plot:
    title: str
    svg: str


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float = 6.4, height: float = 4.0):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return re.sub(r"^.*?(?=<svg)", "", text, count=1, flags=re.S)


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def numeric_metrics(table: Table) -> list[str]:
    return [m for m in table.metrics
            if any(_number(r.metrics.get(m)) is not None for r in table.rows)][:MAX_METRICS]


def all_plots(table: Table) -> list[Plot]:
    plots: list[Plot] = []
    makers: list[Callable[[Table], list[Plot]]] = [
        metric_plots, state_plot, usage_plots, timeline_plot]
    for make in makers:
        plots.extend(make(table))
    return plots


def metric_plots(table: Table) -> list[Plot]:
    params = [p for p in table.params
              if all(_number(r.params.get(p)) is not None for r in table.rows)]
    plots = []
    for metric in numeric_metrics(table):
        if len(params) == 2:
            plots.append(_heat_map(table, metric, params[0], params[1]))
        else:
            plots.extend(_lines(table, metric, p) for p in params)
    return plots


def _heat_map(table: Table, metric: str, px: str, py: str) -> Plot:
    import numpy as np
    xs = sorted({float(r.params[px]) for r in table.rows})
    ys = sorted({float(r.params[py]) for r in table.rows})
    sums = np.zeros((len(ys), len(xs)))
    counts = np.zeros((len(ys), len(xs)))
    failed: dict[tuple[int, int], str] = {}
    for r in table.rows:
        i, j = ys.index(float(r.params[py])), xs.index(float(r.params[px]))
        value = _number(r.metrics.get(metric))
        if value is not None:
            sums[i, j] += value
            counts[i, j] += 1
        if r.state != "COMPLETED":
            failed[(i, j)] = r.state
    with np.errstate(invalid="ignore"):
        grid = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    fig = _figure()
    ax = fig.add_subplot()
    ax.set_facecolor("#dddddd")  # no value: failed or missing
    image = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto",
                      cmap="viridis", interpolation="nearest")
    fig.colorbar(image, ax=ax, label=metric)
    _ticks(ax.set_xticks, ax.set_xticklabels, xs)
    _ticks(ax.set_yticks, ax.set_yticklabels, ys)
    for (i, j), state in list(failed.items())[:50]:
        ax.text(j, i, "✗ " + state, ha="center", va="center", color="#c0392b",
                fontsize=9, fontweight="bold",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#c0392b"})
    ax.set_xlabel(px)
    ax.set_ylabel(py)
    ax.set_title(f"{metric} over {px} × {py}")
    return Plot(f"{metric} over {px} and {py} (heat map; ✗ marks points that did not complete)",
                _svg(fig))


def _ticks(set_ticks, set_labels, values: list[float]) -> None:
    step = max(1, len(values) // 10)
    positions = list(range(0, len(values), step))
    set_ticks(positions)
    set_labels([f"{values[i]:g}" for i in positions])


def _lines(table: Table, metric: str, param: str) -> Plot:
    fig = _figure()
    ax = fig.add_subplot()
    cases = list(dict.fromkeys(r.case for r in table.rows))
    for case in cases:
        points = sorted((float(r.params[param]), _number(r.metrics.get(metric)))
                        for r in table.rows if r.case == case)
        xs = [x for x, y in points if y is not None]
        ys = [y for _, y in points if y is not None]
        ax.plot(xs, ys, marker="o", label=case or None)
        bad = [float(r.params[param]) for r in table.rows
               if r.case == case and r.state != "COMPLETED"]
        if bad:
            ax.plot(bad, [min(ys, default=0)] * len(bad), "x", color="#c0392b", markersize=10,
                    label="did not complete")
    ax.set_xlabel(param)
    ax.set_ylabel(metric)
    if len(cases) > 1 or any(r.state != "COMPLETED" for r in table.rows):
        ax.legend()
    ax.set_title(f"{metric} against {param}")
    return Plot(f"{metric} against {param}", _svg(fig))


def state_plot(table: Table) -> list[Plot]:
    counts: dict[str, int] = {}
    for r in table.rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    fig = _figure(5.0, 3.0)
    ax = fig.add_subplot()
    states = sorted(counts)
    bars = ax.bar(states, [counts[s] for s in states],
                  color=[_STATE_COLOURS.get(s, "#34495e") for s in states])
    ax.bar_label(bars)
    ax.set_ylabel("points")
    ax.set_title("points per state")
    return [Plot("Points per state", _svg(fig))]


def usage_plots(table: Table) -> list[Plot]:
    runtimes = [r.resources.elapsed_s for r in table.rows if r.resources.elapsed_s is not None]
    rss = [r.resources.max_rss_bytes / _MIB for r in table.rows
           if r.resources.max_rss_bytes is not None]
    limits = {r.resources.time_limit_s for r in table.rows if r.resources.time_limit_s}
    requests = {r.resources.req_mem_bytes / _MIB for r in table.rows
                if r.resources.req_mem_bytes}
    plots = []
    for title, values, marks, unit in (("runtime", runtimes, limits, "s"),
                                       ("MaxRSS", rss, requests, "MiB")):
        if not values:
            continue
        fig = _figure(5.0, 3.2)
        ax = fig.add_subplot()
        # One scale from 0 to past the limit: the gap between use and
        # request is what the plot is for.
        upper = max([*values, *marks]) * 1.05 or 1.0
        ax.hist(values, bins=[upper * i / 40 for i in range(41)], color="#2e86c1")
        for mark in sorted(marks)[:3]:
            ax.axvline(mark, color="#c0392b", linestyle="--", label=f"requested {mark:g} {unit}")
        if marks:
            ax.legend()
        ax.set_xlabel(f"{title} ({unit})")
        ax.set_ylabel("tasks")
        ax.set_title(f"{title} against the requested limit")
        plots.append(Plot(f"Distribution of {title} against the requested limit", _svg(fig)))
    return plots


def _when(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def timeline_plot(table: Table) -> list[Plot]:
    spans: dict[str, list[tuple[float, float, str]]] = {}
    timed = [(r, _when(r.start), _when(r.end)) for r in table.rows]
    timed = [(r, s, e) for r, s, e in timed if s and e]
    if not timed:
        return []
    origin = min(s for _, s, _ in timed)
    for r, s, e in timed:
        begin = (s - origin).total_seconds()
        spans.setdefault(r.node or "?", []).append(
            (begin, max((e - s).total_seconds(), 0.5), r.state))
    nodes = sorted(spans)
    fig = _figure(7.0, max(2.0, 0.6 * len(nodes) + 1.2))
    ax = fig.add_subplot()
    for i, node in enumerate(nodes):
        for state in sorted({s for _, _, s in spans[node]}):
            bars = [(b, w) for b, w, s in spans[node] if s == state]
            ax.broken_barh(bars, (i - 0.4, 0.8), facecolors=_STATE_COLOURS.get(state, "#34495e"),
                           edgecolors="white", linewidth=0.3, label=state,
                           rasterized=len(timed) > RASTER_ABOVE)
    ax.set_yticks(range(len(nodes)), nodes)
    ax.set_xlabel(f"seconds since the first start ({origin:%Y-%m-%d %H:%M:%S})")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper right")
    ax.set_title("task timeline per node")
    return [Plot("Timeline of tasks per node", _svg(fig))]

