"""Interpreting across depth: what each layer already predicts, read by the logit lens and the tuned lens.

Works on any Hugging Face causal LM: the built-in ``organism:stdlib-lm`` by default, or any model a
user names (``--set model=gpt2`` where the hub is reachable, or a local folder). Text is the Python
standard library's source (``alignlab.models.corpus``): the tuned lens is trained on the organism's
training files and evaluated on its held-out ones.

    alignlab run lens.tuned_vs_logit --seeds 3
    alignlab run lens.tuned_vs_logit --set model=EleutherAI/pythia-70m --device cuda
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.figure import Figure

from alignlab.core import Claim, Control, RunContext, bounded, experiment

BELROSE_2023 = "Belrose et al. 2023, Eliciting latent predictions from transformers with the tuned lens"
SNIPPET = 'def greet(name):\n    """Say hello."""\n    return f"Hello, {name}!"\n'
"""The sequence whose prediction trajectory the report draws."""


ORGANISM_SEED_DOC = (
    "'run': the organism is trained with the run's seed (seeds vary the model too); 'zero': every seed "
    "reads the seed-0 organism (claims are then conditional on that one model)"
)


def load_model(model: str, organism_seed: str, tiny: bool, ctx: RunContext) -> tuple[Any, Any]:
    """The model an experiment studies, its tokenizer; an organism's weight hash goes into the manifest.

    ``organism:stdlib-lm`` is trained from the run's seed (`organism_seed` 'run') or seed 0 ('zero');
    `tiny` trains the seconds-long smoke-test organism instead. Other names load as they are.
    """
    from alignlab.models import load, load_organism

    if not model.startswith("organism:"):
        return load(model, device=ctx.device)
    if organism_seed not in ("run", "zero"):
        raise ValueError(f"organism_seed must be 'run' or 'zero', got {organism_seed!r}")
    config = None
    if tiny:
        from alignlab.models.organisms.stdlib_lm import TINY

        if model != "organism:stdlib-lm":
            raise ValueError(f"tiny=True needs model=organism:stdlib-lm, got {model!r}")
        config = TINY
    seed = ctx.seed if organism_seed == "run" else 0
    net, tok, digest = load_organism(model, seed=seed, config=config, device=ctx.device,
                                     progress=ctx.reporter(f"training {model} (seed {seed})"))  # fmt: skip
    ctx.record_input(model, digest)
    return net, tok


def organism_folder(model: str, organism_seed: str, tiny: bool, seed: int) -> Any:
    """The cache folder of the organism :func:`load_model` reads (for its checkpoints)."""
    from alignlab.models import organism_path

    config = None
    if tiny:
        from alignlab.models.organisms.stdlib_lm import TINY

        config = TINY
    return organism_path(model, config=config, seed=seed if organism_seed == "run" else 0)


@dataclass(frozen=True)
class LensConfig:
    model: str = "organism:stdlib-lm"
    """Model: an organism, a local folder or a hub name."""
    organism_seed: Literal["run", "zero"] = "run"
    """Which organism an organism model is (see ORGANISM_SEED_DOC)."""
    tiny: bool = False
    """Train the seconds-long smoke-test organism (claims need the real one)."""
    seq_len: int = bounded(128, 4, 4096)
    """Tokens per sequence (at most the model's context)."""
    batch: int = bounded(8, 1, 1024)
    """Sequences per tuned-lens training step."""
    steps: int = bounded(250, 0, 100_000)
    """Tuned-lens training steps (the reference default; 0 leaves the lens untrained: the logit lens)."""
    eval_sequences: int = bounded(64, 1, 100_000)
    """Held-out sequences on which KL to the final layer is measured."""


UNTRAINED_LENS = Control(
    "untrained_lens",
    {"steps": 0},
    "an untrained tuned lens is the identity translator, i.e. the logit lens: no advantage is possible",
)


def _trajectory_view(model: Any, tokenizer: Any, lens: Any, title: str) -> dict[str, Any]:
    from alignlab.interp.lens import prediction_trajectory
    from alignlab.interp.sites import context_length

    limit = min(48, context_length(model) or 48)
    ids = tokenizer(SNIPPET, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :limit]
    t = prediction_trajectory(model, tokenizer, ids.to(next(model.parameters()).device), lens)
    return {"view": "lens_trajectory", "title": title, "tokens": t.input_tokens,
            "layers": [name.replace("resid_post.", "layer ") for name in t.layers],
            "top": t.top_tokens, "prob": t.probs, "entropy": t.entropy}  # fmt: skip


@experiment(
    name="lens.tuned_vs_logit",
    suite=("quick", "full"),
    claims=[
        Claim("min_kl_advantage", ">", 0.0, source=f"{BELROSE_2023}, Fig. 3 (GPT-2, Pythia)",
              note="min over layers but the last of KL(logit lens) − KL(tuned lens), nats; in quick, "
              "conditional on the seed-0 organism:stdlib-lm", control=UNTRAINED_LENS),
    ],
    metrics=("min_kl_advantage", "layers_tuned_better", "final_layer_kl_gap"),
    presets={
        "smoke": {"tiny": True, "seq_len": 16, "batch": 4, "steps": 20, "eval_sequences": 8},
        "quick": {"organism_seed": "zero", "steps": 100, "eval_sequences": 32},
        "full": {"steps": 1000, "eval_sequences": 256},
    },
)  # fmt: skip
def tuned_vs_logit(cfg: LensConfig, ctx: RunContext) -> dict[str, float]:
    """The tuned lens's prediction at every layer is closer to the final output than the logit lens's.

    Trains a tuned lens (one affine translator per layer, identity-initialised, KL(final ‖ lens), SGD
    with Nesterov momentum as in the reference code) on the model's own training text, then measures
    both lenses' per-layer KL to the final distribution on held-out text. Saves the lens (safetensors
    + JSON, loadable with ``TunedLens.load``) and both lenses' prediction trajectories for the report.
    """
    from alignlab.interp.attention import attention_view
    from alignlab.interp.lens import logit_lens, mean_kl_to_final, train_tuned_lens
    from alignlab.interp.sites import context_length
    from alignlab.models.corpus import stdlib_token_windows

    model, tokenizer = load_model(cfg.model, cfg.organism_seed, cfg.tiny, ctx)
    seq_len = min(cfg.seq_len, context_length(model))
    train_ids = stdlib_token_windows(tokenizer, n_windows=max(1, cfg.steps) * cfg.batch, length=seq_len,
                                     split="train", seed=ctx.seed)  # fmt: skip
    eval_ids = stdlib_token_windows(tokenizer, n_windows=cfg.eval_sequences, length=seq_len, split="val",
                                    seed=10_000 + ctx.seed)  # fmt: skip
    torch.manual_seed(ctx.seed)
    lens = train_tuned_lens(model, list(train_ids.to(ctx.device).split(cfg.batch)), steps=cfg.steps,
                            progress=ctx.reporter("tuned lens"))  # fmt: skip
    eval_ids = eval_ids.to(ctx.device)
    logit_kl = mean_kl_to_final(model, logit_lens, eval_ids, cfg.batch).numpy()
    tuned_kl = mean_kl_to_final(model, lens, eval_ids, cfg.batch).numpy()
    n = len(logit_kl)
    for layer in range(n):
        ctx.log(step=layer, logit_lens_kl=logit_kl[layer], tuned_lens_kl=tuned_kl[layer])
    advantage = logit_kl[:-1] - tuned_kl[:-1]
    if not advantage.size:
        raise ValueError(f"{cfg.model} has one layer: a lens needs at least two to compare")
    out = {
        "min_kl_advantage": float(advantage.min()),
        "layers_tuned_better": float((advantage > 0).mean()),
        "final_layer_kl_gap": float(abs(logit_kl[-1] - tuned_kl[-1])),
    }
    ctx.save_figure("kl_per_layer", _kl_figure(logit_kl, tuned_kl, cfg.model))
    with tempfile.TemporaryDirectory() as tmp:
        folder = lens.save(Path(tmp) / "lens")
        for f in sorted(folder.iterdir()):
            ctx.save_artifact(f"tuned_lens/{f.name}", f.read_bytes())
    ids = tokenizer(SNIPPET, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :32].to(
        ctx.device
    )
    labels = [tokenizer.decode([i]) for i in ids[0].tolist()]
    view = attention_view(model, labels, ids, f"attention of {cfg.model} on a held-out snippet")
    ctx.save_artifact("attention_snippet.view.json", json.dumps(view).encode())
    for name, which in (("logit", logit_lens), ("tuned", lens)):
        view = _trajectory_view(model, tokenizer, which, f"{name} lens on a held-out snippet ({cfg.model})")
        ctx.save_artifact(f"trajectory_{name}.view.json", json.dumps(view).encode())
    return out


def _kl_figure(logit_kl: np.ndarray, tuned_kl: np.ndarray, model: str) -> Figure:
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    layers = np.arange(len(logit_kl))
    ax.plot(layers, logit_kl, marker="o", label="logit lens")
    ax.plot(layers, tuned_kl, marker="o", label="tuned lens")
    ax.set(
        xlabel="layer (resid_post)", ylabel="KL(final ‖ lens), nats", title=f"{model}: lenses across depth"
    )
    ax.set_xticks(layers)
    ax.legend()
    fig.tight_layout()
    return fig
