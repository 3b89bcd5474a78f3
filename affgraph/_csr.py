r"""Attention over an explicit sparse support, executed as CSR.

Per head: logits on the edges by one sampled dense-dense product (SDDMM), a softmax per row
(a reshape when all rows have the same degree, a segment softmax otherwise), one sparse-dense
product (SpMM) for the values. No ``[E, D]`` copy of ``K`` or ``V`` is made. The backward pass is
hand-written with the same three primitives (``torch``'s own autograd through sparse CSR
products is incomplete). With several heads the primitives run once on the block-diagonal
matrix of all heads (:meth:`CSR.batched`: head ``h`` owns rows ``hN .. hN+N-1``) rather than
once per head, while the copied structure stays small (``H * E <=`` :data:`BATCH_HEADS_MAX`):

.. math::
    d\mathbf{V} = \mathbf{P}^\top d\mathbf{O}, \quad
    dP_{ij} = \langle d\mathbf{o}_i, \mathbf{v}_j \rangle, \quad
    dL_{ij} = P_{ij}\big(dP_{ij} - \textstyle\sum_{j'} P_{ij'} dP_{ij'}\big), \quad
    d\mathbf{Q} = s\, d\mathbf{L}\, \mathbf{K}, \quad d\mathbf{K} = s\, d\mathbf{L}^\top \mathbf{Q}.
"""
from __future__ import annotations

import math
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from affgraph.affinity import segment_softmax

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


