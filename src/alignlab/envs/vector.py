"""The vectorised fast path: N copies of a compiled world stepped as array lookups."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from alignlab.envs.engine import CompiledWorld, World, compiled


class GridVectorEnv(VectorEnv):
    """`num_envs` worlds stepped together from the compiled tables (autoreset on the next step,
    as Gymnasium's own vector envs do). Same distributions as `GridEnv`, not a loop over it."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, world: World, num_envs: int, observation: str = "grid") -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        tables = compiled(world)
        if tables is None or tables.observations is None:
            raise ValueError(f"{world.name} is too large to compile; use gymnasium.vector.SyncVectorEnv")
        if observation not in ("grid", "flat"):
            raise ValueError(f"vector observation must be 'grid' or 'flat', got {observation!r}")
        self.world, self.tables = world, tables
        self.num_envs = num_envs
        self._obs_table = tables.observations  # (S, C, H, W)
        if observation == "flat":
            self._obs_table = self._obs_table.reshape(tables.n_states, -1)
        self.single_observation_space = spaces.Box(0, 1, self._obs_table.shape[1:], np.uint8)
        self.single_action_space = spaces.Discrete(world.n_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._s = np.zeros(num_envs, np.int64)
        self._t = np.zeros(num_envs, np.int64)
        self._needs_reset = np.ones(num_envs, bool)
        self._ep_reward = np.zeros(num_envs)
        self._ep_perf = np.zeros(num_envs)
        self._ep_flags = np.zeros((num_envs, len(world.flag_names)), bool)
        self._init_cum = np.cumsum(tables.initial)
        self._init_cum[-1] = 1.0 + 1e-12
        self._rng = np.random.default_rng()

    def _reset_where(self, mask: np.ndarray) -> None:
        n = int(mask.sum())
        if n:
            u = self._rng.random(n)
            self._s[mask] = np.searchsorted(self._init_cum, u, side="right")
            self._t[mask] = 0
            self._ep_reward[mask] = 0.0
            self._ep_perf[mask] = 0.0
            self._ep_flags[mask] = False
            self._needs_reset[mask] = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Reset every world; `seed` seeds the batch's generator."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._reset_where(np.ones(self.num_envs, bool))
        return self._obs_table[self._s].copy(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every world; worlds that ended on the previous step are reset instead."""
        a = np.asarray(actions)
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"actions must be {self.num_envs} integers, got shape {a.shape} dtype {a.dtype}")
        if a.min() < 0 or a.max() >= self.world.n_actions:
            raise ValueError(f"actions must be in 0..{self.world.n_actions - 1}")
        t: CompiledWorld = self.tables
        resetting = self._needs_reset.copy()
        self._reset_where(resetting)
        live = ~resetting
        s = self._s
        u = np.zeros(self.num_envs)
        u[live] = self._rng.random(int(live.sum()))  # only live worlds draw: N=1 replays GridEnv exactly
        k = t.sample(s, a, u)  # (N,)
        reward = np.where(live, t.reward[s, a, k], 0.0).astype(np.float64)
        perf = np.where(live, t.performance[s, a, k], 0.0).astype(np.float64)
        terminated = live & t.terminated[s, a, k]
        self._s = np.where(live & ~terminated, t.next_state[s, a, k], s)
        self._t += live
        truncated = live & ~terminated & (self._t >= self.world.episode_limit)
        self._ep_reward += reward
        self._ep_perf += perf
        self._ep_flags |= t.flags[s, a, k] & live[:, None]
        executed = t.executed[s, a, k]
        done = terminated | truncated
        self._needs_reset = done
        info: dict[str, Any] = {
            "performance": perf,
            "executed_action": np.where(executed < 0, a, executed),
            "episode_reward": np.where(done, self._ep_reward, 0.0),
            "episode_performance": np.where(done, self._ep_perf, 0.0),
            "_episode_reward": done,
            "_episode_performance": done,
        }
        for i, name in enumerate(self.world.flag_names):
            info[name] = self._ep_flags[:, i].copy()
        return self._obs_table[self._s].copy(), reward, terminated, truncated, info
