"""Dataset loaders and synthetic generators (one source a file)."""
from __future__ import annotations

from affgraph.datasets._root import DataFileError, list_datasets, resolve_root
from affgraph.datasets.download import fetch
from affgraph.datasets.embedded import load_embedded
from affgraph.datasets.featsel import load_featsel
from affgraph.datasets.heterophilous import load_heterophilous
from affgraph.datasets.match3 import make_match3, match3_labels
from affgraph.datasets.planetoid import load_planetoid
from affgraph.datasets.synthetic import make_csbm, make_planted_features
from affgraph.datasets.webkb import load_webkb

__all__ = ["DataFileError", "fetch", "list_datasets", "resolve_root", "load_embedded",
           "load_featsel", "load_heterophilous", "load_planetoid", "load_webkb", "make_csbm", "make_planted_features",
           "make_match3", "match3_labels"]
