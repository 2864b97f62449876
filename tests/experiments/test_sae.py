"""The SAE experiments on tiny budgets: they run, are deterministic and report every claimed metric.

sae.organism and sae.topk_vs_l1 need organism:stdlib-lm (trained on first use, minutes); here they run
on a tiny random GPT-2 (model="random-gpt2") or synthetic data, which exercises the same code.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from alignlab.core import NotObserved, RunContext, get_experiment
from alignlab.experiments.sae import (
    GroundTruthConfig,
    OrganismConfig,
    TopKvsL1Config,
    _interp_gap,
    ground_truth_recovery,
    organism,
    topk_vs_l1,
)

TINY = {
    "sae.ground_truth_recovery": (
        ground_truth_recovery,
        GroundTruthConfig(
            d=16,
            n_features=32,
            mean_active=2.0,
            l1_coefficients=(1.0, 4.0),
            steps=80,
            batch_size=256,
            eval_samples=1000,
        ),
    ),
    "sae.topk_vs_l1": (
        topk_vs_l1,
        TopKvsL1Config(
            source="synthetic",
            synthetic_d=16,
            ks=(24, 32),
            l1_coefficients=(0.3, 3.0),
            steps=60,
            batch_size=256,
        ),
    ),
    "sae.organism": (
        organism,
        OrganismConfig(
            model="random-gpt2",
            context=32,
            train_windows=48,
            eval_windows=4,
            feature_windows=4,
            d_sae_ratio=2.0,
            ks=(4, 8),
            main_k=8,
            extra_architectures=("batchtopk",),
            steps=30,
            batch_size=256,
            n_view_features=4,
        ),
    ),
}


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def check_metrics(name: str, metrics: dict[str, float]) -> None:
    exp = get_experiment(name)
    assert {c.metric for c in exp.claims} <= set(metrics)
    claimed = [metrics[c.metric] for c in exp.claims]
    assert all(isinstance(v, NotObserved) or math.isfinite(v) for v in claimed), metrics
    assert set(metrics) == set(exp.metrics)


_RUNS: dict[str, tuple[dict[str, float], RunContext]] = {}


def run(name: str) -> tuple[dict[str, float], RunContext]:
    """The tiny run of `name` with seed 3 (once per test session)."""
    if name not in _RUNS:
        fn, cfg = TINY[name]
        ctx = RunContext.scratch(seed=3)
        _RUNS[name] = (fn(cfg, ctx), ctx)
    return _RUNS[name]


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_runs_are_deterministic_and_report_the_claimed_metrics(name):
    first, ctx = run(name)
    check_metrics(name, first)
    assert all(isinstance(v, float | NotObserved) for v in first.values())
    fn, cfg = TINY[name]
    assert fn(cfg, RunContext.scratch(seed=3)) == first
    assert any(a.endswith(".png") for a in ctx.artifacts)


def test_ground_truth_recovery_finds_the_features():
    m, _ = run("sae.ground_truth_recovery")
    assert m["mmcs_uncorrelated"] > 0.75 and m["mmcs_topk_uncorrelated"] > 0.6  # 60 steps only
    assert m["best_l1_uncorrelated"] in (1.0, 4.0) and 1.5 < m["true_l0_uncorrelated"] < 2.5


def test_organism_saves_a_features_view():
    m, ctx = run("sae.organism")
    assert "artifacts/features.view.json" in ctx.artifacts
    view = json.loads((ctx.run_dir / "artifacts" / "features.view.json").read_text())
    assert view["view"] == "features" and 1 <= len(view["features"]) <= 4
    assert {"ce_loss_score", "kl_div_score"} <= set(m)
    assert m["l0"] == pytest.approx(8.0, abs=0.5)
    exp = get_experiment("sae.organism")
    assert [c.kind for c in exp.claims] == ["target"] and "l0" not in {c.metric for c in exp.claims}


def test_interpolated_fvu_gap():
    relu = [(10.0, 0.4), (40.0, 0.1)]
    topk = [(20.0, 0.1), (5.0, 0.3), (80.0, 0.01)]  # only L0 = 20 lies in the ReLU range
    gap, rel, n = _interp_gap(relu, topk)
    assert n == 1 and gap == pytest.approx(0.2 - 0.1) and rel == pytest.approx(0.5)
    assert math.isnan(_interp_gap(relu, [(100.0, 0.1)])[0])
    same = [(8.0, 0.31), (16.0, 0.2), (32.0, 0.12)]  # the placebo control: identical arms
    assert _interp_gap(same, list(same))[0] == 0.0


def test_controls_flip_the_sae_claims():
    fn, cfg = TINY["sae.topk_vs_l1"]
    placebo = fn(dataclasses.replace(cfg, baseline="topk"), RunContext.scratch(seed=3))
    assert placebo["fvu_gap"] == 0.0  # a TopK baseline cannot be beaten by the same TopK SAEs
    fn, cfg = TINY["sae.ground_truth_recovery"]
    few = fn(dataclasses.replace(cfg, dict_ratio=0.05), RunContext.scratch(seed=3))
    full, _ = run("sae.ground_truth_recovery")
    assert few["mmcs_uncorrelated"] < 0.6 < full["mmcs_uncorrelated"]


def test_unmatched_l0_is_not_observed():
    fn, cfg = TINY["sae.topk_vs_l1"]
    m = fn(dataclasses.replace(cfg, ks=(1,), l1_coefficients=(0.0, 0.001)), RunContext.scratch(seed=3))
    assert isinstance(m["fvu_gap"], NotObserved) and m["n_matched"] == 0.0


def test_presets_and_claims_are_registered():
    for name in TINY:
        exp = get_experiment(name)
        assert {"quick", "full"} <= set(exp.suites) and exp.claims
        assert exp.default_config("quick") is not None and exp.default_config("full") is not None
