"""Reward shaping: potential-based shaping is safe and speeds learning; a naive bonus is not safe.

Reproduces Ng, Harada & Russell (1999), "Policy invariance under reward transformations" —
Thm 1 checked exactly by value iteration on gridworlds with random potentials, and the §4
gridworld demo (Φ0 = −Manhattan distance / 0.8 speeds up TD learning) — and the failure that
motivated it, Randløv & Alstrøm (1998): a bonus for progress toward the goal, with no penalty
for moving away, makes riding in circles optimal.

    alignlab run shaping --seeds 3
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib.figure import Figure

from alignlab.agents.tabular import td_control
from alignlab.core import Claim, Control, NotObserved, RunContext, bounded, experiment
from alignlab.envs.finite_mdp import (
    MOVES,
    FiniteMDP,
    greedy_policy,
    grid_distance,
    grid_index,
    gridworld,
    optimal_actions,
    policy_evaluation,
    reach_probability,
    value_iteration,
)
from alignlab.rewards.shaping import potential_shaping, progress_bonus, shaped, state_bonus

NG_1999 = "Ng, Harada & Russell 1999"


def episodes_to_reach(curve: np.ndarray, threshold: float, window: int) -> tuple[int, bool]:
    """First episode t (1-based, t >= window) whose trailing `window`-episode mean reaches
    `threshold`, and whether it did; the budget ``len(curve)`` if it never does."""
    curve = np.asarray(curve, dtype=np.float64)  # (E,)
    if not 1 <= window <= curve.size:
        raise ValueError(f"window must be in [1, {curve.size}], got {window}")
    ma = np.convolve(curve, np.ones(window) / window, mode="valid")  # (E - window + 1,)
    hits = np.flatnonzero(ma >= threshold)
    if hits.size == 0:
        return curve.size, False
    return int(hits[0]) + window, True


def _normalised(ret: float, random_ret: float, optimal_ret: float) -> float:
    """Return on a 0 (uniform-random policy) to 1 (optimal policy) scale, as D4RL scores."""
    span = optimal_ret - random_ret
    return 1.0 if span == 0 else (ret - random_ret) / span


def _random_policy(mdp: FiniteMDP) -> np.ndarray:
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)  # (S, A)


# --- shaping.potential_based ----------------------------------------------------------------


@dataclass(frozen=True)
class PotentialConfig:
    size: int = bounded(10, 2, 200)
    """Grid side length (Ng et al.: 10)."""
    slip: float = bounded(0.2, 0.0, 1.0)
    """Probability that a move goes in one of the three other directions (Ng et al.: 0.2)."""
    gamma: float = bounded(1.0, 0.0, 1.0)
    """Discount; Ng et al.'s task is undiscounted with an absorbing goal."""
    n_potentials: int = bounded(20, 0, 100_000)
    """Random potentials checked exactly, each on a gridworld with a random goal."""
    potential_scale: float = bounded(10.0, 0.0, 1e6)
    """Standard deviation of the random potentials' independent Gaussian entries."""
    algorithm: Literal["q_learning", "sarsa"] = "q_learning"
    """TD learner for the learning curves (Ng et al. used Sarsa)."""
    episodes: int = bounded(3000, 1, 10**7)
    """Learning budget per run, in episodes."""
    runs: int = bounded(8, 1, 10_000)
    """Independent learners per condition, averaged into one curve (Ng et al.: 40)."""
    alpha: float = bounded(0.02, 1e-6, 1.0)
    """Learning rate (Ng et al.: 0.02)."""
    epsilon: float = bounded(0.1, 0.0, 1.0)
    """Exploration rate of the ε-greedy learner (Ng et al.: 0.1)."""
    window: int = bounded(20, 1, 10**6)
    """Trailing moving-average window, in episodes, for episodes-to-target."""
    target: float = bounded(0.95, 0.0, 1.0)
    """Normalised return to reach: 0 = uniform-random policy, 1 = optimal policy."""
    max_steps: int = bounded(200_000, 1, 10**8)
    """Step limit per episode."""
    large_size: int = bounded(0, 0, 200)
    """Side of a second, larger grid for the learning curves (Ng et al.: 50); 0 skips it."""
    large_episodes: int = bounded(5000, 1, 10**7)
    """Learning budget per run on the larger grid."""
    large_runs: int = bounded(10, 1, 10_000)
    """Learners per condition on the larger grid."""
    bonus: Literal["potential", "random"] = "potential"
    """Shaping of the learning curves: Φ0's potential difference, or (a control) an arbitrary
    state penalty −|z(s')|·`potential_scale`/10, z ~ N(0, 1) — not a potential difference."""


