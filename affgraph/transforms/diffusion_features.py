r"""Precomputed multi-hop diffusion features (SIGN-style), computed channel block by block."""
from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from affgraph._checks import check_choice, check_positive_int, check_solver
from affgraph._dist import all_reduce_sum, my_blocks
from affgraph.affinity import NORMALIZATIONS
from affgraph.diffusion import (COEFF_KINDS, DiffusionGraph, _check_hops, _coefficients,
                                family_params)

__all__ = ["DiffusionFeatures"]


def _hop_list(hops: Union[int, Sequence[Union[int, float]]]) -> tuple:
    """The hop counts: an ``int`` K is SIGN's ``(1, ..., K)``; else a non-empty sequence of
    distinct non-negative ints and ``math.inf``."""
    if isinstance(hops, numbers.Integral) and not isinstance(hops, bool):
        check_positive_int("hops", int(hops))
        return tuple(range(1, int(hops) + 1))
    if isinstance(hops, (str, bytes)) or not isinstance(hops, Sequence):
        raise TypeError(f"hops must be an int K or a sequence of hop counts (ints >= 0 or "
                        f"math.inf), got {type(hops).__name__}")
    if len(hops) == 0:
        raise ValueError("hops must hold at least one hop count, got an empty sequence")
    out = []
    for h in hops:
        try:
            _check_hops(h)
        except (TypeError, ValueError) as err:
            raise type(err)(f"hops: {err}") from None
        out.append(math.inf if h == math.inf else int(h))
    if len(set(out)) != len(out):
        raise ValueError(f"hops must be distinct, got {tuple(hops)!r}")
    return tuple(out)


