r"""Attention over an explicit sparse support, executed as CSR.

Per head: logits on the edges by one sampled dense-dense product (SDDMM), a softmax per row
(a reshape when all rows have the same degree, a segment softmax otherwise), one sparse-dense
product (SpMM) for the values. No ``[E, D]`` copy of ``K`` or ``V`` is made. The backward pass is
hand-written with the same three primitives (``torch``'s own autograd through sparse CSR
products is incomplete):

.. math::
    d\mathbf{V} = \mathbf{P}^\top d\mathbf{O}, \quad
    dP_{ij} = \langle d\mathbf{o}_i, \mathbf{v}_j \rangle, \quad
    dL_{ij} = P_{ij}\big(dP_{ij} - \textstyle\sum_{j'} P_{ij'} dP_{ij'}\big), \quad
    d\mathbf{Q} = s\, d\mathbf{L}\, \mathbf{K}, \quad d\mathbf{K} = s\, d\mathbf{L}^\top \mathbf{Q}.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from affgraph.affinity import segment_softmax

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")


@dataclass
class CSR:
    """Structure of a graph sorted by target (rows) and by source (its transpose)."""

    ptr: Tensor      # [N + 1] row pointer (targets)
    col: Tensor      # [E] source of each edge, target-sorted order
    row: Tensor      # [E] target of each edge, target-sorted order
    perm: Tensor     # [E] position in the user's edge order of each target-sorted edge
    ptr_t: Tensor    # [M + 1] row pointer of the transpose (sources)
    col_t: Tensor    # [E] target of each edge in source-sorted order
    perm_t: Tensor   # [E] position in target-sorted order of each source-sorted edge
    num_dst: int
    num_src: int
    fixed_degree: int  # > 0 when every row has exactly this many edges, else 0

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_src: int, num_dst: int) -> "CSR":
        src, dst = edge_index[0], edge_index[1]
        perm = torch.argsort(dst * max(num_src, 1) + src, stable=True)
        col, row = src[perm], dst[perm]
        deg = torch.bincount(row, minlength=num_dst)
        ptr = torch.zeros(num_dst + 1, dtype=torch.long, device=src.device)
        ptr[1:] = torch.cumsum(deg, 0)
        perm_t = torch.argsort(col * max(num_dst, 1) + row, stable=True)
        deg_t = torch.bincount(col, minlength=num_src)
        ptr_t = torch.zeros(num_src + 1, dtype=torch.long, device=src.device)
        ptr_t[1:] = torch.cumsum(deg_t, 0)
        fixed = 0
        if num_dst > 0 and col.numel() > 0 and bool(deg.min() == deg.max()):
            fixed = int(deg[0])
        return cls(ptr, col, row, perm, ptr_t, row[perm_t], perm_t, num_dst, num_src, fixed)

    def matrix(self, values: Tensor) -> Tensor:
        """``[N, M]`` sparse CSR matrix with ``values`` in target-sorted order."""
        return torch.sparse_csr_tensor(self.ptr, self.col, values, (self.num_dst, self.num_src))

    def matrix_t(self, values: Tensor) -> Tensor:
        """``[M, N]`` transpose, ``values`` given in target-sorted order."""
        return torch.sparse_csr_tensor(self.ptr_t, self.col_t, values[self.perm_t],
                                       (self.num_src, self.num_dst))

    def sddmm(self, a: Tensor, b: Tensor, scale: float = 1.0) -> Tensor:
        """``scale * <a_i, b_j>`` on every edge ``j -> i`` (target-sorted order), ``[E]``."""
        pattern = self.matrix(a.new_zeros(self.col.numel()))
        return torch.sparse.sampled_addmm(pattern, a, b.T, beta=0.0, alpha=scale).values()

    def softmax(self, logits: Tensor) -> Tensor:
        if self.fixed_degree:
            return torch.softmax(logits.view(-1, self.fixed_degree), dim=1).view(-1)
        return segment_softmax(logits, self.row, self.num_dst)

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


class _SpMM(torch.autograd.Function):
    """``P @ x`` for ``P`` the CSR matrix with ``values``; differentiable in both."""

    @staticmethod
    def forward(ctx, values: Tensor, x: Tensor, csr: CSR) -> Tensor:
        ctx.csr = csr
        ctx.save_for_backward(values, x)
        return csr.matrix(values) @ x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out: Tensor):
        values, x = ctx.saved_tensors
        csr = ctx.csr
        d_out = d_out.contiguous()
        d_val = csr.sddmm(d_out, x) if ctx.needs_input_grad[0] else None
        dx = csr.matrix_t(values) @ d_out if ctx.needs_input_grad[1] else None
        return d_val, dx, None


def _float(t: Tensor) -> Tensor:
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def spmm(csr: CSR, values: Tensor, x: Tensor) -> Tensor:
    """``P x`` per head: ``values [E, H]`` (target-sorted), ``x [M, H, C]`` -> ``[N, H, C]``.

    The linear operator of one attention hop (used for multi-hop diffusion)."""
    dtype = x.dtype
    values, x = _float(values), _float(x).to(_float(values).dtype)
    outs = [_SpMM.apply(values[:, h].contiguous(), x[:, h].contiguous(), csr)
            for h in range(x.size(1))]
    return torch.stack(outs, 1).to(dtype)


def edge_softmax(q: Tensor, k: Tensor, csr: CSR, scale: float) -> Tensor:
    """The attention weights ``[E, H]`` (target-sorted order), differentiable in ``q, k``."""
    q, k = _float(q), _float(k)
    return torch.stack([csr.softmax(_SDDMM.apply(q[:, h].contiguous(), k[:, h].contiguous(),
                                                 csr, scale)) for h in range(q.size(1))], 1)


def csr_attention(q: Tensor, k: Tensor, v: Tensor, csr: CSR, scale: float,
                  dropout: float = 0.0, training: bool = False) -> Tuple[Tensor, Tensor]:
    """``(out [N, H, Dv], alpha [E, H])`` with ``alpha`` in target-sorted order (the order of
    ``csr``; ``alpha[inverse(csr.perm)]`` is the user's edge order). Differentiable in
    ``q, k, v`` and through ``alpha``. Half precision is computed in float32 (the sparse CPU
    kernels need it) and cast back."""
    dtype = q.dtype
    q, k, v = _float(q), _float(k), _float(v)
    alphas, outs = [], []
    for h in range(q.size(1)):
        alpha = csr.softmax(_SDDMM.apply(q[:, h].contiguous(), k[:, h].contiguous(), csr, scale))
        weight = torch.nn.functional.dropout(alpha, dropout, training) if dropout > 0 else alpha
        outs.append(_SpMM.apply(weight, v[:, h].contiguous(), csr))
        alphas.append(alpha)
    return torch.stack(outs, 1).to(dtype), torch.stack(alphas, 1).to(dtype)


def to_user_order(csr: CSR, values: Tensor) -> Tensor:
    """Reorder target-sorted edge values to the user's ``edge_index`` order."""
    inv = torch.empty_like(csr.perm)
    inv[csr.perm] = torch.arange(csr.perm.numel(), device=inv.device)
    return values[inv]
