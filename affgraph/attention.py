r"""Attention as one hop of message passing over a softmax-normalised affinity graph.

Dispatch by support (see :mod:`affgraph.supports`):

* complete / causal, one sequence: one call of
  :func:`torch.nn.functional.scaled_dot_product_attention` on ``(H, N, D)`` views;
* complete / causal over a PyG ``batch``: ``to_dense_batch`` and SDPA with a key-padding mask;
* sliding window: blocked local attention — the sequence is cut in blocks of ``b >= w``
  queries, each attending to its own block and its neighbours through SDPA with an
  ``[N / b, b, 3b]`` mask (``2b`` keys if causal), ``O(N b D)`` work instead of ``O(N^2 D)``;
* explicit ``edge_index``: CSR (:mod:`affgraph._csr`): SDDMM logits, per-row softmax, SpMM.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from affgraph import supports as _supports
from affgraph._checks import check_batch, check_edge_index, check_finite_all
from affgraph._csr import CSR, csr_attention, edge_softmax as _edge_softmax, to_user_order

AttentionResult = Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]

#: smallest block of the blocked sliding-window attention
MIN_WINDOW_BLOCK = 32


def check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    """Shapes ``q [N, H, D]``, ``k [M, H, D]``, ``v [M, H, Dv]``, finite floating values."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3:
            raise ValueError(f"{name} must be [N, H, D], got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {t.dtype}")
    if q.size(1) != k.size(1) or k.size(1) != v.size(1):
        raise ValueError(f"q, k, v must have the same number of heads, got "
                         f"{q.size(1)}, {k.size(1)}, {v.size(1)}")
    if q.size(2) != k.size(2):
        raise ValueError(f"q and k widths differ: {q.size(2)} vs {k.size(2)}")
    if k.size(0) != v.size(0):
        raise ValueError(f"k and v must have the same number of items: {k.size(0)} vs {v.size(0)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v dtypes differ: {q.dtype}, {k.dtype}, {v.dtype}")
    check_finite_all(("q", "k", "v"), (q, k, v))


