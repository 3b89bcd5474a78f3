"""Argument checks shared by the models (each error names the argument)."""
from __future__ import annotations

import math

from torch import Tensor


def check_dropout(name: str, p: object) -> None:
    """``p`` must be a dropout probability in ``[0, 1)``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p!r}")


def check_hops(name: str, k: object) -> None:
    """``k`` must be an ``int >= 1`` or ``math.inf``."""
    ok = (isinstance(k, int) and not isinstance(k, bool) and k >= 1) or \
        (isinstance(k, float) and k == math.inf)
    if not ok:
        raise ValueError(f"{name} must be an int >= 1 or math.inf, got {k!r}")


def check_channels(name: str, c: object) -> None:
    """``c`` must be an ``int >= 1``."""
    if isinstance(c, bool) or not isinstance(c, int) or c < 1:
        raise ValueError(f"{name} must be a positive int, got {c!r}")


def check_model_input(x: object, in_channels: int) -> None:
    """Node features of a model: a floating ``[N, in_channels]`` tensor (dense or sparse COO),
    checked before the first linear map so that a wrong width names ``x``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.size(1) != in_channels:
        raise ValueError(f"x must have shape [N, {in_channels}] (the model's in_channels), got "
                         f"{tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating tensor, got {x.dtype}")
