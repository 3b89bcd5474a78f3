"""2-simplicial (trilinear) attention over triangle supports, computed block by block.

Clift et al. 2019, "Logic and the 2-Simplicial Transformer"; Roy et al. 2025, "Fast and Simplex:
2-Simplicial Attention in Triton" (arXiv 2507.02754). In affgraph's terms the support of query
``i`` is a set of pairs ``(j, l)`` (triangles ``(i, j, l)`` of a hypergraph), the kernel is
trilinear and the message of a pair is the elementwise product of two values; one hop.

Every support here is a product of two contiguous index ranges ``J(i) x L(i)`` inside the graph
of ``i`` (all pairs, causal, or a sliding window ``|i - j| <= w``, the convention of
:mod:`affgraph.supports`). For a sliding window the keys of query ``i`` are rows ``i - w .. i + w``
(``i - w .. i`` if causal) of the key tensor padded with ``w`` zero rows, so a block of ``B``
consecutive queries reads them as a strided ``unfold`` view ``[B, H, D, W]`` with ``W = 2w + 1``
(``w + 1``) keys, no gather and no Python loop over positions; causal all pairs are the causal
window of the longest graph; other all-pair supports are gathered from ``[lo(i), lo(i) + W)``.
Keys outside the support get an additive ``-inf`` (only in blocks that have any). Per block the
logits are two batched matmuls, ``a[b, :, t, u] = k1_{j_t}^T (q_b * k2_{l_u}) / sqrt(D)`` (the
narrower window, ``w2 <= w1``, carries ``q``; the form is symmetric, so the caller swaps), and
the output is ``o_b = sum_u v2_{l_u} * (sum_t p[b, t, u] v1_{j_t}) / s_b``. The logits are never
materialised beyond one ``[B, H, C, W2]`` block: an online softmax runs over chunks of ``C``
keys ``j`` (as flash attention does over keys), and the backward pass recomputes each block
from the saved log-sum-exp, so memory is ``O(N (w1 + w2) D)`` plus one block (a window wider
than the longest graph is clamped to it first). On the CPU a block holds about
``CPU_TILE_ELEMENTS`` logits (cache-sized tiles; ``block_elements`` stays the hard bound).
All-pair supports over graphs of equal size whose whole ``[B, H, L, L, L]`` logits fit in one
block (short sequences in a batch) take a dense ``einsum`` path with plain autograd instead.
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from affgraph._checks import check_batch, check_tensor
from affgraph.affinity import finite_dtype, max_abs

__all__ = ["simplicial_attention"]

DEFAULT_BLOCK_ELEMENTS = 1 << 21  # CPU default: 8 MiB of float32 logits per block
DEFAULT_BLOCK_ELEMENTS_GPU = 1 << 25  # GPU default: fewer, larger blocks (fewer kernel launches)
CPU_TILE_ELEMENTS = 1 << 17  # logits per block on the CPU: a [B, H, C, W2] tile that stays in L2


class _Side(NamedTuple):
    """Where the keys of one factor (``j`` or ``l``) of every query live.

    Sliding windows (``pad >= 0``): key ``t`` of query ``i`` is row ``i + t`` of the key tensor
    padded with ``pad`` zero rows in front, so a block of queries reads a strided ``unfold``
    view, no copy. All pairs (``pad < 0``): rows ``lo(i) + t``, gathered. Either way key ``t``
    is in the support iff ``skip(i) <= t < skip(i) + cnt(i)``."""
    pad: int  # front padding of the window source, or -1 for the gather source
    back: int  # back padding of the window source
    width: int  # keys t per query
    lo: Tensor  # [N] first key of the support (original index)
    skip: Tensor  # [N] first t inside the support
    cnt: Tensor  # [N] number of keys in the support


class _Plan(NamedTuple):
    side1: _Side  # keys j (chunked)
    side2: _Side  # keys l (whole window per block)
    blocks: list  # (b0, b1, [(c0, c), ...], masked) per block of queries


def _ranges(n: int, batch: Optional[Tensor], w: Optional[int], causal: bool,
            device: torch.device) -> Tuple[Tensor, Tensor]:
    """First index and length of the contiguous key range of every query: its graph, cut to
    ``|i - j| <= w`` (``w`` not ``None``) and to ``j <= i`` (``causal``)."""
    i = torch.arange(n, device=device)
    if batch is None:
        start = torch.zeros(n, dtype=torch.long, device=device)
        end = torch.full((n,), n - 1, dtype=torch.long, device=device)
    else:
        b = batch.long()
        counts = torch.bincount(b)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        start, end = ptr[b], ptr[b + 1] - 1
    lo = start if w is None else torch.maximum(start, i - w)
    if causal:
        hi = i
    else:
        hi = end if w is None else torch.minimum(end, i + w)
    return lo, hi - lo + 1


def _side(n: int, batch: Optional[Tensor], w: Optional[int], causal: bool,
          device: torch.device) -> _Side:
    lo, cnt = _ranges(n, batch, w, causal, device)
    if w is None:
        return _Side(-1, 0, int(cnt.max()), lo, torch.zeros_like(lo), cnt)
    base = torch.arange(n, device=device) - w  # key t = 0 of query i is row i - w
    width = w + 1 if causal else 2 * w + 1
    return _Side(w, 0 if causal else w, width, lo, lo - base, cnt)


def _available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def _plan(q: Tensor, v: Tensor, batch: Optional[Tensor], window: Optional[Tuple[int, int]],
          causal: bool, block_elements: int) -> _Plan:
    n, h, d = q.shape
    dv = v.size(-1)
    w1, w2 = (None, None) if window is None else window
    side1 = _side(n, batch, w1, causal, q.device)
    side2 = _side(n, batch, w2, causal, q.device)
    width1, width2 = side1.width, side2.width
    row = h * width2  # logits of one query and one key j
    if row > block_elements:
        raise ValueError(
            f"simplicial_attention cannot fit: one query row needs heads x (keys l) = {row} "
            f"logits, "
            f"more than block_elements={block_elements}; use a smaller window or fewer heads "
            f"(or raise block_elements)")
    # speed: on the CPU a tile of CPU_TILE_ELEMENTS logits (cache-sized); memory: at most
    # block_elements logits, and as many key/value/product entries, per block
    tile = block_elements if q.device.type != "cpu" else min(block_elements, CPU_TILE_ELEMENTS)
    chunk = max(1, min(width1, tile // row))
    per_query = h * (width2 + chunk) * (d + dv)  # gathered/copied keys, values and products
    block_q = max(1, min(n, tile // (row * chunk), block_elements // per_query))
    elem = 4 if q.dtype in (torch.float16, torch.bfloat16) else q.element_size()  # fp32 compute
    block = 4 * block_q * chunk * row + 2 * block_q * per_query
    need = elem * (block + 6 * (n + 2 * max(side1.pad, side2.pad, 0)) * h * (d + dv))
    avail = _available_bytes(q.device)
    if need > avail:
        raise ValueError(
            f"simplicial_attention cannot fit: needs about {need / 2**20:.0f} MiB, "
            f"{avail / 2**20:.0f} MiB available on {q.device}; lower block_elements or N")
    # one host transfer: per block, its largest needed j and whether any key must be masked
    full1 = (side1.skip == 0) & (side1.cnt == width1)
    full2 = (side2.skip == 0) & (side2.cnt == width2)
    nb = -(-n // block_q)
    per_block = torch.zeros(2, nb * block_q, dtype=torch.long, device=q.device)
    per_block[0, :n] = side1.skip + side1.cnt
    per_block[1, :n] = ~(full1 & full2)
    need1, masked = per_block.view(2, nb, block_q).amax(-1).tolist()
    blocks = []
    for b0, c1, m in zip(range(0, n, block_q), need1, masked):
        chunks = [(c0, min(chunk, c1 - c0)) for c0 in range(0, c1, chunk)]
        blocks.append((b0, min(n, b0 + block_q), chunks, bool(m)))
    return _Plan(side1, side2, blocks)


def _source(x: Tensor, side: _Side) -> Tensor:
    """The tensor keys are read from: ``x`` padded with zero rows (windows) or ``x`` itself."""
    if side.pad < 0:
        return x
    return torch.nn.functional.pad(x, (0, 0, 0, 0, side.pad, side.back))


def _keys(src: Tensor, side: _Side, b0: int, b1: int, c0: int, c: int) -> Tensor:
    """Keys ``t in [c0, c0 + c)`` of queries ``b0 .. b1 - 1`` as ``[B, H, F, c]`` (a view for
    windows, a gather for all pairs)."""
    if side.pad >= 0:
        return src.unfold(0, side.width, 1)[b0:b1, :, :, c0:c0 + c]
    return src[_rows(src, side, b0, b1, c0, c)].permute(0, 2, 3, 1)


def _rows(src: Tensor, side: _Side, b0: int, b1: int, c0: int, c: int) -> Tensor:
    """Row of ``src`` of key ``t`` of every query of the block, ``[B, c]``."""
    t = c0 + torch.arange(c, device=src.device)
    if side.pad >= 0:
        return torch.arange(b0, b1, device=src.device)[:, None] + t
    return (side.lo[b0:b1, None] + t).clamp(max=src.size(0) - 1)


def _bias(side: _Side, b0: int, b1: int, c0: int, c: int, dtype: torch.dtype) -> Tensor:
    """Additive mask ``[B, c]``: 0 for keys in the support, ``-inf`` outside."""
    t = c0 + torch.arange(c, device=side.lo.device)
    skip, cnt = side.skip[b0:b1, None], side.cnt[b0:b1, None]
    inside = (t >= skip) & (t < skip + cnt)
    bias = torch.zeros(inside.shape, dtype=dtype, device=inside.device)
    return bias.masked_fill_(~inside, -math.inf)


def _scatter(grad_src: Tensor, g: Tensor, side: _Side, b0: int, b1: int, c0: int) -> None:
    """``grad_src[row(i, t)] += g[i, :, :, t]`` for ``g`` of shape ``[B, H, F, c]``.

    Windows: one strided add per key offset (or per query, whichever is fewer), no atomics, so
    the result is deterministic on every device. All pairs: ``index_add_``."""
    bsz, c = g.size(0), g.size(-1)
    if side.pad >= 0:
        if c <= bsz:
            for t in range(c):
                grad_src[b0 + c0 + t:b1 + c0 + t].add_(g[..., t])
        else:
            for b in range(bsz):
                grad_src[b0 + b + c0:b0 + b + c0 + c].add_(g[b].permute(2, 0, 1))
        return
    rows = _rows(grad_src, side, b0, b1, c0, c).reshape(-1)
    grad_src.index_add_(0, rows, g.permute(0, 3, 1, 2).reshape(bsz * c, *g.shape[1:3]))


def _forward(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
             plan: _Plan) -> Tuple[Tensor, Tensor]:
    """Output ``[N, H, Dv]`` and the softmax statistics ``[2, N, H]``: the row maximum ``m``
    and ``log s``, the log of the sum of ``exp(a - m)`` (both ``-inf`` for an empty support).
    They stay apart: ``m + log s`` would round ``log s`` away once ``|m|`` is beyond about
    ``log(s) / eps`` (logits of 1e46 in float64 need ``log s`` to 1e30).

    Per block of queries: ``qk2 = (q / sqrt(D)) * k2_l`` (the narrower window carries ``q``),
    logits of a chunk of keys ``j`` as one batched matmul ``k1_j^T qk2``, an online softmax over
    the chunks, and ``acc_l += sum_j p_ijl v1_j`` (a second batched matmul), so that
    ``o_i = sum_l v2_l * acc_l / s``."""
    n, h, d = q.shape
    s1, s2 = plan.side1, plan.side2
    scale = 1.0 / math.sqrt(d)
    out = q.new_zeros(n, h, v1.size(-1))
    lse = q.new_full((2, n, h), -math.inf)  # (m, log s) per row
    k1s, v1s, k2s, v2s = _source(k1, s1), _source(v1, s1), _source(k2, s2), _source(v2, s2)
    for b0, b1, chunks, masked in plan.blocks:
        qb = q[b0:b1, :, :, None] * scale  # (B, H, D, 1)
        K2 = _keys(k2s, s2, b0, b1, 0, s2.width)  # (B, H, D, W2)
        V2 = _keys(v2s, s2, b0, b1, 0, s2.width)  # (B, H, Dv, W2)
        qk2 = qb * K2  # (B, H, D, W2)
        bias2 = _bias(s2, b0, b1, 0, s2.width, q.dtype)[:, None, None, :] if masked else None
        m = s = acc = None
        for c0, c in chunks:
            K1 = _keys(k1s, s1, b0, b1, c0, c)  # (B, H, D, C)
            V1 = _keys(v1s, s1, b0, b1, c0, c)  # (B, H, Dv, C)
            logits = K1.transpose(-1, -2) @ qk2  # (B, H, C, W2)
            if masked:
                logits.add_(_bias(s1, b0, b1, c0, c, q.dtype)[:, None, :, None]).add_(bias2)
            m_new = logits.amax(dim=(-1, -2))
            if m is not None:
                m_new = torch.maximum(m, m_new)
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = logits.sub_(m_safe[..., None, None]).exp_()  # masked pairs -> 0
            pv = V1 @ p  # (B, H, Dv, W2): sum_j p_ijl v1_j
            if m is None:
                s, acc = p.sum(dim=(-1, -2)), pv
            else:
                alpha = torch.exp(m - m_safe)
                s = s * alpha + p.sum(dim=(-1, -2))
                acc = acc * alpha[..., None, None] + pv
            m = m_new
        o = (acc * V2).sum(-1)  # (B, H, Dv)
        nonempty = s > 0
        out[b0:b1] = torch.where(nonempty[..., None], o / s.clamp_min(1e-30)[..., None],
                                 torch.zeros_like(o))
        lse[0, b0:b1] = torch.where(nonempty, m, lse[0, b0:b1])
        lse[1, b0:b1] = torch.where(nonempty, torch.log(s.clamp_min(1e-30)), lse[1, b0:b1])
    return out, lse


def _backward(q, k1, k2, v1, v2, out, lse, grad_out, plan: _Plan):
    r"""Gradients from the recomputed blocks, with ``p = exp((a - m) - log s)``,
    ``dp_ijl = <dO_i, v1_j * v2_l>`` and ``ds = p (dp - <dO_i, o_i>)``:
    ``dq_i = \sum ds_ijl k1_j * k2_l / sqrt(D)``, ``dk1_j = \sum ds_ijl q_i * k2_l / sqrt(D)``,
    ``dk2_l = \sum ds_ijl q_i * k1_j / sqrt(D)``, ``dv1_j = \sum p_ijl dO_i * v2_l``,
    ``dv2_l = \sum p_ijl dO_i * v1_j``."""
    n, h, d = q.shape
    s1, s2 = plan.side1, plan.side2
    scale = 1.0 / math.sqrt(d)
    delta = (grad_out * out).sum(-1)  # (N, H)
    lse_safe = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
    k1s, v1s, k2s, v2s = _source(k1, s1), _source(v1, s1), _source(k2, s2), _source(v2, s2)
    dk1s, dv1s, dk2s, dv2s = (torch.zeros_like(t) for t in (k1s, v1s, k2s, v2s))
    dq = torch.zeros_like(q)
    for b0, b1, chunks, masked in plan.blocks:
        qb = q[b0:b1, :, :, None] * scale  # (B, H, D, 1)
        go = grad_out[b0:b1, :, :, None]  # (B, H, Dv, 1)
        K2 = _keys(k2s, s2, b0, b1, 0, s2.width)  # (B, H, D, W2)
        V2 = _keys(v2s, s2, b0, b1, 0, s2.width)  # (B, H, Dv, W2)
        qk2 = qb * K2
        gv2 = go * V2  # (B, H, Dv, W2)
        bias2 = _bias(s2, b0, b1, 0, s2.width, q.dtype)[:, None, None, :] if masked else None
        dqk1 = torch.zeros_like(K2)  # sum_j ds_ijl k1_j  (B, H, D, W2)
        pv1 = torch.zeros_like(V2)  # sum_j p_ijl v1_j   (B, H, Dv, W2)
        for c0, c in chunks:
            K1 = _keys(k1s, s1, b0, b1, c0, c)  # (B, H, D, C)
            V1 = _keys(v1s, s1, b0, b1, c0, c)  # (B, H, Dv, C)
            logits = K1.transpose(-1, -2) @ qk2  # (B, H, C, W2)
            if masked:
                logits.add_(_bias(s1, b0, b1, c0, c, q.dtype)[:, None, :, None]).add_(bias2)
            p = logits.sub_(lse_safe[0, b0:b1, :, None, None]).sub_(
                lse_safe[1, b0:b1, :, None, None]).exp_()  # 0 off the support
            dp = V1.transpose(-1, -2) @ gv2  # (B, H, C, W2)
            ds = dp.sub_(delta[b0:b1, :, None, None]).mul_(p)
            dqk1 += K1 @ ds
            pv1 += V1 @ p
            _scatter(dk1s, qk2 @ ds.transpose(-1, -2), s1, b0, b1, c0)  # (B, H, D, C)
            _scatter(dv1s, gv2 @ p.transpose(-1, -2), s1, b0, b1, c0)  # (B, H, Dv, C)
        dq[b0:b1] = (dqk1 * K2).sum(-1) * scale
        _scatter(dk2s, dqk1 * qb, s2, b0, b1, 0)
        _scatter(dv2s, pv1 * go, s2, b0, b1, 0)

    def unpad(g: Tensor, side: _Side) -> Tensor:
        return g if side.pad < 0 else g[side.pad:side.pad + n]

    return dq, unpad(dk1s, s1), unpad(dk2s, s2), unpad(dv1s, s1), unpad(dv2s, s2)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision inputs are computed (matmuls, softmax, accumulators) in float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _SimplicialAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k1, k2, v1, v2, plan):
        dtype = _compute_dtype(q.dtype)
        out, lse = _forward(*(t.to(dtype) for t in (q, k1, k2, v1, v2)), plan)
        ctx.save_for_backward(q, k1, k2, v1, v2, out, lse)
        ctx.plan = plan
        return out.to(q.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        q, k1, k2, v1, v2, out, lse = ctx.saved_tensors
        dtype = out.dtype
        grads = _backward(*(t.to(dtype) for t in (q, k1, k2, v1, v2)), out, lse,
                          grad_out.to(dtype).contiguous(), ctx.plan)
        return (*(g.to(q.dtype) for g in grads), None)


def _dense_all_pairs(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
                     batch: Optional[Tensor], causal: bool,
                     block_elements: int) -> Optional[Tensor]:
    """All pairs of ``B`` graphs of equal size ``L`` as one ``[B, H, L, L, L]`` block (plain
    autograd), when that block fits in ``block_elements``; else ``None``."""
    n, h, d = q.shape
    if batch is None:
        size = n
    else:
        counts = torch.bincount(batch.long())
        counts = counts[counts > 0]
        size = int(counts[0])
        if bool((counts != size).any()):
            return None
    b = n // size
    if b * h * size * size * max(size, d, v1.size(-1)) > block_elements:
        return None
    dtype = _compute_dtype(q.dtype)
    qb, k1b, k2b, v1b, v2b = (t.to(dtype).reshape(b, size, h, -1).transpose(1, 2)
                              for t in (q, k1, k2, v1, v2))  # (B, H, L, D)
    qk1 = (qb[:, :, :, None, :] / math.sqrt(d)) * k1b[:, :, None, :, :]  # (B, H, L_i, L_j, D)
    logits = qk1.flatten(2, 3) @ k2b.transpose(-1, -2)  # (B, H, L_i * L_j, L_l)
    logits = logits.view(b, h, size, size * size)
    if causal:
        pos = torch.arange(size, device=q.device)
        keep = pos[None, :] <= pos[:, None]  # (i, j)
        logits = logits.masked_fill(~(keep[:, :, None] & keep[:, None, :]).flatten(1), -math.inf)
    s = logits.softmax(-1).view(b, h, size * size, size)
    t = (s @ v2b).view(b, h, size, size, -1)  # (B, H, L_i, L_j, Dv): sum_l s_ijl v2_l
    out = (t * v1b[:, :, None, :, :]).sum(dim=3)  # (B, H, L_i, Dv)
    return out.transpose(1, 2).reshape(n, h, -1).to(q.dtype)


def _largest_graph(batch: Tensor) -> int:
    """The number of items of the largest graph of ``batch``."""
    return int(torch.bincount(batch.long()).max())


def _finite_dtype(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
                  size: int) -> torch.dtype:
    r"""The dtype in which the kernel stays finite: ``q``'s (or float32, for half precision,
    the kernel's compute dtype) unless the logits :math:`|a_{ijl}| \le \max|q| \max|k^{(1)}|
    \max|k^{(2)}| \sqrt{D}` or the unnormalised sums :math:`\sum_{j,l} e^{a_{ijl} - m_i}
    |v^{(1)}_j v^{(2)}_l| \le L^2 \max|v^{(1)}| \max|v^{(2)}|` (``L`` the largest graph) could
    overflow it; then float64 (:func:`affgraph.affinity.finite_dtype`)."""
    mq, m1, m2, n1, n2 = max_abs(q, k1, k2, v1, v2)
    base = _compute_dtype(q.dtype)
    ct = finite_dtype(base, mq * m1 * m2 * math.sqrt(q.size(-1)),
                      "the 2-simplicial logits <q, k1, k2> / sqrt(D)")
    ct = finite_dtype(ct, n1 * n2 * float(size) ** 2, "the 2-simplicial value sums")
    return q.dtype if ct == base else ct


def _check_window(window) -> Optional[Tuple[int, int]]:
    """``window`` as a pair of non-negative ints ``(w1, w2)``, or ``None``."""
    if window is None:
        return None
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise TypeError(f"window must be None or a pair (w1, w2), got {window!r}")
    w1, w2 = window
    for name, w in (("w1", w1), ("w2", w2)):
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"window {name} must be an int, got {type(w).__name__}")
        if w < 0:
            raise ValueError(f"window {name} must be >= 0, got {w}")
    return int(w1), int(w2)


def simplicial_attention(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor, *,
                         window: Optional[Tuple[int, int]] = None, causal: bool = False,
                         batch: Optional[Tensor] = None,
                         block_elements: Optional[int] = None) -> Tensor:
    r"""2-simplicial attention (Clift et al. 2019; Roy et al. 2025, arXiv 2507.02754).

    .. math::
        a_{ijl} = \frac{1}{\sqrt{D}} \sum_{d} q_{id}\, k^{(1)}_{jd}\, k^{(2)}_{ld}, \qquad
        s_{ijl} = \frac{\exp a_{ijl}}{\sum_{(j', l') \in S(i)} \exp a_{ij'l'}}, \qquad
        o_i = \sum_{(j, l) \in S(i)} s_{ijl}\, \big(v^{(1)}_j \odot v^{(2)}_l\big)

    per head, with the support :math:`S(i) = J(i) \times L(i)` inside the graph of :math:`i`:
    all pairs (``window=None``, ``causal=False``); :math:`j, l \le i` (``causal=True``); the
    sliding window ``window=(w1, w2)``: :math:`|i - j| \le w_1,\ |i - l| \le w_2`, or with
    ``causal=True`` :math:`i - w_1 \le j \le i,\ i - w_2 \le l \le i` -- the convention of
    ``attention(..., window=w)``. ``w = 0`` keeps only the position itself; a window wider than
    the sequence is clamped to it. (Roy et al. write the causal window as
    :math:`i - w < j \le i`, ``w`` keys; theirs ``(w1, w2)`` is ours ``(w1 - 1, w2 - 1)``.) The
    cost is :math:`O(N w_1 w_2 H D)`; memory is :math:`O(N (w_1 + w_2) H D)` plus one block of
    ``block_elements`` logits (online softmax over key chunks; the backward pass recomputes the
    blocks). A row with an empty support (impossible for the supports above, which contain
    :math:`(i, i)`) gives zeros.

    Args:
        q, k1, k2 (Tensor): queries and the two keys, ``[N, H, D]`` (or ``[N, D]`` for one head).
        v1, v2 (Tensor): the two values, ``[N, H, Dv]`` (or ``[N, Dv]``).
        window (tuple[int, int], optional): ``(w1, w2)``, non-negative half-widths of the
            sliding window (default: all pairs).
        causal (bool, optional): only keys at positions ``<= i`` (default: ``False``).
        batch (Tensor, optional): sorted PyG graph-assignment vector ``[N]``; supports never
            cross graphs (default: one graph).
        block_elements (int, optional): the most logits, and the most gathered key/value
            entries, held at once (default: ``2**21`` on the CPU, ``2**25`` on a GPU). Half
            precision inputs are computed with float32 matmuls, softmax and accumulators.
            A window whose single row exceeds it, or a plan that exceeds the available memory,
            is a ``ValueError``.

    Shapes:
        - **input:** ``q, k1, k2`` :math:`(N, H, D)`, ``v1, v2`` :math:`(N, H, D_v)`,
          ``batch`` :math:`(N)`
        - **output:** :math:`(N, H, D_v)`
    """
    names = ("q", "k1", "k2", "v1", "v2")
    tensors = (q, k1, k2, v1, v2)
    ndim = q.dim() if isinstance(q, Tensor) else None
    if ndim not in (2, 3):
        check_tensor("q", q)
        raise ValueError(f"q must have shape [N, H, D] or [N, D], got {tuple(q.shape)}")
    for name, t in zip(names, tensors):
        check_tensor(name, t, ndim)
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating tensor, got {t.dtype}")
        if t.dtype != q.dtype or t.device != q.device:
            raise TypeError(f"{name} has dtype/device {t.dtype}/{t.device}, "
                            f"q has {q.dtype}/{q.device}")
    if ndim == 2:
        q, k1, k2, v1, v2 = (t.unsqueeze(1) for t in (q, k1, k2, v1, v2))
    n, h, d = q.shape
    if n == 0:
        raise ValueError("simplicial_attention got an empty input (N = 0)")
    if d == 0:
        raise ValueError("q has zero feature dimension")
    for name, t in (("k1", k1), ("k2", k2)):
        if t.shape != q.shape:
            raise ValueError(f"{name} must have the shape of q {tuple(q.shape)}, "
                             f"got {tuple(t.shape)}")
    if v1.shape[:2] != (n, h) or v2.shape != v1.shape:
        raise ValueError(f"v1 and v2 must have shape [{n}, {h}, Dv] (the same), got "
                         f"{tuple(v1.shape)} and {tuple(v2.shape)}")
    window = _check_window(window)
    if batch is not None:
        if not isinstance(batch, Tensor):
            raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
        check_batch(batch, n)
        batch = batch.to(q.device)
    if window is not None:  # |i - j| <= size - 1 covers a whole graph: never pad wider
        size = n if batch is None else int(torch.bincount(batch.long()).max())
        window = (min(window[0], size - 1), min(window[1], size - 1))
    if block_elements is None:
        cpu = q.device.type == "cpu"
        block_elements = DEFAULT_BLOCK_ELEMENTS if cpu else DEFAULT_BLOCK_ELEMENTS_GPU
    if (isinstance(block_elements, bool) or not isinstance(block_elements, int)
            or block_elements < 1):
        raise ValueError(f"block_elements must be a positive int, got {block_elements!r}")
    dtype = q.dtype
    ct = _finite_dtype(q, k1, k2, v1, v2, n if batch is None else _largest_graph(batch))
    if ct != dtype:  # logits (or sums) beyond the input dtype: compute in a wider one
        q, k1, k2, v1, v2 = (t.to(ct) for t in (q, k1, k2, v1, v2))
    out = None
    if window is None:  # equal-size graphs whose whole logits fit in one block: dense einsum
        out = _dense_all_pairs(q, k1, k2, v1, v2, batch, bool(causal), block_elements)
    if out is None:
        if window is None and causal:  # causal all pairs = the causal window of the longest graph
            size = n if batch is None else int(torch.bincount(batch.long()).max())
            window = (size - 1, size - 1)
        if window is not None and window[1] > window[0]:
            # the form is symmetric in (k1, v1, w1) <-> (k2, v2, w2); the kernel wants w2 <= w1
            k1, k2, v1, v2, window = k2, k1, v2, v1, (window[1], window[0])
        plan = _plan(q, v1, batch, window, bool(causal), block_elements)
        out = _SimplicialAttention.apply(q, k1, k2, v1, v2, plan)
    if ct != dtype:
        out = out.to(dtype)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"the 2-simplicial attention output, a convex combination of "
                             f"v1 * v2, overflows {dtype}; scale v1 or v2 down")
    return out.squeeze(1) if ndim == 2 else out
