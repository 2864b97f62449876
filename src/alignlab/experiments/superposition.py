"""Toy models of superposition: the intro figure, features per dimension, and the phase diagram.

Reproduces Elhage et al. (2022), "Toy Models of Superposition" (Transformer Circuits Thread):
the introduction's 5-features-in-2-dimensions figure, §"Demonstrating superposition" (n = 20,
m = 5: more features are packed into the hidden space as they get sparser) and §"Superposition
as a phase change" (one extra feature in one dimension). Every sweep trains all its models at
once (``alignlab.interp.superposition``), one model per (setting, restart).

    alignlab run superposition --seeds 3
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from alignlab.core import Claim, Control, NotObserved, RunContext, bounded, experiment
from alignlab.interp import superposition as sp

ELHAGE_2022 = "Elhage et al. 2022, Toy Models of Superposition"


def density_tag(density: float) -> str:
    """A density as a metric-name fragment: 1 -> '1', 0.01 -> '0p01'."""
    return f"{density:g}".replace(".", "p").replace("-", "m").replace("+", "")


def rank_correlation(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's ρ: the Pearson correlation of the ranks (ties get their average rank)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"need two 1-D sequences of the same length >= 2, got {x.shape} and {y.shape}")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((rx**2).sum() * (ry**2).sum()))
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(v.size, dtype=np.float64)
    for value in np.unique(v):  # average the ranks of ties
        tie = v == value
        ranks[tie] = ranks[tie].mean()
    return ranks


def _progress(ctx: RunContext, description: str) -> Callable[[Iterable[int]], Iterable[int]]:
    return lambda steps: ctx.progress(steps, description=description)


def _train_and_pick(
    ctx: RunContext, cfg: sp.ToyConfig, groups: int, restarts: int, eval_samples: int, description: str
) -> tuple[sp.ToyModels, np.ndarray, np.ndarray]:
    """Train `groups` x `restarts` models (instances ordered group-major); return the models, the
    evaluation loss (groups, restarts) on common inputs, and the index of each group's best model."""
    models = sp.train_toy_models(cfg, ctx.torch_generator, progress=_progress(ctx, description))
    loss = sp.evaluate_loss(models, eval_samples, seed=int(ctx.rng.integers(2**62))).reshape(groups, restarts)
    best = loss.argmin(axis=1) + np.arange(groups) * restarts  # (groups,)
    return models, loss, best


def _log_curves(ctx: RunContext, models: sp.ToyModels, columns: np.ndarray, names: Sequence[str]) -> None:
    """The training loss of the chosen models, one series per name."""
    for row, step in enumerate(models.loss_steps):
        values = models.losses[row, columns]
        ctx.log(step=int(step), **{f"loss/{name}": float(v) for name, v in zip(names, values, strict=True)})


# --- superposition.intro ---------------------------------------------------------------------


@dataclass(frozen=True)
class IntroConfig:
    n_features: int = bounded(5, 2, 1000)
    """n: features (the paper's intro: 5)."""
    n_hidden: int = bounded(2, 1, 1000)
    """m: hidden dimensions (the paper's intro: 2)."""
    importance_decay: float = bounded(0.9, 0.0, 1.0)
    """Feature i has importance decay^i (the paper's intro: 0.9)."""
    densities: tuple[float, ...] = bounded((1.0, 0.3, 0.1, 0.03, 0.01), 1e-6, 1.0)
    """Feature densities 1 − S swept, one model per density and restart."""
    restarts: int = bounded(4, 1, 1000)
    """Models trained per density; the one with the lowest loss is analysed."""
    steps: int = bounded(5_000, 1, 10**6)
    """AdamW steps (the paper's notebook: 10,000)."""
    batch_size: int = bounded(1024, 1, 1 << 20)
    """Inputs per step (the paper's notebook: 1024)."""
    lr: float = bounded(1e-3, 1e-7, 1.0)
    """AdamW learning rate (the paper's notebook: 1e-3)."""
    eval_samples: int = bounded(1 << 16, 16, 1 << 24)
    """Fresh inputs on which restarts are compared (the same inputs for every restart)."""


INTRO_METRICS = (
    "represented_densest",
    "top2_represented_densest",
    "represented_sparsest",
    "pentagon_dim_error",
    "pentagon_angle_error",
    "represented_monotone",
    "restart_agreement",
)
DENSE_ONLY = Control(
    "dense_only",
    {"densities": (1.0, 1.0)},
    "without sparsity there is no superposition: only as many features as dimensions, no pentagon",
)
SPARSE_ONLY = Control(
    "sparse_only",
    {"densities": (0.1, 0.03)},
    "when even the densest features are sparse, more features than dimensions are stored there too",
)


