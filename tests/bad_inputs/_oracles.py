"""Float64 references of the bad-input catalogue, written from the formulas (no affgraph code).

Attention: a count matrix ``C[i, j]`` (the number of edges ``j -> i``, or 0/1 for a mask) and
:math:`o_i = \\sum_j C_{ij} e^{l_{ij}} v_j / \\sum_j C_{ij} e^{l_{ij}}` with the row maximum
subtracted; a row without keys is 0. Diffusion: the dense matrix :math:`A_{ij} = \\sum w_{j\\to i}`
and the series or its closed forms by ``torch.linalg``. Inf-FS: the paper's affinity and the
dense closed form ``((I - rA)^-1 - I) 1``.
"""
from __future__ import annotations

import math
import statistics
from typing import Optional

import numpy as np
import scipy.stats
import torch
from torch import Tensor

F64 = torch.float64


def counts_from_edges(edge_index: Tensor, n_dst: int, n_src: int) -> Tensor:
    c = torch.zeros(n_dst, n_src, dtype=F64)
    ei = edge_index.long()
    c.index_put_((ei[1], ei[0]), torch.ones(ei.size(1), dtype=F64), accumulate=True)
    return c


def mask_counts(n: int, *, causal: bool = False, window: Optional[int] = None,
                batch: Optional[Tensor] = None) -> Tensor:
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    m = torch.ones(n, n, dtype=torch.bool)
    if window is not None:
        m &= (i - j).abs() <= window
    if causal:
        m &= j <= i
    if batch is not None:
        m &= batch[:, None] == batch[None, :]
    return m.to(F64)


def softmax_rows(logits: Tensor, c: Tensor) -> Tensor:
    """``[H, N, M]`` logits, ``[N, M]`` counts -> the weights ``C e^l / sum C e^l`` (rows
    without keys: 0)."""
    masked = logits.masked_fill(c == 0, -math.inf)
    top = masked.amax(-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = c * torch.exp(masked - top)
    s = w.sum(-1, keepdim=True)
    return torch.where(s > 0, w / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(w))


def attention_matrix(q: Tensor, k: Tensor, c: Tensor) -> Tensor:
    """``S [H, N, M]`` of node-major ``q [N, H, D]``, ``k [M, H, D]``."""
    q, k = q.to(F64), k.to(F64)
    d = q.size(-1)
    logits = torch.einsum("nhd,mhd->hnm", q, k) / math.sqrt(d)
    return softmax_rows(logits, c)


def attention(q: Tensor, k: Tensor, v: Tensor, c: Tensor) -> Tensor:
    s = attention_matrix(q, k, c)
    return torch.einsum("hnm,mhd->nhd", s, v.to(F64))


def series(s: Tensor, v: Tensor, theta: Tensor) -> Tensor:
    """``sum_k theta_k S^k V`` per head for ``S [H, N, N]``, ``v [N, H, D]``."""
    x = v.to(F64).transpose(0, 1)  # (H, N, D)
    out = theta[0] * x
    p = x
    for t in theta[1:]:
        p = s @ p
        out = out + t * p
    return out.transpose(0, 1)


def theta(kind: str, K: int, *, alpha: float = 0.1, r: float = 0.9, t: float = 1.0) -> Tensor:
    k = torch.arange(K + 1, dtype=F64)
    if kind == "ppr":
        th = alpha * (1 - alpha) ** k
        th[-1] = (1 - alpha) ** K
    elif kind == "katz":
        th = r ** k
        th[0] = 0.0
    elif kind == "heat":
        th = torch.tensor([math.exp(-t) * t ** i / math.factorial(i) for i in range(K + 1)],
                          dtype=F64)
    elif kind == "uniform":
        th = torch.full((K + 1,), 1.0 / (K + 1), dtype=F64)
    else:  # power
        th = torch.zeros(K + 1, dtype=F64)
        th[-1] = 1.0
    return th


def closed_form(a: Tensor, x: Tensor, kind: str, *, alpha: float = 0.1, r: float = 0.9,
                t: float = 1.0) -> Tensor:
    """The infinite series of ``a [.., N, N]`` on ``x [.., N, D]`` (batched over heads)."""
    n = a.size(-1)
    eye = torch.eye(n, dtype=F64)
    a, x = a.to(F64), x.to(F64)
    if kind == "ppr":
        return alpha * torch.linalg.solve(eye - (1 - alpha) * a, x)
    if kind == "katz":
        return torch.linalg.solve(eye - r * a, x) - x
    return torch.linalg.matrix_exp(-t * (eye - a)) @ x  # heat


def attention_closed_form(q: Tensor, k: Tensor, v: Tensor, c: Tensor, kind: str,
                          **kw: float) -> Tensor:
    s = attention_matrix(q, k, c)
    return closed_form(s, v.to(F64).transpose(0, 1), kind, **kw).transpose(0, 1)


def dense_adjacency(edge_index: Tensor, edge_weight: Optional[Tensor], n: int) -> Tensor:
    a = torch.zeros(n, n, dtype=F64)
    ei = edge_index.long()
    w = torch.ones(ei.size(1), dtype=F64) if edge_weight is None else edge_weight.to(F64)
    a.index_put_((ei[1], ei[0]), w, accumulate=True)
    return a


def sym_normalise(a: Tensor) -> Tensor:
    """:math:`D^{-1/2} A D^{-1/2}` with the row sums (in-degrees) :math:`D`, 0 where 0."""
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.clamp_min(1e-300).rsqrt(), torch.zeros_like(deg))
    return inv[:, None] * a * inv[None, :]


