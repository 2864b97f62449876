"""Rollout animations: frames of an episode as an animated GIF, for reports beside the curves."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def record_episode(
    env: Any, policy: Callable[[np.ndarray], int], seed: int, max_steps: int = 100
) -> tuple[list[np.ndarray], float, float]:
    """Run one episode of `policy` on an env made with render_mode="rgb_array".

    Returns the frames (H, W, 3) uint8 and the episode's reward and performance.
    """
    obs, _ = env.reset(seed=seed)
    frames = [env.render()]
    reward = performance = 0.0
    for _ in range(max_steps):
        obs, r, term, trunc, info = env.step(policy(obs))
        frames.append(env.render())
        reward += float(r)
        performance += float(info.get("performance", r))
        if term or trunc:
            break
    return frames, reward, performance


def gif_bytes(frames: Sequence[np.ndarray], fps: int = 6, scale: int = 3) -> bytes:
    """An animated GIF (looping) of RGB frames, each pixel scaled up `scale` times."""
    from PIL import Image

    if not frames:
        raise ValueError("gif_bytes needs at least one frame")
    images = [
        Image.fromarray(np.repeat(np.repeat(np.asarray(f, np.uint8), scale, 0), scale, 1))  # (H*s, W*s, 3)
        for f in frames
    ]
    buf = io.BytesIO()
    images[0].save(
        buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
    )
    return buf.getvalue()
