"""2-simplicial (trilinear) attention over triangle supports, computed block by block.

Clift et al. 2019, "Logic and the 2-Simplicial Transformer"; Roy et al. 2025, "Fast and Simplex:
2-Simplicial Attention in Triton" (arXiv 2507.02754). In affgraph's terms the support of query
``i`` is a set of pairs ``(j, l)`` (triangles ``(i, j, l)`` of a hypergraph), the kernel is
trilinear and the message of a pair is the elementwise product of two values; one hop.

Every support here is a product of two contiguous index ranges ``J(i) x L(i)`` inside the graph
of ``i`` (all pairs, causal, or a sliding window), so the pairs of a block of queries are
gathered from ``[lo(i), lo(i) + width)`` and masked. The logits are never materialised beyond one
``[B, H, C, W2]`` block: an online softmax runs over chunks of ``C`` keys ``j`` (as flash
attention does over keys), and the backward pass recomputes each block from the saved
log-sum-exp, so memory is ``O(N (w1 + w2) D)`` plus one block. All-pair supports over graphs of
equal size whose whole ``[B, H, L, L, L]`` logits fit in one block (short sequences in a batch)
take a dense ``einsum`` path with plain autograd instead.
"""
from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from affgraph._checks import check_batch, check_tensor

__all__ = ["simplicial_attention"]

DEFAULT_BLOCK_ELEMENTS = 1 << 21


class _Plan(NamedTuple):
    lo1: Tensor  # [N] first key j of each query's support
    cnt1: Tensor  # [N] number of keys j
    lo2: Tensor  # [N] first key l
    cnt2: Tensor  # [N] number of keys l
    width2: int  # max cnt2
    block_q: int  # queries per block
    chunk: int  # keys j per chunk


