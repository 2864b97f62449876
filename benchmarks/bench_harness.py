"""The harness's fixed cost per run (plan, store, manifest, index) against calling the experiment.

    python benchmarks/bench_harness.py                      # trivial + shaping.potential_based
    python benchmarks/bench_harness.py --skip-shaping --runs 50

Part 1 registers a trivial experiment (microseconds of work) and times N direct calls against
``alignlab.run(name, seeds=N, executor="inprocess", report=False)``; target < 50 ms per run.
Part 2 does the same for ``shaping.potential_based`` (quick preset); target < 2% of run time.
The experiment function is also timed from inside the harness (a registered wrapper), so
overhead = harness wall time − time spent in the function is exact rather than a difference
of two noisy runs. Everything runs in this process; medians over --repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import alignlab
from alignlab import Claim, RunContext, experiment
from alignlab.core.registry import Experiment, all_experiments

TRIVIAL_TARGET_MS = 50.0
SHAPING_TARGET_PCT = 2.0
FN_SECONDS: list[float] = []
"""Seconds spent inside the wrapped experiment function, one entry per call."""


@dataclass(frozen=True)
class TrivialConfig:
    n: int = 100
    """Uniform draws to average."""


@experiment(
    name="bench.trivial",
    claims=[Claim("mean", ">", 0.25, source="law of large numbers")],
    metrics=("mean",),
)
def trivial(cfg: TrivialConfig, ctx: RunContext) -> dict[str, float]:
    """A few microseconds of work: the mean of `n` uniform draws."""
    t0 = time.perf_counter()
    out = {"mean": float(ctx.rng.random(cfg.n).mean())}
    FN_SECONDS.append(time.perf_counter() - t0)
    return out


def timed_copy(exp: Experiment, name: str) -> str:
    """Register `name`: `exp` with its function wrapped to record its own duration."""
    inner = exp.fn

    def wrapper(cfg: Any, ctx: RunContext) -> Mapping[str, float]:
        t0 = time.perf_counter()
        out = inner(cfg, ctx)
        FN_SECONDS.append(time.perf_counter() - t0)
        return out

    wrapper.__annotations__ = {"cfg": exp.config_cls, "ctx": RunContext, "return": Mapping[str, float]}
    wrapper.__doc__ = exp.fn.__doc__
    wrapper.__qualname__ = wrapper.__name__ = f"timed_{exp.fn.__name__}"
    experiment(name=name, claims=exp.claims, presets=exp.presets, metrics=exp.metrics)(wrapper)
    return name


def direct(exp: Experiment, cfg: Any, seeds: int, tmp: Path) -> float:
    """Seconds for `seeds` direct calls ``exp.fn(cfg, RunContext(seed, folder))``."""
    t0 = time.perf_counter()
    for seed in range(seeds):
        ctx = RunContext(seed, tmp / f"direct-{time.perf_counter_ns()}")
        exp.fn(cfg, ctx)
        ctx.flush()
    return time.perf_counter() - t0


def bare(exp: Experiment, cfg: Any, calls: int, tmp: Path) -> float:
    """Seconds for `calls` calls of the bare function on one shared context."""
    ctx = RunContext(0, tmp / "bare")
    t0 = time.perf_counter()
    for _ in range(calls):
        exp.fn(cfg, ctx)
    return time.perf_counter() - t0


def harness(name: str, seeds: int, preset: str | None, tmp: Path) -> tuple[float, float]:
    """Wall seconds of one ``alignlab.run`` batch and the seconds spent inside the function."""
    FN_SECONDS.clear()
    store = tmp / f"store-{time.perf_counter_ns()}"
    t0 = time.perf_counter()
    result = alignlab.run(name, seeds=seeds, preset=preset, executor="inprocess", store=store, report=False)
    wall = time.perf_counter() - t0
    bad = [r.error for r in result.runs if r.status != "done"]
    if bad:
        raise SystemExit(f"{name}: runs failed: {bad}")
    return wall, sum(FN_SECONDS)


def median_of(fn: Callable[[], Any], repeats: int) -> Any:
    """Call `fn` `repeats` times; the median of its results (elementwise for tuples)."""
    results = [fn() for _ in range(repeats)]
    if isinstance(results[0], tuple):
        return tuple(statistics.median(col) for col in zip(*results, strict=True))
    return statistics.median(results)


def bench_trivial(runs: int, repeats: int, tmp: Path) -> None:
    """Part 1: per-run overhead of the harness on a microsecond experiment."""
    exp = all_experiments()["bench.trivial"]
    cfg = exp.default_config()
    harness("bench.trivial", 2, None, tmp)  # warm-up: imports, git commit and source hash (cached)
    t_bare = median_of(lambda: bare(exp, cfg, runs, tmp), repeats)
    t_direct = median_of(lambda: direct(exp, cfg, runs, tmp), repeats)
    wall, inside = median_of(lambda: harness("bench.trivial", runs, None, tmp), repeats)
    wall1, _ = median_of(lambda: harness("bench.trivial", 1, None, tmp), repeats)
    per_run = 1e3 * (wall - inside) / runs
    print(f"== trivial experiment: {runs} runs per batch, median of {repeats}")
    print(f"bare function call                  {1e6 * t_bare / runs:9.1f} µs/run")
    print(f"direct call + fresh RunContext      {1e3 * t_direct / runs:9.3f} ms/run")
    print(f"alignlab.run (inprocess, no report) {1e3 * wall / runs:9.3f} ms/run   "
          f"(batch of 1: {1e3 * wall1:.1f} ms)")  # fmt: skip
    print(f"overhead per run (wall − in fn)     {per_run:9.3f} ms/run   "
          f"target < {TRIVIAL_TARGET_MS:g} ms: ratio {per_run / TRIVIAL_TARGET_MS:.3f}")  # fmt: skip
    print(f"overhead vs direct call             {1e3 * (wall - t_direct) / runs:9.3f} ms/run")


def bench_shaping(seeds: int, repeats: int, tmp: Path) -> None:
    """Part 2: harness overhead as a share of a real experiment's run time."""
    name = "shaping.potential_based"
    reg = all_experiments()
    if name not in reg:
        print(f"\n== {name}: not registered in this checkout (is src/alignlab/experiments/shaping.py "
              "there and importable?); skipped")  # fmt: skip
        return
    exp = reg[name]
    timed = timed_copy(exp, "bench.timed_potential_based")
    cfg = exp.default_config("quick")
    walls, insides, directs = [], [], []
    for _ in range(repeats):  # interleaved, so drift in machine speed hits both alike
        directs.append(direct(exp, cfg, seeds, tmp))
        wall, inside = harness(timed, seeds, "quick", tmp)
        walls.append(wall)
        insides.append(inside)
    wall, inside, t_direct = (statistics.median(x) for x in (walls, insides, directs))
    overhead = wall - inside
    pct = 100 * overhead / inside
    print(f"\n== {name} (quick preset): {seeds} seeds per batch, median of {repeats}")
    print(f"direct call + fresh RunContext      {t_direct / seeds:9.3f} s/run")
    print(f"alignlab.run (inprocess, no report) {wall / seeds:9.3f} s/run")
    print(f"  of which inside the function      {inside / seeds:9.3f} s/run")
    print(f"overhead per run (wall − in fn)     {1e3 * overhead / seeds:9.1f} ms/run = {pct:.2f}% of run "
          f"time   target < {SHAPING_TARGET_PCT:g}%: ratio {pct / SHAPING_TARGET_PCT:.3f}")  # fmt: skip
    noisy = 100 * (wall - t_direct) / t_direct
    print(
        f"harness vs direct call (noisy)      {noisy:+9.2f}%   "
        f"(spread of direct calls: {100 * (max(directs) - min(directs)) / t_direct:.1f}%)"
    )


def main() -> None:
    """Run both parts and print per-run overheads and ratios to target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per batch for the trivial experiment")
    parser.add_argument("--repeats", type=int, default=5, help="batches timed (median) for the trivial one")
    parser.add_argument("--shaping-seeds", type=int, default=2, help="seeds per shaping batch")
    parser.add_argument("--shaping-repeats", type=int, default=3, help="shaping batches timed (median)")
    parser.add_argument("--skip-shaping", action="store_true", help="only the trivial experiment")
    parser.add_argument("--dir", type=Path, default=None, help="where to put stores (default: tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alignlab-bench-harness-", dir=args.dir) as tmp:
        bench_trivial(args.runs, args.repeats, Path(tmp))
        if not args.skip_shaping:
            bench_shaping(args.shaping_seeds, args.shaping_repeats, Path(tmp))


if __name__ == "__main__":
    main()
