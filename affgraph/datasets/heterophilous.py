"""The heterophilous benchmark graphs of Platonov et al. (minesweeper, tolokers, chameleon_filtered)."""
from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from affgraph.datasets._root import DataFileError, lookup, read_verified

KEYS = ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks")


def _arrays(path: object, blob: bytes) -> dict[str, np.ndarray]:
    try:  # allow_pickle=False: an object array in the file is refused, never unpickled
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataFileError(f"{path} lacks the arrays {missing} (has {sorted(npz.files)})")
            return {k: npz[k] for k in KEYS}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, DataFileError):
            raise
        raise DataFileError(f"cannot parse {path} as a numpy .npz archive: {err}") from err


def load_heterophilous(name: str, root: str | os.PathLike | None = None) -> Data:
    r"""A graph from `"A critical look at the evaluation of GNNs under heterophily: Are we
    really making progress?" <https://openreview.net/forum?id=tJbbQfw-5wv>`_ (Platonov et al.,
    ICLR 2023), with the paper's ten fixed splits.

    Reads ``{root}/heterophilous/{name}/raw/{name}.npz`` (the file PyG's
    ``HeterophilousGraphDataset`` reads) once, checks its bytes against the manifest's sha256
    and parses those bytes with ``allow_pickle=False``. The edges are made undirected (both
    directions, coalesced), as PyG's loader does. ``minesweeper`` and ``tolokers`` are binary
    (the paper scores them by ROC AUC), ``chameleon_filtered`` has 5 classes (accuracy).

    Args:
        name (str): ``"minesweeper"``, ``"tolokers"`` or ``"chameleon_filtered"``
            (case-insensitive, ``-`` = ``_``).
        root (str or PathLike, optional): the data root; else ``$AFFGRAPH_DATA``, else the
            per-user default (see :func:`affgraph.datasets.resolve_root`). (default: :obj:`None`)

    Shapes:
        - **x**: :math:`(N, F)` float32, **edge_index**: :math:`(2, E)` undirected,
          **y**: :math:`(N)` int64
        - **train_mask**, **val_mask**, **test_mask**: :math:`(N, 10)` boolean (column ``s``
          is split ``s``, as in the file's ``[10, N]`` arrays transposed).
    """
    canonical, entry = lookup(name, "heterophilous")
    (rel,) = entry["files"]
    _, raw = read_verified(canonical, root, files=[rel])
    path, blob = raw[rel].path, raw[rel].data
    a = _arrays(path, blob)
    x, y, edges = a["node_features"], a["node_labels"], a["edges"]
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise DataFileError(f"{path}: node_features {x.shape} and node_labels {y.shape} do not "
                            "describe the same nodes")
    n = x.shape[0]
    if edges.ndim != 2 or edges.shape[1] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise DataFileError(f"{path}: edges must be an integer [E, 2] array, got {edges.shape} "
                            f"{edges.dtype}")
    if edges.size and (edges.min() < 0 or edges.max() >= n):
        raise DataFileError(f"{path}: an edge names a node outside 0..{n - 1}")
    for k in ("train_masks", "val_masks", "test_masks"):
        if a[k].dtype != np.bool_ or a[k].ndim != 2 or a[k].shape[1] != n:
            raise DataFileError(f"{path}: {k} must be a boolean [splits, {n}] array, got "
                                f"{a[k].shape} {a[k].dtype}")
    if not np.isfinite(x).all():
        raise DataFileError(f"{path}: node_features contains NaN or inf values")
    edge_index = to_undirected(torch.from_numpy(edges.T.astype(np.int64)), num_nodes=n)
    return Data(x=torch.from_numpy(x.astype(np.float32)), y=torch.from_numpy(y.astype(np.int64)),
                edge_index=edge_index,
                train_mask=torch.from_numpy(a["train_masks"].T.copy()),
                val_mask=torch.from_numpy(a["val_masks"].T.copy()),
                test_mask=torch.from_numpy(a["test_masks"].T.copy()))
