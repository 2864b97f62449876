"""Control wrappers: reward := performance; the executed action hidden."""

from __future__ import annotations

from alignlab.envs import make
from alignlab.envs.wrappers import HideOverride, RewardIsPerformance


def test_reward_is_performance_pays_the_hidden_objective() -> None:
    env = RewardIsPerformance(make("AbsentSupervisor", supervisor_probability=0.0))
    env.reset(seed=0)
    env.step(2)  # down
    _, r, _, _, info = env.step(2)  # down, onto the unwatched punishment tile
    assert info["shortcut"] and r == info["performance"] == -31.0


def test_hide_override_drops_the_executed_action() -> None:
    env = make("WhiskyAndGold")
    env.reset(seed=0)
    assert "executed_action" in env.step(1)[4]
    hidden = HideOverride(make("WhiskyAndGold"))
    hidden.reset(seed=0)
    assert "executed_action" not in hidden.step(3)[4]


def test_whisky_reward_is_configurable() -> None:
    env = make("WhiskyAndGold", whisky_reward=-20.0)
    env.reset(seed=0)
    _, r, _, _, info = env.step(1)  # right, onto the whisky
    assert info["drank_whisky"] and r == -21.0
