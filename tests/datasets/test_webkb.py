import pytest
import torch

from affgraph.datasets import DataFileError, load_webkb

# shared/data/SOURCES.md (as PyG's WebKB reports them) and geom-gcn split 0
STATS = {"Cornell": (183, 298, (87, 59, 37)), "Texas": (183, 325, (87, 59, 37)),
         "Wisconsin": (251, 515, (120, 80, 51))}


@pytest.mark.parametrize("name", list(STATS))
def test_webkb(name, data_root):
    n, e, split0 = STATS[name]
    data = load_webkb(name.lower(), data_root)
    assert (data.num_nodes, data.num_edges, data.num_features) == (n, e, 1703)
    assert sorted(torch.unique(data.y).tolist()) == [0, 1, 2, 3, 4]
    for mask in (data.train_mask, data.val_mask, data.test_mask):
        assert mask.shape == (n, 10) and mask.dtype == torch.bool
    masks = (data.train_mask, data.val_mask, data.test_mask)
    assert tuple(int(m[:, 0].sum()) for m in masks) == split0
    assert not bool((data.train_mask & data.val_mask).any())


def test_webkb_features_match_raw_text(data_root):
    # independent parse of the TSV: node_id <TAB> comma-separated features <TAB> label
    raw = data_root / "webkb" / "texas" / "raw" / "out1_node_feature_label.txt"
    lines = raw.read_text().split("\n")[1:]
    rows = [line.split("\t") for line in lines if line]
    data = load_webkb("Texas", data_root)
    for node_id, feats, label in rows[:20]:
        i = int(node_id)
        assert data.x[i].tolist() == [float(v) for v in feats.split(",")]
        assert int(data.y[i]) == int(label)


def test_webkb_tampered(data_root, tmp_path):
    import shutil
    src = data_root / "webkb" / "cornell" / "raw"
    dst = tmp_path / "webkb" / "cornell" / "raw"
    shutil.copytree(src, dst)
    edges = dst / "out1_graph_edges.txt"
    edges.write_text(edges.read_text().replace("\n", "\n0\t1\n", 1))
    with pytest.raises(DataFileError, match="checksum mismatch"):
        load_webkb("Cornell", tmp_path)
    with pytest.raises(ValueError, match="known: Cornell, Texas, Wisconsin"):
        load_webkb("Chameleon", tmp_path)
