"""The shaping experiments on tiny settings: metrics well-formed, claims hold, deterministic."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from alignlab.core import NotObserved, RunContext, get_experiment
from alignlab.experiments.shaping import (
    NaiveConfig,
    PotentialConfig,
    episodes_to_reach,
    naive_cycle,
    potential_based,
)

TINY_POTENTIAL = PotentialConfig(size=5, n_potentials=3, episodes=300, runs=2, window=10)
TINY_NAIVE = NaiveConfig(size=5)


def check_metrics(name: str, metrics: dict[str, float]) -> None:
    exp = get_experiment(name)
    assert set(metrics) == set(exp.metrics)
    assert all(isinstance(v, NotObserved) or math.isfinite(v) for v in metrics.values()), metrics


def test_potential_based_tiny():
    ctx = RunContext.scratch(seed=0)
    m = potential_based(TINY_POTENTIAL, ctx)
    check_metrics("shaping.potential_based", m)
    assert m["optimal_policy_agreement"] == 1.0
    assert m["q_shift_error"] < 1e-6 and m["value_gap"] < 1e-6
    assert m["speedup"] > 1.0
    assert m["episodes_shaped"] < m["episodes_unshaped"]
    assert isinstance(m["speedup_large"], NotObserved)  # no large grid in this config
    assert ctx.artifacts == ["artifacts/learning_curves.png"]
    ctx.flush()
    assert (ctx.run_dir / "timeseries.jsonl").read_text().count("\n") == TINY_POTENTIAL.episodes


def test_potential_based_with_a_large_grid_and_sarsa():
    cfg = dataclasses.replace(
        TINY_POTENTIAL,
        n_potentials=1,
        episodes=60,
        runs=1,
        algorithm="sarsa",
        large_size=4,
        large_episodes=40,
        large_runs=1,
    )
    m = potential_based(cfg, RunContext.scratch(seed=1))
    check_metrics("shaping.potential_based", m)
    assert {"speedup_large", "episodes_unshaped_large", "optimal_return_large"} <= set(m)


def test_naive_cycle_tiny():
    ctx = RunContext.scratch(seed=0)
    m = naive_cycle(TINY_NAIVE, ctx)
    check_metrics("shaping.naive_cycle", m)
    assert m["shaped_goal_rate"] <= 0.05 and m["shaped_goal_rate_horizon"] <= 0.05
    assert m["true_goal_rate"] >= 0.99 and m["potential_goal_rate"] >= 0.99
    assert m["true_return_lost"] == pytest.approx(m["true_value"]) and m["true_value"] > 0
    assert m["shaped_value"] > 1.0 + TINY_NAIVE.bonus * 2 * TINY_NAIVE.size  # the loop pays more
    assert ctx.artifacts == ["artifacts/policies.png"]


@pytest.mark.parametrize(("fn", "cfg"), [(potential_based, TINY_POTENTIAL), (naive_cycle, TINY_NAIVE)])
def test_same_seed_same_metrics(fn, cfg):
    assert fn(cfg, RunContext.scratch(seed=3)) == fn(cfg, RunContext.scratch(seed=3))


def test_an_arbitrary_bonus_in_place_of_the_potential_gives_no_speedup():
    """The negative control of the speedup claim: a state penalty that is no potential difference."""
    m = potential_based(dataclasses.replace(TINY_POTENTIAL, bonus="random"), RunContext.scratch(seed=0))
    assert m["optimal_policy_agreement"] == 1.0  # the exact check does not depend on the learners
    assert m["reached_shaped"] == 0.0 and m["speedup"] <= 1.0


def test_claim_kinds_and_controls():
    speedup = get_experiment("shaping.potential_based").claims
    assert {c.metric: c.kind for c in speedup} == {
        "optimal_policy_agreement": "exact",
        "speedup": "replication",
    }
    assert speedup[1].control is not None and speedup[1].control.overrides == {"bonus": "random"}
    assert {c.kind for c in get_experiment("shaping.naive_cycle").claims} == {"exact"}


def test_presets_and_claims_are_registered():
    for name in ("shaping.potential_based", "shaping.naive_cycle"):
        exp = get_experiment(name)
        assert {"quick", "full"} <= set(exp.suites) and exp.claims and "smoke" in exp.presets
        assert exp.default_config("quick") is not None and exp.default_config("full") is not None
    assert get_experiment("shaping.potential_based").default_config("full").large_size == 50


def test_episodes_to_reach():
    curve = np.array([-10.0, -8, -6, -4, -2, -2])
    assert episodes_to_reach(curve, -5.0, window=2) == (4, True)  # mean(-6, -4) = -5
    assert episodes_to_reach(curve, -5.0, window=1) == (4, True)
    assert episodes_to_reach(curve, 0.0, window=2) == (6, False)
    with pytest.raises(ValueError, match="window"):
        episodes_to_reach(curve, 0.0, window=7)