class DiffusionFeatures(BaseTransform):
    r"""Stores the diffused node features :math:`\sum_k \theta^{(K)}_k \hat{\mathbf{A}}^k
    \mathbf{X}` for several hop counts :math:`K` (the closed form :math:`K = \infty` included)
    on a :class:`~torch_geometric.data.Data`, as PyG's ``SIGN`` does for plain powers
    (`"SIGN: Scalable Inception Graph Neural Networks" <https://arxiv.org/abs/2004.11198>`_).

    .. math::
        \mathbf{X}^{(K)} = \sum_{k=0}^{K} \theta^{(K)}_k \hat{\mathbf{A}}^k \mathbf{X}, \qquad
        \mathbf{X}^{(\infty)} = \text{the closed form, e.g. }
        \alpha\big(\mathbf{I} - (1-\alpha)\hat{\mathbf{A}}\big)^{-1}\mathbf{X}
        \ \text{for}\ \texttt{"ppr"}

    with :math:`\theta^{(K)}` the coefficients of the family ``coeffs`` for :math:`K` hops
    (:func:`affgraph.diffusion.coefficients`; e.g. ``"ppr"`` with :math:`K` hops is PyG's
    ``APPNP(K, alpha)``) and :math:`\hat{\mathbf{A}}` the graph normalised as in
    :class:`affgraph.nn.AffinityDiffusion`. The result for hop count ``K`` is stored in
    ``data[f"{key}{K}"]`` (``x1``, ``x2``, ``x4``, ... as ``SIGN`` names them) and the closed
    form in ``data[f"{key}_inf"]``; ``data[key]`` itself is kept. Any model of the rows
    (an MLP over the concatenated features) then trains on mini-batches of nodes.

    The finite hop counts share their powers: :math:`\hat{\mathbf{A}}^k \mathbf{X}` is
    computed once for :math:`k = 1, \dots, \max K` (``max K`` sparse products in all) and added
    into every output with its coefficient. The channels are processed ``block_size`` at a
    time (each block its own products and, for :math:`K = \infty`, its own iterative solve:
    conjugate gradients on a symmetric graph, BiCGSTAB otherwise), so the memory beyond the
    normalised graph and the outputs is a few ``[N, block_size]`` blocks. Under
    ``torch.distributed`` (an initialised default process group) rank ``r`` of ``W`` computes
    blocks ``r, r + W, ...`` and the outputs are summed over the ranks, so every rank ends with
    the full result.

    With ``coeffs="power"``, ``normalize="sym"``, ``add_self_loops=False`` and ``hops=K``
    (an int, meaning ``1, ..., K``) the outputs are ``SIGN(K)``'s.

    Args:
        hops (int or sequence): the hop counts, non-negative ints and ``math.inf``, distinct;
            an int :math:`K` means ``(1, ..., K)``. (default: ``(1, 2, 4, math.inf)``)
        coeffs (str): a family of :func:`affgraph.diffusion.coefficients`: ``"ppr"``,
            ``"katz"``, ``"heat"``, ``"uniform"``, ``"power"`` (the last two have no
            ``math.inf``). (default: ``"ppr"``)
        alpha (float, optional): PPR teleport probability (``"ppr"`` only). (default: ``0.1``)
        r (float, optional): Katz decay, absolute (``"katz"`` only).
            (default: :math:`0.9/\rho(\hat{\mathbf{A}})`)
        t (float, optional): heat-kernel time (``"heat"`` only). (default: ``1.0``)
        normalize (bool or str): ``True`` is ``"sym"`` (``gcn_norm``), ``False`` is
            ``"none"``; or ``"row"``, ``"softmax"``. (default: ``True``)
        add_self_loops (bool): add the missing self-loops (weight 1) before normalising (not
            without normalisation, as in ``APPNP``). (default: ``True``)
        tol (float): relative residual of the closed-form solve, per channel.
            (default: ``1e-6``)
        max_iter (int): iteration cap of the closed-form solve. (default: ``1000``)
        block_size (int): channels per block. (default: ``64``)
        key (str): the attribute holding the features, and the prefix of the stored ones.
            (default: ``"x"``)

    The graph is ``data.edge_index`` with ``data.edge_weight`` when present, else
    ``data.adj_t`` (a ``torch.sparse`` or ``SparseTensor`` adjacency, row = target).

    Shapes:
        - **input:** ``data[key]`` :math:`(N, C)` floating, ``edge_index`` :math:`(2, E)`
        - **output:** ``data[f"{key}{K}"]`` and ``data[f"{key}_inf"]`` :math:`(N, C)`, the
          dtype of ``data[key]``
    """

    def __init__(self, hops: Union[int, Sequence[Union[int, float]]] = (1, 2, 4, math.inf),
                 coeffs: str = "ppr", *, alpha: Optional[float] = None,
                 r: Optional[float] = None, t: Optional[float] = None,
                 normalize: Union[bool, str] = True, add_self_loops: bool = True,
                 tol: float = 1e-6, max_iter: int = 1000, block_size: int = 64,
                 key: str = "x") -> None:
        self.hops = _hop_list(hops)
        if not isinstance(coeffs, str):
            raise TypeError(f"coeffs must be the name of a coefficient family {COEFF_KINDS}, "
                            f"got {type(coeffs).__name__}")
        self.alpha, self.r, self.t = family_params(coeffs, alpha=alpha, r=r, t=t)
        if math.inf in self.hops and coeffs in ("uniform", "power"):
            raise ValueError(f"hops: coeffs={coeffs!r} has no infinite-hop limit; drop "
                             "math.inf from hops")
        if isinstance(normalize, bool):
            self._mode = "sym" if normalize else "none"
        else:
            check_choice("normalize", normalize, NORMALIZATIONS, what="normalisation mode")
            self._mode = normalize
        if not isinstance(add_self_loops, bool):
            raise TypeError(f"add_self_loops must be a bool, got {type(add_self_loops).__name__}")
        check_solver(tol, max_iter)
        check_positive_int("block_size", block_size)
        if not isinstance(key, str) or not key:
            raise TypeError(f"key must be a non-empty str, got {key!r}")
        self.coeffs, self.normalize, self.add_self_loops = coeffs, normalize, add_self_loops
        self.tol, self.max_iter, self.block_size, self.key = tol, max_iter, block_size, key

    def names(self) -> list[str]:
        """The attributes written, in the order of ``hops``."""
        return [f"{self.key}_inf" if h == math.inf else f"{self.key}{h}" for h in self.hops]

    def forward(self, data: Data) -> Data:
        x = data[self.key] if self.key in data else None
        if not isinstance(x, Tensor):
            raise TypeError(f"data.{self.key} must be a torch.Tensor of node features, got "
                            f"{type(x).__name__}")
        if x.dim() != 2 or not x.is_floating_point():
            raise ValueError(f"data.{self.key} must be a floating [N, C] tensor, got "
                             f"{x.dtype} {tuple(x.shape)}")
        if "edge_index" in data and data.edge_index is not None:
            graph_in, weight = data.edge_index, data.get("edge_weight", None)
        elif "adj_t" in data and data.adj_t is not None:
            graph_in, weight = data.adj_t, None
        else:
            raise ValueError("data needs an edge_index (or an adj_t) to diffuse over")
        graph = DiffusionGraph.from_graph(
            graph_in, weight, x.size(0), dtype=x.dtype, normalize=self._mode,
            add_self_loops=self.add_self_loops and self._mode != "none")
        for name, out in zip(self.names(), self.features(graph, x)):
            data[name] = out
        return data

    def features(self, graph: DiffusionGraph, x: Tensor) -> list[Tensor]:
        r"""The outputs for ``graph`` (already normalised) and features ``x [N, C]``, in the
        order of ``hops``: the channel blocks of this rank computed, then summed over ranks."""
        from affgraph._checks import check_finite

        check_finite(self.key, x)
        r = self.r
        if self.coeffs in ("katz", "inffs") and r is None:
            rho = graph.rho()
            if rho == 0:
                raise ValueError("rho(A) = 0: give r explicitly")
            r = 0.9 / rho
        finite = sorted(h for h in self.hops if h != math.inf)
        theta = {h: _coefficients(self.coeffs, h, r=r, alpha=self.alpha, t=self.t).tolist()
                 for h in finite}
        outs = {h: x.new_zeros(x.shape) for h in self.hops}
        c = x.size(1)
        blocks = [slice(s, min(s + self.block_size, c)) for s in range(0, c, self.block_size)]
        apply_A = graph.operator(x.dtype)
        with torch.no_grad():
            for blk in my_blocks(blocks):
                xb = x[:, blk].contiguous()
                if finite:
                    self._powers(apply_A, xb, finite, theta, outs, blk)
                if math.inf in self.hops:
                    outs[math.inf][:, blk] = graph.diffuse(
                        xb, hops=math.inf, coeffs=self.coeffs, r=r, alpha=self.alpha,
                        t=self.t, tol=self.tol, max_iter=self.max_iter)
        return [all_reduce_sum(outs[h]) for h in self.hops]

    @staticmethod
    def _powers(apply_A, xb: Tensor, finite: list, theta: dict, outs: dict, blk: slice) -> None:
        """``outs[K][:, blk] = sum_k theta[K][k] A^k xb`` for every finite ``K``, each power
        computed once."""
        p = xb
        for k in range(0, finite[-1] + 1):
            if k > 0:
                p = apply_A(p)
            for h in finite:
                if h >= k and theta[h][k] != 0.0:
                    outs[h][:, blk].add_(p, alpha=theta[h][k])

    def __repr__(self) -> str:
        hops = ", ".join("inf" if h == math.inf else str(h) for h in self.hops)
        return f"{self.__class__.__name__}(hops=({hops}), coeffs={self.coeffs!r})"
