"""AffinityDiffusion: K-hop propagation over a graph's normalised edge weights (APPNP and more)."""
from __future__ import annotations

import functools
import math
import warnings
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor

from affgraph._checks import check_solver, check_tensor
from affgraph.affinity import NORMALIZATIONS
from affgraph.diffusion import (DiffusionGraph, _check_dropout, _check_hops, coefficients,
                                family_params)


def _renamed_learnable(init: Callable[..., None]) -> Callable[..., None]:
    """Accept the former keyword ``learnable`` of ``__init__`` as a deprecated alias of
    ``learn_coeffs`` (a ``FutureWarning``; a ``TypeError`` when both are given)."""
    @functools.wraps(init)
    def wrapper(self: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        if "learnable" in kwargs:
            if "learn_coeffs" in kwargs:
                raise TypeError("pass learn_coeffs only: learnable is its deprecated alias, "
                                "both were given")
            warnings.warn("AffinityDiffusion(learnable=...) is deprecated; use learn_coeffs=... "
                          "(the name AffinityAttention uses)", FutureWarning, stacklevel=2)
            kwargs["learn_coeffs"] = kwargs.pop("learnable")
        init(self, *args, **kwargs)

    return wrapper


class AffinityDiffusion(torch.nn.Module):
    r"""K-hop diffusion over a graph's (normalised) edge weights, a drop-in for PyG's ``APPNP``.

    .. math::
        \mathbf{X}' = \sum_{k=0}^{K} \theta_k \hat{\mathbf{A}}^k \mathbf{X}, \qquad
        \hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I})
        \hat{\mathbf{D}}^{-1/2} \ \text{(the defaults)}

    The positional arguments are ``APPNP``'s, with its meaning: with ``coeffs="ppr"``
    (:math:`\theta_k = \alpha(1-\alpha)^k`, the tail mass :math:`(1-\alpha)^K` on the last
    power) ``AffinityDiffusion(K, alpha, dropout, cached, add_self_loops, normalize)`` computes
    PyG's ``APPNP(K, alpha, dropout, cached, add_self_loops, normalize)`` from `"Predict then
    Propagate" <https://arxiv.org/abs/1810.05997>`_. Other families are keyword options:
    ``coeffs="power"`` (:math:`\theta_K = 1`) is the propagation of ``SGConv``
    (`"Simplifying Graph Convolutional Networks" <https://arxiv.org/abs/1902.07153>`_),
    ``"katz"`` :math:`\theta_k = r^k` (:math:`k \ge 1`), ``"heat"``
    :math:`\theta_k = e^{-t} t^k / k!`, ``"uniform"``; ``learn_coeffs=True`` makes :math:`\theta`
    a parameter initialised from the chosen family (GPR-GNN, `"Adaptive Universal Generalized
    PageRank Graph Neural Network" <https://arxiv.org/abs/2006.07988>`_). ``K=math.inf`` gives
    the closed forms (PPR :math:`\alpha(\mathbf{I} - (1-\alpha)\hat{\mathbf{A}})^{-1}\mathbf{X}`,
    Katz, heat) by an iterative solve; see :func:`affgraph.diffusion.propagate`. Each hop is
    one CSR sparse-dense product; :math:`\hat{\mathbf{A}}^k` is never formed.

    Edge dropout (``dropout > 0``, in training mode) replaces :math:`\hat{\mathbf{A}}` at hop
    :math:`k` by :math:`\hat{\mathbf{A}}^{(k)}` with weights
    ``F.dropout(w, dropout)`` drawn afresh from the normalised weights :math:`w` at every hop.
    (PyG's ``APPNP`` draws hop :math:`k`'s dropout on hop :math:`k-1`'s already dropped
    weights, so an edge survives :math:`k` hops with probability :math:`(1-p)^k` and the kept
    weights grow as :math:`(1-p)^{-k}`; pytorch_geometric issue #10783.)

    Mini-batches: on a ``torch_geometric.loader.NeighborLoader`` batch (the ``batch_size``
    seed nodes first) with every neighbour sampled to depth :math:`K`
    (``num_neighbors=[-1] * K``), the seeds' outputs equal the full-graph outputs when the
    weights are those of the full graph: for the symmetric normalisation compute
    ``gcn_norm(edge_index, None, N, add_self_loops=True)`` once on the full graph, give the
    loader the edges with ``edge_weight`` and build the layer with ``normalize=False,
    add_self_loops=False``. Normalising on the sampled subgraph reads wrong degrees for its
    outermost nodes (the source degree enters every weight), so the seeds' outputs differ.
    ``K=math.inf`` solves on whatever graph it is given.

    Args:
        K (int or float): the number of hops :math:`K \ge 0`, or ``math.inf``. (default: ``10``)
        alpha (float, optional): PPR teleport probability, ``coeffs="ppr"`` only.
            (default: ``0.1``)
        dropout (float): edge-dropout probability during training, finite ``K`` only.
            (default: ``0.0``)
        cached (bool): keep the normalised graph (edges, weights, CSR structure, and
            :math:`\rho(\hat{\mathbf{A}})` once computed) from the first call and use it for
            every later one, whatever graph is passed (transductive learning only); cleared by
            :meth:`reset_parameters`. (default: ``False``)
        add_self_loops (bool): add the missing self-loops (weight 1) before normalising; as in
            ``APPNP``, no self-loops are added without normalisation. (default: ``True``)
        normalize (bool or str): ``True`` is ``"sym"`` (``gcn_norm``:
            :math:`\hat{\mathbf{D}}^{-1/2}\hat{\mathbf{A}}\hat{\mathbf{D}}^{-1/2}`), ``False``
            is ``"none"`` (the given weights, no self-loops); or ``"row"``
            (:math:`\hat{\mathbf{D}}^{-1}\hat{\mathbf{A}}`) or ``"softmax"`` (see
            :func:`affgraph.affinity.normalize_edge_weight`). (default: ``True``)
        coeffs (str or Tensor): a family of :func:`affgraph.diffusion.coefficients`
            (``"ppr"``, ``"katz"``, ``"heat"``, ``"uniform"``, ``"power"``) or a ``[K + 1]``
            tensor (held as the buffer ``theta``). (default: ``"ppr"``)
        r (float, optional): Katz decay, absolute (``coeffs="katz"`` only).
            (default: :math:`0.9/\rho(\hat{\mathbf{A}})`)
        t (float, optional): heat-kernel time (``coeffs="heat"`` only). (default: ``1.0``)
        learn_coeffs (bool): learn :math:`\theta`, a ``[K + 1]`` parameter initialised from
            ``coeffs`` and free to take any sign (GPR-GNN; finite ``K`` only; katz needs
            ``r``). ``learnable`` is its deprecated alias (a ``FutureWarning``).
            (default: ``False``)
        tol (float): relative residual of the infinite-hop solve. (default: ``1e-6``)
        max_iter (int): iteration cap of the infinite-hop solve. (default: ``1000``)

    A parameter of another family (e.g. ``alpha`` with ``coeffs="heat"``) is a ``ValueError``.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, *)`, edge indices
          :math:`(2, |\mathcal{E}|)` (or a ``torch.sparse`` / ``SparseTensor`` ``adj_t``
          :math:`(|\mathcal{V}|, |\mathcal{V}|)`), edge weights :math:`(|\mathcal{E}|)`
          *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, *)`
    """

    @_renamed_learnable
    def __init__(self, K: Union[int, float] = 10, alpha: Optional[float] = None,
                 dropout: float = 0.0, cached: bool = False, add_self_loops: bool = True,
                 normalize: Union[bool, str] = True, *, coeffs: Union[str, Tensor] = "ppr",
                 r: Optional[float] = None, t: Optional[float] = None, learn_coeffs: bool = False,
                 tol: float = 1e-6, max_iter: int = 1000) -> None:
        super().__init__()
        _check_hops(K)
        check_solver(tol, max_iter)
        for name, flag in (("cached", cached), ("add_self_loops", add_self_loops),
                           ("learn_coeffs", learn_coeffs)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        alpha, r, t = family_params(coeffs, alpha=alpha, r=r, t=t)
        _check_dropout(dropout, K)
        if isinstance(normalize, bool):
            mode = "sym" if normalize else "none"
        elif normalize in NORMALIZATIONS:
            mode = normalize
        else:
            raise ValueError(f"normalize must be a bool or one of {NORMALIZATIONS}, "
                             f"got {normalize!r}")
        self.K, self.alpha, self.r, self.t, self.dropout = K, alpha, r, t, dropout
        self.cached, self.add_self_loops, self.normalize = cached, add_self_loops, normalize
        self._mode = mode
        self.learn_coeffs, self.tol, self.max_iter = learn_coeffs, tol, max_iter
        self.kind = coeffs if isinstance(coeffs, str) else "tensor"
        self._cached_graph: Optional[DiffusionGraph] = None
        if K == math.inf:
            if learn_coeffs or isinstance(coeffs, Tensor):
                raise ValueError("learn_coeffs and tensor coefficients need a finite number of "
                                 "hops")
            if coeffs in ("uniform", "power"):
                raise ValueError(f"coeffs={coeffs!r} has no infinite-hop limit")
            self.register_buffer("theta", None)
            return
        if isinstance(coeffs, Tensor):
            coeffs = coefficients(coeffs, int(K)).detach().clone()  # checks its length
        elif learn_coeffs and coeffs in ("katz", "inffs") and r is None:
            raise ValueError("learn_coeffs with katz coefficients needs an explicit r")
        if learn_coeffs:
            init = self._initial_theta(coeffs)
            self.theta = torch.nn.Parameter(init.to(torch.get_default_dtype()))
            if isinstance(coeffs, Tensor):  # what reset_parameters restores
                self.register_buffer("theta_init", coeffs)
        else:  # named families are recomputed in float64 and cast to the input's dtype
            self.register_buffer("theta", coeffs if isinstance(coeffs, Tensor) else None)

    def _initial_theta(self, coeffs: Union[str, Tensor]) -> Tensor:
        if isinstance(coeffs, Tensor):
            return coeffs
        return coefficients(coeffs, int(self.K), alpha=self.alpha, r=self.r, t=self.t)

    def reset_parameters(self) -> None:
        """Clear the cached graph and reset learnable coefficients to their initial family
        (recomputed in float64, then cast to the parameter's dtype)."""
        self._cached_graph = None
        if self.learn_coeffs:
            init = self._initial_theta(self.theta_init if self.kind == "tensor" else self.kind)
            with torch.no_grad():
                self.theta.copy_(init)

    @property
    def learnable(self) -> bool:
        """Deprecated alias of :attr:`learn_coeffs` (a ``FutureWarning``)."""
        warnings.warn("AffinityDiffusion.learnable is deprecated; read learn_coeffs",
                      FutureWarning, stacklevel=2)
        return self.learn_coeffs

    def forward(self, x: Tensor, edge_index: Any, edge_weight: Optional[Tensor] = None
                ) -> Tensor:
        """Diffuse ``x`` over the graph ``edge_index`` (an ``edge_index``, ``EdgeIndex``,
        ``torch.sparse`` or ``SparseTensor`` ``adj_t``) with optional ``edge_weight``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 1 or not x.is_floating_point():
            raise ValueError(f"x must be a floating tensor [N, ...], got {x.dtype} "
                             f"{tuple(x.shape)}")
        check_tensor("x", x)
        graph = self._cached_graph
        if graph is None:
            graph = DiffusionGraph.from_graph(
                edge_index, edge_weight, x.size(0), dtype=x.dtype, normalize=self._mode,
                add_self_loops=self.add_self_loops and self._mode != "none")
            if self.cached:
                self._cached_graph = graph
        coeffs = self.kind if self.theta is None else self.theta
        return graph.diffuse(x, hops=self.K, coeffs=coeffs, r=self.r, alpha=self.alpha,
                             t=self.t, dropout=self.dropout if self.training else 0.0,
                             tol=self.tol, max_iter=self.max_iter)

    def __repr__(self) -> str:
        k = "inf" if self.K == math.inf else self.K
        if self.kind == "ppr":
            extra = f", alpha={self.alpha}"
        else:
            param = {"katz": "r", "inffs": "r", "heat": "t"}.get(self.kind)
            extra = f", coeffs={self.kind!r}"
            extra += f", {param}={getattr(self, param)}" if param else ""
        extra += ", learn_coeffs=True" if self.learn_coeffs else ""
        return f"{self.__class__.__name__}(K={k}{extra})"
