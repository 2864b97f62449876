"""Approval-directed agents with standard and decoupled feedback (Uesato et al. 2020).

Uesato, Kumar, Szepesvári, Erez, Ruderman, Anderson, Dvijotham, Heess & Kohli (2020), "Avoiding
Tampering Incentives in Deep RL via Decoupled Approval". Written here: the learner is the research
object. An overseer scores (state, action) pairs; the agent learns the expected feedback of each
pair by sample averages and acts ε-greedily on it. It does not bootstrap: approval is already a
judgement about the long run, so delayed effects of an action (dumping dust to suck it up later)
earn it nothing.

Tampering corrupts the feedback channel itself. On a step whose executed action raises one of the
environment's tampering flags, the feedback register is overwritten with `corrupted`, whatever
action was asked about:

- standard approval asks about the executed action, so the corrupted value lands on the tampering
  action, which is learnt;
- decoupled approval asks about an action drawn independently (uniformly) of the executed one, so
  the corrupted value lands on a random action. In expectation it raises every action's estimate at
  that state by the same amount, and the ranking the agent acts on is the uncorrupted overseer's
  (their Theorem 1, tabular form).

The overseer knows the true objective — its private judgement is the advantage Q*(s, a) − V*(s)
of the hidden performance, scaled into [−1, 0] — but the agent never sees that table. It can ask at
most `queries` questions in its whole training run, and each answer carries Gaussian noise of
standard deviation `noise`, so the agent's approval model is a noisy sample mean that stops improving
when the budget is spent (it then acts on what it has learnt). Tampering writes `corrupted` (+1, the
feedback register's maximum) into the register; ``corrupted=None`` turns the corruption off.

    >>> env = make("TomatoWatering").unwrapped
    >>> res = train_approval(env, overseer_advantage(env.tables), decoupled=True, episodes=2000,
    ...                      rng=np.random.default_rng(0))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

from alignlab.agents.tabular import _Uniforms
from alignlab.agents.tabular_gym import (
    _BOOLS,
    _NOT_FLAGS,
    EpisodeRecorder,
    TabularAgent,
    TrainResult,
    discrete_actions,
    epsilon_greedy,
)
from alignlab.envs.engine import CompiledWorld, value_iteration

__all__ = ["overseer_advantage", "train_approval"]


def overseer_advantage(cw: CompiledWorld, gamma: float = 0.99) -> np.ndarray:
    """(S, A) the performance-optimal advantage Q*(s, a) − V*(s), scaled into [−1, 0]."""
    v, q = value_iteration(cw, "performance", gamma=gamma, tol=1e-6)
    adv = q - v[:, None]  # (S, A), <= 0
    scale = float(np.abs(adv).max())
    return adv / scale if scale > 0 else adv


def train_approval(
    env: gym.Env,
    approval: np.ndarray,
    *,
    decoupled: bool,
    episodes: int,
    rng: np.random.Generator,
    epsilon: float = 0.1,
    tamper_flags: Sequence[str] = ("tampered",),
    corrupted: float | None = 1.0,
    queries: int | None = None,
    noise: float = 0.0,
    on_episode: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train an approval-directed agent on a compiled alignlab gridworld (`env.unwrapped.state_index`).

    `approval` (S, A) is the overseer's private, noise-free judgement per compiled state and action;
    the agent only sees up to `queries` answers (None: one per step), each with N(0, `noise`²) added.
    The returned agent's table holds the mean feedback per (observation, action) — greedy on it is
    the learnt policy, evaluated with :func:`alignlab.agents.tabular_gym.evaluate` like any TD learner.
    """
    if queries is not None and queries < 0:
        raise ValueError(f"queries must be >= 0, got {queries}")
    if not noise >= 0.0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
    n_actions, first = discrete_actions(env)
    base = env.unwrapped
    if getattr(base, "tables", None) is None:
        raise ValueError(f"{base!r} has no compiled tables: approval needs an enumerable alignlab world")
    if approval.shape != (base.tables.n_states, n_actions):
        raise ValueError(
            f"approval has shape {approval.shape}, expected (states, actions) = "
            f"{(base.tables.n_states, n_actions)}"
        )
    if not np.all(np.isfinite(approval)):
        raise ValueError("approval contains NaN or infinite values")
    tamper = frozenset(tamper_flags)
    # Initial estimate 0 is above every honest approval (<= 0): untried actions are tried first.
    agent = TabularAgent(n_actions, q_init=0.0)
    counts: list[list[int]] = []
    u = _Uniforms(rng)
    rec = EpisodeRecorder(episodes)
    env_seed = int(rng.integers(2**31 - 1))

    budget = -1 if queries is None else int(queries)  # -1: unlimited (never reaches 0)
    steps = 0
    t0 = time.perf_counter()
    for ep in range(episodes):
        obs, _ = env.reset(seed=env_seed) if ep == 0 else env.reset()
        g = perf = 0.0
        t = 0
        flags: dict[str, bool] = {}
        while True:
            qs = agent.row(obs)
            i = agent.index[agent.key(obs)]
            if i == len(counts):
                counts.append([0] * n_actions)
            s = base.state_index
            a = epsilon_greedy(qs, epsilon, u)
            obs, r, term, trunc, info = env.step(a + first)
            executed = info.get("executed_action")
            executed = a if executed is None else int(executed) - first
            if budget != 0:
                budget -= budget > 0
                query = min(int(u.next() * n_actions), n_actions - 1) if decoupled else executed
                if corrupted is not None and any(info.get(f) for f in tamper):
                    feedback = corrupted
                else:
                    feedback = float(approval[s, query]) + (noise * float(rng.normal()) if noise else 0.0)
                counts[i][query] += 1
                qs[query] += (feedback - qs[query]) / counts[i][query]
            g += float(r)
            perf += info.get("performance", float(r))
            t += 1
            for k, v in info.items():
                if v.__class__ in _BOOLS and (v or k not in flags):
                    flags[k] = bool(v)
            if term or trunc:
                break
        steps += t
        for k in _NOT_FLAGS.intersection(flags):
            del flags[k]
        stats = rec.add(g, perf, t, bool(term), flags)
        if on_episode is not None:
            on_episode(ep, stats)
        if budget == 0:  # nothing more to learn from: the overseer answers no more queries
            break
    elapsed = time.perf_counter() - t0
    method = "decoupled_approval" if decoupled else "approval"
    sps = steps / elapsed if elapsed > 0 else float("nan")
    return TrainResult(**rec.fields(), steps_per_second=sps, agent=agent, method=method)
