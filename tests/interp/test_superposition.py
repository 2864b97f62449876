"""Toy models of superposition: the measures' math, exact gradients, batched = alone, bad inputs."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from alignlab.interp import superposition as sp

DOCS = Path(__file__).resolve().parents[2] / "docs" / "superposition.md"
FAST = settings(max_examples=30, deadline=None)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models train faster on one thread, and are then not slowed by a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def orthogonal(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(
        torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    )
    return q


def polygon(k: int, radius: float = 1.0, phase: float = 0.0) -> torch.Tensor:
    t = phase + 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return radius * torch.stack([torch.cos(t), torch.sin(t)])  # (2, k)


# --- the measures ----------------------------------------------------------------------------


@FAST
@given(n=st.integers(1, 12), seed=st.integers(0, 2**31 - 1))
def test_orthonormal_square_W_has_one_feature_per_dimension(n, seed):
    q = orthogonal(n, seed)
    assert float(sp.features_per_dimension(q)) == pytest.approx(1.0, abs=1e-12)
    assert float(sp.dimensions_per_feature(q)) == pytest.approx(1.0, abs=1e-12)
    assert bool(sp.represented(q).all())


@FAST
@given(
    m=st.integers(1, 8),
    extra=st.integers(0, 4),
    seed=st.integers(0, 2**31 - 1),
    scales=st.lists(st.floats(0.1, 5.0), min_size=8, max_size=8),
)
def test_orthogonal_features_have_dimensionality_one(m, extra, seed, scales):
    k = min(m, len(scales))
    cols = orthogonal(m, seed)[:, :k] * torch.tensor(scales[:k], dtype=torch.float64)  # (m, k)
    W = torch.cat([cols, torch.zeros(m, extra, dtype=torch.float64)], dim=1)  # unlearned features too
    dims = sp.feature_dimensionality(W)
    assert torch.allclose(dims[:k], torch.ones(k, dtype=torch.float64), atol=1e-9)
    assert torch.all(dims[k:] == 0)
    assert torch.allclose(sp.interference(W), torch.zeros(k + extra, dtype=torch.float64), atol=1e-9)


@FAST
@given(k=st.integers(3, 16), radius=st.floats(0.2, 3.0), phase=st.floats(0, 2 * math.pi))
def test_regular_polygon_dimensionality_is_two_over_k(k, radius, phase):
    W = polygon(k, radius, phase)
    assert torch.allclose(
        sp.feature_dimensionality(W), torch.full((k,), 2 / k, dtype=torch.float64), atol=1e-9
    )
    assert torch.allclose(sp.interference(W), torch.full((k,), (k / 2 - 1) * radius**2, dtype=torch.float64))
    gaps = sp.polygon_gaps(W, threshold=radius / 2)
    assert gaps.shape == (k,) and np.allclose(gaps, 360 / k, atol=1e-6)
    assert float(sp.features_per_dimension(W)) == pytest.approx(k * radius**2 / 2)


def test_antipodal_pair_and_named_structures():
    assert torch.allclose(
        sp.feature_dimensionality(torch.tensor([[1.0, -1.0]])), torch.tensor([0.5, 0.5]).double()
    )
    simplex = torch.eye(4, dtype=torch.float64) - 0.25  # W ⟂ (1,1,1,1): a tetrahedron in 3-D
    _, s, vt = torch.linalg.svd(simplex)
    tetra = (torch.diag(s[:3]) @ vt[:3]) / s[0].sqrt()  # (3, 4): the same Gram up to scale
    assert torch.allclose(sp.feature_dimensionality(tetra), torch.full((4,), 0.75, dtype=torch.float64))
    assert torch.allclose(sp.feature_dimensionality(polygon(3)), torch.full((3,), 2 / 3, dtype=torch.float64))
    for frac in (1.0, 0.75, 2 / 3, 0.5, 0.4, 0.375):
        assert min(abs(frac - f) for f in sp.STICKY_DIMENSIONALITIES) < 1e-12


@FAST
@given(m=st.integers(1, 5), n=st.integers(1, 9), seed=st.integers(0, 2**31 - 1))
def test_measures_are_rotation_invariant_and_bounded(m, n, seed):
    W = torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    R = orthogonal(m, seed + 1)
    for f in (sp.feature_dimensionality, sp.interference, sp.feature_norms):
        assert torch.allclose(f(R @ W), f(W), atol=1e-9)
    dims = sp.feature_dimensionality(W)
    assert torch.all((dims >= 0) & (dims <= 1 + 1e-12))
    assert float(dims.sum()) <= m + 1e-9  # at most m dimensions to share
    batch = torch.stack([W, 2 * W])  # (2, m, n): leading dims are batch dims
    assert sp.feature_dimensionality(batch).shape == (2, n)
    assert torch.allclose(sp.features_per_dimension(batch)[1], 4 * sp.features_per_dimension(W))


def test_classify_feature_and_angles():
    W = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, -1.0]], [[0.1, 1.0]]])  # (4, 1, 2)
    phases = sp.classify_feature(W, feature=1).tolist()
    assert phases == [sp.NOT_REPRESENTED, sp.DEDICATED, sp.SUPERPOSITION, sp.DEDICATED]
    assert sp.classify_feature(torch.eye(2), feature=0).item() == sp.DEDICATED
    assert sp.column_angles(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])).tolist() == [0.0, 90.0, 225.0]
    assert sp.polygon_gaps(torch.zeros(2, 3)).size == 0
    with pytest.raises(ValueError, match="out of range"):
        sp.classify_feature(W, feature=2)
    with pytest.raises(ValueError, match="m = 2"):
        sp.column_angles(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="one model"):
        sp.polygon_gaps(torch.zeros(2, 2, 3))


@pytest.mark.parametrize(
    ("W", "match"),
    [
        (torch.tensor([1.0, 2.0]), r"\(\.\.\., m, n\)"),
        (torch.tensor([[1.0, float("nan")]]), "NaN"),
        (torch.tensor([[1.0, float("inf")]]), "NaN or infinite"),
        (torch.tensor([[1 + 1j]]), "real-valued"),
    ],
)
def test_measures_reject_bad_weights(W, match):
    with pytest.raises(ValueError, match=match):
        sp.feature_dimensionality(W)


# --- the model and its training --------------------------------------------------------------


@FAST
@given(
    n=st.integers(1, 6),
    m=st.integers(1, 4),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
    density=st.floats(0.05, 1.0),
    activation=st.sampled_from(sp.ACTIVATIONS),
)
def test_hand_written_gradients_match_autograd(n, m, k, seed, density, activation):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(k, m, n, generator=g, requires_grad=True)
    b = (0.3 * torch.randn(k, n, generator=g)).requires_grad_()
    x = sp.sample_features(
        np.full((k, n), density), 32, [torch.Generator().manual_seed(seed + i) for i in range(k)]
    )
    importance = torch.rand(k, n, generator=g)
    loss = sp.toy_loss(W, b, x, importance, activation)
    loss.sum().backward()
    with torch.no_grad():
        mine, grad_W, grad_b = sp._loss_and_grads(
            W.detach(), b.detach(), x.transpose(1, 2).contiguous(), importance, True, activation
        )
    assert torch.allclose(mine, loss.detach(), rtol=1e-5, atol=1e-6)
    assert torch.allclose(grad_W, W.grad, rtol=1e-4, atol=1e-6)
    assert torch.allclose(grad_b, b.grad, rtol=1e-4, atol=1e-6)


def test_sample_features_statistics():
    gens = [torch.Generator().manual_seed(i) for i in range(3)]
    p = np.array([[1.0, 0.5, 0.05], [0.2, 0.2, 0.2], [1.0, 1.0, 1.0]])
    x = sp.sample_features(p, 40_000, gens)  # (3, B, 3)
    assert x.shape == (3, 40_000, 3) and float(x.min()) >= 0 and float(x.max()) <= 1
    on = (x > 0).double().mean(1).numpy()
    assert np.allclose(on, p, atol=0.01)
    nonzero = x[x > 0]
    assert float(nonzero.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(nonzero.var()) == pytest.approx(1 / 12, abs=0.005)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        sp.sample_features(np.array([[0.0, 0.5]]), 8, gens[:1])
    with pytest.raises(ValueError, match="one generator per instance"):
        sp.sample_features(np.array([[0.5, 0.5]]), 8, gens)


TINY = sp.ToyConfig(
    n_features=5,
    n_hidden=2,
    importance=0.9,
    feature_probability=(1.0, 0.3, 0.05, (0.5, 0.4, 0.3, 0.2, 0.1)),
    steps=60,
)


def test_batched_training_equals_each_instance_alone():
    together = sp.train_toy_models(TINY, torch.Generator().manual_seed(0))
    assert together.W.shape == (4, 2, 5) and together.b.shape == (4, 5)
    assert (
        together.losses.shape == (len(together.loss_steps), 4) and together.loss_steps[-1] == TINY.steps - 1
    )
    for idx in ([1], [3, 0]):
        alone = sp.train_toy_models(TINY.select(idx), seeds=[together.seeds[i] for i in idx])
        assert np.allclose(alone.losses, together.losses[:, idx], rtol=0, atol=1e-5)
        assert torch.allclose(alone.W, together.W[idx], atol=1e-5)
        sub = together.select(idx)
        assert sub.config == TINY.select(idx) and sub.seeds == alone.seeds
        assert np.allclose(sp.evaluate_loss(sub, 4096), sp.evaluate_loss(alone, 4096), atol=1e-6)


def test_training_is_deterministic_and_learns():
    cfg = sp.ToyConfig(n_features=5, n_hidden=2, feature_probability=(1.0, 0.1), steps=400, log_every=50)
    a = sp.train_toy_models(cfg, torch.Generator().manual_seed(7))
    b = sp.train_toy_models(cfg, torch.Generator().manual_seed(7))
    c = sp.train_toy_models(cfg, torch.Generator().manual_seed(8))
    assert torch.equal(a.W, b.W) and np.array_equal(a.losses, b.losses) and a.seeds == b.seeds
    assert not torch.equal(a.W, c.W)
    assert list(a.loss_steps) == [0, 50, 100, 150, 200, 250, 300, 350, 399]
    assert np.all(a.losses[-1] < 0.8 * a.losses[0])
    seen = []
    sp.train_toy_models(
        cfg, torch.Generator().manual_seed(7), progress=lambda it: (seen.append(s) or s for s in it)
    )
    assert seen == list(range(cfg.steps))


def test_linear_model_stores_the_most_important_features_and_never_superposes():
    # The paper's baseline: without the ReLU the best rank-m map keeps the m most important
    # features (‖W‖²_F/m = 1) however sparse they are; with it, sparse features are superposed.
    dens = (1.0, 0.03)
    relu = sp.ToyConfig(n_features=6, n_hidden=2, feature_probability=dens, importance=0.8, steps=1500)
    linear = sp.ToyConfig(**{**vars(relu), "activation": "linear"})
    fpd = {
        c.activation: sp.features_per_dimension(sp.train_toy_models(c, torch.Generator().manual_seed(0)).W)
        for c in (relu, linear)
    }
    assert torch.allclose(fpd["linear"], torch.ones(2, dtype=torch.float64), atol=0.1)
    assert float(fpd["relu"][1]) > 1.5 and float(fpd["relu"][0]) < 1.2
    W = torch.tensor([[[0.6, -0.8]]])
    x = torch.rand(1, 4, 2)
    models = sp.ToyModels(sp.ToyConfig(n_features=2, n_hidden=1, activation="linear"), W, torch.zeros(1, 2),
                          np.zeros(0), np.zeros((0, 1)))  # fmt: skip
    assert torch.allclose(models.forward(x), x @ W.transpose(1, 2) @ W)  # no ReLU: negative outputs too


def test_evaluate_loss_common_inputs_and_forward():
    cfg = sp.ToyConfig(n_features=3, n_hidden=2, feature_probability=(0.3, 0.3), steps=0)
    models = sp.train_toy_models(cfg, seeds=[1, 1])  # two identical models
    own = sp.evaluate_loss(models, 2048)
    assert own[0] == own[1]  # same seed: same evaluation stream
    shared = sp.evaluate_loss(models, 2048, seed=5)
    assert shared[0] == shared[1] and shared[0] != own[0]
    x = torch.rand(2, 4, 3)
    assert torch.allclose(
        models.forward(x), torch.relu(x @ models.W.transpose(1, 2) @ models.W + models.b[:, None])
    )
    with pytest.raises(ValueError, match="seed"):
        sp.evaluate_loss(sp.ToyModels(cfg, models.W, models.b, models.loss_steps, models.losses), 16)


def test_expected_loss_matches_sampling_and_theory():
    W = torch.tensor([[0.9, -1.1, 0.3], [0.2, 0.4, -0.8]])
    b = torch.tensor([-0.1, 0.05, -0.2])
    p, imp = (0.3, 0.5, 0.8), (1.0, 0.5, 2.0)
    exact = float(sp.expected_loss(W, b, p, imp))
    x = sp.sample_features(np.array([p]), 400_000, [torch.Generator().manual_seed(0)])
    sampled = float(sp.toy_loss(W[None], b[None], x, torch.tensor([imp])))
    assert exact == pytest.approx(sampled, rel=0.01)
    assert sp.theoretical_phase(0.1, 1.0)[0] == sp.NOT_REPRESENTED  # drop the less important one
    assert sp.theoretical_phase(10.0, 1.0)[0] == sp.DEDICATED  # give the dimension to the extra one
    assert sp.theoretical_phase(1.5, 0.01)[0] == sp.SUPERPOSITION  # sparse: store both, antipodally
    with pytest.raises(ValueError, match="n = 4 > 3"):
        sp.expected_loss(torch.zeros(1, 4), torch.zeros(4), 0.5, 1.0)
    with pytest.raises(ValueError, match="density"):
        sp.theoretical_phase(1.0, 0.0)


# --- configuration and errors ----------------------------------------------------------------


def test_config_normalises_and_selects():
    cfg = sp.ToyConfig(n_features=3, feature_probability=[1, (0.5, 0.25, 1.0)], importance=0.5)
    assert cfg.feature_probability == (1.0, (0.5, 0.25, 1.0)) and cfg.n_instances == 2
    assert np.allclose(cfg.importances(), [[1, 0.5, 0.25], [1, 0.5, 0.25]])
    assert np.allclose(cfg.probabilities(), [[1, 1, 1], [0.5, 0.25, 1.0]])
    per = sp.ToyConfig(n_features=2, n_hidden=1, feature_probability=(0.1, 0.2), importance=((1, 2), (1, 3)))
    assert per.select(1).importance == ((1.0, 3.0),) and per.select([1, 0]).feature_probability == (0.2, 0.1)
    shared = sp.ToyConfig(n_features=2, n_hidden=1, importance=(1, 4))
    assert np.allclose(shared.importances(), [[1, 4]]) and shared.select(0).importance == (1.0, 4.0)
    with pytest.raises(IndexError):
        cfg.select(2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_features": 0}, "n_features must be an integer >= 1"),
        ({"n_hidden": 2.5}, "n_hidden must be an integer"),
        ({"feature_probability": ()}, "empty"),
        ({"feature_probability": (0.0,)}, r"in \(0, 1\]"),
        ({"feature_probability": (1.5,)}, r"in \(0, 1\]"),
        ({"feature_probability": (float("nan"),)}, "finite"),
        ({"feature_probability": ((0.5, 0.5),)}, "one per feature"),
        ({"feature_probability": "0.5"}, "sequence"),
        ({"importance": -0.9}, "decay rate must be > 0"),
        ({"importance": (1.0, 2.0)}, "n_features is 5"),
        ({"importance": (1.0, -1.0, 1.0, 1.0, 1.0)}, ">= 0"),
        ({"importance": ((1.0,) * 5, (1.0,) * 5)}, "one per instance"),
        ({"steps": -1}, "steps must be an integer >= 0"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"weight_decay": float("nan")}, "finite"),
        ({"batch_size": True}, "batch_size"),
        ({"activation": "tanh"}, "activation must be one of"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sp.ToyConfig(**kwargs)


def test_train_rejects_bad_arguments():
    cfg = sp.ToyConfig(feature_probability=(0.5, 0.5), steps=1)
    with pytest.raises(ValueError, match="exactly one"):
        sp.train_toy_models(cfg)
    with pytest.raises(ValueError, match="exactly one"):
        sp.train_toy_models(cfg, torch.Generator(), seeds=[1, 2])
    with pytest.raises(ValueError, match="2 instances"):
        sp.train_toy_models(cfg, seeds=[1])
    with pytest.raises(ValueError, match=r"torch\.Generator"):
        sp.train_toy_models(cfg, np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ToyConfig"):
        sp.train_toy_models({"n_features": 5}, torch.Generator())  # type: ignore[arg-type]
    with pytest.raises(FloatingPointError, match=r"lower ToyConfig\.lr"):
        sp.train_toy_models(sp.ToyConfig(steps=5, lr=1e30), seeds=[0])


# --- pictures and docs -----------------------------------------------------------------------


def test_plots_return_figures():
    W = torch.stack([polygon(5), torch.cat([torch.eye(2), torch.zeros(2, 3)], 1).double()])  # (2, 2, 5)
    fig = sp.plot_columns_2d(W, ["pentagon", "basis"], importance=0.9 ** np.arange(5))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert len(sp.plot_wtw(W, b=torch.zeros(2, 5)).axes) == 5  # 2 heatmaps, 2 bar charts, a colorbar
    assert len(sp.plot_features_per_dimension([1.0, 0.1], W).axes) == 2
    grid = np.array([[0, 1], [2, 2]])
    assert len(sp.plot_phase_diagram([0.5, 2.0], [1.0, 0.1], grid, theory=grid).axes) == 2
    with pytest.raises(ValueError, match="m = 2"):
        sp.plot_columns_2d(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="titles"):
        sp.plot_columns_2d(W, ["one"])
    with pytest.raises(ValueError, match="phase grids"):
        sp.plot_phase_diagram([0.5, 2.0], [1.0], grid)


def test_docs_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert blocks, "docs/superposition.md has no python example"
    namespace: dict = {"__name__": "docs_superposition"}
    for block in blocks:  # the blocks of the page continue one another
        exec(compile(block, str(DOCS), "exec"), namespace)
