"""InfFS: Infinite Feature Selection as a scikit-learn feature selector."""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Optional, Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from affgraph.inffs import VARIANTS, inffs_scores, inffs_subset_size


class InfFS(SelectorMixin, BaseEstimator):
    r"""Infinite Feature Selection (Roffo, Melzi & Cristani, ICCV 2015; Roffo et al., TPAMI 2020).

    Ranks features by their Katz centrality in a feature-affinity graph,

    .. math::
        \mathbf{s} = \big((I - r A)^{-1} - I\big)\mathbf{1}
                   = \sum_{k \ge 1} r^k A^k \mathbf{1}, \qquad r = r_{\text{frac}} / \rho(A),

    and keeps the ``n_features_to_select`` best; see
    :func:`affgraph.functional.inffs_scores` for the variants and the affinities.

    Args:
        n_features_to_select (int, float or None): how many features to keep (all, with a
            warning, if it exceeds their number); a float in
            (0, 1] is a fraction of them; ``None`` keeps InfFS_U's automatic subset size for
            ``variant="u2020"`` and half the features otherwise. (default: ``None``)
        std_weight (float, optional): the weight :math:`w \in [0, 1]` of the
            standard-deviation term of the affinity, :math:`1 - w` on the other one (for
            ``"paper"``, :math:`a_{ij} = w \max(\tilde\sigma_i, \tilde\sigma_j)
            + (1 - w)(1 - |c_{ij}|)`, the paper's loading coefficient :math:`\alpha`; see
            :func:`affgraph.inffs.feature_affinity`), for every graph but the supervised one;
            ``None`` means ``0.5``. (default: ``None``)
        term_weights (3 floats, optional): the weights of the three terms of the supervised
            ``u2020`` graph (mutual information, Fisher score, standard deviation), only with
            ``supervised=True``; ``None`` means ``(0.5, 0.5, 0.5)``. (default: ``None``)
        r_frac (float): the decay as a fraction of :math:`1/\rho(A)`, in (0, 1) (the absolute
            decay is :math:`r = r_{\text{frac}}/\rho(A)`). (default: ``0.9``)
        hops (int or float): truncate the series after K hops (``1`` = degree ranking) or
            ``math.inf``. (default: ``math.inf``)
        knn (int, optional): keep each feature's ``knn`` strongest affinities (symmetrised).
        variant (str): ``"paper"``, ``"fslib"`` or ``"u2020"``. (default: ``"paper"``)
        supervised (bool): use ``y`` (InfFS_S); requires ``variant="u2020"``.
            (default: ``False``)

    Attributes:
        scores_ (ndarray): ``[n_features]`` scores, higher is better.
        ranking_ (ndarray): ``[n_features]`` rank of each feature, 1 = best (ties keep the
            feature order: a stable sort).
        n_features_to_select_ (int): the number of selected features.
        n_features_in_ (int): the number of features seen by ``fit``.
    """

    def __init__(self, n_features_to_select: Optional[Union[int, float]] = None, *,
                 std_weight: Optional[float] = None,
                 term_weights: Optional[Sequence[float]] = None, r_frac: float = 0.9,
                 hops: Union[int, float] = math.inf, knn: Optional[int] = None,
                 variant: str = "paper", supervised: bool = False) -> None:
        self.n_features_to_select = n_features_to_select
        self.std_weight = std_weight
        self.term_weights = term_weights
        self.r_frac = r_frac
        self.hops = hops
        self.knn = knn
        self.variant = variant
        self.supervised = supervised

    def fit(self, X, y=None) -> "InfFS":
        """Score and rank the features of ``X`` (``[n_samples, n_features]``)."""
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown Inf-FS variant {self.variant!r}; expected one of {VARIANTS}")
        if self.supervised and self.variant != "u2020":
            raise ValueError("supervised=True requires variant='u2020' (InfFS_S)")
        if self.supervised:
            if y is None:
                raise ValueError("supervised InfFS requires y to be passed, but the target y "
                                 "is None")
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                                 ensure_min_features=2, y_numeric=False)
        else:
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2,
                              ensure_min_features=2)
        scores = inffs_scores(X, y if self.supervised else None, std_weight=self.std_weight,
                              term_weights=self.term_weights, r_frac=self.r_frac,
                              hops=self.hops, knn=self.knn, variant=self.variant).numpy()
        n = scores.shape[0]
        order = np.argsort(-scores, kind="stable")
        ranking = np.empty(n, dtype=np.int64)
        ranking[order] = np.arange(1, n + 1)
        self.scores_ = scores
        self.ranking_ = ranking
        self.n_features_to_select_ = self._resolve_k(n, scores)
        return self

    def _resolve_k(self, n: int, scores: np.ndarray) -> int:
        k = self.n_features_to_select
        if k is None:
            return max(inffs_subset_size(scores), 1) if self.variant == "u2020" else max(n // 2, 1)
        if isinstance(k, Integral) and not isinstance(k, bool):
            if k < 1:
                raise ValueError(f"n_features_to_select={k} must be >= 1")
            if k > n:
                warnings.warn(f"n_features_to_select={k} is greater than n_features={n}; all "
                              "features are selected", UserWarning)
            return min(int(k), n)
        if isinstance(k, Real) and not isinstance(k, bool) and 0.0 < k <= 1.0:
            return max(int(k * n), 1)
        raise ValueError(f"n_features_to_select must be None, an int in [1, n_features] or a "
                         f"float in (0, 1], got {k!r}")

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        return self.ranking_ <= self.n_features_to_select_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = bool(self.supervised)
        return tags