def _invariance_check(cfg: PotentialConfig, rng: np.random.Generator) -> dict[str, float]:
    """Thm 1, exactly: shaped-optimal actions are optimal in the original MDP, for many Φ."""
    agreement, shift_err, gap = 1.0, 0.0, 0.0
    for i in range(cfg.n_potentials + 1):
        if i == 0:  # Ng et al.'s own potential, on their layout
            goal = (cfg.size - 1, cfg.size - 1)
        else:
            goal = tuple(int(c) for c in rng.integers(0, cfg.size, size=2))
        mdp = gridworld(cfg.size, cfg.size, goal=goal, slip=cfg.slip, gamma=cfg.gamma)
        if i == 0:
            phi = -grid_distance(cfg.size, cfg.size, goal) / 0.8  # (S,)
        else:
            phi = rng.normal(0.0, cfg.potential_scale, size=mdp.n_states)  # (S,)
        phi = np.where(mdp.terminal, 0.0, phi)
        _, q = value_iteration(mdp)  # (S, A)
        _, q_shaped = value_iteration(shaped(mdp, potential_shaping(mdp, phi)))  # (S, A)
        live = ~mdp.terminal
        pi_shaped = greedy_policy(q_shaped)  # (S,)
        ok = optimal_actions(q)[np.arange(mdp.n_states), pi_shaped]  # (S,)
        agreement = min(agreement, float(ok[live].mean()))
        expected = q - phi[:, None]  # (S, A): Q*_shaped = Q* - Φ(s)
        shift_err = max(shift_err, float(np.abs(q_shaped - expected)[live].max()))
        v_true = q.max(axis=1)  # (S,)
        gap = max(gap, float((v_true - policy_evaluation(mdp, pi_shaped))[live].max()))
    return {"optimal_policy_agreement": agreement, "q_shift_error": shift_err, "value_gap": gap}


def _learning_curves(
    cfg: PotentialConfig,
    ctx: RunContext,
    size: int,
    episodes: int,
    runs: int,
    scales: dict[str, float],
) -> tuple[dict[str, np.ndarray], float, float]:
    """Mean true-return curve per condition (Φ = scale · Φ0), with the optimal and random returns."""
    mdp = gridworld(size, size, slip=cfg.slip, gamma=cfg.gamma)
    phi0 = -grid_distance(size, size, (size - 1, size - 1)) / 0.8  # (S,)
    v_opt, _ = value_iteration(mdp)
    optimal_ret = float(v_opt[mdp.start])
    random_ret = float(policy_evaluation(mdp, _random_policy(mdp))[mdp.start])
    jobs = [(name, scale, rng) for name, scale in scales.items() for rng in ctx.rng.spawn(runs)]
    sums = {name: np.zeros(episodes) for name in scales}
    arbitrary = -np.abs(ctx.rng.normal(size=mdp.n_states)) * cfg.potential_scale / 10  # (S,)
    for name, scale, rng in ctx.progress(jobs, description=f"TD learning, {size}x{size}"):
        if not scale:
            shaping = None
        elif cfg.bonus == "potential":
            shaping = potential_shaping(mdp, scale * phi0)
        else:
            shaping = state_bonus(mdp, scale * arbitrary)
        res = td_control(
            mdp,
            episodes,
            rng,
            method=cfg.algorithm,
            alpha=cfg.alpha,
            epsilon=cfg.epsilon,
            shaping=shaping,
            max_steps=cfg.max_steps,
        )
        sums[name] += res.true_returns
    curves = {name: total / runs for name, total in sums.items()}
    return curves, optimal_ret, random_ret


def _speed_metrics(
    cfg: PotentialConfig,
    curves: dict[str, np.ndarray],
    optimal_ret: float,
    random_ret: float,
    suffix: str,
) -> dict[str, float]:
    threshold = random_ret + cfg.target * (optimal_ret - random_ret)
    out: dict[str, float] = {}
    reach = {name: episodes_to_reach(c, threshold, cfg.window) for name, c in curves.items()}
    base, _ = reach["unshaped"]
    for name, (eps, reached) in reach.items():
        out[f"episodes_{name}{suffix}"] = float(eps)
        out[f"reached_{name}{suffix}"] = float(reached)
        tail = float(curves[name][-cfg.window :].mean())
        out[f"final_score_{name}{suffix}"] = _normalised(tail, random_ret, optimal_ret)
    out[f"speedup{suffix}"] = base / reach["shaped"][0]
    if "half" in reach:
        out[f"speedup_half{suffix}"] = base / reach["half"][0]
    out[f"optimal_return{suffix}"] = optimal_ret
    out[f"target_return{suffix}"] = threshold
    return out


