"""Feature-ranking baselines that have no maintained, fast package: Fisher score, Laplacian
score, ReliefF and mRMR (all NumPy, float64, deterministic).

scikit-learn covers the others (``f_classif``, ``mutual_info_classif``, ``VarianceThreshold``).
Every function returns one score per feature; :func:`fisher_score` and :func:`relieff_score`
are higher-is-better, :func:`laplacian_score` is lower-is-better, as in its paper.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import kneighbors_graph
from sklearn.utils import check_array, check_X_y

__all__ = ["fisher_score", "laplacian_score", "mrmr_order", "relieff_score"]


def _check_Xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = check_X_y(X, y, dtype=np.float64, ensure_all_finite=True, ensure_min_samples=2)
    classes, yi = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise ValueError(f"y must hold at least 2 classes, got {classes.size}")
    return X, yi


def fisher_score(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    r"""The Fisher score of each feature (Duda, Hart & Stork, *Pattern Classification*, 2001;
    as in scikit-feature): between-class over within-class scatter,

    .. math::
        F_j = \frac{\sum_c n_c\,(\mu_{cj} - \mu_j)^2}{\sum_c n_c\,\sigma_{cj}^2},

    with class sizes :math:`n_c`, class means :math:`\mu_{cj}`, overall mean :math:`\mu_j`
    and population class variances :math:`\sigma_{cj}^2`. It equals ANOVA's
    :math:`F \cdot (C-1)/(n-C)`. A constant feature scores 0; a feature that is constant within
    each class but not overall scores ``inf``.

    Args:
        X (np.ndarray): data :math:`(n, d)`, finite.
        y (np.ndarray): class labels :math:`(n)`, at least two classes.

    Returns:
        np.ndarray :math:`(d)`, higher is better.
    """
    X, yi = _check_Xy(X, y)
    counts = np.bincount(yi).astype(np.float64)
    sums = np.zeros((counts.size, X.shape[1]))
    np.add.at(sums, yi, X)
    means = sums / counts[:, None]                                  # (C, d)
    between = counts @ (means - X.mean(0)) ** 2
    within = ((X - means[yi]) ** 2).sum(0)                          # sum_c n_c sigma_c^2
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(within > 0, between / within, np.inf)
    return np.where(np.ptp(X, axis=0) == 0, 0.0, score)


def laplacian_score(X: np.ndarray, *, n_neighbors: int = 5, t: float | None = None,
                    W: np.ndarray | None = None) -> np.ndarray:
    r"""The Laplacian score of each feature (`"Laplacian Score for Feature Selection"
    <https://papers.nips.cc/paper/2909-laplacian-score-for-feature-selection>`_, He, Cai &
    Niyogi, NeurIPS 2005): how well a feature preserves the locality of a kNN graph.

    .. math::
        S_{ij} = e^{-\|\mathbf{x}_i - \mathbf{x}_j\|^2 / t}\ \text{if } i \in
        \mathcal{N}_k(j) \text{ or } j \in \mathcal{N}_k(i), \qquad
        \tilde{\mathbf{f}} = \mathbf{f} - \frac{\mathbf{f}^\top D\mathbf{1}}
        {\mathbf{1}^\top D\mathbf{1}}\mathbf{1}, \qquad
        L_j = \frac{\tilde{\mathbf{f}}_j^\top (D - S)\,\tilde{\mathbf{f}}_j}
        {\tilde{\mathbf{f}}_j^\top D\,\tilde{\mathbf{f}}_j},

    with :math:`D = \mathrm{diag}(S\mathbf{1})`. A constant feature scores ``inf`` (worst).

    Args:
        X (np.ndarray): data :math:`(n, d)`, finite.
        n_neighbors (int, optional): :math:`k` of the kNN graph. (default: :obj:`5`)
        t (float, optional): heat-kernel width; default the mean squared distance over the
            graph's edges. (default: :obj:`None`)
        W (np.ndarray, optional): a symmetric non-negative affinity :math:`(n, n)` to use
            instead of the kNN heat-kernel graph. (default: :obj:`None`)

    Returns:
        np.ndarray :math:`(d)`, lower is better.
    """
    X = check_array(X, dtype=np.float64, ensure_all_finite=True, ensure_min_samples=2)
    n = X.shape[0]
    if W is None:
        if not isinstance(n_neighbors, (int, np.integer)) or not 1 <= n_neighbors < n:
            raise ValueError(f"n_neighbors must be an int in [1, {n - 1}], got {n_neighbors!r}")
        G = kneighbors_graph(X, n_neighbors, mode="distance", include_self=False)
        G = G.maximum(G.T).tocsr()                                  # i in N(j) or j in N(i)
        sq = G.data ** 2
        if t is None:
            t = float(sq.mean()) if sq.size and sq.mean() > 0 else 1.0
        if not np.isfinite(t) or t <= 0:
            raise ValueError(f"t must be a positive finite number, got {t}")
        S = G.copy()
        S.data = np.exp(-sq / t)
        deg = np.asarray(S.sum(1)).ravel()
    else:
        S = check_array(W, dtype=np.float64, ensure_all_finite=True)
        if S.shape != (n, n) or not np.allclose(S, S.T) or (S < 0).any():
            raise ValueError(f"W must be a symmetric non-negative ({n}, {n}) matrix")
        deg = S.sum(1)
    if deg.sum() <= 0:
        raise ValueError("the affinity graph has no edges")
    Xt = X - (deg @ X) / deg.sum()                                  # D-weighted centring
    den = deg @ Xt ** 2                                             # f~^T D f~
    num = den - (Xt * (S @ Xt)).sum(0)                              # f~^T (D - S) f~
    scale = np.maximum(1.0, deg @ X ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = num / den
    return np.where(den <= 1e-12 * scale, np.inf, score)


def relieff_score(X: np.ndarray, y: np.ndarray, *, n_neighbors: int = 10) -> np.ndarray:
    r"""ReliefF feature weights (`"Theoretical and Empirical Analysis of ReliefF and RReliefF"
    <https://doi.org/10.1023/A:1025667309714>`_, Robnik-Šikonja & Kononenko, MLJ 2003, Fig. 3),
    with every instance as a target (:math:`m = n`):

    .. math::
        W_f = \frac{1}{n k}\sum_{i=1}^n\Big[-\sum_{h \in H_k(i)} \mathrm{diff}_f(i, h)
        + \sum_{c \neq y_i} \frac{P(c)}{1 - P(y_i)} \sum_{m \in M_k^c(i)} \mathrm{diff}_f(i, m)\Big],

    where :math:`\mathrm{diff}_f(i, j) = |x_{if} - x_{jf}| / (\max_f - \min_f)`, and the
    :math:`k` nearest hits :math:`H_k(i)` and misses of class :math:`c`, :math:`M_k^c(i)`, are
    found with the Manhattan distance of range-scaled features (:math:`k` is capped at the
    class size). Ties in distance go to the lower index. For two classes this is what
    ``skrebate.ReliefF`` computes on continuous features, vectorised.

    Args:
        X (np.ndarray): data :math:`(n, d)`, finite.
        y (np.ndarray): class labels :math:`(n)`, at least two classes.
        n_neighbors (int, optional): :math:`k`. (default: :obj:`10`)

    Returns:
        np.ndarray :math:`(d)`, higher is better, in :math:`[-1, 1]`.
    """
    X, yi = _check_Xy(X, y)
    if not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
        raise ValueError(f"n_neighbors must be a positive int, got {n_neighbors!r}")
    n, d = X.shape
    lo, span = X.min(0), X.max(0) - X.min(0)
    Xn = (X - lo) / np.where(span > 0, span, 1.0)                   # diff in [0, 1]
    Xt = torch.from_numpy(Xn)
    dist = torch.cdist(Xt, Xt, p=1.0).numpy()                       # Manhattan, (n, n)
    np.fill_diagonal(dist, np.inf)                                  # never one's own neighbour
    counts = np.bincount(yi)
    prior = counts / n
    W = np.zeros(d)
    for c in range(counts.size):
        members = np.flatnonzero(yi == c)
        is_hit = yi == c
        kk_hit, kk_miss = min(n_neighbors, members.size - 1), min(n_neighbors, members.size)
        order = np.argsort(dist[:, members], axis=1, kind="stable")  # (n, n_c) nearest first
        # row weights: -1/(n k) for hits, P(c)/(1 - P(y_i))/(n k) for misses of class c
        weight = np.where(is_hit, -1.0 / (n * max(kk_hit, 1)),
                          prior[c] / (1.0 - prior[yi]) / (n * kk_miss))
        kk = np.where(is_hit, kk_hit, kk_miss)
        for j in range(kk_miss):
            rows = np.flatnonzero(kk > j)
            nb = members[order[rows, j]]
            W += weight[rows] @ np.abs(Xn[rows] - Xn[nb])
    return W


_MRMR_FLOOR = 0.001


def mrmr_order(X: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    r"""The first :math:`k` features chosen by mRMR with the F-test correlation quotient
    (`"Maximum Relevance and Minimum Redundancy Feature Selection Methods for a Marketing
    Machine Learning Platform" <https://arxiv.org/abs/1908.05376>`_, Zhao et al., 2019), the
    greedy rule of ``mrmr.mrmr_classif`` (``mrmr-selection``, relevance ``"f"``, redundancy
    ``"c"``, denominator ``"mean"``), vectorised: with the ANOVA F statistic :math:`F_j` and
    the selected set :math:`S`, the next feature is

    .. math::
        j^\star = \operatorname*{arg\,max}_{j \notin S} \frac{F_j}
        {\frac{1}{|S|}\sum_{s \in S} \max(|\rho_{js}|, 0.001)}

    (denominator 1 for the first pick; :math:`\rho` the Pearson correlation, 0.001 where
    undefined; a mean of exactly 1 makes the score 0; ties go to the lower index). Only
    features with :math:`F_j > 0` are candidates, as in the package.

    Args:
        X (np.ndarray): data :math:`(n, d)`, finite.
        y (np.ndarray): class labels :math:`(n)`, at least two classes.
        k (int): how many features to pick (capped by the number of candidates).

    Returns:
        np.ndarray :math:`(k')` of feature indices, in the order picked,
        :math:`k' = \min(k, |\{j : F_j > 0\}|)`.
    """
    from sklearn.feature_selection import f_classif

    X, yi = _check_Xy(X, y)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        F = np.nan_to_num(f_classif(X, yi)[0], nan=0.0)
    cand = np.flatnonzero(F > 0)
    k = min(int(k), cand.size)
    Xc = X[:, cand] - X[:, cand].mean(0)
    norm = np.sqrt((Xc * Xc).sum(0))
    rel = F[cand]
    red_sum = np.zeros(cand.size)
    free = np.ones(cand.size, dtype=bool)
    picked: list[int] = []
    for i in range(k):
        if i == 0:
            score = rel.copy()
        else:
            last = picked[-1]
            with np.errstate(divide="ignore", invalid="ignore"):
                rho = (Xc.T @ Xc[:, last]) / (norm * norm[last])
            red_sum += np.clip(np.abs(np.nan_to_num(rho, nan=_MRMR_FLOOR)), _MRMR_FLOOR, None)
            den = red_sum / i
            den[den == 1.0] = np.inf
            score = rel / den
        score[~free] = -np.inf
        best = int(np.argmax(score))
        picked.append(best)
        free[best] = False
    return cand[np.asarray(picked, dtype=np.int64)]
