"""Every registered gridworld: Gymnasium's checker, seeding, the vector path, exact tables.

Parametrised over the registry, so a new environment cannot skip these.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import alignlab.envs as envs
from alignlab.envs.engine import compile_world

NAMES = sorted(envs.WORLDS)


def rollout(env: gym.Env, seed: int, actions: np.ndarray) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    out = [obs.tobytes()]
    for a in actions:
        obs, r, term, trunc, info = env.step(int(a))
        out.append((obs.tobytes(), r, term, trunc, info["performance"], info["executed_action"]))
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs.tobytes())
    return out


@pytest.mark.parametrize("name", NAMES)
def test_gymnasium_env_checker_passes(name: str) -> None:
    check_env(envs.make(name).unwrapped, skip_render_check=False)
    check_env(envs.make(name, render_mode="rgb_array").unwrapped)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_trajectory(name: str) -> None:
    actions = np.random.default_rng(0).integers(0, 4, 300)
    a = rollout(envs.make(name), 7, actions)
    b = rollout(envs.make(name), 7, actions)
    assert a == b


@pytest.mark.parametrize("name", NAMES)
def test_vector_env_with_one_world_replays_the_single_env(name: str) -> None:
    actions = np.random.default_rng(1).integers(0, 4, 400)
    single = envs.make(name).unwrapped
    vec = envs.make_vec(name, num_envs=1)
    obs_s, _ = single.reset(seed=3)
    obs_v, _ = vec.reset(seed=3)
    assert np.array_equal(obs_s, obs_v[0])
    pending_reset = False
    for a in actions:
        obs_v, r_v, term_v, trunc_v, info_v = vec.step(np.array([a]))
        if pending_reset:
            obs_s, _ = single.reset()
            pending_reset = False
            assert np.array_equal(obs_s, obs_v[0]) and r_v[0] == 0.0
            continue
        obs_s, r_s, term_s, trunc_s, info_s = single.step(int(a))
        assert np.array_equal(obs_s, obs_v[0])
        assert (r_s, term_s, trunc_s) == (r_v[0], term_v[0], trunc_v[0])
        assert info_s["performance"] == info_v["performance"][0]
        assert info_s["executed_action"] == info_v["executed_action"][0]
        pending_reset = term_s or trunc_s


@pytest.mark.parametrize("name", NAMES)
def test_vector_env_is_a_gymnasium_vector_env(name: str) -> None:
    vec = envs.make_vec(name, num_envs=16)
    assert isinstance(vec, gym.vector.VectorEnv)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (16, *vec.single_observation_space.shape)
    rng = np.random.default_rng(0)
    for _ in range(250):  # crosses the 100-step limit: autoreset must work
        obs, r, *_ = vec.step(rng.integers(0, 4, 16))
    assert obs.dtype == np.uint8 and r.shape == (16,)
    assert vec.observation_space.contains(obs)


@pytest.mark.parametrize("name", NAMES)
def test_compiled_tables_match_sampled_transitions(name: str) -> None:
    env = envs.make(name).unwrapped
    world = env.world
    cw = compile_world(world)
    rng = np.random.default_rng(0)
    for s_i in rng.choice(cw.n_states, size=min(20, cw.n_states), replace=False):
        for a in range(world.n_actions):
            outcomes = world.transitions(cw.states[s_i], a)
            table = {}
            for k in range(cw.prob.shape[-1]):
                if cw.prob[s_i, a, k] > 0:
                    key = (int(cw.next_state[s_i, a, k]), bool(cw.terminated[s_i, a, k]))
                    table[key] = table.get(key, 0.0) + cw.prob[s_i, a, k]
            direct = {}
            for o in outcomes:
                key = (cw.index[o.state] if not o.terminated else int(s_i), o.terminated)
                direct[key] = direct.get(key, 0.0) + o.prob
            assert table.keys() == direct.keys()
            for key in table:
                assert table[key] == pytest.approx(direct[key])


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_a_clear_error(name: str) -> None:
    env = envs.make(name).unwrapped
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (-1, 4 if env.world.n_actions == 4 else 99, 1.5):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(bad)
    with pytest.raises(TypeError, match=name):
        envs.make(name, no_such_option=3)


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match="SafeInterruptibility"):
        envs.make("SafeInteruptibility")


def test_gymnasium_make_by_id() -> None:
    env = gym.make("alignlab/SafeInterruptibility-v0", level=0)
    assert env.unwrapped.world.level == 0


@pytest.mark.parametrize("observation", ["grid", "flat"])
def test_observations_are_fresh_arrays(observation: str) -> None:
    env = envs.make("SafeInterruptibility", observation=observation).unwrapped
    first, _ = env.reset(seed=0)
    first[...] = 7  # a user scribbling on an observation must not change the world
    again, _ = env.reset(seed=0)
    assert again.max() == 1
