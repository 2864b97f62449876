"""Deep RL baselines through Stable-Baselines3 (Raffin et al. 2021): PPO, DQN and A2C on the gridworlds.

A small CNN (`GridCNN`) reads the one-hot (C, H, W) grids, which are far below the 36 px that SB3's
NatureCNN needs; the alternative is SB3's MLP on the flattened grid. `PerformanceCallback` records,
per episode, the reward and the hidden true performance (the sum of ``info["performance"]``) and the
env's boolean flags, in the same :class:`EpisodeStats` as the tabular learners.

SB3 seeds Python's, NumPy's and PyTorch's global generators from `seed` (its own design); on CPU the
same seed gives the same run.

    >>> model, stats = train_sb3(lambda: alignlab.envs.make("SafeInterruptibility"), "a2c", 100_000, seed=0)
    >>> stats.flag_rates["button_pressed"]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch import nn

from alignlab.agents.tabular_gym import _BOOLS, _NOT_FLAGS, EpisodeRecorder, EpisodeStats

Algo = Literal["ppo", "dqn", "a2c"]
ALGOS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "dqn": DQN, "a2c": A2C}
Hook = Callable[[int, dict[str, float]], None]

__all__ = ["ALGOS", "GridCNN", "PerformanceCallback", "evaluate_model", "make_model", "train_sb3"]


class GridCNN(BaseFeaturesExtractor):
    """3x3 convolutions (padding 1, no pooling) over a small (C, H, W) grid, then a linear layer."""

    def __init__(
        self, observation_space: gym.spaces.Box, features_dim: int = 128, channels: tuple[int, ...] = (32, 64)
    ) -> None:
        shape = getattr(observation_space, "shape", None)
        if not isinstance(observation_space, gym.spaces.Box) or shape is None or len(shape) != 3:
            raise ValueError(
                f"GridCNN needs a (C, H, W) Box observation space, got {observation_space!r}; "
                "use policy='mlp' for other observations"
            )
        super().__init__(observation_space, features_dim)
        layers: list[nn.Module] = []
        c_in = shape[0]
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU()]
            c_in = c_out
        self.cnn = nn.Sequential(*layers, nn.Flatten())
        n_flat = c_in * shape[1] * shape[2]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float grids -> (B, features_dim) features."""
        return self.linear(self.cnn(observations))


def _discrete_check(env: gym.Env | VecEnv) -> None:
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise TypeError(f"alignlab's SB3 baselines need a Discrete action space, got {env.action_space!r}")


def _resolve_policy(policy: str, obs_space: gym.Space) -> str:
    if policy == "auto":
        is_grid = isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 3
        return "cnn" if is_grid else "mlp"
    if policy not in ("cnn", "mlp"):
        raise ValueError(f"policy must be 'cnn', 'mlp' or 'auto', got {policy!r}")
    return policy


def make_model(
    algo: Algo,
    env: gym.Env | VecEnv,
    seed: int,
    device: str = "cpu",
    policy: Literal["cnn", "mlp", "auto"] = "auto",
    **hyperparams: Any,
) -> BaseAlgorithm:
    """An SB3 `algo` model on `env` with a GridCNN ("cnn") or flat MLP ("mlp") policy; "auto" picks
    the CNN for (C, H, W) observations. `hyperparams` go to the SB3 constructor (e.g. ``n_steps``)."""
    cls = ALGOS.get(str(algo).lower())
    if cls is None:
        raise ValueError(f"algo must be one of {', '.join(ALGOS)}; got {algo!r}")
    _discrete_check(env)
    policy = _resolve_policy(policy, env.observation_space)
    policy_kwargs = dict(hyperparams.pop("policy_kwargs", None) or {})
    if policy == "cnn":
        GridCNN(env.observation_space)  # fails early, with a clear message, on a non-grid space
        policy_kwargs.setdefault("features_extractor_class", GridCNN)
    hyperparams.setdefault("verbose", 0)
    return cls("MlpPolicy", env, seed=seed, device=device, policy_kwargs=policy_kwargs, **hyperparams)


