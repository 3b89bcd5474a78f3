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
from affgraph._checks import check_batch, check_edge_index, check_finite_all, check_hop_count
from affgraph._csr import (csr_attention, csr_structure, edge_aggregate, edge_bias,
                           edge_softmax as _edge_softmax, spmm, to_csr_order, to_user_order)
from affgraph.affinity import finite_dtype, max_abs

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


def check_edge_attr(edge_attr: Optional[Tensor], edge_index: Optional[Tensor], q: Tensor,
                    v: Tensor) -> None:
    """``edge_attr [E, H, D]`` for an explicit ``edge_index`` with ``D`` the width of both the
    queries/keys and the values (it is added to both), finite, in ``q``'s dtype."""
    if edge_attr is None:
        return
    if edge_index is None:
        raise ValueError("edge_attr needs an explicit support: pass an edge_index (an implicit "
                         "support has no edges to attach features to)")
    if not isinstance(edge_attr, Tensor):
        raise TypeError(f"edge_attr must be a torch.Tensor, got {type(edge_attr).__name__}")
    want = (edge_index.size(1), q.size(1), q.size(2))
    if tuple(edge_attr.shape) != want:
        raise ValueError(f"edge_attr must be [E, H, D] = {list(want)}, got "
                         f"{list(edge_attr.shape)}")
    if q.size(2) != v.size(2):
        raise ValueError(f"edge_attr enters keys and values, so q and v need the same width, "
                         f"got {q.size(2)} and {v.size(2)}")
    if edge_attr.dtype != q.dtype:
        raise ValueError(f"edge_attr dtype {edge_attr.dtype} differs from q's {q.dtype}")
    check_finite_all(("edge_attr",), (edge_attr,))


def compute_dtype(q: Tensor, k: Tensor, v: Tensor, edge_attr: Optional[Tensor] = None
                  ) -> torch.dtype:
    r"""The dtype in which the attention of ``q, k, v`` stays finite: ``q``'s, unless the
    scaled logits :math:`|\mathbf{q}_i^\top(\mathbf{k}_j + \mathbf{e}_{ij})| / \sqrt{D} \le
    \max|q| (\max|k| + \max|e|) \sqrt{D}` could overflow it, or the unnormalised value sums
    :math:`\sum_j e^{l_{ij} - m_i} |v_j| \le M \max|v|` could overflow float32 or float64
    (half precision sums are accumulated in float32); then the narrowest wider dtype that
    holds them (:func:`affgraph.affinity.finite_dtype`). The output, a convex combination of
    ``v``, always fits ``q``'s dtype again."""
    if q.numel() == 0 or k.numel() == 0:
        return q.dtype
    tensors = (q, k, v) if edge_attr is None else (q, k, v, edge_attr)
    mags = max_abs(*tensors)
    mq, mk, mv = mags[:3]
    me = mags[3] if edge_attr is not None else 0.0
    logits = mq * (mk + me) * math.sqrt(q.size(2))
    ct = finite_dtype(q.dtype, logits, "the attention logits q.k / sqrt(D)")
    acc = ct if ct in (torch.float32, torch.float64) else torch.float32
    values = (mv + me) * k.size(0)
    if values > torch.finfo(acc).max / 4:
        ct = finite_dtype(acc, values, "the attention value sums")
    return ct


def _long_edges(edge_index: Tensor) -> Tensor:
    """An integer ``edge_index`` of any width as ``int64`` (the sparse kernels' index type)."""
    return edge_index if edge_index.dtype == torch.long else edge_index.long()


