r"""``MLPDiffusion``: APPNP's network, a two-layer MLP whose logits a propagation layer diffuses."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from affgraph._checks import check_dropout, check_positive_int
from affgraph.nn.affinity_diffusion import AffinityDiffusion
from affgraph.nn.models._checks import check_model_input


class MLPDiffusion(nn.Module):
    r"""The network of `"Predict then Propagate: Graph Neural Networks meet Personalized
    PageRank" <https://arxiv.org/abs/1810.05997>`_ (APPNP) over any propagation layer:
    predict with a two-layer MLP, then propagate its logits over the graph.

    .. math::
        \mathbf{Z} = \mathrm{prop}\Big(\mathrm{drop}\big(\mathrm{ReLU}(
        \mathrm{drop}(\mathbf{X})\mathbf{W}_1 + \mathbf{b}_1)\big)\mathbf{W}_2 + \mathbf{b}_2,
        \ \mathcal{E}\Big),

    with the default propagation :class:`~affgraph.nn.AffinityDiffusion` ``(K=10,
    alpha=0.1)``, :math:`\sum_{k=0}^{K}\theta_k\hat{\mathbf{A}}^k` with ppr coefficients over
    the GCN-normalised graph (exactly PyG's ``APPNP(K=10, alpha=0.1)``).

    Args:
        in_channels (int): input features per node.
        out_channels (int): classes.
        prop (torch.nn.Module, optional): the propagation, called as ``prop(h, edge_index)``
            (or ``prop(h, edge_index, edge_weight)`` when weights are given), e.g.
            :class:`~affgraph.nn.AffinityDiffusion` or PyG's ``APPNP``. (default:
            :obj:`None`, ``AffinityDiffusion(10)``)
        hidden_channels (int): width of the hidden layer. (default: ``64``)
        dropout (float): dropout of the input and of the hidden layer. (default: ``0.5``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`, edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** class logits :math:`(|\mathcal{V}|, C)`
    """

    def __init__(self, in_channels: int, out_channels: int, prop: Optional[nn.Module] = None,
                 *, hidden_channels: int = 64, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("hidden_channels", hidden_channels)
        check_dropout("dropout", dropout)
        if prop is not None and not isinstance(prop, nn.Module):
            raise TypeError(f"prop must be a torch.nn.Module, got {type(prop).__name__}")
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, out_channels)
        self.prop = AffinityDiffusion(10) if prop is None else prop
        self.dropout = dropout

    def reset_parameters(self) -> None:
        """Re-initialise the MLP and the propagation (where it has a ``reset_parameters``)."""
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()
        if hasattr(self.prop, "reset_parameters"):
            self.prop.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        """Class logits of every node (see the class docstring)."""
        check_model_input(x, self.lin1.in_features)
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.lin1(x))
        x = F.dropout(x, self.dropout, self.training)
        x = self.lin2(x)
        if edge_weight is None:
            return self.prop(x, edge_index)
        return self.prop(x, edge_index, edge_weight)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.lin1.in_features}, {self.lin2.out_features}, "
                f"prop={self.prop})")
