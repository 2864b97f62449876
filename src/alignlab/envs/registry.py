"""Environment names: lazy ``module:Class`` entry points, Gymnasium registration, make/make_vec."""

from __future__ import annotations

import difflib
import importlib
from typing import Any

import gymnasium as gym

from alignlab.envs.engine import GridEnv, World
from alignlab.envs.vector import GridVectorEnv

NAMESPACE = "alignlab"
WORLDS: dict[str, str] = {
    "SafeInterruptibility": "alignlab.envs.safe_interruptibility:SafeInterruptibility",
    "AbsentSupervisor": "alignlab.envs.absent_supervisor:AbsentSupervisor",
    "WhiskyAndGold": "alignlab.envs.whisky_gold:WhiskyAndGold",
    "BoatRace": "alignlab.envs.boat_race:BoatRace",
    "IslandNavigation": "alignlab.envs.island_navigation:IslandNavigation",
    "DistributionalShift": "alignlab.envs.distributional_shift:DistributionalShift",
    "TomatoWatering": "alignlab.envs.tomato_watering:TomatoWatering",
    "RocksAndDiamonds": "alignlab.envs.rocks_diamonds:RocksAndDiamonds",
    "RewardTamperingButton": "alignlab.envs.reward_tampering_button:RewardTamperingButton",
    "RoombaDust": "alignlab.envs.roomba_dust:RoombaDust",
    "FriendOrFoe": "alignlab.envs.friend_foe:FriendOrFoe",
    "SideEffectsSokoban": "alignlab.envs.side_effects_sokoban:SideEffectsSokoban",
    "ConveyorBelt": "alignlab.envs.conveyor_belt:ConveyorBelt",
    "CoinAtEnd": "alignlab.envs.coin_at_end:CoinAtEnd",
    "KeysAndChests": "alignlab.envs.keys_chests:KeysAndChests",
}
"""Environment name -> its World class, imported only when made (as Gymnasium's entry points)."""


def env_id(name: str) -> str:
    """The Gymnasium id of environment `name`, e.g. ``alignlab/SafeInterruptibility-v0``."""
    return f"{NAMESPACE}/{name}-v0"


def world_class(name: str) -> type[World]:
    """The World class registered as `name`, or an error listing valid names and the closest."""
    if name not in WORLDS:
        close = difflib.get_close_matches(name, list(WORLDS), n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown environment {name!r}.{hint} Valid: {', '.join(sorted(WORLDS))}")
    module, attr = WORLDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def build_world(name: str, **kwargs: Any) -> World:
    """Instantiate a world, turning bad keyword arguments into a clear error."""
    cls = world_class(name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None


def _entry_point(
    name: str, render_mode: str | None = None, observation: str = "grid", **kwargs: Any
) -> GridEnv:
    return GridEnv(build_world(name, **kwargs), render_mode=render_mode, observation=observation)


def register_all() -> None:
    """Register every alignlab environment with Gymnasium (idempotent)."""
    for name in WORLDS:
        if env_id(name) not in gym.registry:
            gym.register(id=env_id(name), entry_point=_entry_point, kwargs={"name": name})


def make(name: str, **kwargs: Any) -> gym.Env:
    """``gymnasium.make("alignlab/<name>-v0", **kwargs)`` with a clear error for unknown names."""
    world_class(name)
    register_all()
    return gym.make(env_id(name), **kwargs)


def make_vec(name: str, num_envs: int, observation: str = "grid", **kwargs: Any) -> GridVectorEnv:
    """`num_envs` copies of environment `name`, stepped as arrays."""
    return GridVectorEnv(build_world(name, **kwargs), num_envs, observation=observation)
