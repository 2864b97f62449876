"""Tiny experiments the core tests run: fast, deterministic, each exercising one path."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import numpy as np

from alignlab.core import Claim, Control, NotObserved, RunContext, bounded, experiment


@dataclass(frozen=True)
class ToyConfig:
    n: int = 200
    """Number of uniform draws."""
    scale: float = 1.0
    """Multiplier on the draws."""
    sleep: float = 0.0
    """Seconds to sleep per progress step (for interruption tests)."""
    mode: str = "ok"
    """ok | nan | unseen | raise | missing | bad_type"""


@experiment(
    name="toy.mean",
    suite=("toysuite",),
    claims=[
        Claim("mean", ">", 0.25, source="law of large numbers"),
        Claim("mean", "<", 0.3, source="a claim that should fail"),
    ],
    metrics=("mean", "std"),
    presets={"toysuite": {"n": 300}},
)
def toy_mean(cfg: ToyConfig, ctx: RunContext) -> dict[str, float]:
    """Mean of uniform draws; modes inject the failures the harness must survive."""
    xs = ctx.rng.random(cfg.n) * cfg.scale
    for i in ctx.progress(range(5), description="steps"):
        ctx.log(step=i, running_mean=float(xs[: (i + 1) * max(1, cfg.n // 5)].mean()))
        if cfg.sleep:
            time.sleep(cfg.sleep)
        if os.environ.get("ALIGNLAB_TOY_INTERRUPT_SEED") == str(ctx.seed) and i == 2:
            raise KeyboardInterrupt  # stands in for Ctrl-C, outside the config so --resume matches
    if os.environ.get("ALIGNLAB_TOY_LOG"):  # one line per execution (tests that count re-executions)
        with open(os.environ["ALIGNLAB_TOY_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{ctx.seed} {os.getpid()}\n")
    if os.environ.get("ALIGNLAB_TOY_FAIL_SEED") == str(ctx.seed):
        raise RuntimeError("closing tag [/x] and [bold]markup[/bold] in an error message")
    if cfg.mode == "raise":
        raise RuntimeError("boom from the experiment")
    if cfg.mode == "missing":
        return {"std": float(xs.std())}
    if cfg.mode == "bad_type":
        return {"mean": "high", "std": 0.0}  # type: ignore[dict-item]
    if cfg.mode == "unseen":
        return {"mean": NotObserved(f"no draw above 2 in {cfg.n} draws"), "std": float(xs.std())}
    mean = math.nan if cfg.mode == "nan" else float(xs.mean())
    return {"mean": mean, "std": float(xs.std())}


@dataclass(frozen=True)
class DriftConfig:
    k: int = 1
    """Unused knob."""


@experiment(name="toy.drift", suite=("driftsuite",), claims=[], metrics=("value",))
def toy_drift(cfg: DriftConfig, ctx: RunContext) -> dict[str, float]:
    """Returns a value read from the environment, so a re-run can be made to disagree."""
    return {"value": float(os.environ.get("ALIGNLAB_TOY_DRIFT", "1.0"))}


@dataclass(frozen=True)
class ArtifactConfig:
    points: int = 20
    """Points in the logged series."""


@experiment(
    name="toy.artifacts",
    suite=("toysuite",),
    claims=[Claim("last", ">=", 0.0, source="non-negativity")],
)
def toy_artifacts(cfg: ArtifactConfig, ctx: RunContext) -> dict[str, float]:
    """Logs a series and saves a figure, JSON and arrays, to exercise artifact storage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ctx.record_input("toy/points", "ab" * 32)
    ys = np.cumsum(ctx.rng.random(cfg.points))
    for i, y in enumerate(ys):
        ctx.log(step=i, y=float(y))
    fig, ax = plt.subplots()
    ax.plot(ys)
    ctx.save_figure("curve", fig)
    ctx.save_artifact("summary", {"points": cfg.points})
    ctx.save_artifact("arrays", {"ys": ys})
    return {"last": float(ys[-1])}


# -- experiments for the checker (core.check): one that meets the contract, and ones that break it --


