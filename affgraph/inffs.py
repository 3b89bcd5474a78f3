r"""Infinite Feature Selection: the Katz centrality of a feature-affinity graph.

The features of a data matrix :math:`X \in \mathbb{R}^{m \times n}` are the nodes of a
complete graph whose edge weights :math:`a_{ij}` say how much feature :math:`i` and feature
:math:`j` together are worth keeping; a feature's score sums the weights of all paths of all
lengths that start at it, decayed by :math:`r^k` (Roffo, Melzi & Cristani, "Infinite Feature
Selection", ICCV 2015):

.. math::
    \mathbf{s} = \sum_{k=1}^{\infty} r^k A^k \mathbf{1} = \big((I - rA)^{-1} - I\big)\mathbf{1},
    \qquad 0 < r < 1/\rho(A).

The affinity matrix is never required in memory: it is an implicit operator
(:class:`FeatureAffinity`) built from per-feature statistics and the rank-correlation factor
:math:`Z` (:math:`m \times n`), applied in tiles. The series is a Lanczos run
(:func:`affgraph.diffusion.katz_lanczos`) that finds :math:`\rho(A)` and solves the linear
system with the same applications of :math:`A`.
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Optional, Sequence, Union

import numpy as np
import scipy.stats
import torch
from torch import Tensor

from affgraph._checks import check_nonnegative_int, check_positive_int, check_positive_real
from affgraph.diffusion import diffuse, katz_lanczos, propagate, sparse_operator, spectral_radius
from affgraph.relevance import relevance_affinity

__all__ = ["VARIANTS", "FeatureAffinity", "feature_affinity", "inffs_scores",
           "inffs_subset_size", "fisher_scores", "mutual_info_scores", "default_r_frac"]

#: The Inf-FS variants of :func:`inffs_scores`.
VARIANTS = ("paper", "fslib", "u2020", "relevance")

ArrayLike = Union[np.ndarray, Tensor, Sequence]


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------

def _check_X(X: ArrayLike) -> np.ndarray:
    if isinstance(X, Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"X must be a numeric array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array [samples, features], got shape {X.shape}")
    m, n = X.shape
    if m < 2:
        raise ValueError(f"Inf-FS needs at least 2 samples, got {m} sample(s)")
    if n < 2:
        raise ValueError(f"Inf-FS needs at least 2 features, got {n} feature(s)")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or inf values")
    return X


def _encode_labels(y: ArrayLike, m: int) -> tuple[np.ndarray, int]:
    """Labels of any type (strings, {-1, 1}, 1..K, ...) -> codes 0..K-1 in sorted label order."""
    if isinstance(y, Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1 or y.shape[0] != m:
        raise ValueError(f"y must be a vector of {m} labels, got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError("y contains NaN or inf labels")
    try:
        _, codes = np.unique(y, return_inverse=True)
    except TypeError as e:
        raise TypeError(f"labels must be mutually comparable: {e}") from None
    K = int(codes.max()) + 1
    if K < 2:
        raise ValueError("supervised Inf-FS needs at least 2 classes, got 1 class")
    return codes.reshape(-1), K


def _minmax(v: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; a constant vector maps to zeros."""
    v = np.where(np.isfinite(v), v, 0.0)
    lo, hi = float(v.min()), float(v.max())
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)


def _spearman_factor(X: np.ndarray) -> np.ndarray:
    r"""Unit-norm centred ranks :math:`Z` with :math:`Z^\top Z` = Spearman's correlation.

    A constant feature gets a zero column: its correlation with everything (itself included)
    is 0, as the reference implementations set NaN correlations to 0."""
    R = scipy.stats.rankdata(np.ascontiguousarray(X.T), axis=1).T  # (contiguous: faster)
    R = R - R.mean(0)
    norm = np.sqrt((R * R).sum(0))
    return np.where(norm > 0, R / np.where(norm > 0, norm, 1.0), 0.0)


# ----------------------------------------------------------------------------------------------
# supervised per-feature statistics
# ----------------------------------------------------------------------------------------------

