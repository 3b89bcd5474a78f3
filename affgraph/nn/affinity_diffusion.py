"""AffinityDiffusion: a parameter-free (or GPR-style learnable) K-hop propagation layer."""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor

from affgraph.diffusion import coefficients, diffuse


class AffinityDiffusion(torch.nn.Module):
    r"""K-hop diffusion over a graph's (normalised) edge weights.

    .. math::
        \mathbf{X}' = \sum_{k=0}^{K} \theta_k \hat{\mathbf{A}}^k \mathbf{X}, \qquad
        \hat{\mathbf{A}} = \hat{\mathbf{D}}^{-1/2} (\mathbf{A} + \mathbf{I})
        \hat{\mathbf{D}}^{-1/2} \ \text{(the defaults)}

    With ``coeffs="ppr"`` (:math:`\theta_k = \alpha(1-\alpha)^k`, the tail mass
    :math:`(1-\alpha)^K` on the last power) the defaults reproduce PyG's ``APPNP(K, alpha)``
    from `"Predict then Propagate" <https://arxiv.org/abs/1810.05997>`_ exactly;
    ``coeffs="power"`` (:math:`\theta_K = 1`) is the propagation of ``SGConv``
    (`"Simplifying Graph Convolutional Networks" <https://arxiv.org/abs/1902.07153>`_);
    ``learnable=True`` makes :math:`\theta` a parameter initialised from the chosen family
    (GPR-GNN, `"Adaptive Universal Generalized PageRank Graph Neural Network"
    <https://arxiv.org/abs/2006.07988>`_). ``hops=math.inf`` gives the closed forms (PPR,
    Katz) by an iterative solve; see :func:`affgraph.diffusion.propagate`. Each hop is one CSR
    sparse-dense product; :math:`\hat{\mathbf{A}}^k` is never formed.

    Args:
        hops (int or float): :math:`K \ge 0` or ``math.inf``. (default: ``10``)
        coeffs (str or Tensor): a family of :func:`affgraph.diffusion.coefficients`
            (``"ppr"``, ``"katz"``, ``"heat"``, ``"uniform"``, ``"power"``) or a ``[K + 1]``
            tensor. (default: ``"ppr"``)
        alpha (float): PPR teleport probability. (default: ``0.1``)
        r (float, optional): Katz decay (absolute; default :math:`0.9/\rho(\hat{A})`).
        t (float): heat-kernel time. (default: ``1.0``)
        normalize (str): ``"sym"``, ``"row"``, ``"softmax"`` or ``"none"`` (see
            :func:`affgraph.affinity.normalize_edge_weight`). (default: ``"sym"``)
        add_self_loops (bool): add missing self-loops before normalising. (default: ``True``)
        learnable (bool): learn :math:`\theta` (finite ``hops`` only). (default: ``False``)
        tol (float): relative residual of the infinite-hop solve. (default: ``1e-6``)
        max_iter (int): iteration cap of the infinite-hop solve. (default: ``1000``)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, *)`, edge indices :math:`(2, |\mathcal{E}|)`,
          edge weights :math:`(|\mathcal{E}|)` *(optional)*
        - **output:** node features :math:`(|\mathcal{V}|, *)`
    """

    def __init__(self, hops: Union[int, float] = 10, coeffs: Union[str, Tensor] = "ppr",
                 alpha: float = 0.1, r: Optional[float] = None, t: float = 1.0,
                 normalize: str = "sym", add_self_loops: bool = True, learnable: bool = False,
                 tol: float = 1e-6, max_iter: int = 1000) -> None:
        super().__init__()
        self.hops, self.alpha, self.r, self.t = hops, alpha, r, t
        self.normalize, self.add_self_loops = normalize, add_self_loops
        self.learnable, self.tol, self.max_iter = learnable, tol, max_iter
        self.kind = coeffs if isinstance(coeffs, str) else "tensor"
        if hops == math.inf:
            if learnable or isinstance(coeffs, Tensor):
                raise ValueError("learnable or tensor coefficients need a finite number of hops")
            if coeffs in ("uniform", "power"):
                raise ValueError(f"coeffs={coeffs!r} has no infinite-hop limit")
            coefficients(coeffs, 0, r=r if r is not None else 1.0, alpha=alpha, t=t)  # validate
            self.register_buffer("theta", None)
            self._init = None
            return
        needs_r = isinstance(coeffs, str) and coeffs in ("katz", "inffs") and r is None
        if needs_r and learnable:
            raise ValueError("learnable katz coefficients need an explicit r")
        init = None if needs_r else coefficients(coeffs, hops, r=r, alpha=alpha, t=t)
        self._init = None if init is None else init.detach().clone()  # kept in float64
        if learnable:
            self.theta = torch.nn.Parameter(self._init.to(torch.get_default_dtype()))
        else:  # named families are recomputed in float64 and cast to the input's dtype
            self.register_buffer("theta", coeffs if isinstance(coeffs, Tensor) else None)

    def reset_parameters(self) -> None:
        """Reset learnable coefficients to their initial family (exactly, in their dtype)."""
        if self.learnable:
            with torch.no_grad():
                self.theta.copy_(self._init)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Optional[Tensor] = None) -> Tensor:
        """Diffuse ``x`` over ``edge_index`` (see the class docstring)."""
        coeffs = self.kind if self.theta is None else self.theta
        return diffuse(x, edge_index, edge_weight, hops=self.hops, coeffs=coeffs, r=self.r,
                       alpha=self.alpha, t=self.t, normalize=self.normalize,
                       add_self_loops=self.add_self_loops, tol=self.tol, max_iter=self.max_iter)

    def __repr__(self) -> str:
        extra = f", alpha={self.alpha}" if self.kind == "ppr" else ""
        extra += ", learnable=True" if self.learnable else ""
        return f"{self.__class__.__name__}(hops={self.hops}, coeffs={self.kind!r}{extra})"
