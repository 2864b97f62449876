"""Finite MDPs with exact planning: value iteration, policy evaluation, absorption, sampling.

Follows Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed., 2018), ch. 3-4,
with rewards on transitions, R(s, a, s'), as in Ng, Harada & Russell (1999), "Policy invariance
under reward transformations", so that shaping F(s, a, s') can be added to R directly.

An episodic task is a finite MDP with *terminal* states that are absorbing with zero reward:
from a terminal state every action returns to it and pays 0. This is the formulation Ng et al.
use for undiscounted tasks (gamma = 1), and it lets one code path serve episodic and
continuing tasks. States and actions are integers; arrays are NumPy float64.

    >>> mdp = gridworld(10, 10)                     # Ng et al.'s 10x10 demo world
    >>> v, q = value_iteration(mdp)
    >>> pi = greedy_policy(q)
    >>> reach_probability(mdp, pi)[mdp.start]       # reaches the goal surely
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

ACTIONS = ("up", "right", "down", "left")
"""Gridworld action names, in action-index order."""
MOVES = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)])  # (A, 2) as (dx, dy); y grows upward
_ATOL = 1e-8


@dataclass(frozen=True, eq=False)
class FiniteMDP:
    """A finite MDP: transitions P[s, a, s'], rewards R[s, a, s'], discount, terminal states.

    Arrays are copied and made read-only. `initial` is the start-state distribution
    (default: uniform over non-terminal states).
    """

    P: np.ndarray
    """(S, A, S) transition probabilities; each P[s, a] sums to 1."""
    R: np.ndarray
    """(S, A, S) reward for the transition s -a-> s'."""
    gamma: float
    """Discount factor in [0, 1]; 1 needs every policy of interest to terminate."""
    terminal: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(S,) bool mask of absorbing, zero-reward terminal states (default: none)."""
    initial: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(S,) start-state distribution (default: uniform over non-terminal states)."""

    def __post_init__(self) -> None:
        P = _float_array(self.P, "P")
        if P.ndim != 3 or P.shape[0] != P.shape[2] or 0 in P.shape:
            raise ValueError(f"P must have shape (S, A, S) with S, A >= 1, got {P.shape}")
        S = P.shape[0]
        R = _float_array(self.R, "R")
        if R.shape != P.shape:
            raise ValueError(f"R must have the same shape as P {P.shape}, got {R.shape}")
        if (P < -_ATOL).any():
            s, a, s2 = np.argwhere(P < -_ATOL)[0]
            raise ValueError(f"P[{s}, {a}, {s2}] = {P[s, a, s2]:g} is negative")
        sums = P.sum(axis=2)  # (S, A)
        bad = np.abs(sums - 1.0) > 1e-6
        if bad.any():
            s, a = np.argwhere(bad)[0]
            raise ValueError(
                f"P[{s}, {a}, :] sums to {sums[s, a]:.6g}, not 1: each P[s, a] must be a "
                "probability distribution over next states"
            )
        P = np.clip(P, 0.0, None)
        gamma = float(self.gamma)
        if not 0.0 <= gamma <= 1.0:  # also rejects NaN
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        terminal = _terminal_mask(self.terminal, S)
        for t in np.flatnonzero(terminal):
            if not np.allclose(P[t, :, t], 1.0, atol=1e-9):
                raise ValueError(f"terminal state {t} must be absorbing: P[{t}, a, {t}] = 1")
            if np.any(R[t, :, t] != 0.0):
                raise ValueError(f"terminal state {t} must pay zero reward: R[{t}, a, {t}] != 0")
        initial = _initial_distribution(self.initial, terminal)
        for name, value in (("P", P), ("R", R), ("terminal", terminal), ("initial", initial)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "gamma", gamma)

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return self.P.shape[1]

    @property
    def start(self) -> int:
        """The most likely start state (the start state when `initial` is one-hot)."""
        return int(np.argmax(self.initial))

    @cached_property
    def expected_reward(self) -> np.ndarray:
        """(S, A) expected immediate reward r(s, a) = sum_s' P(s'|s,a) R(s,a,s')."""
        return np.einsum("ijk,ijk->ij", self.P, self.R)  # (S, A)

    @cached_property
    def successors(self) -> tuple[np.ndarray, np.ndarray]:
        """Sparse view of P: (S, A, K) next-state indices and their probabilities, zero-padded.

        K is the largest number of possible next states of any (s, a), so backups cost
        S*A*K instead of S*A*S on sparse worlds such as gridworlds.
        """
        nz = self.P > 0  # (S, A, S)
        k = max(int(nz.sum(axis=2).max()), 1)
        # Sorting on ~nz moves each row's nonzero columns first, in index order.
        order = np.argsort(~nz, axis=2, kind="stable")[:, :, :k]  # (S, A, K)
        prob = np.take_along_axis(self.P, order, axis=2)  # (S, A, K)
        idx = np.where(prob > 0, order, 0)  # (S, A, K)
        for arr in (idx, prob):
            arr.setflags(write=False)
        return idx, prob


