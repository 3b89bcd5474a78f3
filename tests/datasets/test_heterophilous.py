import io
import shutil

import numpy as np
import pytest
import torch

from affgraph.datasets import DataFileError, load_heterophilous
from affgraph.datasets.heterophilous import _arrays

# nodes, undirected edges as stored (both directions), features, classes: Platonov et al.,
# Table 1 (chameleon_filtered: their filtered chameleon), and the file's own [E, 2] edge count
STATS = {"minesweeper": (10000, 78804, 7, 2), "tolokers": (11758, 1038000, 10, 2),
         "chameleon_filtered": (890, 17708, 2325, 5)}


def _raw(root, name):
    return np.load(root / "heterophilous" / name / "raw" / f"{name}.npz", allow_pickle=False)


@pytest.mark.parametrize("name", list(STATS))
def test_heterophilous_matches_file(name, data_root):
    n, e, f, c = STATS[name]
    data = load_heterophilous(name, data_root)
    raw = _raw(data_root, name)
    assert (data.num_nodes, data.num_edges, data.num_features) == (n, e, f)
    assert int(data.y.max()) + 1 == c
    assert torch.equal(data.x, torch.from_numpy(raw["node_features"]))
    assert torch.equal(data.y, torch.from_numpy(raw["node_labels"]))
    # the split masks are the file's [10, N] arrays transposed, column s = split s
    for key, mask in (("train_masks", data.train_mask), ("val_masks", data.val_mask),
                      ("test_masks", data.test_mask)):
        assert mask.shape == (n, 10) and mask.dtype == torch.bool
        assert torch.equal(mask, torch.from_numpy(raw[key]).T)
    assert not bool((data.train_mask & data.test_mask).any())
    # undirected: every stored edge in both directions, and nothing else
    stored = {(int(a), int(b)) for a, b in raw["edges"]}
    got = {(int(a), int(b)) for a, b in data.edge_index.T}
    assert got == stored | {(b, a) for a, b in stored}


def test_heterophilous_tampered_and_unknown(data_root, tmp_path):
    src = data_root / "heterophilous" / "chameleon_filtered" / "raw"
    dst = tmp_path / "heterophilous" / "chameleon_filtered" / "raw"
    shutil.copytree(src, dst)
    f = dst / "chameleon_filtered.npz"
    f.chmod(0o644)
    f.write_bytes(f.read_bytes() + b"\0")
    with pytest.raises(DataFileError, match="checksum mismatch"):
        load_heterophilous("chameleon_filtered", tmp_path)
    with pytest.raises(ValueError, match="known:"):
        load_heterophilous("Cora", tmp_path)


def test_npz_with_objects_is_refused():
    buf = io.BytesIO()
    arrays = {k: np.zeros(2) for k in ("node_labels", "edges", "train_masks", "val_masks",
                                       "test_masks")}
    np.savez(buf, node_features=np.array([{"a": 1}], dtype=object), **arrays)
    with pytest.raises(DataFileError, match="cannot parse"):
        _arrays("planted.npz", buf.getvalue())
    with pytest.raises(DataFileError, match="cannot parse"):
        _arrays("junk.npz", b"not a zip")
    buf = io.BytesIO()
    np.savez(buf, node_features=np.zeros((2, 2)))
    with pytest.raises(DataFileError, match="lacks the arrays"):
        _arrays("short.npz", buf.getvalue())
