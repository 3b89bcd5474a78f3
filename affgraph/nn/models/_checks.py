"""The input check shared by the models' forward passes (the error names ``x``)."""
from __future__ import annotations

from torch import Tensor


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
