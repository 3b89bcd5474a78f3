"""Classification metrics on tensors: ROC AUC (binary) and accuracy.

Both take the values of the evaluated nodes only (index with a mask first) and return a Python
``float``. Neither needs scikit-learn.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["roc_auc", "roc_auc_unchecked", "check_binary_target", "accuracy"]


def _check_tensor(name: str, value: object) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")


def check_binary_target(target: object, *, name: str = "target") -> None:
    """``target`` must be a 1-D tensor of 0s and 1s (bool, integer or floating) holding both
    values: a ``ValueError`` (``TypeError`` for a non-tensor or complex one) naming ``name``."""
    _check_tensor(name, target)
    if target.is_complex():
        raise TypeError(f"{name} must be real (0s and 1s), got {target.dtype}")
    if target.dim() != 1:
        raise ValueError(f"{name} must have shape [N], got {tuple(target.shape)}")
    if target.dtype != torch.bool:
        binary = (target == 0) | (target == 1)
        if not bool(binary.all()):
            bad = target[~binary][0].item()
            raise ValueError(f"{name} must hold only 0 and 1 (a binary target), found {bad!r}")
    n_pos = int(target.bool().sum())
    if n_pos == 0 or n_pos == target.numel():
        absent = "1 (positive)" if n_pos == 0 else "0 (negative)"
        raise ValueError(f"{name} must hold both classes for a ROC AUC, but class {absent} is "
                         f"absent ({target.numel()} values)")


def roc_auc(scores: Tensor, target: Tensor) -> float:
    r"""Area under the ROC curve of a binary classifier.

    With :math:`P` the positive and :math:`Q` the negative nodes (``target`` 1 and 0), the
    Mann-Whitney form

    .. math::
        \mathrm{AUC} = \frac{1}{|P|\,|Q|} \sum_{i \in P} \sum_{j \in Q}
        \left( [s_i > s_j] + \tfrac12 [s_i = s_j] \right),

    the probability that a random positive scores above a random negative, a tie counting
    half. It equals the trapezoidal area under the ROC curve (``sklearn.metrics.
    roc_auc_score``). Computed in :math:`O(N \log N)` by one sort: each group of equal scores
    adds ``pos_g * (neg_below_g + neg_g / 2)``, counted exactly in ``int64``.

    Args:
        scores (Tensor): the positive-class score of each node (a probability, a logit, any
            real number; only the order matters), any floating or integer dtype, finite. Ties
            are equal values in this dtype.
        target (Tensor): the true class of each node, 0 or 1 (bool, integer or floating), both
            classes present.

    Shapes:
        - **scores**, **target**: :math:`(N)`

    Returns:
        float: the AUC in ``[0, 1]``; 0.5 for uninformative scores.

    Raises:
        TypeError: a non-tensor or a complex / bool ``scores``.
        ValueError: ``scores`` and ``target`` not of the same shape ``[N]``, a ``target``
            value other than 0 and 1, a class absent from ``target``, a NaN or infinite score.
    """
    _check_tensor("scores", scores)
    if scores.is_complex() or scores.dtype == torch.bool:
        raise TypeError(f"scores must be a real floating or integer tensor, got {scores.dtype}")
    if scores.dim() != 1:
        raise ValueError(f"scores must have shape [N], got {tuple(scores.shape)}")
    _check_tensor("target", target)
    if target.shape != scores.shape:
        raise ValueError(f"scores and target must have the same shape [N], got scores "
                         f"{tuple(scores.shape)} and target {tuple(target.shape)}")
    if scores.device != target.device:
        raise ValueError(f"scores and target must be on one device, got {scores.device} and "
                         f"{target.device}")
    if scores.is_floating_point() and not bool(torch.isfinite(scores).all()):
        raise ValueError("scores must be finite (found NaN or inf)")
    check_binary_target(target)
    return float(roc_auc_unchecked(scores, target))


def roc_auc_unchecked(scores: Tensor, target: Tensor) -> Tensor:
    """:func:`roc_auc` without the input checks and without a host transfer: a 0-dim float64
    tensor on the inputs' device (for a training loop that validated ``target`` once and
    reads several metrics in one transfer). ``scores`` must be finite and ``target`` binary
    with both classes present, else the value is meaningless."""
    n = scores.numel()
    order = torch.argsort(scores)
    s = scores[order]
    t = target[order].to(torch.int64) != 0
    # group id of each sorted score: a new group wherever the value changes
    new = torch.ones(n, dtype=torch.int64, device=scores.device)
    new[1:] = (s[1:] != s[:-1]).to(torch.int64)
    group = torch.cumsum(new, 0) - 1
    pos = torch.zeros(n, dtype=torch.int64, device=scores.device).index_add_(0, group, t.long())
    neg = torch.zeros(n, dtype=torch.int64, device=scores.device).index_add_(
        0, group, (~t).long())
    neg_below = torch.cumsum(neg, 0) - neg
    twice_u = (pos * (2 * neg_below + neg)).sum()
    n_pos = pos.sum()
    n_neg = n - n_pos
    return twice_u.double() / (2.0 * n_pos.double() * n_neg.double())


def accuracy(logits: Tensor, target: Tensor) -> float:
    r"""Fraction of nodes whose highest-scoring class is the true one,
    :math:`\frac1N \sum_i [\arg\max_c z_{ic} = y_i]` (a tie goes to the lowest class index,
    as ``torch.argmax``).

    Args:
        logits (Tensor): class scores (logits, probabilities), floating, finite.
        target (Tensor): integer class indices in ``[0, C)``.

    Shapes:
        - **logits**: :math:`(N, C)`, **target**: :math:`(N)`, :math:`N \ge 1`

    Raises:
        TypeError: a non-tensor, a non-floating ``logits`` or a non-integer ``target``.
        ValueError: mismatched shapes, no nodes, a class index outside ``[0, C)``, a NaN or
            infinite logit.
    """
    _check_tensor("logits", logits)
    _check_tensor("target", target)
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating tensor, got {logits.dtype}")
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape [N, C], got {tuple(logits.shape)}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got {target.dtype}")
    if target.shape != (logits.size(0),):
        raise ValueError(f"target must have shape [N] = [{logits.size(0)}] (logits' rows), got "
                         f"{tuple(target.shape)}")
    if logits.size(0) == 0:
        raise ValueError("logits and target hold no nodes (N = 0): accuracy is undefined")
    if logits.device != target.device:
        raise ValueError(f"logits and target must be on one device, got {logits.device} and "
                         f"{target.device}")
    c = logits.size(1)
    if bool(((target < 0) | (target >= c)).any()):
        raise ValueError(f"target must hold class indices in [0, {c}) (logits has {c} "
                         f"columns), got values in [{int(target.min())}, {int(target.max())}]")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("logits must be finite (found NaN or inf)")
    return float((logits.argmax(dim=1) == target).double().mean())
