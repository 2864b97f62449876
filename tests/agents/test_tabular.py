"""Tabular TD control: convergence on a tiny chain, shaped vs true returns, seeding, validation."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.agents.tabular import LinearSchedule, q_learning, sarsa, td_control
from alignlab.envs.finite_mdp import (
    FiniteMDP,
    greedy_policy,
    grid_distance,
    gridworld,
    optimal_actions,
    value_iteration,
)
from alignlab.rewards.shaping import potential_shaping


def chain(n: int = 5, gamma: float = 0.9) -> FiniteMDP:
    """A deterministic line: action 1 moves right, action 0 left; the right end is terminal and
    entering it pays 1. Episodes start anywhere, so every state gets visited."""
    mdp = gridworld(n, 1, slip=0.0, step_reward=0.0, goal_reward=1.0, gamma=gamma)
    live = ~mdp.terminal
    return FiniteMDP(mdp.P, mdp.R, gamma, terminal=mdp.terminal, initial=live / live.sum())


@pytest.mark.parametrize("learner", [q_learning, sarsa])
def test_learns_the_optimal_greedy_policy_on_a_chain(learner):
    mdp = chain()
    res = learner(mdp, 2000, np.random.default_rng(0), alpha=0.2, epsilon=0.2)
    _, q_star = value_iteration(mdp)
    live = ~mdp.terminal
    pi = greedy_policy(res.q)
    assert optimal_actions(q_star)[np.arange(mdp.n_states), pi][live].all()
    assert (pi[live] == 1).all()  # "right" on the gridworld's action order (up, right, ...)
    if learner is q_learning:  # off-policy: Q converges to Q* on the greedy actions
        np.testing.assert_allclose(res.q[live, 1], q_star[live, 1], atol=0.02)
    assert res.terminated.all() and res.q[mdp.terminal].tolist() == [[0.0] * 4]


def test_returns_lengths_and_time_limit():
    mdp = chain(gamma=1.0)
    res = q_learning(mdp, 50, np.random.default_rng(1), epsilon=1.0, max_steps=3)
    assert res.true_returns.shape == res.shaped_returns.shape == res.lengths.shape == (50,)
    assert (res.lengths <= 3).all()
    assert (res.true_returns == res.terminated.astype(float)).all()  # 1 on arrival, else 0
    np.testing.assert_array_equal(res.true_returns, res.shaped_returns)


def test_shaped_return_differs_from_true_by_the_start_potential():
    # Undiscounted and episodic: the shaping telescopes to Φ(goal) - Φ(s0) = -Φ(s0).
    mdp = gridworld(4, 4)
    phi = -grid_distance(4, 4, (3, 3)) / 0.8
    res = q_learning(mdp, 30, np.random.default_rng(2), shaping=potential_shaping(mdp, phi))
    assert res.terminated.all()
    np.testing.assert_allclose(res.shaped_returns - res.true_returns, -phi[mdp.start], atol=1e-9)


def test_same_seed_same_result():
    mdp = gridworld(5, 5)
    a = q_learning(mdp, 100, np.random.default_rng(3))
    b = q_learning(mdp, 100, np.random.default_rng(3))
    np.testing.assert_array_equal(a.q, b.q)
    np.testing.assert_array_equal(a.true_returns, b.true_returns)
    c = q_learning(mdp, 100, np.random.default_rng(4))
    assert not np.array_equal(a.true_returns, c.true_returns)


def test_epsilon_schedule():
    sched = LinearSchedule(1.0, 0.1, steps=10)
    assert sched(0) == 1.0 and sched(5) == pytest.approx(0.55) and sched(50) == pytest.approx(0.1)
    # A schedule that ends fully greedy still learns the chain.
    mdp = chain()
    res = td_control(mdp, 500, np.random.default_rng(0), alpha=0.3, epsilon=sched)
    assert (greedy_policy(res.q)[~mdp.terminal] == 1).all()


def test_validation():
    mdp = chain()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="alpha"):
        q_learning(mdp, 10, rng, alpha=0.0)
    with pytest.raises(ValueError, match="shaping must broadcast"):
        q_learning(mdp, 10, rng, shaping=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        q_learning(mdp, 10, rng, shaping=np.full(mdp.P.shape, np.nan))
    with pytest.raises(ValueError, match="epsilon"):
        q_learning(mdp, 10, rng, epsilon=1.5)
    with pytest.raises(ValueError, match="method"):
        td_control(mdp, 10, rng, method="expected_sarsa")  # type: ignore[arg-type]