def fisher_scores(X: np.ndarray, codes: np.ndarray, K: int) -> np.ndarray:
    r"""Fisher class separation, averaged over class pairs.

    .. math::
        f_i = \binom{K}{2}^{-1} \sum_{a < b} \frac{(\mu_{a,i} - \mu_{b,i})^2}
              {\sigma_{a,i}^2 + \sigma_{b,i}^2}

    (unbiased variances; a zero denominator becomes 10000 and an undefined term 0, as in
    FSLib). For two classes this is exactly FSLib's / InfFS_S's score. The means and variances
    are taken of each column divided by its largest :math:`|x|` (the ratio is the same), so
    that no square underflows or overflows; the 10000 case is scaled back.
    """
    col = np.abs(X).max(0) if X.size else np.ones(X.shape[1])
    col = np.where(col > 0, col, 1.0)
    X = X / col
    with np.errstate(invalid="ignore", divide="ignore", under="ignore"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mus = [X[codes == c].mean(0) for c in range(K)]
        var = [X[codes == c].var(0, ddof=1) if (codes == c).sum() > 1
               else np.full(X.shape[1], np.nan) for c in range(K)]
        total = np.zeros(X.shape[1])
        for a in range(K):
            for b in range(a + 1, K):
                st = var[a] + var[b]
                zero = st == 0
                d2 = (mus[a] - mus[b]) ** 2
                f = np.where(zero, d2 * (col * col / 10000.0), d2 / np.where(zero, 1.0, st))
                total += np.where(np.isfinite(f), f, 0.0)
    return total / (K * (K - 1) / 2)


def mutual_info_scores(X: np.ndarray, codes: np.ndarray, K: int) -> np.ndarray:
    r"""Normalised mutual information between each (binned) feature and the labels.

    .. math::
        \mathrm{MI}_i = \frac{2 \sum_{c, b} p_{cb} \log \frac{p_{cb}}{p_b p_c}}{H(X_i) + H(Y)}

    with equal-width bins (``20`` if :math:`m/10 > 20`, else :math:`\max(\lfloor m/10
    \rfloor, 10)`) and empty cells set to ``1e-5`` as in InfFS_S's ``muteinf``, for any number
    of classes. A constant feature has mutual information 0.
    """
    m, n = X.shape
    nbins = 20 if m / 10 > 20 else int(max(math.floor(m / 10), 10))
    lo, hi = X.min(0), X.max(0)
    width = (hi - lo) / nbins
    const = width <= 0
    idx = np.floor((X - lo) / np.where(const, 1.0, width)).astype(np.int64)
    idx = np.clip(idx, 0, nbins - 1)
    flat = (codes[:, None] * n + np.arange(n)[None, :]) * nbins + idx
    joint = np.bincount(flat.ravel(), minlength=K * n * nbins).reshape(K, n, nbins)
    joint = joint.astype(np.float64)
    pA = joint.sum(0) / m
    pA[pA == 0] = 1e-5
    pY = np.bincount(codes, minlength=K) / m
    joint[joint == 0] = 1e-5
    joint /= m
    HA = -(pA * np.log(pA)).sum(1)
    HY = -(pY * np.log(pY)).sum()
    info = (joint * np.log(joint / (pA[None] * pY[:, None, None]))).sum((0, 2))
    mi = 2 * info / (HA + HY)
    mi[const] = 0.0
    return np.where(np.isfinite(mi), mi, 0.0)


# ----------------------------------------------------------------------------------------------
# the implicit affinity matrix
# ----------------------------------------------------------------------------------------------

def _default_store_bytes() -> int:
    """Half of the physical memory, at most 16 GiB (0 where the size is unknown)."""
    import os

    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return 0
    return int(min(phys // 2, 2 ** 34))


class FeatureAffinity:
    r"""An implicit :math:`n \times n` feature-affinity matrix, applied in tiles.

    .. math::
        A = c_{\max}\, [\max(s_i, s_j)]_{ij} + c_{|C|}\, |Z^\top Z| + c_C\, Z^\top Z
            + \sum_t \gamma_t\, u_t w_t^\top

    with per-feature values :math:`s`, the rank-correlation factor :math:`Z` (:math:`m \times
    n`) and rank-one terms. ``matvec`` costs :math:`O(n \log n)` for the max term (a sorted
    prefix sum), :math:`O(nm)` for the signed correlation and the rank-one terms, and
    :math:`O(n^2 m / 2)` for :math:`|Z^\top Z|`, computed in tiles of its upper triangle
    (each used for both triangles) in ``gemm_dtype``, of side :math:`t = \min(\text{block},
    1024)` (a float32 tile of 4 MB stays in cache between its product and its two uses).

    With :math:`d_i = \|z_i\|` and :math:`\hat z_i = z_i / d_i` (0 for a zero column),
    :math:`|Z^\top Z| = D\, |\hat Z^\top \hat Z|\, D` with entries of the middle factor in
    [0, 1]. The tiles of that factor formed by the first product are kept for the later ones
    while they fit in ``store_bytes``: in ``gemm_dtype`` when all of them fit (the products
    are then those of the recomputed tiles), otherwise, for ``gemm_dtype`` float32 (or
    below), as 16-bit fixed point :math:`q_{ij} = \mathrm{round}(65535\, |\hat z_i^\top \hat
    z_j|)` (absolute error at most :math:`1/131070 = 7.6\cdot10^{-6}`). Every product,
    the first included, uses the stored values, so all products apply the same matrix. A
    product then reads :math:`n^2` bytes instead of computing :math:`n^2 m` flops; tiles past
    the budget are recomputed at each product.

    Memory: after :meth:`dense`, :math:`8n^2` bytes (float64; 288 MB at :math:`n = 6000`);
    otherwise :math:`8nm` for :math:`Z` (12 bytes :math:`\cdot\,nm` with its
    ``gemm_dtype`` copies), one tile, and the stored tiles, at most ``store_bytes``
    (:math:`n(n + t)` bytes in 16 bits: 10.1 GB at :math:`n = 100{,}000`). 300,000
    features :math:`\times` 200 samples recompute most tiles in about 2 GB besides the
    budget, where the dense matrix would need 720 GB.

    Under ``torch.distributed`` (an initialised default process group) each rank takes every
    ``world_size``-th tile of the upper triangle (:func:`affgraph._dist.my_blocks`), forms and
    stores only those, and the partial products are summed over the ranks
    (:func:`affgraph._dist.all_reduce_sum`): every rank gets the same product, so the same
    scores, with the tile memory and flops split.

    Args:
        n (int): number of features.
        s (array, optional): ``[n]`` values of the max term.
        c_max (float): weight of the max term. (default: ``0.0``)
        Z (array, optional): ``[m, n]`` correlation factor.
        c_abs (float): weight of :math:`|Z^\top Z|`. (default: ``0.0``)
        c_corr (float): weight of :math:`Z^\top Z`. (default: ``0.0``)
        rank_one (sequence of (float, array, array)): terms :math:`(\gamma_t, u_t, w_t)`.
        symmetric (bool): whether :math:`A` is symmetric. (default: ``True``)
        block (int): row-block size of :meth:`dense` and :meth:`knn_graph`, and the largest
            tile side of the :math:`|Z^\top Z|` products, ``>= 1``. (default: ``4096``)
        gemm_dtype (torch.dtype): dtype of the tiled correlation products.
            (default: ``torch.float32``)
        store_bytes (int, optional): the most memory the stored tiles of this process may
            take, ``>= 0`` (``0``: recompute every tile at every product). ``None`` means half
            of the machine's physical memory, at most 16 GiB. (default: ``None``)
        store_dtype (torch.dtype, optional): ``torch.uint16`` (16-bit fixed point) or
            ``gemm_dtype`` for the stored tiles; ``None`` chooses as above.
            (default: ``None``)
    """

    #: the largest side of a |Z^T Z| tile (float32: 4 MB, in cache for its two products)
    _TILE = 1024
    #: the 16-bit fixed-point scale of the stored tiles
    _QSCALE = 65535.0

    def __init__(self, n: int, *, s: Optional[np.ndarray] = None, c_max: float = 0.0,
                 Z: Optional[np.ndarray] = None, c_abs: float = 0.0, c_corr: float = 0.0,
                 rank_one: Sequence[tuple[float, np.ndarray, np.ndarray]] = (),
                 symmetric: bool = True, block: int = 4096,
                 gemm_dtype: torch.dtype = torch.float32,
                 store_bytes: Optional[int] = None,
                 store_dtype: Optional[torch.dtype] = None) -> None:
        check_positive_int("block", block)
        if store_bytes is None:
            store_bytes = _default_store_bytes()
        check_nonnegative_int("store_bytes", store_bytes)
        if store_dtype is not None and store_dtype not in (torch.uint16, gemm_dtype):
            raise ValueError(f"store_dtype must be None, torch.uint16 or gemm_dtype "
                             f"({gemm_dtype}), got {store_dtype!r}")
        self.store_dtype = store_dtype
        self.n, self.c_max, self.c_abs, self.c_corr = n, c_max, c_abs, c_corr
        self.symmetric, self.block, self.gemm_dtype = symmetric, int(block), gemm_dtype
        self.store_bytes = int(store_bytes)
        self._abs_plan: Optional[list] = None  # this rank's |Z^T Z| tiles, built at first use
        t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
        self.s = t(s) if s is not None else None
        self.Z = t(Z) if Z is not None else None
        self.rank_one = [(float(g), t(u), t(w)) for g, u, w in rank_one]
        self._dense: Optional[Tensor] = None
        if self.s is not None:
            self._order = torch.argsort(self.s, stable=True)
            self._inverse = torch.empty_like(self._order)
            self._inverse[self._order] = torch.arange(n)
            self._s_sorted = self.s.index_select(0, self._order)

    # -- dense pieces ---------------------------------------------------------------------
    def tile(self, i0: int, i1: int, j0: int, j1: int,
             out: Optional[Tensor] = None) -> Tensor:
        """The block ``A[i0:i1, j0:j1]`` as a dense float64 tensor (written into ``out``)."""
        if out is None:
            out = torch.empty(i1 - i0, j1 - j0, dtype=torch.float64)
        if self.c_max:
            torch.maximum(self.s[i0:i1, None], self.s[None, j0:j1], out=out).mul_(self.c_max)
        else:
            out.zero_()
        for g, u, w in self.rank_one:
            out.addr_(u[i0:i1], w[j0:j1], alpha=g)
        if self.c_abs or self.c_corr:
            C = self.Z[:, i0:i1].T @ self.Z[:, j0:j1]
            if self.c_corr:
                out.add_(C, alpha=self.c_corr)
            if self.c_abs:
                out.add_(C.abs_(), alpha=self.c_abs)
        return out

    def rows(self, i0: int, i1: int) -> Tensor:
        """Rows ``i0:i1`` of :math:`A` as a dense float64 ``[i1 - i0, n]`` tensor."""
        return self.tile(i0, i1, 0, self.n)

    def entries(self, i: Tensor, j: Tensor) -> Tensor:
        """The entries :math:`a_{i_e j_e}` for index vectors ``i``, ``j``."""
        out = torch.zeros(i.numel(), dtype=torch.float64)
        if self.c_max:
            out += self.c_max * torch.maximum(self.s[i], self.s[j])
        for g, u, w in self.rank_one:
            out += g * u[i] * w[j]
        if self.c_abs or self.c_corr:
            C = (self.Z[:, i] * self.Z[:, j]).sum(0)
            out += self.c_corr * C + self.c_abs * C.abs()
        return out

    def dense(self) -> Tensor:
        """The full matrix (built once in tiles, the upper triangle mirrored when symmetric, and
        cached): :math:`8n^2` bytes."""
        if self._dense is None:
            A = torch.empty(self.n, self.n, dtype=torch.float64)
            b = self.block
            for i0 in range(0, self.n, b):
                i1 = min(i0 + b, self.n)
                if not self.symmetric:
                    self.tile(i0, i1, 0, self.n, out=A[i0:i1])
                    continue
                for j0 in range(i0, self.n, b):  # upper triangle of tiles, mirrored
                    j1 = min(j0 + b, self.n)
                    T = self.tile(i0, i1, j0, j1, out=A[i0:i1, j0:j1])
                    if j0 != i0:
                        A[j0:j1, i0:i1] = T.T
            self._dense = A
        return self._dense

    # -- products -------------------------------------------------------------------------
    def _max_matvec(self, v: Tensor) -> Tensor:
        # sum_j max(s_i, s_j) v_j = s_i * sum_{s_j <= s_i} v_j + sum_{s_j > s_i} s_j v_j
        vs = v.index_select(0, self._order)  # (index_select: fancy indexing is far slower)
        cv = torch.cumsum(vs, 0)
        csv = torch.cumsum(self._s_sorted * vs, 0)
        res = self._s_sorted * cv + (csv[-1] - csv)
        return res.index_select(0, self._inverse)

    def _abs_setup(self) -> None:
        """The unit columns in ``gemm_dtype`` (both layouts) and this rank's tiles."""
        from affgraph._dist import my_blocks

        d = self.Z.norm(dim=0)
        self._znorm = d
        Zn = torch.where(d > 0, self.Z / torch.where(d > 0, d, 1.0), 0.0)
        self._Zt = Zn.T.to(self.gemm_dtype).contiguous()  # [n, m]: rows of the left factor
        self._Zg = Zn.to(self.gemm_dtype).contiguous()  # [m, n]
        t = min(self.block, self._TILE)
        starts = range(0, self.n, t)
        tiles = [(i0, min(i0 + t, self.n), j0, min(j0 + t, self.n))
                 for i0 in starts for j0 in starts if j0 >= i0]
        self._abs_plan = my_blocks(tiles)
        dt = self.store_dtype
        if dt is None:  # gemm_dtype when all fit, else 16 bits for float32 and below
            cells = sum((i1 - i0) * (j1 - j0) for i0, i1, j0, j1 in self._abs_plan)
            fits = cells * self.gemm_dtype.itemsize <= self.store_bytes
            dt = self.gemm_dtype if fits or self.gemm_dtype.itemsize >= 8 else torch.uint16
        self._quantise = dt == torch.uint16
        self._store_dtype = dt
        self._stored: list[Optional[Tensor]] = []  # filled by the first product
        self._store_left = self.store_bytes

    def _abs_tile(self, k: int, buf: Tensor) -> tuple[Tensor, bool]:
        r"""Tile ``k`` of this rank's plan, :math:`|\hat Z^\top \hat Z|` (times 65535 when
        quantised), from the store or formed now (and stored while the budget lasts)."""
        i0, i1, j0, j1 = self._abs_plan[k]
        T = buf[:i1 - i0, :j1 - j0]
        if k < len(self._stored):
            q = self._stored[k]
            if q is None:  # past the budget: recomputed
                torch.mm(self._Zt[i0:i1], self._Zg[:, j0:j1], out=T)
                return T.abs_(), False
            return (T.copy_(q), True) if self._quantise else (q, False)
        torch.mm(self._Zt[i0:i1], self._Zg[:, j0:j1], out=T)
        T.abs_()
        nbytes = T.numel() * self._store_dtype.itemsize
        if nbytes > self._store_left:
            self._stored.append(None)
            return T, False
        self._store_left -= nbytes
        if self._quantise:
            T.clamp_(max=1.0).mul_(self._QSCALE).round_()  # exact integers in float32
        q = T.to(self._store_dtype, copy=True)
        self._stored.append(q)
        return (T, True) if self._quantise else (q, False)  # (the layout of later products)

    def _abs_matvec(self, v: Tensor) -> Tensor:
        r""":math:`|Z^\top Z|\, v` over this rank's tiles, summed over the ranks."""
        from affgraph._dist import all_reduce_sum

        if self._abs_plan is None:
            self._abs_setup()
        d = self._znorm
        u = (v * d).to(self.gemm_dtype)
        exact = torch.zeros(self.n, dtype=torch.float64)
        fixed = torch.zeros(self.n, dtype=torch.float64)  # sums of 65535 |rho|
        t = min(self.block, self._TILE)
        buf = torch.empty(t, t, dtype=self.gemm_dtype)
        for k, (i0, i1, j0, j1) in enumerate(self._abs_plan):
            T, q = self._abs_tile(k, buf)
            acc = fixed if q else exact
            acc[i0:i1] += torch.mv(T, u[j0:j1]).double()
            if j0 != i0:
                acc[j0:j1] += torch.mv(T.T, u[i0:i1]).double()
        out = exact.add_(fixed, alpha=1.0 / self._QSCALE)
        return all_reduce_sum(out).mul_(d)

    def matvec(self, v: Tensor) -> Tensor:
        r""":math:`A v` for a float64 ``[n]`` vector."""
        if self._dense is not None:
            return self._dense @ v
        out = torch.zeros(self.n, dtype=torch.float64)
        if self.c_max:
            out += self.c_max * self._max_matvec(v)
        for g, u, w in self.rank_one:
            out += g * u * (w @ v)
        if self.c_corr:
            out += self.c_corr * (self.Z.T @ (self.Z @ v))
        if self.c_abs:
            out += self.c_abs * self._abs_matvec(v)
        return out

    def knn_graph(self, k: int) -> tuple[Tensor, Tensor]:
        r"""Each feature's ``k`` strongest off-diagonal affinities, symmetrised (an edge is kept
        when either end chose it), plus the diagonal: ``(edge_index, edge_weight)`` with
        ``edge_index[1]`` the row :math:`i`, ``edge_index[0]`` the column :math:`j`. Built in
        row blocks: :math:`O(\text{block} \cdot n)` memory."""
        k = min(k, self.n - 1)
        rows, cols = [], []
        for i0 in range(0, self.n, self.block):
            i1 = min(i0 + self.block, self.n)
            R = self.rows(i0, i1)
            R[torch.arange(i1 - i0), torch.arange(i0, i1)] = -math.inf
            top = torch.topk(R, k, dim=1, sorted=False).indices
            rows.append(torch.arange(i0, i1).repeat_interleave(k))
            cols.append(top.reshape(-1))
        i = torch.cat(rows + cols + [torch.arange(self.n)])
        j = torch.cat(cols + rows + [torch.arange(self.n)])
        key = torch.unique(i * self.n + j)
        i, j = key // self.n, key % self.n
        w = self.entries(i, j)
        keep = w != 0
        return torch.stack([j[keep], i[keep]]), w[keep]


def _check_term_weights(term_weights: Sequence[float]) -> np.ndarray:
    try:
        a = np.asarray(term_weights, dtype=np.float64)
    except (TypeError, ValueError):
        a = None
    if a is None or a.shape != (3,) or not np.isfinite(a).all() or (a < 0).any():
        raise ValueError(f"term_weights must be 3 finite non-negative weights, got "
                         f"{term_weights!r}")
    return a


def feature_affinity(X: ArrayLike, y: Optional[ArrayLike] = None, *,
                     std_weight: Optional[float] = None,
                     term_weights: Optional[Sequence[float]] = None, variant: str = "paper",
                     block: int = 4096, gemm_dtype: torch.dtype = torch.float32,
                     relevance: Optional[str] = None, correlation: Optional[str] = None,
                     affinity: Optional[str] = None) -> FeatureAffinity:
    r"""The feature-affinity matrix of an Inf-FS variant, as an implicit operator.

    With :math:`\sigma` the unbiased standard deviations, :math:`\tilde\sigma` their min-max
    scaling to [0, 1], :math:`c_{ij}` Spearman's rank correlation (0 where undefined):

    .. math::
        \text{paper, u2020:}\quad a_{ij} = w \max(\tilde\sigma_i, \tilde\sigma_j)
            + (1 - w)(1 - |c_{ij}|)

    .. math::
        \text{fslib:}\quad a_{ij} = w \max(\tilde\sigma_i, \tilde\sigma_j) + (1 - w)\, c_{ij}
        \qquad \text{(with } y\text{: } c_{ij} \to \text{minmax}(f_i f_j) \text{, Fisher } f)

    .. math::
        \text{u2020 with } y:\quad a_{ij} = a_1 \frac{\mathrm{mi}_j + f_i}{2}
            + a_2 \frac{\mathrm{mi}_j + \tilde\sigma_{ij}}{2}
            + a_3 \frac{\tilde\sigma_{ij} + f_i}{2}

    .. math::
        \text{relevance (needs } y\text{):}\quad a_{ij} = q_i\, q_j\, (1 - |c_{ij}|),
        \qquad q = f / \max_k f_k

    where :math:`w` is ``std_weight`` (the weight of the standard-deviation term, the
    paper's loading coefficient :math:`\alpha`), :math:`(a_1, a_2, a_3)` are ``term_weights``,
    :math:`\tilde\sigma_{ij} = \max(\tilde\sigma_i, \tilde\sigma_j)` and
    :math:`\mathrm{mi}`, :math:`f` are the min-max scaled :func:`mutual_info_scores` and
    :func:`fisher_scores` (this matrix is not symmetric). ``fslib`` follows the PyPI port
    ``PyIFS`` of FSLib's ``infFS.m`` (signed correlation; PyIFS's ``alpha`` weighs the
    correlation term and equals ``1 - std_weight``); ``u2020`` is InfFS_U / InfFS_S (Roffo et
    al., TPAMI 2020); ``relevance`` is affgraph's label-aware graph
    (:func:`affgraph.relevance.relevance_affinity`: :math:`f` the ANOVA F, Fisher score or
    mutual information, :math:`c_{ij}` Spearman's or Pearson's correlation).

    FSLib v4.0 ships two revisions of ``infFS.m``, both ``A = alpha*corr_ij +
    (1-alpha)*sigma_ij`` (``alpha`` weighs the correlation term, so ``std_weight = 1 -
    alpha``). ``fslib`` is the first (signed Spearman :math:`c_{ij}`, labels
    :math:`\pm 1`, :math:`r = 0.9/\lambda_{\max}`: what PyIFS ports). The second uses
    :math:`1 - |c_{ij}|`, labels 0/1 and :math:`r = 0.99/\lambda_{\max}(A + \epsilon)`
    (:math:`\epsilon` = 2.2e-16 added to every entry, which moves :math:`\lambda_{\max}` by
    at most :math:`n\epsilon`); its scores are those of ``variant="paper"`` (unsupervised) or
    ``variant="fslib"`` with ``y`` (its supervised graph is the first revision's) with
    ``std_weight = 1 - alpha`` and ``r_frac = 0.99``. InfFS_U (``u2020``) instead weighs the
    standard deviation by its ``alpha``: ``std_weight = alpha``.

    Args:
        X (array or Tensor): ``[m, n]`` samples x features, finite, :math:`m, n \ge 2`.
        y (array, optional): ``[m]`` labels (supervised variants).
        std_weight (float, optional): :math:`w \in [0, 1]`, for every graph but the supervised
            ``u2020`` one; ``None`` means ``0.5``. (default: ``None``)
        term_weights (3 floats, optional): :math:`(a_1, a_2, a_3)`, finite and non-negative,
            for the supervised ``u2020`` graph only; ``None`` means ``(0.5, 0.5, 0.5)``.
            (default: ``None``)
        variant (str): ``"paper"``, ``"fslib"``, ``"u2020"`` or ``"relevance"``.
            (default: ``"paper"``)
        block (int): tile size of the blocked products, ``>= 1``. (default: ``4096``)
        gemm_dtype (torch.dtype): dtype of the tiled correlation products.
            (default: ``torch.float32``)
        relevance (str, optional): the relevance :math:`f` of ``variant="relevance"`` (only
            there): ``"anova"``, ``"fisher"`` or ``"mi"``; ``None`` means ``"anova"``.
            (default: ``None``)
        correlation (str, optional): its correlation :math:`c` (only there): ``"spearman"``
            or ``"pearson"``; ``None`` means ``"spearman"``. (default: ``None``)
        affinity (str, optional): its form (only there): ``"product"`` (above) or ``"max"``,
            :math:`a_{ij} = \frac12 \max(q_i, q_j) + \frac12 (1 - |c_{ij}|)`; ``None`` means
            ``"product"``. (default: ``None``)
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown Inf-FS variant {variant!r}; expected one of {VARIANTS}")
    check_positive_int("block", block)
    if variant != "relevance":
        for name, value in (("relevance", relevance), ("correlation", correlation),
                            ("affinity", affinity)):
            if value is not None:
                raise ValueError(f"{name}={value!r} applies to variant='relevance' only")
    X = _check_X(X)
    m, n = X.shape
    sup = y is not None
    if sup:
        codes, K = _encode_labels(y, m)
    if variant == "relevance":
        if not sup:
            raise ValueError("variant='relevance' ranks by relevance to the labels: pass y")
        for name, value in (("std_weight", std_weight), ("term_weights", term_weights)):
            if value is not None:
                raise ValueError(f"{name}={value!r} does not apply to variant='relevance'; "
                                 "choose its relevance and correlation instead")
        return relevance_affinity(X, codes, K, relevance=relevance or "anova",
                                  correlation=correlation or "spearman",
                                  affinity=affinity or "product", block=block,
                                  gemm_dtype=gemm_dtype)
    if sup and variant == "u2020":
        if std_weight is not None:
            raise ValueError(f"std_weight={std_weight!r} does not apply to the supervised "
                             "'u2020' graph (InfFS_S); weigh its three terms with term_weights")
        a = _check_term_weights((0.5, 0.5, 0.5) if term_weights is None else term_weights)
    else:
        if term_weights is not None:
            raise ValueError(f"term_weights={term_weights!r} applies to the supervised 'u2020' "
                             "graph (InfFS_S) only; use std_weight here")
        w = 0.5 if std_weight is None else std_weight  # the paper's loading coefficient
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not 0.0 <= w <= 1.0:
            raise ValueError(f"std_weight must be a number in [0, 1], got {std_weight!r}")
        w = float(w)
    # the standard deviations of the columns scaled to a largest |entry| of 1, scaled back:
    # no square underflows or overflows (columns of magnitude 1e-200 or 1e160 in float64)
    col = np.abs(X).max(0)
    col = np.where(col > 0, col, 1.0)
    sig = _minmax(col * (X / col).std(0, ddof=1))
    ones = np.ones(n)
    kw = dict(block=block, gemm_dtype=gemm_dtype)
    if variant in ("paper", "u2020") and not sup:
        return FeatureAffinity(n, s=sig, c_max=w, Z=_spearman_factor(X), c_abs=-(1 - w),
                               rank_one=[(1 - w, ones, ones)], **kw)
    if variant == "paper":
        raise ValueError("variant='paper' is unsupervised; use variant='u2020' (InfFS_S) or "
                         "'fslib' with labels")
    if variant == "fslib" and not sup:
        return FeatureAffinity(n, s=sig, c_max=w, Z=_spearman_factor(X), c_corr=1 - w,
                               **kw)
    f = fisher_scores(X, codes, K)
    if variant == "fslib":
        lo, hi = float(f.min()) ** 2, float(f.max()) ** 2
        c = 1 - w  # the weight of the Fisher-product term
        terms = [] if hi <= lo else [(c / (hi - lo), f, f), (-c * lo / (hi - lo), ones, ones)]
        return FeatureAffinity(n, s=sig, c_max=w, rank_one=terms, **kw)
    mi = _minmax(mutual_info_scores(X, codes, K))
    f = _minmax(f)
    return FeatureAffinity(n, s=sig, c_max=(a[1] + a[2]) / 2,
                           rank_one=[((a[0] + a[1]) / 2, ones, mi), ((a[0] + a[2]) / 2, f, ones)],
                           symmetric=False, **kw)


# ----------------------------------------------------------------------------------------------
# scores
# ----------------------------------------------------------------------------------------------

def inffs_scores(X: ArrayLike, y: Optional[ArrayLike] = None, *,
                 std_weight: Optional[float] = None,
                 term_weights: Optional[Sequence[float]] = None,
                 r_frac: Optional[float] = None,
                 hops: Union[int, float, Sequence[Union[int, float]]] = math.inf,
                 knn: Optional[int] = None, variant: str = "paper",
                 max_dense_bytes: int = 2 ** 30, block: int = 4096,
                 tol: float = 1e-10, relevance: Optional[str] = None,
                 correlation: Optional[str] = None, affinity: Optional[str] = None) -> Tensor:
    r"""Inf-FS feature scores (higher = more relevant).

    .. math::
        \mathbf{s} = \sum_{k=1}^{K} r^k A^k \mathbf{1}
        \ \xrightarrow{K \to \infty}\ \big((I - r A)^{-1} - I\big)\mathbf{1}, \qquad
        r = r_{\text{frac}} / \rho,

    with :math:`A` from :func:`feature_affinity` and the decay :math:`r` given as the
    fraction :math:`r_{\text{frac}} \in (0, 1)` of :math:`1/\rho` (the absolute decay ``r`` of
    :func:`affgraph.diffusion.diffuse` is :math:`r_{\text{frac}}/\rho`): for ``"paper"`` and
    ``"fslib"`` :math:`\rho` is the largest eigenvalue of :math:`A` (the Perron root;
    ``PyIFS`` uses ``max(eigvals(A))``), found by the same Lanczos run that solves the system
    (:func:`affgraph.diffusion.katz_lanczos`); for ``"u2020"`` :math:`A` is first divided by
    its largest row sum :math:`\rho` plus :math:`\epsilon = 5\cdot10^{-6} n` and the decay is
    :math:`r_{\text{frac}}/\rho`. The default ``r_frac=None`` is the reference code's decay
    (:func:`default_r_frac`): :math:`1 - \epsilon` for ``"u2020"``, where the 2020 code's
    scores :math:`\big(I - r\hat A\big)^{-1}\mathbf{1}` are then exactly ours plus 1 (it
    keeps the :math:`k = 0` term; no ranking changes), and :math:`0.9` for the others.

    ``hops=K`` truncates the series (``K=1`` ranks by weighted degree); a sequence of hop
    counts gives one row of scores per entry from one build of the affinity (each row equal to
    the call with that single ``hops``); ``knn=k`` keeps each
    feature's ``k`` strongest affinities (symmetrised) and diffuses on that sparse graph, with
    :math:`\rho` its spectral radius. ``y`` switches ``"u2020"`` to InfFS_S (mutual
    information, Fisher score, standard deviation, weighed by ``term_weights``; any number of
    classes, labels of any type) and ``"fslib"`` to FSLib's supervised graph;
    ``"relevance"`` needs ``y`` (:func:`affgraph.relevance.relevance_affinity`).

    Memory and time: affinities with the :math:`|c_{ij}|` term (``paper``, ``u2020``
    unsupervised) are built once in float64 up to ``max_dense_bytes`` (default 1 GiB, i.e.
    :math:`n \le 11585`; :math:`8n^2` bytes, :math:`O(n^2 m)` time); beyond, the
    :math:`|c_{ij}|` tiles formed by the first product are kept for the later ones while they
    fit in half the physical memory (at most 16 GiB; float32 when all fit, else 16-bit fixed
    point with :math:`|c_{ij}|` error :math:`\le 7.6 \cdot 10^{-6}`) and the rest recomputed
    at each product (see :class:`FeatureAffinity`); under ``torch.distributed`` the tiles are
    split across the ranks and every rank gets the same scores. The other affinities (signed correlation, rank-one and max
    terms) are applied in :math:`O(nm + n \log n)` per product without any :math:`n^2` memory.
    The solve stops at relative residual ``tol``.

    Args:
        X (array or Tensor): ``[m, n]`` samples x features, finite, :math:`m, n \ge 2`.
        y (array, optional): ``[m]`` labels (supervised variants).
        std_weight (float, optional): the weight :math:`w \in [0, 1]` of the
            standard-deviation term of :func:`feature_affinity` (the paper's :math:`\alpha`;
            not for the supervised ``u2020`` graph); ``None`` means ``0.5``.
            (default: ``None``)
        term_weights (3 floats, optional): the weights of the three terms of the supervised
            ``u2020`` graph (only there); ``None`` means ``(0.5, 0.5, 0.5)``.
            (default: ``None``)
        r_frac (float, optional): the decay as a fraction of :math:`1/\rho`, in (0, 1);
            ``None`` is :func:`default_r_frac` (``1 - 5e-6 * n`` for ``"u2020"``, ``0.9``
            otherwise). (default: ``None``)
        hops (int, float or sequence): :math:`K \ge 1` or ``math.inf``, or a sequence of
            them. (default: ``math.inf``)
        knn (int, optional): keep the ``knn`` strongest affinities per feature.
        variant (str): ``"paper"``, ``"fslib"``, ``"u2020"`` or ``"relevance"`` (labels
            required). (default: ``"paper"``)
        max_dense_bytes (int): the largest dense matrix to build, ``>= 0``.
            (default: ``2**30``)
        block (int): tile size of the blocked products, ``>= 1``. (default: ``4096``)
        tol (float): relative residual of the solve, finite and ``> 0``. (default: ``1e-10``)
        relevance (str, optional): ``"anova"``, ``"fisher"`` or ``"mi"``, for
            ``variant="relevance"`` only (see :func:`feature_affinity`). (default: ``None``)
        correlation (str, optional): ``"spearman"`` or ``"pearson"``, for
            ``variant="relevance"`` only. (default: ``None``)
        affinity (str, optional): ``"product"`` or ``"max"``, for ``variant="relevance"``
            only. (default: ``None``)

    Returns:
        float64 tensor ``[n]`` of scores (``[len(hops), n]`` for a sequence of hops).
    """
    many = isinstance(hops, (list, tuple, np.ndarray, Tensor))
    hop_list = list(hops.tolist() if isinstance(hops, (np.ndarray, Tensor)) else hops) \
        if many else [hops]
    if many and not hop_list:
        raise ValueError("hops must not be an empty sequence")
    for h in hop_list:
        if isinstance(h, bool) or not (h == math.inf
                                       or (isinstance(h, numbers.Integral) and h >= 1)):
            raise ValueError(f"hops must be an int >= 1 or math.inf, got {h!r}")
    if r_frac is not None and (isinstance(r_frac, bool) or not isinstance(r_frac, (int, float))
                               or not 0.0 < r_frac < 1.0):
        raise ValueError(f"r_frac = {r_frac!r} must lie in (0, 1): it is the decay as a fraction "
                         "of 1/rho(A), and at or above 1/rho(A) the series diverges")
    if knn is not None and (isinstance(knn, bool) or not isinstance(knn, numbers.Integral)
                            or knn < 1):
        raise ValueError(f"knn must be a positive int, got {knn!r}")
    check_positive_int("block", block)
    check_nonnegative_int("max_dense_bytes", max_dense_bytes)
    check_positive_real("tol", tol)
    A = feature_affinity(X, y, std_weight=std_weight, term_weights=term_weights,
                         variant=variant, block=block, relevance=relevance,
                         correlation=correlation, affinity=affinity)
    n = A.n
    if r_frac is None:
        r_frac = default_r_frac(variant, n)
    ones = torch.ones(n, dtype=torch.float64)
    with torch.no_grad():
        if knn is not None:
            ei, w = A.knn_graph(knn)
            if variant == "u2020":
                rowmax = float(torch.zeros(n, dtype=torch.float64).index_add_(0, ei[1], w).max())
                op = sparse_operator(ei, w, n)
                out = [_u2020(op, rowmax, n, r_frac, h, A.symmetric, tol) for h in hop_list]
            else:
                rho = spectral_radius(ei, w, n, symmetric=A.symmetric)
                if rho == 0:
                    raise ValueError("the kNN feature graph has no edges (rho(A) = 0)")
                out = [diffuse(ones, ei, w, hops=h, coeffs="katz", r=r_frac / rho, tol=tol)
                       for h in hop_list]
        else:
            if A.c_abs and 8 * n * n <= max_dense_bytes:  # only |Z^T Z| costs O(n^2 m)/product
                A.dense()
            if variant == "u2020":
                rowmax = float(A.matvec(ones).max())
                out = [_u2020(A.matvec, rowmax, n, r_frac, h, A.symmetric, tol)
                       for h in hop_list]
            else:
                out = [katz_lanczos(A.matvec, ones, r_frac=r_frac, hops=h, tol=tol)[0]
                       for h in hop_list]
    return torch.stack(out) if many else out[0]


def default_r_frac(variant: str, n: int) -> float:
    r"""The default decay fraction :math:`r_{\text{frac}}` of an Inf-FS variant on :math:`n`
    features: the reference code's :math:`1 - 5\cdot10^{-6} n` for ``"u2020"`` (InfFS_U /
    InfFS_S: ``factor = 1 - eps``), :math:`0.9` otherwise (the ICCV 2015 paper, FSLib's
    ``infFS.m`` revision with signed correlations, PyIFS).

    Raises:
        ValueError: for ``"u2020"`` with :math:`n \ge 200000`, where the reference decay is
            not positive (pass ``r_frac``).
    """
    if variant != "u2020":
        return 0.9
    r_frac = 1.0 - 5e-6 * n
    if r_frac <= 0.0:
        raise ValueError(f"r_frac: the u2020 reference decay 1 - 5e-6 * n is {r_frac!r} <= 0 "
                         f"for n = {n} features; pass r_frac in (0, 1)")
    return r_frac


def _u2020(apply_A, rowmax: float, n: int, r_frac: float, hops, symmetric: bool,
           tol: float) -> Tensor:
    if rowmax <= 0:
        raise ValueError("the feature graph has no edges (all affinities are 0)")
    eps = 5e-6 * n
    scale = 1.0 / (rowmax + eps)  # substochastic rescaling: rho(scale * A) < 1
    return propagate(lambda v: scale * apply_A(v), torch.ones(n, dtype=torch.float64),
                     hops=hops, coeffs="katz", r=r_frac / rowmax, rho=rowmax * scale,
                     symmetric=symmetric, tol=tol)


def inffs_subset_size(scores: ArrayLike) -> int:
    r"""InfFS_U's automatic subset size: with a histogram of the scores in
    :math:`\lfloor n/2 \rfloor` bins, the number of bins holding more than the mean count."""
    s = np.asarray(scores.detach().cpu() if isinstance(scores, Tensor) else scores, np.float64)
    nbins = max(int(0.5 * s.size), 1)
    counts = np.histogram(s, nbins)[0]
    return int((counts > counts.mean()).sum())