class CSR:
    """Structure of a graph sorted by target (rows), and, built on first use (backward), by
    source (its transpose). Columns within a row keep the input order on the CPU (its kernels
    do not need them sorted; an already target-sorted ``edge_index`` is used without a sort);
    other devices sort them (cuSPARSE)."""

    def __init__(self, edge_index: Tensor, num_src: int, num_dst: int) -> None:
        src, dst = edge_index[0], edge_index[1]
        e = src.numel()
        self.num_src, self.num_dst = num_src, num_dst
        if src.device.type == "cpu":
            ordered = e < 2 or bool((dst[1:] >= dst[:-1]).all())
            key = dst
        else:
            key = dst * max(num_src, 1) + src
            ordered = e < 2 or bool((key[1:] >= key[:-1]).all())
        #: position in the user's edge order of each target-sorted edge (None: identity)
        self.perm: Optional[Tensor] = None if ordered else torch.argsort(key, stable=True)
        self.col = src if ordered else src[self.perm]
        self.row = dst if ordered else dst[self.perm]
        deg = torch.bincount(self.row, minlength=num_dst)
        self.ptr = torch.zeros(num_dst + 1, dtype=torch.long, device=src.device)
        self.ptr[1:] = torch.cumsum(deg, 0)
        #: every row has exactly this many edges (> 0), else 0
        self.fixed_degree = int(deg[0]) if num_dst > 0 and e > 0 and \
            bool(deg.min() == deg.max()) else 0
        self._t: Optional[Tuple[Tensor, Tensor, Tensor]] = None
        self._batched: dict[int, "CSR"] = {}

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_src: int, num_dst: int) -> "CSR":
        return cls(edge_index, num_src, num_dst)

    def batched(self, heads: int) -> "CSR":
        """The block-diagonal structure of ``heads`` copies (copy ``h`` maps sources
        ``hM ..`` to targets ``hN ..``), built once per head count; values are laid out head
        by head, each head in this structure's target-sorted order."""
        if heads == 1:
            return self
        if heads not in self._batched:
            e, dev = self.col.numel(), self.col.device
            h = torch.arange(heads, device=dev).unsqueeze(1)
            out = CSR.__new__(CSR)
            out.num_src, out.num_dst = heads * self.num_src, heads * self.num_dst
            out.perm, out.fixed_degree, out._t, out._batched = None, self.fixed_degree, None, {}
            out.col = (self.col + h * self.num_src).reshape(-1)
            out.row = (self.row + h * self.num_dst).reshape(-1)
            out.ptr = torch.cat([(self.ptr[:-1] + h * e).reshape(-1),
                                 self.ptr.new_full((1,), heads * e)])
            self._batched[heads] = out
        return self._batched[heads]

    def transpose_structure(self) -> Tuple[Tensor, Tensor, Tensor]:
        """``(ptr_t, col_t, perm_t)``: the transpose sorted by source; ``perm_t`` maps it to
        target-sorted positions."""
        if self._t is None:
            perm_t = torch.argsort(self.col * max(self.num_dst, 1) + self.row, stable=True)
            deg_t = torch.bincount(self.col, minlength=self.num_src)
            ptr_t = torch.zeros(self.num_src + 1, dtype=torch.long, device=self.col.device)
            ptr_t[1:] = torch.cumsum(deg_t, 0)
            self._t = (ptr_t, self.row[perm_t], perm_t)
        return self._t

    def matrix(self, values: Tensor) -> Tensor:
        """``[N, M]`` sparse CSR matrix with ``values`` in target-sorted order."""
        return torch.sparse_csr_tensor(self.ptr, self.col, values, (self.num_dst, self.num_src),
                                       check_invariants=False)

    def matrix_t(self, values: Tensor) -> Tensor:
        """``[M, N]`` transpose, ``values`` given in target-sorted order."""
        ptr_t, col_t, perm_t = self.transpose_structure()
        return torch.sparse_csr_tensor(ptr_t, col_t, values[perm_t], (self.num_src, self.num_dst),
                                       check_invariants=False)

    def sddmm(self, a: Tensor, b: Tensor, scale: float = 1.0) -> Tensor:
        """``scale * <a_i, b_j>`` on every edge ``j -> i`` (target-sorted order), ``[E]``.

        On the CPU, widths 2..7 are zero-padded to 8, the narrowest width at which torch's
        CPU kernel runs at full speed (zero columns add nothing to the products)."""
        if self.col.numel() > self.num_dst * self.num_src:
            # a multigraph with more edges than matrix entries: torch's sampled product
            # refuses it (its dense-to-sparse copy needs nnz <= N * M); gather per edge instead
            return (a[self.row] * b[self.col]).sum(-1) * scale
        if a.device.type == "cpu" and 1 < a.size(1) < 8:
            pad = 8 - a.size(1)
            a = torch.nn.functional.pad(a, (0, pad))
            b = torch.nn.functional.pad(b, (0, pad))
        pattern = self.matrix(a.new_zeros(self.col.numel()))
        return torch.sparse.sampled_addmm(pattern, a, b.T, beta=0.0, alpha=scale).values()

    def softmax(self, logits: Tensor, keep: Optional[Tensor] = None) -> Tensor:
        """Softmax of ``[E]`` edge logits over each row; with a boolean ``keep``, over each
        row's kept edges only (dropped edges get 0, and so does a row without a kept edge)."""
        if keep is not None:
            return self._kept_softmax(logits, keep)
        if self.fixed_degree:
            return torch.softmax(logits.view(-1, self.fixed_degree), dim=1).view(-1)
        return segment_softmax(logits, self.row, self.num_dst)

    def _kept_softmax(self, logits: Tensor, keep: Tensor) -> Tensor:
        masked = logits.masked_fill(~keep, -math.inf)
        m = logits.new_full((self.num_dst,), -math.inf).scatter_reduce(
            0, self.row, masked.detach(), "amax", include_self=True)
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))  # rows with no kept edge
        e = torch.exp(masked - m[self.row])  # exactly 0 on dropped edges
        z = self.row_sum(e)
        return e / torch.where(z > 0, z, torch.ones_like(z))[self.row]

    def row_sum(self, values: Tensor) -> Tensor:
        if self.fixed_degree:
            return values.view(-1, self.fixed_degree).sum(1)
        return values.new_zeros(self.num_dst).index_add_(0, self.row, values)


