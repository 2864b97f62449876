"""Toy models of superposition, many trained at once, and the measures of what they learned.

Elhage et al. (2022), "Toy Models of Superposition" (Transformer Circuits Thread): §"Demonstrating
superposition" (the setup), §"Superposition as a phase change" and §"The geometry of
superposition" (the measures). Written here: the model and its measures are the research object.

Feature i of an input x is 0 with probability 1 − p_i (its sparsity S_i = 1 − p_i, its *density*
p_i) and otherwise uniform on [0, 1], independently. The model

    h = W x,    x' = ReLU(Wᵀ h + b),    W: (m, n), b: (n,)

embeds n features into m < n hidden dimensions (column W_i is feature i's direction) and reads
them back with the transpose; it is trained on the importance-weighted squared error
L = E_x Σ_i I_i (x_i − x'_i)² (batch mean) with AdamW, as in the paper's notebook (lr 1e-3,
batch 1024, 10,000 steps, torch's default weight decay 0.01).

**Batched over a sweep.** One call to :func:`train_toy_models` trains ``n_instances``
independent models as one W of shape (instances, m, n) with one set of batched kernels; each
instance has its own feature probabilities, importances and random stream (a `torch.Generator`
seeded per instance, for its initial W and all its data). The loss is a sum over instances and
AdamW acts elementwise, so instance k's training is exactly what it would be alone: it does not
depend on what it was trained beside (see ``tests/interp/test_superposition.py``).

    >>> import torch
    >>> from alignlab.interp import superposition as sp
    >>> cfg = sp.ToyConfig(n_features=5, n_hidden=2, importance=0.9,
    ...                    feature_probability=(1.0, 0.1, 0.01), steps=2_000)
    >>> models = sp.train_toy_models(cfg, torch.Generator().manual_seed(0))
    >>> sp.represented(models.W).sum(-1)          # (3,) features represented per instance
    >>> fig = sp.plot_columns_2d(models.W, importance=cfg.importances())
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPRESENTED = 0.5
"""A feature counts as represented when ‖W_i‖ exceeds this (Elhage et al. read ‖W_i‖ ≈ 1 vs ≈ 0)."""

NOT_REPRESENTED, DEDICATED, SUPERPOSITION = 0, 1, 2
PHASES = ("not represented", "dedicated dimension", "superposition")
"""Names of the phases :func:`classify_feature` returns, by code."""

STICKY_DIMENSIONALITIES = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)
"""Per-feature dimensionalities the paper finds features cluster at: dedicated, tetrahedron, triangle,
antipodal pair, pentagon, square antiprism."""

ACTIVATIONS = ("relu", "linear")
"""Output nonlinearities of the toy model: the paper's ReLU model and its linear baseline."""

_EVAL_SALT = 0x5EED_E7A1
ProgressFn = Callable[[Iterable[int]], Iterable[int]]


# --- configuration ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _positive_int(label: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{label} must be an integer >= {minimum}, got {value!r}")


def _finite(name: str, value: Any) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError(f"ToyConfig.{name} must be a finite number, got {value!r}")
    return float(value)


def _per_instance_rows(name: str, spec: Any, n: int) -> tuple[float | tuple[float, ...], ...]:
    """Normalise a per-instance spec: each entry a number or a tuple of `n` numbers."""
    if isinstance(spec, str | bytes) or not isinstance(spec, Sequence | np.ndarray):
        raise ValueError(f"ToyConfig.{name} must be a sequence (one entry per instance), got {spec!r}")
    rows: list[float | tuple[float, ...]] = []
    for k, entry in enumerate(spec):
        if _is_number(entry):
            rows.append(_finite(f"{name}[{k}]", entry))
        elif isinstance(entry, Sequence | np.ndarray) and not isinstance(entry, str | bytes):
            if len(entry) != n:
                raise ValueError(
                    f"ToyConfig.{name}[{k}] has {len(entry)} values; give one per feature (n_features={n}) "
                    "or a single number for all features"
                )
            rows.append(tuple(_finite(f"{name}[{k}]", v) for v in entry))
        else:
            raise ValueError(
                f"ToyConfig.{name}[{k}] must be a number or a tuple of {n} numbers, got {entry!r}"
            )
    if not rows:
        raise ValueError(f"ToyConfig.{name} is empty: give one entry per instance to train")
    return tuple(rows)


