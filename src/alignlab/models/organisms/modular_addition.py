"""Modular addition, the grokking organism (Power et al. 2022; Nanda et al. 2023, "Progress measures
for grokking via mechanistic interpretability").

A one-layer transformer reads ``a b =`` and predicts ``(a + b) mod p`` at ``=``. Trained full-batch
on 30% of the p² pairs with AdamW and weight decay 1.0, it first memorises the training pairs, and
only much later generalises to the rest, as a Fourier-multiplication circuit forms and weight decay
removes the memorised solution.

Architecture (Nanda et al.'s, stored as a Hugging Face GPT-2 folder): 1 layer, d_model 128, 4 heads of
32, d_mlp 512 with ReLU, learned positions (n_positions 3), no LayerNorm, no attention biases (kept at
zero and frozen; the MLP keeps its biases), untied embedding and unembedding, no dropout, vocabulary
``0 .. p-1`` then ``=`` (token p). Initialisation as in the paper's code: normal with std
1/sqrt(d_model) for every matrix (1/sqrt(p + 1) for the unembedding), zero biases. Full-batch AdamW
(lr 1e-3, weight decay 1.0, betas (0.9, 0.98), 10 warm-up steps) on 30% of the p² pairs; loss and
accuracy on the p number logits at ``=`` only (the paper's d_vocab_out = p), cross-entropy in float64
as in the paper's code.

The model has no LayerNorm: the GPT-2 folder records ``alignlab_layernorm: false`` in its
``config.json`` and :func:`alignlab.models.load` / ``load_checkpoint`` replace GPT-2's LayerNorms by
identities when they read it (:func:`strip_layernorm`). ``layernorm=True`` builds the older GPT-2
variant (LayerNorms, attention biases, GPT-2's init std 0.02) for comparison.

Training is fast because only the ``=`` position's output matters: :func:`answer_logits` applies the
model's own weights, computing attention once from the three (token, position) embedding tables and
the MLP and unembedding at the last position only. It equals the HF forward's last-position logits
to float rounding (tested), so the saved model is an ordinary GPT-2.

    >>> from alignlab.models.organisms.modular_addition import QUICK, train_modular_addition
    >>> result = train_modular_addition(QUICK, "runs/grok", seed=0)
    >>> result.history[-1]["test_acc"]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from transformers import GPT2LMHeadModel

from alignlab.models.errors import OrganismConfigError
from alignlab.models.organisms._hf import gpt2, word_tokenizer
from alignlab.models.organisms._train import (
    Progress,
    Task,
    TrainConfig,
    TrainResult,
    run_training,
    step_generator,
)

__all__ = [
    "QUICK",
    "ModularAdditionConfig",
    "all_pairs",
    "answer_logits",
    "build_model",
    "load_split",
    "strip_layernorm",
    "train_modular_addition",
    "train_test_split",
]

SPLIT_FILE = "split.safetensors"


@dataclass(frozen=True)
class ModularAdditionConfig(TrainConfig):
    """Nanda et al. 2023's grokking setup (their published values are the defaults)."""

    p: int = 113
    """The modulus; inputs are 0..p-1 and "=" is token p."""
    train_fraction: float = 0.3
    """Fraction of the p² pairs used for training (a seeded random split)."""
    steps: int = 20_000
    """Full-batch AdamW steps (the paper: 40k epochs; test accuracy reached 99% near step 13k)."""
    lr: float = 1e-3
    """AdamW learning rate (constant)."""
    weight_decay: float = 1.0
    """AdamW weight decay; what drives the late generalisation."""
    betas: tuple[float, float] = (0.9, 0.98)
    """AdamW betas."""
    d_model: int = 128
    """Residual stream width."""
    n_heads: int = 4
    """Attention heads (each d_model / n_heads wide)."""
    d_mlp: int = 512
    """MLP hidden width (ReLU)."""
    layernorm: bool = False
    """GPT-2's LayerNorms and attention biases (the paper's model has neither)."""
    init_std: float | None = None
    """Std of the normal initialisation; None: the paper's 1/sqrt(d_model) (0.02 with layernorm=True)."""
    warmup: int = 10
    """Linear learning-rate warm-up steps (the paper's code: 10)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.p < 2 or not 0 < self.train_fraction < 1:
            raise OrganismConfigError(
                f"need p >= 2 and 0 < train_fraction < 1: p={self.p}, train_fraction={self.train_fraction}"
            )
        if self.d_model % self.n_heads:
            raise OrganismConfigError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")


QUICK = ModularAdditionConfig(p=59, train_fraction=0.5, steps=3_000)
"""A smaller setting (p = 59, half the pairs): see docs/dynamics.md for when it groks."""


def all_pairs(p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every input pair: (a, b) as two (p²,) tensors, pair index a * p + b."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b


def train_test_split(p: int, train_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair indices (a * p + b) for training and for testing: a permutation seeded by `seed`."""
    perm = torch.randperm(p * p, generator=step_generator(seed, 0, "split"))
    n_train = round(train_fraction * p * p)
    return perm[:n_train].sort().values, perm[n_train:].sort().values


