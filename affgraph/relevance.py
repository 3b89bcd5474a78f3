r"""Label-aware Inf-FS: relevance and non-redundancy on one feature graph.

The unsupervised Inf-FS affinity (variance and non-redundancy) is blind to the classes. The
``"relevance"`` graph weighs each pair of features by how relevant both are to the labels
and how little they repeat each other:

.. math::
    a_{ij} = q_i\, q_j\, \big(1 - |c_{ij}|\big), \qquad q = \frac{f}{\max_k f_k},

with :math:`f` a per-feature relevance computed on the training data (ANOVA F, Fisher score
or mutual information) and :math:`c_{ij}` the Spearman (or Pearson) correlation. A feature
scores high when it is relevant and linked to other relevant features it does not duplicate;
the Inf-FS series :math:`\sum_k r^k A^k \mathbf{1}` (:func:`affgraph.inffs.inffs_scores`)
propagates that over :math:`K` hops of the (optionally kNN-sparsified) graph, and
:func:`choose_hops` picks :math:`K` by an inner cross-validation on the training data.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import torch

from affgraph._checks import check_choice, check_positive_int

__all__ = ["RELEVANCES", "CORRELATIONS", "AFFINITIES", "anova_scores", "pearson_factor", "relevance_weights",
           "relevance_affinity", "choose_hops", "DEFAULT_HOP_GRID"]

#: per-feature relevance statistics of the ``"relevance"`` variant
RELEVANCES = ("anova", "fisher", "mi")
#: correlations of its non-redundancy term
CORRELATIONS = ("spearman", "pearson")
#: the forms of the ``"relevance"`` graph
AFFINITIES = ("product", "max")
#: the hop counts :func:`choose_hops` tries by default
DEFAULT_HOP_GRID = (1, 2, 3, 5, math.inf)


def anova_scores(X: np.ndarray, codes: np.ndarray, K: int) -> np.ndarray:
    r"""The one-way ANOVA F statistic of each feature (``sklearn.feature_selection.f_classif``).

    .. math::
        F_i = \frac{\sum_c m_c (\mu_{c,i} - \mu_i)^2 / (K - 1)}
                   {\sum_c \sum_{t \in c} (x_{ti} - \mu_{c,i})^2 / (m - K)}

    computed on each column divided by its largest :math:`|x|` (the ratio is unchanged, no
    square under- or overflows; a within-class sum of squares below :math:`10^{-12}` times the
    total one is rounding, taken as 0). A feature constant within every class but not overall
    (:math:`F = \infty`) gets the largest finite :math:`F` (1 if there is none), a constant
    feature 0; :math:`m = K` (no within-class degrees of freedom) gives 0 everywhere.

    Args:
        X (ndarray): ``[m, n]`` float64 samples x features.
        codes (ndarray): ``[m]`` class codes ``0..K-1``.
        K (int): the number of classes, ``>= 2``.

    Returns:
        ndarray ``[n]``, non-negative and finite.
    """
    m, n = X.shape
    col = np.abs(X).max(0)
    X = X / np.where(col > 0, col, 1.0)
    mu = X.mean(0)
    counts = np.bincount(codes, minlength=K).astype(np.float64)
    sums = np.zeros((K, n))
    np.add.at(sums, codes, X)
    present = counts > 0
    means = sums[present] / counts[present, None]
    between = (counts[present, None] * (means - mu) ** 2).sum(0)
    within = ((X - (sums / np.maximum(counts, 1.0)[:, None])[codes]) ** 2).sum(0)
    total = ((X - mu) ** 2).sum(0)
    within = np.where(within <= 1e-12 * total, 0.0, within)  # rounding of exact zeros
    if m <= K:
        return np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        F = (between / (K - 1)) / (within / (m - K))
    F = np.where(between > 0, F, 0.0)
    finite = np.isfinite(F)
    top = float(F[finite].max()) if finite.any() and F[finite].max() > 0 else 1.0
    return np.where(finite, F, top)


def pearson_factor(X: np.ndarray) -> np.ndarray:
    r"""Unit-norm centred columns :math:`Z` with :math:`Z^\top Z` = Pearson's correlation
    (a constant feature gets a zero column: correlation 0 with everything). ``[m, n]``."""
    col = np.abs(X).max(0)
    R = X / np.where(col > 0, col, 1.0)
    R = R - R.mean(0)
    norm = np.sqrt((R * R).sum(0))
    return np.where(norm > 0, R / np.where(norm > 0, norm, 1.0), 0.0)


def relevance_weights(X: np.ndarray, codes: np.ndarray, K: int,
                      relevance: str = "anova") -> np.ndarray:
    r"""The relevance :math:`q = f / \max_k f_k \in [0, 1]^n` of each feature (zeros if no
    feature is relevant), with :math:`f` the ANOVA F (:func:`anova_scores`), the Fisher score
    (:func:`affgraph.inffs.fisher_scores`) or the normalised mutual information
    (:func:`affgraph.inffs.mutual_info_scores`)."""
    from affgraph.inffs import fisher_scores, mutual_info_scores

    check_choice("relevance", relevance, RELEVANCES, what="relevance statistic")
    f = {"anova": anova_scores, "fisher": fisher_scores,
         "mi": mutual_info_scores}[relevance](X, codes, K)
    f = np.where(np.isfinite(f) & (f > 0), f, 0.0)
    top = float(f.max())
    return f / top if top > 0 else f


def relevance_affinity(X: np.ndarray, codes: np.ndarray, K: int, *, relevance: str = "anova",
                       correlation: str = "spearman", affinity: str = "product",
                       block: int = 4096, gemm_dtype: torch.dtype = torch.float32):
    r"""The ``"relevance"`` feature graph as an implicit operator
    (:class:`affgraph.inffs.FeatureAffinity`), in one of two forms:

    .. math::
        \text{product:}\quad a_{ij} = q_i q_j - \big|(q_i z_i)^\top (q_j z_j)\big|
            = q_i q_j (1 - |c_{ij}|),

    .. math::
        \text{max:}\quad a_{ij} = \tfrac12 \max(q_i, q_j) + \tfrac12 (1 - |c_{ij}|),

    with :math:`q` from :func:`relevance_weights` and :math:`Z` the rank (Spearman) or centred
    (Pearson) factor, :math:`c_{ij} = z_i^\top z_j`. Both are symmetric and non-negative; the
    product has a zero diagonal (:math:`c_{ii} = 1`, or :math:`q_i = 0` for a constant
    feature). The max form is the Inf-FS paper's graph with the relevance in place of the
    standard deviation (loading coefficient 1/2): a relevant feature is linked to every other,
    the product links two features only when both are relevant.

    Args:
        X (ndarray): ``[m, n]`` float64, finite.
        codes (ndarray): ``[m]`` class codes ``0..K-1``.
        K (int): number of classes.
        relevance (str): ``"anova"``, ``"fisher"`` or ``"mi"``. (default: ``"anova"``)
        correlation (str): ``"spearman"`` or ``"pearson"``. (default: ``"spearman"``)
        affinity (str): ``"product"`` or ``"max"``. (default: ``"product"``)
        block (int): tile size. (default: ``4096``)
        gemm_dtype (torch.dtype): dtype of the tiled products. (default: ``torch.float32``)
    """
    from affgraph.inffs import FeatureAffinity, _spearman_factor

    check_choice("correlation", correlation, CORRELATIONS, what="correlation")
    check_choice("affinity", affinity, AFFINITIES, what="affinity form")
    q = relevance_weights(X, codes, K, relevance)
    Z = _spearman_factor(X) if correlation == "spearman" else pearson_factor(X)
    n = X.shape[1]
    if affinity == "max":
        ones = np.ones(n)
        return FeatureAffinity(n, s=q, c_max=0.5, Z=Z, c_abs=-0.5, rank_one=[(0.5, ones, ones)],
                               block=block, gemm_dtype=gemm_dtype)
    return FeatureAffinity(n, Z=Z * q, c_abs=-1.0, rank_one=[(1.0, q, q)],
                           block=block, gemm_dtype=gemm_dtype)


# ----------------------------------------------------------------------------------------------
# the hop count by inner cross-validation
# ----------------------------------------------------------------------------------------------

def check_hop_grid(hop_grid: Sequence[Union[int, float]]) -> list:
    """A non-empty sequence of distinct hop counts (``int >= 1`` or ``math.inf``)."""
    if isinstance(hop_grid, (str, bytes)) or not hasattr(hop_grid, "__iter__"):
        raise TypeError(f"hop_grid must be a sequence of hop counts, got {hop_grid!r}")
    grid = list(hop_grid)
    if not grid:
        raise ValueError("hop_grid must not be empty")
    for h in grid:
        if isinstance(h, bool) or not (h == math.inf or (isinstance(h, numbers.Integral)
                                                          and h >= 1)):
            raise ValueError(f"hop_grid must hold ints >= 1 or math.inf, got {h!r}")
    if len(set(grid)) != len(grid):
        raise ValueError(f"hop_grid has repeated hop counts: {hop_grid!r}")
    return grid


def check_cv_ks(cv_ks: Union[int, Sequence[int]]) -> list:
    """One or more feature counts ``>= 1``."""
    ks = [cv_ks] if isinstance(cv_ks, numbers.Integral) and not isinstance(cv_ks, bool) \
        else (list(cv_ks) if hasattr(cv_ks, "__iter__") and not isinstance(cv_ks, str) else None)
    if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1
                     for k in ks):
        raise ValueError(f"cv_ks must be an int >= 1 or a non-empty sequence of them, got "
                         f"{cv_ks!r}")
    return [int(k) for k in ks]


def _ridge_accuracy(Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray
                    ) -> float:
    from sklearn.linear_model import RidgeClassifier

    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    clf = RidgeClassifier(alpha=1.0).fit((Xtr - mu) / sd, ytr)
    return float((clf.predict((Xva - mu) / sd) == yva).mean())


def choose_hops(X: np.ndarray, y: np.ndarray, *, hop_grid: Sequence[Union[int, float]]
                = DEFAULT_HOP_GRID, cv: int = 3, cv_ks: Union[int, Sequence[int]] = (10, 50),
                random_state: Optional[int] = None, **score_kw) -> tuple:
    r"""The hop count :math:`K` of the Inf-FS series chosen by inner cross-validation.

    The labelled data are split into ``cv`` stratified folds (shuffled with ``random_state``;
    in order when it is ``None``). On each split the scores of every :math:`K` in ``hop_grid``
    are computed on the inner training part (one affinity build,
    :func:`affgraph.inffs.inffs_scores` with ``score_kw``), and a ridge classifier
    (``sklearn.linear_model.RidgeClassifier(alpha=1)``, features standardised on the inner
    training part) is fit on its top :math:`k` features, for each :math:`k` of ``cv_ks``
    (capped at :math:`n`), and scored on the held-out part. The mean accuracy over splits and
    :math:`k`

    .. math::
        \mathrm{cv}(K) = \frac{1}{|\text{splits}|\,|\text{ks}|}
            \sum_{\text{splits}} \sum_{k} \mathrm{acc}\big(\text{top}_k(s^{(K)})\big)

    is maximised; ties go to the earliest :math:`K` of ``hop_grid``. Deterministic.

    Args:
        X (ndarray): ``[m, n]`` training samples.
        y (ndarray): ``[m]`` labels.
        hop_grid (sequence): candidate hop counts. (default: ``(1, 2, 3, 5, math.inf)``)
        cv (int): number of inner folds, ``>= 2``. (default: ``3``)
        cv_ks (int or sequence): feature counts scored. (default: ``(10, 50)``)
        random_state (int, optional): the inner folds' shuffle. (default: ``None``)
        **score_kw: the other arguments of :func:`affgraph.inffs.inffs_scores`.

    Returns:
        ``(best_hops, cv_scores)``: the chosen entry of ``hop_grid`` and the ``[len(hop_grid)]``
        mean accuracies.
    """
    from sklearn.model_selection import StratifiedKFold

    from affgraph.inffs import inffs_scores

    grid = check_hop_grid(hop_grid)
    check_positive_int("cv", cv)
    if cv < 2:
        raise ValueError(f"cv must be an int >= 2, got {cv!r}")
    ks = check_cv_ks(cv_ks)
    X = np.asarray(X, dtype=np.float64)
    y = np.unique(np.asarray(y), return_inverse=True)[1].reshape(-1)  # codes 0..K-1
    counts = np.bincount(y)
    if counts.max() < cv or X.shape[0] < 2 * cv:
        raise ValueError(f"cv={cv} inner folds need a class with at least {cv} samples and "
                         f"{2 * cv} samples in all; got class sizes {counts.tolist()}")
    folds = StratifiedKFold(cv, shuffle=random_state is not None,
                            random_state=random_state)
    n = X.shape[1]
    total = np.zeros(len(grid))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes smaller than cv
        splits = list(folds.split(X, y))
    for tr, va in splits:
        S = inffs_scores(X[tr], y[tr], hops=grid, **score_kw).numpy()
        seen: dict[bytes, float] = {}
        for g, s in enumerate(S):
            order = np.argsort(-s, kind="stable")
            for k in ks:
                cols = np.sort(order[:min(k, n)])
                key = cols.tobytes()
                if key not in seen:
                    seen[key] = _ridge_accuracy(X[tr][:, cols], y[tr], X[va][:, cols], y[va])
                total[g] += seen[key]
    cv_scores = total / (len(splits) * len(ks))
    return grid[int(np.argmax(cv_scores))], cv_scores
