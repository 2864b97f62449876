"""Finite MDPs: exact planning on hand-solvable cases, validation, gridworlds, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from alignlab.envs.finite_mdp import (
    FiniteMDP,
    greedy_policy,
    grid_distance,
    grid_index,
    gridworld,
    optimal_actions,
    policy_evaluation,
    reach_probability,
    sample_steps,
    step,
    value_iteration,
)


def two_state(gamma: float = 0.5) -> FiniteMDP:
    """State 0: action 0 stays and pays 1, action 1 ends the episode paying 1.5. State 1: terminal."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.zeros((2, 2, 2))
    R[0, 0, 0], R[0, 1, 1] = 1.0, 1.5
    return FiniteMDP(P, R, gamma, terminal=np.array([False, True]))


def risky_three_state() -> FiniteMDP:
    """State 0: 'safe' pays 1 and ends; 'risky' pays 3 w.p. 0.5 (ends) or moves to a
    trap (state 1) that loops paying -1 forever. State 2 is terminal. gamma = 0.5."""
    P = np.zeros((3, 2, 3))
    P[0, 0, 2] = 1.0
    P[0, 1, 2] = P[0, 1, 1] = 0.5
    P[1, :, 1] = 1.0
    P[2, :, 2] = 1.0
    R = np.zeros((3, 2, 3))
    R[0, 0, 2] = 1.0
    R[0, 1, 2] = 3.0
    R[1, :, 1] = -1.0
    return FiniteMDP(P, R, 0.5, terminal=np.array([False, False, True]))


def test_value_iteration_two_state_by_hand():
    v, q = value_iteration(two_state(gamma=0.5))
    # Staying forever: 1 / (1 - 0.5) = 2 beats leaving with 1.5.
    np.testing.assert_allclose(v, [2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(q, [[2.0, 1.5], [0.0, 0.0]], atol=1e-9)
    v, q = value_iteration(two_state(gamma=0.2))
    # 1 / 0.8 = 1.25 < 1.5: leaving is optimal now.
    np.testing.assert_allclose(v[0], 1.5, atol=1e-9)
    assert greedy_policy(q)[0] == 1


def test_value_iteration_three_state_by_hand():
    v, q = value_iteration(risky_three_state())
    trap = -1.0 / (1 - 0.5)  # V(1) = -2
    risky = 0.5 * 3.0 + 0.5 * (0.0 + 0.5 * trap)  # = 1.0
    np.testing.assert_allclose(v[1], trap, atol=1e-9)
    np.testing.assert_allclose(q[0], [1.0, risky], atol=1e-9)
    assert optimal_actions(q)[0].tolist() == [True, True]  # an exact tie


def test_policy_evaluation_matches_value_iteration():
    for mdp in (risky_three_state(), gridworld(4, 3, goal=(2, 1)), gridworld(5, 5, gamma=0.9)):
        v, q = value_iteration(mdp, tol=1e-12)
        np.testing.assert_allclose(policy_evaluation(mdp, greedy_policy(q)), v, atol=1e-8)


def test_policy_evaluation_of_a_stochastic_policy():
    mdp = risky_three_state()
    v = policy_evaluation(mdp, np.array([[0.25, 0.75], [1.0, 0.0], [1.0, 0.0]]))
    assert v[0] == pytest.approx(0.25 * 1.0 + 0.75 * 1.0)


def test_undiscounted_policy_that_never_terminates_is_rejected():
    mdp = gridworld(3, 3)  # gamma = 1
    always_down = np.full(9, 2)  # never climbs to the top-right goal... except by slipping
    assert np.isfinite(policy_evaluation(mdp, always_down)).all()
    stuck = gridworld(3, 3, slip=0.0)
    with pytest.raises(ValueError, match="never reaches a terminal state"):
        policy_evaluation(stuck, always_down)


def test_value_iteration_reports_divergence():
    mdp = two_state(gamma=1.0)  # staying pays 1 forever: no finite value
    with pytest.raises(ValueError, match="did not converge"):
        value_iteration(mdp, max_iter=500)


def test_deterministic_gridworld_values_are_manhattan_distances():
    mdp = gridworld(5, 4, goal=(3, 1), slip=0.0)
    v, _ = value_iteration(mdp)
    np.testing.assert_allclose(v, -grid_distance(5, 4, (3, 1)), atol=1e-9)


def test_gridworld_dynamics():
    mdp = gridworld(3, 3, slip=0.2)
    np.testing.assert_allclose(mdp.P.sum(axis=2), 1.0)
    centre, up, right = grid_index(3, 1, 1), grid_index(3, 1, 2), grid_index(3, 2, 1)
    assert mdp.P[centre, 0, up] == pytest.approx(0.8)  # action 0 = up, y grows upward
    assert mdp.P[centre, 0, right] == pytest.approx(0.2 / 3)
    corner = grid_index(3, 0, 0)
    # "left" from the bottom-left corner: 0.8 into the wall (stay) + 0.2/3 for "down" (wall).
    assert mdp.P[corner, 3, corner] == pytest.approx(0.8 + 0.2 / 3)
    goal = grid_index(3, 2, 2)
    assert mdp.terminal[goal] and mdp.terminal.sum() == 1
    assert mdp.start == corner
    assert (mdp.P[goal, :, goal] == 1).all()
    assert (mdp.R[:, :, goal][~mdp.terminal] == -1.0).all()


def test_reach_probability_by_hand():
    mdp = risky_three_state()
    goal = np.array([False, False, True])
    assert reach_probability(mdp, np.array([1, 0, 0]), goal)[0] == pytest.approx(0.5)
    assert reach_probability(mdp, np.array([0, 0, 0]), goal)[0] == pytest.approx(1.0)
    assert reach_probability(mdp, np.array([1, 0, 0]), goal)[1] == 0.0  # the trap
    assert reach_probability(mdp, np.array([1, 0, 0]), goal, horizon=0)[0] == 0.0
    assert reach_probability(mdp, np.array([1, 0, 0]), goal, horizon=1)[0] == pytest.approx(0.5)


def test_reach_probability_within_horizon_on_a_line():
    mdp = gridworld(4, 1, slip=0.0)
    right = np.full(4, 1)
    assert reach_probability(mdp, right)[0] == pytest.approx(1.0)
    assert reach_probability(mdp, right, horizon=2)[0] == 0.0
    assert reach_probability(mdp, right, horizon=3)[0] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"P": np.ones((2, 2))}, "shape"),
        ({"R": np.zeros((2, 2, 3))}, "same shape"),
        ({"gamma": 1.5}, "gamma"),
        ({"gamma": float("nan")}, "gamma"),
        ({"terminal": np.array([0, 1])}, "bool"),
        ({"initial": np.array([0.5, 0.6])}, "probability distribution"),
    ],
)
def test_validation_errors(change, message):
    base = two_state()
    kwargs = {"P": base.P, "R": base.R, "gamma": 0.5, "terminal": base.terminal} | change
    with pytest.raises(ValueError, match=message):
        FiniteMDP(**kwargs)


