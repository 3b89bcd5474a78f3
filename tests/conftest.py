"""Shared fixtures: a fixed seed, a private processed cache, and the real-data root.

Tests that need the real data take the ``data_root`` fixture. Without a data root
(``AFFGRAPH_DATA`` unset or not a folder) they skip with a message saying how to enable them;
with ``AFFGRAPH_REQUIRE_DATA=1`` (CI sets it) they fail instead, so no real-data test is
silently left out where the data is meant to be present.

Tests of ``torch_geometric.loader.NeighborLoader`` take the ``neighbor_sampler`` fixture: the
loader samples with a compiled extension (``pyg-lib`` or ``torch-sparse``), so without one they
skip with a message, and with ``AFFGRAPH_REQUIRE_SAMPLER=1`` (CI sets it where the extension is
installed) they fail instead.
"""
import os
from pathlib import Path

import pytest
import torch

pytest_plugins = ["pytester"]  # tests/test_conftest.py runs this conftest on a small suite

DATA_ENV = "AFFGRAPH_DATA"
REQUIRE_ENV = "AFFGRAPH_REQUIRE_DATA"
SAMPLER_ENV = "AFFGRAPH_REQUIRE_SAMPLER"
LAYOUT = ("planetoid/, webkb/, featsel/ and heterophilous/ as listed in "
          "affgraph/datasets/manifest.json; affgraph.datasets.fetch(name, root=...) fills one")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Processed files go to a session folder unless AFFGRAPH_CACHE is set (the user's cache
    folder is never written by the tests)."""
    if os.environ.get("AFFGRAPH_CACHE"):
        yield
        return
    os.environ["AFFGRAPH_CACHE"] = str(tmp_path_factory.mktemp("affgraph-cache"))
    try:
        yield
    finally:
        os.environ.pop("AFFGRAPH_CACHE", None)


def require_data() -> bool:
    """Whether a missing data root is an error (``AFFGRAPH_REQUIRE_DATA`` set, not ``0``)."""
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


@pytest.fixture
def data_root() -> Path:
    """The real-data root from ``AFFGRAPH_DATA``; skip (or fail, see module doc) without it."""
    env = os.environ.get(DATA_ENV)
    root = Path(env) if env else None
    if root is not None and root.is_dir():
        return root
    why = f"{DATA_ENV} is not set" if root is None else f"{DATA_ENV}={env} is not a folder"
    msg = f"real data needed ({why}): set {DATA_ENV} to a data root laid out like {LAYOUT}"
    if require_data():
        pytest.fail(f"{msg} [{REQUIRE_ENV} is set, so this is an error, not a skip]")
    pytest.skip(msg)


def require_sampler() -> bool:
    """Whether a missing neighbour sampler is an error (``AFFGRAPH_REQUIRE_SAMPLER`` set, not
    ``0``)."""
    return os.environ.get(SAMPLER_ENV, "").strip() not in ("", "0")


@pytest.fixture
def neighbor_sampler() -> str:
    """The extension ``NeighborLoader`` samples with, ``"pyg_lib"`` or ``"torch_sparse"`` (the
    one PyG found at import, as the loader chooses); skip (or fail, see module doc) without
    either."""
    import torch_geometric.typing as pyg_typing

    for name, flag in (("pyg_lib", "WITH_PYG_LIB"), ("torch_sparse", "WITH_TORCH_SPARSE")):
        if getattr(pyg_typing, flag, False):
            return name
    msg = ("NeighborLoader needs pyg-lib or torch-sparse, and neither imports here: install "
           "one built for this torch (the same property runs on PyG's pure-torch subgraph "
           "utilities in any case)")
    if require_sampler():
        pytest.fail(f"{msg} [{SAMPLER_ENV} is set, so this is an error, not a skip]")
    pytest.skip(msg)
