"""Shaping: potential-based shaping shifts Q* by -Φ(s) exactly (Ng et al. 1999, Thm 1); a
progress bonus does not, and makes a loop optimal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alignlab.envs.finite_mdp import (
    FiniteMDP,
    greedy_policy,
    grid_distance,
    gridworld,
    optimal_actions,
    reach_probability,
    value_iteration,
)
from alignlab.rewards.shaping import potential_shaping, progress_bonus, shaped

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
real = st.floats(min_value=-10.0, max_value=10.0, allow_nan=False)


discount = st.floats(min_value=0.0, max_value=0.95)


@st.composite
def mdps(draw) -> FiniteMDP:
    """A random MDP: 1-4 live states, 1-3 actions, an optional absorbing terminal state."""
    n_live = draw(st.integers(1, 4))
    n_act = draw(st.integers(1, 3))
    has_terminal = draw(st.booleans())
    S = n_live + has_terminal
    w = np.array(draw(st.lists(unit, min_size=S * n_act * S, max_size=S * n_act * S)))
    w = w.reshape(S, n_act, S) + 1e-3 * (np.arange(S) == 0)  # every row has some mass
    P = w / w.sum(axis=2, keepdims=True)
    R = np.array(draw(st.lists(real, min_size=S * n_act * S, max_size=S * n_act * S)))
    R = R.reshape(S, n_act, S)
    terminal = np.zeros(S, dtype=bool)
    if has_terminal:
        terminal[-1] = True
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        R[-1] = 0.0
    return FiniteMDP(P, R, draw(discount), terminal=terminal)


def assert_policy_invariant(mdp: FiniteMDP, phi: np.ndarray) -> None:
    _, q = value_iteration(mdp, tol=1e-11)
    _, q_shaped = value_iteration(shaped(mdp, potential_shaping(mdp, phi)), tol=1e-11)
    phi = np.where(mdp.terminal, 0.0, phi)
    scale = 1.0 + np.abs(q).max() + np.abs(phi).max()
    np.testing.assert_allclose(q_shaped, q - phi[:, None], atol=1e-8 * scale)
    rows = np.arange(mdp.n_states)
    # Greedy actions of each are optimal in the other (robust to ties).
    assert optimal_actions(q, atol=1e-7)[rows, greedy_policy(q_shaped)].all()
    assert optimal_actions(q_shaped, atol=1e-7)[rows, greedy_policy(q)].all()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_potential_shaping_shifts_q_star_by_minus_phi(data):
    mdp = data.draw(mdps())
    phi = np.array(data.draw(st.lists(real, min_size=mdp.n_states, max_size=mdp.n_states)))
    assert_policy_invariant(mdp, phi)


@settings(max_examples=30, deadline=None)
@given(
    goal=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    slip=st.sampled_from([0.0, 0.2]),
    phi=st.lists(real, min_size=9, max_size=9),
)
def test_potential_shaping_is_invariant_on_undiscounted_gridworlds(goal, slip, phi):
    assert_policy_invariant(gridworld(3, 3, goal=goal, slip=slip, gamma=1.0), np.array(phi))


def test_terminal_potential_is_zeroed():
    mdp = gridworld(2, 1, slip=0.0, gamma=0.5)  # states: 0 live, 1 goal
    f = potential_shaping(mdp, np.array([2.0, 100.0]))
    assert f[0, 1, 1] == pytest.approx(0.5 * 0.0 - 2.0)  # Φ(goal) treated as 0
    assert f[0, 3, 0] == pytest.approx(0.5 * 2.0 - 2.0)
    assert (f[1, :, 1] == 0.0).all()
    with pytest.raises(ValueError, match="shape"):
        potential_shaping(mdp, np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        potential_shaping(mdp, np.array([np.nan, 0.0]))


def test_progress_bonus_rewards_only_progress():
    mdp = gridworld(3, 1, slip=0.0)  # 0 - 1 - goal 2
    f = progress_bonus(mdp, grid_distance(3, 1, (2, 0)), bonus=0.5)
    assert f[0, 1, 1] == 0.5 and f[1, 1, 2] == 0.5  # steps toward the goal
    assert f[1, 3, 0] == 0.0 and f[0, 3, 0] == 0.0  # away, or bumping the wall: nothing
    assert (f[2] == 0.0).all()


def test_progress_bonus_is_not_policy_invariant():
    # Line 0 - 1 - goal; entering the goal pays 1, gamma 0.9, bonus 0.5 per step of progress.
    mdp = gridworld(3, 1, slip=0.0, step_reward=0.0, goal_reward=1.0, gamma=0.9)
    dist = grid_distance(3, 1, (2, 0))
    naive = shaped(mdp, progress_bonus(mdp, dist, bonus=0.5))
    _, q = value_iteration(mdp)
    _, q_naive = value_iteration(naive)
    right, left = 1, 3
    assert greedy_policy(q)[1] == right
    # Left then right earns 0.9 * 0.5 every two steps: 0.45 / (1 - 0.81) ≈ 2.37 > 1.5 for arriving.
    assert greedy_policy(q_naive)[1] == left
    assert not optimal_actions(q)[1, greedy_policy(q_naive)[1]]
    # No potential explains it: Q_naive - Q would be -Φ(s), the same for every action of a state.
    diff = q_naive - q
    assert np.ptp(diff[0, [right, left]]) > 0.1 and np.ptp(diff[1, [right, left]]) > 0.1
    assert reach_probability(mdp, greedy_policy(q_naive))[0] == 0.0
    assert reach_probability(mdp, greedy_policy(q))[0] == 1.0


def test_shaped_keeps_dynamics_and_checks_shape():
    mdp = gridworld(3, 3)
    out = shaped(mdp, potential_shaping(mdp, -grid_distance(3, 3, (2, 2))))
    assert out.P is not mdp.P and np.array_equal(out.P, mdp.P)
    assert out.gamma == mdp.gamma and (out.initial == mdp.initial).all()
    with pytest.raises(ValueError, match="broadcast"):
        shaped(mdp, np.zeros((2, 2)))
