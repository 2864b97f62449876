"""Safety replications on tiny budgets: every declared metric (a number or NotObserved), determinism,
and the negative controls that must make the claimed effect vanish."""

from __future__ import annotations

import dataclasses
import math

import pytest

from alignlab.core import NotObserved, RunContext, get_experiment

TABULAR = [
    "safety.interruptibility",
    "safety.absent_supervisor",
    "safety.whisky_gold",
    "safety.side_effects",
    "safety.reward_tampering",
    "safety.conveyor_belt",
]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the runner does; SB3 on tiny nets is slower with more threads
    yield
    torch.set_num_threads(threads)


def _check(name: str, out: dict) -> None:
    exp = get_experiment(name)
    assert set(out) == set(exp.metrics)
    for k, v in out.items():
        assert isinstance(v, NotObserved) or math.isfinite(v), (k, v)


@pytest.mark.parametrize("name", TABULAR)
def test_smoke_preset_reports_every_metric_deterministically(name: str) -> None:
    exp = get_experiment(name)
    cfg = exp.default_config("smoke")
    a = exp.fn(cfg, RunContext.scratch(seed=0))
    b = exp.fn(cfg, RunContext.scratch(seed=0))
    _check(name, a)
    assert a == b
    assert all(c.kind == "exact" or c.control is not None for c in exp.claims)


def test_an_unlearned_task_is_not_observed_not_nan() -> None:
    exp = get_experiment("safety.whisky_gold")
    cfg = dataclasses.replace(exp.default_config("smoke"), episodes=1, min_goal_rate=1.0)
    out = exp.fn(cfg, RunContext.scratch(seed=0))
    assert isinstance(out["sarsa_drank_whisky_rate"], NotObserved)
    assert "did not learn" in out["sarsa_drank_whisky_rate"].reason


def test_reward_tampering_controls_reuse_the_learner_they_reduce_to() -> None:
    exp = get_experiment("safety.reward_tampering")
    cfg = dataclasses.replace(
        exp.default_config("smoke"), episodes=300, decoupled=False, current_rf=False, approval_queries=2000
    )
    out = exp.fn(cfg, RunContext.scratch(seed=0))
    _check("safety.reward_tampering", out)
    assert out["decoupling_tamper_reduction"] == 0.0  # coupled 'decoupled' agent = standard approval
    gap = out["rewardtamperingbutton_current_rf_gap_closed"]
    assert isinstance(gap, NotObserved) or gap == 0.0  # observed-reward current-RF = the Q-learner


def test_goal_misgeneralisation_tiny_and_its_no_diversity_control() -> None:
    exp = get_experiment("safety.goal_misgeneralisation")
    cfg = exp.default_config("smoke")
    a = exp.fn(cfg, RunContext.scratch(seed=0))
    assert a == exp.fn(cfg, RunContext.scratch(seed=0))
    _check("safety.goal_misgeneralisation", a)
    c = exp.fn(dataclasses.replace(cfg, randomised_distribution="train"), RunContext.scratch(seed=0))
    assert c["end_without_coin_train_on_test"] == c["end_without_coin_train_last20_on_test"]


def test_distributional_shift_no_shift_control_has_no_drop() -> None:
    exp = get_experiment("safety.distributional_shift")
    cfg = dataclasses.replace(exp.default_config("smoke"), test_layouts=("train",), min_train_success=0.0)
    out = exp.fn(cfg, RunContext.scratch(seed=0))
    _check("safety.distributional_shift", out)
    assert out["success_drop"] == 0.0 and out["test_success"] == out["train_success"]


def test_deep_baselines_any_env_subset_runs_to_every_declared_metric() -> None:
    exp = get_experiment("safety.deep_baselines")
    cfg = dataclasses.replace(exp.default_config("smoke"), timesteps=200, eval_episodes=2,
                              envs=("SafeInterruptibility",), algos=("a2c",))  # fmt: skip
    out = exp.fn(cfg, RunContext.scratch(seed=0))
    _check("safety.deep_baselines", out)
    assert isinstance(out["dqn_whiskyandgold_flag_rate"], NotObserved)
    assert "not in this run" in out["dqn_whiskyandgold_flag_rate"].reason
    assert math.isfinite(out["a2c_safeinterruptibility_goal_rate"])
    with pytest.raises(ValueError, match="no behaviour flag"):
        exp.fn(dataclasses.replace(cfg, envs=("BoatRace",)), RunContext.scratch(seed=0))
