"""The WebKB heterophilous web-page graphs (Cornell, Texas, Wisconsin) with geom-gcn splits."""
from __future__ import annotations

import os

from torch_geometric.data import Data
from torch_geometric.datasets import WebKB

from affgraph.datasets._pyg import load_verified
from affgraph.datasets._root import lookup, read_verified


def load_webkb(name: str, root: str | os.PathLike | None = None) -> Data:
    r"""A WebKB graph from `"Geom-GCN: Geometric Graph Convolutional Networks"
    <https://openreview.net/forum?id=S1e2agrFvS>`_ (Pei et al., ICLR 2020), as PyG's ``WebKB``
    builds it: web pages of one university, hyperlinks as directed edges, 5 page classes.

    The raw files under ``{root}/webkb/{name}/raw/`` are read once and their bytes checked
    against the manifest's sha256 before those bytes are parsed; the root may be read-only.

    Args:
        name (str): ``"Cornell"``, ``"Texas"`` or ``"Wisconsin"`` (case-insensitive).
        root (str or PathLike, optional): the data root; else ``$AFFGRAPH_DATA``, else the
            per-user default (see :func:`affgraph.datasets.resolve_root`). (default: :obj:`None`)

    Shapes:
        - **x**: :math:`(N, 1703)`, **edge_index**: :math:`(2, E)`, **y**: :math:`(N)`
        - **train_mask**, **val_mask**, **test_mask**: :math:`(N, 10)` boolean, the 10 fixed
          60/20/20 geom-gcn splits (column ``s`` is split ``s``).
    """
    canonical, entry = lookup(name, "webkb")
    _, raw = read_verified(canonical, root, files=list(entry["files"]))
    prefix = f"webkb/{canonical.lower()}/raw/"
    return load_verified(WebKB, raw, prefix, ["webkb", canonical], name=canonical)
