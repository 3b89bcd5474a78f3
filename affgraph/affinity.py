r"""Kernels and normalisations: the weight of each pair of an affinity graph.

Convention everywhere in affgraph (PyG's ``source_to_target`` flow): ``edge_index[0]`` is the
source ``j``, ``edge_index[1]`` the target ``i``, a message flows ``j -> i`` and row ``i`` of the
affinity matrix ``A`` holds the incoming edges of ``i``.

Every kernel has a dense form (``edge_index=None``: all pairs, ``out[i, j] = kappa(q_i, k_j)``)
and an edge-list form (``out[e] = kappa(q_{edge_index[1, e]}, k_{edge_index[0, e]})``), so that
``dense[edge_index[1], edge_index[0]] == edge_form``. Inputs are ``[N, D]`` or multi-head
``[N, H, D]``; dense outputs are ``[N, M]`` / ``[N, M, H]``, edge outputs ``[E]`` / ``[E, H]``.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor

from affgraph._checks import check_edge_index, check_tensor

Bilinear = Union[Tensor, Tuple[Tensor, Tensor]]

NORMALIZATIONS = ("softmax", "row", "sym", "none")


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
def _check_pair(q: Tensor, k: Tensor) -> None:
    check_tensor("q", q)
    check_tensor("k", k)
    if q.dim() not in (2, 3) or k.dim() != q.dim():
        raise ValueError(
            f"q and k must both be [N, D] or [N, H, D], got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if q.dim() == 3 and q.size(1) != k.size(1):
        raise ValueError(f"q and k have different numbers of heads: {q.size(1)} vs {k.size(1)}")


def _pairwise(q: Tensor, k: Tensor, edge_index: Optional[Tensor], dense_fn, edge_fn) -> Tensor:
    """Dispatch a kernel to its dense (``[N, M(, H)]``) or edge (``[E(, H)]``) form."""
    if edge_index is None:
        if q.dim() == 2:
            return dense_fn(q, k)
        # (H, N, D) x (H, M, D) -> (H, N, M) -> (N, M, H)
        return dense_fn(q.transpose(0, 1), k.transpose(0, 1)).permute(1, 2, 0)
    check_edge_index(edge_index, k.size(0), q.size(0))
    return edge_fn(q[edge_index[1]], k[edge_index[0]])


def _apply_bilinear(q: Tensor, k: Tensor, bilinear: Optional[Bilinear]) -> Tuple[Tensor, Tensor]:
    if bilinear is None:
        return q, k
    if isinstance(bilinear, Tensor):  # full form W: q W k^T
        if bilinear.dim() != 2 or bilinear.size(0) != q.size(-1) or bilinear.size(1) != k.size(-1):
            raise ValueError(
                f"bilinear W must be [{q.size(-1)}, {k.size(-1)}], got {tuple(bilinear.shape)}"
            )
        return q @ bilinear, k
    w_q, w_k = bilinear  # low rank: W = W_Q W_K^T
    if w_q.dim() != 2 or w_k.dim() != 2 or w_q.size(1) != w_k.size(1):
        raise ValueError("low-rank bilinear form needs W_Q [D, r] and W_K [D_k, r]")
    if w_q.size(0) != q.size(-1) or w_k.size(0) != k.size(-1):
        raise ValueError(
            f"W_Q must have {q.size(-1)} rows and W_K {k.size(-1)} rows, "
            f"got {tuple(w_q.shape)} and {tuple(w_k.shape)}"
        )
    return q @ w_q, k @ w_k


def dot_product(q: Tensor, k: Tensor, edge_index: Optional[Tensor] = None, *,
                scale: Optional[float] = None, bilinear: Optional[Bilinear] = None) -> Tensor:
    r"""Scaled dot-product kernel (the logits of attention).

    .. math::
        \kappa(\mathbf{q}_i, \mathbf{k}_j) = s\, \mathbf{q}_i^\top \mathbf{W} \mathbf{k}_j,
        \qquad s = 1/\sqrt{D} \text{ by default},

    with :math:`\mathbf{W} = \mathbf{I}` unless ``bilinear`` gives a full ``W`` (``[D, D_k]``)
    or a low-rank pair ``(W_Q, W_K)`` with :math:`\mathbf{W} = \mathbf{W}_Q \mathbf{W}_K^\top`.

    Args:
        q (Tensor): queries ``[N, D]`` or ``[N, H, D]``.
        k (Tensor): keys ``[M, D_k]`` or ``[M, H, D_k]``.
        edge_index (Tensor, optional): ``[2, E]``; if given, only the pairs ``(i, j)`` of its
            edges ``j -> i`` are evaluated. (default: :obj:`None`, all pairs)
        scale (float, optional): :math:`s`; default :math:`1/\sqrt{D}` of the (projected) width.
        bilinear (Tensor or (Tensor, Tensor), optional): the bilinear form. (default: identity)

    Shapes:
        dense ``[N, M]`` / ``[N, M, H]``; edge form ``[E]`` / ``[E, H]``.
    """
    _check_pair(q, k)
    q, k = _apply_bilinear(q, k, bilinear)
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k widths differ: {q.size(-1)} vs {k.size(-1)}")
    s = 1.0 / math.sqrt(q.size(-1)) if scale is None else float(scale)
    return _pairwise(q, k, edge_index,
                     lambda a, b: (a @ b.transpose(-1, -2)) * s,
                     lambda a, b: (a * b).sum(-1) * s)


def cosine(q: Tensor, k: Tensor, edge_index: Optional[Tensor] = None, *,
           eps: float = 1e-12) -> Tensor:
    r"""Cosine similarity kernel.

    .. math::
        \kappa(\mathbf{q}_i, \mathbf{k}_j) =
        \frac{\mathbf{q}_i^\top \mathbf{k}_j}{\max(\|\mathbf{q}_i\| \|\mathbf{k}_j\|, \epsilon)}

    A zero vector has similarity 0 with everything (never NaN).

    Args:
        q (Tensor): ``[N, D]`` or ``[N, H, D]``.
        k (Tensor): ``[M, D]`` or ``[M, H, D]``.
        edge_index (Tensor, optional): restrict to the edges ``j -> i``. (default: all pairs)
        eps (float): floor of the norm product. (default: ``1e-12``)
    """
    _check_pair(q, k)
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k widths differ: {q.size(-1)} vs {k.size(-1)}")
    qn = q / q.norm(dim=-1, keepdim=True).clamp_min(math.sqrt(eps))
    kn = k / k.norm(dim=-1, keepdim=True).clamp_min(math.sqrt(eps))
    return dot_product(qn, kn, edge_index, scale=1.0)


def rbf(q: Tensor, k: Tensor, edge_index: Optional[Tensor] = None, *,
        gamma: Optional[float] = None) -> Tensor:
    r"""Gaussian RBF kernel (scikit-learn's ``rbf_kernel`` convention).

    .. math::
        \kappa(\mathbf{q}_i, \mathbf{k}_j) = \exp(-\gamma \|\mathbf{q}_i - \mathbf{k}_j\|^2),
        \qquad \gamma = 1/D \text{ by default}.

    Args:
        q (Tensor): ``[N, D]`` or ``[N, H, D]``.
        k (Tensor): ``[M, D]`` or ``[M, H, D]``.
        edge_index (Tensor, optional): restrict to the edges ``j -> i``. (default: all pairs)
        gamma (float, optional): inverse squared length scale, ``> 0``. (default: ``1/D``)
    """
    _check_pair(q, k)
    if q.size(-1) != k.size(-1):
        raise ValueError(f"q and k widths differ: {q.size(-1)} vs {k.size(-1)}")
    g = 1.0 / q.size(-1) if gamma is None else float(gamma)
    if not g > 0:
        raise ValueError(f"gamma must be positive, got {gamma}")

    def dense(a: Tensor, b: Tensor) -> Tensor:
        d2 = (a * a).sum(-1, keepdim=True) + (b * b).sum(-1).unsqueeze(-2) \
            - 2 * a @ b.transpose(-1, -2)
        return torch.exp(-g * d2.clamp_min(0))

    return _pairwise(q, k, edge_index, dense, lambda a, b: torch.exp(-g * ((a - b) ** 2).sum(-1)))


# --------------------------------------------------------------------------------------------
# a dtype in which logits stay finite
# --------------------------------------------------------------------------------------------
def max_abs(*tensors: Tensor) -> list:
    r""":math:`\max |x|` of each tensor (``0.0`` for an empty one) as Python floats, with one
    device-to-host transfer for all of them."""
    if not tensors:
        return []
    vals = [t.detach().abs().amax().double() if t.numel() else
            torch.zeros((), dtype=torch.float64, device=t.device) for t in tensors]
    return torch.stack([v.to(vals[0].device) for v in vals]).tolist()


def finite_dtype(dtype: torch.dtype, bound: float, what: str) -> torch.dtype:
    r"""The narrowest of ``dtype``, float32 and float64 (never narrower than ``dtype``) whose
    range holds ``bound`` with a margin of 4, :math:`\text{bound} \le \max / 4`.

    ``bound`` is an upper bound on the magnitude of what a kernel computes from inputs in
    ``dtype`` (e.g. :math:`\max|q| \max|k| \sqrt{D}` for scaled dot-product logits, which
    Cauchy-Schwarz bounds by ``D`` times the product of the largest entries over
    :math:`\sqrt{D}`); the margin keeps differences of two such values (``logit - max``)
    finite too. Raises a ``ValueError`` naming ``what`` when even float64 cannot hold it.
    """
    bits = torch.finfo(dtype).bits
    for cand in (dtype, torch.float32, torch.float64):
        if torch.finfo(cand).bits >= bits and bound <= torch.finfo(cand).max / 4:
            return cand
    raise ValueError(f"{what} can reach {bound:.3g}, which overflows float64 "
                     f"(max {torch.finfo(torch.float64).max:.3g}); scale the inputs down")


# --------------------------------------------------------------------------------------------
# normalisations
# --------------------------------------------------------------------------------------------
def segment_softmax(src: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    r"""Softmax of ``src`` (``[E]`` or ``[E, ...]``) over the groups of equal ``index``.

    .. math::
        \alpha_e = \frac{\exp(s_e - m_{i})}{\sum_{e': \mathrm{index}_{e'} = i} \exp(s_{e'} - m_i)},
        \qquad m_i = \max_{e: \mathrm{index}_e = i} s_e.

    Groups without an element simply do not occur; no NaN is produced.
    """
    shape = (num_nodes,) + tuple(src.shape[1:])
    idx = index.view((-1,) + (1,) * (src.dim() - 1)).expand_as(src)
    m = src.new_full(shape, -math.inf).scatter_reduce(0, idx, src.detach(), "amax",
                                                       include_self=True)
    e = torch.exp(src - m.gather(0, idx))
    z = src.new_zeros(shape).scatter_add(0, idx, e)
    return e / z.gather(0, idx)


def _scatter_sum(src: Tensor, index: Tensor, num_nodes: int) -> Tensor:
    out = src.new_zeros((num_nodes,) + tuple(src.shape[1:]))
    return out.index_add(0, index, src)


def normalize_edge_weight(edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int,
                          mode: str = "sym", add_self_loops: bool = False,
                          fill_value: float = 1.0) -> Tuple[Tensor, Tensor]:
    r"""Normalise the edge weights of a graph, per target row (``edge_index[1]``).

    With :math:`w_{ij}` the weight of the edge :math:`j \to i` and
    :math:`d_i = \sum_j w_{ij}` the (weighted in-) degree of the target :math:`i`:

    .. math::
        \text{softmax:}\ \frac{e^{w_{ij}}}{\sum_{j'} e^{w_{ij'}}} \qquad
        \text{row:}\ \frac{w_{ij}}{d_i} \qquad
        \text{sym:}\ \frac{w_{ij}}{\sqrt{d_i d_j}} \qquad
        \text{none:}\ w_{ij}

    ``"sym"`` is :math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` with the degrees computed on
    the target index exactly as PyG's ``gcn_norm``. A zero degree gives weight 0 (never inf/NaN).
    With ``add_self_loops``, every node without a self-loop gets one of weight ``fill_value``
    (existing self-loops keep theirs), as in ``gcn_norm`` (``add_remaining_self_loops``).

    Args:
        edge_index (Tensor): ``[2, E]``, ``edge_index[0]`` source ``j``, ``edge_index[1]``
            target ``i``.
        edge_weight (Tensor, optional): ``[E]`` or ``[E, H]`` (one graph per head); ``None``
            means all ones (for ``"softmax"``: all-zero logits, i.e. uniform).
        num_nodes (int): number of nodes ``N``.
        mode (str): ``"softmax"``, ``"row"``, ``"sym"`` or ``"none"``. (default: ``"sym"``)
        add_self_loops (bool): add the missing self-loops first. (default: :obj:`False`)
        fill_value (float): weight (logit for softmax) of added self-loops. (default: ``1.0``)

    Returns:
        ``(edge_index, edge_weight)``: the (possibly extended) edges and normalised weights.

    Raises:
        ValueError: unknown ``mode``, bad shapes, non-finite weights, indices out of range, or
            negative degrees for ``"sym"`` (the square root would be undefined).
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation mode {mode!r}; choose one of {NORMALIZATIONS}")
    if not isinstance(num_nodes, int) or num_nodes < 0:
        raise ValueError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
    check_edge_index(edge_index, num_nodes)
    if edge_weight is not None:
        check_tensor("edge_weight", edge_weight)
        if not edge_weight.is_floating_point():
            raise ValueError(f"edge_weight must be floating point, got {edge_weight.dtype}")
        if edge_weight.dim() not in (1, 2) or edge_weight.size(0) != edge_index.size(1):
            raise ValueError(
                f"edge_weight must be [E] or [E, H] with E = {edge_index.size(1)}, "
                f"got {tuple(edge_weight.shape)}"
            )
    if add_self_loops:
        from torch_geometric.utils import add_remaining_self_loops

        edge_index, edge_weight = add_remaining_self_loops(edge_index, edge_weight, fill_value,
                                                           num_nodes)
    if edge_weight is None:
        edge_weight = torch.full((edge_index.size(1),), 0.0 if mode == "softmax" else 1.0,
                                 device=edge_index.device)
    src, dst = edge_index[0], edge_index[1]
    if mode == "none":
        return edge_index, edge_weight
    if mode == "softmax":
        return edge_index, segment_softmax(edge_weight, dst, num_nodes)
    deg = _scatter_sum(edge_weight, dst, num_nodes)
    if mode == "row":
        inv = torch.where(deg == 0, torch.zeros_like(deg), 1.0 / deg.masked_fill(deg == 0, 1.0))
        return edge_index, edge_weight * inv[dst]
    if bool((deg < 0).any()):
        raise ValueError("negative weighted degree: 'sym' normalisation needs non-negative degrees")
    inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    return edge_index, inv_sqrt[src] * edge_weight * inv_sqrt[dst]
