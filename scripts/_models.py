"""Node-classification models of ``node_classification.py``: PyG baselines and affgraph's models.

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
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import APPNP, GATConv, GCNConv, TransformerConv

from affgraph.nn import AffinityDiffusion
from affgraph.nn.models import AffinityAttentionNet, DropNodeDiffusion, GRANDLoss, MLPDiffusion
from affgraph._checks import check_dropout

MODELS = ("GCN", "GAT", "APPNP", "TransformerConv", "AffinityAttention", "AffinityAttentionRW",
          "AffinityDiffusion", "AffinityDiffusionCR")
#: the models with an attention dropout (``--attn-dropout``)
ATTENTION_MODELS = ("AffinityAttention", "AffinityAttentionRW")
#: the models run once per hop count (``--hops``)
HOP_MODELS = ATTENTION_MODELS + ("AffinityDiffusionCR",)
#: attention dropout of the attention models (``AffinityAttentionNet``'s default)
ATTN_DROPOUT = 0.0

__all__ = ["MODELS", "ATTENTION_MODELS", "HOP_MODELS", "ATTN_DROPOUT", "SPECS", "ModelSpec",
           "build_model", "check_dropout"]


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
class ModelSpec:
    """How to build a model and train it: ``build(in_channels, num_classes, hops)``.

    ``decay_only`` names the submodule whose parameters alone get the weight decay (GCN and
    APPNP regularise their first layer only, as in their papers); ``None`` decays all.
    ``consistency``, when given, is the training objective (GRAND's several stochastic passes
    and their consistency) in place of one pass's cross-entropy.
    """
    build: Callable[[int, int, int | float | None], nn.Module]
    lr: float
    weight_decay: float
    decay_only: str | None = None
    consistency: GRANDLoss | None = None


def _attention_spec(logit_scale: float | None = None) -> ModelSpec:
    """The spec of an :class:`AffinityAttentionNet` hop model (one hop unless told)."""
    return ModelSpec(lambda k, c, h, attn_dropout=ATTN_DROPOUT: AffinityAttentionNet(
        k, c, 1 if h is None else h, attn_dropout=attn_dropout, logit_scale=logit_scale),
        lr=0.01, weight_decay=5e-4)


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
}


def build_model(name: str, in_channels: int, num_classes: int,
                hops: int | float | None = None, *, attn_dropout: float | None = None
                ) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model ``name`` (one of :data:`MODELS`) and its Adam optimiser.

    ``attn_dropout`` overrides the attention dropout of the attention models (default
    :data:`ATTN_DROPOUT`); the other models refuse it.
    """
    if name not in SPECS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if hops is not None and not (hops == math.inf or (isinstance(hops, int) and hops >= 1)):
        raise ValueError(f"hops must be an int >= 1 or math.inf, got {hops!r}")
    spec = SPECS[name]
    if attn_dropout is None:
        model = spec.build(in_channels, num_classes, hops)
    elif name not in ATTENTION_MODELS:
        raise ValueError(f"attn_dropout applies to {', '.join(ATTENTION_MODELS)}, not {name}")
    else:
        check_dropout("attn_dropout", attn_dropout)
        model = spec.build(in_channels, num_classes, hops, attn_dropout=attn_dropout)
    if spec.decay_only is None:
        groups = [{"params": list(model.parameters()), "weight_decay": spec.weight_decay}]
    else:
        decayed = {id(p) for p in getattr(model, spec.decay_only).parameters()}
        groups = [{"params": [p for p in model.parameters() if id(p) in decayed],
                   "weight_decay": spec.weight_decay},
                  {"params": [p for p in model.parameters() if id(p) not in decayed],
                   "weight_decay": 0.0}]
    opt = torch.optim.Adam(groups, lr=spec.lr)
    return model, opt
