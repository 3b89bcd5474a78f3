"""Graph inputs as PyG layers accept them, turned into one ``(edge_index, edge_values)`` pair.

PyG layers take the graph as a ``[2, E]`` ``edge_index`` (a plain tensor or an
:class:`torch_geometric.EdgeIndex`), as a ``torch.sparse`` adjacency, or as a
``torch_sparse.SparseTensor``. The sparse forms follow PyG's convention of the *transposed*
adjacency ``adj_t``: entry ``(i, j)`` is the edge ``j -> i`` (row = target, column = source),
so ``adj_t @ x`` aggregates the sources into the targets. Their stored values are the edge
values (weights, or edge features when they have more than one dimension).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
from torch import Tensor

try:  # optional: torch_sparse's SparseTensor, where installed
    from torch_sparse import SparseTensor as _SparseTensor
except ImportError:  # pragma: no cover - depends on the environment
    _SparseTensor = None

_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)


def is_sparse_adjacency(graph: Any) -> bool:
    """Whether ``graph`` is a ``torch.sparse`` tensor or a ``torch_sparse.SparseTensor``."""
    if _SparseTensor is not None and isinstance(graph, _SparseTensor):
        return True
    return isinstance(graph, Tensor) and graph.layout in _SPARSE_LAYOUTS


def to_edge_index(graph: Any, edge_values: Optional[Tensor] = None, *,
                  name: str = "edge_index", values_name: str = "edge_weight"
                  ) -> Tuple[Tensor, Optional[Tensor]]:
    """``(edge_index [2, E] int64 plain tensor, values or None)`` from any PyG graph input.

    Args:
        graph: a ``[2, E]`` integer tensor or ``EdgeIndex`` (``graph[0]`` the sources),
            a ``torch.sparse`` ``adj_t`` of shape ``[N_dst, N_src]`` (COO, CSR or CSC), or a
            ``torch_sparse.SparseTensor`` ``adj_t``.
        edge_values (Tensor, optional): per-edge values ``[E, ...]`` for an ``edge_index``.
            A sparse adjacency carries its own values, so passing both is an error.
        name, values_name: argument names used in error messages.

    A sparse adjacency without stored values (``SparseTensor`` built without ``value``)
    gives ``None`` values. Integer indices of any width are widened to ``int64``; other
    dtypes (floating, ``bool``) are refused with a ``ValueError`` naming ``name``.
    """
    if _SparseTensor is not None and isinstance(graph, _SparseTensor):
        if edge_values is not None:
            raise ValueError(f"{values_name} must be None when {name} is a SparseTensor "
                             "(its values are the edge values)")
        row, col, value = graph.coo()
        return torch.stack([col, row]), value
    if not isinstance(graph, Tensor):
        raise TypeError(f"{name} must be a [2, E] tensor, an EdgeIndex, a torch.sparse "
                        f"adjacency or a SparseTensor, got {type(graph).__name__}")
    if graph.layout in _SPARSE_LAYOUTS:
        if edge_values is not None:
            raise ValueError(f"{values_name} must be None when {name} is a sparse adjacency "
                             "(its values are the edge values)")
        if graph.dim() != 2 or graph.sparse_dim() != 2:
            raise ValueError(f"a sparse {name} must be a 2-d adjacency adj_t [N_dst, N_src], "
                             f"got shape {tuple(graph.shape)}")
        coo = graph.to_sparse_coo().coalesce()
        row, col = coo.indices()
        return torch.stack([col, row]), coo.values()
    if graph.dim() != 2 or graph.size(0) != 2:
        raise ValueError(f"{name} must have shape [2, E], got {tuple(graph.shape)}")
    if graph.is_floating_point() or graph.is_complex() or graph.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got {graph.dtype}")
    if hasattr(graph, "as_tensor"):  # torch_geometric.EdgeIndex: a plain tensor from here on
        graph = graph.as_tensor()
    if edge_values is not None:
        if not isinstance(edge_values, Tensor):
            raise TypeError(f"{values_name} must be a tensor, got {type(edge_values).__name__}")
        if edge_values.dim() == 0 or edge_values.size(0) != graph.size(1):
            raise ValueError(f"{values_name} must have one row per edge ({graph.size(1)}), got "
                             f"shape {tuple(edge_values.shape)}")
    return graph.long(), edge_values


def num_sparse_nodes(graph: Any) -> Optional[Tuple[int, int]]:
    """``(N_src, N_dst)`` of a sparse ``adj_t``, or ``None`` for an ``edge_index``."""
    if _SparseTensor is not None and isinstance(graph, _SparseTensor):
        return int(graph.size(1)), int(graph.size(0))
    if isinstance(graph, Tensor) and graph.layout in _SPARSE_LAYOUTS:
        return int(graph.size(1)), int(graph.size(0))
    return None
