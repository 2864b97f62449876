"""Current-RF optimisation (Everitt, Hutter, Kumar & Krakovna 2021, "Reward tampering problems and
solutions in reinforcement learning", §4.2): evaluate the future with the reward function you have *now*.

In worlds whose reward function is part of the state (parameters θ, ``World.reward_parameters``),
a reward-maximising learner gains by changing θ. A current-RF agent scores every future transition
with its current θ, so a change of θ earns it nothing and it has no incentive to tamper.

- :func:`train_current_rf` is the *learning* agent: model-free Q-learning with one Q table per
  reward function θ. Every observed transition (s, a, s') updates each table Q_θ(s, a) towards
  R_θ(s, a, s') + γ max Q_θ(s', ·) — the agent can evaluate its own reward function on a
  transition (it is a known function of the state), but learns the dynamics only from experience.
  It acts ε-greedily on Q_{θ(s)}, the table of the reward function it has now. With
  ``current_rf=False`` every table learns from the *observed* reward instead: plain Q-learning on
  the same states, the negative control.
- :func:`run_current_rf_planner` is the exact version: it plans every step with the compiled
  tables (the dynamics known), scoring the rest of the episode with the current θ.

    >>> env = make("RocksAndDiamonds").unwrapped
    >>> res = train_current_rf(env, 2000, np.random.default_rng(0))
    >>> evaluate_current_rf(env, res.agent, 100, np.random.default_rng(1)).flag_rates["tampered"]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from alignlab.agents.tabular import _Uniforms
from alignlab.agents.tabular_gym import (
    _BOOLS,
    _NOT_FLAGS,
    EpisodeRecorder,
    EpisodeStats,
    TrainResult,
    epsilon_greedy,
)
from alignlab.envs.engine import CompiledWorld, finite_horizon_policies, rewards_under

__all__ = [
    "CurrentRFAgent",
    "evaluate_current_rf",
    "run_current_rf_planner",
    "train_current_rf",
]

Hook = Callable[[int, dict[str, float]], None]


@dataclass(eq=False)
class CurrentRFAgent:
    """One Q table per reward function θ over the compiled states, and θ of each state."""

    thetas: list[Hashable]
    """The reward functions' parameters, in table order."""
    theta_of: np.ndarray
    """(S,) index into `thetas` of each compiled state's current reward function."""
    q: list[list[list[float]]]
    """q[θ][s][a]: action values under reward function θ (Python lists: fast scalar updates)."""

    def values(self, s: int) -> list[float]:
        """Action values at compiled state `s` under the state's own (current) reward function."""
        return self.q[int(self.theta_of[s])][s]

    def greedy_action(self, s: int) -> int:
        """The greedy action at compiled state `s` (ties: lowest index)."""
        qs = self.values(s)
        return qs.index(max(qs))


def _tables(base: Any) -> CompiledWorld:
    cw = getattr(base, "tables", None)
    if cw is None:
        raise ValueError(f"{base!r} has no compiled tables: current-RF learning needs an enumerable world")
    if cw.world.reward_parameters(cw.states[0]) is None:
        raise ValueError(f"{cw.world.name} has no separable reward function (reward_parameters is None)")
    return cw


def _new_agent(cw: CompiledWorld, q_init: float) -> tuple[CurrentRFAgent, list[np.ndarray]]:
    thetas: list[Hashable] = []
    theta_of = np.zeros(cw.n_states, np.int64)
    for s, state in enumerate(cw.states):
        theta = cw.world.reward_parameters(state)
        if theta not in thetas:
            thetas.append(theta)
        theta_of[s] = thetas.index(theta)
    n_a = cw.reward.shape[1]
    # Optimism only where a table is acted on (θ is the state's own): an optimistic value in a
    # state where θ is not current would be an exploration bonus for changing θ — a learned
    # incentive to tamper. Those entries start at 0 and are learnt from experience like the rest.
    q = [
        [[q_init if theta_of[s] == j else 0.0] * n_a for s in range(cw.n_states)] for j in range(len(thetas))
    ]
    rewards = [rewards_under(cw, theta) for theta in thetas]  # each (S, A, K)
    return CurrentRFAgent(thetas, theta_of, q), rewards


def _outcome_slot(cw: CompiledWorld, s: int, a: int, s2: int, term: bool, r: float) -> int:
    """The tabulated outcome k of (s, a) that produced the observed next state, end and reward."""
    best, best_err = 0, np.inf
    for k in range(cw.prob.shape[-1]):
        if cw.prob[s, a, k] <= 0 or bool(cw.terminated[s, a, k]) != term:
            continue
        if not term and int(cw.next_state[s, a, k]) != s2:
            continue
        err = abs(float(cw.reward[s, a, k]) - r)
        if err < best_err:
            best, best_err = k, err
    return best