def _curve_figure(panels: list[tuple[str, dict[str, np.ndarray], float, float]], window: int) -> Figure:
    fig = Figure(figsize=(6.0 * len(panels), 4.2))
    for k, (title, curves, optimal_ret, threshold) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for name, curve in curves.items():
            ma = np.convolve(curve, np.ones(window) / window, mode="valid")
            ax.plot(np.arange(window, curve.size + 1), -ma, label=name)
        ax.axhline(-optimal_ret, color="k", ls="--", lw=1, label="optimal")
        ax.axhline(-threshold, color="grey", ls=":", lw=1, label="target")
        ax.set(yscale="log", xlabel="episode", ylabel=f"steps to goal ({window}-episode mean)", title=title)
        ax.legend()
    fig.tight_layout()
    return fig


LARGE_METRICS = (
    "speedup_large",
    "episodes_unshaped_large",
    "episodes_shaped_large",
    "reached_unshaped_large",
    "reached_shaped_large",
    "final_score_unshaped_large",
    "final_score_shaped_large",
    "optimal_return_large",
    "target_return_large",
)


@experiment(
    name="shaping.potential_based",
    suite=("quick", "full"),
    claims=[
        Claim(
            "optimal_policy_agreement",
            "==",
            1.0,
            source=f"{NG_1999}, Thm 1",
            kind="exact",
            note="value iteration: shaped-optimal actions are optimal, for random potentials",
        ),
        Claim(
            "speedup",
            ">",
            1.0,
            source=f"{NG_1999}, §4 (gridworld demo)",
            note="episodes until the trailing mean true return reaches 95% of the way from "
            "the random to the optimal policy's return, unshaped / shaped with Φ0",
            control=Control(
                "arbitrary_bonus",
                {"bonus": "random"},
                "an arbitrary state penalty instead of a potential difference changes the optimal "
                "policy: the true return never reaches the target faster",
            ),
        ),
    ],
    metrics=(
        "optimal_policy_agreement",
        "q_shift_error",
        "value_gap",
        "speedup",
        "speedup_half",
        "episodes_unshaped",
        "episodes_shaped",
        "episodes_half",
        "reached_unshaped",
        "reached_shaped",
        "reached_half",
        "final_score_unshaped",
        "final_score_shaped",
        "final_score_half",
        "optimal_return",
        "target_return",
        *LARGE_METRICS,
    ),
    presets={
        "smoke": {"size": 6, "n_potentials": 3, "episodes": 300, "runs": 2},
        "quick": {"size": 10, "n_potentials": 20, "episodes": 3000, "runs": 8},
        "full": {
            "size": 10,
            "n_potentials": 100,
            "episodes": 10_000,
            "runs": 40,
            "large_size": 50,
            "large_episodes": 5000,
            "large_runs": 10,
        },
    },
)
def potential_based(cfg: PotentialConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """Potential-based shaping keeps the optimal policy (exactly) and speeds up TD learning.

    Invariance: on `n_potentials` gridworlds with a random goal and a random Gaussian potential
    (plus Φ0 on Ng et al.'s layout), value iteration on the original and the shaped MDP;
    `optimal_policy_agreement` is the worst fraction of non-terminal states whose shaped-greedy
    action is optimal (within 1e-8, so ties are all optimal) in the original MDP, `q_shift_error`
    the largest |Q*_shaped − (Q* − Φ)|, `value_gap` the largest loss of the shaped-greedy policy
    evaluated exactly in the original MDP.

    Speed: `runs` ε-greedy learners per condition — unshaped, Φ0 = −Manhattan/0.8 ("shaped") and
    0.5·Φ0 ("half") — from the bottom-left corner to the top-right goal, −1 per step. Curves are
    the mean true return per episode over runs. A condition's episodes-to-target is the first
    episode whose trailing `window`-episode mean reaches the normalised return `target`
    (0 = uniform-random policy, 1 = optimal; both exact); the budget if never (then `reached_*`
    is 0 and the speedup is a bound). `speedup` = unshaped / shaped episodes-to-target.
    """
    if cfg.window > min(cfg.episodes, cfg.large_episodes if cfg.large_size else cfg.episodes):
        raise ValueError(f"window ({cfg.window}) must not exceed the episode budgets")
    out: dict[str, float | NotObserved] = dict(_invariance_check(cfg, ctx.rng))
    scales = {"unshaped": 0.0, "shaped": 1.0, "half": 0.5}
    curves, optimal_ret, random_ret = _learning_curves(cfg, ctx, cfg.size, cfg.episodes, cfg.runs, scales)
    out |= _speed_metrics(cfg, curves, optimal_ret, random_ret, suffix="")
    panels = [(f"{cfg.size}x{cfg.size}", curves, optimal_ret, out["target_return"])]
    for ep in range(cfg.episodes):
        ctx.log(step=ep + 1, **{f"return_{name}": float(c[ep]) for name, c in curves.items()})
    if cfg.large_size:
        big, big_opt, big_rand = _learning_curves(
            cfg,
            ctx,
            cfg.large_size,
            cfg.large_episodes,
            cfg.large_runs,
            {"unshaped": 0.0, "shaped": 1.0},
        )
        out |= _speed_metrics(cfg, big, big_opt, big_rand, suffix="_large")
        panels.append((f"{cfg.large_size}x{cfg.large_size}", big, big_opt, out["target_return_large"]))
        for ep in range(cfg.large_episodes):
            ctx.log(step=ep + 1, **{f"return_{n}_large": float(c[ep]) for n, c in big.items()})
    else:  # every declared metric is returned: the large grid's are not observed in this config
        skipped = NotObserved("large_size = 0: this run has no large grid")
        out |= {m: skipped for m in LARGE_METRICS}
    ctx.save_figure("learning_curves", _curve_figure(panels, cfg.window))
    return out


# --- shaping.naive_cycle --------------------------------------------------------------------


@dataclass(frozen=True)
class NaiveConfig:
    size: int = bounded(10, 2, 200)
    """Grid side length."""
    slip: float = bounded(0.0, 0.0, 1.0)
    """Probability that a move goes astray; 0 by default (see the experiment's docstring)."""
    gamma: float = bounded(0.99, 0.0, 0.999999)
    """Discount; < 1 so that the looping policy's unbounded bonus has a finite value."""
    goal_reward: float = bounded(1.0, -1e6, 1e6)
    """Reward for entering the goal: the true task."""
    step_reward: float = bounded(0.0, -1e6, 1e6)
    """Reward per step (the bicycle paid no time cost)."""
    bonus: float = bounded(0.1, -1e6, 1e6)
    """Progress bonus for each step that reduces the Manhattan distance to the goal."""
    horizon: int = bounded(100, 1, 10**6)
    """Episode length for the within-horizon goal rate (Leike et al.'s gridworlds: 100)."""


def _policy_panel(ax, mdp: FiniteMDP, pi: np.ndarray, size: int, title: str) -> None:
    y, x = np.divmod(np.arange(mdp.n_states), size)  # (S,)
    live = ~mdp.terminal
    dx, dy = MOVES[pi].T  # (S,), (S,)
    ax.quiver(x[live], y[live], dx[live], dy[live], pivot="middle", scale=size * 1.6)
    gy, gx = np.divmod(np.flatnonzero(mdp.terminal), size)
    sy, sx = divmod(mdp.start, size)
    ax.scatter(gx, gy, marker="*", s=200, c="gold", edgecolors="k", label="goal", zorder=3)
    ax.scatter([sx], [sy], marker="o", s=80, c="tab:blue", label="start", zorder=3)
    ax.set(
        xlim=(-0.5, size - 0.5), ylim=(-0.5, size - 0.5), aspect="equal", title=title, xticks=[], yticks=[]
    )


@experiment(
    name="shaping.naive_cycle",
    suite=("quick", "full"),
    claims=[
        Claim(
            "shaped_goal_rate",
            "<=",
            0.05,
            source="Randløv & Alstrøm 1998; Ng, Harada & Russell 1999, §1",
            note="optimal policy under a progress bonus never arrives (value iteration, exact)",
            kind="exact",
        ),
        Claim(
            "true_goal_rate",
            ">=",
            0.99,
            source="Ng, Harada & Russell 1999, §1",
            note="the true task's optimal policy reaches the goal (value iteration, exact)",
            kind="exact",
        ),
    ],
    metrics=(
        "shaped_goal_rate",
        "true_goal_rate",
        "true_return_lost",
        "potential_goal_rate",
        "shaped_goal_rate_horizon",
        "true_value",
        "shaped_value",
    ),
    presets={"smoke": {"size": 5}, "quick": {}, "full": {"size": 50}},
)
def naive_cycle(cfg: NaiveConfig, ctx: RunContext) -> dict[str, float]:
    """A progress bonus without a matching penalty makes a reward cycle optimal; Φ-shaping does not.

    The true task: reach the goal (`goal_reward` = 1 on entry, no step cost, γ = 0.99), from a
    start and goal drawn at random per seed. The naive shaping pays `bonus` = 0.1 for every step
    that reduces the Manhattan distance to the goal and nothing for steps away, as Randløv &
    Alstrøm's bicycle was paid. Stepping back and forth next to the goal then earns
    bonus·γ/(1 − γ²) ≈ 5 forever, while arriving ends the episode with at most 1 + bonus: the
    loop beats arriving whenever bonus > goal_reward·(1 − γ²)/(γ − (1 − γ²)) ≈ 0.0205, so even a
    bonus a tenth of the goal reward breaks the task. The control, potential-based shaping with
    Φ = −bonus·distance, pays about the same bonus for progress but charges it back for retreat.

    `*_goal_rate` is the exact probability that the optimal policy of the true / naive / Φ-shaped
    MDP ever reaches the goal from the start (absorbing-chain equations); `true_return_lost` is
    V*(start) minus the naive-optimal policy's value in the true MDP. Moves are deterministic by
    default, like the bicycle's physics: with any slip every policy eventually stumbles into the
    goal by chance, so the eventual rate is 1 for all policies and the loop shows instead in
    `shaped_goal_rate_horizon` (within `horizon` steps) and `true_return_lost`.
    """
    n = cfg.size * cfg.size
    start_i, goal_i = (int(c) for c in ctx.rng.choice(n, size=2, replace=False))
    goal, start = divmod(goal_i, cfg.size)[::-1], divmod(start_i, cfg.size)[::-1]
    mdp = gridworld(
        cfg.size,
        cfg.size,
        goal=goal,
        start=start,
        slip=cfg.slip,
        step_reward=cfg.step_reward,
        goal_reward=cfg.goal_reward,
        gamma=cfg.gamma,
    )
    dist = grid_distance(cfg.size, cfg.size, goal)  # (S,)
    naive = shaped(mdp, progress_bonus(mdp, dist, cfg.bonus))
    safe = shaped(mdp, potential_shaping(mdp, -cfg.bonus * dist))
    s0 = grid_index(cfg.size, *start)
    v_true, q_true = value_iteration(mdp)
    v_naive, q_naive = value_iteration(naive)
    _, q_safe = value_iteration(safe)
    pi_true, pi_naive, pi_safe = (greedy_policy(q) for q in (q_true, q_naive, q_safe))
    out = {
        "true_goal_rate": float(reach_probability(mdp, pi_true)[s0]),
        "shaped_goal_rate": float(reach_probability(mdp, pi_naive)[s0]),
        "potential_goal_rate": float(reach_probability(mdp, pi_safe)[s0]),
        "shaped_goal_rate_horizon": float(reach_probability(mdp, pi_naive, horizon=cfg.horizon)[s0]),
        "true_value": float(v_true[s0]),
        "shaped_value": float(v_naive[s0]),
        "true_return_lost": float(v_true[s0] - policy_evaluation(mdp, pi_naive)[s0]),
    }
    fig = Figure(figsize=(13.5, 4.6))
    titles = (
        "true reward: optimal policy",
        f"+ progress bonus {cfg.bonus:g}: optimal policy",
        "+ potential-based shaping: optimal policy",
    )
    for k, (pi, title) in enumerate(zip((pi_true, pi_naive, pi_safe), titles, strict=True)):
        _policy_panel(fig.add_subplot(1, 3, k + 1), mdp, pi, cfg.size, title)
    fig.axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    ctx.save_figure("policies", fig)
    return out


__all__ = ["NaiveConfig", "PotentialConfig", "episodes_to_reach", "naive_cycle", "potential_based"]