def _float_array(x: object, name: str) -> np.ndarray:
    try:
        arr = np.array(x, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array: {exc}") from None
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} contains NaN or infinity (first at index {where})")
    return arr


def _terminal_mask(terminal: object, n_states: int) -> np.ndarray:
    if terminal is None:
        return np.zeros(n_states, dtype=bool)
    mask = np.array(terminal, copy=True)
    if mask.shape != (n_states,) or mask.dtype != bool:
        raise ValueError(
            f"terminal must be a bool array of shape ({n_states},), got {mask.dtype} {mask.shape}"
        )
    return mask


def _initial_distribution(initial: object, terminal: np.ndarray) -> np.ndarray:
    n = terminal.shape[0]
    if initial is None:
        if terminal.all():
            return np.full(n, 1.0 / n)
        return (~terminal) / float((~terminal).sum())
    dist = _float_array(initial, "initial")
    if dist.shape != (n,):
        raise ValueError(f"initial must have shape ({n},), got {dist.shape}")
    if (dist < 0).any() or abs(dist.sum() - 1.0) > 1e-6:
        raise ValueError(f"initial must be a probability distribution; it sums to {dist.sum():g}")
    return dist


# --- planning -------------------------------------------------------------------------------


def bellman_backup(mdp: FiniteMDP, v: np.ndarray) -> np.ndarray:
    """Q(s, a) = r(s, a) + gamma * E[V(s')]: one Bellman backup of V, terminal rows zero."""
    idx, prob = mdp.successors  # (S, A, K)
    q = mdp.expected_reward + mdp.gamma * (prob * v[idx]).sum(axis=2)  # (S, A)
    q[mdp.terminal] = 0.0
    return q