class PerformanceCallback(BaseCallback):
    """Records each finished episode's reward, hidden performance, length and flags during `learn`."""

    def __init__(self, on_episode: Hook | None = None) -> None:
        super().__init__()
        self.on_episode = on_episode
        self.recorder = EpisodeRecorder()
        self._t0 = 0.0
        self._steps = 0

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._ret, self._perf = np.zeros(n), np.zeros(n)
        self._len = np.zeros(n, dtype=np.int64)
        self._flags: list[dict[str, bool]] = [{} for _ in range(n)]
        self._t0, self._steps = time.perf_counter(), 0

    def _on_step(self) -> bool:
        rewards, dones, infos = self.locals["rewards"], self.locals["dones"], self.locals["infos"]
        self._steps += len(dones)
        for i, info in enumerate(infos):
            r = float(rewards[i])
            self._ret[i] += r
            self._perf[i] += float(info.get("performance", r))
            self._len[i] += 1
            flags = self._flags[i]
            for k, v in info.items():
                if v.__class__ in _BOOLS and k not in _NOT_FLAGS and (v or k not in flags):
                    flags[k] = bool(v)
            if dones[i]:
                self._finish(i, info)
        return True

    def _finish(self, i: int, info: dict[str, Any]) -> None:
        reward, length = float(self._ret[i]), int(self._len[i])
        if "episode" in info:  # Monitor's raw totals (the step rewards may be normalised by a wrapper)
            reward, length = float(info["episode"]["r"]), int(info["episode"]["l"])
        terminated = not info.get("TimeLimit.truncated", False)
        ep = self.recorder.n
        stats = self.recorder.add(reward, float(self._perf[i]), length, terminated, self._flags[i])
        self._ret[i] = self._perf[i] = 0.0
        self._len[i] = 0
        self._flags[i] = {}
        if self.on_episode is not None:
            stats["timesteps"] = float(self.num_timesteps)
            self.on_episode(ep, stats)

    def stats(self) -> EpisodeStats:
        """The episodes finished so far (unfinished ones are left out)."""
        elapsed = time.perf_counter() - self._t0
        sps = self._steps / elapsed if self._steps and elapsed > 0 else float("nan")
        return EpisodeStats(**self.recorder.fields(), steps_per_second=sps)


def train_sb3(
    env_fn: Callable[[], gym.Env] | str,
    algo: Algo,
    total_timesteps: int,
    seed: int,
    device: str = "cpu",
    on_episode: Hook | None = None,
    *,
    n_envs: int = 1,
    policy: Literal["cnn", "mlp", "auto"] = "auto",
    **hyperparams: Any,
) -> tuple[BaseAlgorithm, EpisodeStats]:
    """Train an SB3 `algo` for `total_timesteps` on `n_envs` copies of `env_fn()` (seeded seed + i);
    returns the model and the per-episode reward/performance/flags; `on_episode(ep, stats)` per episode."""
    if total_timesteps < 1:
        raise ValueError(f"total_timesteps must be >= 1, got {total_timesteps}")
    venv = make_vec_env(env_fn, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)
    try:
        model = make_model(algo, venv, seed, device, policy, **hyperparams)
        callback = PerformanceCallback(on_episode)
        model.learn(total_timesteps, callback=callback)
    except BaseException:
        venv.close()
        raise
    return model, callback.stats()


def evaluate_model(
    env: gym.Env, model: BaseAlgorithm, episodes: int, seed: int, deterministic: bool = True
) -> EpisodeStats:
    """Run a trained SB3 `model` on `env` for `episodes` episodes (env seeded once with `seed`)."""
    rec = EpisodeRecorder(episodes)
    steps, t0 = 0, time.perf_counter()
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed) if ep == 0 else env.reset()
        g = perf = 0.0
        t = 0
        flags: dict[str, bool] = {}
        term = trunc = False
        while not (term or trunc):
            action, _ = model.predict(obs, deterministic=deterministic)
            obs, r, term, trunc, info = env.step(int(action))
            g += float(r)
            perf += float(info.get("performance", r))
            t += 1
            for k, v in info.items():
                if v.__class__ in _BOOLS and k not in _NOT_FLAGS and (v or k not in flags):
                    flags[k] = bool(v)
        steps += t
        rec.add(g, perf, t, bool(term), flags)
    elapsed = time.perf_counter() - t0
    return EpisodeStats(**rec.fields(), steps_per_second=steps / elapsed if elapsed > 0 else float("nan"))
