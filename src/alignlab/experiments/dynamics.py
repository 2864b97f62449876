"""Interpreting across training time: grokking's progress measures and the induction-head phase change.

Each experiment trains a built-in model organism (``alignlab.models.organisms``) from the run's seed
into a scratch folder, keeps its checkpoints, and measures the model at every checkpoint with
``alignlab.interp``. The published settings are the ``full`` presets; ``quick`` uses smaller
problems that still show the effect on two CPU cores.

    alignlab run dynamics --seeds 3
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.figure import Figure

from alignlab.core import Claim, Control, NotObserved, RunContext, bounded, experiment

NANDA_2023 = "Nanda et al. 2023, Progress measures for grokking via mechanistic interpretability"
OLSSON_2022 = "Olsson et al. 2022, In-context learning and induction heads"


def _first_step(history: list[dict[str, float]], key: str, threshold: float) -> float:
    """The first logged step where `key` >= `threshold` (NaN if never)."""
    return next((float(h["step"]) for h in history if h.get(key, -math.inf) >= threshold), math.nan)


def _halfway(steps: np.ndarray, values: np.ndarray, rising: bool) -> float:
    """The first step at which `values` has gone half-way from its extreme before to its extreme after.

    Rising: from the minimum before the maximum to the maximum; falling: from the maximum to the
    minimum after it. NaN when the series does not move.
    """
    if not values.size:
        return math.nan
    if rising:
        hi = int(np.argmax(values))
        lo = int(np.argmin(values[: hi + 1]))
        mid = (values[lo] + values[hi]) / 2
        hit = np.nonzero(values[lo : hi + 1] >= mid)[0]
        return float(steps[lo + hit[0]]) if values[hi] > values[lo] and hit.size else math.nan
    hi = int(np.argmax(values))
    lo = hi + int(np.argmin(values[hi:]))
    mid = (values[lo] + values[hi]) / 2
    hit = np.nonzero(values[hi : lo + 1] <= mid)[0]
    return float(steps[hi + hit[0]]) if values[hi] > values[lo] and hit.size else math.nan


@dataclass(frozen=True)
class GrokkingConfig:
    p: int = bounded(113, 5, 257)
    """Modulus, an odd number (the paper: 113)."""
    train_fraction: float = bounded(0.3, 0.05, 0.95)
    """Fraction of the p² pairs trained on (the paper: 0.3)."""
    steps: int = bounded(20_000, 1, 200_000)
    """Full-batch AdamW steps (the paper: 40k epochs; 99% test accuracy near 13k)."""
    weight_decay: float = bounded(1.0, 0.0, 10.0)
    """AdamW weight decay (the paper's 1.0; it drives the late generalisation)."""
    d_mlp: int = bounded(512, 8, 4096)
    """MLP width (the paper: 512)."""
    eval_every: int = bounded(100, 1, 100_000)
    """Steps between train/test evaluations (the accuracy curves)."""
    n_checkpoints: int = bounded(101, 3, 1001)
    """Evenly spaced checkpoints at which the progress measures are computed."""
    fourier_share: float = bounded(0.8, 0.05, 1.0)
    """Share of the embedding's non-constant Fourier norm that defines the key frequencies."""
    max_key_frequencies: int = bounded(8, 1, 128)
    """At most this many key frequencies (the claim's 8)."""


def grokking_organism_config(cfg: GrokkingConfig) -> Any:
    """The modular-addition organism config a grokking run trains (Nanda et al.'s model and optimiser)."""
    from alignlab.models.organisms.modular_addition import ModularAdditionConfig

    return ModularAdditionConfig(
        p=cfg.p, train_fraction=cfg.train_fraction, steps=cfg.steps, weight_decay=cfg.weight_decay,
        d_mlp=cfg.d_mlp, eval_every=cfg.eval_every, n_checkpoints=cfg.n_checkpoints,
        checkpoint_spacing="linear",
    )  # fmt: skip


GROKKING_METRICS = (
    "grokking_delay_ratio", "fourier_top8_share", "excluded_lead", "step_train_acc_99", "step_test_acc_99",
    "final_train_acc", "final_test_acc", "n_key_frequencies", "step_excluded_halfway_up",
    "step_test_loss_halfway_down", "final_restricted_loss", "final_excluded_loss",
    *(f"key_frequency_{i + 1}" for i in range(8)),
)  # fmt: skip


NO_WEIGHT_DECAY = Control(
    "no_weight_decay",
    {"weight_decay": 0.0},
    "without weight decay nothing removes the memorised solution: no grokking, no sparse Fourier embedding "
    "within the budget (Nanda et al. 2023, §5.3)",
)


@experiment(
    name="dynamics.grokking",
    suite=("quick", "full"),
    claims=[
        Claim("grokking_delay_ratio", ">=", 5.0, source=f"{NANDA_2023}, Fig. 1 / §5",
              note="step to 99% test accuracy over step to 99% train accuracy", control=NO_WEIGHT_DECAY),
        Claim("fourier_top8_share", ">=", 0.8, source=f"{NANDA_2023}, §4.1, Fig. 3",
              note="share of the trained embedding's Fourier norm carried by its 8 largest frequencies",
              control=NO_WEIGHT_DECAY),
        Claim("excluded_lead", ">", 0.0, source=f"{NANDA_2023}, §5.2 (circuit formation)",
              note="excluded loss is half-way up before test loss is half-way down (fraction of training; "
              "NotObserved unless the run groks)", control=NO_WEIGHT_DECAY),
    ],
    metrics=GROKKING_METRICS,
    presets={
        "smoke": {"p": 31, "train_fraction": 0.5, "steps": 60, "d_mlp": 64, "eval_every": 10,
                  "n_checkpoints": 7},
        "quick": {"p": 59, "train_fraction": 0.5, "steps": 3_000, "eval_every": 50, "n_checkpoints": 61},
        "full": {},
    },
)  # fmt: skip
def grokking(cfg: GrokkingConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """A one-layer transformer memorises modular addition long before it generalises.

    Trains ``organism:modular-addition`` — Nanda et al.'s LayerNorm-free one-layer transformer,
    full-batch AdamW (lr 1e-3, betas (0.9, 0.98)) — from the run's seed (cached per seed and config)
    and measures at every checkpoint Nanda et al.'s progress measures, defined on the logits over
    all p² pairs as in the paper's code: *restricted loss* keeps only the key frequencies'
    cos/sin(w(a+b)) directions (plus each output's mean) and is measured on all pairs; *excluded
    loss* removes exactly those directions and is measured on the training pairs. The key
    frequencies are read off the final embedding. A phenomenon that does not happen within the
    budget (99% test accuracy never reached) is returned as NotObserved, not NaN.
    """
    from alignlab.interp.fourier import excluded_loss, frequency_norms, key_frequencies, restricted_loss
    from alignlab.models import load_checkpoint, weights_sha256
    from alignlab.models.organisms import TrainResult
    from alignlab.models.organisms.modular_addition import all_pairs, answer_logits, load_split
    from alignlab.models.organisms.registry import train_organism

    if cfg.p % 2 == 0:
        raise ValueError(f"p must be odd (the Fourier basis needs it), got {cfg.p}")
    org_cfg = grokking_organism_config(cfg)
    path = train_organism(
        "modular-addition", config=org_cfg, seed=ctx.seed, progress=ctx.reporter("training")
    )
    result = TrainResult.from_folder(path)
    ctx.record_input("organism:modular-addition", weights_sha256(path))
    history = result.history
    train_idx, _ = load_split(path)
    a, b = all_pairs(cfg.p)
    labels = (a + b) % cfg.p
    train = torch.zeros(cfg.p**2, dtype=torch.bool)
    train[train_idx] = True
    final = load_checkpoint(path, result.checkpoints[-1][0])
    embedding = final.transformer.wte.weight[: cfg.p].detach()  # (p, d): the number tokens
    freqs, top_share = key_frequencies(embedding, cfg.fourier_share, cfg.max_key_frequencies)
    norms = frequency_norms(embedding)
    everything = torch.ones_like(train)
    measures = []
    for step, _ in ctx.progress(result.checkpoints, description="progress measures"):
        model = load_checkpoint(path, step)
        with torch.no_grad():
            logits = answer_logits(model, a, b).double()  # (p², p)
        row = {
            "step": step,
            "restricted_loss": restricted_loss(logits, labels, everything, freqs),
            "excluded_loss": excluded_loss(logits, labels, train, freqs),
            "train_loss": float(torch.nn.functional.cross_entropy(logits[train], labels[train])),
            "test_loss": float(torch.nn.functional.cross_entropy(logits[~train], labels[~train])),
            "weight_norm_sq": float(sum(p.detach().pow(2).sum() for p in model.parameters())),
        }
        measures.append(row)
        ctx.log(**{k: v for k, v in row.items() if k != "step"}, step=step)
    for h in history:
        ctx.log(step=int(h["step"]), **{f"acc/{k}": h[k] for k in ("train_acc", "test_acc")})
    out = grokking_metrics(history, measures, cfg.steps)
    out |= {"fourier_top8_share": top_share, "n_key_frequencies": float(len(freqs))}
    for i in range(8):
        out[f"key_frequency_{i + 1}"] = (
            float(freqs[i]) if i < len(freqs) else NotObserved(f"only {len(freqs)} key frequencies")
        )
    ctx.save_figure("progress_measures", _grokking_figure(history, measures, freqs, out))
    ctx.save_figure("embedding_fourier_norms", _fourier_figure(norms, freqs))
    return out


def grokking_metrics(
    history: list[dict[str, float]], measures: list[dict[str, float]], steps: int
) -> dict[str, float | NotObserved]:
    """Grokking's timing metrics from the accuracy history and the per-checkpoint progress measures.

    Each is NotObserved (with the reason) when its event did not happen within `steps`.
    """
    step_train = _first_step(history, "train_acc", 0.99)
    step_test = _first_step(history, "test_acc", 0.99)
    no_train = NotObserved(f"train accuracy never reached 99% in {steps} steps")
    no_test = NotObserved(f"test accuracy never reached 99% in {steps} steps (no grokking)")
    out: dict[str, float | NotObserved] = {
        "step_train_acc_99": step_train if math.isfinite(step_train) else no_train,
        "step_test_acc_99": step_test if math.isfinite(step_test) else no_test,
        "final_train_acc": history[-1]["train_acc"],
        "final_test_acc": history[-1]["test_acc"],
        "final_restricted_loss": measures[-1]["restricted_loss"],
        "final_excluded_loss": measures[-1]["excluded_loss"],
    }
    if not math.isfinite(step_train):
        out["grokking_delay_ratio"] = no_train
    elif not math.isfinite(step_test):
        out["grokking_delay_ratio"] = no_test
    else:
        out["grokking_delay_ratio"] = step_test / max(step_train, 1.0)
    # after memorisation (train accuracy 99%): the excluded loss's rise and the test loss's fall
    after = [m for m in measures if math.isfinite(step_train) and m["step"] >= step_train]
    mstep = np.array([m["step"] for m in after], dtype=float)
    t_excl = _halfway(mstep, np.array([m["excluded_loss"] for m in after]), rising=True)
    t_test = _halfway(mstep, np.array([m["test_loss"] for m in after]), rising=False)
    out["step_excluded_halfway_up"] = (
        t_excl if math.isfinite(t_excl) else NotObserved("excluded loss did not rise after memorisation")
    )
    out["step_test_loss_halfway_down"] = (
        t_test if math.isfinite(t_test) else NotObserved("test loss did not fall after memorisation")
    )
    if not math.isfinite(step_train):
        out["excluded_lead"] = no_train
    elif not math.isfinite(step_test):
        out["excluded_lead"] = no_test
    elif not (math.isfinite(t_excl) and math.isfinite(t_test)):
        out["excluded_lead"] = NotObserved(
            "no half-way point of the excluded or test loss after memorisation"
        )
    else:
        out["excluded_lead"] = (t_test - t_excl) / steps
    return out


def _grokking_figure(
    history: list[dict[str, float]], measures: list[dict[str, float]], freqs: list[int], out: dict[str, Any]
) -> Figure:
    step_train, step_test = (out[k] if isinstance(out[k], float) else math.nan
                             for k in ("step_train_acc_99", "step_test_acc_99"))  # fmt: skip
    fig = Figure(figsize=(11, 3.8))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    steps = [h["step"] for h in history]
    for key in ("train_acc", "test_acc"):
        ax1.plot(steps, [h[key] for h in history], label=key.replace("_", " "))
    for s, label in ((step_train, "train 99%"), (step_test, "test 99%")):
        if math.isfinite(s):
            ax1.axvline(s, ls=":", c="grey")
            ax1.text(s, 0.02, label, rotation=90, fontsize=8)
    ax1.set(xlabel="step", ylabel="accuracy", title="memorisation, then generalisation")
    ax1.legend()
    mstep = [m["step"] for m in measures]
    for key in ("train_loss", "test_loss", "excluded_loss", "restricted_loss"):
        ax2.plot(mstep, [max(m[key], 1e-8) for m in measures], label=key.replace("_", " "))
    ax2.set(xlabel="step", ylabel="loss (log)", yscale="log",
            title=f"progress measures (key frequencies {', '.join(map(str, freqs))})")  # fmt: skip
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fourier_figure(norms: torch.Tensor, freqs: list[int]) -> Figure:
    fig = Figure(figsize=(8, 3))
    ax = fig.add_subplot(1, 1, 1)
    share = (norms / norms.sum()).numpy()
    colours = ["tab:red" if k in freqs else "tab:grey" for k in range(len(share))]
    ax.bar(range(len(share)), share, color=colours)
    ax.set(xlabel="frequency k (0 = constant)", ylabel="share of ‖W_E‖²",
           title="embedding in the Fourier basis (red: key frequencies)")  # fmt: skip
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class InductionHeadsConfig:
    steps: int = bounded(1_500, 1, 100_000)
    """Training steps (fresh batch of repeated random sequences each)."""
    n_layers: int = bounded(2, 1, 4)
    """Attention-only layers (an induction head needs two: a previous-token head and one that reads it)."""
    d_model: int = bounded(64, 8, 512)
    """Residual stream width."""
    eval_every: int = bounded(25, 1, 10_000)
    """Steps between evaluations of in-context loss and attention scores."""
    n_checkpoints: int = bounded(31, 3, 1001)
    """Evenly spaced checkpoints at which every head's scores are computed."""
    score_batch: int = bounded(16, 1, 1024)
    """Repeated random sequences used for the head scores."""
    formed_score: float = bounded(0.5, 0.0, 1.0)
    """An induction head has formed when the best head's induction score reaches this (the claim's bar)."""


ONE_LAYER = Control(
    "one_layer",
    {"n_layers": 1},
    "a one-layer attention-only model has no earlier head to tell it which token came before each key, "
    "so it cannot form an induction head (Olsson et al. 2022, §2; Elhage et al. 2021)",
)
INDUCTION_METRICS = (
    "final_induction_score", "initial_induction_score", "final_previous_token_score",
    "final_duplicate_token_score", "final_loss_first_repeat", "final_loss_second_repeat",
    "in_context_gain", "phase_change_step", "induction_formed_step", "phase_change_gap",
)  # fmt: skip


@experiment(
    name="dynamics.induction_heads",
    suite=("quick", "full"),
    claims=[
        Claim("final_induction_score", ">=", 0.5, source=f"{OLSSON_2022}, §3 (argument 1)",
              note="best head's induction score after training", control=ONE_LAYER),
        Claim("phase_change_gap", "<=", 0.1, source=f"{OLSSON_2022}, §3, Fig. 2",
              note="|step the induction score forms − step the in-context loss drops| / training steps; "
              "NotObserved unless an induction head formed", control=ONE_LAYER),
    ],
    metrics=INDUCTION_METRICS,
    presets={
        "smoke": {"steps": 60, "d_model": 16, "eval_every": 10, "n_checkpoints": 4, "score_batch": 4},
        "quick": {},
        "full": {"steps": 5_000, "eval_every": 25, "n_checkpoints": 81},
    },
)  # fmt: skip
def induction_heads(cfg: InductionHeadsConfig, ctx: RunContext) -> dict[str, float | NotObserved]:
    """An induction head forms abruptly, at the same time as in-context learning appears.

    Trains ``organism:induction`` (attention-only, `n_layers` layers) from the run's seed and
    reports, over training, the loss on the first and the second copy of a repeated random segment
    and every head's previous-token, duplicate-token and induction scores
    (``alignlab.interp.attention.head_scores`` on fresh repeated random sequences). The phase change
    is the step of the steepest fall of the second-copy loss; the head forms when the best induction
    score is half-way to its final value. When no head reaches `formed_score`, the timing metrics
    are NotObserved. ``in_context_gain`` is first-copy minus second-copy loss at the end (nats).
    """
    from alignlab.interp.attention import attention_view, head_scores, repeated_random_tokens
    from alignlab.models import load_checkpoint, weights_sha256
    from alignlab.models.organisms.induction import InductionConfig, train_induction

    org_cfg = replace(InductionConfig(), steps=cfg.steps, eval_every=cfg.eval_every, n_layers=cfg.n_layers,
                      d_model=cfg.d_model, n_checkpoints=cfg.n_checkpoints,
                      checkpoint_spacing="linear")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="alignlab-induction-") as tmp:
        result = train_induction(
            org_cfg, Path(tmp) / "model", seed=ctx.seed, progress=ctx.reporter("training")
        )
        ctx.record_input("organism:induction", weights_sha256(result.path))
        scores = []
        for step, _ in ctx.progress(result.checkpoints, description="head scores"):
            model = load_checkpoint(result.path, step)
            hs = head_scores(model, seq_len=org_cfg.seq_len // 2, batch=cfg.score_batch, seed=ctx.seed,
                             bos_token_id=None)  # fmt: skip
            row = {k: v.max().item() for k, v in hs.as_dict().items()}
            scores.append((step, row, hs))
            ctx.log(step=step, **{f"best_{k}": v for k, v in row.items()})
    history = result.history
    for h in history:
        ctx.log(step=int(h["step"]), **{k: h[k] for k in ("loss_first_repeat", "loss_second_repeat")})
    hsteps = np.array([h["step"] for h in history], dtype=float)
    second = np.array([h["loss_second_repeat"] for h in history])
    drops = np.diff(second) / np.diff(hsteps)
    phase_step = float(hsteps[int(np.argmin(drops)) + 1]) if drops.size else math.nan
    csteps = np.array([s for s, _, _ in scores], dtype=float)
    ind = np.array([r["induction"] for _, r, _ in scores])
    half = (ind[0] + ind[-1]) / 2
    formed = np.nonzero(ind >= half)[0]
    formed_step = float(csteps[formed[0]]) if ind[-1] > ind[0] and formed.size else math.nan
    final_scores = scores[-1][2]
    out: dict[str, float | NotObserved] = {
        "final_induction_score": float(ind[-1]),
        "initial_induction_score": float(ind[0]),
        "final_previous_token_score": scores[-1][1]["previous_token"],
        "final_duplicate_token_score": scores[-1][1]["duplicate_token"],
        "final_loss_first_repeat": history[-1]["loss_first_repeat"],
        "final_loss_second_repeat": history[-1]["loss_second_repeat"],
        "in_context_gain": history[-1]["loss_first_repeat"] - history[-1]["loss_second_repeat"],
    }
    if ind.max() < cfg.formed_score:
        why = NotObserved(f"no head's induction score reached {cfg.formed_score:g} in {cfg.steps} steps "
                          f"(best {ind.max():.2f})")  # fmt: skip
        out |= {"phase_change_step": why, "induction_formed_step": why, "phase_change_gap": why}
    else:
        out |= {"phase_change_step": phase_step, "induction_formed_step": formed_step,
                "phase_change_gap": abs(formed_step - phase_step) / cfg.steps}  # fmt: skip
    ids = repeated_random_tokens(org_cfg.vocab_size, org_cfg.seq_len // 2, 1,
                                 torch.Generator().manual_seed(ctx.seed))  # fmt: skip
    view = attention_view(model, [str(t) for t in ids[0].tolist()], ids,
                          "final model on a repeated random sequence", final_scores)  # fmt: skip
    ctx.save_artifact("attention_final.view.json", json.dumps(view).encode())
    ctx.save_figure("phase_change", _induction_figure(history, scores, phase_step))
    ctx.save_figure("head_scores", _head_scores_figure(final_scores))
    return out


def _induction_figure(history: list[dict[str, float]], scores: list[Any], phase_step: float) -> Figure:
    fig = Figure(figsize=(11, 3.8))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    steps = [h["step"] for h in history]
    for key in ("loss_first_repeat", "loss_second_repeat"):
        ax1.plot(steps, [h[key] for h in history], label=key.replace("_", " "))
    ax1.set(xlabel="step", ylabel="loss (nats)", title="in-context learning")
    ax1.legend()
    csteps = [s for s, _, _ in scores]
    for key in ("previous_token", "duplicate_token", "induction"):
        ax2.plot(
            csteps, [r[key] for _, r, _ in scores], marker=".", label=f"best {key.replace('_', '-')} head"
        )
    ax2.set(xlabel="step", ylabel="score", title="head scores (best head)", ylim=(0, 1.02))
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        if math.isfinite(phase_step):
            ax.axvline(phase_step, ls=":", c="grey")
    fig.tight_layout()
    return fig


def _head_scores_figure(hs: Any) -> Figure:
    kinds = hs.as_dict()
    fig = Figure(figsize=(3.4 * len(kinds), 2.8))
    for i, (name, table) in enumerate(kinds.items()):
        ax = fig.add_subplot(1, len(kinds), i + 1)
        im = ax.imshow(table.numpy(), vmin=0, vmax=1, cmap="Blues")
        ax.set(xlabel="head", ylabel="layer", title=name.replace("_", "-"))
        ax.set_xticks(range(table.shape[1]))
        ax.set_yticks(range(table.shape[0]))
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class LensOverTimeConfig:
    model: str = "organism:stdlib-lm"
    """An organism (its saved training checkpoints are read)."""
    organism_seed: Literal["run", "zero"] = "run"
    """'run': the organism trained with the run's seed; 'zero': the seed-0 organism for every seed."""
    tiny: bool = False
    """Use the seconds-long smoke-test organism."""
    seq_len: int = bounded(128, 4, 4096)
    """Tokens per sequence."""
    eval_sequences: int = bounded(32, 1, 100_000)
    """Held-out sequences per checkpoint."""
    batch: int = bounded(8, 1, 1024)
    """Sequences per forward."""


@experiment(
    name="dynamics.lens_over_time",
    suite=("quick", "full"),
    metrics=("checkpoints", "initial_mid_layer_kl", "final_mid_layer_kl"),
    presets={
        "smoke": {"tiny": True, "seq_len": 16, "eval_sequences": 4, "batch": 4},
        "quick": {"organism_seed": "zero"},
        "full": {"eval_sequences": 128},
    },
)  # fmt: skip
def lens_over_time(cfg: LensOverTimeConfig, ctx: RunContext) -> dict[str, float]:
    """Logit-lens KL to the final output, per layer, at every training checkpoint (a layers × steps map).

    Descriptive (no claim): at initialisation every layer's residual stream is close to the embedding,
    so all layers predict alike and the KL is small; training makes later layers add what earlier
    ones lack. The heatmap shows, per layer, when that happens; per-layer values are logged.
    """
    from alignlab.experiments.lens import load_model, organism_folder
    from alignlab.interp.lens import logit_lens, mean_kl_to_final
    from alignlab.interp.sites import context_length
    from alignlab.models import checkpoints, load_checkpoint
    from alignlab.models.corpus import stdlib_token_windows

    if not cfg.model.startswith("organism:"):
        raise ValueError(f"model must be an organism (it needs training checkpoints), got {cfg.model!r}")
    model, tokenizer = load_model(cfg.model, cfg.organism_seed, cfg.tiny, ctx)
    folder = organism_folder(cfg.model, cfg.organism_seed, cfg.tiny, ctx.seed)
    seq_len = min(cfg.seq_len, context_length(model))
    ids = stdlib_token_windows(tokenizer, n_windows=cfg.eval_sequences, length=seq_len, split="val",
                               seed=ctx.seed).to(ctx.device)  # fmt: skip
    steps, rows = [], []
    for step, _ in ctx.progress(checkpoints(folder), description="checkpoints"):
        ckpt = load_checkpoint(folder, step, device=ctx.device)
        kl = mean_kl_to_final(ckpt, logit_lens, ids, cfg.batch).numpy()
        steps.append(step)
        rows.append(kl)
        ctx.log(step=step, **{f"logit_kl/layer_{i}": float(v) for i, v in enumerate(kl)})
    grid = np.stack(rows)  # (checkpoints, layers)
    mid = grid.shape[1] // 2 - 1 if grid.shape[1] > 2 else 0
    out = {
        "checkpoints": float(len(steps)),
        "initial_mid_layer_kl": float(grid[0, mid]),
        "final_mid_layer_kl": float(grid[-1, mid]),
    }
    ctx.save_figure("logit_lens_kl_over_training", _heatmap(grid, steps))
    return out


def _heatmap(grid: np.ndarray, steps: list[int]) -> Figure:
    fig = Figure(figsize=(8, 3.4))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.log10(np.maximum(grid.T, 1e-6)), aspect="auto", origin="lower", cmap="viridis_r")
    ax.set(xlabel="checkpoint (training step)", ylabel="layer", title="logit-lens KL to the final output")
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).astype(int)
    ax.set_xticks(ticks, [str(steps[i]) for i in ticks])
    fig.colorbar(im, ax=ax, label="log10 KL (nats)")
    fig.tight_layout()
    return fig