@dataclass(frozen=True)
class SignalConfig:
    effect: float = bounded(1.0, 0.0, 10.0)
    """True effect added to every draw."""
    noise: float = bounded(0.1, 0.0, 10.0)
    """Standard deviation of the noise."""
    n: int = bounded(200, 2, 100_000)
    """Number of draws."""
    placebo: float = bounded(0.0, 0.0, 1.0)
    """A knob the measurement ignores (toycheck.leaky's control sets only this)."""
    wobble: bool = False
    """Draw from the OS entropy pool instead of the run's seed (breaks determinism)."""


NO_SIGNAL = Control("no_signal", {"effect": 0.0}, "with no effect the draws centre on zero")
SIGNAL_CLAIMS = [
    Claim("effect_size", ">", 0.5, source="toy replication", control=NO_SIGNAL),
    Claim("crossing_step", "<", 50, source="toy: the running mean passes 0.5 early", control=NO_SIGNAL),
    Claim("spread", "<", 1.0, source="the noise sd is 0.1, far below 1", kind="exact"),
    Claim("effect_size", "<", 5.0, source="our own bar", kind="target"),
]


def _signal(cfg: SignalConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little")) if cfg.wobble else ctx.rng
    xs = cfg.effect + cfg.noise * rng.standard_normal(cfg.n)
    running = np.cumsum(xs) / np.arange(1, cfg.n + 1)
    above = np.flatnonzero(running > 0.5)
    crossing: float | NotObserved = (
        float(above[0]) if above.size else NotObserved(f"the running mean never passed 0.5 in {cfg.n} draws")
    )
    return {"effect_size": float(xs.mean()), "crossing_step": crossing, "spread": float(xs.std())}


@experiment(
    name="toycheck.signal",
    claims=SIGNAL_CLAIMS,
    metrics=("effect_size", "crossing_step", "spread"),
    presets={"smoke": {"n": 40}},
)
def toy_signal(cfg: SignalConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """A measured effect with a control that removes it: meets the whole contract."""
    return _signal(cfg, ctx)


@experiment(
    name="toycheck.leaky",
    claims=[
        Claim(
            "effect_size",
            ">",
            0.5,
            source="toy replication",
            control=Control("placebo", {"placebo": 0.5}, "sets a knob the measurement ignores"),
        ),
    ],
    metrics=("effect_size", "crossing_step", "spread"),
    presets={"smoke": {"n": 40}},
)
def toy_leaky(cfg: SignalConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """Its control changes nothing the metric reads, so the effect persists: the claim measures nothing."""
    return _signal(cfg, ctx)


@experiment(
    name="toycheck.wobbly",
    claims=SIGNAL_CLAIMS,
    metrics=("effect_size", "crossing_step", "spread"),
    presets={"smoke": {"n": 40, "wobble": True}},
)
def toy_wobbly(cfg: SignalConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """Draws from OS entropy in smoke, so the same seed gives different metrics."""
    return _signal(cfg, ctx)


@dataclass(frozen=True)
class SloppyConfig:
    steps: int = 10
    """Not bounded."""
    rate: float = bounded(0.5, 0.0, 1.0)
    """Bounded."""


@experiment(
    name="toycheck.sloppy",
    claims=[Claim("score", ">", 0.0, source="toy replication without a control")],
    presets={"quick": {"rate": 2.0}},
)
def toy_sloppy(cfg: SloppyConfig, ctx: RunContext) -> dict[str, float]:
    """Breaks the contract on paper: unbounded field, no smoke preset, no metrics, no control."""
    return {"score": cfg.rate * cfg.steps}


@experiment(
    name="toycheck.broken",
    claims=[
        Claim("score", ">", 0.0, source="toy replication", control=Control("off", {"rate": 0.0}, "no rate"))
    ],
    metrics=("score", "extra"),
    presets={"smoke": {"steps": 3}},
)
def toy_broken(cfg: SloppyConfig, ctx: RunContext) -> dict[str, float]:
    """Runs, but returns NaN for a declared metric and leaves another out."""
    return {"score": cfg.rate * cfg.steps if cfg.rate else math.nan}
