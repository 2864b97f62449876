"""Reward shaping on finite MDPs: potential-based (safe) and a naive progress bonus (unsafe).

Ng, Harada & Russell (1999), "Policy invariance under reward transformations: theory and
application to reward shaping", Thm 1: adding F(s, a, s') = γΦ(s') − Φ(s) to the reward leaves
the optimal policies unchanged, since Q*_shaped(s, a) = Q*(s, a) − Φ(s). In an episodic task the
potential of the absorbing terminal states must be 0 (their §3; needed when γ = 1), which
:func:`potential_shaping` enforces.

Randløv & Alstrøm (1998) rewarded a simulated bicycle for progress toward its goal without
penalising moves away, and it learned to ride in circles; :func:`progress_bonus` is that reward,
and on a gridworld it makes a positive-reward cycle optimal.
"""

from __future__ import annotations

import numpy as np

from alignlab.envs.finite_mdp import FiniteMDP


def _state_vector(x: np.ndarray, mdp: FiniteMDP, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape != (mdp.n_states,):
        raise ValueError(f"{name} must have shape ({mdp.n_states},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def potential_shaping(mdp: FiniteMDP, phi: np.ndarray) -> np.ndarray:
    """(S, A, S) shaping F(s, a, s') = γΦ(s') − Φ(s), with Φ set to 0 on terminal states."""
    phi = np.where(mdp.terminal, 0.0, _state_vector(phi, mdp, "potential phi"))  # (S,)
    f = mdp.gamma * phi[None, None, :] - phi[:, None, None]  # (S, 1, S)
    return np.broadcast_to(f, mdp.P.shape)  # (S, A, S)


def progress_bonus(mdp: FiniteMDP, distance: np.ndarray, bonus: float = 1.0) -> np.ndarray:
    """(S, A, S) naive shaping: `bonus` for each step that reduces `distance`, nothing otherwise.

    Moving away from the goal costs nothing, so the bonus is not a potential difference and a
    loop (one step toward the goal, one back) earns it forever. Terminal states pay nothing.
    """
    d = _state_vector(distance, mdp, "distance")  # (S,)
    if not np.isfinite(bonus):
        raise ValueError(f"bonus must be finite, got {bonus}")
    closer = d[None, :] < d[:, None]  # (S, S): s' nearer the goal than s
    f = np.where(closer, float(bonus), 0.0)  # (S, S)
    f[mdp.terminal] = 0.0
    return np.broadcast_to(f[:, None, :], mdp.P.shape)  # (S, A, S)


def state_bonus(mdp: FiniteMDP, bonus: np.ndarray) -> np.ndarray:
    """(S, A, S) an arbitrary state bonus F(s, a, s') = bonus(s'), 0 on entering a terminal state.

    Not a potential difference, so (unlike :func:`potential_shaping`) it can change the optimal
    policy: the negative control for potential-based shaping.
    """
    b = np.where(mdp.terminal, 0.0, _state_vector(bonus, mdp, "bonus"))  # (S,)
    return np.broadcast_to(b[None, None, :], mdp.P.shape)  # (S, A, S)


def shaped(mdp: FiniteMDP, shaping: np.ndarray) -> FiniteMDP:
    """The MDP with reward R + F (same dynamics, discount, terminal states and start)."""
    f = np.asarray(shaping, dtype=np.float64)
    try:
        np.broadcast_to(f, mdp.P.shape)
    except ValueError:
        raise ValueError(f"shaping must broadcast to P's shape {mdp.P.shape}, got {f.shape}") from None
    return FiniteMDP(P=mdp.P, R=mdp.R + f, gamma=mdp.gamma, terminal=mdp.terminal, initial=mdp.initial)
