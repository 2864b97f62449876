"""Tabular TD control on Gymnasium envs: the cliff (S&B Ex. 6.6), overridden actions (Orseau &
Armstrong 2016), time-limit bootstrapping, seeding, schedules, flags and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from alignlab.agents.tabular import LinearSchedule
from alignlab.agents.tabular_gym import METHODS, TabularAgent, evaluate, state_key, train

CLIFF_ID = "CliffWalking-v1" if "CliffWalking-v1" in gym.registry else "CliffWalking-v0"
CLIFF_ROW = set(range(25, 35))  # the row just above the cliff, between start and goal (4x12 grid)


class OverrideCorridor(gym.Env):
    """Two routes from the start. "Safe" (action 1) ends at once with +0.2. "Short" (action 0) leads
    to a door where exiting (action 0) pays +1, but half the time the env overrides the agent's action
    with "fall" (action 1, -10) and reports the executed action. Q-learning rates the short route by
    the door's best action (+1); Sarsa by what is executed there (-4.5 on average)."""

    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._at_door = False
        return 0, {}

    def step(self, action):
        if not self._at_door:
            if action == 1:
                return 0, 0.2, True, False, {"performance": 0.2, "interrupted": False}
            self._at_door = True
            return 1, 0.0, False, False, {"performance": 0.0, "interrupted": False}
        forced = bool(self.np_random.random() < 0.5)
        executed = 1 if forced else int(action)
        info = {"performance": 0.0, "interrupted": forced}
        if forced:
            info["executed_action"] = executed
        return 1, (1.0 if executed == 0 else -10.0), True, False, info


class Loop(gym.Env):
    """One state, reward 1 per step, never terminates (a time limit cuts the episode)."""

    observation_space = gym.spaces.Discrete(1)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 1.0, False, False, {}


class Flagged(gym.Env):
    """Three steps an episode; flag "hit" is True at step 2 of odd episodes; other info values are ints."""

    observation_space = gym.spaces.Discrete(3)
    action_space = gym.spaces.Discrete(2)

    def __init__(self):
        self.episode = -1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return 0, {}

    def step(self, action):
        self.t += 1
        hit = np.bool_(self.t == 2 and self.episode % 2 == 1)
        info = {"hit": hit, "never": False, "count": 3, "np_int": np.int64(1), "performance": 0.5}
        return self.t % 3, 1.0, self.t == 3, False, info


def greedy_path(env: gym.Env, agent: TabularAgent, max_steps: int = 50) -> list[int]:
    obs, _ = env.reset()
    path = [obs]
    for _ in range(max_steps):
        obs, _, term, _, _ = env.step(agent.greedy_policy(obs))
        path.append(obs)
        if term:
            break
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cliff_walking_sarsa_takes_the_safe_path_and_q_learning_the_optimal_one(seed):
    # Sutton & Barto (2018) Example 6.6, ε = 0.1. A decaying α lets the greedy policies settle (with a
    # constant α = 0.5 Sarsa's greedy snapshot sometimes loops: 5 of 20 seeds).
    kw = {"alpha": LinearSchedule(0.5, 0.05, 400), "gamma": 1.0, "epsilon": 0.1}
    env = gym.make(CLIFF_ID, max_episode_steps=500)
    sarsa = train(env, "sarsa", 500, np.random.default_rng(seed), **kw)
    qlearn = train(env, "q_learning", 500, np.random.default_rng(seed), **kw)

    safe = greedy_path(env, sarsa.agent)
    assert safe[-1] == 47 and len(safe) - 1 > 13
    assert not CLIFF_ROW.intersection(safe)
    optimal = greedy_path(env, qlearn.agent)
    assert optimal[-1] == 47 and len(optimal) - 1 == 13
    assert set(optimal) >= CLIFF_ROW
    # ... while online (exploring) Sarsa earns more: Q-learning's path makes it fall off the cliff.
    assert sarsa.reward[-100:].mean() > qlearn.reward[-100:].mean()
    greedy = evaluate(env, qlearn.agent, 3, np.random.default_rng(seed))
    np.testing.assert_array_equal(greedy.reward, [-13.0] * 3)
    np.testing.assert_array_equal(greedy.performance, greedy.reward)  # no info["performance"]: the reward


def test_sarsa_learns_the_cost_of_an_override_and_q_learning_does_not():
    chosen = {}
    for method in METHODS:
        res = train(OverrideCorridor(), method, 3000, np.random.default_rng(0), alpha=0.1, gamma=1.0)
        chosen[method] = res.agent.greedy_policy(0)
        if method == "q_learning":
            assert res.agent.values(0)[0] == pytest.approx(1.0, abs=0.1)  # the door's max, not its mean
            assert res.flag_rates["interrupted"] > 0.3
        if method == "sarsa":
            assert res.agent.values(0)[0] < -2.0
            assert res.flag_rates["interrupted"] < 0.1
    # Expected Sarsa takes the expectation under its own ε-greedy policy, not the override.
    assert chosen == {"q_learning": 0, "sarsa": 1, "expected_sarsa": 0}