def _ranges(n: int, batch: Optional[Tensor], w: Optional[int], causal: bool,
            device: torch.device) -> Tuple[Tensor, Tensor]:
    """First index and length of the contiguous key range of every query."""
    i = torch.arange(n, device=device)
    if batch is None:
        start = torch.zeros(n, dtype=torch.long, device=device)
        end = torch.full((n,), n - 1, dtype=torch.long, device=device)
    else:
        b = batch.long()
        counts = torch.bincount(b)
        ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        start, end = ptr[b], ptr[b + 1] - 1
    lo = start if w is None else torch.maximum(start, i - w + 1)
    if causal:
        hi = i
    else:
        hi = end if w is None else torch.minimum(end, i + w - 1)
    return lo, hi - lo + 1


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
    w1, w2 = (None, None) if window is None else window
    lo1, cnt1 = _ranges(n, batch, w1, causal, q.device)
    lo2, cnt2 = _ranges(n, batch, w2, causal, q.device)
    width1, width2 = int(cnt1.max()), int(cnt2.max())
    row = h * width2  # logits of one query and one key j
    if row > block_elements:
        raise ValueError(
            f"simplicial_attention cannot fit: one query row needs heads * w2 = {row} logits, "
            f"more than block_elements={block_elements}; use a smaller window or fewer heads "
            f"(or raise block_elements)")
    chunk = max(1, min(width1, block_elements // row))
    gathered = h * (width2 + chunk) * (d + v.size(-1))  # keys and values gathered per query
    block_q = max(1, min(n, block_elements // (row * chunk), block_elements // gathered))
    # working set: ~4 live [B, H, C, W2] blocks, the gathered keys/values, and the outputs
    elem = q.element_size()
    block = 4 * block_q * chunk * row + block_q * h * (width2 + chunk) * 2 * (d + v.size(-1))
    need = elem * (block + 3 * n * h * (d + v.size(-1)))
    avail = _available_bytes(q.device)
    if need > avail:
        raise ValueError(
            f"simplicial_attention cannot fit: needs about {need / 2**20:.0f} MiB, "
            f"{avail / 2**20:.0f} MiB available on {q.device}; lower block_elements or N")
    return _Plan(lo1, cnt1, lo2, cnt2, width2, block_q, chunk)


def _gather(x: Tensor, lo: Tensor, offset: int, width: int, cnt: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Rows ``lo + offset + t`` (t < width) of ``x`` as ``[B, H, width, F]``, their index, and
    an additive mask ``[B, width]`` (0 inside the support, -inf outside)."""
    t = offset + torch.arange(width, device=x.device)
    valid = t[None, :] < cnt[:, None]  # [B, width]
    idx = (lo[:, None] + t[None, :]).clamp(max=x.size(0) - 1)
    bias = torch.zeros(valid.shape, dtype=x.dtype, device=x.device).masked_fill_(~valid, -math.inf)
    return x[idx].transpose(1, 2), idx, bias


def _blocks(plan: _Plan, n: int):
    for b0 in range(0, n, plan.block_q):
        b1 = min(n, b0 + plan.block_q)
        c1 = int(plan.cnt1[b0:b1].max())
        yield b0, b1, [(c0, min(plan.chunk, c1 - c0)) for c0 in range(0, c1, plan.chunk)]


def _forward(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
             plan: _Plan) -> Tuple[Tensor, Tensor]:
    n, h, d = q.shape
    scale = 1.0 / math.sqrt(d)
    out = q.new_zeros(n, h, v1.size(-1))
    lse = q.new_full((n, h), -math.inf)
    kv1, kv2 = torch.cat([k1, v1], -1), torch.cat([k2, v2], -1)  # one gather per key range
    for b0, b1, chunks in _blocks(plan, n):
        qb = q[b0:b1] * scale  # (B, H, D)
        KV2, _, val2 = _gather(kv2, plan.lo2[b0:b1], 0, plan.width2, plan.cnt2[b0:b1])
        K2, V2 = KV2[..., :d], KV2[..., d:]  # (B, H, W2, D), (B, H, W2, Dv)
        m = q.new_full((b1 - b0, h), -math.inf)
        s = q.new_zeros(b1 - b0, h)
        acc = q.new_zeros(b1 - b0, h, v1.size(-1))
        for c0, c in chunks:
            KV1, _, val1 = _gather(kv1, plan.lo1[b0:b1], c0, c, plan.cnt1[b0:b1])
            K1, V1 = KV1[..., :d], KV1[..., d:]  # (B, H, C, D), (B, H, C, Dv)
            logits = (qb[:, :, None, :] * K1) @ K2.transpose(-1, -2)  # (B, H, C, W2)
            logits.add_(val1[:, None, :, None]).add_(val2[:, None, None, :])  # -inf off support
            m_new = torch.maximum(m, logits.amax(dim=(-1, -2)))
            m_safe = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            alpha = torch.exp(m - m_safe)
            p = logits.sub_(m_safe[..., None, None]).exp_()  # masked pairs -> 0
            s = s * alpha + p.sum(dim=(-1, -2))
            acc = acc * alpha[..., None] + ((p @ V2) * V1).sum(dim=2)  # sum_jl p v1_j * v2_l
            m = m_new
        nonempty = s > 0
        out[b0:b1] = torch.where(nonempty[..., None], acc / s.clamp_min(1e-30)[..., None],
                                 torch.zeros_like(acc))
        lse[b0:b1] = torch.where(nonempty, m + torch.log(s.clamp_min(1e-30)), lse[b0:b1])
    return out, lse


def _backward(q, k1, k2, v1, v2, out, lse, grad_out, plan: _Plan):
    n, h, d = q.shape
    scale = 1.0 / math.sqrt(d)
    dq, dk1, dk2 = torch.zeros_like(q), torch.zeros_like(k1), torch.zeros_like(k2)
    dv1, dv2 = torch.zeros_like(v1), torch.zeros_like(v2)
    delta = (grad_out * out).sum(-1)  # (N, H)
    lse_safe = torch.where(torch.isinf(lse), torch.zeros_like(lse), lse)
    kv1, kv2 = torch.cat([k1, v1], -1), torch.cat([k2, v2], -1)
    for b0, b1, chunks in _blocks(plan, n):
        B = b1 - b0
        qb = q[b0:b1] * scale
        go = grad_out[b0:b1]  # (B, H, Dv)
        KV2, idx2, val2 = _gather(kv2, plan.lo2[b0:b1], 0, plan.width2, plan.cnt2[b0:b1])
        K2, V2 = KV2[..., :d], KV2[..., d:]
        dK2 = torch.zeros_like(K2)
        dV2 = torch.zeros_like(V2)
        dqb = torch.zeros_like(qb)
        for c0, c in chunks:
            KV1, idx1, val1 = _gather(kv1, plan.lo1[b0:b1], c0, c, plan.cnt1[b0:b1])
            K1, V1 = KV1[..., :d], KV1[..., d:]
            qk1 = qb[:, :, None, :] * K1  # (B, H, C, D)
            logits = qk1 @ K2.transpose(-1, -2)  # (B, H, C, W2)
            logits.add_(val1[:, None, :, None]).add_(val2[:, None, None, :])
            p = logits.sub_(lse_safe[b0:b1, :, None, None]).exp_()  # 0 off support
            gv1 = go[:, :, None, :] * V1  # (B, H, C, Dv)
            dp = gv1 @ V2.transpose(-1, -2)  # (B, H, C, W2): sum_e dO_e v1_je v2_le
            ds = p * (dp - delta[b0:b1, :, None, None])
            dsk2 = ds @ K2  # (B, H, C, D)
            dqb += (dsk2 * K1).sum(dim=2)
            dK1 = dsk2 * qb[:, :, None, :]
            dK2 += ds.transpose(-1, -2) @ qk1
            dV1 = (p @ V2) * go[:, :, None, :]
            dV2 += p.transpose(-1, -2) @ gv1
            flat1 = idx1.reshape(-1)
            dk1.index_add_(0, flat1, dK1.transpose(1, 2).reshape(B * c, h, d))
            dv1.index_add_(0, flat1, dV1.transpose(1, 2).reshape(B * c, h, -1))
        dq[b0:b1] = dqb * scale
        flat2 = idx2.reshape(-1)
        w2 = plan.width2
        dk2.index_add_(0, flat2, dK2.transpose(1, 2).reshape(B * w2, h, d))
        dv2.index_add_(0, flat2, dV2.transpose(1, 2).reshape(B * w2, h, -1))
    return dq, dk1, dk2, dv1, dv2


class _SimplicialAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k1, k2, v1, v2, plan):
        out, lse = _forward(q, k1, k2, v1, v2, plan)
        ctx.save_for_backward(q, k1, k2, v1, v2, out, lse)
        ctx.plan = plan
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k1, k2, v1, v2, out, lse = ctx.saved_tensors
        grads = _backward(q, k1, k2, v1, v2, out, lse, grad_out.contiguous(), ctx.plan)
        return (*grads, None)


def _dense_all_pairs(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
                     batch: Optional[Tensor], causal: bool, block_elements: int) -> Optional[Tensor]:
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
    qb, k1b, k2b, v1b, v2b = (t.reshape(b, size, h, -1).transpose(1, 2)
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
    return out.transpose(1, 2).reshape(n, h, -1)


def _check_window(window) -> Optional[Tuple[int, int]]:
    if window is None:
        return None
    if not isinstance(window, (tuple, list)) or len(window) != 2:
        raise TypeError(f"window must be None or a pair (w1, w2), got {window!r}")
    w1, w2 = window
    for name, w in (("w1", w1), ("w2", w2)):
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"window {name} must be an int, got {type(w).__name__}")
        if w < 1:
            raise ValueError(f"window {name} must be >= 1, got {w}")
    return int(w1), int(w2)


def simplicial_attention(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor, *,
                         window: Optional[Tuple[int, int]] = None, causal: bool = False,
                         batch: Optional[Tensor] = None,
                         block_elements: int = DEFAULT_BLOCK_ELEMENTS) -> Tensor:
    r"""2-simplicial attention (Clift et al. 2019; Roy et al. 2025, arXiv 2507.02754).

    .. math::
        a_{ijl} = \frac{1}{\sqrt{D}} \sum_{d} q_{id}\, k^{(1)}_{jd}\, k^{(2)}_{ld}, \qquad
        s_{ijl} = \frac{\exp a_{ijl}}{\sum_{(j', l') \in S(i)} \exp a_{ij'l'}}, \qquad
        o_i = \sum_{(j, l) \in S(i)} s_{ijl}\, \big(v^{(1)}_j \odot v^{(2)}_l\big)

    per head, with the support :math:`S(i) = J(i) \times L(i)` inside the graph of :math:`i`:
    all pairs (``window=None``, ``causal=False``); :math:`j, l \le i` (``causal=True``); the
    sliding window ``window=(w1, w2)`` of Roy et al.: :math:`|i - j| < w_1,\ |i - l| < w_2`, or
    with ``causal=True`` :math:`i - w_1 < j \le i,\ i - w_2 < l \le i`. The cost is
    :math:`O(N w_1 w_2 H D)`; memory is :math:`O(N (w_1 + w_2) H D)` plus one block of
    ``block_elements`` logits (online softmax over key chunks; the backward pass recomputes the
    blocks). A row with an empty support (impossible for the supports above, which contain
    :math:`(i, i)`) gives zeros.

    Args:
        q, k1, k2 (Tensor): queries and the two keys, ``[N, H, D]`` (or ``[N, D]`` for one head).
        v1, v2 (Tensor): the two values, ``[N, H, Dv]`` (or ``[N, Dv]``).
        window (tuple[int, int], optional): ``(w1, w2)`` sliding window (default: all pairs).
        causal (bool, optional): only keys at positions ``<= i`` (default: ``False``).
        batch (Tensor, optional): sorted PyG graph-assignment vector ``[N]``; supports never
            cross graphs (default: one graph).
        block_elements (int, optional): the most logits, and the most gathered key/value
            entries, held at once (default: ``2**21``).
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
            raise TypeError(f"{name} has dtype/device {t.dtype}/{t.device}, q has {q.dtype}/{q.device}")
    if ndim == 2:
        q, k1, k2, v1, v2 = (t.unsqueeze(1) for t in (q, k1, k2, v1, v2))
    n, h, d = q.shape
    if n == 0:
        raise ValueError("simplicial_attention got an empty input (N = 0)")
    if d == 0:
        raise ValueError("q has zero feature dimension")
    for name, t in (("k1", k1), ("k2", k2)):
        if t.shape != q.shape:
            raise ValueError(f"{name} must have the shape of q {tuple(q.shape)}, got {tuple(t.shape)}")
    if v1.shape[:2] != (n, h) or v2.shape != v1.shape:
        raise ValueError(f"v1 and v2 must have shape [{n}, {h}, Dv] (the same), got "
                         f"{tuple(v1.shape)} and {tuple(v2.shape)}")
    window = _check_window(window)
    if batch is not None:
        if not isinstance(batch, Tensor):
            raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
        check_batch(batch, n)
        batch = batch.to(q.device)
    if not isinstance(block_elements, int) or block_elements < 1:
        raise ValueError(f"block_elements must be a positive int, got {block_elements!r}")
    out = None
    if window is None:  # equal-size graphs whose whole logits fit in one block: dense einsum
        out = _dense_all_pairs(q, k1, k2, v1, v2, batch, bool(causal), block_elements)
    if out is None:
        plan = _plan(q, v1, batch, window, bool(causal), block_elements)
        out = _SimplicialAttention.apply(q, k1, k2, v1, v2, plan)
    return out.squeeze(1) if ndim == 2 else out
