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
from affgraph.relevance import AFFINITIES, DEFAULT_HOP_GRID, check_hop_grid, choose_hops

#: the variants that use the labels when ``supervised`` is ``None``
_SUPERVISED_BY_DEFAULT = ("relevance",)
#: the variants with a supervised graph
_SUPERVISED_OK = ("u2020", "fslib", "relevance")


class InfFS(SelectorMixin, BaseEstimator):
    r"""Infinite Feature Selection (Roffo, Melzi & Cristani, ICCV 2015; Roffo et al., TPAMI 2020).

    Ranks features by their Katz centrality in a feature-affinity graph,

    .. math::
        \mathbf{s} = \big((I - r A)^{-1} - I\big)\mathbf{1}
                   = \sum_{k \ge 1} r^k A^k \mathbf{1}, \qquad r = r_{\text{frac}} / \rho(A),

    and keeps the ``n_features_to_select`` best; see
    :func:`affgraph.functional.inffs_scores` for the variants and the affinities.

    ``variant="relevance"`` is the label-aware graph of :mod:`affgraph.relevance`,
    :math:`a_{ij} = q_i q_j (1 - |c_{ij}|)` (:math:`q` the ANOVA F, Fisher score or mutual
    information scaled to a largest value of 1, :math:`c` Spearman's or Pearson's
    correlation), and ``hops="cv"`` chooses the hop count :math:`K` among ``hop_grid`` by
    ``cv``-fold inner cross-validation on the data given to ``fit``
    (:func:`affgraph.relevance.choose_hops`): the mean accuracy of a ridge classifier on the
    top-:math:`k` features, :math:`k \in` ``cv_ks``,

    .. math::
        K^\star = \arg\max_{K \in \text{hop\_grid}} \frac{1}{\text{cv}\,|\text{ks}|}
            \sum_{\text{folds}} \sum_{k} \mathrm{acc}\big(\text{top}_k(\mathbf{s}^{(K)})\big),

    then scores all the data with :math:`K^\star` hops. ``affinity="cv"`` chooses the graph's
    form (``"product"`` or ``"max"``) the same way, jointly with :math:`K` when
    ``hops="cv"`` (ties go to the product, then to fewer hops).

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
        r_frac (float, optional): the decay as a fraction of :math:`1/\rho(A)`, in (0, 1)
            (the absolute decay is :math:`r = r_{\text{frac}}/\rho(A)`); ``None`` is the
            reference value, ``1 - 5e-6 * n_features`` for ``"u2020"`` and ``0.9`` otherwise
            (:func:`affgraph.inffs.default_r_frac`). (default: ``None``)
        hops (int, float or str): truncate the series after K hops (``1`` = degree ranking),
            ``math.inf``, or ``"cv"``: K chosen among ``hop_grid`` by inner cross-validation
            (needs labels). (default: ``math.inf``)
        knn (int, optional): keep each feature's ``knn`` strongest affinities (symmetrised).
        variant (str): ``"paper"``, ``"fslib"``, ``"u2020"`` or ``"relevance"``.
            (default: ``"paper"``)
        supervised (bool, optional): use ``y``: InfFS_S for ``"u2020"``, FSLib's Fisher graph
            for ``"fslib"``; ``"relevance"`` always does, ``"paper"`` never; ``None`` means
            ``True`` for ``"relevance"`` and ``False`` otherwise. (default: ``None``)
        relevance (str, optional): ``"anova"``, ``"fisher"`` or ``"mi"``, for
            ``variant="relevance"`` only; ``None`` means ``"anova"``. (default: ``None``)
        correlation (str, optional): ``"spearman"`` or ``"pearson"``, for
            ``variant="relevance"`` only; ``None`` means ``"spearman"``. (default: ``None``)
        affinity (str, optional): the form of the ``"relevance"`` graph (only there):
            ``"product"``, ``"max"`` (see :func:`affgraph.relevance.relevance_affinity`) or
            ``"cv"`` (chosen by the inner cross-validation); ``None`` means ``"product"``.
            (default: ``None``)
        hop_grid (sequence): the hop counts ``hops="cv"`` tries (ints ``>= 1`` or
            ``math.inf``). (default: ``(1, 2, 3, 5, math.inf)``)
        cv (int): its number of stratified inner folds, ``>= 2``. (default: ``3``)
        cv_ks (int or sequence, optional): the feature counts it scores; ``None`` means
            ``n_features_to_select`` when that is an int, else ``(10, 50)``.
            (default: ``None``)
        random_state (int, optional): the shuffle of the inner folds (``None``: unshuffled
            stratified folds); the choice is deterministic either way. (default: ``None``)

    Attributes:
        scores_ (ndarray): ``[n_features]`` scores, higher is better.
        ranking_ (ndarray): ``[n_features]`` rank of each feature, 1 = best (ties keep the
            feature order: a stable sort).
        n_features_to_select_ (int): the number of selected features.
        n_features_in_ (int): the number of features seen by ``fit``.
        hops_ (int or float): the hop count used (the chosen one with ``hops="cv"``).
        affinity_ (str or None): the form of the ``"relevance"`` graph used (the chosen one
            with ``affinity="cv"``), else ``None``.
        cv_scores_ (ndarray or None): the inner cross-validation accuracies: ``[len(hop_grid)]``
            with ``hops="cv"``, ``[2, len(hop_grid)]`` (rows: product, max) with
            ``affinity="cv"`` as well, ``[2, 1]`` with ``affinity="cv"`` alone; else ``None``.
    """

    def __init__(self, n_features_to_select: Optional[Union[int, float]] = None, *,
                 std_weight: Optional[float] = None,
                 term_weights: Optional[Sequence[float]] = None,
                 r_frac: Optional[float] = None, hops: Union[int, float, str] = math.inf,
                 knn: Optional[int] = None, variant: str = "paper",
                 supervised: Optional[bool] = None, relevance: Optional[str] = None,
                 correlation: Optional[str] = None, affinity: Optional[str] = None,
                 hop_grid: Sequence[Union[int, float]] = DEFAULT_HOP_GRID, cv: int = 3,
                 cv_ks: Optional[Union[int, Sequence[int]]] = None,
                 random_state: Optional[int] = None) -> None:
        self.n_features_to_select = n_features_to_select
        self.std_weight = std_weight
        self.term_weights = term_weights
        self.r_frac = r_frac
        self.hops = hops
        self.knn = knn
        self.variant = variant
        self.supervised = supervised
        self.relevance = relevance
        self.correlation = correlation
        self.affinity = affinity
        self.hop_grid = hop_grid
        self.cv = cv
        self.cv_ks = cv_ks
        self.random_state = random_state

    def _uses_labels(self) -> bool:
        if self.supervised is None:
            return self.variant in _SUPERVISED_BY_DEFAULT
        return bool(self.supervised)

    def fit(self, X, y=None) -> "InfFS":
        """Score and rank the features of ``X`` (``[n_samples, n_features]``)."""
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown Inf-FS variant {self.variant!r}; expected one of {VARIANTS}")
        sup = self._uses_labels()
        if sup and self.variant not in _SUPERVISED_OK:
            raise ValueError(f"supervised=True requires variant 'u2020' (InfFS_S), 'fslib' or "
                             f"'relevance'; variant={self.variant!r} is unsupervised")
        if not sup and self.variant in _SUPERVISED_BY_DEFAULT:
            raise ValueError(f"supervised=False: variant={self.variant!r} needs the labels")
        cv_mode = isinstance(self.hops, str)
        if cv_mode and self.hops != "cv":
            raise ValueError(f"hops must be an int >= 1, math.inf or 'cv', got {self.hops!r}")
        if cv_mode and not sup:
            raise ValueError("hops='cv' chooses the hop count with the labels: it needs "
                             "supervised=True (or variant='relevance')")
        if cv_mode:
            check_hop_grid(self.hop_grid)
        aff_cv = self.affinity == "cv"
        if aff_cv and self.variant != "relevance":
            raise ValueError("affinity='cv' applies to variant='relevance' only")
        if sup:
            if y is None:
                raise ValueError("supervised InfFS requires y to be passed, but the target y "
                                 "is None")
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2,
                                 ensure_min_features=2, y_numeric=False)
        else:
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2,
                              ensure_min_features=2)
        kw = dict(std_weight=self.std_weight, term_weights=self.term_weights,
                  r_frac=self.r_frac, knn=self.knn, variant=self.variant,
                  relevance=self.relevance, correlation=self.correlation,
                  affinity=self.affinity)
        self.cv_scores_ = None
        hops = self.hops
        if cv_mode or aff_cv:
            k = self.n_features_to_select
            cv_ks = self.cv_ks if self.cv_ks is not None else (
                k if isinstance(k, Integral) and not isinstance(k, bool) else (10, 50))
            grid = list(self.hop_grid) if cv_mode else [hops]
            forms = AFFINITIES if aff_cv else (self.affinity,)
            table = np.stack([choose_hops(X, y, hop_grid=grid, cv=self.cv, cv_ks=cv_ks,
                                          random_state=self.random_state,
                                          **dict(kw, affinity=f))[1] for f in forms])
            f, g = np.unravel_index(int(np.argmax(table)), table.shape)
            kw["affinity"], hops = forms[f], grid[g]
            self.cv_scores_ = table if aff_cv else table[0]
        scores = inffs_scores(X, y if sup else None, hops=hops, **kw).numpy()
        self.hops_ = hops
        self.affinity_ = (kw["affinity"] or "product") if self.variant == "relevance" else None
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
        tags.target_tags.required = self._uses_labels()
        return tags
