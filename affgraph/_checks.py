"""Input validation shared by every public entry point.

Each check raises a ``ValueError`` that names the argument and what was wrong, so that bad
input fails loudly before any computation (and before anything is written or cached).
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Optional, Sequence

import torch
from torch import Tensor


def check_positive_int(name: str, value: object) -> None:
    """``value`` must be an ``int >= 1`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_hop_count(name: str, value: object) -> None:
    """``value`` must be a number of hops: an ``int >= 1`` or ``math.inf`` (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and value != math.inf) or value < 1:
        raise ValueError(f"{name} must be an int >= 1 or math.inf, got {value!r}")


def check_dropout(name: str, p: object) -> None:
    """``p`` must be a dropout probability in ``[0, 1)`` (``bool`` refused)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}")


def check_nonnegative_int(name: str, value: object) -> None:
    """``value`` must be an ``int >= 0`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def check_positive_real(name: str, value: object) -> None:
    """``value`` must be a finite real number ``> 0`` (``bool``, NaN and inf are refused)."""
    if isinstance(value, bool) or not isinstance(value, Real) or \
            not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_solver(tol: object, max_iter: object) -> None:
    """The settings of an iterative solve: ``tol`` a finite number ``> 0`` (a solve cannot
    reach a relative residual of 0, and NaN compares false with every residual), ``max_iter``
    an ``int >= 1`` (so that the loop is bounded and runs at least once)."""
    check_positive_real("tol", tol)
    check_positive_int("max_iter", max_iter)


def check_choice(name: str, value: object, choices: Sequence[object], *,
                 what: str = "value") -> None:
    """``value`` must be one of the strings ``choices`` (``what`` says what they are)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: unknown {what} {value!r}; choose one of {tuple(choices)}")


def check_features(name: str, x: object, width: Optional[int] = None,
                   dtype: Optional[torch.dtype] = None) -> None:
    """Node features of a layer: a floating ``[N, F]`` tensor with ``F = width`` (unless
    ``None``) in the layer's parameter ``dtype`` (unless ``None``), finite."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape [N, F], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
    if width is not None and x.size(1) != width:
        raise ValueError(f"{name} must have shape [N, {width}] (the layer's in_channels), "
                         f"got {tuple(x.shape)}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype} but the layer's parameters are {dtype}; "
                        f"convert one of them (e.g. layer.to({dtype}) or x.to({dtype}))")
    check_finite(name, x)


def check_finite(name: str, x: Tensor) -> None:
    r"""Raise a ``ValueError`` naming ``name`` if the floating tensor ``x`` holds NaN or inf.

    One reduction decides the common case: :math:`\sum_i x_i` is finite whenever every
    :math:`x_i` is finite and the sum does not overflow, and NaN or :math:`\pm\infty` in
    ``x`` makes it NaN or infinite. Only a non-finite sum (a NaN/inf, or the overflow of a
    finite sum, e.g. in float16) runs the elementwise ``isfinite`` test, which decides it; so
    finite input costs one pass and no ``x``-sized boolean temporary. Integer tensors cannot
    hold NaN/inf and are not checked.
    """
    if not x.is_floating_point() or x.numel() == 0:
        return
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf values")


def check_finite_all(names: Sequence[str], tensors: Sequence[Tensor]) -> None:
    """:func:`check_finite` for several tensors with one device-to-host transfer: the sums of
    all floating tensors are stacked and tested together (on a GPU, one synchronisation instead
    of one per tensor); only when that test fails is each tensor checked on its own, so the
    error names the first offending argument."""
    sums = [t.sum().float() for t in tensors if t.is_floating_point() and t.numel() > 0]
    if sums and not bool(torch.isfinite(torch.stack(sums)).all()):
        for name, t in zip(names, tensors):
            check_finite(name, t)


def check_tensor(name: str, x: Tensor, ndim: Optional[int] = None) -> None:
    """Require ``x`` to be a tensor (of ``ndim`` dimensions) whose floating values are finite
    (see :func:`check_finite`)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(x.shape)}")
    check_finite(name, x)


def check_same_shape(names: Sequence[str], tensors: Sequence[Tensor], dims: Sequence[int]) -> None:
    """Require the listed dimensions of all tensors to agree."""
    ref = tensors[0]
    for n, t in zip(names[1:], tensors[1:]):
        for d in dims:
            if t.shape[d] != ref.shape[d]:
                raise ValueError(
                    f"{names[0]} and {n} disagree in dimension {d}: "
                    f"{tuple(ref.shape)} vs {tuple(t.shape)}"
                )


def check_edge_index(edge_index: Tensor, num_src: int, num_dst: Optional[int] = None) -> None:
    """Require a ``[2, E]`` integer ``edge_index``, sources < ``num_src``, targets < ``num_dst``.

    Every integer dtype is accepted (``bool``, floating and complex ones are refused): the
    callers widen it to ``int64`` (PyG's and the sparse kernels' index type), which is exact
    for every value a narrower dtype holds. Negative indices (e.g. of ``int8``) are refused
    here. A ``uint8`` or ``int8`` tensor holds no index above 255 (127): indices that were
    cast to it from a larger graph have already wrapped before they reach affgraph, and such
    a tensor can only address the first 256 nodes."""
    num_dst = num_src if num_dst is None else num_dst
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor, got {type(edge_index).__name__}")
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.is_floating_point() or edge_index.is_complex() or \
            edge_index.dtype == torch.bool:
        raise ValueError(f"edge_index must be an integer tensor, got {edge_index.dtype}")
    if edge_index.numel() == 0:
        return
    if int(edge_index.min()) < 0:
        raise ValueError("edge_index contains negative node indices")
    if int(edge_index[0].max()) >= num_src:
        raise ValueError(
            f"edge_index source index {int(edge_index[0].max())} out of range for {num_src} nodes"
        )
    if int(edge_index[1].max()) >= num_dst:
        raise ValueError(
            f"edge_index target index {int(edge_index[1].max())} out of range for {num_dst} nodes"
        )


def check_batch(batch: Optional[Tensor], num_nodes: int) -> None:
    """Require ``batch`` (if given) to be a sorted ``[N]`` vector of graph ids of dtype
    ``int64`` (PyG's) or ``int32``: ``bool`` and the 8/16-bit integer dtypes, which PyG's
    scatter kernels do not take as indices, are refused rather than reinterpreted."""
    if batch is None:
        return
    if not isinstance(batch, Tensor):
        raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
    if batch.dim() != 1 or batch.numel() != num_nodes:
        raise ValueError(f"batch must have shape [{num_nodes}], got {tuple(batch.shape)}")
    if batch.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"batch must be an int64 (or int32) tensor of graph ids, got "
                         f"{batch.dtype}")
    if num_nodes > 1 and bool((batch[1:] < batch[:-1]).any()):
        raise ValueError("batch must be sorted (nodes of each graph contiguous), as PyG "
                         "produces it")
    if num_nodes > 0 and int(batch.min()) < 0:
        raise ValueError("batch contains negative graph ids")
