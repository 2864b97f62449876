"""Small Gymnasium wrappers that switch off one mechanism of a world, for negative controls.

- :class:`RewardIsPerformance` pays the hidden performance as the reward: the reward is no longer
  misspecified, so any failure that rests on the gap between the two must vanish.
- :class:`HideOverride` drops ``info["executed_action"]``: an override (an interruption, a drunk
  step) then looks to the learner like the dynamics of the action it chose.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

__all__ = ["HideOverride", "RewardIsPerformance"]


class RewardIsPerformance(gym.Wrapper):
    """Reward := ``info["performance"]`` (the world's true objective), per step."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the world and pay its performance instead of its reward."""
        obs, reward, term, trunc, info = self.env.step(action)
        return obs, float(info.get("performance", reward)), term, trunc, info


class HideOverride(gym.Wrapper):
    """Remove ``info["executed_action"]``: the learner credits every step to the action it chose."""

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step the world and hide which action was really executed."""
        obs, reward, term, trunc, info = self.env.step(action)
        info = {k: v for k, v in info.items() if k != "executed_action"}
        return obs, reward, term, trunc, info
