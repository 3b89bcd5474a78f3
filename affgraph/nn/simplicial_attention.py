"""SimplicialAttention: one layer of 2-simplicial (trilinear) attention."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.nn import Linear

from affgraph._checks import check_features, check_positive_int
from affgraph.simplicial import _check_window, simplicial_attention


class SimplicialAttention(torch.nn.Module):
    r"""2-simplicial attention layer (`"Logic and the 2-Simplicial Transformer"
    <https://arxiv.org/abs/1909.00668>`_, Clift et al. 2019; sliding windows from `"Fast and
    Simplex" <https://arxiv.org/abs/2507.02754>`_, Roy et al. 2025).

    .. math::
        \mathbf{x}'_i = \mathbf{W}_r \mathbf{x}_i + \sum_{(j, l) \in S(i)} s_{ijl}\,
        (\mathbf{W}_{v_1} \mathbf{x}_j) \odot (\mathbf{W}_{v_2} \mathbf{x}_l), \qquad
        s_{ijl} = \operatorname{softmax}_{(j, l) \in S(i)} \frac{\langle \mathbf{W}_q
        \mathbf{x}_i, \mathbf{W}_{k_1} \mathbf{x}_j, \mathbf{W}_{k_2} \mathbf{x}_l\rangle}{\sqrt{d}}

    per head, with the trilinear form :math:`\langle a, b, c\rangle = \sum_d a_d b_d c_d` and
    the support :math:`S(i)` of :func:`affgraph.functional.simplicial_attention`: all pairs of
    the graph of :math:`i`, causal (:math:`j, l \le i`), or the sliding window ``(w1, w2)``,
    :math:`|i - j| \le w_1,\ |i - l| \le w_2` (the convention of ``AffinityAttention``'s
    ``window``; with ``causal`` :math:`i - w_1 \le j \le i,\ i - w_2 \le l \le i`). Five
    projections (query, two keys, two values), as ``TransformerConv`` has three; the support is
    implicit in the sequence order and ``batch``, so there is no ``edge_index``.

    Args:
        in_channels (int): size of each input sample.
        out_channels (int): size of each head's output.
        heads (int, optional): number of heads. (default: ``1``)
        window (tuple[int, int], optional): sliding window ``(w1, w2)`` of half-widths
            ``>= 0`` (``0``: only the position itself; wider than a graph: all of it);
            ``None`` for all pairs. (default: ``None``)
        causal (bool, optional): keys only at positions ``<= i``. (default: ``False``)
        concat (bool, optional): concatenate the heads (else average them). (default: ``True``)
        bias (bool, optional): biases in the projections. (default: ``True``)
        root_weight (bool, optional): add the skip term :math:`\mathbf{W}_r \mathbf{x}_i`.
            (default: ``True``)
        block_elements (int, optional): logits held at once by the blocked kernel; ``None``
            picks the kernel's device default (``2**21`` on the CPU, ``2**25`` on a GPU).
            (default: ``None``)

    Shapes:
        - **input:** node features :math:`(N, F_{in})`, ``batch`` :math:`(N)` *(optional)*
        - **output:** :math:`(N, H \cdot F_{out})` if ``concat`` else :math:`(N, F_{out})`
    """

    def __init__(self, in_channels: int, out_channels: int, heads: int = 1,
                 window: Optional[Tuple[int, int]] = None, causal: bool = False,
                 concat: bool = True, bias: bool = True, root_weight: bool = True,
                 block_elements: Optional[int] = None) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("heads", heads)):
            check_positive_int(name, v)
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.window = _check_window(window)
        self.causal, self.concat, self.root_weight = bool(causal), concat, root_weight
        self.block_elements = block_elements
        hc = heads * out_channels
        self.lin_query = Linear(in_channels, hc, bias=bias)
        self.lin_key1 = Linear(in_channels, hc, bias=bias)
        self.lin_key2 = Linear(in_channels, hc, bias=bias)
        self.lin_value1 = Linear(in_channels, hc, bias=bias)
        self.lin_value2 = Linear(in_channels, hc, bias=bias)
        out = hc if concat else out_channels
        self.lin_skip = Linear(in_channels, out, bias=bias) if root_weight else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise all projections (PyTorch's default ``Linear`` initialisation)."""
        for lin in (self.lin_query, self.lin_key1, self.lin_key2, self.lin_value1,
                    self.lin_value2, self.lin_skip):
            if lin is not None:
                lin.reset_parameters()

    def forward(self, x: Tensor, batch: Optional[Tensor] = None) -> Tensor:
        """Attend over pairs of positions of each graph of ``batch`` (see the class docstring)."""
        mixed = isinstance(x, Tensor) and torch.is_autocast_enabled(x.device.type)
        check_features("x", x, self.in_channels,
                       None if mixed else self.lin_query.weight.dtype)
        h, c = self.heads, self.out_channels
        q, k1, k2, v1, v2 = (lin(x).view(-1, h, c) for lin in (
            self.lin_query, self.lin_key1, self.lin_key2, self.lin_value1, self.lin_value2))
        out = simplicial_attention(q, k1, k2, v1, v2, window=self.window, causal=self.causal,
                                   batch=batch, block_elements=self.block_elements)  # (N, H, C)
        out = out.reshape(-1, h * c) if self.concat else out.mean(dim=1)
        if self.lin_skip is not None:
            out = out + self.lin_skip(x)
        return out

    def __repr__(self) -> str:
        extra = f", window={self.window}" if self.window is not None else ""
        extra += ", causal=True" if self.causal else ""
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}{extra})")
