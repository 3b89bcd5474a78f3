"""The Planetoid citation graphs (Cora, CiteSeer, PubMed), verified before they are unpickled."""
from __future__ import annotations

import os

from torch_geometric.data import Data
from torch_geometric.datasets import Planetoid

from affgraph.datasets._pyg import load_verified
from affgraph.datasets._root import lookup, read_verified

SPLITS = ("public", "full", "geom-gcn")


def load_planetoid(name: str, root: str | os.PathLike | None = None,
                   split: str = "public") -> Data:
    r"""A citation graph from `"Revisiting Semi-Supervised Learning with Graph Embeddings"
    <https://arxiv.org/abs/1603.08861>`_ (Yang et al., ICML 2016), as PyG's ``Planetoid`` builds it.

    Nodes are documents with bag-of-words features, edges are citations (both directions).
    The raw pickles under ``{root}/planetoid/{Name}/raw/`` (``.../geom-gcn/raw/`` for
    ``split="geom-gcn"``) are read once and their bytes checked against the manifest's sha256
    before those bytes are unpickled; the root may be read-only (the processed graph is cached,
    checksummed, in the per-user cache folder, ``$AFFGRAPH_CACHE`` or e.g.
    ``~/.cache/affgraph``; a cache file that fails its check is rebuilt with a warning).

    Args:
        name (str): ``"Cora"``, ``"CiteSeer"`` or ``"PubMed"`` (case-insensitive).
        root (str or PathLike, optional): the data root; else ``$AFFGRAPH_DATA``, else the
            per-user default (see :func:`affgraph.datasets.resolve_root`). (default: :obj:`None`)
        split (str, optional): ``"public"`` (20 labels per class, 500 validation, 1000 test
            nodes), ``"full"`` (every other node trains) or ``"geom-gcn"`` (the 10 fixed
            60/20/20 splits of Pei et al., ICLR 2020). (default: :obj:`"public"`)

    Shapes:
        - **x**: :math:`(N, F)`, **edge_index**: :math:`(2, E)`, **y**: :math:`(N)`
        - **train_mask**, **val_mask**, **test_mask**: :math:`(N)` boolean, or
          :math:`(N, 10)` for ``split="geom-gcn"`` (column ``s`` is split ``s``).

    Raises:
        ValueError: unknown name or split; :class:`DataFileError` (a ``ValueError``) for a
            missing or altered raw file, naming the expected path.
    """
    canonical, entry = lookup(name, "planetoid")
    if not isinstance(split, str) or split.lower() not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {canonical}; known: {', '.join(SPLITS)}")
    split = split.lower()
    sub = "geom-gcn/raw" if split == "geom-gcn" else "raw"
    prefix = f"planetoid/{canonical}/{sub}/"
    files = [rel for rel in entry["files"]
             if rel.startswith(prefix) and (split == "geom-gcn" or "/" not in rel[len(prefix):])]
    _, raw = read_verified(canonical, root, files=files)
    data = load_verified(Planetoid, raw, prefix, ["planetoid", canonical, split],
                         name=canonical, split=split)
    for key in ("train_mask", "val_mask", "test_mask"):  # the geom-gcn npz files store uint8
        data[key] = data[key].bool()
    return data