def load_split(folder: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The (train, test) pair indices a trained organism folder was trained and tested on."""
    tensors = load_file(Path(folder) / SPLIT_FILE)
    return tensors["train"], tensors["test"]


def strip_layernorm(model: GPT2LMHeadModel) -> GPT2LMHeadModel:
    """Replace a GPT-2's LayerNorms by identities in place (configs marked ``alignlab_layernorm: false``)."""
    t = model.transformer
    for blk in t.h:
        blk.ln_1, blk.ln_2 = torch.nn.Identity(), torch.nn.Identity()
    t.ln_f = torch.nn.Identity()
    return model


def build_model(cfg: ModularAdditionConfig, seed: int) -> GPT2LMHeadModel:
    """The untrained one-layer model for `cfg`, initialised from `seed`."""
    std = cfg.init_std if cfg.init_std is not None else (0.02 if cfg.layernorm else cfg.d_model**-0.5)
    extra = {} if cfg.layernorm else {"alignlab_layernorm": False}
    model = gpt2(
        seed,
        vocab_size=cfg.p + 1,
        n_positions=3,
        n_embd=cfg.d_model,
        n_layer=1,
        n_head=cfg.n_heads,
        n_inner=cfg.d_mlp,
        activation_function="relu",
        tie_word_embeddings=False,
        initializer_range=std,
        **extra,
    )
    if cfg.layernorm:
        return model
    strip_layernorm(model)
    g = step_generator(seed, 0, "init")
    blk = model.transformer.h[0]
    with torch.no_grad():
        for param in (model.transformer.wte.weight, model.transformer.wpe.weight, blk.attn.c_attn.weight,
                      blk.attn.c_proj.weight, blk.mlp.c_fc.weight, blk.mlp.c_proj.weight):  # fmt: skip
            param.copy_(torch.randn(param.shape, generator=g) * std)
        model.lm_head.weight.copy_(torch.randn(model.lm_head.weight.shape, generator=g) * (cfg.p + 1) ** -0.5)
        for bias in (blk.attn.c_attn.bias, blk.attn.c_proj.bias, blk.mlp.c_fc.bias, blk.mlp.c_proj.bias):
            bias.zero_()
    for bias in (blk.attn.c_attn.bias, blk.attn.c_proj.bias):  # the paper's attention has no biases
        bias.requires_grad_(False)
    return model


def _norm(x: torch.Tensor, ln: torch.nn.Module, eps: float) -> torch.Tensor:
    if isinstance(ln, torch.nn.LayerNorm):
        return F.layer_norm(x, x.shape[-1:], ln.weight, ln.bias, eps)
    return x


def answer_logits(model: GPT2LMHeadModel, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Logits over the p answers at "=" for inputs ``a b =``: (N,) and (N,) -> (N, p).

    The same function as ``model(input_ids).logits[:, -1, :p]`` for a one-layer GPT-2 of this
    organism's shape, computed without the first two positions' MLP and unembedding.
    """
    cfg = model.config
    if cfg.n_layer != 1 or cfg.n_positions != 3:
        raise OrganismConfigError(
            f"answer_logits needs a 1-layer, 3-position GPT-2, got {cfg.n_layer}/{cfg.n_positions}"
        )
    t, blk = model.transformer, model.transformer.h[0]
    p, C, H = cfg.vocab_size - 1, cfg.n_embd, cfg.n_head
    D, eps = C // H, cfg.layer_norm_epsilon
    wte, wpe = t.wte.weight, t.wpe.weight
    x = torch.cat([wte[:p] + wpe[0], wte[:p] + wpe[1], (wte[p] + wpe[2])[None]])  # (2p+1, C)
    h = _norm(x, blk.ln_1, eps)
    q, k, v = (h @ blk.attn.c_attn.weight + blk.attn.c_attn.bias).split(C, dim=-1)  # (2p+1, C) each
    k, v = k.view(-1, H, D), v.view(-1, H, D)  # (2p+1, H, D)
    s = (k * q[-1].view(H, D)).sum(-1) / math.sqrt(D)  # (2p+1, H): the "=" query against every key
    n = a.shape[0]
    w = torch.stack([s[a], s[p + b], s[-1].expand(n, H)], dim=-1).softmax(-1)  # (N, H, 3)
    z = w[..., 0, None] * v[a] + w[..., 1, None] * v[p + b] + w[..., 2, None] * v[-1]  # (N, H, D)
    r = x[-1] + z.reshape(n, C) @ blk.attn.c_proj.weight + blk.attn.c_proj.bias  # (N, C)
    h = _norm(r, blk.ln_2, eps)
    r = r + F.relu(h @ blk.mlp.c_fc.weight + blk.mlp.c_fc.bias) @ blk.mlp.c_proj.weight + blk.mlp.c_proj.bias
    r = _norm(r, t.ln_f, eps)
    return r @ model.lm_head.weight[:p].T  # (N, p)


def train_modular_addition(
    cfg: ModularAdditionConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    force: bool = False,
) -> TrainResult:
    """Train the grokking model into `out_dir`; history rows hold train/test loss and accuracy.

    The folder also holds ``split.safetensors`` (see :func:`load_split`).
    """
    if not isinstance(cfg, ModularAdditionConfig):
        raise OrganismConfigError(f"expected a ModularAdditionConfig, got {type(cfg).__name__}")

    def make_task(prep: Path, report: Progress) -> Task:
        model = build_model(cfg, seed)
        tokenizer = word_tokenizer([*map(str, range(cfg.p)), "="])
        train_idx, test_idx = train_test_split(cfg.p, cfg.train_fraction, seed)
        a, b = all_pairs(cfg.p)
        y = (a + b) % cfg.p
        a_tr, b_tr, y_tr = a[train_idx], b[train_idx], y[train_idx]
        params = [q for q in model.parameters() if q.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)

        def step(_: int) -> float:
            loss = F.cross_entropy(answer_logits(model, a_tr, b_tr).double(), y_tr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item()

        def evaluate() -> dict[str, float]:
            logits = answer_logits(model, a, b)  # (p², p)
            out = {}
            for split, idx in (("train", train_idx), ("test", test_idx)):
                out[f"{split}_loss"] = F.cross_entropy(logits[idx].double(), y[idx]).item()
                out[f"{split}_acc"] = (logits[idx].argmax(-1) == y[idx]).float().mean().item()
            return out

        def lr_at(step: int) -> float:
            return cfg.lr * min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else cfg.lr

        info = {"n_train": len(train_idx), "n_test": len(test_idx), "split_file": SPLIT_FILE}
        split = save({"train": train_idx, "test": test_idx})
        return Task(model, tokenizer, opt, step, evaluate, lr_at=lr_at, info=info, files={SPLIT_FILE: split})

    return run_training(
        out_dir,
        organism="modular-addition",
        cfg=cfg,
        seed=seed,
        make_task=make_task,
        progress=progress,
        force=force,
    )
