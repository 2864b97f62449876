"""Depth-and-time experiments on tiny budgets: they run, are deterministic, report every claimed metric."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

import alignlab.experiments.dynamics
import alignlab.experiments.lens  # noqa: F401  (registers the experiments)
from alignlab.core import RunContext, get_experiment
from alignlab.models.organisms.stdlib_lm import StdlibLMConfig, train_stdlib_lm

TINY = {
    "dynamics.grokking": {
        "p": 11,
        "train_fraction": 0.5,
        "steps": 40,
        "d_mlp": 32,
        "eval_every": 10,
        "n_checkpoints": 5,
    },
    "dynamics.induction_heads": {"steps": 20, "eval_every": 10, "n_checkpoints": 3, "score_batch": 2},
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    """A 2-layer stdlib LM trained for a few steps, with checkpoints: stands in for organism:stdlib-lm."""
    cfg = StdlibLMConfig(n_layers=2, d_model=16, n_heads=2, context=32, vocab_size=300, batch_size=2,
                         steps=6, warmup=2, eval_every=3, eval_windows=2, max_files=12,
                         n_checkpoints=3)  # fmt: skip
    return train_stdlib_lm(cfg, tmp_path_factory.mktemp("lm") / "model", seed=0).path


def _run_twice(name: str, **overrides: object) -> dict[str, float]:
    exp = get_experiment(name)
    cfg = dataclasses.replace(exp.default_config("quick"), **overrides)
    ctx = RunContext.scratch(seed=0)
    a = exp.fn(cfg, ctx)
    b = exp.fn(cfg, RunContext.scratch(seed=0))
    assert a == b
    assert set(a) == set(exp.metrics)
    return a | {"_artifacts": ctx.artifact_dir}  # type: ignore[dict-item]


@pytest.mark.parametrize("name", sorted(TINY))
def test_training_dynamics_experiments_run_deterministically(name: str) -> None:
    out = _run_twice(name, **TINY[name])
    figures = {p.name for p in out["_artifacts"].iterdir()}
    assert len(figures) >= 2
    if name == "dynamics.induction_heads":
        from alignlab.reporting._views import render_view

        html = render_view(out["_artifacts"] / "attention_final.view.json")
        assert html.count('class="att-head"') == 2 * 4  # every head of the 2-layer, 4-head model


def test_grokking_reports_key_frequencies_in_range() -> None:
    out = _run_twice("dynamics.grokking", **TINY["dynamics.grokking"])
    freqs = [v for k, v in out.items() if k.startswith("key_frequency_") and isinstance(v, float)]
    assert 1 <= len(freqs) <= 8 and all(1 <= f <= 5 for f in freqs)
    assert 0.0 <= out["fourier_top8_share"] <= 1.0


def test_lens_experiment_on_a_local_model_folder_saves_lens_and_views(tiny_lm: Path) -> None:
    out = _run_twice(
        "lens.tuned_vs_logit", model=str(tiny_lm), seq_len=16, batch=2, steps=3, eval_sequences=4
    )
    assert out["final_layer_kl_gap"] == pytest.approx(0.0, abs=1e-6)  # the last layer is the output
    untrained = _run_twice(
        "lens.tuned_vs_logit", model=str(tiny_lm), seq_len=16, batch=2, steps=0, eval_sequences=4
    )
    assert untrained["min_kl_advantage"] == 0.0  # the control: an untrained tuned lens is the logit lens
    files = {p.relative_to(out["_artifacts"]).as_posix() for p in out["_artifacts"].rglob("*") if p.is_file()}
    assert {"tuned_lens/config.json", "tuned_lens/params.safetensors", "trajectory_tuned.view.json",
            "attention_snippet.view.json"} <= files  # fmt: skip
    view = json.loads((out["_artifacts"] / "trajectory_logit.view.json").read_text())
    assert view["view"] == "lens_trajectory" and len(view["top"]) == 2 == len(view["layers"])


def test_lens_over_time_reads_every_checkpoint(tiny_lm: Path) -> None:
    out = _run_twice("dynamics.lens_over_time", tiny=True, seq_len=16, eval_sequences=2, batch=2)
    assert out["checkpoints"] == 4.0
    assert math.isfinite(out["final_mid_layer_kl"])


def test_grokking_metrics_are_not_observed_when_nothing_groks() -> None:
    from alignlab.core import NotObserved
    from alignlab.experiments.dynamics import grokking_metrics

    history = [{"step": s, "train_acc": min(1.0, s / 100), "test_acc": 0.1} for s in range(0, 401, 50)]
    measures = [{"step": s, "excluded_loss": 1.0, "test_loss": 4.0, "restricted_loss": 3.0}
                for s in range(0, 401, 100)]  # fmt: skip
    out = grokking_metrics(history, measures, 400)
    assert out["step_train_acc_99"] == 100.0
    for key in ("grokking_delay_ratio", "excluded_lead", "step_test_acc_99"):
        assert isinstance(out[key], NotObserved) and "no grokking" in out[key].reason
    grokked = [{**h, "test_acc": 1.0 if h["step"] >= 300 else 0.1} for h in history]
    rising = [{**m, "excluded_loss": float(m["step"]), "test_loss": 4.0 - m["step"] / 100} for m in measures]
    out = grokking_metrics(grokked, rising, 400)
    assert out["grokking_delay_ratio"] == 3.0 and isinstance(out["excluded_lead"], float)


def test_the_grokking_organism_is_layernorm_free_and_deterministic_per_seed(tmp_path: Path) -> None:
    from alignlab.models import load_checkpoint, weights_sha256
    from alignlab.models.organisms.modular_addition import (
        ModularAdditionConfig,
        all_pairs,
        answer_logits,
        build_model,
        train_modular_addition,
    )

    cfg = ModularAdditionConfig(p=7, steps=6, eval_every=3, d_model=16, n_heads=2, d_mlp=16, n_checkpoints=2)
    a0, a1, b0 = (train_modular_addition(cfg, tmp_path / name, seed=seed).path
                  for name, seed in (("a0", 0), ("a1", 0), ("b0", 1)))  # fmt: skip
    assert weights_sha256(a0) == weights_sha256(a1) != weights_sha256(b0)
    model = load_checkpoint(a0, 6)
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
    assert not model.transformer.h[0].attn.c_attn.bias.any()  # the paper's attention has no biases
    a, b = all_pairs(7)
    with torch.no_grad():
        hf = model(torch.stack([a, b, torch.full_like(a, 7)], 1)).logits[:, -1, :7]
        assert torch.allclose(answer_logits(model, a, b), hf, atol=1e-5)
    std = build_model(cfg, seed=0).transformer.wte.weight.std().item()
    assert std == pytest.approx(16**-0.5, rel=0.25)  # the paper's init, not GPT-2's 0.02


def test_restricted_and_excluded_loss_follow_the_papers_definitions() -> None:
    """Against a direct re-implementation of the paper code's per-frequency projections."""
    from alignlab.interp.fourier import excluded_loss, fourier_basis, restricted_loss

    p, freqs = 7, [2, 3]
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(p * p, p, generator=g, dtype=torch.float64)
    labels = (torch.arange(p).repeat_interleave(p) + torch.arange(p).repeat(p)) % p
    train = torch.rand(p * p, generator=g) < 0.3
    fb = fourier_basis(p)

    def term(x: int, y: int) -> torch.Tensor:
        return torch.outer(fb[x], fb[y]).flatten()

    parts = torch.zeros_like(logits)
    for k in freqs:  # cos(w(a+b)) and sin(w(a+b)) components, as get_component_cos/sin_xpy
        for v in ((term(2 * k - 1, 2 * k - 1) - term(2 * k, 2 * k)) / 2**0.5,
                  (term(2 * k, 2 * k - 1) + term(2 * k - 1, 2 * k)) / 2**0.5):  # fmt: skip
            parts += v[:, None] * (v[None, :] @ logits)
    ce = torch.nn.functional.cross_entropy
    restricted = parts + (logits - parts).mean(0, keepdim=True)  # the paper code's bias correction
    everything = torch.ones(p * p, dtype=torch.bool)
    assert restricted_loss(logits, labels, everything, freqs) == pytest.approx(float(ce(restricted, labels)))
    expected = float(ce((logits - parts)[train], labels[train]))
    assert excluded_loss(logits, labels, train, freqs) == pytest.approx(expected)


def test_one_layer_control_forms_no_induction_head() -> None:
    from alignlab.core import NotObserved

    out = _run_twice("dynamics.induction_heads", n_layers=1, steps=60, d_model=16, eval_every=20,
                     n_checkpoints=3, score_batch=4)  # fmt: skip
    assert out["final_induction_score"] < 0.5 and isinstance(out["phase_change_gap"], NotObserved)
