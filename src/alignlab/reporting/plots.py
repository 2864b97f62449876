"""Learning curves as small inline SVG line charts: every seed thin, the mean across seeds bold.

A hand-written SVG keeps the report small, fast and offline: no fonts or scripts are embedded,
text inherits the page's CSS, and every label is HTML-escaped here. Long series are reduced
to at most ``MAX_POINTS`` points with Largest-Triangle-Three-Buckets (Steinarsson 2013,
"Downsampling Time Series for Visual Representation"), which keeps peaks and dips visible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alignlab.reporting._format import esc

MAX_POINTS = 500
WIDTH, HEIGHT = 400, 232
LEFT, RIGHT, TOP, BOTTOM = 50, 12, 26, 30


@dataclass(frozen=True)
class Series:
    """One seed's values of one time-series key: `y` may hold NaN where the run logged NaN/inf."""

    label: str
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Chart:
    """A rendered chart: its SVG (None when nothing finite could be drawn) and notes for the caption."""

    key: str
    svg: str | None
    notes: tuple[str, ...]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def series_by_key(runs: Iterable[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, list[Series]]:
    """Split ``(label, timeseries rows)`` pairs into per-key series, keys in first-seen order.

    The x value is the row's ``step`` (the row index when it has none); numeric keys and
    None (a NaN logged by ``ctx.log``) are kept, strings and booleans are skipped.
    """
    out: dict[str, list[Series]] = {}
    for label, rows in runs:
        cols: dict[str, tuple[list[float], list[float]]] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                continue
            step = _number(row.get("step"))
            x = step if step is not None and math.isfinite(step) else float(i)
            for key, value in row.items():
                if key == "step":
                    continue
                y = math.nan if value is None else _number(value)
                if y is None:
                    continue
                xs, ys = cols.setdefault(str(key), ([], []))
                xs.append(x)
                ys.append(y)
        for key, (xs, ys) in cols.items():
            out.setdefault(key, []).append(Series(label, np.asarray(xs, float), np.asarray(ys, float)))
    return out


def downsample(x: np.ndarray, y: np.ndarray, n_out: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `n_out` points of (x, y) chosen by Largest-Triangle-Three-Buckets."""
    n = len(x)
    if n <= n_out or n_out < 3:
        return x, y
    bucket = (n - 2) / (n_out - 2)
    keep = np.empty(n_out, dtype=int)
    keep[0], keep[-1] = 0, n - 1
    a = 0
    for i in range(n_out - 2):
        start, end = int(i * bucket) + 1, int((i + 1) * bucket) + 1
        nxt_end = min(int((i + 2) * bucket) + 1, n)
        if end < nxt_end:
            cx, cy = x[end:nxt_end].mean(), y[end:nxt_end].mean()
        else:
            cx, cy = x[-1], y[-1]
        area = np.abs((x[a] - cx) * (y[start:end] - y[a]) - (x[a] - x[start:end]) * (cy - y[a]))
        a = start + int(np.argmax(area))
        keep[i + 1] = a
    return x[keep], y[keep]


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray] | None:
    """Mean across seeds on the steps all seeds cover (linear interpolation between logged steps)."""
    if len(curves) < 2:
        return None
    lo, hi = max(x[0] for x, _ in curves), min(x[-1] for x, _ in curves)
    if lo > hi:
        return None
    grid = np.unique(np.concatenate([x[(x >= lo) & (x <= hi)] for x, _ in curves]))
    if len(grid) > 4 * MAX_POINTS:
        grid = np.linspace(lo, hi, 2 * MAX_POINTS)
    mean = np.mean([np.interp(grid, x, y) for x, y in curves], axis=0)
    return downsample(grid, mean)


def nice_step(span: float, target: int = 5) -> float:
    """A round tick spacing (1, 2, 2.5 or 5 times a power of ten) giving about `target` ticks."""
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))


def _decimals(step: float) -> int:
    for d in range(12):
        if abs(round(step, d) - step) <= abs(step) * 1e-9:
            return d
    return 12


def tick_labels(ticks: Sequence[float], step: float) -> list[str]:
    """Short tick labels: 20k / 1.5M for big numbers, scientific for tiny ones."""
    big = max(abs(t) for t in ticks) if ticks else 0.0
    if 0 < big < 1e-3:
        return [f"{t:.2g}" if abs(t) > step * 1e-6 else "0" for t in ticks]
    scale, suffix = next(((s, u) for s, u in ((1e9, "G"), (1e6, "M"), (1e3, "k")) if big >= 10 * s), (1, ""))
    d = _decimals(step / scale)
    labels = []
    for t in ticks:
        if abs(t) <= step * 1e-9:
            labels.append("0")
        else:
            labels.append(f"{t / scale:.{d}f}{suffix}".replace("-", "−"))
    return labels


def _ticks(lo: float, hi: float, expand: bool) -> tuple[list[float], float, float, float]:
    step = nice_step(hi - lo)
    if expand:
        lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [first + k * step for k in range(count)], step, lo, hi


def _points(x: np.ndarray, y: np.ndarray, sx: Any, sy: Any) -> str:
    return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(sx(x), sy(y), strict=True))


def line_chart(key: str, series: Sequence[Series], x_label: str = "step") -> Chart:
    """A learning-curve chart of one key: one thin line per seed, the mean across seeds in bold."""
    notes: list[str] = []
    curves: list[tuple[str, np.ndarray, np.ndarray]] = []
    dropped = 0
    for s in series:
        ok = np.isfinite(s.x) & np.isfinite(s.y)
        dropped += int((~ok).sum())
        if ok.any():
            order = np.argsort(s.x[ok], kind="stable")
            curves.append((s.label, s.x[ok][order], s.y[ok][order]))
    if dropped:
        notes.append(f"{dropped} NaN/inf point{'s' if dropped != 1 else ''} left out")
    if not curves:
        return Chart(key, None, (*notes, "no finite values to plot"))
    longest = max(len(x) for _, x, _ in curves)
    if longest > MAX_POINTS:
        notes.append(f"{longest:,} points per seed drawn as {MAX_POINTS}")
    mean = mean_curve([(x, y) for _, x, y in curves])
    drawn = [(label, *downsample(x, y)) for label, x, y in curves]
    xs = np.concatenate([x for _, x, _ in drawn])
    ys = np.concatenate([y for _, _, y in drawn] + ([mean[1]] if mean else []))
    x0, x1, y0, y1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    if not (math.isfinite(x1 - x0) and math.isfinite(y1 - y0)):
        return Chart(key, None, (*notes, "values too large to plot"))
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 == y0:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    xt, xstep, x0, x1 = _ticks(x0, x1, expand=False)
    yt, ystep, y0, y1 = _ticks(y0, y1, expand=True)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(v: Any) -> Any:
        return LEFT + (np.asarray(v, float) - x0) / (x1 - x0) * pw

    def sy(v: Any) -> Any:
        return TOP + (1 - (np.asarray(v, float) - y0) / (y1 - y0)) * ph

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{esc(key)} against {esc(x_label)}">',
        f"<title>{esc(key)}</title>",
    ]
    bottom = TOP + ph
    for t, lab in zip(yt, tick_labels(yt, ystep), strict=True):
        y = float(sy(t))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 5}" y="{y + 3.5:.1f}" text-anchor="end">{lab}</text>')
    for t, lab in zip(xt, tick_labels(xt, xstep), strict=True):
        x = float(sx(t))
        parts.append(f'<line class="tickmark" x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{lab}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{LEFT + pw}" y1="{bottom}" y2="{bottom}"/>')
    parts.append(
        f'<text class="axis-label" x="{LEFT + pw}" y="{HEIGHT - 2}" text-anchor="end">{esc(x_label)}</text>'
    )
    solo = len(drawn) == 1
    for label, x, y in drawn:
        cls = "seed solo" if solo else "seed"
        if len(x) == 1:
            parts.append(
                f'<circle class="{cls} dot" cx="{float(sx(x[0])):.1f}" cy="{float(sy(y[0])):.1f}" r="2.5">'
                f"<title>{esc(label)}</title></circle>"
            )
        else:
            points = _points(x, y, sx, sy)
            parts.append(f'<polyline class="{cls}" points="{points}"><title>{esc(label)}</title></polyline>')
    if mean is not None:
        mx, my = mean
        parts.append(
            f'<polyline class="mean" points="{_points(mx, my, sx, sy)}">'
            f"<title>mean of {len(drawn)} seeds</title></polyline>"
        )
        parts.append(_legend(len(drawn)))
    parts.append("</svg>")
    return Chart(key, "".join(parts), tuple(notes))


def _legend(n_seeds: int) -> str:
    right = WIDTH - RIGHT
    return (
        f'<g class="legend"><line class="mean" x1="{right - 150}" x2="{right - 136}" y1="11" y2="11"/>'
        f'<text x="{right - 132}" y="14">mean</text>'
        f'<line class="seed" x1="{right - 92}" x2="{right - 78}" y1="11" y2="11"/>'
        f'<text x="{right - 74}" y="14">{n_seeds} seeds</text></g>'
    )
