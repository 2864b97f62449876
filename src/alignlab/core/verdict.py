"""Judging a claim over seeds: mean, 95% t-interval, and a three-way verdict. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from alignlab.core.registry import Claim

VerdictLabel = Literal["reproduced", "not reproduced", "inconclusive"]
REPRODUCED: VerdictLabel = "reproduced"
NOT_REPRODUCED: VerdictLabel = "not reproduced"
INCONCLUSIVE: VerdictLabel = "inconclusive"
MIN_SEEDS = 2
CONFIDENCE = 0.95

# Two-sided 95% Student-t critical values t_{0.975, df} for df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The outcome of judging one claim: label, the interval it rests on, and why."""

    label: VerdictLabel
    mean: float
    lo: float
    hi: float
    n: int
    reason: str


def t_critical(df: int) -> float:
    """Two-sided 95% Student-t critical value for `df` degrees of freedom."""
    if df < 1:
        raise ValueError("df must be >= 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    # Cornish-Fisher expansion: error < 1e-4 for df > 30.
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def confidence_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of `values` (needs at least two finite values)."""
    n = len(values)
    lowest, highest = min(values), max(values)
    if lowest == highest:  # identical seeds: the exact value, free of rounding in the mean
        return lowest, lowest, lowest
    mean = min(max(math.fsum(values) / n, lowest), highest)
    if n < 2:
        return mean, mean, mean
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = t_critical(n - 1) * math.sqrt(var / n)
    return mean, mean - half, mean + half


def judge(claim: Claim, values: Sequence[float]) -> Verdict:
    """Judge `claim` on one metric value per seed.

    Reproduced when the whole 95% interval of the mean lies on the claimed side, not
    reproduced when it lies wholly on the other side, inconclusive when it straddles the
    threshold, when fewer than two seeds ran, or when any value is NaN/inf.
    """
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return Verdict(INCONCLUSIVE, math.nan, math.nan, math.nan, 0, "no finished runs")
    bad = sum(1 for v in vals if not math.isfinite(v))
    if bad:
        return Verdict(
            INCONCLUSIVE, math.nan, math.nan, math.nan, n,
            f"{claim.metric} is NaN or infinite in {bad} of {n} runs",
        )  # fmt: skip
    mean, lo, hi = confidence_interval(vals)
    if n < MIN_SEEDS:
        return Verdict(
            INCONCLUSIVE, mean, lo, hi, n,
            f"too few seeds (n={n}); run with --seeds {MIN_SEEDS} or more",
        )  # fmt: skip
    label, reason = _compare(claim, lo, hi)
    return Verdict(label, mean, lo, hi, n, reason)


def _compare(claim: Claim, lo: float, hi: float) -> tuple[VerdictLabel, str]:
    v, op = claim.value, claim.op
    interval = f"95% CI [{lo:.4g}, {hi:.4g}]"
    if op == "==":
        a, b = v - claim.tol, v + claim.tol
        if a <= lo and hi <= b:
            return REPRODUCED, f"{interval} inside [{a:.4g}, {b:.4g}]"
        if hi < a or lo > b:
            return NOT_REPRODUCED, f"{interval} outside [{a:.4g}, {b:.4g}]"
        return INCONCLUSIVE, f"{interval} overlaps the edge of [{a:.4g}, {b:.4g}]"
    holds = {">=": lo >= v, ">": lo > v, "<=": hi <= v, "<": hi < v}[op]
    fails = {">=": hi < v, ">": hi <= v, "<=": lo > v, "<": lo >= v}[op]
    if holds:
        return REPRODUCED, f"{interval} {op} {v:g}"
    if fails:
        return NOT_REPRODUCED, f"{interval} on the wrong side of {v:g}"
    return INCONCLUSIVE, f"{interval} straddles {v:g}"