def attention(q: Tensor, k: Tensor, v: Tensor, edge_index: Optional[Tensor] = None, *,
              edge_attr: Optional[Tensor] = None,
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
    ``i - w <= j <= i``; a window wider than the sequence is the complete or causal support).
    A query without any key (an isolated node) gets a zero output. Duplicate edges count as
    separate edges (each gets its own weight). With edge features :math:`\mathbf{e}_{ij}` they
    enter keys and values as in PyG's ``TransformerConv``:

    .. math::
        \mathbf{o}_i = \sum_{j} \alpha_{ij} (\mathbf{v}_j + \mathbf{e}_{ij}), \qquad
        \alpha_{ij} = \operatorname{softmax}_j\big(\mathbf{q}_i^\top (\mathbf{k}_j +
        \mathbf{e}_{ij}) / \sqrt{D}\big).

    Args:
        q (Tensor): queries ``[N, H, D]``.
        k (Tensor): keys ``[M, H, D]`` (``M = N`` except for bipartite ``edge_index`` or the
            complete support without ``batch``).
        v (Tensor): values ``[M, H, Dv]``.
        edge_index (Tensor, optional): ``[2, E]`` explicit support, ``edge_index[0]`` the
            source (key) ``j``, ``edge_index[1]`` the target (query) ``i``; any integer
            dtype. ``batch`` is not needed with it (the edges already stay inside their
            graphs) and is ignored.
        edge_attr (Tensor, optional): ``[E, H, D]`` edge features (explicit ``edge_index``
            only; ``D`` is the width of ``q``, ``k`` and ``v``).
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
    check_edge_attr(edge_attr, edge_index, q, v)
    ct = compute_dtype(q, k, v, edge_attr)
    if ct != q.dtype:  # logits beyond q's range: the same attention in a wider dtype
        wide = attention(q.to(ct), k.to(ct), v.to(ct), edge_index,
                         edge_attr=None if edge_attr is None else edge_attr.to(ct),
                         batch=batch, causal=causal, window=window,
                         return_attention=return_attention, dropout_p=dropout_p)
        if return_attention:
            return wide[0].to(q.dtype), (wide[1][0], wide[1][1].to(q.dtype))
        return wide.to(q.dtype)
    n, m = q.size(0), k.size(0)
    support = _supports.resolve(edge_index, causal, window).clamp(n)
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
        edge_index = _long_edges(edge_index)

    if edge_index is not None:  # explicit (or materialised) support: CSR
        csr = csr_structure(edge_index, m, n)
        out, alpha = csr_attention(q, k, v, csr, scale, dropout_p, training=dropout_p > 0,
                                   edge=edge_attr)
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


#: the parameter each coefficient family takes, with its default for attention's
#: row-stochastic :math:`\mathbf{S}` (Katz: ``0.9 / rho(S)`` with ``rho(S) = 1``)
FAMILY_PARAMETERS = {"ppr": ("alpha", 0.1), "katz": ("r", 0.9), "inffs": ("r", 0.9),
                     "heat": ("t", 1.0)}


def check_hops(hops: Union[int, float]) -> None:
    """``hops`` must be an ``int >= 1`` or ``math.inf``."""
    check_hop_count("hops", hops)


def coeff_options(coeffs: Union[str, Tensor], alpha: Optional[float] = None,
                  r: Optional[float] = None, t: Optional[float] = None) -> dict:
    """The family parameter of ``coeffs`` as a keyword dict for
    :func:`affgraph.diffusion.coefficients` / :func:`~affgraph.diffusion.propagate`, with its
    default where it is ``None`` (``ppr``: ``alpha=0.1``, ``katz``/``inffs``: ``r=0.9``,
    ``heat``: ``t=1.0``; nothing for ``power``, ``uniform`` or a tensor). A parameter given for
    a family that does not take it is a ``ValueError`` naming it."""
    from affgraph.diffusion import COEFF_KINDS

    if isinstance(coeffs, str):
        if coeffs not in COEFF_KINDS:
            raise ValueError(f"unknown coeffs {coeffs!r}; expected one of {COEFF_KINDS} or a "
                             "tensor of hop coefficients")
    elif not isinstance(coeffs, Tensor):
        raise TypeError(f"coeffs must be a str or a Tensor, got {type(coeffs).__name__}")
    own = FAMILY_PARAMETERS.get(coeffs) if isinstance(coeffs, str) else None
    given = {"alpha": alpha, "r": r, "t": t}
    for name, value in given.items():
        if value is not None and (own is None or own[0] != name):
            fam = {"alpha": "'ppr'", "r": "'katz'", "t": "'heat'"}[name]
            what = "a coefficient tensor" if isinstance(coeffs, Tensor) else f"coeffs={coeffs!r}"
            raise ValueError(f"{name} does not apply to {what}; it is the parameter of "
                             f"coeffs={fam}")
    if own is None:
        return {}
    name, default = own
    return {name: default if given[name] is None else given[name]}


