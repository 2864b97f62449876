"""Fourier analysis of modular-addition models: key frequencies and the grokking progress measures.

Nanda, Chan, Lieberum, Smith & Steinhardt (2023), "Progress measures for grokking via mechanistic
interpretability", §4–5. Written here (the measures are the research object). For a model of
(a + b) mod p, arrange its logits over all p² inputs as a (p², p) matrix, rows in order a·p + b:

- *key frequencies*: the frequencies k whose cos/sin components carry the embedding's norm;
- *restricted loss*: keep only the directions cos(w_k(a+b)) and sin(w_k(a+b)) of the key
  frequencies (w_k = 2πk/p) plus each output's mean over inputs (the paper code's bias
  correction), then the loss on the pairs in a mask (the paper's code: all p² pairs);
- *excluded loss*: remove exactly those directions, then the loss on the training pairs.

The directions are the normalised 2-D Fourier terms (cos·cos − sin·sin)/√2 and (sin·cos + cos·sin)/√2,
as in the paper's released code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def fourier_basis(p: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(p, p) orthonormal rows: constant, then cos_k, sin_k for k = 1..p//2 (p odd)."""
    if p < 3 or p % 2 == 0:
        raise ValueError(f"p must be an odd number >= 3, got {p}")
    x = torch.arange(p, dtype=dtype)
    rows = [torch.ones(p, dtype=dtype)]
    for k in range(1, p // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
    basis = torch.stack(rows)  # (p, p)
    return basis / basis.norm(dim=1, keepdim=True)


def frequency_norms(weights: torch.Tensor) -> torch.Tensor:
    """(p//2 + 1,) squared norm of `weights` (p, d) per frequency: [constant, k=1, ..., k=p//2]."""
    p = weights.shape[0]
    coeffs = fourier_basis(p) @ weights.detach().to(torch.float64)  # (p, d)
    sq = coeffs.pow(2).sum(dim=1)  # (p,)
    return torch.cat([sq[:1], sq[1:].view(-1, 2).sum(dim=1)])


def key_frequencies(weights: torch.Tensor, share: float = 0.8, max_k: int = 8) -> tuple[list[int], float]:
    """The fewest frequencies (at most `max_k`) carrying `share` of `weights`' non-constant Fourier norm,
    largest first, and the share of the whole norm the top `max_k` carry."""
    norms = frequency_norms(weights)
    total = float(norms.sum())
    freq = norms[1:]
    order = torch.argsort(freq, descending=True)
    cum = torch.cumsum(freq[order], 0) / float(freq.sum())
    n = min(int(torch.searchsorted(cum, torch.tensor(share, dtype=cum.dtype))) + 1, max_k)
    top = float(freq[order[:max_k]].sum()) / total if total > 0 else 0.0
    return [int(k) + 1 for k in order[:n]], top


def sum_directions(p: int, freqs: Sequence[int]) -> torch.Tensor:
    """(2·len(freqs), p²) orthonormal directions cos(w_k(a+b)), sin(w_k(a+b)) over inputs a·p + b."""
    basis = fourier_basis(p)
    out = []
    for k in freqs:
        if not 1 <= k <= p // 2:
            raise ValueError(f"frequency {k} is outside 1..{p // 2}")
        c, s = basis[2 * k - 1], basis[2 * k]
        out.append((torch.outer(c, c) - torch.outer(s, s)).flatten() / math.sqrt(2))
        out.append((torch.outer(s, c) + torch.outer(c, s)).flatten() / math.sqrt(2))
    return torch.stack(out)


def _check(logits: torch.Tensor) -> int:
    p = logits.shape[-1]
    if logits.ndim != 2 or logits.shape[0] != p * p:
        raise ValueError(f"logits must be (p², p) over all input pairs, got {tuple(logits.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError("logits contain NaN or infinite values")
    return p


def _project(logits: torch.Tensor, freqs: Sequence[int]) -> torch.Tensor:
    p = _check(logits)
    dirs = sum_directions(p, freqs).to(torch.float64)  # (2K, p²)
    x = logits.detach().to(torch.float64)
    return dirs.T @ (dirs @ x)  # (p², p)


def restricted_loss(
    logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, freqs: Sequence[int]
) -> float:
    """Cross-entropy on the `mask` pairs keeping only the key-frequency sum directions and output means."""
    kept = _project(logits, freqs)
    kept = kept + (logits.detach().to(torch.float64) - kept).mean(dim=0, keepdim=True)
    return float(F.cross_entropy(kept[mask], labels[mask]))


def excluded_loss(
    logits: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, freqs: Sequence[int]
) -> float:
    """Cross-entropy on the `train` pairs after removing the key-frequency sum directions."""
    removed = logits.detach().to(torch.float64) - _project(logits, freqs)
    return float(F.cross_entropy(removed[train], labels[train]))