class _SDDMM(torch.autograd.Function):
    """``scale * <a_i, b_j>`` on the edges; differentiable in ``a`` and ``b``."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, csr: CSR, scale: float) -> Tensor:
        ctx.csr, ctx.scale = csr, scale
        ctx.save_for_backward(a, b)
        return csr.sddmm(a, b, scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_val: Tensor):
        a, b = ctx.saved_tensors
        csr, s = ctx.csr, ctx.scale
        d_val = d_val.contiguous() * s
        da = csr.matrix(d_val) @ b if ctx.needs_input_grad[0] else None
        db = csr.matrix_t(d_val) @ a if ctx.needs_input_grad[1] else None
        return da, db, None, None


def _csr_mm(mat: Tensor, x: Tensor) -> Tensor:
    """``mat @ x`` for a CSR ``mat`` and a dense ``x``; on the CPU by the row-parallel kernel
    of ``torch.sparse.mm(mat, x, "sum")``, about 1.7x faster than ``@`` there (2 threads, 2M
    rows, 64 columns)."""
    if mat.device.type == "cpu" and mat.values().numel() > 0 and x.numel() > 0:
        return torch.sparse.mm(mat, x, "sum")
    return mat @ x


class _SpMM(torch.autograd.Function):
    """``P @ x`` for ``P`` the CSR matrix with ``values``; differentiable in both."""

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, csr: CSR) -> Tensor:
        ctx.csr = csr
        ctx.save_for_backward(values, x)
        return _csr_mm(csr.matrix(values), x)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor):
        values, x = ctx.saved_tensors
        csr = ctx.csr
        d_out = d_out.contiguous()
        d_val = csr.sddmm(d_out, x) if ctx.needs_input_grad[0] else None
        dx = _csr_mm(csr.matrix_t(values), d_out) if ctx.needs_input_grad[1] else None
        return d_val, dx, None


def _float(t: Tensor) -> Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


#: most ``heads * edges`` for which the heads share one block-diagonal product (the copied
#: index structure costs about 40 bytes per entry); larger supports loop over the heads
BATCH_HEADS_MAX = 1 << 21


def _batch_heads(csr: CSR, heads: int) -> bool:
    return heads > 1 and heads * csr.col.numel() <= BATCH_HEADS_MAX


def _head_major(x: Tensor) -> Tensor:
    """``[M, H, C]`` -> ``[H * M, C]`` (free when ``x`` came from :func:`_node_major`)."""
    return x.transpose(0, 1).reshape(-1, x.size(2))


def _node_major(y: Tensor, heads: int) -> Tensor:
    """``[H * N, C]`` -> ``[N, H, C]`` (a view)."""
    return y.view(heads, -1, y.size(1)).transpose(0, 1)


@torch.compiler.disable
def spmm(csr: CSR, values: Tensor, x: Tensor) -> Tensor:
    """``P x`` per head: ``values [E, H]`` (target-sorted), ``x [M, H, C]`` -> ``[N, H, C]``.

    The linear operator of one attention hop (used for multi-hop diffusion)."""
    dtype, heads = x.dtype, x.size(1)
    values, x = _float(values), _float(x).to(_float(values).dtype)
    if _batch_heads(csr, heads):
        out = _SpMM.apply(values.t().reshape(-1), _head_major(x), csr.batched(heads))
        return _node_major(out, heads).to(dtype)
    if heads == 1:  # no copy into a stacked output
        return _SpMM.apply(values[:, 0].contiguous(), x[:, 0], csr).unsqueeze(1).to(dtype)
    outs = [_SpMM.apply(values[:, h].contiguous(), x[:, h].contiguous(), csr)
            for h in range(heads)]
    return torch.stack(outs, 1).to(dtype)


def _weights(q: Tensor, k: Tensor, csr: CSR, scale: float, drop: float = 0.0,
             bias: Optional[Tensor] = None) -> Tensor:
    """The attention weights ``[E, H]`` of every head (target-sorted order): the logits
    (plus ``bias [E, H]`` when given) softmaxed per row, over a random ``1 - drop`` share of
    each row's edges when ``drop > 0`` (one ``[E, H]`` draw of ``torch.rand`` in the logits'
    dtype, kept where ``>= drop``)."""
    heads = q.size(1)
    keep = None
    if drop > 0:
        keep = torch.rand(csr.col.numel(), heads, dtype=q.dtype, device=q.device) >= drop
    if _batch_heads(csr, heads):
        big = csr.batched(heads)
        logits = _SDDMM.apply(_head_major(q), _head_major(k), big, scale)
        if bias is not None:
            logits = logits + bias.t().reshape(-1)
        alpha = big.softmax(logits, None if keep is None else keep.t().reshape(-1))
        return alpha.view(heads, -1).t()
    out = []
    for h in range(heads):
        logits = _SDDMM.apply(q[:, h].contiguous(), k[:, h].contiguous(), csr, scale)
        if bias is not None:
            logits = logits + bias[:, h]
        out.append(csr.softmax(logits, None if keep is None else keep[:, h]))
    return torch.stack(out, 1)


@torch.compiler.disable
def csr_structure(edge_index: Tensor, num_src: int, num_dst: int) -> CSR:
    """The :class:`CSR` structure of ``edge_index`` (run eagerly under ``torch.compile``: its
    sort and degree checks depend on the data)."""
    return CSR(edge_index, num_src, num_dst)


@torch.compiler.disable
def to_csr_order(csr: CSR, values: Tensor) -> Tensor:
    """Reorder per-edge values ``[E, ...]`` from the user's edge order to ``csr``'s."""
    return values if csr.perm is None else values[csr.perm]


@torch.compiler.disable
def edge_bias(q: Tensor, edge: Tensor, csr: CSR, scale: float) -> Tensor:
    r"""``scale * <q_i, e_ij>`` on every edge ``j -> i``, ``[E, H]`` (target-sorted ``edge
    [E, H, D]``): the part of the logit :math:`\mathbf{q}_i^\top(\mathbf{k}_j +
    \mathbf{e}_{ij})` that the edge features add."""
    q = _float(q)
    return (q[csr.row] * _float(edge).to(q.dtype)).sum(-1) * scale


@torch.compiler.disable
def edge_aggregate(csr: CSR, weights: Tensor, edge: Tensor) -> Tensor:
    r""":math:`\sum_j P_{ij} \mathbf{e}_{ij}` per target: ``weights [E, H]`` and ``edge
    [E, H, C]`` (both target-sorted) -> ``[N, H, C]``."""
    w = _float(weights)
    msg = w.unsqueeze(-1) * _float(edge).to(w.dtype)
    return msg.new_zeros(csr.num_dst, msg.size(1), msg.size(2)).index_add_(0, csr.row, msg)


@torch.compiler.disable
def edge_softmax(q: Tensor, k: Tensor, csr: CSR, scale: float, drop: float = 0.0,
                 bias: Optional[Tensor] = None) -> Tensor:
    """The attention weights ``[E, H]`` (target-sorted order), differentiable in ``q, k``
    (and ``bias [E, H]``, added to the logits); ``drop > 0`` drops each edge with that
    probability and softmaxes over the rest of its row (every row then sums to 1, or to 0 if
    it lost all its edges)."""
    q = _float(q)
    return _weights(q, _float(k), csr, scale, drop,
                    None if bias is None else bias.to(q.dtype))


@torch.compiler.disable
def csr_attention(q: Tensor, k: Tensor, v: Tensor, csr: CSR, scale: float,
                  dropout: float = 0.0, training: bool = False,
                  edge: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    r"""``(out [N, H, Dv], alpha [E, H])`` with ``alpha`` in target-sorted order (the order of
    ``csr``; ``alpha[inverse(csr.perm)]`` is the user's edge order). Differentiable in
    ``q, k, v`` (and ``edge``) and through ``alpha``. Half precision is computed in float32
    (the sparse CPU kernels need it) and cast back.

    With edge features ``edge [E, H, D]`` (user order, ``D = Dv`` = the key width) they enter
    keys and values as in ``TransformerConv``: :math:`\alpha_{ij} = \operatorname{softmax}_j
    (s\,\mathbf{q}_i^\top(\mathbf{k}_j + \mathbf{e}_{ij}))`, :math:`\mathbf{o}_i =
    \sum_j \alpha_{ij}(\mathbf{v}_j + \mathbf{e}_{ij})`, computed as the SDDMM plus
    :func:`edge_bias` and the SpMM plus :func:`edge_aggregate` (no per-edge copy of ``K`` or
    ``V``)."""
    dtype = q.dtype
    q, k, v = _float(q), _float(k), _float(v)
    e = None if edge is None else to_csr_order(csr, _float(edge).to(q.dtype))
    bias = None if e is None else edge_bias(q, e, csr, scale)
    alpha = _weights(q, k, csr, scale, bias=bias)
    weight = torch.nn.functional.dropout(alpha, dropout, training) if dropout > 0 else alpha
    out = spmm(csr, weight, v)
    if e is not None:
        out = out + edge_aggregate(csr, weight, e)
    return out.to(dtype), alpha.to(dtype)


@torch.compiler.disable
def to_user_order(csr: CSR, values: Tensor) -> Tensor:
    """Reorder target-sorted edge values to the user's ``edge_index`` order."""
    if csr.perm is None:
        return values
    inv = torch.empty_like(csr.perm)
    inv[csr.perm] = torch.arange(csr.perm.numel(), device=inv.device)
    return values[inv]