def check_series(hops: Union[int, float], coeffs: Union[str, Tensor], options: dict,
                 edge_features: bool = False) -> None:
    r"""Validate a hop series once: the coefficients of finite ``hops``, or that the family
    has a closed form over a row-stochastic :math:`\mathbf{S}` (``ppr``, ``katz`` with
    ``r < 1``, ``heat``; with edge features ``ppr`` or ``katz``)."""
    from affgraph.diffusion import RHO_MARGIN, coefficients

    check_hops(hops)
    if hops != math.inf:
        coefficients(coeffs, int(hops), **options)
        return
    if isinstance(coeffs, Tensor):
        raise ValueError("a coefficient tensor needs a finite number of hops")
    if coeffs in ("power", "uniform"):
        raise ValueError(f"coeffs={coeffs!r} has no infinite-hop limit; hops=math.inf needs "
                         "coeffs 'ppr', 'katz' or 'heat'")
    if edge_features and coeffs == "heat":
        raise ValueError("hops=math.inf with edge features needs coeffs 'ppr' or 'katz' (the "
                         "edge term is the series shifted by one hop, which has a closed form "
                         "for those two families only)")
    coefficients(coeffs, 1, **options)  # the parameter's range
    margin = RHO_MARGIN
    if coeffs in ("katz", "inffs") and not options["r"] <= 1.0 - margin:
        raise ValueError(f"r = {options['r']!r} > 1 - {margin:g}, with rho(S) = 1: the Katz "
                         "series over the row-stochastic attention matrix diverges or is too "
                         f"close to diverging to solve; choose r <= {1.0 - margin!r}")
    if coeffs == "ppr" and not options["alpha"] >= margin:
        raise ValueError(f"alpha = {options['alpha']!r} < {margin:g}: the closed form solves "
                         "(I - (1 - alpha) S), singular to within rounding; choose a larger "
                         "alpha")