def test_truncation_bootstraps_and_termination_does_not():
    env = gym.wrappers.TimeLimit(Loop(), max_episode_steps=5)
    for method in METHODS:
        res = train(env, method, 300, np.random.default_rng(0), alpha=0.5, gamma=0.5, epsilon=0.0)
        np.testing.assert_allclose(res.agent.q, [[2.0, 0.0]], atol=1e-6)  # 1 / (1 - γ) on the action used
        assert not res.terminated.any() and (res.length == 5).all()
    res = train(OverrideCorridor(), "q_learning", 500, np.random.default_rng(0), alpha=0.5, epsilon=1.0)
    assert res.terminated.all()
    assert res.agent.values(1).max() <= 1.0  # the terminal step's target is r, no bootstrap


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_run(method):
    def run(seed):
        env = gym.make(CLIFF_ID, max_episode_steps=100)
        return train(env, method, 60, np.random.default_rng(seed), alpha=0.5, epsilon=0.2)

    a, b, c = run(3), run(3), run(4)
    for field in ("reward", "performance", "length", "terminated"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.agent.q, b.agent.q)
    assert a.agent.index == b.agent.index
    assert not np.array_equal(a.reward, c.reward)
    env = gym.make(CLIFF_ID, max_episode_steps=100)
    e1 = evaluate(env, a.agent, 5, np.random.default_rng(1), epsilon=0.3)
    e2 = evaluate(env, a.agent, 5, np.random.default_rng(1), epsilon=0.3)
    np.testing.assert_array_equal(e1.reward, e2.reward)


def test_schedules_reach_the_hook_and_bad_values_are_refused():
    seen = []
    sched = LinearSchedule(1.0, 0.0, 10)
    res = train(
        OverrideCorridor(),
        "sarsa",
        20,
        np.random.default_rng(0),
        epsilon=sched,
        on_episode=lambda ep, stats: seen.append((ep, stats)),
    )
    assert [ep for ep, _ in seen] == list(range(20))
    assert [s["epsilon"] for _, s in seen] == [sched(ep) for ep in range(20)]
    assert all(isinstance(v, float) for _, s in seen for v in s.values())
    assert [s["reward"] for _, s in seen] == res.reward.tolist()
    assert set(seen[0][1]) == {"reward", "performance", "length", "epsilon", "alpha", "interrupted"}
    train(OverrideCorridor(), "q_learning", 5, np.random.default_rng(0), epsilon=lambda ep: 0.5 / (ep + 1))
    with pytest.raises(ValueError, match="epsilon must be in"):
        train(OverrideCorridor(), "q_learning", 5, np.random.default_rng(0), epsilon=lambda ep: 1.0 + ep)
    with pytest.raises(ValueError, match="alpha must be in"):
        train(OverrideCorridor(), "q_learning", 5, np.random.default_rng(0), alpha=lambda ep: 1.0 - ep)


def test_boolean_flags_are_aggregated_per_episode():
    res = train(Flagged(), "q_learning", 6, np.random.default_rng(0))
    assert set(res.flags) == {"hit", "never"}  # ints and np.int64 are not flags
    np.testing.assert_array_equal(res.flags["hit"], [False, True] * 3)
    assert res.flag_rates == {"hit": 0.5, "never": 0.0}
    np.testing.assert_array_equal(res.performance, [1.5] * 6)
    np.testing.assert_array_equal(res.reward, [3.0] * 6)
    assert res.summary(last=2) == {"reward": 3.0, "performance": 1.5, "length": 3.0, "hit": 0.5, "never": 0.0}


def test_evaluate_neither_learns_nor_adds_states():
    res = train(OverrideCorridor(), "sarsa", 50, np.random.default_rng(0))
    q, index = res.agent.q, dict(res.agent.index)
    ev = evaluate(gym.wrappers.TimeLimit(Loop(), 3), res.agent, 4, np.random.default_rng(0))
    np.testing.assert_array_equal(res.agent.q, q)
    assert res.agent.index == index and ev.episodes == 4


def test_state_keys():
    obs = np.zeros((2, 3, 3), np.uint8)
    assert state_key(obs) == obs.tobytes() and state_key(np.int64(4)) == 4 and state_key((1, 2)) == (1, 2)
    env = gym.make(CLIFF_ID, max_episode_steps=20)
    res = train(env, "q_learning", 5, np.random.default_rng(0), key=lambda obs: obs // 12)  # by row
    assert res.agent.n_states <= 4 and res.agent.q.shape == (res.agent.n_states, 4)


def test_bad_input_is_refused_clearly():
    box = gym.make("Pendulum-v1")
    with pytest.raises(TypeError, match="Discrete action space"):
        train(box, "q_learning", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="method must be one of"):
        train(OverrideCorridor(), "dqn", 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="alpha"):
        train(OverrideCorridor(), "sarsa", 1, np.random.default_rng(0), alpha=0.0)
    with pytest.raises(ValueError, match="gamma"):
        train(OverrideCorridor(), "sarsa", 1, np.random.default_rng(0), gamma=1.5)
    with pytest.raises(ValueError, match="3 actions"):
        train(OverrideCorridor(), "sarsa", 1, np.random.default_rng(0), agent=TabularAgent(3))
    with pytest.raises(TypeError, match="key="):
        state_key({"image": np.zeros(2)})
