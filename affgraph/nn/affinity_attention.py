r"""``AffinityAttention``: graph/sequence attention on any support, one hop to infinitely many."""
from __future__ import annotations

import math
from typing import Any, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear

from affgraph._checks import check_features, check_positive_int, check_solver
from affgraph._graph import _SparseTensor, is_sparse_adjacency, num_sparse_nodes, to_edge_index
from affgraph.attention import attention_diffusion, check_series, coeff_options

GraphInput = Any  # edge_index, EdgeIndex, torch.sparse adj_t, SparseTensor adj_t or None


def _check_in_channels(in_channels: object) -> None:
    """An ``int >= 1``, ``-1`` (PyG's lazy size) or a pair of them."""
    def ok(c: object) -> bool:
        return not isinstance(c, bool) and isinstance(c, int) and (c >= 1 or c == -1)

    pair = isinstance(in_channels, (tuple, list)) and len(in_channels) == 2
    if not (ok(in_channels) or (pair and all(ok(c) for c in in_channels))):
        raise ValueError(f"in_channels must be a positive int (or -1 for lazy initialisation) "
                         f"or a pair of them, got {in_channels!r}")


class AffinityAttention(MessagePassing):
    r"""Multi-head dot-product attention as message passing over an affinity graph, from
    `"Masked Label Prediction: Unified Message Passing Model for Semi-Supervised
    Classification" <https://arxiv.org/abs/2009.03509>`_ (one hop, PyG's ``TransformerConv``,
    whose arguments it takes in the same order and meaning) to `"Multi-hop Attention Graph
    Neural Networks" <https://arxiv.org/abs/2009.14332>`_ (MAGNA, K hops or the closed form).

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i +
        \Big[\sum_{k=0}^{K} \theta_k \mathbf{S}^k \mathbf{V}
        + \sum_{k=1}^{K} \theta_k \mathbf{S}^{k-1} \mathbf{E}\Big]_i,

    .. math::
        S_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}\left(
        \frac{(\mathbf{W}_3\mathbf{x}_i)^{\top} (\mathbf{W}_4\mathbf{x}_j +
        \mathbf{W}_6 \mathbf{e}_{ij})}{\sqrt{d}}\right), \quad
        \mathbf{V} = \mathbf{X}\mathbf{W}_2^\top, \quad
        \mathbf{E}_i = \sum_j S_{ij} \mathbf{W}_6 \mathbf{e}_{ij}

    per head (the :math:`\mathbf{e}` terms only with ``edge_dim``). With the default ``hops=1``
    and ``coeffs="power"`` (:math:`\theta = (0, 1)`) the bracket is :math:`\sum_j S_{ij}
    (\mathbf{v}_j + \mathbf{W}_6\mathbf{e}_{ij})`, exactly ``TransformerConv``; ``hops=K``
    with ``power`` is :math:`\mathbf{S}^K\mathbf{V}` (plus the edge term), ``coeffs="ppr"`` is
    MAGNA's :math:`\theta_k = \alpha(1-\alpha)^k`, ``hops=math.inf`` the closed form (``ppr``,
    ``katz``, ``heat``; with edge features ``ppr`` or ``katz``), see
    :func:`affgraph.attention.attention_diffusion`. The gated skip (``beta``) is
    ``TransformerConv``'s: :math:`\mathbf{x}'_i = \beta_i \mathbf{W}_1\mathbf{x}_i +
    (1 - \beta_i)\mathbf{m}_i`, :math:`\beta_i = \operatorname{sigmoid}(\mathbf{w}_5^\top
    [\mathbf{m}_i, \mathbf{W}_1\mathbf{x}_i, \mathbf{m}_i - \mathbf{W}_1\mathbf{x}_i])`.

    The support :math:`\mathcal{N}(i)` is the graph given to :meth:`forward` (an
    ``edge_index``, ``EdgeIndex``, ``torch.sparse`` or ``SparseTensor`` ``adj_t``; CSR
    execution; duplicate edges count as separate edges), or, when it is ``None``, all items of
    ``i``'s graph in ``batch`` (``causal``: the earlier ones; ``window=w``: those with
    :math:`|i - j| \le w`) executed by fused SDPA kernels.

    Mini-batches: on a ``torch_geometric.loader.NeighborLoader`` batch (the ``batch_size`` seed
    nodes first) the layer runs on the sampled subgraph as on any graph; keep the first
    ``batch_size`` output rows. With finite ``hops=K`` a seed's output reads the rows of
    :math:`\mathbf{S}` of the nodes within :math:`K - 1` hops of it, and a row is the softmax
    over that node's own in-edges, so with every neighbour sampled to depth :math:`K`
    (``num_neighbors=[-1] * K``) the seeds' outputs equal the full-graph ones (self-loops
    added on the subgraph included); with a smaller fan-out they are those of the sampled
    neighbourhood. ``hops=math.inf`` reads the whole graph: on a subgraph it solves on the
    subgraph.

    Args:
        in_channels (int or tuple): input size, or ``(source, target)`` sizes for bipartite
            input.
        out_channels (int): size of each head's values and output.
        heads (int): number of heads. (default: ``1``)
        concat (bool): concatenate the heads (else average them). (default: :obj:`True`)
        beta (bool): gated skip connection as in ``TransformerConv`` (needs
            ``root_weight``). (default: :obj:`False`)
        dropout (float): dropout on the attention weights :math:`S_{ij}` in training, for
            finite ``hops`` only. With ``hops=1`` and ``power`` it is ``TransformerConv``'s
            dropout (rescaled by :math:`1/(1-p)`). Otherwise each edge is dropped and the rows
            are renormalised, so that powers of :math:`\mathbf{S}` stay row-stochastic (see
            :func:`affgraph.attention.attention_diffusion`). With ``hops=math.inf`` it is not
            applied (the closed form solves with the exact softmax :math:`\mathbf{S}`).
            (default: ``0.0``)
        edge_dim (int, optional): edge feature size; the features enter keys and values
            through ``lin_edge`` (``Linear(edge_dim, heads * out_channels, bias=False)``).
            (default: :obj:`None`)
        bias (bool): biases of the linear maps. (default: :obj:`True`)
        root_weight (bool): add the skip term :math:`\mathbf{W}_1 \mathbf{x}_i`.
            (default: :obj:`True`)
        hops (int or float): :math:`K \ge 1` or ``math.inf``. (default: ``1``)
        coeffs (str or Tensor): hop coefficients, a family of
            :func:`affgraph.diffusion.coefficients` or a ``[K + 1]`` tensor (held as a buffer).
            (default: ``"power"``)
        alpha (float, optional): teleport probability, ``ppr`` only. (default: ``0.1``)
        r (float, optional): Katz decay ``0 < r < 1``, ``katz`` only. (default: ``0.9``)
        t (float, optional): heat-kernel time, ``heat`` only. (default: ``1.0``)
        window (int, optional): sliding-window half-width for ``edge_index=None``.
        learn_coeffs (bool): make the ``[K + 1]`` coefficients a parameter initialised from
            ``coeffs`` and free to take any sign (GPR-GNN style; finite ``hops`` only).
            (default: :obj:`False`)
        key_channels (int, optional): size :math:`d` of each head's queries and keys, the
            space the affinity is computed in; must be ``out_channels`` with ``edge_dim``.
            (default: ``out_channels``, as in ``TransformerConv``)
        logit_scale (float, optional): if given, a learnable inverse temperature
            :math:`\gamma_h` per head on the logits, :math:`S_{ij} =
            \operatorname{softmax}_j(\gamma_h \mathbf{q}_i^\top\mathbf{k}_j/\sqrt{d})`,
            initialised to this value. ``0.0`` starts every head at uniform attention over the
            support, the random walk :math:`\mathbf{D}^{-1}\mathbf{A}`. (default: :obj:`None`)
        tol (float), max_iter (int): of the ``hops=math.inf`` solve.
            (default: ``1e-6``, ``1000``)
        **kwargs: of :class:`torch_geometric.nn.conv.MessagePassing`.

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{s}), (|\mathcal{V_t}|, F_{t}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)` (or a sparse ``adj_t``) or ``None``,
          edge features :math:`(|\mathcal{E}|, D)` *(optional)*, ``batch`` :math:`(|\mathcal{V}|)`
        - **output:** :math:`(|\mathcal{V}_t|, H * C)` (:math:`(|\mathcal{V}_t|, C)` if not
          ``concat``), and with ``return_attention_weights`` also ``(edge_index, alpha [E, H])``
          (the one-hop weights :math:`S_{ij}`; for a ``SparseTensor`` input that ``adj_t``
          with ``alpha`` as its values).
    """

    def __init__(self, in_channels: Union[int, Tuple[int, int]], out_channels: int,
                 heads: int = 1, concat: bool = True, beta: bool = False,
                 dropout: float = 0.0, edge_dim: Optional[int] = None, bias: bool = True,
                 root_weight: bool = True, *, hops: Union[int, float] = 1,
                 coeffs: Union[str, Tensor] = "power", alpha: Optional[float] = None,
                 r: Optional[float] = None, t: Optional[float] = None,
                 window: Optional[int] = None, learn_coeffs: bool = False,
                 key_channels: Optional[int] = None, logit_scale: Optional[float] = None,
                 tol: float = 1e-6, max_iter: int = 1000, **kwargs) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        _check_in_channels(in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("heads", heads)
        check_solver(tol, max_iter)
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 0):
            raise ValueError(f"window must be None or a non-negative int, got {window!r}")
        for name, flag in (("concat", concat), ("beta", beta), ("bias", bias),
                           ("root_weight", root_weight), ("learn_coeffs", learn_coeffs)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
        if edge_dim is not None:
            check_positive_int("edge_dim", edge_dim)
        if key_channels is not None:
            check_positive_int("key_channels", key_channels)
            if edge_dim is not None and key_channels != out_channels:
                raise ValueError(f"key_channels ({key_channels}) must equal out_channels "
                                 f"({out_channels}) with edge_dim: the edge features are "
                                 "added to the keys and to the values")
        if logit_scale is not None and (isinstance(logit_scale, bool) or
                                        not isinstance(logit_scale, (int, float)) or
                                        not math.isfinite(logit_scale)):
            raise ValueError(f"logit_scale must be a finite number, got {logit_scale!r}")
        if learn_coeffs and hops == math.inf:
            raise ValueError("learn_coeffs needs a finite number of hops")
        options = coeff_options(coeffs, alpha, r, t)
        check_series(hops, coeffs, options, edge_features=edge_dim is not None)
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.key_channels = out_channels if key_channels is None else key_channels
        self.concat, self.dropout, self.root_weight = concat, float(dropout), root_weight
        self.beta = beta and root_weight
        self.edge_dim = edge_dim
        self.hops, self.window, self.tol, self.max_iter = hops, window, tol, max_iter
        self.options = options  # the family parameter with its default, e.g. {"alpha": 0.1}
        self.learn_coeffs = learn_coeffs
        self.coeffs: Union[str, Tensor]
        if learn_coeffs or isinstance(coeffs, Tensor):
            from affgraph.diffusion import coefficients

            init = coefficients(coeffs, int(hops), **options).detach().clone()
            if learn_coeffs:
                self.register_buffer("coeffs_init", init, persistent=False)
                self.coeffs = torch.nn.Parameter(init.float())
            else:
                self.register_buffer("coeffs", init)
            self.options = {}  # the family parameter is in the held coefficients
        else:
            self.coeffs = coeffs
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        hc, hk = heads * out_channels, heads * self.key_channels
        self.lin_key = Linear(src, hk, bias=bias)
        self.lin_query = Linear(dst, hk, bias=bias)
        self.lin_value = Linear(src, hc, bias=bias)
        self.lin_edge = None if edge_dim is None else Linear(edge_dim, hc, bias=False)
        out_dim = hc if concat else out_channels
        self.lin_skip = Linear(dst, out_dim, bias=bias) if root_weight else None
        self.lin_beta = Linear(3 * out_dim, 1, bias=False) if self.beta else None
        self._logit_scale_init = logit_scale
        self.logit_scale = (None if logit_scale is None else
                            torch.nn.Parameter(torch.full((heads,), float(logit_scale))))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin_key, self.lin_query, self.lin_value, self.lin_edge, self.lin_skip,
                    self.lin_beta):
            if lin is not None:
                lin.reset_parameters()
        if isinstance(self.coeffs, torch.nn.Parameter):
            with torch.no_grad():
                self.coeffs.copy_(self.coeffs_init)
        if self.logit_scale is not None:
            with torch.no_grad():
                self.logit_scale.fill_(self._logit_scale_init)

    def _features(self, x: Any) -> Tuple[Tensor, Tensor]:
        """``(x_src, x_dst)`` checked against the layer: floating ``[N, F]`` tensors of the
        widths ``in_channels`` gives (``-1``: any, PyG's lazy initialisation) in the dtype of
        the layer's parameters."""
        if isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise ValueError(f"x must be a tensor or a pair (x_src, x_dst), got {len(x)} "
                                 "items")
            pairs = (("x_src", x[0]), ("x_dst", x[1]))
        else:
            pairs = (("x", x),)
        src, dst = (self.in_channels, self.in_channels) if isinstance(self.in_channels, int) \
            else self.in_channels
        widths = {"x": src, "x_src": src, "x_dst": dst}
        lins = {"x": self.lin_key, "x_src": self.lin_key, "x_dst": self.lin_query}
        for name, t in pairs:
            weight = lins[name].weight
            lazy = isinstance(weight, torch.nn.parameter.UninitializedParameter)
            mixed = isinstance(t, Tensor) and torch.is_autocast_enabled(t.device.type)
            check_features(name, t, None if widths[name] == -1 else widths[name],
                           None if lazy or mixed else weight.dtype)
        return (x, x) if len(pairs) == 1 else (x[0], x[1])

    def _graph(self, graph: GraphInput, edge_attr: Optional[Tensor], num_src: int,
               num_dst: int) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """``(edge_index, edge_attr)``: the graph input as a ``[2, E]`` int64 ``edge_index``
        and the raw edge features in its order. A sparse ``adj_t``'s stored ``[E, F]`` values
        (a ``SparseTensor``'s, or a hybrid ``torch.sparse`` ``[N_dst, N_src, F]``) are its edge
        features when the layer has ``edge_dim`` and no ``edge_attr`` is given (as
        ``TransformerConv`` reads them); scalar values (edge weights) are not used."""
        if graph is None:
            if edge_attr is not None:
                raise ValueError("edge_attr needs an explicit graph: pass edge_index (an "
                                 "edge_index, EdgeIndex or sparse adj_t)")
            return None, None
        if isinstance(graph, Tensor) and is_sparse_adjacency(graph) and graph.dim() == 3 and \
                graph.sparse_dim() == 2:  # hybrid adj_t [N_dst, N_src, F]: features as values
            coo = graph.to_sparse_coo().coalesce()
            row, col = coo.indices()
            edge_index, values = torch.stack([col, row]), coo.values()
        else:
            edge_index, values = to_edge_index(graph)
        sizes = num_sparse_nodes(graph)
        if sizes is not None and sizes != (num_src, num_dst):
            raise ValueError(f"edge_index is a sparse adj_t of shape [{sizes[1]}, {sizes[0]}] "
                             f"but the input has {num_dst} targets and {num_src} sources")
        if sizes is not None and edge_attr is None and self.lin_edge is not None and \
                values is not None and values.dim() == 2:
            edge_attr = values
        if edge_attr is not None:
            if self.lin_edge is None:
                raise ValueError("edge_attr was given but the layer has no edge_dim: build it "
                                 "with AffinityAttention(..., edge_dim=D)")
            if not isinstance(edge_attr, Tensor) or edge_attr.dim() != 2 or \
                    edge_attr.size(0) != edge_index.size(1) or \
                    edge_attr.size(1) != self.edge_dim:
                shape = tuple(edge_attr.shape) if isinstance(edge_attr, Tensor) else edge_attr
                raise ValueError(f"edge_attr must be [E, edge_dim] = [{edge_index.size(1)}, "
                                 f"{self.edge_dim}], got {shape}")
            weight = self.lin_edge.weight
            if not edge_attr.is_floating_point() or (
                    not isinstance(weight, torch.nn.parameter.UninitializedParameter)
                    and not torch.is_autocast_enabled(edge_attr.device.type)
                    and edge_attr.dtype != weight.dtype):
                raise TypeError(f"edge_attr must be a floating tensor in the dtype of the "
                                f"layer's parameters ({weight.dtype}), got {edge_attr.dtype}")
        elif self.lin_edge is not None:
            raise ValueError("the layer has edge_dim set: forward needs edge_attr (or a "
                             "sparse adj_t whose values are the [E, edge_dim] edge features)")
        return edge_index, edge_attr

    def forward(self, x: Union[Tensor, Tuple[Tensor, Tensor]],
                edge_index: GraphInput = None, edge_attr: Optional[Tensor] = None,
                return_attention_weights: Optional[bool] = None, *,
                batch: Optional[Tensor] = None, causal: bool = False) -> Any:
        r"""Args:
            x (Tensor or (Tensor, Tensor)): node features, or ``(x_src, x_dst)``.
            edge_index: the support, an ``edge_index`` ``[2, E]`` (any integer dtype),
                ``EdgeIndex``, ``torch.sparse`` ``adj_t`` ``[N_dst, N_src]`` (or hybrid
                ``[N_dst, N_src, edge_dim]`` holding the edge features) or ``SparseTensor``
                ``adj_t``; ``None`` for the implicit support (complete, ``causal``, the layer's
                ``window``; within the graphs of ``batch``). Scalar values of a sparse adj
                are not used (the weights are the softmax of the logits).
            edge_attr (Tensor, optional): ``[E, edge_dim]`` edge features.
            return_attention_weights (bool, optional): when set to a bool (``True`` or
                ``False``, as in ``TransformerConv``), also return ``(edge_index, alpha)``,
                the one-hop weights ``[E, H]`` in ``edge_index``'s order (the given object for
                a tensor input, the ``[2, E]`` edges of a ``torch.sparse`` adj, materialised
                edges for an implicit support), or for a ``SparseTensor`` input that
                ``adj_t`` with ``alpha`` as its values.
            batch (Tensor, optional): ``[N]`` graph ids of the implicit support.
            causal (bool): causal implicit support. (default: :obj:`False`)
        """
        h, c, dk = self.heads, self.out_channels, self.key_channels
        x_src, x_dst = self._features(x)
        ei, edge_attr = self._graph(edge_index, edge_attr, x_src.size(0), x_dst.size(0))
        query = self.lin_query(x_dst).view(-1, h, dk)  # (N_dst, H, D)
        if self.logit_scale is not None:  # gamma_h q_i^T (k_j + e_ij) / sqrt(d)
            query = query * self.logit_scale.view(1, h, 1)
        key = self.lin_key(x_src).view(-1, h, dk)  # (N_src, H, D)
        value = self.lin_value(x_src).view(-1, h, c)  # (N_src, H, C)
        edge = None if edge_attr is None else self.lin_edge(edge_attr).view(-1, h, c)
        p = self.dropout if self.training else 0.0
        want = isinstance(return_attention_weights, bool)
        res = attention_diffusion(query, key, value, ei, edge_attr=edge, hops=self.hops,
                                  coeffs=self.coeffs, **self.options, batch=batch,
                                  causal=causal, window=self.window if ei is None else None,
                                  dropout_p=p, tol=self.tol, max_iter=self.max_iter,
                                  return_attention=want)
        out, att = res if want else (res, None)
        out = out.reshape(-1, h * c) if self.concat else out.mean(dim=1)
        if self.lin_skip is not None:
            x_r = self.lin_skip(x_dst)
            if self.lin_beta is not None:
                b = self.lin_beta(torch.cat([out, x_r, out - x_r], dim=-1)).sigmoid()
                out = b * x_r + (1 - b) * out
            else:
                out = out + x_r
        if not want:
            return out
        if _SparseTensor is not None and isinstance(edge_index, _SparseTensor):
            return out, edge_index.set_value(att[1], layout="coo")
        if edge_index is not None and not is_sparse_adjacency(edge_index):
            return out, (edge_index, att[1])
        return out, att

    def __repr__(self) -> str:
        extra = ""
        if self.hops != 1 or not isinstance(self.coeffs, str) or self.coeffs != "power":
            hops = "inf" if self.hops == math.inf else self.hops
            kind = self.coeffs if isinstance(self.coeffs, str) else "tensor"
            extra = f", hops={hops}, coeffs={kind!r}"
        extra += ", learn_coeffs=True" if self.learn_coeffs else ""
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}{extra})")
