"""Tabular TD control on a FiniteMDP by sampling: Q-learning and Sarsa with ε-greedy exploration.

Follows Sutton & Barto (2018) §6.4 (Sarsa) and §6.5 (Q-learning, Watkins 1989). The learner can
train on a shaped reward R + F (Ng, Harada & Russell 1999) while it also records the true task's
return, so one run gives both the curve it optimised and the curve that matters.

The inner loop is plain Python over precomputed per-(s, a) successor lists and blocks of uniform
draws from one seeded `numpy.random.Generator`: a few microseconds a step.

    >>> mdp = gridworld(10, 10)
    >>> res = q_learning(mdp, episodes=500, rng=np.random.default_rng(0))
    >>> res.true_returns[-50:].mean()
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from alignlab.envs.finite_mdp import FiniteMDP

Schedule = float | Callable[[int], float]


@dataclass(frozen=True)
class LinearSchedule:
    """ε (or any rate) moving linearly from `start` to `end` over `steps` episodes, then flat."""

    start: float
    end: float
    steps: int

    def __call__(self, episode: int) -> float:
        """The value at `episode` (0-based)."""
        if self.steps <= 0:
            return self.end
        frac = min(max(episode / self.steps, 0.0), 1.0)
        return self.start + frac * (self.end - self.start)


@dataclass(frozen=True)
class LearningResult:
    """What a TD learner returns: the learned Q and one entry per episode."""

    q: np.ndarray
    """(S, A) learned action values (terminal rows are 0)."""
    true_returns: np.ndarray
    """(E,) undiscounted return of each episode under the true reward R."""
    shaped_returns: np.ndarray
    """(E,) undiscounted return of each episode under the reward trained on, R + F."""
    lengths: np.ndarray
    """(E,) steps in each episode."""
    terminated: np.ndarray
    """(E,) True where the episode reached a terminal state (False: cut at max_steps)."""


class _Uniforms:
    """Uniform [0, 1) draws served one at a time from blocks of a seeded Generator."""

    def __init__(self, rng: np.random.Generator, block: int = 8192) -> None:
        self._rng, self._block = rng, block
        self._buf: list[float] = []
        self._i = 0

    def next(self) -> float:
        if self._i == len(self._buf):
            self._buf = self._rng.random(self._block).tolist()
            self._i = 0
        self._i += 1
        return self._buf[self._i - 1]


def _transition_table(
    mdp: FiniteMDP, shaping: np.ndarray | None
) -> list[list[tuple[list[float], list[int], list[float], list[float]]]]:
    """Per (s, a): cumulative probabilities, next states, true rewards and shaping of each successor."""
    idx, prob = mdp.successors  # (S, A, K)
    cum = np.cumsum(prob, axis=2)  # (S, A, K)
    cum /= cum[:, :, -1:]
    r = np.take_along_axis(mdp.R, idx, axis=2)  # (S, A, K)
    f = np.zeros_like(r)  # (S, A, K)
    if shaping is not None:
        f = np.take_along_axis(np.broadcast_to(shaping, mdp.P.shape), idx, axis=2)
    counts = (prob > 0).sum(axis=2)  # (S, A)
    table = []
    for s in range(mdp.n_states):
        row = []
        for a in range(mdp.n_actions):
            k = max(int(counts[s, a]), 1)
            row.append(
                (cum[s, a, :k].tolist(), idx[s, a, :k].tolist(), r[s, a, :k].tolist(), f[s, a, :k].tolist())
            )
        table.append(row)
    return table


def _validate(
    mdp: FiniteMDP, episodes: int, alpha: float, shaping: np.ndarray | None, max_steps: int
) -> None:
    if episodes < 0 or max_steps < 1:
        raise ValueError(f"need episodes >= 0 and max_steps >= 1, got {episodes}, {max_steps}")
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"learning rate alpha must be in (0, 1], got {alpha}")
    if shaping is not None:
        try:
            np.broadcast_to(shaping, mdp.P.shape)
        except ValueError:
            raise ValueError(
                f"shaping must broadcast to P's shape {mdp.P.shape}, got {shaping.shape}"
            ) from None
        if not np.isfinite(shaping).all():
            raise ValueError("shaping contains NaN or infinity")


def td_control(
    mdp: FiniteMDP,
    episodes: int,
    rng: np.random.Generator,
    *,
    method: Literal["q_learning", "sarsa"] = "q_learning",
    alpha: float = 0.02,
    epsilon: Schedule = 0.1,
    shaping: np.ndarray | None = None,
    q_init: float = 0.0,
    max_steps: int = 100_000,
) -> LearningResult:
    """Learn Q by ε-greedy Q-learning or Sarsa on `mdp` (optionally on R + `shaping`), by sampling.

    Each episode starts from a draw of ``mdp.initial`` and ends at a terminal state or after
    `max_steps` steps (a time limit: the last update still bootstraps). Greedy ties are broken
    uniformly at random. Defaults are Ng et al. (1999)'s: α = 0.02, ε = 0.1, Q initialised to 0.
    """
    shaping = None if shaping is None else np.asarray(shaping, dtype=np.float64)
    _validate(mdp, episodes, alpha, shaping, max_steps)
    if method not in ("q_learning", "sarsa"):
        raise ValueError(f"method must be 'q_learning' or 'sarsa', got {method!r}")
    on_policy = method == "sarsa"
    eps_at = epsilon if callable(epsilon) else (lambda _ep, e=float(epsilon): e)
    table = _transition_table(mdp, shaping)
    terminal = mdp.terminal.tolist()
    n_actions, gamma = mdp.n_actions, mdp.gamma
    start_cum = (np.cumsum(mdp.initial) / mdp.initial.sum()).tolist()
    q = [[float(q_init)] * n_actions for _ in range(mdp.n_states)]
    for s in np.flatnonzero(mdp.terminal):
        q[s] = [0.0] * n_actions
    u = _Uniforms(rng)
    true_ret = np.zeros(episodes)
    shaped_ret = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    done_flags = np.zeros(episodes, dtype=bool)

    def act(qs: list[float], eps: float) -> int:
        if u.next() < eps:
            return int(u.next() * n_actions)
        best = max(qs)
        ties = [i for i, x in enumerate(qs) if x == best]
        return ties[0] if len(ties) == 1 else ties[int(u.next() * len(ties))]

    for ep in range(episodes):
        eps = float(eps_at(ep))
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {eps} at episode {ep}")
        s = _draw(start_cum, u.next())
        a = act(q[s], eps)
        g_true = g_shaped = 0.0
        t = 0
        done = terminal[s]
        while not done and t < max_steps:
            cum, nxt, rew, shp = table[s][a]
            k = 0
            x = u.next()
            while k < len(cum) - 1 and x >= cum[k]:
                k += 1
            s2, r_true = nxt[k], rew[k]
            r = r_true + shp[k]
            g_true += r_true
            g_shaped += r
            t += 1
            done = terminal[s2]
            qs = q[s]
            if done:
                qs[a] += alpha * (r - qs[a])
                break
            a2 = act(q[s2], eps)
            target = q[s2][a2] if on_policy else max(q[s2])
            qs[a] += alpha * (r + gamma * target - qs[a])
            s, a = s2, a2
        true_ret[ep], shaped_ret[ep], lengths[ep], done_flags[ep] = g_true, g_shaped, t, done
    return LearningResult(np.array(q), true_ret, shaped_ret, lengths, done_flags)


def q_learning(mdp: FiniteMDP, episodes: int, rng: np.random.Generator, **kwargs: Any) -> LearningResult:
    """Watkins' Q-learning (off-policy TD control); keyword arguments as in :func:`td_control`."""
    return td_control(mdp, episodes, rng, method="q_learning", **kwargs)


def sarsa(mdp: FiniteMDP, episodes: int, rng: np.random.Generator, **kwargs: Any) -> LearningResult:
    """Sarsa (on-policy TD control); keyword arguments as in :func:`td_control`."""
    return td_control(mdp, episodes, rng, method="sarsa", **kwargs)


def _draw(cum: list[float], x: float) -> int:
    return min(bisect.bisect_right(cum, x), len(cum) - 1)
