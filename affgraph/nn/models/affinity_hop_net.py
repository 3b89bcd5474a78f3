r"""``AffinityHopNet``: residual blocks of K-hop affinity aggregation, with ego/neighbour
separation, for heterophilous and homophilous graphs."""
from __future__ import annotations

import math
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import add_self_loops, remove_self_loops

from affgraph._checks import (check_choice, check_dropout, check_edge_index, check_hop_count,
                              check_positive_int)
from affgraph.nn.affinity_attention import AffinityAttention
from affgraph.nn.affinity_diffusion import AffinityDiffusion
from affgraph.nn.models._checks import check_model_input

CONVS = ("attention", "diffusion")
NORMS = ("layer",)


class AffinityHopNet(nn.Module):
    r"""The residual network of `"A critical look at the evaluation of GNNs under heterophily:
    Are we really making progress?" <https://arxiv.org/abs/2302.11640>`_ (Platonov et al.,
    ICLR 2023) with affgraph's K-hop aggregation: an input linear map, ``num_layers``
    pre-norm residual blocks, a final norm and an output linear map,

    .. math::
        \mathbf{H}^{(0)} = \mathrm{drop}\big(\mathrm{GELU}(\mathbf{X}\mathbf{W}_{in}
        + \mathbf{b}_{in})\big), \qquad
        \mathbf{H}^{(l)} = \mathbf{H}^{(l-1)} + \mathrm{drop}\big(\mathrm{GELU}(
        \mathbf{C}^{(l)}\mathbf{W}^{(l)} + \mathbf{b}^{(l)})\big), \qquad
        \mathbf{Z} = \mathrm{norm}(\mathbf{H}^{(L)})\mathbf{W}_{out} + \mathbf{b}_{out},

    .. math::
        \mathbf{C}^{(l)} = \begin{cases}
        \big[\,\mathbf{U} \,\|\, \mathrm{agg}_l(\mathbf{U})\,\big] & \text{sep} \\
        \mathrm{agg}_l(\mathbf{U}) & \text{otherwise}\end{cases}, \qquad
        \mathbf{U} = \mathrm{norm}_l(\mathbf{H}^{(l-1)}),

    with :math:`\mathrm{norm}` a ``LayerNorm`` (``norm="layer"``) or the identity
    (``norm=None``), and without ``residual`` :math:`\mathbf{H}^{(l)} =
    \mathrm{drop}(\mathrm{GELU}(\mathbf{C}^{(l)}\mathbf{W}^{(l)} + \mathbf{b}^{(l)}))`.

    **Ego/neighbour separation** (``sep=True``, the paper's "-sep" models): the node's own
    representation and the aggregate of its neighbours are concatenated, so the block's
    weight :math:`\mathbf{W}^{(l)} = [\mathbf{W}_{self}; \mathbf{W}_{nb}]` (of shape
    :math:`2d \times d`) gives :math:`\mathbf{C}\mathbf{W} = \mathbf{U}\mathbf{W}_{self} +
    \mathrm{agg}(\mathbf{U})\mathbf{W}_{nb}`: two separate maps, one for the ego and one for
    the neighbours. The self-loops of ``edge_index`` are removed and none are added, so a
    node's neighbour part reads its neighbours only (zero for an isolated node). With
    ``sep=False`` the aggregation runs over the graph with one self-loop per node (existing
    self-loops replaced), the standard GNN where a node is one of its own neighbours.

    **The aggregation** :math:`\mathrm{agg}_l` of block :math:`l` is a hop series over an
    affinity matrix, :math:`\sum_{k=0}^{K}\theta_k\mathbf{S}^k\,(\cdot)`:

    - ``conv="attention"``: :class:`~affgraph.nn.AffinityAttention` with ``heads`` heads of
      width :math:`d/H` (concatenated, no root weight): per head :math:`\sum_k \theta_k
      \mathbf{S}^k \mathbf{U}\mathbf{W}_V`, :math:`S_{ij} = \operatorname{softmax}_{j \in
      \mathcal{N}(i)}(\mathbf{q}_i^\top\mathbf{k}_j/\sqrt{d/H})` with queries, keys and
      values linear maps of :math:`\mathbf{U}`;
    - ``conv="diffusion"``: :class:`~affgraph.nn.AffinityDiffusion`, :math:`\sum_k \theta_k
      \hat{\mathbf{A}}^k \mathbf{U}` with :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}
      \mathbf{A}\mathbf{D}^{-1/2}` (``normalize="sym"``) or :math:`\mathbf{D}^{-1}\mathbf{A}`
      (``"row"``, the neighbour mean), :math:`\mathbf{A}` the (weighted) adjacency with or
      without self-loops as above and :math:`\mathbf{D}` its in-degrees.

    The coefficients :math:`\theta` are the family ``coeffs`` (default ``"power"``:
    :math:`\theta_K = 1`, the others 0, so ``K = 1`` is one hop :math:`\mathbf{S}\mathbf{U}`);
    ``learn_coeffs=True`` makes them a ``[K + 1]`` parameter of each block, initialised from
    the family and free to take any sign (GPR-GNN, `"Adaptive Universal Generalized PageRank
    Graph Neural Network" <https://arxiv.org/abs/2006.07988>`_), so that a block can subtract
    a hop (a high-pass filter) instead of averaging it in. Adam moves a parameter by about its
    learning rate per step, so at the small rates of deep residual networks (Platonov et al.:
    3e-5) the coefficients stay where they start; give :meth:`hop_coefficients` an optimiser
    group of their own at a GPR-GNN-sized rate (e.g. 1e-2). With ``sep`` a family with
    :math:`\theta_0 \ne 0` (e.g. ``ppr``) also lets the node's own :math:`\mathbf{U}` into
    the neighbour part.

    Use ``sep=True`` on heterophilous graphs (neighbours tend to differ from the node: mixing
    the node's own features into the neighbour average, as a self-loop does, blurs the one
    signal that is reliably its own) and wherever it is not known which kind a graph is; the
    paper found separation, residuals and layer norm let standard GNNs match or beat
    heterophily-specific ones. ``sep=False`` is the classic homophilous GNN.

    Args:
        in_channels (int): input features per node.
        out_channels (int): classes (or outputs per node).
        K (int or float): hops of each block's aggregation, :math:`K \ge 1` or ``math.inf``
            (the closed form; not with ``learn_coeffs``, and not with ``coeffs="power"``).
            (default: ``1``)
        hidden_channels (int): the width :math:`d` of every block. (default: ``64``)
        num_layers (int): the number :math:`L` of residual blocks. (default: ``2``)
        conv (str): the aggregation, ``"attention"`` or ``"diffusion"``.
            (default: ``"attention"``)
        sep (bool): ego/neighbour separation (self-loops removed). (default: :obj:`True`)
        residual (bool): the skip connection of each block. (default: :obj:`True`)
        norm (str, optional): ``"layer"`` (``LayerNorm`` before each block and before the
            output map) or :obj:`None`. (default: ``"layer"``)
        heads (int): attention heads, ``conv="attention"`` only; must divide
            ``hidden_channels``. (default: ``1``)
        dropout (float): dropout of the input map's and every block's output. (default:
            ``0.2``)
        coeffs (str or Tensor): the hop coefficients, a family of
            :func:`affgraph.diffusion.coefficients` or a ``[K + 1]`` tensor. (default:
            ``"power"``)
        alpha (float, optional): teleport probability, ``coeffs="ppr"`` only. (default:
            :obj:`None`, ppr's ``0.1``)
        learn_coeffs (bool): learn each block's hop coefficients (finite ``K``).
            (default: :obj:`False`)
        normalize (str, optional): ``"sym"`` or ``"row"``, ``conv="diffusion"`` only.
            (default: :obj:`None`, ``"sym"``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)` (``edge_index[0]`` the sources), edge weights
          :math:`(|\mathcal{E}|)` *(optional, ``conv="diffusion"`` only)*
        - **output:** :math:`(|\mathcal{V}|, C)`
    """

    def __init__(self, in_channels: int, out_channels: int, K: Union[int, float] = 1, *,
                 hidden_channels: int = 64, num_layers: int = 2, conv: str = "attention",
                 sep: bool = True, residual: bool = True, norm: Optional[str] = "layer",
                 heads: int = 1, dropout: float = 0.2, coeffs: Union[str, Tensor] = "power",
                 alpha: Optional[float] = None, learn_coeffs: bool = False,
                 normalize: Optional[str] = None) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_hop_count("K", K)
        check_positive_int("hidden_channels", hidden_channels)
        check_positive_int("num_layers", num_layers)
        check_choice("conv", conv, CONVS, what="aggregation")
        for name, flag in (("sep", sep), ("residual", residual), ("learn_coeffs", learn_coeffs)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        if norm is not None:
            check_choice("norm", norm, NORMS, what="normalisation (or None)")
        check_positive_int("heads", heads)
        if conv == "attention" and hidden_channels % heads:
            raise ValueError(f"heads ({heads}) must divide hidden_channels "
                             f"({hidden_channels}): the heads' outputs are concatenated")
        if conv == "diffusion" and heads != 1:
            raise ValueError(f"heads applies to conv='attention' only, got heads={heads!r}")
        check_dropout("dropout", dropout)
        if normalize is not None:
            if conv != "diffusion":
                raise ValueError("normalize applies to conv='diffusion' only (attention "
                                 f"normalises by its softmax), got normalize={normalize!r}")
            check_choice("normalize", normalize, ("sym", "row"), what="normalisation")
        if learn_coeffs and K == math.inf:
            raise ValueError("learn_coeffs needs a finite number of hops K")
        self.in_channels, self.out_channels, self.K = in_channels, out_channels, K
        self.hidden_channels, self.num_layers, self.conv = hidden_channels, num_layers, conv
        self.sep, self.residual, self.norm, self.heads = sep, residual, norm, heads
        self.dropout, self.learn_coeffs = dropout, learn_coeffs
        self.normalize = "sym" if normalize is None and conv == "diffusion" else normalize
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.norms = nn.ModuleList([self._norm() for _ in range(num_layers)])
        self.convs = nn.ModuleList([self._conv(coeffs, alpha) for _ in range(num_layers)])
        width = 2 * hidden_channels if sep else hidden_channels
        self.lins = nn.ModuleList([nn.Linear(width, hidden_channels) for _ in range(num_layers)])
        self.norm_out = self._norm()
        self.lin_out = nn.Linear(hidden_channels, out_channels)

    def _norm(self) -> nn.Module:
        return nn.LayerNorm(self.hidden_channels) if self.norm == "layer" else nn.Identity()

    def _conv(self, coeffs: Union[str, Tensor], alpha: Optional[float]) -> nn.Module:
        """One block's aggregation (no self-loops of its own: the forward pass sets them)."""
        if self.conv == "attention":
            return AffinityAttention(self.hidden_channels, self.hidden_channels // self.heads,
                                     heads=self.heads, concat=True, root_weight=False,
                                     hops=self.K, coeffs=coeffs, alpha=alpha,
                                     learn_coeffs=self.learn_coeffs)
        return AffinityDiffusion(self.K, alpha, add_self_loops=not self.sep,
                                 normalize=self.normalize, coeffs=coeffs,
                                 learn_coeffs=self.learn_coeffs)

    def reset_parameters(self) -> None:
        """Re-initialise every linear map, norm and aggregation (hop coefficients included)."""
        self.lin_in.reset_parameters()
        for module in [*self.norms, *self.convs, *self.lins, self.norm_out, self.lin_out]:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def hop_coefficients(self) -> List[Optional[Tensor]]:
        """Each block's learnt ``[K + 1]`` hop coefficients (``None`` for fixed ones)."""
        key = "coeffs" if self.conv == "attention" else "theta"
        out = []
        for conv in self.convs:
            theta = getattr(conv, key, None)
            out.append(theta if isinstance(theta, nn.Parameter) else None)
        return out

    def forward(self, x: Tensor, edge_index: Tensor,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        """Outputs of every node (see the class docstring)."""
        check_model_input(x, self.in_channels)
        n = x.size(0)
        check_edge_index(edge_index, n)
        edge_index = edge_index.long()
        if edge_weight is not None:
            if self.conv != "diffusion":
                raise ValueError("edge_weight applies to conv='diffusion' only (attention "
                                 "weighs the edges by its softmax)")
            if not isinstance(edge_weight, Tensor) or edge_weight.dim() != 1 or \
                    edge_weight.numel() != edge_index.size(1):
                shape = tuple(edge_weight.shape) if isinstance(edge_weight, Tensor) else \
                    type(edge_weight).__name__
                raise ValueError(f"edge_weight must be a tensor [E] = [{edge_index.size(1)}], "
                                 f"got {shape}")
        edge_index, edge_weight = remove_self_loops(edge_index, edge_weight)
        if not self.sep and self.conv == "attention":  # diffusion adds its weight-1 loops
            edge_index, _ = add_self_loops(edge_index, num_nodes=n)
        h = F.dropout(F.gelu(self.lin_in(x)), self.dropout, self.training)
        for norm, conv, lin in zip(self.norms, self.convs, self.lins):
            u = norm(h)  # (N, d)
            agg = conv(u, edge_index) if self.conv == "attention" else \
                conv(u, edge_index, edge_weight)  # (N, d)
            c = torch.cat([u, agg], dim=-1) if self.sep else agg  # (N, 2d) or (N, d)
            out = F.dropout(F.gelu(lin(c)), self.dropout, self.training)
            h = h + out if self.residual else out
        return self.lin_out(self.norm_out(h))

    def __repr__(self) -> str:
        k = "inf" if self.K == math.inf else self.K
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, K={k}, "
                f"conv={self.conv!r}, sep={self.sep}, num_layers={self.num_layers})")
