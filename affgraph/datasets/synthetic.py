"""Synthetic data with known ground truth: a contextual SBM graph and planted features."""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected


def _int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _real(name: str, value: object, low: float, high: float = math.inf, *,
          open_low: bool = False, open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    bad = (not math.isfinite(v) or (v <= low if open_low else v < low)
           or (v >= high if open_high else v > high))
    if bad:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(f"{name} must be finite and in {lo}{low}, {high}{hi}, got {value}")
    return v


def _stratified_masks(y: np.ndarray, train_ratio: float, val_ratio: float,
                      rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    n = y.shape[0]
    masks = [np.zeros(n, dtype=bool) for _ in range(3)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_tr = int(round(train_ratio * idx.size))
        n_va = int(round(val_ratio * idx.size))
        masks[0][idx[:n_tr]] = True
        masks[1][idx[n_tr:n_tr + n_va]] = True
        masks[2][idx[n_tr + n_va:]] = True
    return tuple(torch.from_numpy(m) for m in masks)


def make_csbm(n: int, homophily: float, *, num_classes: int = 2, num_features: int = 32,
              avg_degree: float = 5.0, feature_snr: float = 1.0, train_ratio: float = 0.6,
              val_ratio: float = 0.2, seed: int = 0) -> Data:
    r"""A contextual stochastic block model graph (`"Contextual Stochastic Block Models"
    <https://arxiv.org/abs/1807.09596>`_, Deshpande et al., NeurIPS 2018), with the edge
    homophily set directly, from heterophilous (0) to homophilous (1).

    Classes are balanced (``y_i = i mod C``, shuffled). Features are Gaussian around class means
    that sit at equal distance ``feature_snr`` from each other:

    .. math::
        \mathbf{x}_i = \boldsymbol{\mu}_{y_i} + \boldsymbol{\varepsilon}_i,\quad
        \boldsymbol{\varepsilon}_i \sim \mathcal{N}(\mathbf{0}, \mathbf{I}_F),\quad
        \boldsymbol{\mu}_c = \tfrac{s}{\sqrt{2}}\,\mathbf{q}_c,

    with orthonormal random :math:`\mathbf{q}_c`, so :math:`\|\boldsymbol{\mu}_c -
    \boldsymbol{\mu}_{c'}\| = s`. About :math:`n\bar d/2` undirected edges are drawn: a uniform
    source :math:`i`, then with probability :math:`h` a uniform other node of class
    :math:`y_i`, else a uniform node of another class; duplicates are merged. So the edge
    homophily :math:`|\{(i,j)\in E : y_i = y_j\}| / |E|` is :math:`h` up to sampling noise
    (exactly 0 or 1 at the ends).

    Args:
        n (int): number of nodes (at least ``2 * num_classes``).
        homophily (float): target edge homophily :math:`h \in [0, 1]`.
        num_classes (int, optional): :math:`C \geq 2`. (default: :obj:`2`)
        num_features (int, optional): :math:`F \geq C`. (default: :obj:`32`)
        avg_degree (float, optional): target mean degree :math:`\bar d`. (default: :obj:`5.0`)
        feature_snr (float, optional): distance :math:`s` between class means in noise
            standard deviations; 0 makes features useless. (default: :obj:`1.0`)
        train_ratio (float, optional): per-class fraction of training nodes. (default: :obj:`0.6`)
        val_ratio (float, optional): per-class fraction of validation nodes; the rest is
            test. (default: :obj:`0.2`)
        seed (int, optional): seed of the generator; equal seeds give equal graphs.
            (default: :obj:`0`)

    Shapes:
        - **x**: :math:`(n, F)` float32, **edge_index**: :math:`(2, E)` undirected, no
          self-loops, **y**: :math:`(n)` int64, **train_mask**/**val_mask**/**test_mask**:
          :math:`(n)` boolean, disjoint, covering all nodes.
    """
    C = _int("num_classes", num_classes, 2)
    n = _int("n", n, 2 * C)
    F = _int("num_features", num_features, C)
    h = _real("homophily", homophily, 0.0, 1.0)
    deg = _real("avg_degree", avg_degree, 0.0, n - 1.0, open_low=True)
    snr = _real("feature_snr", feature_snr, 0.0)
    tr = _real("train_ratio", train_ratio, 0.0, 1.0, open_low=True, open_high=True)
    va = _real("val_ratio", val_ratio, 0.0, 1.0, open_high=True)
    if tr + va >= 1.0:
        raise ValueError(f"train_ratio + val_ratio must be < 1, got {tr} + {va}")
    seed = _int("seed", seed, 0)
    rng = np.random.default_rng(seed)

    y = rng.permutation(np.arange(n) % C)
    order = np.argsort(y, kind="stable")            # nodes grouped by class
    size = np.bincount(y, minlength=C)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n) - start[y[order]]     # position of each node inside its class

    m = max(1, int(round(n * deg / 2)))
    src = rng.integers(n, size=m)
    c = y[src]
    same = rng.random(m) < h
    # same class, not the source itself: uniform over the other size[c] - 1 members
    r_same = rng.integers(0, size[c] - 1)
    r_same += r_same >= pos[src]
    # another class: uniform over the n - size[c] nodes outside the source's block
    r_diff = rng.integers(0, n - size[c])
    r_diff += np.where(r_diff >= start[c], size[c], 0)
    dst = np.where(same, order[start[c] + r_same], order[r_diff])

    edge_index = torch.from_numpy(np.stack([src, dst])).long()
    edge_index = coalesce(to_undirected(edge_index, num_nodes=n), num_nodes=n)

    q, _ = np.linalg.qr(rng.standard_normal((F, C)))  # (F, C) orthonormal columns
    means = (snr / math.sqrt(2.0)) * q.T               # (C, F)
    x = means[y] + rng.standard_normal((n, F))
    train, val, test = _stratified_masks(y, tr, va, rng)
    return Data(x=torch.from_numpy(x).float(), edge_index=edge_index,
                y=torch.from_numpy(y).long(), train_mask=train, val_mask=val, test_mask=test)


def make_planted_features(n_samples: int, n_features: int, n_informative: int, *,
                          n_redundant: int = 0, n_classes: int = 2, class_sep: float = 1.0,
                          flip_y: float = 0.0, seed: int = 0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""A classification set whose informative features are known, so that the precision@k
    of a feature ranking is exact.

    Classes are balanced (``y_i = i mod C``, shuffled). Each informative feature carries the
    class on its own, through class means drawn once:

    .. math::
        x_{ij} = \mu_{y_i j} + \varepsilon_{ij},\qquad \mu_{cj} \sim \mathcal{N}(0, s^2),
        \quad \varepsilon_{ij} \sim \mathcal{N}(0, 1);

    ``n_redundant`` features are random linear combinations of the informative ones
    (informative jointly, but adding nothing), and the rest are independent
    :math:`\mathcal{N}(0, 1)` noise. Every column is then standardised (mean 0, variance 1),
    so a feature's variance says nothing about its relevance, and the columns are permuted
    with the seed. Without the labels, the informative features differ from the noise chiefly
    in that they correlate with one another, through the shared class means (mean
    :math:`|\rho|` 0.16 among them against 0.045 among noise features in a 3-class,
    400 x 500 set with ``class_sep=1``): an unsupervised criterion that sees this cluster
    structure (the Laplacian score) finds them; one that rewards high variance and low
    correlation (unsupervised Inf-FS) cannot, and ranks them at chance or below.
    Unlike :func:`sklearn.datasets.make_classification`, whose informative
    columns may separate no class pair and have larger variance than its noise columns, every
    returned informative index is individually informative.

    Args:
        n_samples (int): number of samples (at least ``2 * n_classes``).
        n_features (int): total number of features.
        n_informative (int): number of informative features.
        n_redundant (int, optional): number of redundant features. (default: :obj:`0`)
        n_classes (int, optional): number of classes :math:`C`. (default: :obj:`2`)
        class_sep (float, optional): spread :math:`s` of the class means. (default: :obj:`1.0`)
        flip_y (float, optional): fraction of labels replaced by a random class after the
            features are drawn (label noise). (default: :obj:`0.0`)
        seed (int, optional): seed; equal seeds give equal data. (default: :obj:`0`)

    Returns:
        ``(X, y, informative_idx)``: ``X`` :math:`(n, d)` float64, ``y`` :math:`(n)` int64 in
        ``0..C-1``, ``informative_idx`` the sorted column indices of the informative features
        (the redundant ones are not included).
    """
    n_classes = _int("n_classes", n_classes, 2)
    n_samples = _int("n_samples", n_samples, 2 * n_classes)
    n_features = _int("n_features", n_features, 1)
    n_informative = _int("n_informative", n_informative, 1)
    n_redundant = _int("n_redundant", n_redundant, 0)
    if n_informative + n_redundant > n_features:
        raise ValueError(f"n_informative + n_redundant = {n_informative + n_redundant} exceeds "
                         f"n_features = {n_features}")
    class_sep = _real("class_sep", class_sep, 0.0)
    flip_y = _real("flip_y", flip_y, 0.0, 1.0)
    seed = _int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    n, k = n_samples, n_informative
    y = rng.permutation(np.arange(n) % n_classes)
    means = class_sep * rng.standard_normal((n_classes, k))
    informative = means[y] + rng.standard_normal((n, k))               # (n, k)
    redundant = informative @ rng.uniform(-1.0, 1.0, (k, n_redundant))  # (n, r)
    noise = rng.standard_normal((n, n_features - k - n_redundant))
    X = np.hstack([informative, redundant, noise])
    X = (X - X.mean(0)) / X.std(0)
    perm = rng.permutation(n_features)               # new column j holds old column perm[j]
    X = X[:, perm]
    flip = rng.random(n) < flip_y
    y = np.where(flip, rng.integers(0, n_classes, n), y)
    idx = np.sort(np.flatnonzero(perm < k)).astype(np.int64)
    return X.astype(np.float64), y.astype(np.int64), idx
