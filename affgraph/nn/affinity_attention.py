r"""``AffinityAttention``: graph/sequence attention on any support, one hop to infinitely many."""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.nn.dense.linear import Linear

from affgraph._checks import check_positive_int
from affgraph.attention import attention, attention_diffusion


class AffinityAttention(MessagePassing):
    r"""Multi-head dot-product attention as message passing over an affinity graph, from
    `"Masked Label Prediction: Unified Message Passing Model for Semi-Supervised
    Classification" <https://arxiv.org/abs/2009.03509>`_ (one hop, the computation of PyG's
    ``TransformerConv``) to `"Multi-hop Attention Graph Neural Networks"
    <https://arxiv.org/abs/2009.14332>`_ (MAGNA, K hops or the closed form).

    .. math::
        \mathbf{x}^{\prime}_i = \mathbf{W}_1 \mathbf{x}_i +
        \Big[\sum_{k=0}^{K} \theta_k \mathbf{S}^k \mathbf{V}\Big]_i, \qquad
        S_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}\left(
        \frac{(\mathbf{W}_3\mathbf{x}_i)^{\top} (\mathbf{W}_4\mathbf{x}_j)}{\sqrt{d}}\right),
        \quad \mathbf{V} = \mathbf{X}\mathbf{W}_2^\top

    per head. For ``hops=1`` the bracket is :math:`\mathbf{S}\mathbf{V}` (exactly
    ``TransformerConv``); ``hops=K`` uses the coefficients ``coeffs`` (default ``ppr``,
    :math:`\theta_k = \alpha(1-\alpha)^k`), ``hops=math.inf`` the closed form, see
    :func:`affgraph.attention.attention_diffusion`. The support :math:`\mathcal{N}(i)` is the
    ``edge_index`` given to :meth:`forward` (CSR execution), or, when it is ``None``, all items
    of ``i``'s graph in ``batch`` (``causal``: the earlier ones; ``window=w``: those within
    distance ``w``) executed by fused SDPA kernels.

    Args:
        in_channels (int or tuple): input size, or ``(source, target)`` sizes for bipartite
            input.
        out_channels (int): size of each head's values and output.
        heads (int): number of heads. (default: ``1``)
        concat (bool): concatenate the heads (else average them). (default: :obj:`True`)
        beta (bool): gated skip connection as in ``TransformerConv``. (default: :obj:`False`)
        dropout (float): dropout on the attention weights :math:`S_{ij}` in training, for
            finite ``hops`` only. With ``hops=1`` it is the usual dropout (rescaled by
            :math:`1/(1-p)`). With ``1 < hops < inf`` each edge is dropped and the rows are
            renormalised, so that powers of :math:`\mathbf{S}` stay row-stochastic (see
            :func:`affgraph.attention.attention_diffusion`). With ``hops=math.inf`` it is not
            applied (the closed form solves with the exact softmax :math:`\mathbf{S}`; train
            and eval outputs agree). (default: ``0.0``)
        bias (bool): biases of the linear maps. (default: :obj:`True`)
        root_weight (bool): add the skip term :math:`\mathbf{W}_1 \mathbf{x}_i`.
            (default: :obj:`True`)
        hops (int or float): :math:`K \ge 1` or ``math.inf``. (default: ``1``)
        coeffs (str or Tensor): hop coefficients (a name of
            :func:`affgraph.diffusion.coefficients` or a ``[K + 1]`` tensor). (default: ``"ppr"``)
        alpha (float): teleport probability of ``ppr``. (default: ``0.1``)
        r (float, optional): Katz decay, ``0 < r < 1`` (``S`` is row-stochastic).
        t (float): heat-kernel time. (default: ``1.0``)
        window (int, optional): sliding-window half-width for ``edge_index=None``.
        key_channels (int, optional): size :math:`d` of each head's queries and keys, the
            space the affinity is computed in. (default: ``out_channels``, as in
            ``TransformerConv``)
        logit_scale (float, optional): if given, a learnable inverse temperature
            :math:`\gamma_h` per head on the logits, :math:`S_{ij} =
            \operatorname{softmax}_j(\gamma_h \mathbf{q}_i^\top\mathbf{k}_j/\sqrt{d})`,
            initialised to this value. ``0.0`` starts every head at uniform attention over the
            support, the random walk :math:`\mathbf{D}^{-1}\mathbf{A}` (so ``hops=K`` with
            ``ppr`` coefficients starts as APPNP on a row-normalised graph), and the heads learn
            how far to move from it. (default: :obj:`None`, no scale)
        learn_coeffs (bool): make the ``[K + 1]`` coefficients a parameter initialised from
            ``coeffs`` (GPR-style; finite ``hops`` only). (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F_{in})` or
          :math:`((|\mathcal{V_s}|, F_{s}), (|\mathcal{V_t}|, F_{t}))` if bipartite,
          edge indices :math:`(2, |\mathcal{E}|)` or ``None``, ``batch`` :math:`(|\mathcal{V}|)`
        - **output:** :math:`(|\mathcal{V}_t|, H * d)` (:math:`(|\mathcal{V}_t|, d)` if not
          ``concat``), and with ``return_attention=True`` also ``(edge_index, alpha [E, H])``
          (the one-hop weights :math:`S_{ij}`).
    """

    def __init__(self, in_channels: Union[int, Tuple[int, int]], out_channels: int,
                 heads: int = 1, concat: bool = True, dropout: float = 0.0, bias: bool = True,
                 root_weight: bool = True, hops: Union[int, float] = 1,
                 coeffs: Union[str, Tensor] = "ppr", alpha: float = 0.1,
                 r: Optional[float] = None, t: float = 1.0, *, beta: bool = False,
                 window: Optional[int] = None, learn_coeffs: bool = False,
                 key_channels: Optional[int] = None, logit_scale: Optional[float] = None,
                 **kwargs) -> None:
        kwargs.setdefault("aggr", "add")
        super().__init__(node_dim=0, **kwargs)
        if isinstance(hops, bool) or not isinstance(hops, (int, float)) or \
                (isinstance(hops, float) and hops != math.inf) or hops < 1:
            raise ValueError(f"hops must be an int >= 1 or math.inf, got {hops!r}")
        if not isinstance(heads, int) or heads < 1:
            raise ValueError(f"heads must be a positive int, got {heads!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if key_channels is not None:
            check_positive_int("key_channels", key_channels)
        if logit_scale is not None and (isinstance(logit_scale, bool) or
                                        not isinstance(logit_scale, (int, float)) or
                                        not math.isfinite(logit_scale)):
            raise ValueError(f"logit_scale must be a finite number, got {logit_scale!r}")
        if learn_coeffs and hops == math.inf:
            raise ValueError("learn_coeffs needs a finite number of hops")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.key_channels = out_channels if key_channels is None else key_channels
        self.concat, self.dropout, self.root_weight = concat, dropout, root_weight
        self.beta = beta and root_weight
        self.hops, self.alpha, self.r, self.t, self.window = hops, alpha, r, t, window
        if learn_coeffs:
            from affgraph.diffusion import coefficients

            init = coefficients(coeffs, int(hops), r=r, alpha=alpha, t=t)
            self.coeffs = torch.nn.Parameter(init.detach().clone().float())
            self._coeffs_init = init.detach().clone()
        else:
            self.coeffs = coeffs
        src, dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        hc, hk = heads * out_channels, heads * self.key_channels
        self.lin_key = Linear(src, hk, bias=bias)
        self.lin_query = Linear(dst, hk, bias=bias)
        self.lin_value = Linear(src, hc, bias=bias)
        out_dim = hc if concat else out_channels
        self.lin_skip = Linear(dst, out_dim, bias=bias) if root_weight else None
        self.lin_beta = Linear(3 * out_dim, 1, bias=False) if self.beta else None
        self._logit_scale_init = logit_scale
        self.logit_scale = (None if logit_scale is None else
                            torch.nn.Parameter(torch.full((heads,), float(logit_scale))))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin_key, self.lin_query, self.lin_value, self.lin_skip, self.lin_beta):
            if lin is not None:
                lin.reset_parameters()
        if isinstance(self.coeffs, torch.nn.Parameter):
            with torch.no_grad():
                self.coeffs.copy_(self._coeffs_init)
        if self.logit_scale is not None:
            with torch.no_grad():
                self.logit_scale.fill_(self._logit_scale_init)

    def forward(self, x: Union[Tensor, Tuple[Tensor, Tensor]],
                edge_index: Optional[Tensor] = None, batch: Optional[Tensor] = None,
                causal: bool = False, return_attention: bool = False
                ) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
        """Args: ``x`` (or ``(x_src, x_dst)``), ``edge_index`` (``None``: the implicit
        support), ``batch``, ``causal``, ``return_attention`` (return ``(out, (edge_index,
        alpha))`` with the one-hop weights)."""
        h, c, dk = self.heads, self.out_channels, self.key_channels
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        query = self.lin_query(x_dst).view(-1, h, dk)  # (N_dst, H, D)
        if self.logit_scale is not None:  # gamma_h q_i^T k_j / sqrt(d)
            query = query * self.logit_scale.view(1, h, 1)
        key = self.lin_key(x_src).view(-1, h, dk)  # (N_src, H, D)
        value = self.lin_value(x_src).view(-1, h, c)
        # no attention dropout for the closed form (hops=inf): it solves with the exact S
        p = self.dropout if self.training and self.hops != math.inf else 0.0
        window = self.window if edge_index is None else None
        att = None
        if self.hops == 1:
            res = attention(query, key, value, edge_index, batch=batch, causal=causal,
                            window=window, return_attention=return_attention, dropout_p=p)
            out, att = res if return_attention else (res, None)
        else:
            out = attention_diffusion(query, key, value, edge_index, hops=self.hops,
                                      coeffs=self.coeffs, alpha=self.alpha, r=self.r, t=self.t,
                                      batch=batch, causal=causal, window=window, dropout_p=p)
            if return_attention:
                with torch.no_grad():
                    _, att = attention(query, key, value, edge_index, batch=batch,
                                       causal=causal, window=window, return_attention=True)
        out = out.reshape(-1, h * c) if self.concat else out.mean(dim=1)
        if self.lin_skip is not None:
            x_r = self.lin_skip(x_dst)
            if self.lin_beta is not None:
                b = self.lin_beta(torch.cat([out, x_r, out - x_r], dim=-1)).sigmoid()
                out = b * x_r + (1 - b) * out
            else:
                out = out + x_r
        return (out, att) if return_attention else out

    def __repr__(self) -> str:
        hops = "inf" if self.hops == math.inf else self.hops
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, hops={hops})")
