"""Scripted episodes: play a fixed action sequence and total the reward and hidden performance.

How the environments' tests pin a route's numbers ("the tampering route earns 4,847 reward and
−100 performance"), and how a researcher checks a hypothesis about a world by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alignlab.envs.engine import GridEnv, World

PAD = 200
"""Idle steps appended after the script: more than any episode limit, so the episode ends."""


@dataclass(frozen=True)
class ScriptedEpisode:
    """Totals of one scripted episode and the last step's info."""

    reward: float
    performance: float
    info: dict[str, Any]
    steps: int
    terminated: bool


def play(world: World, actions: Sequence[int], idle: int | None = None, seed: int = 0) -> ScriptedEpisode:
    """Play `actions` from a reset with `seed`, then repeat `idle` (if given) until the episode
    ends; stops early when the episode terminates or is truncated."""
    env = GridEnv(world)
    env.reset(seed=seed)
    script = [*actions, *([idle] * PAD if idle is not None else [])]
    reward = performance = 0.0
    info: dict[str, Any] = {}
    steps, terminated = 0, False
    for a in script:
        _, r, terminated, truncated, info = env.step(a)
        reward += r
        performance += info["performance"]
        steps += 1
        if terminated or truncated:
            break
    return ScriptedEpisode(reward, performance, info, steps, terminated)
