r"""Node-classification models of ``node_classification.py``: PyG baselines and affgraph's models.

Every model maps ``(x, edge_index)`` to class logits and carries its optimiser settings in
:data:`SPECS`. The baselines use their published hyper-parameters:

- GCN (Kipf & Welling, ICLR 2017): 2 layers, hidden 16, dropout 0.5, lr 0.01, weight decay 5e-4.
- GAT (Velickovic et al., ICLR 2018): 8 heads x 8 hidden, 1 output head, dropout 0.6 (features
  and attention), lr 0.005, weight decay 5e-4.
- APPNP (Klicpera et al., ICLR 2019): MLP hidden 64, dropout 0.5, K = 10, alpha = 0.1,
  lr 0.01, weight decay 5e-3.
- TransformerConv (Shi et al., IJCAI 2021): GAT's layout and settings with dot-product attention.

affgraph's models come from :mod:`affgraph.nn.models`, with the defaults they were validated
at (the search on the validation sets is recorded in ``RESULTS.md``):

- ``AffinityDiffusion``: :class:`~affgraph.nn.models.MLPDiffusion`, APPNP's network, over
  :class:`affgraph.nn.AffinityDiffusion` (K = 10, alpha = 0.1); APPNP's optimiser settings.
- ``AffinityAttention``: :class:`~affgraph.nn.models.AffinityAttentionNet` with ``K`` hops
  (one attention hop at K = 1, ppr hops beyond); lr 0.01, weight decay 5e-4 on all weights.
- ``AffinityAttentionRW``: the same network and settings with ``logit_scale=0`` (uniform
  attention at the start, a learnt inverse temperature per head).
- ``AffinityDiffusionCR``: :class:`~affgraph.nn.models.DropNodeDiffusion` (GRAND's random
  propagation, K = 8 unless ``--hops`` says otherwise) trained on
  :class:`~affgraph.nn.models.GRANDLoss` (two stochastic passes, consistency weight 1,
  temperature 0.5); lr 0.01, weight decay 5e-4 on all weights.

The baselines of Platonov et al. (`"A critical look at the evaluation of GNNs under heterophily"
<https://arxiv.org/abs/2302.11640>`_, ICLR 2023) run in that paper's framework,
:class:`ResidualGNN` (:data:`RESIDUAL_MODELS`): an input linear map to the hidden width, ``layers``
pre-norm residual blocks ``h + tail(conv(LayerNorm(h)))`` whose tail is a two-layer GELU MLP with
dropout, then LayerNorm and an output linear map:

- ``ResMLP``: no graph (the paper's ResNet).
- ``GCN-res``: PyG ``GCNConv`` (self-loops, symmetric normalisation).
- ``SAGE``: PyG ``SAGEConv`` with mean aggregation (separate ego and neighbour weights).
- ``GAT-res`` / ``GAT-sep``: PyG ``GATConv``, ``heads`` heads of ``hidden / heads``
  channels; with self-loops, or ego/neighbour separation.
- ``GT`` / ``GT-sep``: PyG ``TransformerConv`` (scaled dot-product attention over the
  neighbours) and an MLP block per layer; with self-loops, or ego/neighbour separation.

``-sep`` (ego/neighbour separation): the conv runs without self-loops and its output enters the
block beside the node's own representation, ``[h, conv(h)]``, through separate weights.

affgraph's hop models in the same framework (:data:`HOP_NET_MODELS`), run once per hop count
``K``: :class:`~affgraph.nn.models.AffinityHopNet` with ego/neighbour separation, residual blocks
and layer norm, each block's aggregation a ``K``-hop series :math:`\sum_{k=0}^{K}\theta_k
\mathbf{S}^k` whose coefficients start at personalised PageRank's (``alpha = 0.1``) and are
learnt, free to take any sign (GPR-GNN), at their own learning rate ``Budget.coeff_lr``; at
``K = inf`` the fixed PageRank closed form:

- ``AffinityHopAttention``: :math:`\mathbf{S}` the attention softmax (``heads`` heads).
- ``AffinityHopDiffusion``: :math:`\mathbf{S} = \mathbf{D}^{-1}\mathbf{A}`, the neighbour mean.

Their sizes and training are a :class:`Budget`, one for every one of these models
(:data:`BUDGETED_MODELS`; ``build_model(..., budget=...)``; :data:`BUDGETS`):

- ``"paper"`` (the default): the paper's settings: hidden 512, 5 layers (the paper picks 1-5 on
  validation; ``dataclasses.replace(budget, layers=k)`` gives the others), 8 heads, dropout 0.2,
  Adam with lr 3e-5 and no weight decay, 1000 full-batch steps, the test value read at the best
  validation step; the hop nets' hop coefficients at lr 1e-2.
- ``"cpu"``: the same with hidden 128 and 2 layers (8 heads of 16 channels), what a CPU affords
  on the larger sets; lr, dropout and steps as in the paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import APPNP, GATConv, GCNConv, SAGEConv, TransformerConv
from torch_geometric.utils import add_self_loops, remove_self_loops

from affgraph.nn import AffinityDiffusion
from affgraph.nn.models import (AffinityAttentionNet, AffinityHopNet, DropNodeDiffusion,
                                GRANDLoss, MLPDiffusion)
from affgraph._checks import check_choice, check_dropout, check_positive_int
from affgraph.nn.models._checks import check_model_input

#: the baselines of Platonov et al. (ICLR 2023), name -> :class:`ResidualGNN` ``kind``
RESIDUAL_KINDS = {"ResMLP": "mlp", "GCN-res": "gcn", "SAGE": "sage", "GAT-res": "gat",
                  "GAT-sep": "gat-sep", "GT": "gt", "GT-sep": "gt-sep"}
RESIDUAL_MODELS = tuple(RESIDUAL_KINDS)
#: affgraph's hop models in that framework, name -> ``AffinityHopNet`` ``conv``
HOP_NET_CONVS = {"AffinityHopAttention": "attention", "AffinityHopDiffusion": "diffusion"}
HOP_NET_MODELS = tuple(HOP_NET_CONVS)
#: the models sized by a :class:`Budget` (``build_model(..., budget=...)``)
BUDGETED_MODELS = RESIDUAL_MODELS + HOP_NET_MODELS
#: the models the scripts run when not told otherwise (the residual baselines, sized for the
#: heterophilous benchmark, run when named)
DEFAULT_MODELS = ("GCN", "GAT", "APPNP", "TransformerConv", "AffinityAttention",
                  "AffinityAttentionRW", "AffinityDiffusion", "AffinityDiffusionCR")
MODELS = DEFAULT_MODELS + BUDGETED_MODELS
#: the models with an attention dropout (``--attn-dropout``)
ATTENTION_MODELS = ("AffinityAttention", "AffinityAttentionRW")
#: the models run once per hop count (``--hops``)
HOP_MODELS = ATTENTION_MODELS + ("AffinityDiffusionCR",) + HOP_NET_MODELS
#: attention dropout of the attention models (``AffinityAttentionNet``'s default)
ATTN_DROPOUT = 0.0

__all__ = ["DEFAULT_MODELS", "MODELS", "ATTENTION_MODELS", "HOP_MODELS", "RESIDUAL_MODELS",
           "RESIDUAL_KINDS", "HOP_NET_MODELS", "HOP_NET_CONVS", "BUDGETED_MODELS",
           "ATTN_DROPOUT", "SPECS", "ModelSpec", "Budget", "BUDGETS", "ResidualGNN",
           "build_model", "resolve_budget", "check_dropout"]


class GCN(nn.Module):
    """Two ``GCNConv`` layers with ReLU and dropout."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 16,
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden)
        self.conv2 = GCNConv(hidden, num_classes)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        x = F.relu(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


class TwoLayerAttention(nn.Module):
    """GAT's layout (``heads`` x ``hidden`` concatenated, ELU, one output head) for any
    attention convolution ``conv(in, out, heads=..., dropout=...)``."""

    def __init__(self, conv: Callable[..., nn.Module], in_channels: int, num_classes: int,
                 hidden: int = 8, heads: int = 8, dropout: float = 0.6) -> None:
        super().__init__()
        self.conv1 = conv(in_channels, hidden, heads=heads, dropout=dropout)
        self.conv2 = conv(hidden * heads, num_classes, heads=1, dropout=dropout)
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, self.dropout, self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, edge_index)


