"""Dataset loaders and synthetic generators (one source a file)."""
from __future__ import annotations

__all__: list[str] = []

# data engineer: real-data loaders, root resolution and synthetic generators
from affgraph.datasets._root import DataFileError, list_datasets, resolve_root  # noqa: E402
from affgraph.datasets.download import fetch  # noqa: E402
from affgraph.datasets.embedded import load_embedded  # noqa: E402
from affgraph.datasets.featsel import load_featsel  # noqa: E402
from affgraph.datasets.planetoid import load_planetoid  # noqa: E402
from affgraph.datasets.synthetic import make_csbm, make_planted_features  # noqa: E402
from affgraph.datasets.webkb import load_webkb  # noqa: E402

__all__ += ["DataFileError", "fetch", "list_datasets", "resolve_root", "load_embedded",
            "load_featsel", "load_planetoid", "load_webkb", "make_csbm", "make_planted_features"]
# simplicial engineer: Match3
from affgraph.datasets.match3 import make_match3, match3_labels  # noqa: E402
__all__ += ["make_match3", "match3_labels"]