def test_validation_names_the_bad_entry():
    base = two_state()
    P = base.P.copy()
    P[0, 1, 1] = 0.9
    with pytest.raises(ValueError, match=r"P\[0, 1, :\] sums to 0.9"):
        FiniteMDP(P, base.R, 0.5, terminal=base.terminal)
    R = base.R.copy()
    R[0, 0, 1] = np.nan
    with pytest.raises(ValueError, match="R contains NaN"):
        FiniteMDP(base.P, R, 0.5, terminal=base.terminal)
    P = base.P.copy()
    P[0, 0] = [1.5, -0.5]
    with pytest.raises(ValueError, match="negative"):
        FiniteMDP(P, base.R, 0.5, terminal=base.terminal)
    with pytest.raises(ValueError, match="absorbing"):
        FiniteMDP(base.P, base.R, 0.5, terminal=np.array([True, True]))
    R = base.R.copy()
    R[1, 0, 1] = 1.0
    with pytest.raises(ValueError, match="zero reward"):
        FiniteMDP(base.P, R, 0.5, terminal=base.terminal)


def test_arrays_are_copied_and_read_only():
    P = two_state().P.copy()
    mdp = FiniteMDP(P, np.zeros_like(P), 0.9)
    P[0, 0] = [0.0, 1.0]
    assert mdp.P[0, 0, 0] == 1.0
    with pytest.raises(ValueError):
        mdp.R[0, 0, 0] = 1.0


def test_gridworld_rejects_bad_arguments():
    with pytest.raises(ValueError, match="outside"):
        gridworld(3, 3, goal=(3, 0))
    with pytest.raises(ValueError, match="slip"):
        gridworld(3, 3, slip=1.5)


def test_policy_shape_is_checked():
    mdp = two_state()
    with pytest.raises(ValueError, match="action indices"):
        policy_evaluation(mdp, np.array([2, 0]))
    with pytest.raises(ValueError, match="shape"):
        policy_evaluation(mdp, np.zeros(3, dtype=int))


def test_sampler_matches_transition_probabilities():
    P = np.zeros((4, 1, 4))
    P[0, 0, 1:] = [0.2, 0.5, 0.3]
    P[1:, 0, 0] = 1.0
    R = np.zeros_like(P)
    R[0, 0, 3] = 7.0
    mdp = FiniteMDP(P, R, 0.9)
    n = 40_000
    nxt, rew, done = sample_steps(mdp, np.zeros(n, int), np.zeros(n, int), np.random.default_rng(1))
    freq = np.bincount(nxt, minlength=4) / n
    # 4 standard errors of a proportion near 0.5 is about 0.01.
    np.testing.assert_allclose(freq, [0.0, 0.2, 0.5, 0.3], atol=0.01)
    assert (rew == np.where(nxt == 3, 7.0, 0.0)).all()
    assert not done.any()


def test_sampler_is_seeded_and_flags_terminal():
    mdp = gridworld(3, 3)
    states = np.arange(9)
    actions = np.ones(9, int)
    a = sample_steps(mdp, states, actions, np.random.default_rng(5))
    b = sample_steps(mdp, states, actions, np.random.default_rng(5))
    for x, y in zip(a, b, strict=True):
        assert (x == y).all()
    goal = grid_index(3, 2, 2)
    assert step(mdp, goal, 0, np.random.default_rng(0)) == (goal, 0.0, True)
    s2, r, _ = step(mdp, 0, 1, np.random.default_rng(0))
    assert mdp.P[0, 1, s2] > 0 and r == -1.0
    with pytest.raises(ValueError, match="actions"):
        step(mdp, 0, 4, np.random.default_rng(0))
