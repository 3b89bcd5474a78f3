r"""``DropNodeDiffusion``: GRAND's random propagation over ``AffinityDiffusion``."""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from affgraph._checks import check_dropout, check_positive_int
from affgraph.nn.affinity_diffusion import AffinityDiffusion
from affgraph.nn.models._checks import check_model_input


class DropNodeDiffusion(nn.Module):
    r"""The random propagation network of `"Graph Random Neural Network for Semi-Supervised
    Learning on Graphs" <https://arxiv.org/abs/2005.11079>`_ (GRAND) with the hops of
    :class:`~affgraph.nn.AffinityDiffusion`: in training each node's feature row is dropped
    with probability :math:`\delta` (DropNode; the kept rows scaled by :math:`1/(1-\delta)`),
    so every forward pass diffuses the signal of a different random subgraph; then a
    two-layer MLP classifies:

    .. math::
        \mathbf{Z} = \mathrm{drop}\Big(\mathrm{ReLU}\big(\textstyle\sum_{k=0}^{K}\theta_k
        \hat{\mathbf{A}}^k\, \mathrm{drop}(\mathbf{M}\mathbf{X})\,\mathbf{W}_1
        + \mathbf{b}_1\big)\Big)\mathbf{W}_2 + \mathbf{b}_2, \qquad
        \mathbf{M} = \mathrm{diag}\Big(\frac{m_i}{1-\delta}\Big),\
        m_i \sim \mathrm{Bernoulli}(1-\delta),

    with :math:`\hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2}(\mathbf{A}+\mathbf{I})
    \hat{\mathbf{D}}^{-1/2}` and :math:`\theta` the coefficients ``coeffs`` (ppr:
    :math:`\theta_k = \alpha(1-\alpha)^k`, the tail :math:`(1-\alpha)^K` on the last hop;
    ``K = math.inf`` the closed form :math:`\alpha(\mathbf{I}-(1-\alpha)\hat{\mathbf{A}})^{-1}`).
    In evaluation :math:`\mathbf{M} = \mathbf{I}` and no dropout applies. The first linear map
    is applied before the diffusion, which commutes with it (both are linear), so each hop
    moves ``hidden_channels`` columns instead of the input's.

    With ``batch_norm=True`` the MLP is that of GRAND's reference code on PubMed (its
    ``use_bn``): a ``BatchNorm1d`` of the diffused input features and one of the hidden
    layer after its ReLU,

    .. math::
        \mathbf{Z} = \mathrm{drop}\Big(\mathrm{BN}_2\big(\mathrm{ReLU}\big(
        \mathrm{drop}\big(\mathrm{BN}_1(\bar{\mathbf{X}})\big)\mathbf{W}_1
        + \mathbf{b}_1\big)\big)\Big)\mathbf{W}_2 + \mathbf{b}_2, \qquad
        \bar{\mathbf{X}} = \textstyle\sum_{k=0}^{K}\theta_k\hat{\mathbf{A}}^k\,
        \mathbf{M}\mathbf{X}.

    :math:`\mathrm{BN}_1` normalises each column of :math:`\bar{\mathbf{X}}` over the nodes
    (with the batch statistics in training, the running ones in evaluation), which does not
    commute with :math:`\mathbf{W}_1`: the diffusion then moves the ``in_channels`` input
    columns (a sparse input is made dense), and the input dropout acts on the normalised
    :math:`\bar{\mathbf{X}}`, after the diffusion. Train it on the mean
    cross-entropy of several stochastic passes plus their consistency
    (:class:`~affgraph.nn.models.GRANDLoss`, :func:`~affgraph.nn.models.consistency_loss`).

    Args:
        in_channels (int): input features per node.
        out_channels (int): classes.
        K (int or float): hops of :class:`~affgraph.nn.AffinityDiffusion`, or ``math.inf``.
            (default: ``8``)
        hidden_channels (int): width of the MLP's hidden layer. (default: ``64``)
        drop_node (float): DropNode probability :math:`\delta`. (default: ``0.5``)
        input_dropout (float): dropout of the (masked) input features. (default: ``0.5``)
        dropout (float): dropout of the hidden layer. (default: ``0.5``)
        coeffs (str): the hop coefficient family of :class:`~affgraph.nn.AffinityDiffusion`.
            (default: ``"ppr"``)
        alpha (float, optional): ppr teleport probability. (default: :obj:`None`, ppr's
            ``0.1``)
        batch_norm (bool): the batch norms ``bn1`` (:math:`F_{in}` columns) and ``bn2``
            (``hidden_channels`` columns) of GRAND's reference MLP, see above. (default:
            :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, dense or sparse COO
          (bag-of-words features; the first linear map is then one sparse product),
          edge indices :math:`(2, |\mathcal{E}|)`, edge weights :math:`(|\mathcal{E}|)`
          *(optional)*
        - **output:** class logits :math:`(|\mathcal{V}|, C)`
    """

    #: ``forward`` accepts ``x`` as a sparse COO tensor
    sparse_input = True

    def __init__(self, in_channels: int, out_channels: int, K: Union[int, float] = 8, *,
                 hidden_channels: int = 64, drop_node: float = 0.5, input_dropout: float = 0.5,
                 dropout: float = 0.5, coeffs: str = "ppr", alpha: Optional[float] = None,
                 batch_norm: bool = False) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("hidden_channels", hidden_channels)
        for name, p in (("drop_node", drop_node), ("input_dropout", input_dropout),
                        ("dropout", dropout)):
            check_dropout(name, p)
        if not isinstance(batch_norm, bool):
            raise TypeError(f"batch_norm must be a bool, got {type(batch_norm).__name__}")
        self.batch_norm = batch_norm
        self.bn1 = nn.BatchNorm1d(in_channels) if batch_norm else None
        self.bn2 = nn.BatchNorm1d(hidden_channels) if batch_norm else None
        self.lin1 = nn.Linear(in_channels, hidden_channels, bias=False)
        self.bias1 = nn.Parameter(torch.zeros(hidden_channels))
        self.lin2 = nn.Linear(hidden_channels, out_channels)
        self.prop = AffinityDiffusion(K, coeffs=coeffs, alpha=alpha)
        self.drop_node, self.input_dropout, self.dropout = drop_node, input_dropout, dropout

    def reset_parameters(self) -> None:
        """Re-initialise the MLP, its batch norms (if any) and learnable hop coefficients (if
        any)."""
        self.lin1.reset_parameters()
        nn.init.zeros_(self.bias1)
        self.lin2.reset_parameters()
        for bn in (self.bn1, self.bn2):
            if bn is not None:
                bn.reset_parameters()
        self.prop.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        """Class logits of every node; ``x`` dense or sparse COO ``[N, F]``."""
        check_model_input(x, self.lin1.in_features)
        keep = None
        if self.training and self.drop_node > 0:
            keep = (torch.rand(x.size(0), device=x.device) >= self.drop_node).to(x.dtype)
            keep = keep / (1.0 - self.drop_node)
        if self.bn1 is not None:  # GRAND's MLP: diffuse the input, then BN1, dropout, W1
            x = x.to_dense() if x.is_sparse else x
            if keep is not None:
                x = x * keep.unsqueeze(-1)
            x = self.bn1(self.prop(x, edge_index, edge_weight))
            h = F.relu(self.lin1(F.dropout(x, self.input_dropout, self.training)) + self.bias1)
            return self.lin2(F.dropout(self.bn2(h), self.dropout, self.training))
        if x.is_sparse:  # the masks act on the stored values: zeros stay zero either way
            x = x.coalesce()
            idx, val = x.indices(), x.values()
            if keep is not None:
                val = val * keep[idx[0]]
            val = F.dropout(val, self.input_dropout, self.training)
            h = torch.sparse.mm(torch.sparse_coo_tensor(idx, val, x.shape), self.lin1.weight.t())
        else:
            if keep is not None:
                x = x * keep.unsqueeze(-1)
            h = self.lin1(F.dropout(x, self.input_dropout, self.training))
        h = F.relu(self.prop(h, edge_index, edge_weight) + self.bias1)
        return self.lin2(F.dropout(h, self.dropout, self.training))

    def __repr__(self) -> str:
        bn = ", batch_norm=True" if self.batch_norm else ""
        return (f"{self.__class__.__name__}({self.lin1.in_features}, {self.lin2.out_features}, "
                f"prop={self.prop}{bn})")