def value_iteration(
    mdp: FiniteMDP, tol: float = 1e-10, max_iter: int = 1_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal V* (S,) and Q* (S, A) by value iteration (Sutton & Barto §4.4), to within `tol`.

    For gamma < 1 iteration stops when the sup-norm error bound is below `tol`; for gamma = 1
    (a stochastic shortest-path task) when one sweep changes V by less than `tol`. Raises
    ValueError if it has not converged after `max_iter` sweeps (with gamma = 1, a reward cycle
    that never terminates has no finite value).
    """
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    gamma = mdp.gamma
    stop = tol * (1.0 - gamma) / gamma if 0.0 < gamma < 1.0 else tol
    v = np.zeros(mdp.n_states)  # (S,)
    for _ in range(max_iter):
        q = bellman_backup(mdp, v)  # (S, A)
        v_new = q.max(axis=1)  # (S,)
        delta = float(np.abs(v_new - v).max())
        v = v_new
        if delta < stop or not np.isfinite(delta):
            break
    else:
        raise ValueError(
            f"value iteration did not converge in {max_iter} sweeps (last change {delta:.3g}); "
            "with gamma = 1 some policy may collect reward forever without terminating"
        )
    if not np.isfinite(v).all():
        raise ValueError("value iteration diverged to infinite values")
    return v, bellman_backup(mdp, v)


def greedy_policy(q: np.ndarray) -> np.ndarray:
    """(S,) deterministic policy taking argmax_a Q(s, a); ties go to the lowest action index."""
    q = np.asarray(q)
    if q.ndim != 2:
        raise ValueError(f"Q must have shape (S, A), got {q.shape}")
    return np.argmax(q, axis=1)


def optimal_actions(q: np.ndarray, atol: float = 1e-8) -> np.ndarray:
    """(S, A) mask of actions within `atol` (relative to |max Q|, at least absolute) of the best."""
    q = np.asarray(q)
    best = q.max(axis=1, keepdims=True)  # (S, 1)
    return q >= best - atol * np.maximum(1.0, np.abs(best))


def policy_matrix(mdp: FiniteMDP, policy: np.ndarray) -> np.ndarray:
    """(S, A) action probabilities for a deterministic (S,) or stochastic (S, A) policy."""
    pol = np.asarray(policy)
    S, A = mdp.n_states, mdp.n_actions
    if pol.shape == (S,):
        if not np.issubdtype(pol.dtype, np.integer) or pol.min() < 0 or pol.max() >= A:
            raise ValueError(f"a deterministic policy must hold action indices in [0, {A})")
        return np.eye(A)[pol]  # (S, A)
    if pol.shape == (S, A):
        pol = pol.astype(np.float64)
        if not np.isfinite(pol).all() or (pol < 0).any():
            raise ValueError("a stochastic policy must hold finite, non-negative probabilities")
        if not np.allclose(pol.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("each row of a stochastic policy must sum to 1")
        return pol
    raise ValueError(f"policy must have shape ({S},) or ({S}, {A}), got {pol.shape}")


def markov_chain(mdp: FiniteMDP, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chain a policy induces: P_pi (S, S) and expected reward r_pi (S,)."""
    pi = policy_matrix(mdp, policy)  # (S, A)
    p_pi = np.einsum("sa,sat->st", pi, mdp.P)  # (S, S)
    r_pi = (pi * mdp.expected_reward).sum(axis=1)  # (S,)
    return p_pi, r_pi


def _can_reach(p_pi: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(S,) mask of states with a positive-probability path into `targets`."""
    edge = p_pi > 0  # (S, S)
    reach = targets.copy()
    while True:
        grown = reach | edge[:, reach].any(axis=1)
        if (grown == reach).all():
            return reach
        reach = grown


def policy_evaluation(mdp: FiniteMDP, policy: np.ndarray) -> np.ndarray:
    """Exact V^pi (S,) by solving (I - gamma P_pi) V = r_pi on the non-terminal states.

    With gamma = 1 the policy must terminate with probability 1 from every state; otherwise
    its value is undefined and a ValueError names a state that never terminates.
    """
    p_pi, r_pi = markov_chain(mdp, policy)
    live = ~mdp.terminal  # (S,)
    if mdp.gamma == 1.0:
        stuck = live & ~_can_reach(p_pi, mdp.terminal)
        if stuck.any():
            raise ValueError(
                f"with gamma = 1 the policy must terminate, but from state "
                f"{int(np.flatnonzero(stuck)[0])} it never reaches a terminal state "
                f"({int(stuck.sum())} such states); its value is undefined"
            )
    v = np.zeros(mdp.n_states)  # (S,)
    a = np.eye(int(live.sum())) - mdp.gamma * p_pi[np.ix_(live, live)]  # (L, L)
    v[live] = np.linalg.solve(a, r_pi[live])
    return v


def reach_probability(
    mdp: FiniteMDP,
    policy: np.ndarray,
    targets: np.ndarray | None = None,
    horizon: int | None = None,
) -> np.ndarray:
    """(S,) probability that the policy's chain enters `targets` (default: terminal states).

    With `horizon` None: ever, exactly, from the absorbing-chain equations h = P_pi h with h = 1
    on the targets and h = 0 where no path leads to them (Kemeny & Snell 1960). With a horizon:
    within that many steps, by iterating the same equations `horizon` times.
    """
    targets = mdp.terminal if targets is None else np.asarray(targets)
    if targets.shape != (mdp.n_states,) or targets.dtype != bool:
        raise ValueError(f"targets must be a bool mask of shape ({mdp.n_states},)")
    p_pi, _ = markov_chain(mdp, policy)
    h = targets.astype(np.float64)  # (S,)
    if horizon is not None:
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon}")
        for _ in range(horizon):
            h = np.where(targets, 1.0, p_pi @ h)  # (S,)
        return h
    open_ = _can_reach(p_pi, targets) & ~targets
    if open_.any():
        a = np.eye(int(open_.sum())) - p_pi[np.ix_(open_, open_)]  # (U, U)
        b = p_pi[np.ix_(open_, targets)].sum(axis=1)  # (U,)
        h[open_] = np.clip(np.linalg.solve(a, b), 0.0, 1.0)
    return h


# --- sampling -------------------------------------------------------------------------------


def sample_steps(
    mdp: FiniteMDP, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample one transition for each (state, action) pair: next states, rewards, terminal flags."""
    states = np.asarray(states, dtype=np.int64)  # (N,)
    actions = np.asarray(actions, dtype=np.int64)  # (N,)
    if states.shape != actions.shape or states.ndim != 1:
        raise ValueError(
            f"states and actions must be equal-length 1-D arrays, got {states.shape} and {actions.shape}"
        )
    if states.size and (states.min() < 0 or states.max() >= mdp.n_states):
        raise ValueError(f"states must lie in [0, {mdp.n_states})")
    if actions.size and (actions.min() < 0 or actions.max() >= mdp.n_actions):
        raise ValueError(f"actions must lie in [0, {mdp.n_actions})")
    idx, prob = mdp.successors  # (S, A, K)
    cum = np.cumsum(prob[states, actions], axis=1)  # (N, K)
    cum /= cum[:, -1:]
    u = rng.random(states.shape[0])  # (N,)
    k = (u[:, None] >= cum).sum(axis=1)  # (N,)
    nxt = idx[states, actions, k]  # (N,)
    return nxt, mdp.R[states, actions, nxt], mdp.terminal[nxt]


def step(mdp: FiniteMDP, state: int, action: int, rng: np.random.Generator) -> tuple[int, float, bool]:
    """Sample one transition from (state, action): next state, reward, whether it is terminal."""
    nxt, rew, done = sample_steps(mdp, np.array([state]), np.array([action]), rng)
    return int(nxt[0]), float(rew[0]), bool(done[0])


# --- gridworlds -----------------------------------------------------------------------------


def grid_index(width: int, x: int, y: int) -> int:
    """State index of cell (x, y): row-major from the bottom-left corner, s = y * width + x."""
    return y * width + x


def grid_distance(width: int, height: int, goal: tuple[int, int]) -> np.ndarray:
    """(S,) Manhattan distance from every cell to `goal`."""
    y, x = np.divmod(np.arange(width * height), width)  # (S,), (S,)
    return (np.abs(x - goal[0]) + np.abs(y - goal[1])).astype(np.float64)


def gridworld(
    width: int,
    height: int,
    goal: tuple[int, int] | None = None,
    start: tuple[int, int] = (0, 0),
    slip: float = 0.2,
    step_reward: float = -1.0,
    goal_reward: float = 0.0,
    gamma: float = 1.0,
) -> FiniteMDP:
    """An open gridworld with four moves and an absorbing goal: Ng et al. (1999)'s demo world.

    Each action moves one cell in its direction with probability ``1 - slip``; otherwise the
    agent moves in one of the three *other* directions, uniformly (Ng et al. say only "a random
    direction"; we read it so that moves succeed exactly 80% of the time at slip = 0.2). A move
    into the outer wall leaves the agent in place. Every step from a non-goal cell pays
    `step_reward`, and a step that enters the goal also pays `goal_reward`. The goal (default:
    the top-right corner) is terminal; the episode starts at `start` (default bottom-left).
    """
    if width < 1 or height < 1:
        raise ValueError(f"grid must be at least 1x1, got {width}x{height}")
    goal = (width - 1, height - 1) if goal is None else goal
    for name, (x, y) in (("goal", goal), ("start", start)):
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"{name} {(x, y)} lies outside the {width}x{height} grid")
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip must be in [0, 1], got {slip}")
    S, A = width * height, len(ACTIONS)
    y, x = np.divmod(np.arange(S), width)  # (S,)
    nx = np.clip(x[:, None] + MOVES[None, :, 0], 0, width - 1)  # (S, D)
    ny = np.clip(y[:, None] + MOVES[None, :, 1], 0, height - 1)  # (S, D)
    dest = ny * width + nx  # (S, D): cell reached by moving in direction d
    move_prob = np.full((A, A), slip / (A - 1))  # (A, D): direction taken given action
    np.fill_diagonal(move_prob, 1.0 - slip)
    P = np.zeros((S, A, S))
    s_idx = np.broadcast_to(np.arange(S)[:, None, None], (S, A, A))  # (S, A, D)
    d_idx = np.broadcast_to(dest[:, None, :], (S, A, A))  # (S, A, D)
    a_idx = np.broadcast_to(np.arange(A)[None, :, None], (S, A, A))  # (S, A, D)
    np.add.at(P, (s_idx, a_idx, d_idx), np.broadcast_to(move_prob, (S, A, A)))
    g = grid_index(width, *goal)
    R = np.full((S, A, S), step_reward)
    R[:, :, g] += goal_reward
    P[g] = 0.0
    P[g, :, g] = 1.0
    R[g] = 0.0
    terminal = np.zeros(S, dtype=bool)
    terminal[g] = True
    initial = np.zeros(S)
    initial[grid_index(width, *start)] = 1.0
    return FiniteMDP(P=P, R=R, gamma=gamma, terminal=terminal, initial=initial)
