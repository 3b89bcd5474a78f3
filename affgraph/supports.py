r"""Supports: which pairs ``(i, j)`` of items may interact (the edges ``j -> i`` of the graph).

Implicit supports — ``complete``, ``causal``, sliding ``window`` — are described by a rule,
never by ``n^2`` stored edges: every query ``i`` sees one contiguous range of keys
``lo_i <= j < hi_i`` inside its own graph (PyG ``batch`` vector). They only become an
``edge_index`` when asked (:meth:`Support.to_edge_index`, for inspection and tests).
Explicit supports hold an ``edge_index``: given by the user (:func:`edges`) or built from
features (:func:`knn`, blocked, ``O(block * N)`` memory).

Window convention: ``window(w)`` lets ``i`` see ``|i - j| <= w`` (``2w + 1`` keys);
``window(w, causal=True)`` lets it see ``i - w <= j <= i`` (``w + 1`` keys). A window wider
than the sequence is the whole sequence (:meth:`Support.clamp`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

from affgraph._checks import check_batch, check_edge_index, check_positive_int, check_tensor

KINDS = ("complete", "causal", "window", "edges")


@dataclass(frozen=True)
class Support:
    """A support: ``kind`` in ``("complete", "causal", "window", "edges")``.

    Args:
        kind (str): the rule.
        window (int, optional): half-width ``w`` for ``kind="window"``.
        causal (bool): for ``"window"``, only look back. (``"causal"`` is causal by definition.)
        edge_index (Tensor, optional): ``[2, E]`` for ``kind="edges"``.
    """

    kind: str
    window: Optional[int] = None
    causal: bool = False
    edge_index: Optional[Tensor] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown support {self.kind!r}; choose one of {KINDS}")
        if self.kind == "window":
            if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 0:
                raise ValueError(f"window must be a non-negative int, got {self.window!r}")
        if self.kind == "edges" and self.edge_index is None:
            raise ValueError("an 'edges' support needs an edge_index")

    @property
    def implicit(self) -> bool:
        """Whether the support is a rule (no stored edges)."""
        return self.kind != "edges"

    @property
    def is_causal(self) -> bool:
        return self.kind == "causal" or (self.kind == "window" and self.causal)

    def clamp(self, num_nodes: int) -> "Support":
        """This support for sequences of at most ``num_nodes`` items: a window with
        ``w >= num_nodes - 1`` lets every item see its whole graph (or, causal, all earlier
        items), so it is the ``complete`` (``causal``) support, run without any
        ``w``-sized block; every other support is returned as it is."""
        if self.kind == "window" and self.window >= num_nodes - 1:
            return Support("causal") if self.causal else Support("complete")
        return self

    def key_ranges(self, num_nodes: int, batch: Optional[Tensor] = None,
                   device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
        """``(lo, hi)``: query ``i`` sees the keys ``lo[i] <= j < hi[i]`` (implicit supports)."""
        if not self.implicit:
            raise ValueError("key ranges exist only for implicit supports")
        check_batch(batch, num_nodes)
        device = batch.device if batch is not None else device
        i = torch.arange(num_nodes, device=device)
        start, end = graph_bounds(num_nodes, batch, device)
        lo, hi = start, end
        if self.kind == "causal":
            hi = i + 1
        elif self.kind == "window":
            lo = torch.maximum(start, i - self.window)
            hi = i + 1 if self.causal else torch.minimum(end, i + self.window + 1)
        return lo, hi

    def to_edge_index(self, num_nodes: int, batch: Optional[Tensor] = None,
                      device: Optional[torch.device] = None) -> Tensor:
        """The support as a ``[2, E]`` ``edge_index`` sorted by target (materialises it)."""
        if not self.implicit:
            check_edge_index(self.edge_index, num_nodes)
            return _as_long(self.edge_index)
        lo, hi = self.key_ranges(num_nodes, batch, device)
        counts = hi - lo
        dst = torch.repeat_interleave(torch.arange(num_nodes, device=lo.device), counts)
        offsets = torch.cumsum(counts, 0) - counts
        src = lo[dst] + torch.arange(dst.numel(), device=lo.device) - offsets[dst]
        return torch.stack([src, dst])

    def dense_mask(self, num_nodes: int, batch: Optional[Tensor] = None,
                   device: Optional[torch.device] = None) -> Tensor:
        """``[N, N]`` boolean mask, ``mask[i, j]`` = "i sees j" (for tests and baselines)."""
        if not self.implicit:
            check_edge_index(self.edge_index, num_nodes)
            ei = _as_long(self.edge_index)  # (a uint8 index would be read as a mask)
            mask = torch.zeros(num_nodes, num_nodes, dtype=torch.bool, device=ei.device)
            mask[ei[1], ei[0]] = True
            return mask
        lo, hi = self.key_ranges(num_nodes, batch, device)
        j = torch.arange(num_nodes, device=lo.device)
        return (j[None, :] >= lo[:, None]) & (j[None, :] < hi[:, None])


def graph_bounds(num_nodes: int, batch: Optional[Tensor] = None,
                 device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
    """For each node, the first index of its graph and one past the last (``batch`` sorted)."""
    if batch is None or num_nodes == 0:
        z = torch.zeros(num_nodes, dtype=torch.long, device=device)
        return z, z + num_nodes
    _, counts = torch.unique_consecutive(batch, return_counts=True)
    ends = torch.cumsum(counts, 0)
    starts = ends - counts
    return (torch.repeat_interleave(starts, counts), torch.repeat_interleave(ends, counts))


def complete() -> Support:
    """Every item sees every item of its graph (self included)."""
    return Support("complete")


def causal() -> Support:
    """Item ``i`` sees ``j <= i`` of its graph."""
    return Support("causal")


def window(w: int, causal: bool = False) -> Support:
    """Item ``i`` sees ``|i - j| <= w`` (or ``i - w <= j <= i`` if ``causal``) in its graph."""
    return Support("window", window=w, causal=causal)


def edges(edge_index: Tensor) -> Support:
    """An explicit support: the edges ``edge_index[0] -> edge_index[1]`` (any integer dtype,
    held as ``int64``: a ``uint8`` index tensor would otherwise be read as a boolean mask)."""
    return Support("edges", edge_index=_as_long(edge_index))


def _as_long(edge_index: Tensor) -> Tensor:
    """An integer ``[2, E]`` ``edge_index`` as ``int64`` (other dtypes are refused)."""
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex() or \
            edge_index.dtype == torch.bool:
        raise ValueError(f"edge_index must be an integer tensor, got {edge_index.dtype}")
    return edge_index if edge_index.dtype == torch.long else edge_index.long()


def resolve(edge_index: Optional[Tensor] = None, causal: bool = False,
            window: Optional[int] = None) -> Support:
    """The support selected by ``attention``'s arguments (``edge_index`` excludes the others)."""
    if edge_index is not None:
        if causal or window is not None:
            raise ValueError("edge_index cannot be combined with causal or window")
        return Support("edges", edge_index=edge_index)
    if window is not None:
        return Support("window", window=window, causal=bool(causal))
    return Support("causal") if causal else Support("complete")


