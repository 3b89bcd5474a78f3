r"""``AffinityAttentionNet``: a projection and one multi-hop attention layer over the graph."""
from __future__ import annotations

import math
from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import add_self_loops, remove_self_loops

from affgraph._checks import check_dropout, check_hop_count, check_positive_int
from affgraph.nn.affinity_attention import AffinityAttention
from affgraph.nn.models._checks import check_model_input


class AffinityAttentionNet(nn.Module):
    r"""The multi-hop attention network for node classification: input dropout, a feature
    projection (linear + ELU), dropout, then one multi-head
    :class:`~affgraph.nn.AffinityAttention` over the graph *with self-loops*, its heads
    averaged into the class logits. ``K = 1`` is one attention hop (the attention of
    `"Masked Label Prediction" <https://arxiv.org/abs/2009.03509>`_); ``K > 1`` diffuses the
    attention over ``K`` hops with personalised-PageRank coefficients, as in MAGNA
    (`"Multi-hop Attention Graph Neural Networks" <https://arxiv.org/abs/2009.14332>`_), and
    ``K = math.inf`` takes the closed form:

    .. math::
        \mathbf{H} = \mathrm{ELU}\big(\mathrm{drop}(\mathbf{X})\mathbf{W}_0 + \mathbf{b}_0\big),
        \qquad
        \mathbf{Z} = \frac{1}{H}\sum_{h=1}^{H} \sum_{k=0}^{K} \theta_k
        \big(\mathbf{S}^{(h)}\big)^k\, \mathbf{V}^{(h)}, \qquad
        \mathbf{V}^{(h)} = \mathrm{drop}(\mathbf{H})\mathbf{W}_V^{(h)} + \mathbf{b}_V^{(h)},

    .. math::
        S^{(h)}_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i) \cup \{i\}}
        \Big(\gamma_h\, \frac{\mathbf{q}^{(h)\top}_i \mathbf{k}^{(h)}_j}{\sqrt{d}}\Big),

    with :math:`\theta = (0, 1)` for ``K = 1`` (:math:`\mathbf{Z}` averages
    :math:`\mathbf{S}^{(h)}\mathbf{V}^{(h)}`), :math:`\theta_k = \alpha(1-\alpha)^k` for
    :math:`k < K` and the tail :math:`\theta_K = (1-\alpha)^K` for ``K > 1``, and
    :math:`\alpha(\mathbf{I} - (1-\alpha)\mathbf{S}^{(h)})^{-1}\mathbf{V}^{(h)}` for
    ``K = math.inf``. Queries, keys and values are linear maps of :math:`\mathbf{H}` of width
    :math:`d` = ``out_channels``; :math:`\gamma_h = 1` unless ``logit_scale`` is given.

    ``logit_scale=0.0`` gives the random-walk variant: a learnable inverse temperature
    :math:`\gamma_h` per head, initialised at zero, so that training starts from uniform
    attention over the support (the random walk with self-loops; with ppr coefficients APPNP
    on the row-normalised graph) and each head learns how far to move from it.

    Args:
        in_channels (int): input features per node.
        out_channels (int): classes (the width of each head and of the output).
        K (int or float): hops, :math:`K \ge 1` or ``math.inf``. (default: ``1``)
        hidden_channels (int): width of the feature projection. (default: ``64``)
        heads (int): attention heads, averaged. (default: ``8``)
        dropout (float): dropout of the input and of the projection. (default: ``0.6``)
        attn_dropout (float): dropout of the attention weights in training (for ``K > 1``
            edges are dropped and rows renormalised; none for ``K = math.inf``, whose closed
            form needs the exact softmax). (default: ``0.0``)
        alpha (float, optional): teleport probability of the ppr coefficients, ``K > 1``
            only. (default: :obj:`None`, ppr's ``0.1``)
        logit_scale (float, optional): initial inverse temperature :math:`\gamma_h`, learnt
            per head. (default: :obj:`None`, no scale)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)` (``edge_index[0]`` the sources; existing self-loops are
          replaced by one per node)
        - **output:** class logits :math:`(|\mathcal{V}|, C)`
    """

    def __init__(self, in_channels: int, out_channels: int, K: Union[int, float] = 1, *,
                 hidden_channels: int = 64, heads: int = 8, dropout: float = 0.6,
                 attn_dropout: float = 0.0, alpha: Optional[float] = None,
                 logit_scale: Optional[float] = None) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_hop_count("K", K)
        check_positive_int("hidden_channels", hidden_channels)
        check_positive_int("heads", heads)
        check_dropout("dropout", dropout)
        check_dropout("attn_dropout", attn_dropout)
        if alpha is not None:
            if K == 1:
                raise ValueError("alpha applies to K > 1 (ppr hops); K = 1 is one attention "
                                 f"hop, got alpha={alpha!r}")
            if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or \
                    not 0.0 < alpha <= 1.0:
                raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.in_channels, self.out_channels, self.K = in_channels, out_channels, K
        self.dropout = dropout
        self.lin = nn.Linear(in_channels, hidden_channels)
        # one hop is S V ("power": theta = (0, 1)); more hops are ppr's series or closed form
        self.attn = AffinityAttention(hidden_channels, out_channels, heads=heads, concat=False,
                                      dropout=attn_dropout, root_weight=False, hops=K,
                                      coeffs="power" if K == 1 else "ppr", alpha=alpha,
                                      logit_scale=logit_scale)

    def reset_parameters(self) -> None:
        """Re-initialise the projection and the attention layer."""
        self.lin.reset_parameters()
        self.attn.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Class logits of every node (see the class docstring)."""
        check_model_input(x, self.in_channels)
        edge_index, _ = remove_self_loops(edge_index)
        edge_index, _ = add_self_loops(edge_index, num_nodes=x.size(0))
        x = F.dropout(x, self.dropout, self.training)
        x = F.elu(self.lin(x))
        x = F.dropout(x, self.dropout, self.training)
        return self.attn(x, edge_index)

    def __repr__(self) -> str:
        k = "inf" if self.K == math.inf else self.K
        return f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, K={k})"
