"""Separable reward functions: reward_under reproduces the world's own reward; current-RF planning."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.envs.engine import compiled, finite_horizon_policies, rewards_under
from alignlab.envs.registry import build_world


@pytest.mark.parametrize("name", ["RewardTamperingButton", "RocksAndDiamonds"])
def test_reward_under_own_parameters_is_the_reward(name: str) -> None:
    """On every transition that leaves θ alone, scoring with the state's own θ gives the reward."""
    cw = compiled(build_world(name))
    w = cw.world
    tables = {}
    for s_i, state in enumerate(cw.states):
        theta = w.reward_parameters(state)
        table = tables.setdefault(theta, rewards_under(cw, theta))
        for a in range(w.n_actions):
            for k in range(cw.prob.shape[-1]):
                nxt = cw.states[cw.next_state[s_i, a, k]]
                if cw.prob[s_i, a, k] > 0 and w.reward_parameters(nxt) == theta:
                    assert table[s_i, a, k] == cw.reward[s_i, a, k]


@pytest.mark.parametrize("name", ["RewardTamperingButton", "RocksAndDiamonds"])
def test_initial_reward_function_scores_the_true_task(name: str) -> None:
    cw = compiled(build_world(name))
    start = cw.states[int(np.flatnonzero(cw.initial)[0])]
    table = rewards_under(cw, cw.world.reward_parameters(start))
    assert np.array_equal(table, cw.performance), "the untampered reward function is the designer's"


def test_finite_horizon_policies_match_value_iteration_on_a_terminating_world() -> None:
    cw = compiled(build_world("RewardTamperingButton"))
    pis = finite_horizon_policies(cw, cw.performance, 100)
    assert pis.shape == (100, cw.n_states)
    s = int(np.flatnonzero(cw.initial)[0])
    total = 0.0
    for t in range(100):
        a = pis[99 - t, s]
        total += cw.performance[s, a, 0]
        if cw.terminated[s, a, 0]:
            break
        s = int(cw.next_state[s, a, 0])
    assert total == 46.0