@dataclass(frozen=True)
class Budget:
    """Size and training length of the :data:`BUDGETED_MODELS`, the same for every one of them.

    ``hidden`` is the width of every block (a multiple of ``heads``; the attention convs have
    ``heads`` heads of ``hidden // heads`` channels), ``layers`` the number of residual blocks
    (GT and GT-sep: of attention blocks, each followed by an MLP block), ``dropout`` the dropout
    after the input map and inside every block, ``lr`` Adam's learning rate (no weight decay),
    ``steps`` the full-batch training steps (the test value is read at the best validation
    step; the training loop, not the model, applies it). ``coeff_lr`` is the learning rate of
    the hop nets' learnt hop coefficients (their own Adam group; the residual baselines have
    none): GPR-GNN learns them at its model's rate of 2e-3 to 5e-2, and at ``lr`` = 3e-5 Adam,
    whose step is about ``lr``, moves each coefficient by at most 0.03 in 1000 steps, so they
    would stay where they start.
    """
    hidden: int = 512
    layers: int = 5
    heads: int = 8
    dropout: float = 0.2
    lr: float = 3e-5
    steps: int = 1000
    coeff_lr: float = 1e-2

    def __post_init__(self) -> None:
        for name in ("hidden", "layers", "heads", "steps"):
            check_positive_int(name, getattr(self, name))
        if self.hidden % self.heads:
            raise ValueError(f"hidden must be a multiple of heads, got hidden={self.hidden} and "
                             f"heads={self.heads}")
        check_dropout("dropout", self.dropout)
        for name in ("lr", "coeff_lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or \
                    not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


#: the named budgets: the paper's, and the CPU-sized one (narrower and shallower only)
BUDGETS: dict[str, Budget] = {"paper": Budget(), "cpu": Budget(hidden=128, layers=2)}


class ResidualBlock(nn.Module):
    r"""One pre-norm residual block, :math:`\mathbf{h} + \mathrm{tail}(\mathrm{mix}(
    \mathrm{LayerNorm}(\mathbf{h}), \mathcal{E}))`; ``mix=None`` skips the graph.

    ``self_loops`` says which graph ``mix`` is given: with exactly one self-loop per node
    (``True``) or with none (``False``).
    """

    def __init__(self, dim: int, mix: nn.Module | None, tail: nn.Module, *,
                 self_loops: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mix = mix
        self.tail = tail
        self.self_loops = self_loops

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        z = self.norm(h)
        if self.mix is not None:
            z = self.mix(z, edge_index)
        return h + self.tail(z)


class EgoNeighbours(nn.Module):
    r"""Ego/neighbour separation: :math:`[\mathbf{h}_v \,\|\, \mathrm{conv}(\mathbf{h},
    \mathcal{E})_v]`, ``[N, d] -> [N, 2d]``, so that the next linear map weighs the node's own
    representation and its neighbours' aggregate separately (``conv`` runs without self-loops:
    an isolated node's neighbour half is zero)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        return torch.cat([h, self.conv(h, edge_index)], dim=-1)


class _NoSkip(nn.Module):
    """Stands for the root weight ``TransformerConv`` allocates even at ``root_weight=False``
    (never used there), so that the model holds no parameter that gets no gradient."""

    def reset_parameters(self) -> None:
        pass


def _transformer_conv(dim: int, heads: int) -> TransformerConv:
    conv = TransformerConv(dim, dim // heads, heads=heads, root_weight=False)
    conv.lin_skip = _NoSkip()
    return conv


class ResidualGNN(nn.Module):
    r"""The framework of Platonov et al. (ICLR 2023) around one neighbourhood aggregation.

    .. math::
        \mathbf{h}^{(0)} = \mathrm{GELU}(\mathrm{drop}(\mathbf{X}\mathbf{W}_{in} + \mathbf{b})),
        \qquad
        \mathbf{h}^{(l)} = \mathbf{h}^{(l-1)} + \mathrm{block}_l\big(
        \mathrm{LayerNorm}(\mathbf{h}^{(l-1)})\big),
        \qquad
        \mathbf{Z} = \mathrm{LayerNorm}(\mathbf{h}^{(L)})\mathbf{W}_{out} + \mathbf{b}_{out},

    with :math:`\mathrm{MLP}(\mathbf{z}) = \mathrm{drop}(\mathrm{GELU}(\mathrm{drop}(
    \mathbf{z}\mathbf{W}_1 + \mathbf{b}_1))\mathbf{W}_2 + \mathbf{b}_2)` (width ``hidden``) and
    per ``kind`` the block of :math:`\mathbf{z} = \mathrm{LayerNorm}(\mathbf{h})`:

    - ``"mlp"``: :math:`\mathrm{MLP}(\mathbf{z})`.
    - ``"gcn"``: :math:`\mathrm{MLP}` whose first linear map is PyG's ``GCNConv``,
      :math:`\hat{\mathbf{A}}\mathbf{z}\mathbf{W}_1 + \mathbf{b}_1` with
      :math:`\hat{\mathbf{A}} = \mathbf{D}^{-1/2}(\mathbf{A} + \mathbf{I})\mathbf{D}^{-1/2}`.
    - ``"sage"``: the same with PyG's ``SAGEConv`` (mean),
      :math:`\mathbf{z}\mathbf{W}_r + \mathbf{D}^{-1}\mathbf{A}\mathbf{z}\mathbf{W}_1 +
      \mathbf{b}_1` (no self-loops).
    - ``"gat"``: :math:`\mathrm{MLP}(\mathrm{GAT}(\mathbf{z}))`, PyG's ``GATConv`` with
      ``heads`` heads of ``hidden // heads`` channels concatenated, over the graph with
      self-loops, no attention dropout.
    - ``"gat-sep"``: :math:`\mathrm{MLP}([\mathbf{z} \,\|\, \mathrm{GAT}(\mathbf{z})])` (first
      map ``2 * hidden -> hidden``), ``GATConv`` without self-loops.
    - ``"gt"``: :math:`\mathrm{drop}(\mathrm{TC}(\mathbf{z})\mathbf{W}_o + \mathbf{b}_o)`,
      PyG's ``TransformerConv`` (``heads`` heads, softmax of
      :math:`\mathbf{q}_i^\top\mathbf{k}_j / \sqrt{d_h}` over the neighbours and the node itself,
      no root weight), each such block followed by an ``"mlp"`` block.
    - ``"gt-sep"``: :math:`\mathrm{drop}([\mathbf{z} \,\|\, \mathrm{TC}(\mathbf{z})]\mathbf{W}_o +
      \mathbf{b}_o)` (``TransformerConv`` without self-loops), each followed by an ``"mlp"``
      block.

    Self-loops already in ``edge_index`` are dropped first; the kinds with self-loops then add
    exactly one per node.

    Args:
        in_channels (int): input features per node.
        out_channels (int): classes.
        kind (str): the block, one of ``"mlp", "gcn", "sage", "gat", "gat-sep", "gt",
            "gt-sep"``.
        hidden (int): width of every block; a multiple of ``heads``. (default: ``512``)
        layers (int): residual blocks (``"gt"``, ``"gt-sep"``: attention blocks, each with its
            MLP block). (default: ``5``)
        heads (int): attention heads of ``"gat*"`` and ``"gt*"``. (default: ``8``)
        dropout (float): dropout after the input map and in every block. (default: ``0.2``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})`, edge indices
          :math:`(2, |\mathcal{E}|)`
        - **output:** class logits :math:`(|\mathcal{V}|, C)`
    """

    KINDS = ("mlp", "gcn", "sage", "gat", "gat-sep", "gt", "gt-sep")

    def __init__(self, in_channels: int, out_channels: int, kind: str, *, hidden: int = 512,
                 layers: int = 5, heads: int = 8, dropout: float = 0.2) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_choice("kind", kind, self.KINDS, what="kind")
        Budget(hidden=hidden, layers=layers, heads=heads, dropout=dropout)  # the checks
        self.in_channels, self.kind = in_channels, kind
        d = hidden

        def mlp(width_in: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(width_in, d), nn.Dropout(dropout), nn.GELU(),
                                 nn.Linear(d, d), nn.Dropout(dropout))

        def after_first() -> nn.Sequential:  # the MLP past a conv that is its first map
            return nn.Sequential(nn.Dropout(dropout), nn.GELU(), nn.Linear(d, d),
                                 nn.Dropout(dropout))

        def gat(loops: bool) -> GATConv:
            return GATConv(d, d // heads, heads=heads, add_self_loops=loops, bias=False)

        blocks: list[ResidualBlock] = []
        for _ in range(layers):
            if kind == "mlp":
                blocks.append(ResidualBlock(d, None, mlp(d)))
            elif kind == "gcn":
                blocks.append(ResidualBlock(d, GCNConv(d, d), after_first(), self_loops=True))
            elif kind == "sage":
                blocks.append(ResidualBlock(d, SAGEConv(d, d, aggr="mean"), after_first()))
            elif kind == "gat":
                blocks.append(ResidualBlock(d, gat(True), mlp(d), self_loops=True))
            elif kind == "gat-sep":
                blocks.append(ResidualBlock(d, EgoNeighbours(gat(False)), mlp(2 * d)))
            else:
                sep = kind == "gt-sep"
                conv = _transformer_conv(d, heads)
                blocks.append(ResidualBlock(
                    d, EgoNeighbours(conv) if sep else conv,
                    nn.Sequential(nn.Linear(2 * d if sep else d, d), nn.Dropout(dropout)),
                    self_loops=not sep))
                blocks.append(ResidualBlock(d, None, mlp(d)))
        self.lin_in = nn.Linear(in_channels, d)
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(blocks)
        self.norm_out = nn.LayerNorm(d)
        self.lin_out = nn.Linear(d, out_channels)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        check_model_input(x, self.in_channels)
        plain = remove_self_loops(edge_index)[0]
        looped = add_self_loops(plain, num_nodes=x.size(0))[0] if any(
            b.self_loops for b in self.blocks) else plain
        h = F.gelu(self.dropout(self.lin_in(x)))
        for block in self.blocks:
            h = block(h, looped if block.self_loops else plain)
        return self.lin_out(self.norm_out(h))


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model and train it: ``build(in_channels, num_classes, hops)``.

    ``decay_only`` names the submodule whose parameters alone get the weight decay (GCN and
    APPNP regularise their first layer only, as in their papers); ``None`` decays all.
    ``consistency``, when given, is the training objective (GRAND's several stochastic passes
    and their consistency) in place of one pass's cross-entropy. ``budgeted`` models are sized
    by a :class:`Budget` (``build(..., budget=...)``) and train at its learning rate (``lr``
    is then the paper budget's).
    """
    build: Callable[[int, int, int | float | None], nn.Module]
    lr: float
    weight_decay: float
    decay_only: str | None = None
    consistency: GRANDLoss | None = None
    budgeted: bool = False


def _attention_spec(logit_scale: float | None = None) -> ModelSpec:
    """The spec of an :class:`AffinityAttentionNet` hop model (one hop unless told)."""
    return ModelSpec(lambda k, c, h, attn_dropout=ATTN_DROPOUT: AffinityAttentionNet(
        k, c, 1 if h is None else h, attn_dropout=attn_dropout, logit_scale=logit_scale),
        lr=0.01, weight_decay=5e-4)


def _residual_spec(kind: str) -> ModelSpec:
    """The spec of a :class:`ResidualGNN` baseline: sized by a budget, Adam without decay."""
    def build(k: int, c: int, h: int | float | None, budget: Budget = BUDGETS["paper"]
              ) -> ResidualGNN:
        return ResidualGNN(k, c, kind, hidden=budget.hidden, layers=budget.layers,
                           heads=budget.heads, dropout=budget.dropout)
    return ModelSpec(build, lr=BUDGETS["paper"].lr, weight_decay=0.0, budgeted=True)


def _hop_net_spec(conv: str) -> ModelSpec:
    """The spec of an :class:`AffinityHopNet` hop model (``K`` hops, one unless told): sized by
    a budget like the residual baselines; learnt hop coefficients from PageRank's at finite
    ``K``, the PageRank closed form at ``K = inf``."""
    def build(k: int, c: int, h: int | float | None, budget: Budget = BUDGETS["paper"]
              ) -> AffinityHopNet:
        hops = 1 if h is None else h
        return AffinityHopNet(k, c, hops, hidden_channels=budget.hidden,
                              num_layers=budget.layers, conv=conv, sep=True, residual=True,
                              norm="layer", heads=budget.heads if conv == "attention" else 1,
                              dropout=budget.dropout, coeffs="ppr", alpha=0.1,
                              learn_coeffs=hops != math.inf,
                              normalize="row" if conv == "diffusion" else None)
    return ModelSpec(build, lr=BUDGETS["paper"].lr, weight_decay=0.0, budgeted=True)


SPECS: dict[str, ModelSpec] = {
    "GCN": ModelSpec(lambda k, c, h: GCN(k, c), lr=0.01, weight_decay=5e-4, decay_only="conv1"),
    "GAT": ModelSpec(lambda k, c, h: TwoLayerAttention(GATConv, k, c), lr=0.005,
                     weight_decay=5e-4),
    "APPNP": ModelSpec(lambda k, c, h: MLPDiffusion(k, c, APPNP(K=10, alpha=0.1)), lr=0.01,
                       weight_decay=5e-3, decay_only="lin1"),
    "TransformerConv": ModelSpec(lambda k, c, h: TwoLayerAttention(TransformerConv, k, c),
                                 lr=0.005, weight_decay=5e-4),
    "AffinityAttention": _attention_spec(),
    "AffinityAttentionRW": _attention_spec(logit_scale=0.0),
    "AffinityDiffusion": ModelSpec(lambda k, c, h: MLPDiffusion(k, c, AffinityDiffusion(10)),
                                   lr=0.01, weight_decay=5e-3, decay_only="lin1"),
    "AffinityDiffusionCR": ModelSpec(
        lambda k, c, h: DropNodeDiffusion(k, c, 8 if h is None else h), lr=0.01,
        weight_decay=5e-4, consistency=GRANDLoss(samples=2, weight=1.0, temperature=0.5)),
    **{name: _residual_spec(kind) for name, kind in RESIDUAL_KINDS.items()},
    **{name: _hop_net_spec(conv) for name, conv in HOP_NET_CONVS.items()},
}


def resolve_budget(budget: str | Budget | None) -> Budget:
    """The :class:`Budget` of a name in :data:`BUDGETS` or an instance; ``None`` is
    ``"paper"``."""
    if budget is None:
        return BUDGETS["paper"]
    if isinstance(budget, Budget):
        return budget
    if not isinstance(budget, str):
        raise TypeError(f"budget must be a name in {tuple(BUDGETS)} or a Budget, got "
                        f"{type(budget).__name__}")
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; known: {', '.join(BUDGETS)}")
    return BUDGETS[budget]


def build_model(name: str, in_channels: int, num_classes: int,
                hops: int | float | None = None, *, attn_dropout: float | None = None,
                budget: str | Budget | None = None
                ) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model ``name`` (one of :data:`MODELS`) and its Adam optimiser.

    ``attn_dropout`` overrides the attention dropout of the attention models (default
    :data:`ATTN_DROPOUT`); the other models refuse it. ``budget`` (a name in :data:`BUDGETS`
    or a :class:`Budget`; default ``"paper"``) sizes the :data:`BUDGETED_MODELS` and sets
    their learning rate (the hop nets' learnt hop coefficients: the budget's ``coeff_lr``, in
    a second group); the other models refuse it.
    """
    if name not in SPECS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if hops is not None and not (hops == math.inf or (isinstance(hops, int) and hops >= 1)):
        raise ValueError(f"hops must be an int >= 1 or math.inf, got {hops!r}")
    spec = SPECS[name]
    lr = spec.lr
    if spec.budgeted:
        if attn_dropout is not None:
            raise ValueError(f"attn_dropout applies to {', '.join(ATTENTION_MODELS)}, not {name}")
        chosen = resolve_budget(budget)
        model, lr = spec.build(in_channels, num_classes, hops, budget=chosen), chosen.lr
    elif budget is not None:
        raise ValueError(f"budget applies to {', '.join(BUDGETED_MODELS)}, not {name}")
    elif attn_dropout is None:
        model = spec.build(in_channels, num_classes, hops)
    elif name not in ATTENTION_MODELS:
        raise ValueError(f"attn_dropout applies to {', '.join(ATTENTION_MODELS)}, not {name}")
    else:
        check_dropout("attn_dropout", attn_dropout)
        model = spec.build(in_channels, num_classes, hops, attn_dropout=attn_dropout)
    coeffs = {id(p) for p in model.hop_coefficients() if p is not None} if \
        spec.budgeted and isinstance(model, AffinityHopNet) else set()
    if coeffs:
        groups = [{"params": [p for p in model.parameters() if id(p) not in coeffs],
                   "weight_decay": spec.weight_decay},
                  {"params": [p for p in model.parameters() if id(p) in coeffs],
                   "weight_decay": spec.weight_decay, "lr": chosen.coeff_lr}]
    elif spec.decay_only is None:
        groups = [{"params": list(model.parameters()), "weight_decay": spec.weight_decay}]
    else:
        decayed = {id(p) for p in getattr(model, spec.decay_only).parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) in decayed],
                   "weight_decay": spec.weight_decay},
                  {"params": [p for p in model.parameters() if id(p) not in decayed],
                   "weight_decay": 0.0}]
    opt = torch.optim.Adam(groups, lr=lr)
    return model, opt
