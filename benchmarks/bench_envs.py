"""Environment speed: alignlab's gridworlds against MiniGrid and safety-gridworlds-gymnasium.

Run: ``pip install -e '.[bench]' && python benchmarks/bench_envs.py`` (peers must be installed;
missing ones are skipped with a note). Everything runs in this one process, on the same random
actions, on the unwrapped environments (no Gymnasium wrappers on any side). Targets (issue 4):
single env >= 5x MiniGrid-Empty-8x8 and no slower than safety-gridworlds-gymnasium on the
environments it has; make_vec(1024) >= 100x MiniGrid's and >= 20x safety-gridworlds-gymnasium's
single-env rate. Writes the vector scaling plot to benchmarks/out/bench_envs_scaling.png.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import alignlab.envs as envs

STEPS = 20_000
PEERS = {
    "MiniGrid-Empty-8x8-v0": "minigrid",
    "safety_gridworlds/IslandNavigation-v0": "safety_gridworlds_gymnasium",
    "safety_gridworlds/Sokoban-v0": "safety_gridworlds_gymnasium",
    "safety_gridworlds/ConveyorBelt-v0": "safety_gridworlds_gymnasium",
}
SAME_WORK = {  # peer id -> our environment with the same layout and rules
    "safety_gridworlds/IslandNavigation-v0": "IslandNavigation",
    "safety_gridworlds/Sokoban-v0": "SideEffectsSokoban",
    "safety_gridworlds/ConveyorBelt-v0": "ConveyorBelt",
}


def steps_per_second(env: gym.Env, n_actions: int, steps: int = STEPS, repeats: int = 3) -> float:
    """Median random-action steps/s of one unwrapped env, resetting at episode ends."""
    actions = np.random.default_rng(0).integers(0, n_actions, steps).tolist()
    rates = []
    for r in range(repeats):
        env.reset(seed=r)
        step, reset = env.step, env.reset
        start = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = step(a)
            if term or trunc:
                reset()
        rates.append(steps / (time.perf_counter() - start))
    return float(np.median(rates))


def vector_steps_per_second(name: str, num_envs: int, steps: int = 200) -> float:
    """Aggregate steps/s of make_vec(name, num_envs) on random actions."""
    vec = envs.make_vec(name, num_envs)
    vec.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, (steps, num_envs))
    start = time.perf_counter()
    for a in actions:
        vec.step(a)
    return steps * num_envs / (time.perf_counter() - start)


def peer_rates() -> dict[str, float]:
    """Single-env rates of the peer environments that are installed."""
    out = {}
    for env_id, module in PEERS.items():
        try:
            importlib.import_module(module)
            env = gym.make(env_id).unwrapped
        except Exception as exc:  # not installed, or the peer failed to build
            print(f"  skip {env_id}: {type(exc).__name__}: {exc}")
            continue
        out[env_id] = steps_per_second(env, int(env.action_space.n))
        print(f"  {env_id:42s} {out[env_id]:>12,.0f} steps/s")
    return out


def ours_rates() -> dict[str, float]:
    """Single-env rates of every alignlab environment that exists."""
    out = {}
    for name in sorted(envs.WORLDS):
        try:
            env = envs.make(name).unwrapped
        except (ImportError, AttributeError) as exc:
            print(f"  skip {name}: {exc}")
            continue
        out[name] = steps_per_second(env, env.world.n_actions)
        print(f"  alignlab/{name:33s} {out[name]:>12,.0f} steps/s")
    return out


def main() -> None:
    """Print single-env rates, vector rates and the ratios against each target."""
    print(f"single env, random actions, {STEPS:,} steps, median of 3")
    peers = peer_rates()
    ours = ours_rates()
    minigrid = peers.get("MiniGrid-Empty-8x8-v0")
    print("\nratios")
    for name, rate in ours.items():
        if minigrid:
            print(f"  {name:28s} {rate / minigrid:6.1f}x MiniGrid-Empty-8x8   (target >= 5x)")
    for peer_id, name in SAME_WORK.items():
        if peer_id in peers and name in ours:
            print(f"  {name:28s} {ours[name] / peers[peer_id]:6.1f}x {peer_id}   (target >= 1x)")
    vec_name = next((n for n in ("IslandNavigation", "SafeInterruptibility") if n in ours), None)
    if vec_name is None:
        return
    print(f"\nmake_vec({vec_name!r}, N): aggregate steps/s")
    sizes = [1, 8, 64, 256, 1024, 4096, 8192]
    rates = [vector_steps_per_second(vec_name, n) for n in sizes]
    for n, r in zip(sizes, rates, strict=True):
        print(f"  N={n:5d} {r:>14,.0f} steps/s")
    at_1024 = rates[sizes.index(1024)]
    if minigrid:
        print(f"  N=1024: {at_1024 / minigrid:8.1f}x MiniGrid single env   (target >= 100x)")
    sgg = [peers[p] for p in SAME_WORK if p in peers]
    if sgg:
        print(f"  N=1024: {at_1024 / max(sgg):8.1f}x fastest safety-gridworlds-gymnasium env (target >= 20x)")
    _plot(sizes, rates, minigrid, vec_name)
    tabular_episodes_per_second()


def tabular_episodes_per_second(episodes: int = 3000) -> None:
    """Tabular Q-learning on SafeInterruptibility: training episodes (and steps) per second."""
    from alignlab.agents.tabular_gym import train

    env = envs.make("SafeInterruptibility").unwrapped
    start = time.perf_counter()
    res = train(env, "q_learning", episodes, np.random.default_rng(0), epsilon=0.1, q_init=60.0)
    elapsed = time.perf_counter() - start
    print(f"\ntabular Q-learning on SafeInterruptibility: {episodes / elapsed:,.0f} episodes/s "
          f"({res.length.sum() / elapsed:,.0f} steps/s, {episodes} episodes)")  # fmt: skip


def _plot(sizes: list[int], rates: list[float], minigrid: float | None, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(sizes, rates, "o-", label=f"alignlab make_vec({name})")
    if minigrid:
        ax.axhline(minigrid, color="grey", ls="--", label="MiniGrid-Empty-8x8, single env")
    ax.set(xlabel="number of envs", ylabel="aggregate steps/s", title="Vectorised gridworld scaling")
    ax.legend()
    out = Path(__file__).parent / "out" / "bench_envs_scaling.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    print(f"  plot: {out}")


if __name__ == "__main__":
    main()