def _episode(
    env: gym.Env, act: Callable[[int], int], learn: Callable[..., None] | None, seed: int | None
) -> tuple[float, float, int, bool, dict[str, bool]]:
    base = env.unwrapped
    env.reset(seed=seed)
    g = perf = 0.0
    t = 0
    flags: dict[str, bool] = {}
    while True:
        s = base.state_index
        a = act(s)
        _, r, term, trunc, info = env.step(a)
        g += float(r)
        perf += float(info.get("performance", r))
        t += 1
        for k, v in info.items():
            if v.__class__ in _BOOLS and (v or k not in flags):
                flags[k] = bool(v)
        if learn is not None:
            learn(s, int(info.get("executed_action", a)), float(r), base.state_index, bool(term))
        if term or trunc:
            break
    for k in _NOT_FLAGS.intersection(flags):
        del flags[k]
    return g, perf, t, bool(term), flags


def train_current_rf(
    env: gym.Env,
    episodes: int,
    rng: np.random.Generator,
    *,
    alpha: float = 0.1,
    gamma: float = 0.99,
    epsilon: float = 0.1,
    q_init: float = 0.0,
    current_rf: bool = True,
    on_episode: Hook | None = None,
) -> TrainResult:
    """Q-learning with the current reward function (or, ``current_rf=False``, the observed reward).

    Same budget and hyper-parameters as :func:`alignlab.agents.tabular_gym.train`'s Q-learning;
    needs an alignlab world with compiled tables and a separable reward function.
    """
    if episodes < 0:
        raise ValueError(f"episodes must be >= 0, got {episodes}")
    if not 0.0 < alpha <= 1.0 or not 0.0 <= gamma <= 1.0 or not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"need 0 < alpha <= 1, 0 <= gamma, epsilon <= 1; got {alpha}, {gamma}, {epsilon}")
    cw = _tables(env.unwrapped)
    agent, rewards = _new_agent(cw, q_init)
    u = _Uniforms(rng)
    n_theta = len(agent.thetas)

    def act(s: int) -> int:
        return epsilon_greedy(agent.values(s), epsilon, u)

    def learn(s: int, a: int, r: float, s2: int, term: bool) -> None:
        k = _outcome_slot(cw, s, a, s2, term, r)
        for j in range(n_theta):
            qs = agent.q[j][s]
            r_j = float(rewards[j][s, a, k]) if current_rf else r
            target = r_j if term else r_j + gamma * max(agent.q[j][s2])
            qs[a] += alpha * (target - qs[a])

    rec = EpisodeRecorder(episodes)
    env_seed = int(rng.integers(2**31 - 1))
    steps, t0 = 0, time.perf_counter()
    for ep in range(episodes):
        g, perf, t, term, flags = _episode(env, act, learn, env_seed if ep == 0 else None)
        steps += t
        stats = rec.add(g, perf, t, term, flags)
        if on_episode is not None:
            on_episode(ep, stats)
    elapsed = time.perf_counter() - t0
    method = "current_rf_q_learning" if current_rf else "q_learning_per_theta"
    sps = steps / elapsed if elapsed > 0 else float("nan")
    return TrainResult(**rec.fields(), steps_per_second=sps, agent=agent, method=method)  # type: ignore[arg-type]


def evaluate_current_rf(
    env: gym.Env, agent: CurrentRFAgent, episodes: int, rng: np.random.Generator
) -> EpisodeStats:
    """Run the agent greedily on its current reward function's table (random tie-breaking)."""
    u = _Uniforms(rng)
    rec = EpisodeRecorder(episodes)
    env_seed = int(rng.integers(2**31 - 1))
    for ep in range(episodes):
        rec.add(*_episode(env, lambda s: epsilon_greedy(agent.values(s), 0.0, u), None,
                          env_seed if ep == 0 else None))  # fmt: skip
    return EpisodeStats(**rec.fields())


def run_current_rf_planner(env: gym.Env, episodes: int, rng: np.random.Generator) -> EpisodeStats:
    """The exact current-RF planner: each step, the optimal action for the rest of the episode
    with every future transition scored by the reward function θ of the current state."""
    base = env.unwrapped
    cw = _tables(base)
    horizon = cw.world.episode_limit
    plans: dict[Hashable, np.ndarray] = {}
    t = [0]

    def act(s: int) -> int:
        theta = cw.world.reward_parameters(cw.states[s])
        if theta not in plans:
            plans[theta] = finite_horizon_policies(cw, rewards_under(cw, theta), horizon)
        a = int(plans[theta][horizon - 1 - min(t[0], horizon - 1), s])
        t[0] += 1
        return a

    rec = EpisodeRecorder(episodes)
    env_seed = int(rng.integers(2**31 - 1))
    for ep in range(episodes):
        t[0] = 0
        rec.add(*_episode(env, act, None, env_seed if ep == 0 else None))
    return EpisodeStats(**rec.fields())