def knn(x: Tensor, k: int, batch: Optional[Tensor] = None, *, loop: bool = False,
        cosine: bool = False, block_size: int = 2048) -> Support:
    r"""k-nearest-neighbour support from features: the edges ``j -> i`` for the ``k`` nearest
    ``j`` of each ``i`` (Euclidean, or cosine distance ``1 - cos``) within its graph.

    Computed in blocks of ``block_size`` queries: memory ``O(block_size * N)``, time ``O(N^2 D)``.
    A graph with fewer than ``k`` candidates gives its nodes fewer edges. Edges are sorted by
    target; with equal degrees the attention takes its fixed-degree fast path.

    Args:
        x (Tensor): ``[N, D]`` features.
        k (int): neighbours per node, ``>= 1``.
        batch (Tensor, optional): ``[N]`` sorted graph ids.
        loop (bool): count a node as its own neighbour. (default: :obj:`False`)
        cosine (bool): cosine instead of Euclidean distance. (default: :obj:`False`)
        block_size (int): queries per block. (default: ``2048``)
    """
    check_tensor("x", x, ndim=2)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    check_positive_int("block_size", block_size)
    n = x.size(0)
    check_batch(batch, n)
    if n == 0:
        return edges(torch.empty(2, 0, dtype=torch.long, device=x.device))
    xf = x.double() if x.dtype == torch.float64 else x.float()
    # one global scale (the neighbours do not change) to a largest |entry| of 1, so that the
    # squared norms neither overflow (|x| ~ 1e30 in float32) nor underflow (1e-30)
    top = xf.abs().amax()
    xf = xf / top if bool(top > 0) else xf
    if cosine:
        xf = xf / xf.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sq = (xf * xf).sum(1)
    b = torch.zeros(n, dtype=torch.long, device=x.device) if batch is None else batch
    kk = min(k, n)
    src_all, dst_all = [], []
    cols = torch.arange(n, device=x.device)
    for a in range(0, n, block_size):
        rows = cols[a:a + block_size]
        d = sq[rows, None] + sq[None, :] - 2 * xf[rows] @ xf.T  # (B, N) squared distances
        d = d.clamp_min(0)
        d = d.masked_fill(b[rows, None] != b[None, :], float("inf"))
        if not loop:
            d[torch.arange(rows.numel(), device=x.device), rows] = float("inf")
        val, idx = torch.topk(d, kk, dim=1, largest=False, sorted=True)
        ok = torch.isfinite(val)
        src_all.append(idx[ok])
        dst_all.append(rows[:, None].expand_as(idx)[ok])
    return edges(torch.stack([torch.cat(src_all), torch.cat(dst_all)]))
