"""A small GPT-2 language model of Python source, trained on the Python standard library itself.

The corpus is every ``.py`` file of the running interpreter's standard library (found with
``sysconfig.get_paths()["stdlib"]``, sorted, ``site-packages`` and test folders excluded by default),
so it needs no download; its SHA-256 and file count go into ``training.json``, since the library (and
so the model) differs between Python versions. About 5% of the files, chosen by a hash of their
path, are held out for the validation loss. A byte-level BPE tokenizer (vocabulary 4096, trained
with ``tokenizers`` on the training files) is saved with the model as a ``PreTrainedTokenizerFast``.

Model: GPT-2 (``GPT2LMHeadModel``), 4 layers, d_model 256, 4 heads, context 256, tied embeddings,
no dropout. Training: random 256-token windows of the training files, AdamW (betas 0.9, 0.95, weight
decay 0.1 on matrices), linear warmup then cosine decay to a tenth, gradient clipping at 1. The
default budget (400 steps of 8 x 256 tokens) took 293 s of CPU on one thread, data preparation
included; see docs/organisms.md.

    >>> from alignlab.models import load
    >>> model, tok = load("organism:stdlib-lm")
    >>> tok.decode(model.generate(**tok("def __init__(self", return_tensors="pt"), max_new_tokens=20)[0])
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from alignlab.models.corpus import read_corpus
from alignlab.models.errors import OrganismConfigError
from alignlab.models.organisms._hf import gpt2
from alignlab.models.organisms._train import (
    Progress,
    Task,
    TrainConfig,
    TrainResult,
    atomic_write_json,
    run_training,
    step_generator,
)

__all__ = ["EOS", "TINY", "StdlibLMConfig", "build_model", "train_stdlib_lm", "train_tokenizer"]

EOS = "<|endoftext|>"


@dataclass(frozen=True)
class StdlibLMConfig(TrainConfig):
    """The standard-library LM: corpus, tokenizer, model and training settings."""

    n_layers: int = 4
    """Transformer blocks."""
    d_model: int = 256
    """Residual stream width."""
    n_heads: int = 4
    """Attention heads per block."""
    context: int = 256
    """Context length in tokens (n_positions)."""
    vocab_size: int = 4096
    """BPE vocabulary size (byte-level, so any text can be encoded)."""
    batch_size: int = 8
    """Windows per step."""
    steps: int = 400
    """AdamW steps."""
    lr: float = 2e-3
    """Peak learning rate."""
    warmup: int = 40
    """Linear warmup steps; cosine decay to lr / 10 after."""
    weight_decay: float = 0.1
    """AdamW weight decay, on matrices and embeddings only."""
    eval_every: int = 50
    """Evaluate every this many steps."""
    eval_windows: int = 16
    """Fixed windows (of `context` tokens) for each of the train and validation losses."""
    val_fraction: float = 0.05
    """Fraction of files held out for validation (chosen by a hash of the path)."""
    include_tests: bool = False
    """Also train on the library's test folders (test, tests, idle_test): about 2.5x the text."""
    max_files: int = 0
    """Use only the first this many files in sorted order (0: all); for quick tests."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.d_model % self.n_heads:
            raise OrganismConfigError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if not 0 < self.val_fraction < 1:
            raise OrganismConfigError(f"val_fraction must lie in (0, 1), got {self.val_fraction}")


def train_tokenizer(texts: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE tokenizer (GPT-2 style) with `vocab_size` entries, EOS first."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer, length=len(texts))
    return tok


def _encode(tok: Tokenizer, texts: list[str]) -> torch.Tensor:
    """All documents as one stream of token ids, each followed by EOS: (N,) int32."""
    eos = tok.token_to_id(EOS)
    ids: list[int] = []
    for enc in tok.encode_batch(texts):
        ids.extend(enc.ids)
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.int32)


def _prepare(
    cfg: StdlibLMConfig, prep: Path, report: Progress
) -> tuple[Tokenizer, dict[str, torch.Tensor], dict]:
    """Tokenizer and token streams, cached in `prep` so an interrupted training skips this."""
    tok_file, tokens_file, info_file = (
        prep / "tokenizer.json",
        prep / "tokens.safetensors",
        prep / "corpus.json",
    )
    if tok_file.is_file() and tokens_file.is_file() and info_file.is_file():
        return Tokenizer.from_file(str(tok_file)), load_file(tokens_file), json.loads(info_file.read_text())
    report(0.0, "reading the standard library")
    corpus = read_corpus(cfg.include_tests, cfg.val_fraction, cfg.max_files)
    report(0.0, f"training the tokenizer on {len(corpus.train)} files")
    tok = train_tokenizer(corpus.train, cfg.vocab_size)
    report(0.0, "tokenizing")
    streams = {"train": _encode(tok, corpus.train), "val": _encode(tok, corpus.val)}
    info = {**corpus.info(), "train_tokens": len(streams["train"]), "val_tokens": len(streams["val"])}
    short = [k for k, v in streams.items() if len(v) <= cfg.context + 1]
    if short:
        raise OrganismConfigError(f"the {short[0]} corpus has fewer than context + 1 tokens; use more files")
    save_file(streams, prep / "tokens.tmp")
    Path(prep / "tokens.tmp").replace(tokens_file)
    tok.save(str(prep / "tokenizer.tmp"))
    Path(prep / "tokenizer.tmp").replace(tok_file)
    atomic_write_json(info_file, info)
    return tok, streams, info


TINY = StdlibLMConfig(
    n_layers=2, d_model=32, n_heads=2, context=32, vocab_size=300, batch_size=4, steps=30, warmup=3,
    eval_every=10, eval_windows=2, max_files=12, n_checkpoints=4,
)  # fmt: skip
"""A two-layer, width-32 stdlib-lm on 12 files that trains in seconds: for smoke tests, not for claims."""


def build_model(cfg: StdlibLMConfig, seed: int, vocab_size: int | None = None) -> GPT2LMHeadModel:
    """The untrained GPT-2 for `cfg`, initialised from `seed`."""
    return gpt2(
        seed,
        vocab_size=vocab_size or cfg.vocab_size,
        n_positions=cfg.context,
        n_embd=cfg.d_model,
        n_layer=cfg.n_layers,
        n_head=cfg.n_heads,
        bos_token_id=0,
        eos_token_id=0,
    )


def _windows(stream: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    return stream[starts[:, None] + torch.arange(length + 1)].long()  # (B, length + 1)


def train_stdlib_lm(
    cfg: StdlibLMConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    force: bool = False,
) -> TrainResult:
    """Train the standard-library LM into `out_dir`; history rows hold train and validation loss."""
    if not isinstance(cfg, StdlibLMConfig):
        raise OrganismConfigError(f"expected a StdlibLMConfig, got {type(cfg).__name__}")

    def make_task(prep: Path, report: Progress) -> Task:
        tok, streams, info = _prepare(cfg, prep, report)
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS)
        tokenizer.model_max_length = cfg.context
        model = build_model(cfg, seed, tok.get_vocab_size())
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))
        T, V = cfg.context, model.config.vocab_size
        train, val = streams["train"], streams["val"]
        fixed = {
            name: _windows(s, torch.linspace(0, len(s) - T - 1, cfg.eval_windows).long(), T)
            for name, s in (("train", train), ("val", val))
        }

        def loss_on(x: torch.Tensor) -> torch.Tensor:
            logits = model(x[:, :-1]).logits  # (B, T, V)
            return F.cross_entropy(logits.reshape(-1, V), x[:, 1:].reshape(-1))

        def step(i: int) -> float:
            starts = torch.randint(len(train) - T - 1, (cfg.batch_size,), generator=step_generator(seed, i))
            loss = loss_on(_windows(train, starts, T))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss.item()

        def lr_at(i: int) -> float:
            if i < cfg.warmup:
                return cfg.lr * (i + 1) / cfg.warmup
            frac = (i - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
            return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

        def evaluate() -> dict[str, float]:
            return {f"{name}_loss": loss_on(x).item() for name, x in fixed.items()}

        return Task(model, tokenizer, opt, step, evaluate, lr_at=lr_at, info=info)

    return run_training(
        out_dir, organism="stdlib-lm", cfg=cfg, seed=seed, make_task=make_task, progress=progress, force=force
    )