def gcn_adjacency(edge_index: Tensor, edge_weight: Optional[Tensor], n: int) -> Tensor:
    """APPNP's default graph: missing self-loops added with weight 1, then symmetric norm."""
    a = dense_adjacency(edge_index, edge_weight, n)
    diag = torch.diagonal(a)
    a = a + torch.diag(torch.where(diag == 0, torch.ones_like(diag), torch.zeros_like(diag)))
    return sym_normalise(a)


def diffuse_series(a: Tensor, x: Tensor, th: Tensor) -> Tensor:
    x = x.to(F64)
    out = th[0] * x
    p = x
    for t in th[1:]:
        p = a @ p
        out = out + t * p
    return out


def spectral_radius(a: Tensor) -> float:
    if a.numel() == 0:
        return 0.0
    return float(np.abs(np.linalg.eigvals(a.numpy())).max())


def inffs_affinity(X: np.ndarray, w: float = 0.5) -> np.ndarray:
    """The paper's affinity ``w max(s_i, s_j) + (1 - w)(1 - |spearman_ij|)`` with the
    min-max scaled standard deviations ``s`` (a constant feature correlates 0)."""
    X = np.asarray(X, dtype=np.float64)
    # statistics.stdev sums exact fractions: no square underflows or overflows
    sd = np.array([statistics.stdev(col.tolist()) for col in X.T])
    s = (sd - sd.min()) / (sd.max() - sd.min()) if sd.max() > sd.min() else np.zeros_like(sd)
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            c = scipy.stats.spearmanr(X).statistic
    if np.ndim(c) == 0:  # two features: spearmanr gives the one coefficient
        c = np.array([[1.0, c], [c, 1.0]])
    c = np.where(np.isfinite(c), c, 0.0)
    const = sd == 0
    c[const, :] = 0.0
    c[:, const] = 0.0
    return w * np.maximum(s[:, None], s[None, :]) + (1 - w) * (1 - np.abs(c))


def inffs_scores(X: np.ndarray, r_frac: float = 0.9, hops: float = math.inf,
                 w: float = 0.5) -> np.ndarray:
    a = inffs_affinity(X, w)
    lam = float(np.linalg.eigvalsh(a).max())
    r = r_frac / lam
    n = a.shape[0]
    one = np.ones(n)
    if hops == math.inf:
        return np.linalg.solve(np.eye(n) - r * a, one) - one
    out, p = np.zeros(n), one
    for _ in range(int(hops)):
        p = r * (a @ p)
        out = out + p
    return out


def simplicial(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor, jmask: Tensor,
               lmask: Tensor) -> Tensor:
    """2-simplicial attention with supports ``J(i) x L(i)`` given by ``[N, N]`` masks."""
    q, k1, k2, v1, v2 = (t.to(F64) for t in (q, k1, k2, v1, v2))
    n, h, d = q.shape
    a = torch.einsum("ihd,jhd,lhd->hijl", q, k1, k2) / math.sqrt(d)
    m = (jmask[:, :, None] > 0) & (lmask[:, None, :] > 0)  # (i, j, l)
    c = m.to(F64).reshape(n, n * n)
    s = softmax_rows(a.reshape(h, n, n * n), c).reshape(h, n, n, n)
    return torch.einsum("hijl,jhd,lhd->ihd", s, v1, v2)