def attention(q: Tensor, k: Tensor, v: Tensor, edge_index: Optional[Tensor] = None, *,
              batch: Optional[Tensor] = None, causal: bool = False,
              window: Optional[int] = None, return_attention: bool = False,
              dropout_p: float = 0.0) -> AttentionResult:
    r"""Scaled dot-product attention restricted to a support, node-major as in PyG.

    .. math::
        \mathbf{o}_i = \sum_{j \in \mathcal{N}(i)} \alpha_{ij} \mathbf{v}_j, \qquad
        \alpha_{ij} = \frac{\exp(\mathbf{q}_i^\top \mathbf{k}_j / \sqrt{D})}
        {\sum_{j' \in \mathcal{N}(i)} \exp(\mathbf{q}_i^\top \mathbf{k}_{j'} / \sqrt{D})},

    per head, where :math:`\mathcal{N}(i)` is the support: the sources of the edges
    ``j -> i`` of ``edge_index``, or (``edge_index=None``) all items of ``i``'s graph, the
    earlier ones (``causal``), or those within ``window`` (``|i - j| <= w``; with ``causal``
    ``i - w <= j <= i``). A query without any key (an isolated node) gets a zero output.

    Args:
        q (Tensor): queries ``[N, H, D]``.
        k (Tensor): keys ``[M, H, D]`` (``M = N`` except for bipartite ``edge_index`` or the
            complete support without ``batch``).
        v (Tensor): values ``[M, H, Dv]``.
        edge_index (Tensor, optional): ``[2, E]`` explicit support, ``edge_index[0]`` the
            source (key) ``j``, ``edge_index[1]`` the target (query) ``i``. ``batch`` is not
            needed with it (the edges already stay inside their graphs) and is ignored.
        batch (Tensor, optional): ``[N]`` sorted graph ids: items only attend inside their
            own graph / sequence.
        causal (bool): only attend to ``j <= i``. (default: :obj:`False`)
        window (int, optional): sliding-window half-width ``w``. (default: :obj:`None`)
        return_attention (bool): also return ``(edge_index, alpha)`` with ``alpha [E, H]`` the
            weight of each edge; an implicit support is materialised for it.
        dropout_p (float): dropout on the attention weights (always applied when ``> 0``,
            as in SDPA). (default: ``0.0``)

    Returns:
        ``out [N, H, Dv]``, or ``(out, (edge_index, alpha))`` with ``return_attention``.

    Shapes:
        - **input:** ``q (N, H, D)``, ``k (M, H, D)``, ``v (M, H, Dv)``
        - **output:** ``(N, H, Dv)``; ``alpha (E, H)``
    """
    check_qkv(q, k, v)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    support = _supports.resolve(edge_index, causal, window)
    n, m = q.size(0), k.size(0)
    scale = 1.0 / math.sqrt(q.size(2)) if q.size(2) > 0 else 1.0

    if support.implicit:
        check_batch(batch, n)
        if n != m and (batch is not None or support.kind != "complete"):
            raise ValueError(f"q and k must have the same number of items for this support "
                             f"(got {n} and {m}); pass an edge_index for bipartite attention")
        if return_attention:
            edge_index = support.to_edge_index(n, batch, device=q.device) if n == m else \
                _complete_bipartite(n, m, q.device)
    else:
        check_edge_index(support.edge_index, m, n)

    if edge_index is not None:  # explicit (or materialised) support: CSR
        csr = CSR.from_edge_index(edge_index, m, n)
        out, alpha = csr_attention(q, k, v, csr, scale, dropout_p, training=dropout_p > 0)
        if return_attention:
            return out, (edge_index, to_user_order(csr, alpha))
        return out

    if n == 0 or m == 0:
        return q.new_zeros(n, q.size(1), v.size(2))
    if support.kind == "window":
        return _window_attention(q, k, v, support, batch, dropout_p)
    if batch is None:
        # (1, H, N, D) strided views, no copy (SDPA's fused CPU/GPU kernels take strides;
        # 3-d inputs would fall back to the unfused math path)
        qs, ks, vs = (t.unsqueeze(0).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(qs, ks, vs, is_causal=support.kind == "causal",
                                             dropout_p=dropout_p)
        return out[0].transpose(0, 1)  # (N, H, Dv)
    return _batched_attention(q, k, v, batch, support.kind == "causal", dropout_p)


def _complete_bipartite(n: int, m: int, device: torch.device) -> Tensor:
    dst = torch.arange(n, device=device).repeat_interleave(m)
    src = torch.arange(m, device=device).repeat(n)
    return torch.stack([src, dst])


def _batched_attention(q: Tensor, k: Tensor, v: Tensor, batch: Tensor, causal: bool,
                       dropout_p: float) -> Tensor:
    """Graphs of unequal sizes: pad to ``(B, L)`` and mask the padded keys."""
    from torch_geometric.utils import to_dense_batch

    h = q.size(1)
    qd, mask = to_dense_batch(q.flatten(1), batch)  # (B, L, H*D), (B, L)
    kd, _ = to_dense_batch(k.flatten(1), batch)
    vd, _ = to_dense_batch(v.flatten(1), batch)
    b, length = mask.shape
    qd = qd.view(b, length, h, -1).transpose(1, 2)  # (B, H, L, D)
    kd = kd.view(b, length, h, -1).transpose(1, 2)
    vd = vd.view(b, length, h, -1).transpose(1, 2)
    attn_mask = mask[:, None, None, :]  # (B, 1, 1, L): real keys only
    if causal:
        attn_mask = attn_mask & torch.ones(length, length, dtype=torch.bool,
                                           device=q.device).tril()
    out = F.scaled_dot_product_attention(qd, kd, vd, attn_mask=attn_mask, dropout_p=dropout_p)
    return out.transpose(1, 2)[mask]  # (N, H, Dv)


def _window_attention(q: Tensor, k: Tensor, v: Tensor, support: _supports.Support,
                      batch: Optional[Tensor], dropout_p: float) -> Tensor:
    """Blocked local attention: block ``c`` of queries sees key blocks ``c-1, c(, c+1)``."""
    n, h = q.size(0), q.size(1)
    b = max(support.window, MIN_WINDOW_BLOCK)
    c = -(-n // b)  # number of blocks
    pad = c * b - n
    nb = 2 if support.causal else 3  # key blocks per query block

    def blocks(x: Tensor) -> Tensor:  # (N, H, D) -> (C + 2, H, b, D), one zero block each side
        x = F.pad(x, (0, 0, 0, 0, b, pad + b))
        return x.view(c + 2, b, h, -1).transpose(1, 2)

    kb, vb = blocks(k), blocks(v)
    kk = torch.cat([kb[i:i + c] for i in range(nb)], dim=2)  # (C, H, nb*b, D)
    vv = torch.cat([vb[i:i + c] for i in range(nb)], dim=2)
    qb = F.pad(q, (0, 0, 0, 0, 0, pad)).view(c, b, h, -1).transpose(1, 2)  # (C, H, b, D)

    lo, hi = support.key_ranges(n, batch, device=q.device)
    if pad:  # padded queries see the whole (valid) sequence: never a fully masked row
        lo = F.pad(lo, (0, pad), value=0)
        hi = F.pad(hi, (0, pad), value=n)
    kpos = (torch.arange(c, device=q.device).view(c, 1, 1) - 1) * b + \
        torch.arange(nb * b, device=q.device).view(1, 1, -1)  # (C, 1, nb*b)
    lo, hi = lo.view(c, b, 1), hi.view(c, b, 1)
    mask = (kpos >= lo) & (kpos < hi) & (kpos >= 0) & (kpos < n)  # (C, b, nb*b)
    out = F.scaled_dot_product_attention(qb, kk, vv, attn_mask=mask.unsqueeze(1),
                                         dropout_p=dropout_p)  # (C, H, b, Dv)
    return out.transpose(1, 2).reshape(c * b, h, -1)[:n]


def attention_diffusion(q: Tensor, k: Tensor, v: Tensor, edge_index: Optional[Tensor] = None,
                        *, hops: Union[int, float] = 1, coeffs: Union[str, Tensor] = "ppr",
                        alpha: float = 0.1, r: Optional[float] = None, t: float = 1.0,
                        batch: Optional[Tensor] = None, causal: bool = False,
                        window: Optional[int] = None, dropout_p: float = 0.0,
                        tol: float = 1e-6, max_iter: int = 1000) -> Tensor:
    r"""Multi-hop attention: the softmax attention matrix :math:`\mathbf{S}` diffused over hops
    (MAGNA, Wang et al., IJCAI 2021).

    .. math::
        \mathbf{O} = \sum_{k=0}^{K} \theta_k \mathbf{S}^k \mathbf{V}, \qquad
        S_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}
        (\mathbf{q}_i^\top \mathbf{k}_j / \sqrt{D}),

    per head, with :math:`\theta` from :func:`affgraph.diffusion.coefficients` (default
    ``ppr``: :math:`\theta_k = \alpha(1-\alpha)^k`, the tail mass on :math:`k = K`), and
    ``hops=math.inf`` the closed form (e.g. :math:`\alpha(\mathbf{I} - (1-\alpha)\mathbf{S})^{-1}
    \mathbf{V}`) by an iterative solve to ``tol``. ``hops=1`` is plain attention
    :math:`\mathbf{S}\mathbf{V}` whatever ``coeffs`` says. :math:`\mathbf{S}^k` is never formed:
    on an explicit support :math:`\mathbf{S}` is one CSR matrix (``[E, H]`` weights) applied
    ``K`` times; on an implicit support every hop is one fused attention call whose values are
    the previous hop's output. :math:`\rho(\mathbf{S}) \le 1` (row-stochastic), so Katz needs
    ``r < 1``.

    Attention-weight dropout (finite ``K`` only) drops edges and renormalises the rows, so
    the dropped :math:`\mathbf{S}'` is row-stochastic like :math:`\mathbf{S}`:
    :math:`S'_{ij} = S_{ij} m_{ij} / \sum_{j'} S_{ij'} m_{ij'}` with
    :math:`m_{ij} \sim \mathrm{Bernoulli}(1 - p)` (a row that loses every edge is 0). The
    usual rescaling :math:`S_{ij} m_{ij} / (1 - p)` is right in expectation for one hop, but
    its row sums are random and their product over :math:`k` hops is not: with ``p = 0.6``
    and ``K = 16`` a two-layer node classifier on cSBM graphs (homophily 0.9, 10 seeds)
    reached 59.7 ± 7.1% test accuracy against 94.1 ± 2.0% with this dropout. On an explicit support
    :math:`\mathbf{S}'` is drawn once for all hops and computed as the softmax over each row's
    kept edges (stable however small their weights); on an implicit one it is drawn per hop,
    one fused call giving :math:`\mathbf{S}'\mathbf{x}` and :math:`\mathbf{S}'\mathbf{1}`. ``hops=1`` is
    plain :func:`attention` with its usual dropout. For ``hops=math.inf`` it is never applied,
    on any support: the closed form is the solve of :math:`(\mathbf{I} - c\mathbf{S})` with the
    exact softmax :math:`\mathbf{S}` (rows summing to 1, or 0 for a node without keys, so
    :math:`\rho(\mathbf{S}) \le 1`), and a dropped-out, rescaled :math:`\mathbf{S}` is
    neither (sub)stochastic nor one fixed operator.

    Args:
        q, k, v, edge_index, batch, causal, window, dropout_p: as in :func:`attention`
            (``k`` and ``v`` must have as many items as ``q``: the support is square).
        hops (int or float): :math:`K \ge 1` or ``math.inf``. (default: ``1``)
        coeffs (str or Tensor): coefficient family or a ``[K + 1]`` tensor. (default: ``"ppr"``)
        alpha (float): teleport probability of ``ppr``. (default: ``0.1``)
        r (float, optional): Katz decay, ``0 < r < 1``.
        t (float): heat-kernel time. (default: ``1.0``)
        tol (float), max_iter (int): of the ``hops=math.inf`` solve.

    Shapes:
        ``q (N, H, D)``, ``k (N, H, D)``, ``v (N, H, Dv)`` -> ``(N, H, Dv)``.
    """
    from affgraph.diffusion import propagate

    if isinstance(hops, bool) or not isinstance(hops, (int, float)) or \
            (isinstance(hops, float) and hops != math.inf) or hops < 1:
        raise ValueError(f"hops must be an int >= 1 or math.inf, got {hops!r}")
    if hops == 1:
        return attention(q, k, v, edge_index, batch=batch, causal=causal, window=window,
                         dropout_p=dropout_p)
    check_qkv(q, k, v)
    n = q.size(0)
    if k.size(0) != n:
        raise ValueError(f"multi-hop attention needs a square support: q has {n} items, "
                         f"k has {k.size(0)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    p = 0.0 if hops == math.inf else dropout_p  # the closed form solves with the exact S
    support = _supports.resolve(edge_index, causal, window)
    if n == 0:
        return v.new_zeros(0, v.size(1), v.size(2))
    if support.implicit:
        check_batch(batch, n)

        def apply_s(x: Tensor) -> Tensor:
            if p == 0:
                return attention(q, k, x, batch=batch, causal=causal, window=window)
            # one call for S'x and S'1 (the same dropped S'), then the rows renormalised
            out = attention(q, k, torch.cat([x, x.new_ones(n, x.size(1), 1)], 2), batch=batch,
                            causal=causal, window=window, dropout_p=p)
            rows = out[..., -1:]
            return out[..., :-1] / torch.where(rows > 0, rows, torch.ones_like(rows))
    else:
        from affgraph._csr import spmm

        check_edge_index(support.edge_index, n, n)
        csr = CSR.from_edge_index(support.edge_index, n, n)
        scale = 1.0 / math.sqrt(q.size(2)) if q.size(2) > 0 else 1.0
        s = _edge_softmax(q, k, csr, scale, drop=p)

        def apply_s(x: Tensor) -> Tensor:
            return spmm(csr, s, x)

    return propagate(apply_s, v, hops=hops, coeffs=coeffs, r=r, alpha=alpha, t=t, rho=1.0,
                     tol=tol, max_iter=max_iter)
