"""Judging a claim over seeds: mean, 95% t-interval, and a verdict. Pure functions.

A verdict's `label` is kind-neutral (``reproduced`` = the claim is satisfied); :func:`word` turns
it into what it means for the claim's kind: a replication is *reproduced*, an exact claim *holds*,
a target is *met*. A claim judged on its negative control should come out ``not reproduced``:
:func:`control_word` says "effect vanished" for that and "effect persists" when it does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from alignlab.core.registry import KINDS, Claim, NotObserved

VerdictLabel = Literal["reproduced", "not reproduced", "inconclusive", "not measured"]
REPRODUCED: VerdictLabel = "reproduced"
NOT_REPRODUCED: VerdictLabel = "not reproduced"
INCONCLUSIVE: VerdictLabel = "inconclusive"
NOT_MEASURED: VerdictLabel = "not measured"
LABELS: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED)
MIN_SEEDS = 2
CONFIDENCE = 0.95

WORDS: dict[str, dict[str, str]] = {
    "replication": {REPRODUCED: "reproduced", NOT_REPRODUCED: "not reproduced"},
    "exact": {REPRODUCED: "holds", NOT_REPRODUCED: "fails"},
    "target": {REPRODUCED: "met", NOT_REPRODUCED: "not met"},
}
CONTROL_WORDS = {REPRODUCED: "effect persists", NOT_REPRODUCED: "effect vanished"}
Value = float | NotObserved | None
"""One run's value of a metric: a number, NotObserved, or None when the run did not return it."""


def word(kind: str, label: str) -> str:
    """The verdict as a word for a claim of `kind`: reproduced / holds / met, and their negations."""
    return WORDS.get(kind, WORDS["replication"]).get(label, label)


def control_word(label: str) -> str:
    """A control's verdict as a word: 'effect vanished' (good) or 'effect persists' (measures nothing)."""
    return CONTROL_WORDS.get(label, label)


def summarize(entries: Iterable[tuple[str, str, str | None]]) -> str:
    """One line over ``(kind, label, control label or None)`` triples, counting per kind.

    e.g. ``2 of 3 replications reproduced (1 not reproduced); exact: 1 holds, 0 fails;
    controls: 3 of 3 effects vanished``. Only replications count as reproduced.
    """
    items = list(entries)
    parts = []
    for kind in KINDS:
        labels = [label for k, label, _ in items if k == kind]
        if not labels:
            continue
        yes, no = labels.count(REPRODUCED), labels.count(NOT_REPRODUCED)
        others = ", ".join(
            f"{labels.count(label)} {label}" for label in (INCONCLUSIVE, NOT_MEASURED) if labels.count(label)
        )
        if kind == "replication":
            rest = ", ".join(x for x in [f"{no} not reproduced" if no else "", others] if x)
            parts.append(
                f"{yes} of {len(labels)} replication{'s' if len(labels) != 1 else ''} reproduced"
                + (f" ({rest})" if rest else "")
            )
        else:
            head = "exact" if kind == "exact" else "targets"
            words = [f"{yes} {word(kind, REPRODUCED)}", f"{no} {word(kind, NOT_REPRODUCED)}", others]
            parts.append(f"{head}: {', '.join(x for x in words if x)}")
    controls = [c for _, _, c in items if c is not None]
    if controls:
        persists = controls.count(REPRODUCED)
        unclear = len(controls) - persists - controls.count(NOT_REPRODUCED)
        parts.append(
            f"controls: {controls.count(NOT_REPRODUCED)} of {len(controls)} effects vanished"
            + (f", {persists} EFFECT PERSISTS" if persists else "")
            + (f", {unclear} inconclusive or not measured" if unclear else "")
        )
    return "; ".join(parts) or "no claims judged"


# Two-sided 95% Student-t critical values t_{0.975, df} for df = 1..30.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """The outcome of judging one claim: label, the interval it rests on, and why.

    `label` is one of :data:`LABELS`, the same for every claim kind; use :func:`word` to show it.
    """

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


def judge(claim: Claim, values: Sequence[Value]) -> Verdict:
    """Judge `claim` on one metric value per seed.

    Reproduced when the whole 95% interval of the mean lies on the claimed side, not
    reproduced when it lies wholly on the other side, inconclusive when it straddles the
    threshold or fewer than two seeds ran. A seed where the phenomenon was not observed
    (:class:`NotObserved`) makes the claim not reproduced; NaN/inf are numerical errors and
    make it inconclusive; a metric no run returned is ``not measured``.
    """
    n = len(values)
    if n == 0:
        return Verdict(INCONCLUSIVE, math.nan, math.nan, math.nan, 0, "no finished runs")
    missing = sum(1 for v in values if v is None)
    if missing == n:
        return Verdict(
            NOT_MEASURED, math.nan, math.nan, math.nan, n,
            f"{claim.metric} was not returned by any of the {n} runs (this config does not measure it)",
        )  # fmt: skip
    unseen = [v.reason for v in values if isinstance(v, NotObserved)]
    nums = [float(v) for v in values if v is not None and not isinstance(v, NotObserved)]
    bad = sum(1 for v in nums if not math.isfinite(v))
    extra = "".join([
        f"; {claim.metric} missing in {missing} of {n} runs" if missing else "",
        f"; NaN/inf in {bad} of {n} runs (numerical error)" if bad else "",
    ])  # fmt: skip
    if unseen:
        reasons = list(dict.fromkeys(unseen))
        why = reasons[0] + (f" (and {len(reasons) - 1} other reasons)" if len(reasons) > 1 else "")
        return Verdict(
            NOT_REPRODUCED, math.nan, math.nan, math.nan, n,
            f"not observed in {len(unseen)} of {n} runs: {why}{extra}",
        )  # fmt: skip
    if missing:
        return Verdict(INCONCLUSIVE, math.nan, math.nan, math.nan, n, extra[2:])
    if bad:
        return Verdict(
            INCONCLUSIVE, math.nan, math.nan, math.nan, n,
            f"metric {claim.metric} is NaN or infinite in {bad} of {n} runs (numerical error)",
        )  # fmt: skip
    mean, lo, hi = confidence_interval(nums)
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
