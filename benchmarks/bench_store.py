"""Store latency at scale: index 10,000 synthetic runs, then time `alignlab runs` and `load_runs`.

    python benchmarks/bench_store.py              # 10,000 runs, 5 repeats
    python benchmarks/bench_store.py --runs 50000 --profile

Targets: each read path under 1 s at 10,000 runs. Prints latencies (median of repeats) and the
ratio to the target; with --profile (or when a path misses its target) prints a cProfile top-15.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import alignlab
from alignlab.core.records import ClaimResult
from alignlab.core.registry import Claim
from alignlab.core.store import RunRow, Store
from alignlab.core.verdict import judge

TARGET_S = 1.0
EXPERIMENTS = ("bench.alpha", "bench.beta", "bench.gamma", "bench.delta", "bench.epsilon")
CLAIM = Claim("metric_0", ">", 0.0, source="synthetic")


def synthetic_config(i: int) -> dict[str, Any]:
    """A config dict of realistic size (a dozen fields)."""
    return {
        "episodes": 3000 + i % 7, "gamma": 0.95, "alpha": 0.02, "epsilon": 0.1, "size": 10,
        "slip": 0.2, "runs": 8, "window": 20, "target": 0.95, "algorithm": "q_learning",
        "potential_scale": 10.0, "max_steps": 200_000,
    }  # fmt: skip


def synthetic_metrics(i: int) -> dict[str, float]:
    """Sixteen metrics per run, as the shaping experiments return."""
    return {f"metric_{k}": (i * 0.001 + k) % 3.0 for k in range(16)}


def populate(store: Store, n_runs: int, chunk: int) -> float:
    """Index `n_runs` finished runs in batches of `chunk` through the Store API; returns seconds."""
    t0 = time.perf_counter()
    done = 0
    while done < n_runs:
        size = min(chunk, n_runs - done)
        batch = f"b{done // chunk:05d}"
        store.new_batch(batch, "bench", {"seeds": size})
        rows = []
        for i in range(done, done + size):
            exp = EXPERIMENTS[i % len(EXPERIMENTS)]
            rows.append(RunRow(f"{exp}-s{i}-{i:08x}", batch, exp, i, synthetic_config(i), f"h{i % 97:015x}",
                               "quick", "cpu"))  # fmt: skip
        store.begin_runs(rows)
        for i, row in enumerate(rows, start=done):
            store.finish_run(row.run_id, "done", synthetic_metrics(i))
        claims = [
            ClaimResult(batch, exp, CLAIM, judge(CLAIM, [synthetic_metrics(i)["metric_0"] for i in range(3)]))
            for exp in EXPERIMENTS
        ]
        store.save_claims(batch, claims)
        done += size
        if sys.stderr.isatty():
            print(f"\r  indexed {done}/{n_runs} runs", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return time.perf_counter() - t0


def measure(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float]]:
    """Median and all wall times (s) of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def cli(*args: str) -> Callable[[], None]:
    """A callable running `alignlab ARGS` in a fresh interpreter (as a user would)."""
    cmd = [sys.executable, "-m", "alignlab", *args]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}

    def call() -> None:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)

    return call


def profile(label: str, fn: Callable[[], Any]) -> None:
    """Print where `fn`'s time goes (cProfile, top 15 by cumulative time)."""
    prof = cProfile.Profile()
    prof.runcall(fn)
    print(f"\n--- profile: {label}")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(15)


def main() -> None:
    """Build the store, time each read path, report against the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="synthetic runs to index")
    parser.add_argument("--chunk", type=int, default=1_000, help="runs per batch (one begin_runs each)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per measurement (median)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the store (default: tmp)")
    parser.add_argument("--profile", action="store_true", help="profile every in-process path")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="alignlab-bench-store-", dir=args.dir) as tmp:
        root = Path(tmp) / "store"
        setup = populate(Store(root), args.runs, args.chunk)
        print(f"setup: indexed {args.runs} runs in {setup:.1f} s ({1e3 * setup / args.runs:.2f} ms/run)")
        store = Store(root)
        assert len(store.runs(limit=10)) == 10

        paths: list[tuple[str, Callable[[], Any], bool]] = [
            ("CLI  `alignlab runs` (newest 50, subprocess)", cli("runs", "--store", str(root)), False),
            ("CLI  `alignlab runs --limit 0 --json` (all, subprocess)",
             cli("runs", "--store", str(root), "--limit", "0", "--json"), False),
            ("CLI  `python -c 'import alignlab.cli'` (startup only)",
             lambda: subprocess.run([sys.executable, "-c", "import alignlab.cli"], check=True), False),
            ("API  Store(root).runs(limit=50)", lambda: Store(root).runs(limit=50), True),
            ("API  Store(root).runs() (all)", lambda: Store(root).runs(), True),
            (f"API  alignlab.load_runs(store) ({args.runs} rows)", lambda: alignlab.load_runs(root), True),
        ]  # fmt: skip
        df = alignlab.load_runs(root)
        assert len(df) == args.runs, len(df)
        print(f"\nload_runs: DataFrame {df.shape[0]} rows x {df.shape[1]} columns\n")
        print(f"{'path':58} {'median':>9} {'min':>9} {'/target':>8}")
        slow = []
        for label, fn, in_process in paths:
            med, times = measure(fn, args.repeats)
            print(f"{label:58} {1e3 * med:7.1f}ms {1e3 * min(times):7.1f}ms {med / TARGET_S:7.2f}x")
            if in_process and (args.profile or med > TARGET_S):
                slow.append((label, fn))
        print(f"\ntarget: < {TARGET_S:g} s each (ratio < 1.00x)")
        for label, fn in slow:
            profile(label, fn)


if __name__ == "__main__":
    main()
