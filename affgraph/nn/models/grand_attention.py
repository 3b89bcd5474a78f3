r"""``GRANDAttention``: GRAND whose propagation runs on a learned affinity (attention weights
over the graph) instead of the fixed :math:`\hat{\mathbf{A}}`."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch_geometric.utils import add_remaining_self_loops

from affgraph._checks import check_finite, check_positive_int
from affgraph._graph import to_edge_index
from affgraph.attention import attention_diffusion
from affgraph.nn.models._checks import check_model_input
from affgraph.nn.models.grand import GRAND


class GRANDAttention(GRAND):
    r""":class:`GRAND` with a learned affinity: the same DropNode, hop average and MLP, with
    the fixed :math:`\hat{\mathbf{A}}` replaced by the attention matrix :math:`\mathbf{S}`
    over the graph and its self-loops,

    .. math::
        \bar{\mathbf{X}} = \frac{1}{K+1}\sum_{k=0}^{K}\mathbf{S}^k\,\mathbf{M}\mathbf{X},
        \qquad
        S_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i) \cup \{i\}}\left(
        \gamma\,\frac{(\mathbf{W}_q\mathbf{x}_i + \mathbf{b}_q)^{\top}
        (\mathbf{W}_k\mathbf{x}_j + \mathbf{b}_k)}{\sqrt{d}}\right),

    one head, queries and keys of size :math:`d` (``key_channels``) computed from the input
    features :math:`\mathbf{X}` (not from :math:`\mathbf{M}\mathbf{X}`: the affinity is the
    same in training and evaluation, and DropNode stays the only randomness of a pass), and a
    learnable inverse temperature :math:`\gamma` initialised to ``logit_scale``. With the
    default ``logit_scale=0.0`` training starts from uniform rows, the random walk
    :math:`(\mathbf{D}+\mathbf{I})^{-1}(\mathbf{A}+\mathbf{I})`, the row-normalised
    counterpart of GRAND's :math:`\hat{\mathbf{A}}`, and the gradient moves :math:`\gamma`
    first; :math:`\mathbf{S}` stays row-stochastic, so every power is an average and deep
    hop counts do not blow up. The hops run through
    :func:`affgraph.attention.attention_diffusion` (``coeffs="uniform"``, :math:`K` sparse
    products of the ``[E, 1]`` weights, :math:`\mathbf{S}^k` never formed).

    ``learn_affinity=False`` freezes :math:`\gamma` at ``logit_scale`` (and so the queries and
    keys receive no gradient at :math:`\gamma = 0`): the fixed-affinity control of the same
    network. Train it as :class:`GRAND`, on :class:`~affgraph.nn.models.GRANDLoss`, with the
    settings of :data:`~affgraph.nn.models.grand.GRAND_SETTINGS` (``from_settings``, inherited,
    builds this class; ``key_channels``, ``logit_scale``, ``learn_affinity`` pass on).

    Args:
        in_channels, out_channels, hidden_channels, K, drop_node, input_dropout, dropout,
            batch_norm, init: as in :class:`GRAND` (``init`` applies to the MLP; the query
            and key maps keep ``torch.nn.Linear``'s initialisation).
        key_channels (int): size :math:`d` of the queries and keys. (default: ``16``)
        logit_scale (float): initial :math:`\gamma`. (default: ``0.0``)
        learn_affinity (bool): learn :math:`\gamma` (else it is a buffer).
            (default: :obj:`True`)
        cached (bool): keep the support (the graph with its self-loops) of the first call;
            the weights :math:`\mathbf{S}` are recomputed at every call. (default: ``False``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` (a sparse COO tensor is
          made dense), the support as an ``edge_index`` :math:`(2, |\mathcal{E}|)`,
          ``EdgeIndex``, ``torch.sparse`` or ``SparseTensor`` adjacency; no edge weights
          (the attention weights are the affinity)
        - **output:** class logits :math:`(|\mathcal{V}|, C)`
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 32,
                 K: int = 8, *, drop_node: float = 0.5, input_dropout: float = 0.5,
                 dropout: float = 0.5, batch_norm: bool = False, init: str = "reference",
                 key_channels: int = 16, logit_scale: float = 0.0, learn_affinity: bool = True,
                 cached: bool = False) -> None:
        super().__init__(in_channels, out_channels, hidden_channels, K, drop_node=drop_node,
                         input_dropout=input_dropout, dropout=dropout,
                         batch_norm=batch_norm, init=init, cached=cached)
        check_positive_int("key_channels", key_channels)
        if isinstance(logit_scale, bool) or not isinstance(logit_scale, (int, float)) or \
                not math.isfinite(logit_scale):
            raise ValueError(f"logit_scale must be a finite number, got {logit_scale!r}")
        if not isinstance(learn_affinity, bool):
            raise TypeError(f"learn_affinity must be a bool, got "
                            f"{type(learn_affinity).__name__}")
        self.key_channels, self.learn_affinity = int(key_channels), learn_affinity
        self.initial_logit_scale, self.cached = float(logit_scale), cached
        self.lin_query = nn.Linear(in_channels, key_channels)
        self.lin_key = nn.Linear(in_channels, key_channels)
        scale = torch.tensor(float(logit_scale))
        if learn_affinity:
            self.logit_scale = nn.Parameter(scale)
        else:
            self.register_buffer("logit_scale", scale)
        self._support: Optional[Tensor] = None
        self.lin_query.reset_parameters()
        self.lin_key.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the MLP (see :class:`GRAND`), the query and key maps and
        :math:`\\gamma`, and clear the cached support."""
        super().reset_parameters()
        if hasattr(self, "lin_query"):
            self.lin_query.reset_parameters()
            self.lin_key.reset_parameters()
            with torch.no_grad():
                self.logit_scale.fill_(self.initial_logit_scale)
        self._support = None

    def support(self, edge_index: Any, num_nodes: int) -> Tensor:
        """The ``[2, E']`` support: the graph's edges (``edge_index[0]`` the sources) and a
        self-loop at every node that lacks one (cached with ``cached=True``)."""
        if self.cached and self._support is not None:
            return self._support
        ei, _ = to_edge_index(edge_index)
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= num_nodes):
            raise ValueError(f"edge_index must hold node ids in [0, {num_nodes}), got "
                             f"[{int(ei.min())}, {int(ei.max())}]")
        ei, _ = add_remaining_self_loops(ei, num_nodes=num_nodes)
        if self.cached:
            self._support = ei
        return ei

    def _inputs(self, x: Tensor, edge_index: Any) -> tuple[Tensor, Tensor]:
        """``x`` checked (width, dtype, finite) and dense, and the support."""
        check_model_input(x, self.lin1.in_features)
        x = x.to_dense() if x.is_sparse else x
        check_finite("x", x)
        return x, self.support(edge_index, x.size(0))

    def attention_weights(self, x: Tensor, edge_index: Any) -> tuple[Tensor, Tensor]:
        r"""``(support [2, E'], S_ij [E'])``: the one-hop weights of :math:`\mathbf{S}` on the
        support, rows summing to 1."""
        x, ei = self._inputs(x, edge_index)
        q, k = self._query_key(x)
        _, (ei, alpha) = attention_diffusion(q, k, x.new_zeros(x.size(0), 1, 1), ei,
                                             return_attention=True)
        return ei, alpha[:, 0]

    def _query_key(self, x: Tensor) -> tuple[Tensor, Tensor]:
        q = (self.logit_scale * self.lin_query(x)).unsqueeze(1)  # (N, 1, d)
        return q, self.lin_key(x).unsqueeze(1)

    def propagate(self, x: Tensor, edge_index: Any,
                  edge_weight: Optional[Tensor] = None) -> Tensor:
        r""":math:`\bar{\mathbf{X}}`: DropNode (:meth:`drop_nodes`), then the hop average
        :math:`\frac{1}{K+1}\sum_{k=0}^{K}\mathbf{S}^k`, :math:`(|\mathcal{V}|, F_{in})`."""
        if edge_weight is not None:
            raise ValueError("edge_weight must be None: GRANDAttention's affinity is its "
                             "attention weights (use GRAND for a weighted fixed graph)")
        x, ei = self._inputs(x, edge_index)
        mx = self.drop_nodes(x)
        if self.K == 0:
            return mx
        q, k = self._query_key(x)
        out = attention_diffusion(q, k, mx.unsqueeze(1), ei, hops=self.K, coeffs="uniform")
        return out.squeeze(1)

    def __repr__(self) -> str:
        return (f"{super().__repr__()[:-1]}, key_channels={self.key_channels}, "
                f"learn_affinity={self.learn_affinity})")
