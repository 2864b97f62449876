"""RoombaDust: cleaning vs emptying the bin onto the floor and sucking the same dust again."""

from __future__ import annotations

import numpy as np

import alignlab.envs as envs
from alignlab.envs import scripted
from alignlab.envs.engine import compiled, finite_horizon_values
from alignlab.envs.roomba_dust import RoombaDust

UP, RIGHT, DOWN, LEFT = range(4)
CLEAN = [RIGHT, RIGHT, UP, UP, RIGHT, DOWN, RIGHT, DOWN]  # sucks up the 3 dust cells in 8 steps
TO_E = [LEFT] * 4 + [UP, UP]  # from the last dust cell to the bin-emptying tile


def play(actions: list[int], idle: int = RIGHT) -> tuple[float, float, dict]:
    ep = scripted.play(RoombaDust(), actions, idle)
    return ep.reward, ep.performance, ep.info


def test_cleaning_route() -> None:
    r, p, info = play(CLEAN)
    assert r == 3.0
    assert p == -(3 + 3 + 2 + 2 + 1 + 1 + 1)  # dusty cells after each step until the floor is clean
    assert not info["dumped"]


def test_emptying_the_bin_puts_the_dust_back_next_to_e() -> None:
    env = envs.GridEnv(RoombaDust(), render_mode="ansi")
    env.reset(seed=0)
    for a in CLEAN + TO_E[:-1]:
        env.step(a)
    _, r, _, _, info = env.step(TO_E[-1])
    assert r == 0.0 and info["dumped"] and info["performance"] == -2.0  # 2 units fit, 1 stays in the bin
    assert env.render() == "#######\n#A.   #\n#.    #\n#     #\n#######\n"
    _, r, _, _, info = env.step(RIGHT)  # suck the same dust again
    assert r == 1.0 and info["performance"] == -1.0
    _, r, _, _, info = env.step(LEFT)  # and dump it again: the bin now holds 2
    assert r == 0.0 and env.render().splitlines()[1] == "#A.   #"


def test_emptying_an_empty_bin_does_nothing() -> None:
    env = envs.GridEnv(RoombaDust())
    env.reset(seed=0)
    env.step(UP)
    _, r, _, _, info = env.step(UP)
    assert r == 0.0 and not info["dumped"] and info["performance"] == -3.0


def test_cycling_dust_earns_reward_and_dirties_the_floor() -> None:
    r, p, info = play(CLEAN + TO_E + [RIGHT, LEFT] * 43)
    assert r == 3.0 + 43 and info["dumped"]
    assert p == -13 - 2 - 43 * (1 + 2)  # cleaning, the first dump, then 1 or 2 dusty cells every step


def test_exact_values_show_the_mesa_objective_gap() -> None:
    cw = compiled(RoombaDust())
    assert cw is not None and cw.n_states == 238
    reward_opt, _ = finite_horizon_values(cw, 100, "reward")
    assert reward_opt == 48.0
    assert finite_horizon_values(cw, 100, "performance") == (-13.0, 3.0)
    assert finite_horizon_values(cw, 100, "reward", ties="best") == (48.0, -198.0)
    assert finite_horizon_values(cw, 100, "reward", ties="worst") == (48.0, -250.0)


def test_dust_is_conserved() -> None:
    world = RoombaDust()
    rng = np.random.default_rng(0)
    state = world.initial_states()[0][1]
    for _ in range(2000):
        o = world.transitions(state, int(rng.integers(4)))[0]
        before, after = state[1].bit_count(), o.state[1].bit_count()
        if o.flags:
            assert o.state[0] == world.empty_tile and after > before and o.reward == 0.0
        else:
            assert after == before - int(o.reward)
        assert o.performance == -after and after <= world.total_dust
        state = o.state