@dataclass(frozen=True)
class ToyConfig:
    """A sweep of toy models x' = ReLU(WᵀWx + b), one per entry of `feature_probability`."""

    n_features: int = 5
    """n: features per input (the paper's intro: 5)."""
    n_hidden: int = 2
    """m: hidden dimensions (the paper's intro: 2)."""
    feature_probability: tuple[float | tuple[float, ...], ...] = (1.0,)
    """Per instance, the density 1 − S of every feature, or a tuple with one density per feature;
    each in (0, 1]. Its length is the number of instances."""
    importance: float | tuple[float, ...] | tuple[tuple[float, ...], ...] = 1.0
    """A decay rate r (I_i = r^i, i = 0..n−1; 1.0 = uniform), or n importances shared by every
    instance, or one tuple of n importances per instance. Each >= 0."""
    steps: int = 10_000
    """AdamW steps (the paper's notebook: 10,000)."""
    batch_size: int = 1024
    """Inputs per step (the paper's notebook: 1024)."""
    lr: float = 1e-3
    """AdamW learning rate (the paper's notebook: 1e-3)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay (torch's default, which the paper's notebook keeps)."""
    log_every: int = 10
    """Record the training loss every this many steps (and at the last step)."""
    activation: str = "relu"
    """The output nonlinearity: ``"relu"`` (the paper's model) or ``"linear"`` (x' = WᵀWx + b, the
    paper's baseline, which stores only the m most important features and never superposes)."""

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"ToyConfig.activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        _positive_int("ToyConfig.n_features", self.n_features)
        _positive_int("ToyConfig.n_hidden", self.n_hidden)
        _positive_int("ToyConfig.steps", self.steps, minimum=0)
        _positive_int("ToyConfig.batch_size", self.batch_size)
        _positive_int("ToyConfig.log_every", self.log_every)
        if _finite("lr", self.lr) <= 0:
            raise ValueError(f"ToyConfig.lr must be > 0, got {self.lr!r}")
        if _finite("weight_decay", self.weight_decay) < 0:
            raise ValueError(f"ToyConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        n = int(self.n_features)
        probs = _per_instance_rows("feature_probability", self.feature_probability, n)
        flat = np.array([v for row in probs for v in (row if isinstance(row, tuple) else (row,))])
        if not np.all((flat > 0) & (flat <= 1)):
            bad = flat[~((flat > 0) & (flat <= 1))][0]
            raise ValueError(
                f"ToyConfig.feature_probability values must be in (0, 1] (a density 1 − S), got {bad!r}"
            )
        object.__setattr__(self, "feature_probability", probs)
        imp = self.importance
        if _is_number(imp):
            rate = _finite("importance", imp)
            if rate <= 0:
                raise ValueError(f"ToyConfig.importance as a decay rate must be > 0, got {imp!r}")
            object.__setattr__(self, "importance", rate)
        else:
            if isinstance(imp, str | bytes) or not isinstance(imp, Sequence | np.ndarray) or len(imp) == 0:
                raise ValueError(
                    "ToyConfig.importance must be a decay rate, n importances, or one tuple of n "
                    f"importances per instance; got {imp!r}"
                )
            if all(_is_number(v) for v in imp):
                if len(imp) != n:
                    raise ValueError(
                        f"ToyConfig.importance has {len(imp)} values but n_features is {n}; give one "
                        "per feature"
                    )
                rows: Any = tuple(_finite(f"importance[{i}]", v) for i, v in enumerate(imp))
                values = np.array(rows)
            else:
                rows = _per_instance_rows("importance", imp, n)
                if len(rows) != len(probs) or not all(isinstance(r, tuple) for r in rows):
                    raise ValueError(
                        f"ToyConfig.importance per instance needs {len(probs)} tuples of {n} values "
                        f"(one per instance), got {len(rows)} entries"
                    )
                values = np.array(rows)
            if np.any(values < 0):
                raise ValueError(f"ToyConfig.importance values must be >= 0, got {values.min()!r}")
            object.__setattr__(self, "importance", rows)

    @property
    def n_instances(self) -> int:
        """Number of models trained together."""
        return len(self.feature_probability)

    def probabilities(self) -> np.ndarray:
        """(instances, n) feature densities p = 1 − S."""
        n = self.n_features
        return np.array(
            [np.broadcast_to(np.asarray(r, dtype=np.float64), (n,)) for r in self.feature_probability]
        )

    def importances(self) -> np.ndarray:
        """(instances, n) feature importances I."""
        n, k = self.n_features, self.n_instances
        imp = self.importance
        if isinstance(imp, float):
            return np.broadcast_to(imp ** np.arange(n, dtype=np.float64), (k, n)).copy()
        values = np.asarray(imp, dtype=np.float64)
        return np.broadcast_to(values, (k, n)).copy() if values.ndim == 1 else values

    def select(self, index: int | Sequence[int]) -> ToyConfig:
        """The same config restricted to the instances in `index` (in that order)."""
        idx = [index] if isinstance(index, int | np.integer) else list(index)
        for i in idx:
            if not -self.n_instances <= int(i) < self.n_instances:
                raise IndexError(f"instance {i} out of range for {self.n_instances} instances")
        imp = self.importance
        if not isinstance(imp, float) and not _is_number(imp[0]):
            imp = tuple(imp[int(i)] for i in idx)
        return replace(
            self, feature_probability=tuple(self.feature_probability[int(i)] for i in idx), importance=imp
        )


# --- the model -------------------------------------------------------------------------------


def toy_forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, activation: str = "relu") -> torch.Tensor:
    """x' = ReLU(WᵀWx + b) (or without the ReLU when `activation` is "linear") for W (I, m, n),
    b (I, n), x (I, B, n) -> (I, B, n). Differentiable."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    h = torch.bmm(x, W.transpose(1, 2))  # (I, B, m)
    y = torch.bmm(h, W) + b.unsqueeze(1)  # (I, B, n)
    return torch.relu(y) if activation == "relu" else y


def toy_loss(
    W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, importance: torch.Tensor, activation: str = "relu"
) -> torch.Tensor:
    """(I,) per-instance loss: batch mean of Σ_i I_i (x_i − x'_i)², importance (I, n). Differentiable."""
    err = (x - toy_forward(W, b, x, activation)).square().sum(1)  # (I, n)
    return (err * importance).sum(1) / x.shape[1]


# Inside, a batch is laid out features-first, xt (I, n, B): the per-feature constants (bias,
# densities) then broadcast along the contiguous batch axis, which is several times faster than
# (I, B, n) when n is small.


_CHUNK_ELEMENTS = 1 << 17
"""On a CPU, instances are processed in chunks of about this many batch elements (n·B per
instance), so that a chunk's buffers stay in a core's L2 cache (about 1.4x faster than one pass
over the 100-model benchmark sweep). On other devices, one chunk."""


@dataclass
class _Workspace:
    """Preallocated buffers for one chunk of up to `size` instances, batch laid out (c, n, B)."""

    xt: torch.Tensor  # (size, n, B) inputs
    h: torch.Tensor  # (size, m, B) hidden
    y: torch.Tensor  # (size, n, B) pre-activation
    r: torch.Tensor  # (size, n, B) residual
    gh: torch.Tensor  # (size, m, B) gradient wrt h

    @classmethod
    def empty(cls, size: int, n: int, m: int, batch: int, device: torch.device) -> _Workspace:
        def new(rows: int) -> torch.Tensor:
            return torch.empty(size, rows, batch, device=device)

        return cls(xt=new(n), h=new(m), y=new(n), r=new(n), gh=new(m))


def _chunks(k: int, n: int, batch: int, device: torch.device) -> list[slice]:
    per = max(1, _CHUNK_ELEMENTS // (n * batch)) if device.type == "cpu" else k
    return [slice(i, min(i + per, k)) for i in range(0, k, per)]


def _chunk_grads(
    W: torch.Tensor,
    b: torch.Tensor,
    xt: torch.Tensor,
    importance: torch.Tensor,
    ws: _Workspace,
    grad_W: torch.Tensor,
    grad_b: torch.Tensor,
    loss: torch.Tensor | None,
    relu: bool = True,
) -> None:
    """Fill grad_W (c, m, n), grad_b (c, n) and, if given, loss (c,) with `toy_loss` and its
    gradients for the batch xt (c, n, B), written out by hand: the same numbers as autograd, with
    fewer passes over the batch, no graph, and no allocation of batch-sized tensors."""
    c, _, B = xt.shape
    imp = importance.unsqueeze(1)  # (c, 1, n)
    h = torch.bmm(W, xt, out=ws.h[:c])  # (c, m, B)
    y = torch.bmm(W.transpose(1, 2), h, out=ws.y[:c]).add_(b.unsqueeze(2))  # (c, n, B) pre-activation
    # r = x' − x, (c, n, B)
    r = torch.clamp_min(y, 0.0, out=ws.r[:c]).sub_(xt) if relu else torch.sub(y, xt, out=ws.r[:c])
    if loss is not None:
        torch.sum(torch.linalg.vector_norm(r, dim=2).square_().mul_(importance), dim=1, out=loss).div_(B)
    if relu:
        r.mul_(y.sign_().clamp_min_(0.0))  # (x' − x)·[y > 0]; dL/dy = 2/B · I ⊙ this
    scale = 2.0 / B
    torch.bmm(h, r.transpose(1, 2), out=grad_W).mul_(imp)  # (c, m, n): through Wᵀh
    grad_h = torch.bmm(W * imp, r, out=ws.gh[:c])  # (c, m, B)
    grad_W.baddbmm_(grad_h, xt.transpose(1, 2)).mul_(scale)  # + through h = Wx
    torch.sum(r, dim=2, out=grad_b).mul_(importance).mul_(scale)  # (c, n)


def _loss_and_grads(
    W: torch.Tensor,
    b: torch.Tensor,
    xt: torch.Tensor,
    importance: torch.Tensor,
    want_loss: bool,
    activation: str = "relu",
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """`toy_loss` (when `want_loss`) and its gradients for a batch xt (I, n, B), in one chunk."""
    k, n, B = xt.shape
    ws = _Workspace.empty(k, n, W.shape[1], B, xt.device)
    grad_W, grad_b = torch.empty_like(W), torch.empty_like(b)
    loss = torch.empty(k, device=xt.device) if want_loss else None
    _chunk_grads(W, b, xt, importance, ws, grad_W, grad_b, loss, activation == "relu")
    return loss, grad_W, grad_b


def _instance_generators(seeds: Sequence[int], device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def _fill_batch(xt: torch.Tensor, neg_inv_p: torch.Tensor, gens: Sequence[torch.Generator]) -> torch.Tensor:
    """Overwrite xt (I, n, B) with a fresh batch: x = max(0, 1 − u/p), u ~ U[0, 1) from instance
    k's own generator; so x is 0 with probability 1 − p and otherwise uniform on (0, 1].
    `neg_inv_p` is −1/p, (I, n, 1)."""
    for k, gen in enumerate(gens):
        xt[k].uniform_(generator=gen)
    return xt.mul_(neg_inv_p).add_(1.0).clamp_min_(0.0)


def _constants(cfg: ToyConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(I, n) importances and (I, n, 1) −1/p, as float32 on `device`."""
    importance = torch.as_tensor(cfg.importances(), dtype=torch.float32, device=device)
    neg_inv_p = torch.as_tensor(-1.0 / cfg.probabilities(), dtype=torch.float32, device=device).unsqueeze(2)
    return importance, neg_inv_p


def sample_features(
    probability: torch.Tensor | np.ndarray, batch_size: int, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """(I, batch_size, n) synthetic features: x_i = 0 with probability 1 − p_i, else U(0, 1].

    `probability` is (I, n); instance k's rows come from ``generators[k]`` alone, drawn as in
    training (so a generator seeded like ``models.seeds[k]``, after the initial W, replays its
    training data).
    """
    p = torch.as_tensor(probability, dtype=torch.float32)
    if p.ndim != 2 or p.shape[0] != len(generators) or p.shape[0] == 0:
        raise ValueError(
            f"probability must be (instances, n) with one generator per instance; got shape "
            f"{tuple(p.shape)} and {len(generators)} generators"
        )
    if not bool(((p > 0) & (p <= 1)).all()):
        raise ValueError("feature probabilities must be in (0, 1] (NaN is not)")
    _positive_int("sample_features: batch_size", batch_size)
    device = generators[0].device
    xt = torch.empty(p.shape[0], p.shape[1], batch_size, device=device)
    return _fill_batch(xt, -(1.0 / p.to(device)).unsqueeze(2), generators).transpose(1, 2)


@dataclass(frozen=True)
class ToyModels:
    """Trained toy models: W (I, m, n), b (I, n), the training-loss curve, and per-instance seeds."""

    config: ToyConfig
    W: torch.Tensor
    """(instances, m, n) embedding; column W[k, :, i] is feature i's direction in instance k."""
    b: torch.Tensor
    """(instances, n) output bias."""
    loss_steps: np.ndarray
    """(T,) the steps at which the training loss was recorded (before that step's update)."""
    losses: np.ndarray
    """(T, instances) training loss on that step's batch."""
    seeds: tuple[int, ...] = field(default=())
    """Per-instance seeds of the generators that drew each instance's initial W and data."""

    @property
    def n_instances(self) -> int:
        """Number of models."""
        return int(self.W.shape[0])

    def select(self, index: int | Sequence[int]) -> ToyModels:
        """The models in `index` (in that order), with their configs, losses and seeds."""
        idx = [int(index)] if isinstance(index, int | np.integer) else [int(i) for i in index]
        return ToyModels(
            config=self.config.select(idx),
            W=self.W[idx],
            b=self.b[idx],
            loss_steps=self.loss_steps,
            losses=self.losses[:, idx],
            seeds=tuple(self.seeds[i] for i in idx) if self.seeds else (),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x' for inputs x (I, B, n)."""
        return toy_forward(self.W, self.b, x.to(self.W.device, self.W.dtype), self.config.activation)


def _check_generator_args(
    n_instances: int, generator: torch.Generator | None, seeds: Sequence[int] | None
) -> list[int]:
    if (generator is None) == (seeds is None):
        raise ValueError(
            "pass exactly one of `generator` (a torch.Generator) or `seeds` (one int per instance)"
        )
    if seeds is not None:
        out = [int(s) for s in seeds]
        if len(out) != n_instances:
            raise ValueError(f"seeds has {len(out)} entries but the config has {n_instances} instances")
        if any(s < 0 or s >= 2**63 for s in out):
            raise ValueError("seeds must be in [0, 2**63)")
        return out
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    draw = torch.randint(0, 2**62, (n_instances,), generator=generator, device=generator.device)
    return [int(s) for s in draw.tolist()]


def _fused(device: torch.device) -> dict[str, bool]:
    """AdamW's fused kernel where torch has one for the device: the same update, less overhead."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


def train_toy_models(
    cfg: ToyConfig,
    generator: torch.Generator | None = None,
    *,
    seeds: Sequence[int] | None = None,
    progress: ProgressFn | None = None,
) -> ToyModels:
    """Train ``cfg.n_instances`` toy models at once; each on its own data stream.

    Give a `generator` (per-instance seeds are drawn from it) or the per-instance `seeds`
    themselves (``models.seeds`` of an earlier run retrains exactly those instances). The models
    live on the generator's device. `progress` wraps the step iterator, e.g.
    ``lambda it: ctx.progress(it, description="toy models")``. W starts Xavier-normal per instance
    (std √(2/(m+n))), b at 0; gradients are exact (checked against autograd in the tests).
    """
    if not isinstance(cfg, ToyConfig):
        raise ValueError(f"cfg must be a ToyConfig, got {type(cfg).__name__}")
    seed_list = _check_generator_args(cfg.n_instances, generator, seeds)
    device = generator.device if generator is not None else torch.device("cpu")
    gens = _instance_generators(seed_list, device)
    k, m, n, B = cfg.n_instances, cfg.n_hidden, cfg.n_features, cfg.batch_size
    std = math.sqrt(2.0 / (m + n))
    W = torch.stack([torch.randn(m, n, generator=g, device=device) for g in gens]).mul_(std)  # (I, m, n)
    b = torch.zeros(k, n, device=device)  # (I, n)
    opt = torch.optim.AdamW([W, b], lr=cfg.lr, weight_decay=cfg.weight_decay, **_fused(device))
    importance, neg_inv_p = _constants(cfg, device)
    W.grad, b.grad = torch.zeros_like(W), torch.zeros_like(b)  # filled in place every step
    chunks = _chunks(k, n, B, device)
    ws = _Workspace.empty(chunks[0].stop, n, m, B, device)
    relu = cfg.activation == "relu"
    log_steps = sorted({*range(0, cfg.steps, cfg.log_every), cfg.steps - 1} - {-1})
    losses = torch.empty(len(log_steps), k, device=device)
    steps: Iterable[int] = range(cfg.steps)
    if progress is not None:
        steps = progress(steps)
    row = 0
    with torch.no_grad():
        for step in steps:
            want = row < len(log_steps) and step == log_steps[row]
            for s in chunks:
                xt = _fill_batch(ws.xt[: s.stop - s.start], neg_inv_p[s], gens[s])
                loss = losses[row, s] if want else None
                _chunk_grads(W[s], b[s], xt, importance[s], ws, W.grad[s], b.grad[s], loss, relu)
            row += want
            opt.step()
    if not bool(torch.isfinite(W).all() and torch.isfinite(b).all()):
        raise FloatingPointError("toy-model training diverged (non-finite weights); lower ToyConfig.lr")
    return ToyModels(
        config=cfg,
        W=W.detach(),
        b=b.detach(),
        loss_steps=np.asarray(log_steps, dtype=np.int64),
        losses=losses.cpu().double().numpy(),
        seeds=tuple(seed_list),
    )


def evaluate_loss(
    models: ToyModels, n_samples: int = 1 << 15, *, seed: int | None = None, batch_size: int = 1 << 12
) -> np.ndarray:
    """(instances,) each model's loss on `n_samples` fresh inputs from its own distribution.

    By default instance k's inputs come from a generator derived from ``models.seeds[k]`` (never
    its training stream), so its number does not depend on the other instances. With `seed`, every
    instance draws from a generator seeded with it: restarts of one setting then see the very same
    inputs (common random numbers), which makes "pick the lowest-loss restart" far less noisy.
    """
    _positive_int("evaluate_loss: n_samples", n_samples)
    _positive_int("evaluate_loss: batch_size", batch_size)
    if seed is not None:
        eval_seeds = [int(seed)] * models.n_instances
    elif len(models.seeds) == models.n_instances:
        eval_seeds = [_derive(s, _EVAL_SALT) for s in models.seeds]
    else:
        raise ValueError("evaluate_loss needs a `seed`, or ToyModels with one seed per instance")
    device = models.W.device
    gens = _instance_generators(eval_seeds, device)
    importance, neg_inv_p = _constants(models.config, device)
    W, b = models.W.float(), models.b.float()
    k, m, n = W.shape
    chunks = _chunks(k, n, batch_size, device)
    ws = _Workspace.empty(chunks[0].stop, n, m, batch_size, device)
    grad_W, grad_b, loss = torch.empty_like(W), torch.empty_like(b), torch.empty(k, device=device)
    relu = models.config.activation == "relu"
    total = torch.zeros(k, dtype=torch.float64, device=device)
    done = 0
    with torch.no_grad():
        while done < n_samples:
            size = min(batch_size, n_samples - done)
            if size != ws.xt.shape[2]:  # the last, smaller batch
                ws = _Workspace.empty(chunks[0].stop, n, m, size, device)
            for s in chunks:
                xt = _fill_batch(ws.xt[: s.stop - s.start], neg_inv_p[s], gens[s])
                _chunk_grads(W[s], b[s], xt, importance[s], ws, grad_W[s], grad_b[s], loss[s], relu)
            total += loss.double() * size
            done += size
    return (total / n_samples).cpu().numpy()


def _derive(seed: int, salt: int) -> int:
    """A new 63-bit seed from `seed` and `salt` (NumPy's SeedSequence hashing)."""
    return int(np.random.SeedSequence([int(seed), salt]).generate_state(1, np.uint64)[0] >> np.uint64(1))


# --- measures --------------------------------------------------------------------------------


def _weights(W: torch.Tensor | np.ndarray, name: str = "W") -> torch.Tensor:
    """W as a float64 tensor of shape (..., m, n), checked."""
    t = torch.as_tensor(W).detach()
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (..., m, n) (hidden x features), got {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    t = t.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def gram(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., n, n) WᵀW: entry (i, j) is W_i · W_j."""
    w = _weights(W)
    return w.transpose(-1, -2) @ w


def feature_norms(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., n) ‖W_i‖, how strongly each feature is represented."""
    return torch.linalg.vector_norm(_weights(W), dim=-2)


def represented(W: torch.Tensor | np.ndarray, threshold: float = REPRESENTED) -> torch.Tensor:
    """(..., n) bool: ‖W_i‖ > `threshold`."""
    return feature_norms(W) > threshold


def features_per_dimension(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(...,) ‖W‖²_F / m: about the number of features represented per hidden dimension."""
    w = _weights(W)
    return w.square().sum((-1, -2)) / w.shape[-2]


def dimensions_per_feature(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(...,) D* = m / ‖W‖²_F, the paper's "dimensions per feature" (inf when W = 0)."""
    return 1.0 / features_per_dimension(W)


def feature_dimensionality(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., n) D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² = G_ii² / Σ_j G_ij² with G = WᵀW; 0 where W_i = 0.

    1 for a feature with a dimension of its own, 1/2 in an antipodal pair, 2/k on a regular
    k-gon in a plane; the D_i of features packed efficiently sum to m.
    """
    g = gram(W)
    diag = torch.diagonal(g, dim1=-2, dim2=-1)  # (..., n)
    denom = g.square().sum(-1)  # (..., n)
    return torch.where(denom > 0, diag.square() / denom.clamp_min(1e-300), torch.zeros_like(diag))


def interference(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., n) Σ_{j≠i} (Ŵ_i·W_j)²: how strongly the other features project onto feature i's
    direction (0 if orthogonal to all, >= 1 if some group activates it as much as itself); 0 where
    W_i = 0."""
    g = gram(W)
    diag = torch.diagonal(g, dim1=-2, dim2=-1)  # (..., n)
    others = g.square().sum(-1) - diag.square()  # (..., n)
    return torch.where(diag > 0, others.clamp_min(0.0) / diag.clamp_min(1e-300), torch.zeros_like(diag))


def classify_feature(
    W: torch.Tensor | np.ndarray,
    feature: int = -1,
    threshold: float = REPRESENTED,
    max_interference: float = REPRESENTED**2,
) -> torch.Tensor:
    """(...,) the phase of one feature, as in the paper's phase diagrams: ``NOT_REPRESENTED``
    (‖W_f‖ <= threshold), ``DEDICATED`` (represented, and the other features' interference on it is
    below `max_interference`: none of them projects onto its direction by more than `threshold`),
    or ``SUPERPOSITION`` (represented and sharing its direction)."""
    w = _weights(W)
    n = w.shape[-1]
    if not -n <= feature < n:
        raise ValueError(f"feature {feature} out of range for {n} features")
    on = feature_norms(w)[..., feature] > threshold
    shared = interference(w)[..., feature] >= max_interference
    phase = torch.full(on.shape, NOT_REPRESENTED, dtype=torch.int64)
    phase[on & ~shared] = DEDICATED
    phase[on & shared] = SUPERPOSITION
    return phase


def column_angles(W: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., n) angle of each column of a 2-D embedding (..., 2, n), in degrees in [0, 360)."""
    w = _weights(W)
    if w.shape[-2] != 2:
        raise ValueError(f"column_angles needs m = 2 hidden dimensions, got W of shape {tuple(w.shape)}")
    return torch.rad2deg(torch.atan2(w[..., 1, :], w[..., 0, :])) % 360.0


def polygon_gaps(W: torch.Tensor | np.ndarray, threshold: float = REPRESENTED) -> np.ndarray:
    """Angles in degrees between angularly consecutive represented columns of one 2-D embedding
    (2, n), going round the circle (they sum to 360): a regular k-gon gives k gaps of 360/k."""
    w = _weights(W)
    if w.ndim != 2:
        raise ValueError(f"polygon_gaps takes one model's W (2, n), got shape {tuple(w.shape)}")
    angles = np.sort(column_angles(w)[represented(w, threshold)].numpy())
    if angles.size == 0:
        return angles
    return np.diff(np.append(angles, angles[0] + 360.0))


# --- the toy model of the toy model ----------------------------------------------------------


@functools.cache
def _quadrature(n: int, nodes: int) -> tuple[tuple[int, torch.Tensor, torch.Tensor], ...]:
    """Per sparsity pattern (a bit mask of active features): the Gauss–Legendre points x (P, n) on
    [0, 1]^active (zeros elsewhere) and their weights (P,), float64."""
    x1, w1 = (torch.as_tensor(v) for v in np.polynomial.legendre.leggauss(nodes))
    x1, w1 = (x1 + 1) / 2, w1 / 2
    out = []
    for mask in range(1 << n):
        active = [i for i in range(n) if mask >> i & 1]
        x = torch.zeros(nodes ** len(active), n, dtype=torch.float64)  # (P, n)
        weight = torch.ones(nodes ** len(active), dtype=torch.float64)  # (P,)
        if active:
            grids = torch.meshgrid(*([x1] * len(active)), indexing="ij")
            wgrids = torch.meshgrid(*([w1] * len(active)), indexing="ij")
            for j, i in enumerate(active):
                x[:, i] = grids[j].reshape(-1)
                weight = weight * wgrids[j].reshape(-1)
        out.append((mask, x, weight))
    return tuple(out)


@functools.cache
def _flat_quadrature(n: int, nodes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All patterns' quadrature points stacked: x (P, n), weights (P,), and which features are
    active at each point (P, n) bool, so the expected loss is one pass over the points."""
    parts = _quadrature(n, nodes)
    x = torch.cat([xs for _, xs, _ in parts])
    weight = torch.cat([ws for _, _, ws in parts])
    on = torch.cat(
        [torch.tensor([[bool(mask >> i & 1) for i in range(n)]]).expand(len(ws), n) for mask, _, ws in parts]
    )
    return x, weight, on


def expected_loss(
    W: torch.Tensor,
    b: torch.Tensor,
    probability: Sequence[float] | np.ndarray | torch.Tensor,
    importance: Sequence[float] | np.ndarray | torch.Tensor,
    nodes: int = 48,
) -> torch.Tensor:
    """The exact expected loss E_x Σ_i I_i (x_i − x'_i)² of one small model (n <= 3), differentiable.

    As in the paper's §"Mathematical understanding": the expectation splits over which features
    are active (each subset A with probability Π_{i∈A} p_i Π_{i∉A} (1 − p_i)), and the active
    ones are integrated over [0, 1]^|A| by Gauss–Legendre quadrature with `nodes` points per axis
    (the ReLU's kinks limit the accuracy to about 1e-4 relative, not machine precision).
    W is (m, n), b (n,); float64 inside.
    """
    w = torch.as_tensor(W).to(torch.float64)
    bias = torch.as_tensor(b).to(torch.float64)
    if w.ndim != 2 or bias.shape != (w.shape[1],):
        raise ValueError(
            f"expected_loss takes one model: W (m, n) and b (n,); got {tuple(w.shape)}, {tuple(bias.shape)}"
        )
    n = w.shape[1]
    if n > 3:
        raise ValueError(f"expected_loss integrates over [0, 1]^n; n = {n} > 3 is too costly, sample instead")
    p = torch.as_tensor(probability, dtype=torch.float64).expand(n)
    imp = torch.as_tensor(importance, dtype=torch.float64).expand(n)
    if not bool(((p > 0) & (p <= 1)).all()):
        raise ValueError("probabilities must be in (0, 1] (NaN is not)")
    if not bool(torch.isfinite(imp).all()):
        raise ValueError("importances must be finite")
    _positive_int("expected_loss: nodes", nodes)
    x, weight, on = _flat_quadrature(n, nodes)  # every sparsity pattern's points at once
    prob = torch.prod(torch.where(on, p, 1 - p), dim=1)  # (P,) the probability of each point's pattern
    out = torch.relu(x @ (w.T @ w) + bias)  # (P, n)
    return (prob * weight * ((x - out).square() * imp).sum(1)).sum()


_NATURAL_2IN1 = ((1.0, 0.0), (0.0, 1.0), (1.0, -1.0))
"""The three natural ways to store two features in one dimension (the paper's §phase change):
drop the extra feature, give it the dimension, or store both antipodally."""


def _fit_exact_2in1(start: tuple[float, float], d: float, r: float, nodes: int) -> tuple[float, torch.Tensor]:
    """L-BFGS on the exact loss of an n = 2, m = 1 model from W = `start`, b = 0.1 (not 0, where a
    ReLU with no weight would have no gradient): the optimum's loss and W (1, 2)."""
    params = torch.tensor([*start, 0.1, 0.1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = expected_loss(params[:2].view(1, 2), params[2:], (d, d), (1.0, r), nodes)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        loss = float(expected_loss(params[:2].view(1, 2), params[2:], (d, d), (1.0, r), nodes))
    return loss, params.detach()[:2].view(1, 2)


@functools.lru_cache(maxsize=1 << 12)
def theoretical_phase(relative_importance: float, density: float, nodes: int = 32) -> tuple[int, float]:
    """The phase of the extra feature (1) in the loss-optimal n = 2, m = 1 model, and that loss.

    The paper's "toy model of the toy model": the exact expected loss (:func:`expected_loss`)
    minimised by L-BFGS over W and b from each of the three natural solutions — W = [1, 0],
    [0, 1] and [1, −1] — and the best optimum classified by :func:`classify_feature`.
    Deterministic, so cached per process.
    """
    r, d = float(relative_importance), float(density)
    if not (math.isfinite(r) and r > 0):
        raise ValueError(f"relative_importance must be a positive number, got {relative_importance!r}")
    if not 0 < d <= 1:
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    best_loss, best_w = math.inf, torch.zeros(1, 2)
    for start in _NATURAL_2IN1:
        loss, w = _fit_exact_2in1(start, d, r, nodes)
        if loss < best_loss:
            best_loss, best_w = loss, w
    return int(classify_feature(best_w, feature=1)), best_loss


# --- pictures --------------------------------------------------------------------------------


def _figure(width: float, height: float, layout: str | None = None) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout=layout)


def _as_batch(W: torch.Tensor | np.ndarray) -> np.ndarray:
    w = _weights(W)
    return (w.unsqueeze(0) if w.ndim == 2 else w.reshape(-1, *w.shape[-2:])).numpy()


def _titles(titles: Sequence[str] | None, k: int) -> list[str]:
    if titles is None:
        return [""] * k
    if len(titles) != k:
        raise ValueError(f"got {len(titles)} titles for {k} models")
    return list(titles)


def plot_columns_2d(
    W: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    importance: np.ndarray | Sequence[float] | None = None,
) -> Figure:
    """One panel per model (W (2, n) or (I, 2, n)): each column W_i as a spoke from the origin,
    coloured by importance (yellow = most important), with the unit circle for scale."""
    ws = _as_batch(W)
    if ws.shape[1] != 2:
        raise ValueError(f"plot_columns_2d needs m = 2 hidden dimensions, got W of shape {tuple(ws.shape)}")
    k, n = ws.shape[0], ws.shape[2]
    imp = np.ones((k, n)) if importance is None else np.broadcast_to(np.asarray(importance, float), (k, n))
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    fig = _figure(2.6 * k, 2.9)
    t = np.linspace(0, 2 * np.pi, 200)
    lim = max(1.15, float(np.abs(ws).max()) * 1.1)
    for j, title in enumerate(_titles(titles, k)):
        ax = fig.add_subplot(1, k, j + 1)
        ax.plot(np.cos(t), np.sin(t), color="0.85", lw=1, zorder=0)
        top = imp[j].max() if imp[j].max() > 0 else 1.0
        for i in range(n):
            c = cmap(imp[j, i] / top)
            ax.plot([0, ws[j, 0, i]], [0, ws[j, 1, i]], color=c, lw=2)
            ax.scatter([ws[j, 0, i]], [ws[j, 1, i]], color=c, s=25, edgecolors="k", linewidths=0.5, zorder=3)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[], title=title)
    fig.tight_layout()
    return fig


def plot_wtw(
    W: torch.Tensor | np.ndarray,
    titles: Sequence[str] | None = None,
    b: torch.Tensor | np.ndarray | None = None,
) -> Figure:
    """Per model, the paper's two views: WᵀW as a heatmap (−1 blue .. 1 red) and, below, ‖W_i‖ as
    bars coloured by the interference on feature i (dark = a dimension of its own). With `b`,
    the bias is drawn as a column beside WᵀW."""
    ws = _as_batch(W)
    k, n = ws.shape[0], ws.shape[2]
    bs = None if b is None else torch.as_tensor(b).detach().double().reshape(k, n).numpy()
    import matplotlib as mpl

    fig = _figure(2.2 * k + 0.8, 4.2, layout="constrained")
    grid = fig.add_gridspec(2, k, height_ratios=(1.0, 0.8))
    norms = feature_norms(ws).numpy()  # (k, n)
    inter = interference(ws).numpy()  # (k, n)
    cmap = mpl.colormaps["plasma"]
    image = None
    for j, title in enumerate(_titles(titles, k)):
        ax = fig.add_subplot(grid[0, j])
        g = ws[j].T @ ws[j]
        if bs is not None:
            g = np.concatenate([g, np.full((n, 1), np.nan), bs[j][:, None]], axis=1)
        image = ax.imshow(g, cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set(xticks=[], yticks=[], title=title)
        bar = fig.add_subplot(grid[1, j])
        bar.barh(np.arange(n), norms[j], color=cmap(np.clip(inter[j], 0, 1)))
        bar.set(
            xlim=(0, max(1.2, float(norms.max()) * 1.05)), ylim=(n - 0.5, -0.5), yticks=[], xlabel="‖W_i‖"
        )
    if image is not None:
        fig.colorbar(image, ax=fig.axes[0::2], shrink=0.6, label="W_i · W_j")
    return fig


def plot_features_per_dimension(
    density: Sequence[float] | np.ndarray, W: torch.Tensor | np.ndarray, title: str = ""
) -> Figure:
    """Against 1/(1 − S): features per dimension ‖W‖²_F/m (left), and the paper's view (right):
    dimensions per feature m/‖W‖²_F with every represented feature's dimensionality D_i as a dot
    and the "sticky" fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8 as lines."""
    ws = _weights(W)
    dens = np.asarray(density, dtype=np.float64)
    if ws.ndim != 3 or ws.shape[0] != dens.size:
        raise ValueError(
            f"need W (I, m, n) with one density per instance, got {tuple(ws.shape)} and {dens.size}"
        )
    x = 1.0 / dens
    fpd = features_per_dimension(ws).numpy()
    dims = feature_dimensionality(ws).numpy()
    on = represented(ws).numpy()
    fig = _figure(11, 4.0)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(x, fpd, "o-")
    ax.set(xscale="log", xlabel="1 / (1 − S)  (inverse density)", ylabel="features per dimension ‖W‖²_F / m")
    ax.set_title(title)
    ax2 = fig.add_subplot(1, 2, 2)
    for frac in STICKY_DIMENSIONALITIES:
        ax2.axhline(frac, color="0.8", lw=1, zorder=0)
    xs = np.repeat(x[:, None], dims.shape[1], axis=1)
    ax2.scatter(xs[on], dims[on], s=12, alpha=0.6, label="D_i (represented features)")
    ax2.plot(x, 1.0 / np.maximum(fpd, 1e-12), "k-", label="m / ‖W‖²_F")
    ax2.set(xscale="log", ylim=(0, 1.1), xlabel="1 / (1 − S)", ylabel="dimensions per feature")
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_phase_diagram(
    relative_importance: Sequence[float] | np.ndarray,
    density: Sequence[float] | np.ndarray,
    phase: np.ndarray,
    title: str = "",
    theory: np.ndarray | None = None,
) -> Figure:
    """The phase of the extra feature (codes as :func:`classify_feature`) on a grid: relative
    importance (x, log) by density 1 − S (y, log); `phase` has shape (len(density),
    len(relative_importance)). With `theory` (same shape), a second panel shows it."""
    r = np.asarray(relative_importance, dtype=np.float64)
    d = np.asarray(density, dtype=np.float64)
    panels = [(np.asarray(phase), title or "trained models")]
    if theory is not None:
        panels.append((np.asarray(theory), "exact loss minimum"))
    for ph, _ in panels:
        if ph.shape != (d.size, r.size):
            raise ValueError(
                f"phase grids must be (len(density), len(relative_importance)) = {(d.size, r.size)}, "
                f"got {ph.shape}"
            )
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    def edges(v: np.ndarray) -> np.ndarray:
        lv = np.log(v)
        if v.size == 1:
            return np.exp(np.array([lv[0] - 0.5, lv[0] + 0.5]))
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[2 * lv[0] - mid[0]], mid, [2 * lv[-1] - mid[-1]]]))

    colors = ("#f2f2f2", "#3b6fb6", "#d1495b")
    fig = _figure(5.2 * len(panels), 4.6)
    for j, (ph, name) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        ax.pcolormesh(edges(r), edges(d), ph, cmap=ListedColormap(colors), vmin=-0.5, vmax=2.5)
        ax.set(xscale="log", yscale="log", xlabel="relative importance of the extra feature", title=name)
        if j == 0:
            ax.set_ylabel("feature density 1 − S")
    fig.legend(
        handles=[
            Patch(facecolor=c, edgecolor="0.5", label=name) for c, name in zip(colors, PHASES, strict=True)
        ],
        loc="lower center",
        ncol=3,
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


__all__ = [
    "ACTIVATIONS",
    "DEDICATED",
    "NOT_REPRESENTED",
    "PHASES",
    "REPRESENTED",
    "STICKY_DIMENSIONALITIES",
    "SUPERPOSITION",
    "ToyConfig",
    "ToyModels",
    "classify_feature",
    "column_angles",
    "dimensions_per_feature",
    "evaluate_loss",
    "expected_loss",
    "feature_dimensionality",
    "feature_norms",
    "features_per_dimension",
    "gram",
    "interference",
    "plot_columns_2d",
    "plot_features_per_dimension",
    "plot_phase_diagram",
    "plot_wtw",
    "polygon_gaps",
    "represented",
    "sample_features",
    "theoretical_phase",
    "toy_forward",
    "toy_loss",
    "train_toy_models",
]
