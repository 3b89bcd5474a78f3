r"""``GRAND``: the Graph Random Neural Network (Feng et al., NeurIPS 2020), with its per-dataset
settings :data:`GRAND_SETTINGS`."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from affgraph._checks import (check_choice, check_dropout, check_nonnegative_int,
                              check_positive_int, check_positive_real)
from affgraph.nn.affinity_diffusion import AffinityDiffusion
from affgraph.nn.models._checks import check_model_input
from affgraph.nn.models.consistency import GRANDLoss

#: the weight initialisations of :class:`GRAND`
INITS = ("reference", "torch")


class GRAND(nn.Module):
    r"""The network of `"Graph Random Neural Network for Semi-Supervised Learning on Graphs"
    <https://arxiv.org/abs/2005.11079>`_ (GRAND) as its reference implementation
    (``THUDM/GRAND``) computes it: DropNode on the raw feature rows, the mixed-order
    propagation :math:`\bar{\mathbf{X}}` by :class:`~affgraph.nn.AffinityDiffusion`
    (``coeffs="uniform"``), then a two-layer MLP:

    .. math::
        \bar{\mathbf{X}} = \frac{1}{K+1}\sum_{k=0}^{K}\hat{\mathbf{A}}^k\,
        \mathbf{M}\mathbf{X}, \qquad
        \mathbf{Z} = \mathrm{drop}_h\Big(\mathrm{BN}_2\big(\mathrm{ReLU}\big(
        \mathrm{drop}_i(\mathrm{BN}_1(\bar{\mathbf{X}}))\mathbf{W}_1 + \mathbf{b}_1\big)\big)
        \Big)\mathbf{W}_2 + \mathbf{b}_2,

    with :math:`\hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2}(\mathbf{A}+\mathbf{I})
    \hat{\mathbf{D}}^{-1/2}` (the reference's normalisation; it adds the identity to the
    adjacency, so a node with a stored self-loop of weight 1 gets 2 on the diagonal, where
    ``gcn_norm`` keeps an existing self-loop's weight: pass that self-loop with weight 2 to
    match), the batch norms :math:`\mathrm{BN}_1, \mathrm{BN}_2` only with
    ``batch_norm=True``, and the DropNode matrix :math:`\mathbf{M}`:

    - training: :math:`\mathbf{M} = \mathrm{diag}(m)`,
      :math:`m_i \sim \mathrm{Bernoulli}(1-\delta)`, the kept rows **not** rescaled (the
      reference's ``masks * features``), a fresh mask at every call;
    - evaluation: :math:`\mathbf{M} = (1-\delta)\mathbf{I}`, every row scaled by the keep
      probability (the reference's ``features * (1 - drop_rate)``).

    The paper writes the equivalent inverted form (kept rows times :math:`1/(1-\delta)` in
    training, :math:`\mathbf{M} = \mathbf{I}` in inference); both give the same expectation
    :math:`\mathbb{E}[\mathbf{M}_{\text{train}}] = \mathbf{M}_{\text{eval}}`, and they differ
    by the factor :math:`1-\delta` on :math:`\bar{\mathbf{X}}`, which the biases, the weight
    decay and the initialisation see; this class follows the reference. The propagation runs
    on the input features (the batch norm and the input dropout act on
    :math:`\bar{\mathbf{X}}`, so the first linear map cannot move before it).

    Train it on :class:`~affgraph.nn.models.GRANDLoss`: ``samples`` stochastic passes, the
    mean of their cross-entropies on the labelled nodes plus ``weight`` times their
    :func:`~affgraph.nn.models.consistency_loss` with sharpening temperature
    ``temperature`` (the reference's ``consis_loss``, ``lam`` and ``tem``). The paper's
    settings per Planetoid set are :data:`GRAND_SETTINGS` (:meth:`from_settings`).

    Args:
        in_channels (int): input features per node :math:`F_{in}`.
        out_channels (int): classes :math:`C`.
        hidden_channels (int): width of the hidden layer. (default: ``32``)
        K (int): propagation steps :math:`K \ge 0` (the reference's ``order``).
            (default: ``8``)
        drop_node (float): DropNode probability :math:`\delta` (``dropnode_rate``).
            (default: ``0.5``)
        input_dropout (float): dropout of :math:`\bar{\mathbf{X}}` (``input_droprate``).
            (default: ``0.5``)
        dropout (float): dropout of the hidden layer (``hidden_droprate``).
            (default: ``0.5``)
        batch_norm (bool): batch norm of :math:`\bar{\mathbf{X}}` and of the hidden layer
            (``use_bn``). (default: ``False``)
        init (str): ``"reference"`` draws every weight and bias of the two linear maps from
            :math:`\mathcal{N}(-s, s^2)`, :math:`s = 1/\sqrt{\text{fan-out}}`, as the
            reference's ``weight.data.normal_(-stdv, stdv)`` does; ``"torch"`` keeps
            ``torch.nn.Linear``'s initialisation. (default: ``"reference"``)
        cached (bool): keep the normalised graph of the first call (transductive use; see
            :class:`~affgraph.nn.AffinityDiffusion`). (default: ``False``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` (a sparse COO tensor is
          made dense), edge indices :math:`(2, |\mathcal{E}|)`, edge weights
          :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** class logits :math:`(|\mathcal{V}|, C)`
    """

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int = 32,
                 K: int = 8, *, drop_node: float = 0.5, input_dropout: float = 0.5,
                 dropout: float = 0.5, batch_norm: bool = False, init: str = "reference",
                 cached: bool = False) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("hidden_channels", hidden_channels)
        check_nonnegative_int("K", K)
        for name, p in (("drop_node", drop_node), ("input_dropout", input_dropout),
                        ("dropout", dropout)):
            check_dropout(name, p)
        for name, flag in (("batch_norm", batch_norm), ("cached", cached)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        check_choice("init", init, INITS, what="initialisation")
        self.K, self.drop_node, self.input_dropout, self.dropout = int(K), drop_node, \
            input_dropout, dropout
        self.batch_norm, self.init = batch_norm, init
        self.prop = AffinityDiffusion(self.K, coeffs="uniform", cached=cached)
        self.lin1 = nn.Linear(in_channels, hidden_channels)
        self.lin2 = nn.Linear(hidden_channels, out_channels)
        self.bn1 = nn.BatchNorm1d(in_channels) if batch_norm else None
        self.bn2 = nn.BatchNorm1d(hidden_channels) if batch_norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the linear maps (see ``init``) and the batch norms, and clear the
        cached graph."""
        for lin in (self.lin1, self.lin2):
            if self.init == "reference":
                s = 1.0 / math.sqrt(lin.out_features)
                with torch.no_grad():
                    lin.weight.normal_(-s, s)
                    lin.bias.normal_(-s, s)
            else:
                lin.reset_parameters()
        for bn in (self.bn1, self.bn2):
            if bn is not None:
                bn.reset_parameters()
        self.prop.reset_parameters()

    def drop_nodes(self, x: Tensor) -> Tensor:
        r""":math:`\mathbf{M}\mathbf{X}`: in training the rows kept with probability
        :math:`1-\delta` (a ``torch.bernoulli`` draw of a :math:`(|\mathcal{V}|)` vector
        filled with :math:`1-\delta`, from the global generator), the others zero; in
        evaluation :math:`(1-\delta)\mathbf{X}`."""
        if self.training:
            keep = torch.full((x.size(0),), 1.0 - self.drop_node, dtype=x.dtype,
                              device=x.device)
            return x * torch.bernoulli(keep).unsqueeze(-1)
        return x * (1.0 - self.drop_node)

    def propagate(self, x: Tensor, edge_index: Any,
                  edge_weight: Optional[Tensor] = None) -> Tensor:
        r""":math:`\bar{\mathbf{X}}`: DropNode (:meth:`drop_nodes`), then the hop average
        :math:`\frac{1}{K+1}\sum_{k=0}^{K}\hat{\mathbf{A}}^k`, :math:`(|\mathcal{V}|,
        F_{in})`."""
        check_model_input(x, self.lin1.in_features)
        if x.is_sparse:
            x = x.to_dense()
        return self.prop(self.drop_nodes(x), edge_index, edge_weight)

    def forward(self, x: Tensor, edge_index: Any,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        """Class logits of every node (see the class docstring)."""
        h = self.propagate(x, edge_index, edge_weight)
        if self.bn1 is not None:
            h = self.bn1(h)
        h = F.dropout(h, self.input_dropout, self.training)
        h = F.relu(self.lin1(h))
        if self.bn2 is not None:
            h = self.bn2(h)
        h = F.dropout(h, self.dropout, self.training)
        return self.lin2(h)

    @classmethod
    def from_settings(cls, dataset: str, in_channels: int, out_channels: int,
                      **kwargs: Any) -> "GRAND":
        """The model of :data:`GRAND_SETTINGS` for ``dataset`` (``"Cora"``, ``"CiteSeer"``,
        ``"PubMed"``, case-insensitive), of this class; ``kwargs`` (``init``, ``cached``, a
        subclass's own) pass on. The training settings: :func:`grand_settings`."""
        return grand_settings(dataset).model(in_channels, out_channels, network=cls, **kwargs)

    def __repr__(self) -> str:
        bn = ", batch_norm=True" if self.batch_norm else ""
        return (f"{self.__class__.__name__}({self.lin1.in_features}, {self.lin2.out_features}, "
                f"hidden_channels={self.lin1.out_features}, K={self.K}, "
                f"drop_node={self.drop_node}{bn})")


@dataclass(frozen=True)
class GRANDSettings:
    r"""One dataset's GRAND hyperparameters: the model's (:meth:`model`), the objective's
    (:meth:`loss`), the optimiser's (:meth:`optimizer`: Adam over every parameter, the L2
    weight decay included on the biases and batch norms as in the reference) and the early
    stopping's (``patience``, ``epochs``).

    The reference's stopping rule: after each epoch the model is evaluated (eval mode) on the
    validation nodes; an epoch whose validation loss is at most the lowest so far, or whose
    validation accuracy is at least the highest so far, resets the patience counter (any other
    epoch adds one); training stops when the counter reaches ``patience`` or after ``epochs``
    epochs; the reported model is that of the last epoch with the lowest validation loss.

    Fields: ``K``, ``hidden_channels``, ``drop_node``, ``input_dropout``, ``dropout``,
    ``batch_norm`` (:class:`GRAND`), ``samples``, ``weight`` (the consistency weight
    :math:`\lambda`, the reference's ``lam``), ``temperature`` (``tem``)
    (:class:`~affgraph.nn.models.GRANDLoss`), ``lr``, ``weight_decay``, ``patience``,
    ``epochs``.
    """
    K: int
    hidden_channels: int
    drop_node: float
    input_dropout: float
    dropout: float
    batch_norm: bool
    samples: int
    weight: float
    temperature: float
    lr: float
    weight_decay: float
    patience: int
    epochs: int = 5000

    def model(self, in_channels: int, out_channels: int, *, network: Optional[type] = None,
              **kwargs: Any) -> GRAND:
        """``network`` (:class:`GRAND` or a subclass, default :class:`GRAND`) with these
        settings; ``kwargs`` (``init``, ``cached``, the subclass's own) pass on."""
        return (network or GRAND)(in_channels, out_channels, self.hidden_channels, self.K,
                                  drop_node=self.drop_node, input_dropout=self.input_dropout,
                                  dropout=self.dropout, batch_norm=self.batch_norm, **kwargs)

    def loss(self) -> GRANDLoss:
        """The training objective :class:`~affgraph.nn.models.GRANDLoss`."""
        return GRANDLoss(samples=self.samples, weight=self.weight,
                         temperature=self.temperature)

    def optimizer(self, params: Iterable[Any]) -> torch.optim.Adam:
        """``torch.optim.Adam(params, lr, weight_decay)``."""
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def replace(self, **changes: Any) -> "GRANDSettings":
        """A copy with some fields changed (e.g. fewer ``epochs`` for a smoke run)."""
        fields = asdict(self)
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"changes: unknown settings {sorted(unknown)}; known: "
                             f"{list(fields)}")
        fields.update(changes)
        return GRANDSettings(**fields)

    def __post_init__(self) -> None:
        for name in ("K",):
            check_nonnegative_int(name, getattr(self, name))
        for name in ("hidden_channels", "samples", "patience", "epochs"):
            check_positive_int(name, getattr(self, name))
        for name in ("drop_node", "input_dropout", "dropout"):
            check_dropout(name, getattr(self, name))
        for name in ("temperature", "lr"):
            check_positive_real(name, getattr(self, name))
        for name in ("weight", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"batch_norm must be a bool, got {type(self.batch_norm).__name__}")


#: The reference's settings per Planetoid set (public split), from its run scripts
#: ``run_cora.sh``, ``run_citeseer.sh``, ``run_pubmed.sh`` (``--hidden 32`` everywhere, the
#: default ``--weight_decay 5e-4`` and ``--epochs 5000``). The paper reports 85.4 / 75.4 / 82.7
#: test accuracy (mean of 100 runs).
GRAND_SETTINGS: dict[str, GRANDSettings] = {
    "Cora": GRANDSettings(K=8, hidden_channels=32, drop_node=0.5, input_dropout=0.5,
                          dropout=0.5, batch_norm=False, samples=4, weight=1.0,
                          temperature=0.5, lr=0.01, weight_decay=5e-4, patience=200),
    "CiteSeer": GRANDSettings(K=2, hidden_channels=32, drop_node=0.5, input_dropout=0.0,
                              dropout=0.2, batch_norm=False, samples=2, weight=0.7,
                              temperature=0.3, lr=0.01, weight_decay=5e-4, patience=200),
    "PubMed": GRANDSettings(K=5, hidden_channels=32, drop_node=0.5, input_dropout=0.6,
                            dropout=0.8, batch_norm=True, samples=4, weight=1.0,
                            temperature=0.2, lr=0.2, weight_decay=5e-4, patience=100),
}


def grand_settings(dataset: str) -> GRANDSettings:
    """The :data:`GRAND_SETTINGS` entry of ``dataset`` (case-insensitive)."""
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}")
    for name, settings in GRAND_SETTINGS.items():
        if name.lower() == dataset.lower():
            return settings
    raise ValueError(f"dataset: no GRAND settings for {dataset!r}; known: "
                     f"{list(GRAND_SETTINGS)}")