def attention_diffusion(q: Tensor, k: Tensor, v: Tensor, edge_index: Optional[Tensor] = None,
                        *, edge_attr: Optional[Tensor] = None, hops: Union[int, float] = 1,
                        coeffs: Union[str, Tensor] = "power", alpha: Optional[float] = None,
                        r: Optional[float] = None, t: Optional[float] = None,
                        batch: Optional[Tensor] = None, causal: bool = False,
                        window: Optional[int] = None, dropout_p: float = 0.0,
                        tol: float = 1e-6, max_iter: int = 1000,
                        return_attention: bool = False) -> AttentionResult:
    r"""Multi-hop attention: the softmax attention matrix :math:`\mathbf{S}` diffused over hops
    (MAGNA, Wang et al., IJCAI 2021).

    .. math::
        \mathbf{O} = \sum_{k=0}^{K} \theta_k \mathbf{S}^k \mathbf{V}, \qquad
        S_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}
        (\mathbf{q}_i^\top \mathbf{k}_j / \sqrt{D}),

    per head, with :math:`\theta` from :func:`affgraph.diffusion.coefficients`: the default
    ``power`` is :math:`\theta = (0, \dots, 0, 1)`, so ``hops=1`` is plain attention
    :math:`\mathbf{S}\mathbf{V}` and ``hops=K`` is :math:`\mathbf{S}^K\mathbf{V}`; ``ppr``
    (:math:`\theta_k = \alpha(1-\alpha)^k`, the tail mass on :math:`k = K`) is MAGNA's
    diffusion, ``hops=1`` with it :math:`\alpha\mathbf{V} + (1-\alpha)\mathbf{S}\mathbf{V}`.
    ``hops=math.inf`` is the closed form (``ppr``: :math:`\alpha(\mathbf{I} -
    (1-\alpha)\mathbf{S})^{-1}\mathbf{V}`; ``katz``; ``heat``) by an iterative solve to
    ``tol``; ``power`` and ``uniform`` have none. :math:`\mathbf{S}^k` is never formed: on an
    explicit support :math:`\mathbf{S}` is one CSR matrix (``[E, H]`` weights) applied ``K``
    times; on an implicit support every hop is one fused attention call whose values are the
    previous hop's output. :math:`\rho(\mathbf{S}) \le 1` (row-stochastic), so Katz needs
    ``r < 1``.

    Edge features :math:`\mathbf{e}_{ij}` (explicit support only) enter :math:`\mathbf{S}` at
    every hop through the keys, :math:`S_{ij} = \operatorname{softmax}_j(\mathbf{q}_i^\top
    (\mathbf{k}_j + \mathbf{e}_{ij})/\sqrt{D})`, and the values of the first hop, as in
    ``TransformerConv``:

    .. math::
        \mathbf{O} = \sum_{k=0}^{K} \theta_k \mathbf{S}^k \mathbf{V}
          + \sum_{k=1}^{K} \theta_k \mathbf{S}^{k-1} \mathbf{E}, \qquad
        \mathbf{E}_i = \sum_j S_{ij} \mathbf{e}_{ij},

    computed as :math:`\theta_0\mathbf{V} + \sum_{k=1}^{K}\theta_k\mathbf{S}^{k-1}
    \mathbf{H}` with the first hop :math:`\mathbf{H} = \mathbf{S}\mathbf{V} + \mathbf{E}`
    (``K`` applications of :math:`\mathbf{S}` in all). For ``hops=math.inf`` the shifted
    series has a closed form for ``ppr``, :math:`\alpha\mathbf{V} + (1-\alpha)\,
    \mathrm{ppr}(\mathbf{H})`, and for ``katz``, :math:`r(\mathbf{I} - r\mathbf{S})^{-1}
    \mathbf{H}`; other families raise a ``ValueError``.

    Attention-weight dropout: ``hops=1`` with ``power`` is plain :func:`attention` with its
    usual dropout (rescaled by :math:`1/(1-p)`). Otherwise (finite ``K``) it drops edges and
    renormalises the rows, so the dropped :math:`\mathbf{S}'` is row-stochastic like
    :math:`\mathbf{S}`: :math:`S'_{ij} = S_{ij} m_{ij} / \sum_{j'} S_{ij'} m_{ij'}` with
    :math:`m_{ij} \sim \mathrm{Bernoulli}(1 - p)` (a row that loses every edge is 0). The
    usual rescaling :math:`S_{ij} m_{ij} / (1 - p)` is right in expectation for one hop, but
    its row sums are random and their product over :math:`k` hops is not (on cSBM node
    classification with ``p = 0.6`` and ``K = 16`` it costs about 35 points of accuracy). On
    an explicit support :math:`\mathbf{S}'` is drawn once for all hops and computed as the
    softmax over each row's kept edges (stable however small their weights); on an implicit
    one it is drawn per hop, one fused call giving :math:`\mathbf{S}'\mathbf{x}` and
    :math:`\mathbf{S}'\mathbf{1}`. For ``hops=math.inf`` it is never applied, on any support:
    the closed form is the solve of :math:`(\mathbf{I} - c\mathbf{S})` with the exact softmax
    :math:`\mathbf{S}` (rows summing to 1, or 0 for a node without keys, so
    :math:`\rho(\mathbf{S}) \le 1`), and a dropped-out, rescaled :math:`\mathbf{S}` is
    neither (sub)stochastic nor one fixed operator.

    Args:
        q, k, v, edge_index, edge_attr, batch, causal, window, dropout_p: as in
            :func:`attention` (for ``K`` hops other than one ``power`` hop, ``k`` and ``v``
            must have as many items as ``q``: the support is square).
        hops (int or float): :math:`K \ge 1` or ``math.inf``. (default: ``1``)
        coeffs (str or Tensor): coefficient family or a ``[K + 1]`` tensor.
            (default: ``"power"``)
        alpha (float, optional): teleport probability, ``ppr`` only. (default: ``0.1``)
        r (float, optional): Katz decay, ``katz`` only, ``0 < r < 1``. (default: ``0.9``)
        t (float, optional): diffusion time, ``heat`` only. (default: ``1.0``)
        tol (float), max_iter (int): of the ``hops=math.inf`` solve.
        return_attention (bool): also return ``(edge_index, alpha [E, H])``, the one-hop
            weights :math:`S_{ij}` (exact, without dropout). (default: :obj:`False`)

    Shapes:
        ``q (N, H, D)``, ``k (N, H, D)``, ``v (N, H, Dv)`` -> ``(N, H, Dv)``.
    """
    from affgraph.diffusion import coefficients, propagate

    from affgraph._checks import check_solver

    check_solver(tol, max_iter)
    options = coeff_options(coeffs, alpha, r, t)
    check_series(hops, coeffs, options, edge_features=edge_attr is not None)
    if isinstance(coeffs, str) and coeffs == "power" and hops == 1:
        return attention(q, k, v, edge_index, edge_attr=edge_attr, batch=batch, causal=causal,
                         window=window, dropout_p=dropout_p, return_attention=return_attention)
    check_qkv(q, k, v)
    n = q.size(0)
    if k.size(0) != n:
        raise ValueError(f"multi-hop attention needs a square support: q has {n} items, "
                         f"k has {k.size(0)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    check_edge_attr(edge_attr, edge_index, q, v)
    if hops == math.inf and q.dtype in (torch.float16, torch.bfloat16):
        # an iterative solve in half precision stalls (or diverges) far above tol: float32
        wide = attention_diffusion(
            q.float(), k.float(), v.float(), edge_index,
            edge_attr=None if edge_attr is None else edge_attr.float(), hops=hops,
            coeffs=coeffs, alpha=alpha, r=r, t=t, batch=batch, causal=causal, window=window,
            dropout_p=dropout_p, tol=tol, max_iter=max_iter, return_attention=return_attention)
        if return_attention:
            return wide[0].to(q.dtype), (wide[1][0], wide[1][1].to(q.dtype))
        return wide.to(q.dtype)
    p = 0.0 if hops == math.inf else dropout_p  # the closed form solves with the exact S
    support = _supports.resolve(edge_index, causal, window).clamp(n)
    if n == 0:
        out = v.new_zeros(0, v.size(1), v.size(2))
        if return_attention:
            ei = torch.zeros(2, 0, dtype=torch.long, device=q.device) if edge_index is None \
                else edge_index
            return out, (ei, q.new_zeros(0, q.size(1)))
        return out
    scale = 1.0 / math.sqrt(q.size(2)) if q.size(2) > 0 else 1.0
    first = weights = None
    if support.implicit:
        check_batch(batch, n)
        win = support.window if support.kind == "window" else None
        cau = support.is_causal

        def apply_s(x: Tensor) -> Tensor:
            if p == 0:
                return attention(q, k, x, batch=batch, causal=cau, window=win)
            # one call for S'x and S'1 (the same dropped S'), then the rows renormalised
            out = attention(q, k, torch.cat([x, x.new_ones(n, x.size(1), 1)], 2), batch=batch,
                            causal=cau, window=win, dropout_p=p)
            rows = out[..., -1:]
            return out[..., :-1] / torch.where(rows > 0, rows, torch.ones_like(rows))

        if return_attention:
            weights = attention(q, k, v, batch=batch, causal=cau, window=win,
                                return_attention=True)[1]
    else:
        check_edge_index(support.edge_index, n, n)
        ei = _long_edges(support.edge_index)
        csr = csr_structure(ei, n, n)
        e = None if edge_attr is None else to_csr_order(csr, edge_attr)
        ct = compute_dtype(q, k, v, edge_attr)  # logits that overflow q's dtype: wider
        qc, kc, ec = q.to(ct), k.to(ct), None if e is None else e.to(ct)
        bias = None if e is None else edge_bias(qc, ec, csr, scale)
        wdt = torch.float64 if q.dtype == torch.float64 else torch.float32  # the weights'
        s = _edge_softmax(qc, kc, csr, scale, drop=p, bias=bias).to(wdt)

        def apply_s(x: Tensor) -> Tensor:
            return spmm(csr, s, x)

        if e is not None:  # the first hop, TransformerConv's: S V + sum_j S_ij e_ij
            first = apply_s(v) + edge_aggregate(csr, s, e).to(v.dtype)
        if return_attention:
            exact = s if p == 0 else _edge_softmax(qc, kc, csr, scale, bias=bias)
            weights = (edge_index, to_user_order(csr, exact).to(q.dtype))

    solve = dict(tol=tol, max_iter=max_iter)
    if hops == math.inf:  # the iterative solve's data-dependent loop runs eagerly when compiled
        propagate = torch.compiler.disable(propagate)
    if first is None:
        out = propagate(apply_s, v, hops=hops, coeffs=coeffs, rho=1.0, **options, **solve)
    elif hops != math.inf:  # theta_0 V + sum_{k>=1} theta_k S^(k-1) H
        theta = coefficients(coeffs, int(hops), **options).to(device=v.device, dtype=v.dtype)
        out = propagate(apply_s, first, hops=int(hops) - 1, coeffs=theta[1:], **solve) + \
            theta[0] * v
    elif coeffs == "ppr":  # alpha V + (1 - alpha) ppr(H)
        a = options["alpha"]
        out = a * v + (1.0 - a) * propagate(apply_s, first, hops=hops, coeffs="ppr", alpha=a,
                                            rho=1.0, **solve)
    else:  # katz: r (I - rS)^-1 H = r (H + sum_{k>=1} r^k S^k H)
        c = options["r"]
        out = c * (first + propagate(apply_s, first, hops=hops, coeffs=coeffs, r=c, rho=1.0,
                                     **solve))
    return (out, weights) if return_attention else out
