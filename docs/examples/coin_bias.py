"""How sure can you be of a coin's bias after n flips? Hoeffding's bound versus the textbook interval.

Flip a coin with heads-probability p n times and estimate p by the fraction of heads p̂.
Hoeffding (1963, Thm 1) bounds the miss probability for *any* p:
P(|p̂ − p| ≥ ε) ≤ 2·exp(−2nε²), so the interval p̂ ± sqrt(ln(2/δ) / 2n) covers p with
probability at least 1 − δ. The textbook (Wald) interval p̂ ± z·sqrt(p̂(1 − p̂)/n) is
narrower, but for small n·p it covers p far less often than it promises (Brown, Cai &
DasGupta 2001). This experiment measures both coverages by simulation.

    python docs/examples/coin_bias.py run tutorial.coin_bias --seeds 3
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from matplotlib.figure import Figure

from alignlab import Claim, RunContext, experiment


@dataclass(frozen=True)
class CoinConfig:
    bias: float = 0.05
    """Probability that the coin lands heads: the unknown p we estimate."""
    flips: int = 20
    """Flips per estimate, n: the sample size the claims are judged at."""
    delta: float = 0.05
    """Miss probability the intervals allow: both aim to cover p with probability 1 − delta."""
    trials: int = 20_000
    """Independent n-flip estimates per seed; coverage is the fraction whose interval holds p."""
    max_flips: int = 1_000
    """Largest n in the coverage-versus-n sweep that is logged and plotted."""


def hoeffding_halfwidth(n: int | np.ndarray, delta: float) -> np.ndarray:
    """Half-width ε with 2·exp(−2nε²) = δ: p̂ ± ε covers p with probability ≥ 1 − δ."""
    return np.sqrt(np.log(2.0 / delta) / (2.0 * np.asarray(n, dtype=np.float64)))


def coverage(heads: np.ndarray, n: int, p: float, delta: float) -> tuple[float, float]:
    """Fraction of estimates whose Hoeffding and Wald intervals contain `p`."""
    p_hat = heads / n  # (trials,)
    z = NormalDist().inv_cdf(1.0 - delta / 2.0)
    wald = z * np.sqrt(p_hat * (1.0 - p_hat) / n)  # (trials,)
    err = np.abs(p_hat - p)  # (trials,)
    return float(np.mean(err <= hoeffding_halfwidth(n, delta))), float(np.mean(err <= wald))


@experiment(
    name="tutorial.coin_bias",
    suite=("tutorial",),
    claims=[
        Claim(
            "hoeffding_slack",
            ">=",
            0.0,
            source="Hoeffding 1963, JASA 58(301):13–30, Thm 1",
            note="coverage of p̂ ± sqrt(ln(2/δ)/2n) minus the promised 1 − δ",
        ),
        Claim(
            "wald_slack",
            "<",
            0.0,
            source="Brown, Cai & DasGupta 2001, Statist. Sci. 16(2):101–133",
            note="the Wald interval p̂ ± z·sqrt(p̂(1 − p̂)/n) undercovers when n·p is small",
        ),
    ],
    metrics=("hoeffding_coverage", "wald_coverage", "hoeffding_slack", "wald_slack", "halfwidth"),
)
def coin_bias(cfg: CoinConfig, ctx: RunContext) -> dict[str, float]:
    """Hoeffding's interval for a coin's bias keeps its promise; the textbook Wald interval does not."""
    if not 0.0 < cfg.delta < 1.0 or not 0.0 <= cfg.bias <= 1.0:
        raise ValueError(f"need 0 < delta < 1 and 0 <= bias <= 1, got {cfg.delta}, {cfg.bias}")
    # Coverage as n grows: one point of the run's time series per sample size.
    grid = np.unique(np.geomspace(5, cfg.max_flips, num=25).astype(int))  # (G,)
    sweep = []
    for n in ctx.progress(grid.tolist(), description="coverage sweep"):
        hoeffding, wald = coverage(ctx.rng.binomial(n, cfg.bias, size=cfg.trials), n, cfg.bias, cfg.delta)
        ctx.log(step=n, hoeffding_coverage=hoeffding, wald_coverage=wald)
        sweep.append((hoeffding, wald))
    # The claims are judged at n = cfg.flips.
    heads = ctx.rng.binomial(cfg.flips, cfg.bias, size=cfg.trials)  # (trials,)
    hoeffding, wald = coverage(heads, cfg.flips, cfg.bias, cfg.delta)
    # The law of large numbers, one coin at a time: a running estimate inside Hoeffding's band.
    path = ctx.rng.random(cfg.max_flips) < cfg.bias  # (max_flips,)
    n = np.arange(1, cfg.max_flips + 1)  # (max_flips,)
    running = np.cumsum(path) / n  # (max_flips,)

    fig = Figure(figsize=(10.0, 3.8))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(grid, [h for h, _ in sweep], "o-", label="Hoeffding")
    ax.plot(grid, [w for _, w in sweep], "s-", label="Wald")
    ax.axhline(1.0 - cfg.delta, color="k", ls="--", lw=1, label=f"promised 1 − δ = {1 - cfg.delta:g}")
    ax.set(xscale="log", xlabel="flips n", ylabel="coverage", title=f"p = {cfg.bias:g}")
    ax.legend()
    ax = fig.add_subplot(1, 2, 2)
    band = hoeffding_halfwidth(n, cfg.delta)
    ax.fill_between(n, cfg.bias - band, cfg.bias + band, alpha=0.25, label="p ± ε(n)")
    ax.plot(n, running, lw=1, label="running estimate p̂")
    ax.set(xscale="log", ylim=(-0.05, 1.05), xlabel="flips n", title="one coin, flipped on")
    ax.legend()
    fig.tight_layout()
    ctx.save_figure("coverage", fig)

    nominal = 1.0 - cfg.delta
    return {
        "hoeffding_coverage": hoeffding,
        "wald_coverage": wald,
        "hoeffding_slack": hoeffding - nominal,
        "wald_slack": wald - nominal,
        "halfwidth": float(hoeffding_halfwidth(cfg.flips, cfg.delta)),
    }


if __name__ == "__main__":  # `python coin_bias.py ARGS` is `alignlab ARGS` with this experiment registered
    from alignlab.cli import main

    main()
