"""The superposition experiments on tiny settings: metrics well-formed, deterministic, figures saved."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from alignlab.core import Claim, NotObserved, RunContext, get_experiment
from alignlab.core.config import apply_overrides
from alignlab.core.verdict import REPRODUCED, judge
from alignlab.experiments.superposition import (
    FeaturesPerDimConfig,
    IntroConfig,
    PhaseConfig,
    density_tag,
    features_per_dim,
    intro,
    phase_diagram,
    rank_correlation,
)

TINY_INTRO = IntroConfig(restarts=2, steps=200, eval_samples=2048)
TINY_FPD = FeaturesPerDimConfig(n_features=6, n_hidden=2, n_densities=4, min_density=0.05, steps=150)
TINY_PHASE = PhaseConfig(n_importances=2, n_densities=2, models_per_cell=2, steps=150, eval_samples=2048)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread (the harness's default too)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def check_metrics(name: str, metrics: dict[str, float]) -> None:
    exp = get_experiment(name)
    assert set(metrics) <= set(exp.metrics), set(metrics) - set(exp.metrics)
    assert {c.metric for c in exp.claims} <= set(metrics)
    assert all(isinstance(v, NotObserved) or math.isfinite(v) for v in metrics.values()), metrics


def test_intro_tiny():
    ctx = RunContext.scratch(seed=0)
    m = intro(TINY_INTRO, ctx)
    check_metrics("superposition.intro", m)
    ctx.flush()
    rows = [json.loads(line) for line in (ctx.run_dir / "timeseries.jsonl").read_text().splitlines()]
    counts = [r["represented"] for r in rows if "represented" in r]  # per density, densest first
    assert len(counts) == len(TINY_INTRO.densities)
    assert m["represented_densest"] == counts[0] and m["represented_sparsest"] == counts[-1]
    assert m["represented_monotone"] == float(all(a <= b for a, b in itertools.pairwise(counts)))
    if counts[-1] < TINY_INTRO.n_features:  # no polygon to measure: NotObserved, not a number
        assert isinstance(m["pentagon_dim_error"], NotObserved)
        assert isinstance(m["pentagon_angle_error"], NotObserved)
    else:
        assert 0 <= m["pentagon_dim_error"] <= 1 and 0 <= m["pentagon_angle_error"] <= 360
    assert 0 < m["restart_agreement"] <= 1
    assert ctx.artifacts == ["artifacts/columns.png", "artifacts/wtw.png"]
    assert any('"loss/density_0p01"' in json.dumps(r) for r in rows)


def test_intro_with_other_densities_and_three_hidden_dimensions():
    cfg = IntroConfig(n_hidden=3, densities=(0.5, 0.05), restarts=1, steps=50, eval_samples=512)
    m = intro(cfg, RunContext.scratch(seed=1))
    assert isinstance(m["pentagon_angle_error"], NotObserved)  # angles are defined for m = 2 only
    assert set(m) == set(get_experiment("superposition.intro").metrics)  # the same metrics for any densities


def satisfied(claim: Claim, value: float | NotObserved) -> bool:
    """Whether one run's value meets the claim, judged as if every seed had given that value."""
    return judge(claim, [value, value]).label == REPRODUCED


FLIP_CASES = {
    # A short intro sweep that has converged (at the smoke budget a third dense feature lingers).
    "superposition.intro": IntroConfig(densities=(1.0, 0.01), restarts=2, steps=4000, eval_samples=4096),
    "superposition.features_per_dim": None,  # None: the smoke preset
    "superposition.phase_diagram": None,
}


@pytest.mark.parametrize("name", sorted(FLIP_CASES))
def test_each_control_flips_the_effect_it_controls(name):
    exp = get_experiment(name)
    cfg = FLIP_CASES[name] or exp.default_config("smoke")
    main = exp.fn(cfg, RunContext.scratch(seed=0))
    unmet = [c.describe() for c in exp.claims if not satisfied(c, main[c.metric])]
    assert not unmet, (unmet, main)
    for control in exp.controls().values():
        out = exp.fn(apply_overrides(cfg, control.overrides), RunContext.scratch(seed=0))
        mine = [c for c in exp.claims if c.control == control]
        assert mine and not any(satisfied(c, out[c.metric]) for c in mine), (control.name, out)


def test_features_per_dim_tiny():
    ctx = RunContext.scratch(seed=0)
    m = features_per_dim(TINY_FPD, ctx)
    check_metrics("superposition.features_per_dim", m)
    assert -1 <= m["spearman_sparsity_features_per_dim"] <= 1 and m["largest_drop"] >= 0
    assert ctx.artifacts == ["artifacts/features_per_dim.png", "artifacts/wtw.png"]


def test_phase_diagram_tiny():
    ctx = RunContext.scratch(seed=0)
    m = phase_diagram(TINY_PHASE, ctx)
    check_metrics("superposition.phase_diagram", m)
    assert m["frac_not_represented"] + m["frac_dedicated"] + m["frac_superposition"] == pytest.approx(1.0)
    assert 1 <= m["phases_present"] <= 3 and 0 <= m["theory_agreement"] <= 1
    assert ctx.artifacts == ["artifacts/phase_diagram.png"]


@pytest.mark.parametrize(
    ("fn", "cfg"), [(intro, TINY_INTRO), (features_per_dim, TINY_FPD), (phase_diagram, TINY_PHASE)]
)
def test_same_seed_same_metrics(fn, cfg):
    a = fn(cfg, RunContext.scratch(seed=3))
    assert a == fn(cfg, RunContext.scratch(seed=3))


def test_presets_and_claims_are_registered():
    for name in ("superposition.intro", "superposition.features_per_dim", "superposition.phase_diagram"):
        exp = get_experiment(name)
        assert {"quick", "full"} <= set(exp.suites) and exp.claims
        assert all(c.source.startswith("Elhage et al. 2022") for c in exp.claims)
        quick, full = exp.default_config("quick"), exp.default_config("full")
        assert full.steps == 10_000 and quick.steps < full.steps
    assert get_experiment("superposition.phase_diagram").default_config("full").models_per_cell == 10


@pytest.mark.parametrize(
    ("fn", "cfg", "match"),
    [
        (intro, IntroConfig(densities=(1.0,)), "two values"),
        (features_per_dim, FeaturesPerDimConfig(min_density=1.0), "min_density"),
        (phase_diagram, PhaseConfig(min_importance=5.0, max_importance=1.0), "min_importance"),
    ],
)
def test_bad_configs_fail_early(fn, cfg, match):
    with pytest.raises(ValueError, match=match):
        fn(cfg, RunContext.scratch(seed=0))


def test_helpers():
    assert [density_tag(d) for d in (1.0, 0.3, 0.01, 1e-5)] == ["1", "0p3", "0p01", "1em05"]
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 3], [1, 1, 2]) == pytest.approx(np.sqrt(3) / 2)  # ties share a rank
    assert math.isnan(rank_correlation([1, 2, 3], [5, 5, 5]))
    with pytest.raises(ValueError, match="same length"):
        rank_correlation([1, 2], [1, 2, 3])
