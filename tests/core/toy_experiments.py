"""Tiny experiments the core tests run: fast, deterministic, each exercising one path."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from alignlab.core import Claim, RunContext, experiment


@dataclass(frozen=True)
class ToyConfig:
    n: int = 200
    """Number of uniform draws."""
    scale: float = 1.0
    """Multiplier on the draws."""
    sleep: float = 0.0
    """Seconds to sleep per progress step (for interruption tests)."""
    mode: str = "ok"
    """ok | nan | raise | missing | bad_type"""


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
    if cfg.mode == "raise":
        raise RuntimeError("boom from the experiment")
    if cfg.mode == "missing":
        return {"std": float(xs.std())}
    if cfg.mode == "bad_type":
        return {"mean": "high", "std": 0.0}  # type: ignore[dict-item]
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

    ys = np.cumsum(ctx.rng.random(cfg.points))
    for i, y in enumerate(ys):
        ctx.log(step=i, y=float(y))
    fig, ax = plt.subplots()
    ax.plot(ys)
    ctx.save_figure("curve", fig)
    ctx.save_artifact("summary", {"points": cfg.points})
    ctx.save_artifact("arrays", {"ys": ys})
    return {"last": float(ys[-1])}
