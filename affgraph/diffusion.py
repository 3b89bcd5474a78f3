r"""Multi-hop diffusion over an affinity graph: :math:`\sum_k \theta_k A^k x`.

One hop of message passing applies an affinity matrix :math:`A` to node (or feature) signals;
K hops apply it K times and mix the results with coefficients :math:`\theta_0..\theta_K`
(APPNP, SGC, GPR-GNN, heat kernels); infinitely many hops are the closed form of the series, a
linear solve (Katz centrality, Inf-FS, personalised PageRank). :math:`A^k` is never formed:
:math:`A` is only ever applied to a signal, through a callable ``apply_A(x) = A x``.

Conventions: ``edge_index[0]`` is the source :math:`j`, ``edge_index[1]`` the target :math:`i`,
row :math:`i` of :math:`A` holds the incoming edges of :math:`i` (PyG's ``source_to_target``).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Optional, Tuple, Union

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from torch import Tensor

from affgraph._checks import check_edge_index, check_tensor

__all__ = ["coefficients", "family_params", "propagate", "diffuse", "DiffusionGraph",
           "sparse_operator", "spectral_radius", "spectral_radius_dense", "spectral_radius_op",
           "solve_linear", "katz_lanczos", "COEFF_KINDS"]

#: The named coefficient families of :func:`coefficients`.
COEFF_KINDS = ("katz", "inffs", "ppr", "heat", "uniform", "power")

ApplyA = Callable[[Tensor], Tensor]


def _check_hops(hops: Union[int, float]) -> None:
    if isinstance(hops, bool) or not isinstance(hops, (numbers.Integral, float)):
        raise TypeError(f"hops must be a non-negative int or math.inf, got {type(hops).__name__}")
    if isinstance(hops, float) and hops != math.inf:
        raise TypeError(f"hops must be a non-negative int or math.inf, got {hops!r}")
    if hops < 0:
        raise ValueError(f"hops must be >= 0, got {hops}")


def _check_kind(kind: str) -> str:
    if kind not in COEFF_KINDS:
        raise ValueError(f"coeffs: unknown coefficient family {kind!r}; expected one of "
                         f"{COEFF_KINDS} or a tensor of coefficients")
    return kind


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not (isinstance(alpha, (int, float)) and 0.0 < alpha <= 1.0):
        raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")


def _check_positive(name: str, v: float) -> None:
    if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite positive number, got {v!r}")


#: which family each of the parameters ``alpha``, ``r``, ``t`` belongs to
_PARAM_FAMILIES = {"alpha": ("ppr",), "r": ("katz", "inffs"), "t": ("heat",)}


def family_params(coeffs: Union[str, Tensor], *, alpha: Optional[float] = None,
                  r: Optional[float] = None, t: Optional[float] = None
                  ) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    r"""Check a coefficient family and its parameters; ``(alpha, r, t)`` with defaults filled.

    Each parameter belongs to one family: ``alpha`` to ``"ppr"`` (default ``0.1``), ``r`` to
    ``"katz"``/``"inffs"`` (no default here: the callers that know :math:`A` use
    :math:`0.9/\rho(A)`), ``t`` to ``"heat"`` (default ``1.0``). ``None`` means the family
    default; a value given for another family (or for a coefficient tensor) is a
    ``ValueError`` naming it, so that no argument is silently ignored.

    Args:
        coeffs (str or Tensor): a family name of :data:`COEFF_KINDS` or a coefficient tensor.
        alpha (float, optional): PPR teleport probability, in :math:`(0, 1]`.
        r (float, optional): Katz decay (absolute), :math:`r > 0`.
        t (float, optional): heat-kernel time, :math:`t > 0`.
    """
    if isinstance(coeffs, Tensor):
        kind = "a coefficient tensor"
    elif isinstance(coeffs, str):
        kind = _check_kind(coeffs)
    else:
        raise TypeError(f"coeffs must be a str or a Tensor, got {type(coeffs).__name__}")
    for name, value in (("alpha", alpha), ("r", r), ("t", t)):
        if value is not None and kind not in _PARAM_FAMILIES[name]:
            fams = " or ".join(repr(f) for f in _PARAM_FAMILIES[name])
            what = kind if kind.startswith("a ") else f"coeffs={kind!r}"
            raise ValueError(f"{name}={value!r} applies to coeffs={fams} only, not to {what}; "
                             f"leave {name}=None")
    if kind == "ppr":
        alpha = 0.1 if alpha is None else alpha
        _check_alpha(alpha)
    if kind == "heat":
        t = 1.0 if t is None else t
        _check_positive("t", t)
    if r is not None:
        _check_positive("r", r)
    return alpha, r, t


def coefficients(kind: Union[str, Tensor], hops: int, *, r: Optional[float] = None,
                 alpha: Optional[float] = None, t: Optional[float] = None) -> Tensor:
    r"""The hop coefficients :math:`\theta_0, \dots, \theta_K` of a diffusion family.

    .. math::
        \text{katz, inffs:}\quad \theta_0 = 0,\ \theta_k = r^k \ (k \ge 1) \qquad
        \text{ppr:}\quad \theta_k = \alpha (1-\alpha)^k \ (k < K),\ \theta_K = (1-\alpha)^K

    .. math::
        \text{heat:}\quad \theta_k = e^{-t} \frac{t^k}{k!} \qquad
        \text{uniform:}\quad \theta_k = \frac{1}{K+1} \qquad
        \text{power:}\quad \theta_k = [k = K]

    ``ppr`` puts the tail mass :math:`\sum_{k \ge K} \alpha(1-\alpha)^k = (1-\alpha)^K` on the
    last power, so that the coefficients sum to 1 and K hops equal PyG's ``APPNP(K, alpha)``
    iteration exactly. ``heat`` is the plain truncation of the exponential series. ``power``
    (a single power :math:`A^K`) is SGC's propagation; ``hops=1`` with ``power`` is one
    application :math:`A x`.

    Args:
        kind (str or Tensor): one of ``"katz"``, ``"inffs"``, ``"ppr"``, ``"heat"``,
            ``"uniform"``, ``"power"``, or a 1-D tensor of ``hops + 1`` coefficients (returned
            as is, so gradients flow to a learnable GPR-style tensor).
        hops (int): the number of hops :math:`K \ge 0`.
        r (float, optional): the Katz decay (required for ``katz``/``inffs``).
        alpha (float, optional): the teleport probability of ``ppr``, in :math:`(0, 1]`.
            (default: ``0.1``)
        t (float, optional): the diffusion time of ``heat``. (default: ``1.0``)

    A parameter of another family is refused (see :func:`family_params`).

    Shapes:
        - **output:** :math:`(K + 1,)`, float64 for a named family.
    """
    alpha, r, t = family_params(kind, alpha=alpha, r=r, t=t)
    return _coefficients(kind, hops, r=r, alpha=alpha, t=t)


def _coefficients(kind: Union[str, Tensor], hops: int, *, r: Optional[float],
                  alpha: Optional[float], t: Optional[float]) -> Tensor:
    """:func:`coefficients` for parameters already checked by :func:`family_params`."""
    _check_hops(hops)
    if hops == math.inf:
        raise ValueError("an infinite series has no finite coefficient vector; "
                         "use propagate(..., hops=math.inf)")
    if isinstance(kind, Tensor):
        check_tensor("coeffs", kind, ndim=1)
        if kind.numel() != hops + 1:
            raise ValueError(f"coeffs: a coefficient tensor for hops={hops} needs {hops + 1} "
                             f"entries, got {kind.numel()}")
        return kind
    k = torch.arange(hops + 1, dtype=torch.float64)
    if kind in ("katz", "inffs"):
        if r is None:
            raise ValueError(f"coeffs={kind!r} needs the decay r")
        theta = torch.tensor(float(r), dtype=torch.float64) ** k
        theta[0] = 0.0
    elif kind == "ppr":
        theta = alpha * (1.0 - alpha) ** k
        theta[-1] = (1.0 - alpha) ** hops
    elif kind == "heat":
        theta = torch.exp(-t + k * math.log(t) - torch.lgamma(k + 1))
    elif kind == "uniform":
        theta = torch.full((hops + 1,), 1.0 / (hops + 1), dtype=torch.float64)
    else:  # power
        theta = torch.zeros(hops + 1, dtype=torch.float64)
        theta[-1] = 1.0
    return theta


# ----------------------------------------------------------------------------------------------
# spectral radius
# ----------------------------------------------------------------------------------------------

def _attainable_tol(tol: float, dtype: torch.dtype) -> float:
    r"""``tol`` raised to the machine epsilon of ``dtype`` (floating dtypes only).

    An eigenvalue of a matrix stored in ``dtype`` is not defined more finely than its epsilon.
    Asking ARPACK for more stalls it where a graph has many components: the copies of the
    top eigenvalue, one per component (438 on CiteSeer), are split by the rounding of the
    float32 weights into a cluster about 1e-7 wide, which Lanczos cannot resolve to 1e-10.
    """
    return max(tol, torch.finfo(dtype).eps) if dtype.is_floating_point else tol


def _arpack_rho(op: spla.LinearOperator, n: int, symmetric: bool, tol: float) -> float:
    r"""Largest |eigenvalue| by Lanczos (symmetric) or Arnoldi, from the all-ones start vector.

    ARPACK first maps its start vector through :math:`A` and fails if the image is zero
    (:math:`A\mathbf{1} = 0`: :math:`A = 0`, e.g. a graph whose edge weights are all zero, or
    rows summing to zero). It then restarts from a fixed pseudo-random vector (seed 0); if
    :math:`A` maps that to zero as well, :math:`A = 0` (with probability 1) and
    :math:`\rho(A) = 0`.
    """
    def run(v0: np.ndarray) -> float:
        if symmetric:
            vals = spla.eigsh(op, k=1, which="LM", v0=v0, tol=tol, return_eigenvectors=False)
        else:
            vals = spla.eigs(op, k=1, which="LM", v0=v0, tol=tol, return_eigenvectors=False)
        return float(np.abs(vals).max())

    try:
        return run(np.ones(n))
    except spla.ArpackNoConvergence:
        raise
    except spla.ArpackError:  # the start vector is in the null space of A
        pass
    v0 = np.random.default_rng(0).standard_normal(n)
    if not np.any(op.matvec(v0)):
        return 0.0
    return run(v0)


def spectral_radius_op(apply_A: ApplyA, like: Tensor, *, symmetric: bool = False,
                       tol: float = 1e-10) -> float:
    r"""Spectral radius :math:`\rho(A) = \max_i |\lambda_i(A)|` of an operator given as a callable.

    Lanczos (``symmetric=True``) or implicitly restarted Arnoldi iterations (ARPACK), each one
    application of ``apply_A``; no matrix is formed. ``apply_A`` is probed with signals shaped
    like ``like`` but with a last dimension of 1 (for ``like`` of 2+ dimensions), so an
    operator that acts differently on trailing slices (e.g. one attention matrix per head)
    returns the largest radius over them. Operators of fewer than 4 rows are formed densely.

    Args:
        apply_A (callable): ``apply_A(x) = A x`` for ``x`` of shape ``[N, ...]``.
        like (Tensor): a signal of the shape, dtype and device ``apply_A`` accepts.
        symmetric (bool): whether :math:`A` is symmetric. (default: ``False``)
        tol (float): ARPACK's relative tolerance on the eigenvalue, at least the machine
            epsilon of ``like``'s dtype. (default: ``1e-10``)
    """
    tol = _attainable_tol(tol, like.dtype)
    shape = tuple(like.shape[:-1]) + (1,) if like.dim() >= 2 else tuple(like.shape)
    n = int(np.prod(shape))

    def mv(v: np.ndarray) -> np.ndarray:
        vt = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(shape))
        with torch.no_grad():
            out = apply_A(vt.to(device=like.device, dtype=like.dtype))
        return out.detach().to("cpu", torch.float64).numpy().reshape(-1)

    if n == 0:
        return 0.0
    if n < 4:
        dense = np.stack([mv(e) for e in np.eye(n)], axis=1)
        return float(np.abs(np.linalg.eigvals(dense)).max())
    op = spla.LinearOperator((n, n), matvec=mv, dtype=np.float64)
    return _arpack_rho(op, n, symmetric, tol)


def _to_scipy(edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int) -> sp.csr_matrix:
    row = edge_index[1].cpu().numpy()
    col = edge_index[0].cpu().numpy()
    w = (np.ones(row.shape[0]) if edge_weight is None
         else edge_weight.detach().cpu().to(torch.float64).numpy())
    return sp.csr_matrix((w, (row, col)), shape=(num_nodes, num_nodes))


def spectral_radius(edge_index: Tensor, edge_weight: Optional[Tensor] = None,
                    num_nodes: Optional[int] = None, *, symmetric: Optional[bool] = None,
                    tol: float = 1e-10) -> float:
    r"""Spectral radius :math:`\rho(A)` of the sparse matrix :math:`A_{ij} = w_{j \to i}`.

    Lanczos (symmetric :math:`A`) or Arnoldi iterations (ARPACK) on the sparse matrix; no
    eigendecomposition. Duplicate edges add up. :math:`r < 1/\rho(A)` is the condition for the
    Katz series :math:`\sum_k r^k A^k` to converge.

    Args:
        edge_index (Tensor): ``[2, E]`` edges ``j -> i``.
        edge_weight (Tensor, optional): ``[E]`` weights (default: all ones).
        num_nodes (int, optional): :math:`N` (default: ``max(edge_index) + 1``).
        symmetric (bool, optional): use Lanczos; detected from the matrix when ``None``.
        tol (float): ARPACK's relative tolerance, at least the machine epsilon of
            ``edge_weight``'s dtype (float32 weights: about 1.2e-7). (default: ``1e-10``)
    """
    from affgraph._checks import check_nonnegative_int, check_positive_real

    check_positive_real("tol", tol)
    if num_nodes is not None:
        check_nonnegative_int("num_nodes", num_nodes)
    if num_nodes is None:
        num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
    check_edge_index(edge_index, num_nodes)
    if edge_weight is not None:
        check_tensor("edge_weight", edge_weight, ndim=1)
        if edge_weight.numel() != edge_index.size(1):
            raise ValueError(f"edge_weight has {edge_weight.numel()} entries for "
                             f"{edge_index.size(1)} edges")
    if num_nodes == 0 or edge_index.numel() == 0:
        return 0.0
    if edge_weight is not None:
        tol = _attainable_tol(tol, edge_weight.dtype)
    A = _to_scipy(edge_index, edge_weight, num_nodes)
    if symmetric is None:
        symmetric = abs(A - A.T).sum() <= 1e-12 * max(abs(A).sum(), 1.0)
    if num_nodes < 4:
        return float(np.abs(np.linalg.eigvals(A.toarray())).max())
    return _arpack_rho(spla.aslinearoperator(A), num_nodes, bool(symmetric), tol)


def spectral_radius_dense(A: Tensor, *, symmetric: Optional[bool] = None,
                          tol: float = 1e-10) -> float:
    r"""Spectral radius of a dense square matrix by Lanczos/Arnoldi iterations (see
    :func:`spectral_radius`)."""
    check_tensor("A", A, ndim=2)
    from affgraph._checks import check_positive_real

    check_positive_real("tol", tol)
    if A.size(0) != A.size(1):
        raise ValueError(f"A must be square, got shape {tuple(A.shape)}")
    tol = _attainable_tol(tol, A.dtype)
    M = A.detach().cpu().to(torch.float64).numpy()
    n = M.shape[0]
    if n == 0:
        return 0.0
    if symmetric is None:
        symmetric = bool(np.allclose(M, M.T, rtol=0.0, atol=1e-12 * max(np.abs(M).max(), 1.0)))
    if n < 4:
        return float(np.abs(np.linalg.eigvals(M)).max())
    return _arpack_rho(spla.aslinearoperator(M), n, symmetric, tol)


# ----------------------------------------------------------------------------------------------
# iterative linear solves, vectorised over the trailing dimensions
# ----------------------------------------------------------------------------------------------

def _dot(a: Tensor, b: Tensor, work: Optional[Tensor] = None) -> Tensor:
    r""":math:`\sum_i a_i b_i` over the first dimension; the products go to ``work`` (a
    preallocated buffer of ``a``'s shape) when given, so that an iteration allocates no
    signal-sized temporary (on the CPU a fresh 512 MB temporary costs more in page faults than
    the products: 2M x 64 float32 signals, one CG step)."""
    if work is None:
        return (a * b).sum(0)
    return torch.mul(a, b, out=work).sum(0)


def _safe_div(a: Tensor, b: Tensor) -> Tensor:
    return torch.where(b != 0, a / torch.where(b != 0, b, torch.ones_like(b)), torch.zeros_like(a))


#: the closed forms need :math:`c\,\rho(A) \le 1 - ` ``RHO_MARGIN`` (decided in float64, with
#: :math:`\rho(A)` of the float64 copy of the weights): float32 weights put the radius of a
#: row-stochastic matrix anywhere within about 1e-7 of 1 (0.99999994, 1.00000003), and a
#: system closer to singular than this cannot be solved to the default ``tol``
RHO_MARGIN = 1e-6

#: the largest relative rounding of the residual :math:`\|b - My\| / \|b\|` that
#: :func:`solve_linear` accepts in place of ``tol`` (the dtype cannot resolve more finely)
RESOLVABLE = 1e-3


def solve_linear(op: ApplyA, b: Tensor, *, symmetric: bool = False, tol: float = 1e-6,
                 max_iter: int = 1000, x0: Optional[Tensor] = None) -> Tensor:
    r"""Solve :math:`M y = b` for an operator ``op(v) = M v``, column by column.

    Conjugate gradients when :math:`M` is symmetric positive definite (``symmetric=True``),
    BiCGSTAB otherwise; every trailing slice of ``b`` (``b[:, c]``) is an independent system
    and all of them advance together. Stops when every slice has
    :math:`\|b - M y\|_2 \le \text{tol} \cdot \|b\|_2` for the true residual: the
    iterations' recursively updated residual drifts from it on a nearly singular :math:`M`,
    so it is recomputed as :math:`b - My` once they stop, and the iterations restart from
    :math:`y` while it is above ``tol``. A residual within the rounding of its own
    computation, :math:`4\epsilon(\|y\| + \|y - My\|)`, is accepted as well, as long as that
    rounding is at most :data:`RESOLVABLE` :math:`\|b\|` (a float32 solve of a system that
    amplifies ``b`` a thousandfold cannot verify ``tol=1e-6``, but its answer is good to
    float32's precision; one that amplifies it a millionfold is not). Raises a
    ``RuntimeError`` naming ``tol``, ``max_iter`` and the residual reached if that does not
    happen within ``max_iter`` iterations in all. Runs without autograd.

    Each slice is solved scaled to a largest entry of 1 (the system is linear, so
    :math:`y = s\, M^{-1}(b/s)`): the squared norms and inner products then neither underflow
    nor overflow. (A float32 gradient slice whose entries are all about 1e-20 has squared
    norms below float32's smallest normal number; unscaled, CG made no progress on it.)
    """
    from affgraph._checks import check_solver

    check_solver(tol, max_iter)
    with torch.no_grad():
        if b.size(0) == 0:  # no unknowns
            return b.clone()
        scale = b.abs().amax(dim=0)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        bs = b / scale
        y = None if x0 is None else x0 / scale
        bnorm = _dot(bs, bs).sqrt()
        thresh = tol * bnorm
        left = max_iter
        while True:
            y, used = _solve_scaled(op, bs, symmetric=symmetric, thresh=thresh,
                                    max_iter=left, x0=y)
            left -= used
            my = op(y)
            res = bs - my  # the true residual, and the rounding it is computed with
            achieved = _dot(res, res).sqrt()
            floor = 4 * torch.finfo(b.dtype).eps * (_dot(y, y).sqrt() + _dot(y - my, y - my)
                                                   .sqrt())
            if bool(((achieved <= torch.maximum(thresh, floor))
                     & (floor <= RESOLVABLE * bnorm)).all()):
                return scale * y
            if left <= 0 or used == 0:
                bn = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
                rel, lim = float((achieved / bn).max()), float((floor / bn).max())
                why = (f"is {rel:.3g} ({b.dtype} resolves it to about {lim:.3g})"
                       if math.isfinite(rel) and math.isfinite(lim) else "diverged")
                raise RuntimeError(
                    f"the linear solve did not reach tol={tol} in max_iter={max_iter} "
                    f"iterations: its true relative residual ||b - My|| / ||b|| {why}; a "
                    f"nearly singular system (e.g. a decay c with c * rho(A) close to 1) "
                    f"amplifies rounding: raise max_iter or tol, choose a smaller decay or "
                    f"compute in float64")


def _solve_scaled(op: ApplyA, b: Tensor, *, symmetric: bool, thresh: Tensor, max_iter: int,
                  x0: Optional[Tensor]) -> Tuple[Tensor, int]:
    """:func:`solve_linear`'s iterations on slices of ``b`` scaled to a largest entry of 1:
    ``(y, iterations used)``, stopping when the recursive residual of every slice is within
    ``thresh`` or after ``max_iter`` iterations."""
    y = b.clone() if x0 is None else x0.clone()
    res = b - op(y)
    bnorm = _dot(b, b).sqrt()

    def done(res_: Tensor) -> bool:
        return bool((_dot(res_, res_).sqrt() <= thresh).all())

    if done(res) or max_iter <= 0:
        return y, 0
    if symmetric:
        p = res.clone()
        work = torch.empty_like(res)
        rs = _dot(res, res, work)
        for it in range(max_iter):  # y, res, p updated in place (no signal-sized temporaries)
            Ap = op(p)
            a = _safe_div(rs, _dot(p, Ap, work))
            y.addcmul_(a, p)
            res.addcmul_(a, Ap, value=-1.0)
            rs_new = _dot(res, res, work)
            if bool((rs_new.sqrt() <= thresh).all()):  # done(res)
                return y, it + 1
            p.mul_(_safe_div(rs_new, rs)).add_(res)
            rs = rs_new
    else:
        r_hat = res.clone()
        rho_prev = torch.ones_like(bnorm)
        a = torch.ones_like(bnorm)
        w = torch.ones_like(bnorm)
        v = torch.zeros_like(b)
        p = torch.zeros_like(b)
        for it in range(max_iter):
            rho = _dot(r_hat, res)
            unconverged = _dot(res, res).sqrt() > thresh
            if bool(((rho == 0) & unconverged).any()):  # breakdown: restart the shadow
                r_hat = res.clone()
                rho = _dot(r_hat, res)
                p = torch.zeros_like(b)
                v = torch.zeros_like(b)
                rho_prev = torch.ones_like(bnorm)
                a = torch.ones_like(bnorm)
                w = torch.ones_like(bnorm)
            beta = _safe_div(rho, rho_prev) * _safe_div(a, w)
            p = res + beta * (p - w * v)
            v = op(p)
            a = _safe_div(rho, _dot(r_hat, v))
            s = res - a * v
            if done(s):
                return y + a * p, it + 1
            tv = op(s)
            w = _safe_div(_dot(tv, s), _dot(tv, tv))
            y = y + a * p + w * s
            res = s - w * tv
            rho_prev = rho
            if done(res):
                return y, it + 1
    return y, max_iter


# ----------------------------------------------------------------------------------------------
# propagation
# ----------------------------------------------------------------------------------------------

def _implicit_solve(apply_A: ApplyA, b: Tensor, c: float, *, symmetric: bool, tol: float,
                    max_iter: int) -> Tensor:
    r""":math:`y = (I - cA)^{-1} b`, differentiable by implicit differentiation.

    The forward solve runs without autograd; one extra step :math:`y = b + cA y^\ast` carries the
    graph to ``b`` and to whatever ``apply_A`` closes over, and a hook on its gradient solves the
    adjoint system :math:`(I - cA^\top) g = \partial L/\partial y` with vector-Jacobian
    products of ``apply_A``.

    Gradients that autograd leaves undefined pass through: an undefined (``None``) incoming
    :math:`\partial L/\partial y` stays undefined (it means zero, and the adjoint of zero is
    zero), and an ``apply_A`` whose output does not depend on its input (e.g. a graph without
    edges, :math:`A = 0`) has a zero vector-Jacobian product, so :math:`g = \partial L/\partial y`.
    """
    y_star = solve_linear(lambda v: torch.add(v, apply_A(v), alpha=-c), b.detach(),
                          symmetric=symmetric, tol=tol, max_iter=max_iter)
    if not torch.is_grad_enabled():
        return y_star
    y = b + c * apply_A(y_star)
    if not y.requires_grad:
        return y.detach()

    def hook(grad: Optional[Tensor]) -> Optional[Tensor]:
        if grad is None:  # an undefined gradient (zero): its adjoint solve is zero too
            return None
        z = y_star.detach().requires_grad_(True)
        with torch.enable_grad():
            Az = apply_A(z)
        if not Az.requires_grad:  # A x does not depend on x: A = 0, (I - cA^T) g = grad
            return grad

        def adjoint(v: Tensor) -> Tensor:
            (vjp,) = torch.autograd.grad(Az, z, v, retain_graph=True, allow_unused=True)
            return v if vjp is None else v - c * vjp

        return solve_linear(adjoint, grad, symmetric=symmetric, tol=tol, max_iter=max_iter)

    y.register_hook(hook)
    return y


def _heat_series(apply_A: ApplyA, x: Tensor, t: float, tol: float, max_iter: int,
                 c: float = 1.0) -> Tensor:
    r"""The heat kernel :math:`e^{-t(I - A)} x` as a Poisson-weighted power series.

    .. math::
        e^{-t(I - A)} x = e^{t(c - 1)} \sum_{k \ge 0} w_k\, (A/c)^k x, \qquad
        w_k = e^{-tc} \frac{(tc)^k}{k!} = \exp\big(-tc + k \log(tc) - \log k!\big),

    for any :math:`c > 0`; :math:`c \ge \rho(A)` keeps the powers :math:`(A/c)^k x` bounded.
    The weights are evaluated in float64 from their logarithm, never as :math:`e^{-t}` times
    :math:`t^k/k!`: for :math:`t \gtrsim 104` (float32) or :math:`745` (float64) the factor
    :math:`e^{-t}` alone underflows to 0, and :math:`t^k/k!` overflows near :math:`k = t`.
    The series stops at the first :math:`k > tc - 2` whose tail bound
    :math:`\|(A/c)^k x\| w_{k+1} / (1 - tc/(k + 2))` (geometric, for :math:`\|A/c\| \le 1`) is
    within ``tol`` of the sum; that takes about :math:`tc + 5\sqrt{tc}` applications of
    :math:`A`, and a ``max_iter`` below the number the weights alone need is a
    ``RuntimeError`` before any work."""
    tau = t * c
    log_tau = math.log(tau)

    def weight(k: int) -> float:
        return math.exp(-tau + k * log_tau - math.lgamma(k + 1))

    def tail(k: int) -> float:  # bound on sum_{j > k} w_j, for k + 2 > tau
        return weight(k + 1) / (1.0 - tau / (k + 2))

    need = max(0, math.floor(tau) - 1)
    while tail(need) > tol:
        need += 1
    if need > max_iter:
        raise RuntimeError(f"the heat series at t={t:g} needs at least {need} applications "
                           f"of A to reach tol={tol} (the Poisson weights of mean {tau:g}), "
                           f"more than max_iter={max_iter}; raise max_iter or tol")
    y, out = x, None
    for k in range(max_iter + 1):
        if k > 0:
            y = apply_A(y) if c == 1.0 else apply_A(y) / c
        w = weight(k)
        if w > 0.0:
            out = y * w if out is None else out + y * w
        if k >= need and out is not None:
            if bool(y.detach().norm() * tail(k) <= tol * out.detach().norm()):
                break
    else:
        raise RuntimeError(f"the heat series did not reach tol={tol} in max_iter={max_iter} "
                           "terms; raise max_iter or tol")
    if c != 1.0:
        out = out * math.exp(t * (c - 1.0))
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"the heat kernel e^(-t(I - A)) x overflows {x.dtype}: it grows "
                             f"like e^(t (rho(A) - 1)) with t={t:g}, rho(A)={c:g}; use a "
                             "normalised graph or a smaller t")
    return out


def propagate(apply_A: ApplyA, x: Tensor, *, hops: Union[int, float],
              coeffs: Union[str, Tensor] = "ppr", r: Optional[float] = None,
              alpha: Optional[float] = None, t: Optional[float] = None,
              rho: Optional[float] = None, symmetric: bool = False,
              tol: float = 1e-6, max_iter: int = 1000) -> Tensor:
    r"""K-hop diffusion :math:`\sum_{k=0}^{K} \theta_k A^k x` of a linear operator.

    .. math::
        y = \sum_{k=0}^{K} \theta_k A^k x
          = \theta_0 x + A\big(\theta_1 x + A(\theta_2 x + \dots + A\,\theta_K x)\big)

    Finite ``hops`` apply :math:`A` exactly K times (Horner's scheme, the same work as PyG's
    ``APPNP``) and autograd runs through them, including into a learnable coefficient tensor.
    ``hops=math.inf`` uses the closed forms

    .. math::
        \text{katz:}\ \sum_{k \ge 1} r^k A^k x = (I - rA)^{-1} rAx, \qquad
        \text{ppr:}\ \alpha (I - (1-\alpha)A)^{-1} x, \qquad
        \text{heat:}\ e^{-t(I - A)} x,

    the first two by an iterative solve (conjugate gradients if ``symmetric``, BiCGSTAB
    otherwise) to the relative residual ``tol`` per column, differentiated implicitly (an
    adjoint solve with vector-Jacobian products of ``apply_A``), the heat kernel as the
    Poisson-weighted series of :math:`A/\max(1, \rho(A))` until its tail bound falls below
    ``tol`` of the sum (weights from their logarithm, so large ``t`` neither underflows nor
    overflows). The series converges only for :math:`c\,\rho(A) < 1` (:math:`c = r` or
    :math:`1-\alpha`); the closed forms need :math:`c\,\rho(A) \le 1 -` :data:`RHO_MARGIN`
    (in float64): otherwise a ``ValueError``.
    ``katz`` without ``r`` uses :math:`r = 0.9/\rho(A)`. Finite ``hops`` call ``apply_A``
    exactly K times, in order (hop 1 first), so an operator that draws a fresh edge dropout
    at each call gets one draw per hop. ``alpha``, ``r`` and ``t`` are checked once per call
    (:func:`family_params`): a parameter of another family is a ``ValueError``.

    Args:
        apply_A (callable): ``apply_A(x) = A x``, returning the shape of ``x``.
        x (Tensor): the signal, ``[N, ...]`` with any trailing dimensions.
        hops (int or float): :math:`K \ge 0` or ``math.inf``.
        coeffs (str or Tensor): a family of :func:`coefficients` or a ``[K + 1]`` tensor.
            (default: ``"ppr"``)
        r (float, optional): the Katz decay (absolute, :math:`0 < r < 1/\rho(A)`; ``katz``
            only). (default: :math:`0.9/\rho(A)`)
        alpha (float, optional): the teleport probability (``ppr`` only). (default: ``0.1``)
        t (float, optional): the diffusion time (``heat`` only). (default: ``1.0``)
        rho (float, optional): :math:`\rho(A)` when known (e.g. 1 for a row-stochastic or
            symmetrically normalised :math:`A`); estimated by Lanczos/Arnoldi when needed.
        symmetric (bool): whether :math:`A` is symmetric (selects CG and Lanczos).
            (default: ``False``)
        tol (float): relative residual of the infinite-hop solve. (default: ``1e-6``)
        max_iter (int): iteration cap of the infinite-hop solve. (default: ``1000``)

    Shapes:
        - **x:** :math:`(N, *)`; **output:** :math:`(N, *)`.
    """
    if not callable(apply_A):
        raise TypeError("apply_A must be a callable x -> A x")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1:
        raise ValueError("x must have a node dimension, got a 0-d tensor")
    check_tensor("x", x)
    _check_hops(hops)
    from affgraph._checks import check_solver

    check_solver(tol, max_iter)
    alpha, r, t = family_params(coeffs, alpha=alpha, r=r, t=t)
    if rho is not None:
        if not (isinstance(rho, (int, float)) and math.isfinite(rho) and rho >= 0):
            raise ValueError(f"rho must be a finite non-negative number, got {rho!r}")
    return _propagate(apply_A, x, hops=hops, coeffs=coeffs, r=r, alpha=alpha, t=t, rho=rho,
                      symmetric=symmetric, tol=tol, max_iter=max_iter)


def _propagate(apply_A: ApplyA, x: Tensor, *, hops: Union[int, float],
               coeffs: Union[str, Tensor], r: Optional[float], alpha: Optional[float],
               t: Optional[float], rho: Union[None, float, Callable[[], float]],
               symmetric: bool, tol: float, max_iter: int) -> Tensor:
    r""":func:`propagate` for arguments already checked; ``rho`` may be a callable giving
    :math:`\rho(A)` on demand (only the default Katz decay and the closed forms need it)."""
    def get_rho() -> float:
        if callable(rho):
            return float(rho())
        return float(rho) if rho is not None else spectral_radius_op(apply_A, x,
                                                                    symmetric=symmetric)

    if isinstance(coeffs, str) and coeffs in ("katz", "inffs") and r is None:
        rr = get_rho()
        if rr == 0:
            raise ValueError("rho(A) = 0: give r explicitly")
        r = 0.9 / rr

    if hops != math.inf:
        theta = _coefficients(coeffs, int(hops), r=r, alpha=alpha, t=t)
        theta = theta.to(device=x.device, dtype=x.dtype if x.is_floating_point() else theta.dtype)
        if theta.requires_grad:
            y = theta[-1] * x
            for k in range(int(hops) - 1, -1, -1):
                y = apply_A(y) + theta[k] * x
            return y
        th = theta.tolist()  # plain numbers; in place when autograd is not recording
        y = x * th[-1]
        for k in range(int(hops) - 1, -1, -1):
            y = apply_A(y)
            if th[k] != 0.0:
                y = y.add(x, alpha=th[k]) if y.requires_grad else y.add_(x, alpha=th[k])
        return y

    if isinstance(coeffs, Tensor):
        raise ValueError("a coefficient tensor needs a finite number of hops")
    if coeffs in ("uniform", "power"):
        raise ValueError(f"coeffs={coeffs!r} has no infinite-hop limit")
    if coeffs == "heat":
        return _heat_series(apply_A, x, t, tol, max_iter, c=max(1.0, get_rho()))
    if coeffs == "ppr":
        c = 1.0 - alpha
    else:
        c = float(r)
    rr = get_rho()
    if c * rr > 1.0 - RHO_MARGIN:
        name = "r" if coeffs in ("katz", "inffs") else "1 - alpha"
        bound = math.inf if rr == 0 else (1.0 - RHO_MARGIN) / rr
        raise ValueError(f"{name} = {c:.9g} with rho(A) = {rr:.9g}: {name} * rho(A) = "
                         f"{c * rr:.9g} > 1 - {RHO_MARGIN:g}, so the series sum_k c^k A^k "
                         f"diverges or is too close to diverging to solve; choose "
                         f"{name} <= {bound:.9g}")
    if c == 0.0:
        return alpha * x if coeffs == "ppr" else torch.zeros_like(x)
    if coeffs == "ppr":
        return _implicit_solve(apply_A, alpha * x, c, symmetric=symmetric, tol=tol,
                               max_iter=max_iter)
    return _implicit_solve(apply_A, c * apply_A(x), c, symmetric=symmetric, tol=tol,
                           max_iter=max_iter)



# ----------------------------------------------------------------------------------------------
# sparse graphs
# ----------------------------------------------------------------------------------------------

def sparse_operator(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> ApplyA:
    r"""``apply_A(x) = A x`` for :math:`A_{ij} = w_{j \to i}` as one CSR sparse-dense product.

    The CSR matrix is built once (sorted by target; duplicate edges add up); ``x`` may have any
    trailing dimensions. Gradients flow to ``x`` and to ``edge_weight``: the backward pass
    multiplies by :math:`A^\top`, whose structure is built on the first backward and shared by
    every later product (torch's own CSR backward re-sorts the transpose on every call).
    Half precision is computed in float32 and cast back.
    """
    return DiffusionGraph(edge_index, edge_weight, num_nodes).operator()


def _is_symmetric(edge_index: Tensor, edge_weight: Tensor, num_nodes: int) -> bool:
    r""":math:`\sum |A - A^\top| \le 10^{-12} \max(\sum |A|, 1)`, on ``edge_index``'s device
    (duplicate edges add up)."""
    if edge_index.size(1) == 0:
        return True
    w = edge_weight.to(torch.float64)
    src, dst = edge_index[0], edge_index[1]
    keys, pos = torch.unique(torch.cat([dst * num_nodes + src, src * num_nodes + dst]),
                             return_inverse=True)  # entry (i, j) of A and of A^T
    diff = torch.zeros(keys.numel(), dtype=w.dtype, device=w.device)
    diff.index_add_(0, pos, torch.cat([w, -w]))
    return bool(diff.abs().sum() <= 1e-12 * w.abs().sum().clamp(min=1.0))


def _rho_bound(edge_weight: Tensor, normalize: str) -> Optional[float]:
    r"""1.0 when the normalisation guarantees :math:`\rho(A) \le 1`, else ``None``: rows of
    ``"row"`` and ``"softmax"`` weights sum to 1 or 0, so non-negative ones have
    :math:`\|A\|_\infty \le 1`; ``"sym"`` is :math:`D^{1/2}(D^{-1}A)D^{-1/2}` on the nodes of
    positive degree and zero elsewhere."""
    if normalize == "none" or not bool((edge_weight >= 0).all()):
        return None
    return 1.0


def _check_dropout(dropout: float, hops: Union[int, float]) -> None:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
            not 0.0 <= dropout <= 1.0:
        raise ValueError(f"dropout must lie in [0, 1], got {dropout!r}")
    if dropout > 0 and hops == math.inf:
        raise ValueError("dropout > 0 needs a finite number of hops: the closed form "
                         "(hops=math.inf) solves with one fixed operator, not one draw per hop")


class DiffusionGraph:
    r"""A graph made ready for diffusion once: normalised edges and weights, and their CSR
    structure (sorted by target), with :math:`\rho(A)` and the symmetry of :math:`A` found on
    first use. It is what :func:`diffuse` builds per call and what
    ``AffinityDiffusion(cached=True)`` keeps between calls.

    Args:
        edge_index (Tensor): ``[2, E]`` edges ``j -> i`` (``int64``), already normalised.
        edge_weight (Tensor): ``[E]`` weights :math:`A_{ij} = w_{j \to i}`.
        num_nodes (int): :math:`N`.
        normalize (str): the normalisation the weights went through (it decides whether
            :math:`\rho(A) \le 1` holds without an eigen-solve). (default: ``"none"``)
    """

    def __init__(self, edge_index: Tensor, edge_weight: Tensor, num_nodes: int, *,
                 normalize: str = "none") -> None:
        from affgraph._csr import CSR

        self.edge_index, self.edge_weight = edge_index, edge_weight
        self.num_nodes, self.normalize = num_nodes, normalize
        self.csr = CSR(edge_index, num_nodes, num_nodes)
        self._symmetric: Optional[bool] = None
        self._rho: Optional[float] = None

    @classmethod
    def from_graph(cls, graph: Any, edge_weight: Optional[Tensor], num_nodes: int, *,
                   dtype: torch.dtype, normalize: str = "none",
                   add_self_loops: bool = False) -> "DiffusionGraph":
        r"""Normalise a graph given in any PyG form (``edge_index``, ``EdgeIndex``,
        ``torch.sparse`` or ``SparseTensor`` ``adj_t``; see :func:`affgraph._graph.to_edge_index`)
        with ``edge_weight`` (default: all ones, in ``dtype``), as :func:`diffuse` describes."""
        from affgraph._graph import num_sparse_nodes, to_edge_index
        from affgraph.affinity import normalize_edge_weight

        sizes = num_sparse_nodes(graph)
        if sizes is not None and sizes != (num_nodes, num_nodes):
            raise ValueError(f"a sparse edge_index (adj_t) must be [{num_nodes}, {num_nodes}] "
                             f"for {num_nodes} nodes, got {list(sizes[::-1])}")
        ei, w = to_edge_index(graph, edge_weight)
        check_edge_index(ei, num_nodes)
        if w is None:  # all ones (for softmax: equal logits, i.e. uniform rows)
            w = torch.ones(ei.size(1), dtype=dtype, device=ei.device)
        else:
            check_tensor("edge_weight", w, ndim=1)
            if not w.is_floating_point():
                w = w.to(dtype)
        ei, w = normalize_edge_weight(ei, w.to(dtype), num_nodes, mode=normalize,
                                      add_self_loops=add_self_loops)
        return cls(ei, w.to(dtype), num_nodes, normalize=normalize)

    @property
    def symmetric(self) -> bool:
        r"""Whether :math:`A = A^\top` (selects CG and Lanczos)."""
        if self._symmetric is None:
            self._symmetric = _is_symmetric(self.edge_index, self.edge_weight.detach(),
                                            self.num_nodes)
        return self._symmetric

    def rho(self) -> float:
        r""":math:`\rho(A)` by Lanczos/Arnoldi (:func:`spectral_radius`), computed once."""
        if self._rho is None:
            self._rho = spectral_radius(self.edge_index, self.edge_weight.detach(),
                                        self.num_nodes, symmetric=self.symmetric)
        return self._rho

    def operator(self, dtype: Optional[torch.dtype] = None, dropout: float = 0.0) -> ApplyA:
        r"""``apply_A(x) = A x`` (one CSR product, see :func:`sparse_operator`). With
        ``dropout > 0`` every call first drops the edge weights anew,
        ``F.dropout(w, dropout)`` in the input edge order (zeroed with probability
        ``dropout``, the kept ones scaled by :math:`1/(1 - \text{dropout})`)."""
        from affgraph._csr import _float, _SpMM

        n, csr = self.num_nodes, self.csr
        w = self.edge_weight if dtype is None else self.edge_weight.to(dtype)
        perm = csr.perm

        def flat(x: Tensor, like: Tensor) -> Tensor:
            return _float(x).to(like.dtype).reshape(n, math.prod(x.shape[1:])).contiguous()

        if dropout > 0:
            def apply_dropped(x: Tensor) -> Tensor:
                wk = torch.nn.functional.dropout(w, p=dropout, training=True)
                wk = _float(wk if perm is None else wk.index_select(0, perm))
                return _SpMM.apply(wk, flat(x, wk), csr).to(x.dtype).reshape(x.shape)

            return apply_dropped
        ws = _float(w if perm is None else w.index_select(0, perm))

        def apply_A(x: Tensor) -> Tensor:
            return _SpMM.apply(ws, flat(x, ws), csr).to(x.dtype).reshape(x.shape)

        return apply_A

    def diffuse(self, x: Tensor, *, hops: Union[int, float], coeffs: Union[str, Tensor],
                r: Optional[float], alpha: Optional[float], t: Optional[float],
                dropout: float = 0.0, tol: float = 1e-6, max_iter: int = 1000) -> Tensor:
        r""":math:`\sum_k \theta_k A^k x` on this graph for arguments already checked (by
        :func:`family_params` and :func:`diffuse`); see :func:`diffuse`."""
        if x.size(0) != self.num_nodes:
            raise ValueError(f"x has {x.size(0)} nodes, the graph {self.num_nodes}")
        if hops == math.inf and x.dtype in (torch.float16, torch.bfloat16):
            # a half-precision solve or series cannot resolve tol: float32, cast back
            return self.diffuse(x.float(), hops=hops, coeffs=coeffs, r=r, alpha=alpha, t=t,
                                dropout=dropout, tol=tol, max_iter=max_iter).to(x.dtype)
        apply_A = self.operator(x.dtype, dropout)
        named = isinstance(coeffs, str)
        katz = named and coeffs in ("katz", "inffs")
        solve = hops == math.inf and named and coeffs in ("ppr", "katz", "inffs")
        rho = None
        if hops == math.inf and named and coeffs == "heat":  # rho(A) <= 1 needs no eigen-solve
            rho = _rho_bound(self.edge_weight.detach(), self.normalize)
        if solve and not (katz and r is None):  # only c * rho(A) < 1 is needed: a bound may do
            bound = _rho_bound(self.edge_weight.detach(), self.normalize)
            c = 1.0 - alpha if coeffs == "ppr" else r
            if bound is not None and c * bound <= 1.0 - RHO_MARGIN:
                rho = bound
        return _propagate(apply_A, x, hops=hops, coeffs=coeffs, r=r, alpha=alpha, t=t,
                          rho=self.rho if rho is None else rho,
                          symmetric=self.symmetric if solve else False,
                          tol=tol, max_iter=max_iter)


def diffuse(x: Tensor, edge_index: Any, edge_weight: Optional[Tensor] = None, *,
            hops: Union[int, float], coeffs: Union[str, Tensor] = "katz",
            r: Optional[float] = None, alpha: Optional[float] = None,
            t: Optional[float] = None, normalize: str = "none", add_self_loops: bool = False,
            dropout: float = 0.0, tol: float = 1e-6, max_iter: int = 1000) -> Tensor:
    r"""K-hop diffusion of node signals over a sparse graph, :math:`\sum_k \theta_k A^k x`.

    :math:`A_{ij} = w_{j \to i}` after ``normalize`` (see
    :func:`affgraph.affinity.normalize_edge_weight`: ``"none"``, ``"sym"``
    :math:`D^{-1/2} A D^{-1/2}`, ``"row"`` :math:`D^{-1} A`, ``"softmax"``). :math:`A^k` is never
    formed: K hops are K CSR sparse-dense products, ``hops=math.inf`` an iterative solve (see
    :func:`propagate`; CG when the normalised graph is symmetric, BiCGSTAB otherwise). The
    closed forms need :math:`c\,\rho(A) < 1` (:math:`c = 1-\alpha` or :math:`r`): after the
    ``"sym"``, ``"row"`` or ``"softmax"`` normalisation of non-negative weights
    :math:`\rho(A) \le 1` (:math:`D^{-1}A` has row sums at most 1 and
    :math:`D^{-1/2}AD^{-1/2}` is similar to it), which settles the check for any :math:`c < 1`
    without an eigen-solve; otherwise, and for the default Katz :math:`r = 0.9/\rho(A)`,
    :math:`\rho(A)` comes from Lanczos/Arnoldi. With ``coeffs="katz"`` and ``x`` the all-ones
    vector, ``hops=math.inf`` gives the Katz centrality minus one,
    :math:`((I - rA)^{-1} - I)\mathbf{1}`, the Inf-FS score of a feature graph.

    ``hops=K`` always means the K-term series of the family: ``hops=1`` with ``"katz"`` is
    :math:`rAx`, with ``"power"`` :math:`Ax`, with ``"ppr"`` :math:`\alpha x + (1-\alpha)Ax`.

    Args:
        x (Tensor): node signals ``[N, ...]``.
        edge_index (Tensor or SparseTensor): ``[2, E]`` edges ``j -> i`` (an ``EdgeIndex``
            or any integer dtype), or a ``torch.sparse`` / ``SparseTensor`` ``adj_t`` of shape
            ``[N, N]`` (row = target) whose values are the edge weights.
        edge_weight (Tensor, optional): ``[E]`` weights (default: all ones).
        hops (int or float): :math:`K \ge 0` or ``math.inf``.
        coeffs (str or Tensor): see :func:`coefficients`. (default: ``"katz"``)
        r (float, optional): Katz decay, absolute, :math:`0 < r < 1/\rho(A)` (``katz`` only).
            (default: :math:`0.9/\rho(A)`)
        alpha (float, optional): PPR teleport probability (``ppr`` only). (default: ``0.1``)
        t (float, optional): heat-kernel time (``heat`` only). (default: ``1.0``)
        normalize (str): edge-weight normalisation. (default: ``"none"``)
        add_self_loops (bool): add missing self-loops (weight 1) before normalising.
            (default: ``False``)
        dropout (float): edge dropout, APPNP's: at each hop the normalised weights are passed
            through ``F.dropout(w, dropout)`` afresh (finite ``hops`` only; the functional form
            always applies it, as ``F.dropout`` with ``training=True``). (default: ``0.0``)
        tol (float): relative residual of the infinite-hop solve. (default: ``1e-6``)
        max_iter (int): iteration cap of the infinite-hop solve. (default: ``1000``)

    Shapes:
        - **x:** :math:`(N, *)`, **edge_index:** :math:`(2, E)` or :math:`(N, N)`,
          **edge_weight:** :math:`(E)`; **output:** :math:`(N, *)`.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or not x.is_floating_point():
        raise ValueError(f"x must be a floating tensor [N, ...], got {x.dtype} {tuple(x.shape)}")
    check_tensor("x", x)
    _check_hops(hops)
    from affgraph._checks import check_solver

    check_solver(tol, max_iter)
    from affgraph._checks import check_choice
    from affgraph.affinity import NORMALIZATIONS

    check_choice("normalize", normalize, NORMALIZATIONS, what="normalisation mode")
    alpha, r, t = family_params(coeffs, alpha=alpha, r=r, t=t)
    _check_dropout(dropout, hops)
    graph = DiffusionGraph.from_graph(edge_index, edge_weight, x.size(0), dtype=x.dtype,
                                      normalize=normalize, add_self_loops=add_self_loops)
    return graph.diffuse(x, hops=hops, coeffs=coeffs, r=r, alpha=alpha, t=t, dropout=dropout,
                         tol=tol, max_iter=max_iter)


# ----------------------------------------------------------------------------------------------
# Katz series of a symmetric operator with r relative to its largest eigenvalue
# ----------------------------------------------------------------------------------------------

def katz_lanczos(apply_A: ApplyA, b: Tensor, *, r_frac: float, hops: Union[int, float] = math.inf,
                 tol: float = 1e-10, max_iter: int = 300) -> tuple[Tensor, float]:
    r"""Largest eigenvalue and Katz series of a symmetric operator from one Lanczos run.

    .. math::
        \lambda = \lambda_{\max}(A), \qquad r = r_{\text{frac}} / \lambda, \qquad
        y = \sum_{k=1}^{K} r^k A^k b \ \ \big(K = \infty:\ y = (I - rA)^{-1} rAb\big)

    Lanczos (with full reorthogonalisation) from :math:`b` builds
    :math:`A Q_k = Q_k T_k + \beta_k q_{k+1} e_k^\top`; :math:`\lambda` is the largest Ritz
    value of :math:`T_k` and :math:`y \approx Q_k\, (I - rT_k)^{-1} rT_k\, \|b\| e_1` (the
    Galerkin solution, i.e. what CG computes). It stops when the Ritz residual of
    :math:`\lambda` is below ``1e-10`` relative and the linear residual
    :math:`r\beta_k |e_k^\top z|` below ``tol`` relative to :math:`\|rAb\|`, so the eigenvalue
    and the solve share every application of :math:`A` — a handful when the spectrum has one
    dominant (Perron) eigenvalue, as feature-affinity matrices do. For finite ``hops`` the
    Lanczos run only estimates :math:`\lambda`; the K-term series is then applied directly.

    Args:
        apply_A (callable): ``v -> A v`` for a symmetric :math:`A`, on ``[N]`` float64 vectors.
        b (Tensor): ``[N]`` start vector / right-hand side.
        r_frac (float): :math:`r\lambda`, in :math:`(0, 1)`.
        hops (int or float): :math:`K` or ``math.inf``. (default: ``math.inf``)
        tol (float): relative residual of the solve. (default: ``1e-10``)
        max_iter (int): maximum Lanczos steps. (default: ``300``)

    Returns:
        ``(y, lam)``.
    """
    from affgraph._checks import check_solver

    check_solver(tol, max_iter)
    if not (0.0 < r_frac < 1.0):
        raise ValueError(f"r_frac = {r_frac!r} must lie in (0, 1) (the decay as a fraction of "
                         "1/lambda_max(A)): at or above 1 the series diverges")
    beta0 = float(b.norm())
    if beta0 == 0:
        raise ValueError("the start vector is zero")
    Q = [b / beta0]
    alphas: list[float] = []
    betas: list[float] = []
    lam = float("nan")
    z = None
    for k in range(max_iter):
        w = apply_A(Q[-1])
        a = float(Q[-1] @ w)
        w = w - a * Q[-1] - (betas[-1] * Q[-2] if k > 0 else 0.0)
        Qm = torch.stack(Q)
        for _ in range(2):  # full reorthogonalisation
            w = w - Qm.T @ (Qm @ w)
        bk = float(w.norm())
        alphas.append(a)
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if betas:
            off = torch.tensor(betas, dtype=torch.float64)
            T = T + torch.diag(off, 1) + torch.diag(off, -1)
        evals, evecs = torch.linalg.eigh(T)
        lam = float(evals[-1])
        if lam <= 0:
            if bk <= 1e-14 * max(abs(float(evals[0])), 1e-300):
                raise ValueError("the largest eigenvalue of A is not positive: no Katz decay")
        else:
            ritz_ok = bk * float(evecs[-1, -1].abs()) <= 1e-10 * lam
            invariant = bk <= 1e-14 * lam
            if hops == math.inf:
                r = r_frac / lam
                e1 = torch.zeros(k + 1, dtype=torch.float64)
                e1[0] = beta0
                rhs = r * (T @ e1)
                z = torch.linalg.solve(torch.eye(k + 1, dtype=torch.float64) - r * T, rhs)
                lin_ok = r * bk * float(z[-1].abs()) <= tol * float(rhs.norm())
                if (ritz_ok and lin_ok) or invariant:
                    return Qm.T @ z, lam
            elif ritz_ok or invariant:
                break
        if bk == 0:
            break
        betas.append(bk)
        Q.append(w / bk)
    else:
        raise RuntimeError(f"Lanczos did not converge in max_iter={max_iter} steps")
    if hops == math.inf:
        raise RuntimeError("Lanczos stopped on a non-positive largest eigenvalue")
    y = propagate(apply_A, b, hops=hops, coeffs="katz", r=r_frac / lam)
    return y, lam
