import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def shared_data_root() -> Path | None:
    """The real-data root for tests: AFFGRAPH_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("AFFGRAPH_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "shared" / "data"
    return here if here.is_dir() else None


@pytest.fixture
def data_root() -> Path:
    root = shared_data_root()
    if root is None or not root.is_dir():
        pytest.fail("real data root not found: set AFFGRAPH_DATA (CI sets it to ../shared/data)")
    return root
