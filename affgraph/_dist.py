"""The few ``torch.distributed`` helpers the blocked computations share.

A blocked computation (diffusion features channel block by channel block, the Inf-FS operator
row block by row block) splits its blocks across the ranks of the default process group when
one is initialised, and runs everything on the one process otherwise. Rank ``r`` of ``W`` takes
blocks ``r, r + W, r + 2W, ...`` (:func:`my_blocks`); the partial results are then summed
(:func:`all_reduce_sum`) or gathered, so every rank ends with the same full result.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import torch
from torch import Tensor

T = TypeVar("T")


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def my_blocks(blocks: Sequence[T]) -> list[T]:
    """This rank's share of ``blocks``: every ``world_size``-th one from index ``rank``."""
    rank, world = rank_world()
    return list(blocks[rank::world])


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over the ranks in place (a no-op on one process); returns ``t``."""
    if rank_world()[1] > 1:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t
