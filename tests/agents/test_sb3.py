"""SB3 baselines: GridCNN shapes, the performance callback, seeded determinism and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from alignlab.agents.sb3 import GridCNN, evaluate_model, make_model, train_sb3


class Corridor(gym.Env):
    """A 1x6 corridor as a one-hot (2, 1, 6) grid (agent, goal). Right reaches the goal (+1, done);
    -0.1 a step; 20 steps at most. Performance is the reward less 1 whenever the agent bumps the left
    wall, which also sets the flag "bumped"."""

    observation_space = gym.spaces.Box(0, 1, (2, 1, 6), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = int(self.np_random.integers(0, 3)), 0
        return self._obs(), {}

    def _obs(self):
        grid = np.zeros((2, 1, 6), np.uint8)
        grid[0, 0, self.pos] = grid[1, 0, 5] = 1
        return grid

    def step(self, action):
        self.t += 1
        bumped = action == 0 and self.pos == 0
        self.pos = min(max(self.pos + (1 if action == 1 else -1), 0), 5)
        done = self.pos == 5
        r = 1.0 if done else -0.1
        info = {"performance": r - float(bumped), "bumped": bool(bumped)}
        return self._obs(), r, done, self.t >= 20 and not done, info


PPO_KW = {"n_steps": 128, "batch_size": 64, "n_epochs": 4, "learning_rate": 3e-3}


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: threads only add overhead (and noise) here
    yield
    torch.set_num_threads(n)


def test_grid_cnn_maps_grids_to_features():
    space = gym.spaces.Box(0, 1, (5, 7, 8), np.uint8)
    net = GridCNN(space, features_dim=64)
    x = torch.as_tensor(np.stack([space.sample() for _ in range(3)])).float()
    assert net(x).shape == (3, 64) and net.features_dim == 64
    with pytest.raises(ValueError, match=r"\(C, H, W\) Box"):
        GridCNN(gym.spaces.Box(0, 1, (12,), np.uint8))


def test_ppo_mlp_records_episodes_learns_and_is_deterministic():
    seen = []

    def run(hook=None):
        return train_sb3(Corridor, "ppo", 2048, seed=7, policy="mlp", on_episode=hook, **PPO_KW)

    model, stats = run(lambda ep, s: seen.append((ep, s)))
    _, again = run()
    assert stats.episodes > 50 and np.isfinite(stats.reward).all() and np.isfinite(stats.performance).all()
    for field in ("reward", "performance", "length", "terminated"):
        np.testing.assert_array_equal(getattr(stats, field), getattr(again, field))
    np.testing.assert_array_equal(stats.flags["bumped"], again.flags["bumped"])
    assert "TimeLimit.truncated" not in stats.flags
    # performance = reward - 1 per bump: the callback sums info["performance"], not the reward
    assert (stats.performance <= stats.reward + 1e-9).all()
    np.testing.assert_array_equal(stats.performance < stats.reward - 0.5, stats.flags["bumped"])
    assert [ep for ep, _ in seen] == list(range(stats.episodes))
    assert [s["reward"] for _, s in seen] == pytest.approx(stats.reward.tolist())
    n = stats.episodes // 4
    assert stats.length[-n:].mean() < stats.length[:n].mean()  # it learns to walk right
    ev = evaluate_model(Corridor(), model, 5, seed=0)
    assert ev.terminated.all() and (ev.length <= 5).all()


@pytest.mark.parametrize("algo", ["dqn", "a2c"])
def test_other_algorithms_run_with_the_grid_cnn(algo):
    kw = {"learning_starts": 50, "buffer_size": 500} if algo == "dqn" else {"n_steps": 16}
    model, stats = train_sb3(Corridor, algo, 300, seed=0, policy="cnn", **kw)
    assert isinstance(
        model.policy.features_extractor if algo == "a2c" else model.q_net.features_extractor, GridCNN
    )
    assert stats.episodes > 0 and np.isfinite(stats.reward).all()


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="algo must be one of"):
        make_model("sac", Corridor(), seed=0)
    with pytest.raises(TypeError, match="Discrete action space"):
        make_model("ppo", gym.make("Pendulum-v1"), seed=0)
    with pytest.raises(ValueError, match="use policy='mlp'"):
        make_model("ppo", gym.make("CliffWalking-v1"), seed=0, policy="cnn")
    with pytest.raises(ValueError, match="policy must be"):
        make_model("ppo", Corridor(), seed=0, policy="transformer")
    model = make_model("ppo", gym.make("CliffWalking-v1"), seed=0)  # "auto": an MLP for a Discrete obs
    assert not isinstance(model.policy.features_extractor, GridCNN)