@experiment(
    name="superposition.intro",
    suite=("quick", "full"),
    claims=[
        Claim(
            "represented_densest",
            "==",
            2.0,
            source=f"{ELHAGE_2022}, introduction (figure 1)",
            note="dense features (the densest 1 − S swept): only as many features as dimensions",
            control=SPARSE_ONLY,
        ),
        Claim(
            "top2_represented_densest",
            "==",
            1.0,
            source=f"{ELHAGE_2022}, introduction",
            note="…and they are the two most important ones (an orthogonal basis, like PCA)",
            control=SPARSE_ONLY,
        ),
        Claim(
            "represented_sparsest",
            ">=",
            5.0,
            source=f"{ELHAGE_2022}, introduction",
            note="sparse features (the sparsest 1 − S swept): all five are represented, in superposition",
            control=DENSE_ONLY,
        ),
        Claim(
            "pentagon_dim_error",
            "<=",
            0.05,
            source=f"{ELHAGE_2022}, §The Geometry of Superposition (feature dimensionality)",
            note="…as a pentagon: every feature's dimensionality D_i within 0.05 of 2/5",
            control=DENSE_ONLY,
        ),
        Claim(
            "pentagon_angle_error",
            "<=",
            5.0,
            source=f"{ELHAGE_2022}, introduction",
            note="…a regular one: consecutive columns of W 72° apart, within 5° (NotObserved unless m = 2)",
            control=DENSE_ONLY,
        ),
    ],
    metrics=INTRO_METRICS,
    presets={
        "smoke": {"densities": (1.0, 0.01), "restarts": 2, "steps": 1000, "eval_samples": 4096},
        "quick": {},
        "full": {"steps": 10_000, "restarts": 10},
    },
)
def intro(cfg: IntroConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """Five features of importance 0.9^i in two dimensions: 2 orthogonal when dense, a pentagon when sparse.

    For each density 1 − S, `restarts` models are trained (all of them at once) and the one with
    the lowest loss on `eval_samples` common fresh inputs is analysed — the paper notes that 2-D
    toy models often stall in poor local optima and that clean results need several fits and the
    lowest-loss one; its figures show those. `restart_agreement` reports how often a restart
    represents the same number of features as the chosen model, so the selection is visible.

    A feature is represented when ‖W_i‖ > 0.5. At the densest point `represented_densest` counts
    them and `top2_represented_densest` is 1 when they are exactly features 0 and 1; at the
    sparsest, `pentagon_dim_error` is max_i |D_i − m/n| (m/n = 2/5: a regular pentagon has
    D_i = 2/5) and `pentagon_angle_error` is the largest deviation of the angles between
    angularly consecutive represented columns from 360°/n (NaN unless m = 2).
    `represented_monotone` is 1 when the count never falls as density falls.
    """
    dens = [float(d) for d in cfg.densities]
    if len(dens) < 2:
        raise ValueError("densities needs at least two values")
    toy = sp.ToyConfig(
        n_features=cfg.n_features,
        n_hidden=cfg.n_hidden,
        feature_probability=tuple(d for d in dens for _ in range(cfg.restarts)),
        importance=cfg.importance_decay,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
    )
    models, loss, best = _train_and_pick(ctx, toy, len(dens), cfg.restarts, cfg.eval_samples, "toy models")
    W = models.W[best]  # (D, m, n)
    counts = sp.represented(W).sum(-1).numpy()  # (D,)
    all_counts = sp.represented(models.W).sum(-1).numpy().reshape(len(dens), cfg.restarts)
    fpd = sp.features_per_dimension(W).numpy()
    order = np.argsort(dens)[::-1]  # densest first
    dense, sparse = order[0], order[-1]
    on_dense = sp.represented(W[dense]).numpy()
    all_sparse = bool(counts[sparse] == cfg.n_features)
    no_polygon = NotObserved(
        f"only {int(counts[sparse])} of {cfg.n_features} features represented at the sparsest density: "
        "no polygon"
    )
    out: dict[str, float | NotObserved] = {
        "represented_densest": float(counts[dense]),
        "top2_represented_densest": float(bool(on_dense[:2].all() and not on_dense[2:].any())),
        "represented_sparsest": float(counts[sparse]),
        "pentagon_dim_error": float(
            np.abs(sp.feature_dimensionality(W[sparse]).numpy() - cfg.n_hidden / cfg.n_features).max()
        )
        if all_sparse
        else no_polygon,
        "pentagon_angle_error": NotObserved(
            f"the angle test needs m = 2 hidden dimensions, not {cfg.n_hidden}"
        ),
        "represented_monotone": float(bool(np.all(np.diff(counts[order]) >= 0))),
        "restart_agreement": float((all_counts == counts[:, None]).mean()),
    }
    if cfg.n_hidden == 2 and not all_sparse:
        out["pentagon_angle_error"] = no_polygon
    elif cfg.n_hidden == 2:
        gaps = sp.polygon_gaps(W[sparse])
        out["pentagon_angle_error"] = (
            float(np.abs(gaps - 360.0 / cfg.n_features).max()) if gaps.size else 180.0
        )
    for i in order:  # per density, densest first, as a series (step = rank in density)
        ctx.log(step=int(np.nonzero(order == i)[0][0]), density=dens[i], represented=float(counts[i]),
                features_per_dim=float(fpd[i]), loss=float(loss[i].min()))  # fmt: skip
    _log_curves(ctx, models, best, [f"density_{density_tag(d)}" for d in dens])
    titles = [f"1 − S = {d:g}" for d in dens]
    if cfg.n_hidden == 2:
        ctx.save_figure("columns", sp.plot_columns_2d(W, titles, importance=toy.importances()[best]))
    ctx.save_figure("wtw", sp.plot_wtw(W, titles, b=models.b[best]))
    return out


# --- superposition.features_per_dim ----------------------------------------------------------


@dataclass(frozen=True)
class FeaturesPerDimConfig:
    n_features: int = bounded(20, 2, 1000)
    """n: features (the paper's §Demonstrating superposition: 20)."""
    n_hidden: int = bounded(5, 1, 1000)
    """m: hidden dimensions (the paper: 5)."""
    importance_decay: float = bounded(0.7, 0.0, 1.0)
    """Feature i has importance decay^i (the paper: 0.7)."""
    n_densities: int = bounded(20, 3, 1000)
    """Densities swept, log-spaced from 1 down to `min_density`."""
    max_density: float = bounded(1.0, 1e-6, 1.0)
    """The densest density 1 − S (the paper: 1)."""
    min_density: float = bounded(0.001, 1e-6, 1.0)
    """The sparsest density 1 − S."""
    restarts: int = bounded(1, 1, 1000)
    """Models trained per density; the one with the lowest loss is analysed."""
    steps: int = bounded(3_000, 1, 10**6)
    """AdamW steps (the paper's notebook: 10,000)."""
    batch_size: int = bounded(1024, 1, 1 << 20)
    """Inputs per step (the paper's notebook: 1024)."""
    lr: float = bounded(1e-3, 1e-7, 1.0)
    """AdamW learning rate."""
    eval_samples: int = bounded(1 << 15, 16, 1 << 24)
    """Fresh inputs on which restarts are compared."""
    activation: Literal["relu", "linear"] = "relu"
    """The output nonlinearity: "relu" (the paper's model) or "linear" (its baseline, no superposition)."""


LINEAR = Control(
    "linear",
    {"activation": "linear"},
    "the paper's linear baseline x' = WᵀWx + b stores the m most important features at every "
    "sparsity: ‖W‖²_F/m stays ≈ 1, it never superposes",
)
ALL_SPARSE = Control(
    "all_sparse",
    {"max_density": 0.01, "min_density": 0.001},
    "when the densest point of the sweep is already sparse, it too stores more than m features",
)


@experiment(
    name="superposition.features_per_dim",
    suite=("quick", "full"),
    claims=[
        Claim(
            "spearman_sparsity_features_per_dim",
            ">=",
            0.9,
            source=f"{ELHAGE_2022}, §Demonstrating Superposition (basic results)",
            note="features per dimension ‖W‖²_F/m rises with sparsity, monotone within noise "
            "(Spearman's ρ between S and ‖W‖²_F/m over the sweep; NotObserved when ‖W‖²_F/m varies by "
            "less than 0.25 over the sweep)",
            control=LINEAR,
        ),
        Claim(
            "features_per_dim_densest",
            "==",
            1.0,
            tol=0.1,
            source=f"{ELHAGE_2022}, §Demonstrating Superposition (basic results)",
            note="dense features: the ReLU model behaves like the linear one and stores m features "
            "in m dimensions (‖W‖²_F/m ≈ 1)",
            control=ALL_SPARSE,
        ),
        Claim(
            "features_per_dim_sparsest",
            ">",
            1.5,
            source=f"{ELHAGE_2022}, §Demonstrating Superposition (basic results)",
            note="sparse features: clearly more features than dimensions",
            control=LINEAR,
        ),
    ],
    metrics=(
        "spearman_sparsity_features_per_dim",
        "features_per_dim_densest",
        "features_per_dim_sparsest",
        "features_per_dim_range",
        "represented_densest",
        "represented_sparsest",
        "largest_drop",
    ),
    presets={
        "smoke": {"n_densities": 4, "min_density": 0.01, "steps": 800, "eval_samples": 4096},
        "quick": {},
        "full": {"steps": 10_000, "restarts": 3},
    },
)
def features_per_dim(cfg: FeaturesPerDimConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """20 features of importance 0.7^i in 5 dimensions: more features per dimension the sparser they are.

    One model per density (log-spaced from 1 to `min_density`) and restart; the restart with the
    lowest loss on common fresh inputs is analysed. `spearman_sparsity_features_per_dim` is
    Spearman's ρ between the sparsity S and ‖W‖²_F/m across the sweep (1 = perfectly monotone);
    `largest_drop` is the largest fall of ‖W‖²_F/m from one density to the next sparser one (the
    noise a rank correlation forgives). `represented_*` count features with ‖W_i‖ > 0.5.
    """
    if not cfg.min_density < cfg.max_density:
        raise ValueError(f"need min_density < max_density, got {cfg.min_density} and {cfg.max_density}")
    if cfg.restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {cfg.restarts}")
    dens = np.logspace(
        np.log10(cfg.max_density), np.log10(cfg.min_density), cfg.n_densities
    )  # (D,) densest first
    toy = sp.ToyConfig(
        n_features=cfg.n_features,
        n_hidden=cfg.n_hidden,
        feature_probability=tuple(float(d) for d in dens for _ in range(cfg.restarts)),
        importance=cfg.importance_decay,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        activation=cfg.activation,
    )
    models, _, best = _train_and_pick(ctx, toy, len(dens), cfg.restarts, cfg.eval_samples, "toy models")
    W = models.W[best]  # (D, m, n)
    fpd = sp.features_per_dimension(W).numpy()  # (D,)
    counts = sp.represented(W).sum(-1).numpy()
    spread = float(fpd.max() - fpd.min())
    out: dict[str, float | NotObserved] = {
        "spearman_sparsity_features_per_dim": rank_correlation(1.0 - dens, fpd)
        if spread >= 0.25
        else NotObserved(f"features per dimension varied by only {spread:.3f} over the sweep (no rise)"),
        "features_per_dim_range": spread,
        "features_per_dim_densest": float(fpd[0]),
        "features_per_dim_sparsest": float(fpd[-1]),
        "represented_densest": float(counts[0]),
        "represented_sparsest": float(counts[-1]),
        "largest_drop": float(max(0.0, -np.diff(fpd).min())),
    }
    picks = sorted({0, len(dens) // 4, len(dens) // 2, (3 * len(dens)) // 4, len(dens) - 1})
    _log_curves(ctx, models, best[picks], [f"density_{density_tag(float(dens[i]))}" for i in picks])
    title = f"n={cfg.n_features}, m={cfg.n_hidden}, I_i={cfg.importance_decay:g}^i"
    ctx.save_figure("features_per_dim", sp.plot_features_per_dimension(dens, W, title=title))
    ctx.save_figure(
        "wtw", sp.plot_wtw(W[picks], [f"1 − S = {dens[i]:.3g}" for i in picks], b=models.b[best[picks]])
    )
    return out


# --- superposition.phase_diagram -------------------------------------------------------------


@dataclass(frozen=True)
class PhaseConfig:
    n_importances: int = bounded(6, 2, 100)
    """Relative importances of the extra feature swept, log-spaced over [min, max]."""
    min_importance: float = bounded(0.1, 1e-4, 1e4)
    """Smallest relative importance of the extra feature (the paper: 0.1)."""
    max_importance: float = bounded(10.0, 1e-4, 1e4)
    """Largest relative importance (the paper: 10)."""
    n_densities: int = bounded(6, 2, 100)
    """Densities swept, log-spaced from 1 down to `min_density`."""
    max_density: float = bounded(1.0, 1e-6, 1.0)
    """The densest density 1 − S (the paper: 1)."""
    min_density: float = bounded(0.01, 1e-6, 1.0)
    """The sparsest density 1 − S (the paper: 0.01)."""
    models_per_cell: int = bounded(6, 1, 1000)
    """Models trained per grid cell (the paper: 10); at low density many fits stall."""
    steps: int = bounded(2_000, 1, 10**6)
    """AdamW steps (the paper's notebook: 10,000)."""
    batch_size: int = bounded(1024, 1, 1 << 20)
    """Inputs per step."""
    lr: float = bounded(1e-3, 1e-7, 1.0)
    """AdamW learning rate."""
    eval_samples: int = bounded(1 << 15, 16, 1 << 24)
    """Fresh inputs on which a cell's models are ranked (the same inputs for each)."""
    activation: Literal["relu", "linear"] = "relu"
    """The output nonlinearity: "relu" (the paper's model) or "linear" (its baseline, no superposition)."""


LINEAR_PHASES = Control(
    "linear",
    {"activation": "linear"},
    "the paper's linear baseline x' = WᵀWx + b keeps the more important feature and drops the other "
    "at every sparsity: two phases, no superposition, unlike the ReLU model's exact optimum",
)
SPARSE_CELLS = Control(
    "sparse_cells",
    {"max_density": 0.05, "min_density": 0.02},
    "when the densest row is sparse, its cells are in superposition (the exact optimum at 1 − S <= 0.1 "
    "for every importance in [0.1, 10]), not dropped or dedicated by importance",
)


@experiment(
    name="superposition.phase_diagram",
    suite=("quick", "full"),
    claims=[
        Claim(
            "phases_present",
            ">=",
            3.0,
            source=f"{ELHAGE_2022}, §Superposition as a Phase Change",
            note="the extra feature is not learned, gets a dedicated dimension, or is stored in "
            "superposition, depending on its relative importance and the sparsity",
            control=LINEAR_PHASES,
        ),
        Claim(
            "superposition_at_densest",
            "==",
            0.0,
            source=f"{ELHAGE_2022}, §Superposition as a Phase Change",
            note="sparsity is necessary for superposition: none in the densest row (1 − S = 1)",
            control=SPARSE_CELLS,
        ),
        Claim(
            "superposition_at_sparsest",
            ">",
            0.0,
            source=f"{ELHAGE_2022}, §Superposition as a Phase Change",
            note="share of the sparsest row's cells (1 − S = 0.01) in superposition",
            control=LINEAR_PHASES,
        ),
        Claim(
            "theory_agreement",
            ">=",
            0.9,
            source=f"{ELHAGE_2022}, §Superposition as a Phase Change (empirical vs theoretical diagram)",
            note="share of cells whose phase matches the exact-loss optimum of the three natural "
            "solutions ([1, 0], [0, 1], [1, −1]), each refined by L-BFGS",
            control=LINEAR_PHASES,
        ),
        Claim(
            "dense_row_correct",
            ">=",
            0.99,
            source=f"{ELHAGE_2022}, §Superposition as a Phase Change",
            note="dense features: the extra feature is dropped when less important than the first "
            "(r < 1) and takes the one dimension when more important (r > 1)",
            control=SPARSE_CELLS,
        ),
    ],
    metrics=(
        "phases_present",
        "superposition_at_densest",
        "superposition_at_sparsest",
        "dense_row_correct",
        "theory_agreement",
        "frac_not_represented",
        "frac_dedicated",
        "frac_superposition",
        "model_agreement",
    ),
    presets={
        "smoke": {
            "n_importances": 2,
            "min_importance": 0.3,
            "max_importance": 3.0,
            "n_densities": 2,
            "models_per_cell": 8,
            "steps": 1000,
            "eval_samples": 8192,
        },
        "quick": {},
        "full": {"n_importances": 12, "n_densities": 12, "models_per_cell": 10, "steps": 10_000},
    },
)
def phase_diagram(cfg: PhaseConfig, ctx: RunContext) -> dict[str, float]:
    """One extra feature in one dimension (n = 2, m = 1): not learned, dedicated, or in superposition.

    Feature 0 has importance 1, the extra feature 1 relative importance r (log grid over
    [`min_importance`, `max_importance`]); both have density 1 − S (log grid from 1 to
    `min_density`). Each cell trains `models_per_cell` models; each model's extra feature is
    classified by :func:`alignlab.interp.superposition.classify_feature` — not represented
    (‖W_1‖ <= 0.5), dedicated (represented, and feature 0 projects onto it by less than 0.5: it is
    the dimension's only feature) or superposition (both share the dimension, i.e. antipodal) —
    and the cell gets the phase of its lowest-loss model on common fresh inputs. (The paper
    averaged its ten models after discarding the worst; at low density many fits stall with one
    feature's ReLU dead, so the best fit is the one that shows where the loss optimum lies.)
    `model_agreement` is the share of all models whose phase equals their cell's.
    `superposition_at_*` are shares of the densest / sparsest row's cells; `dense_row_correct` is
    the share of the densest row's cells (r ≠ 1) in the phase the ordering of importances implies.

    The theory panel is the paper's "toy model of the toy model": per cell, the exact expected
    loss (Gauss–Legendre quadrature over the sparsity patterns) minimised by L-BFGS from each
    of the three natural solutions W = [1, 0], [0, 1], [1, −1]; the best optimum's phase.
    `theory_agreement` is the share of cells where the trained models' phase matches it.
    """
    if not 0 < cfg.min_importance < cfg.max_importance:
        raise ValueError("need 0 < min_importance < max_importance")
    if not cfg.min_density < cfg.max_density:
        raise ValueError(f"need min_density < max_density, got {cfg.min_density} and {cfg.max_density}")
    if cfg.models_per_cell < 1:
        raise ValueError(f"models_per_cell must be >= 1, got {cfg.models_per_cell}")
    rel = np.logspace(np.log10(cfg.min_importance), np.log10(cfg.max_importance), cfg.n_importances)  # (R,)
    dens = np.logspace(
        np.log10(cfg.max_density), np.log10(cfg.min_density), cfg.n_densities
    )  # (D,) densest first
    k = cfg.models_per_cell
    cells = [(float(d), float(r)) for d in dens for r in rel]  # row-major: (D, R)
    toy = sp.ToyConfig(
        n_features=2,
        n_hidden=1,
        feature_probability=tuple(d for d, _ in cells for _ in range(k)),
        importance=tuple((1.0, r) for _, r in cells for _ in range(k)),
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        activation=cfg.activation,
    )
    models, _, best = _train_and_pick(ctx, toy, len(cells), k, cfg.eval_samples, "toy models")
    phases = sp.classify_feature(models.W, feature=1).numpy().reshape(len(cells), k)
    grid = phases.reshape(-1)[best].reshape(len(dens), len(rel))  # (D, R)
    theory = np.array([[sp.theoretical_phase(r, d)[0] for r in rel] for d in dens])  # (D, R)
    expected = np.where(rel < 1, sp.NOT_REPRESENTED, sp.DEDICATED)
    off_one = ~np.isclose(rel, 1.0)
    out = {
        "phases_present": float(len(np.unique(grid))),
        "superposition_at_densest": float((grid[0] == sp.SUPERPOSITION).mean()),
        "superposition_at_sparsest": float((grid[-1] == sp.SUPERPOSITION).mean()),
        "dense_row_correct": float((grid[0][off_one] == expected[off_one]).mean()),
        "theory_agreement": float((grid == theory).mean()),
        "frac_not_represented": float((grid == sp.NOT_REPRESENTED).mean()),
        "frac_dedicated": float((grid == sp.DEDICATED).mean()),
        "frac_superposition": float((grid == sp.SUPERPOSITION).mean()),
        "model_agreement": float((phases == grid.reshape(-1, 1)).mean()),
    }
    mean_curve = models.losses.mean(axis=1)
    for row, step in enumerate(models.loss_steps):
        ctx.log(step=int(step), **{"loss/mean_over_models": float(mean_curve[row])})
    title = "extra feature in n=2, m=1 (I_0 = 1)"
    ctx.save_figure("phase_diagram", sp.plot_phase_diagram(rel, dens, grid, title=title, theory=theory))
    return out


__all__ = [
    "FeaturesPerDimConfig",
    "IntroConfig",
    "PhaseConfig",
    "density_tag",
    "features_per_dim",
    "intro",
    "phase_diagram",
    "rank_correlation",
]
