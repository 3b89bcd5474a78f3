r"""GRAND's consistency regularisation: :func:`consistency_loss` and the training objective
:class:`GRANDLoss`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from affgraph._checks import check_positive_int


def _check_temperature(temperature: object) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or \
            not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def consistency_loss(logits: Sequence[Tensor], temperature: float = 0.5) -> Tensor:
    r"""The consistency of :math:`S` stochastic predictions over all nodes, eq. 7 of
    `"Graph Random Neural Network for Semi-Supervised Learning on Graphs"
    <https://arxiv.org/abs/2005.11079>`_ (GRAND):

    .. math::
        \bar{p}_i = \frac{1}{S}\sum_{s=1}^{S} p^{(s)}_i, \qquad
        q_{ic} = \frac{\bar{p}_{ic}^{1/T}}{\sum_j \bar{p}_{ij}^{1/T}}, \qquad
        \mathcal{L} = \frac{1}{S}\sum_{s=1}^{S} \frac{1}{N}\sum_{i=1}^{N}
        \big\lVert q_i - p^{(s)}_i\big\rVert_2^2,

    with :math:`p^{(s)} = \mathrm{softmax}(\text{logits}_s)` and the sharpened target
    :math:`q` held constant (no gradient flows through it).

    Args:
        logits (sequence of Tensor): the :math:`S \ge 1` passes' logits, each :math:`(N, C)`.
        temperature (float): sharpening temperature :math:`T > 0`. (default: ``0.5``)

    Shapes:
        - **input:** :math:`S` tensors :math:`(N, C)`
        - **output:** a scalar
    """
    _check_temperature(temperature)
    if isinstance(logits, Tensor) or len(logits) == 0:
        raise ValueError("logits must be a non-empty sequence of [N, C] tensors")
    if any(not isinstance(z, Tensor) or z.dim() != 2 or z.shape != logits[0].shape
           for z in logits):
        raise ValueError("logits must be [N, C] tensors of one shape, got shapes "
                         f"{[tuple(getattr(z, 'shape', ())) for z in logits]}")
    probs = [torch.softmax(z, dim=-1) for z in logits]
    mean = torch.stack(probs).mean(dim=0)
    sharp = mean.pow(1.0 / temperature)
    target = (sharp / sharp.sum(dim=-1, keepdim=True)).detach()
    return torch.stack([(target - p).pow(2).sum(dim=-1).mean() for p in probs]).mean()


@dataclass(frozen=True)
class GRANDLoss:
    r"""GRAND's training objective: ``samples`` stochastic forward passes of a model (e.g.
    :class:`~affgraph.nn.models.DropNodeDiffusion` in training mode), their cross-entropies on
    the labelled nodes averaged, plus ``weight`` times their :func:`consistency_loss` over all
    nodes:

    .. math::
        \mathcal{L} = \frac{1}{S}\sum_{s=1}^{S} \mathrm{CE}\big(\mathbf{Z}^{(s)}_{\mathcal{L}},
        \mathbf{y}_{\mathcal{L}}\big) + \lambda\, \mathcal{L}_{\mathrm{con}}
        \big(\mathbf{Z}^{(1)}, \dots, \mathbf{Z}^{(S)}; T\big).

    Example::

        model, loss_fn = DropNodeDiffusion(F_in, C), GRANDLoss()
        for epoch in range(epochs):
            model.train(); opt.zero_grad()
            loss_fn(model, x, edge_index, y, train_mask).backward(); opt.step()

    Args:
        samples (int): stochastic passes :math:`S` per step. (default: ``2``)
        weight (float): weight :math:`\lambda \ge 0` of the consistency term. (default: ``1.0``)
        temperature (float): sharpening temperature :math:`T`. (default: ``0.5``)
    """
    samples: int = 2
    weight: float = 1.0
    temperature: float = 0.5

    def __post_init__(self) -> None:
        check_positive_int("samples", self.samples)
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or \
                not (math.isfinite(self.weight) and self.weight >= 0):
            raise ValueError(f"weight must be a finite number >= 0, got {self.weight!r}")
        _check_temperature(self.temperature)

    def __call__(self, model: Callable[..., Tensor], x: Tensor, edge_index: Any, y: Tensor,
                 mask: Optional[Tensor] = None) -> Tensor:
        """The objective of one step: runs ``model(x, edge_index)`` ``samples`` times.

        Args:
            model: the network, in training mode for stochastic passes.
            x, edge_index: its inputs.
            y (Tensor): class labels :math:`(N)`.
            mask (Tensor, optional): the labelled nodes (boolean or index); all when ``None``.
        """
        outs = [model(x, edge_index) for _ in range(self.samples)]
        if mask is None:
            ce = [F.cross_entropy(o, y) for o in outs]
        else:
            ce = [F.cross_entropy(o[mask], y[mask]) for o in outs]
        return torch.stack(ce).mean() + self.weight * consistency_loss(outs, self.temperature)
