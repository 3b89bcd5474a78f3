import shutil

import pytest
import torch
import torch_geometric.datasets.planetoid as pyg_planetoid
from torch_geometric.utils import is_undirected

from affgraph.datasets import DataFileError, load_planetoid

# PyG's documented statistics and the public split of Yang et al. (2016)
STATS = {"Cora": (2708, 10556, 1433, 7, 140), "CiteSeer": (3327, 9104, 3703, 6, 120),
         "PubMed": (19717, 88648, 500, 3, 60)}


@pytest.mark.parametrize("name", list(STATS))
def test_public_split(name, data_root):
    n, e, f, c, n_train = STATS[name]
    data = load_planetoid(name, data_root)
    assert (data.num_nodes, data.num_edges, data.num_features) == (n, e, f)
    assert int(data.y.max()) + 1 == c and int(data.y.min()) == 0
    masks = (data.train_mask, data.val_mask, data.test_mask)
    assert [int(m.sum()) for m in masks] == [n_train, 500, 1000]
    # 20 labelled nodes per class, disjoint masks
    assert torch.bincount(data.y[data.train_mask], minlength=c).tolist() == [20] * c
    assert not bool((data.train_mask & data.val_mask).any()
                    | (data.val_mask & data.test_mask).any())
    assert is_undirected(data.edge_index)


def test_cora_class_counts(data_root):
    y = load_planetoid("cora", data_root).y
    assert torch.bincount(y).tolist() == [351, 217, 418, 818, 426, 298, 180]


@pytest.mark.parametrize("name,sizes", [("Cora", (1192, 796, 497)),
                                        ("CiteSeer", (1596, 1065, 666))])
def test_geom_gcn_split(name, sizes, data_root):
    data = load_planetoid(name, data_root, split="geom-gcn")
    n = data.num_nodes
    for mask in (data.train_mask, data.val_mask, data.test_mask):
        assert mask.shape == (n, 10) and mask.dtype == torch.bool
    masks = (data.train_mask, data.val_mask, data.test_mask)
    assert tuple(int(m[:, 0].sum()) for m in masks) == sizes
    assert not bool((data.train_mask & data.test_mask).any())


def test_full_split(data_root):
    data = load_planetoid("Cora", data_root, split="full")
    assert int(data.train_mask.sum()) == 2708 - 1500


def test_bad_split_and_name(data_root):
    with pytest.raises(ValueError, match="unknown split 'random'.*public, full, geom-gcn"):
        load_planetoid("Cora", data_root, split="random")
    with pytest.raises(ValueError, match="known: Cora, CiteSeer, PubMed"):
        load_planetoid("Cornell", data_root)


def _copy_cora(data_root, dst):
    shutil.copytree(data_root / "planetoid" / "Cora" / "raw", dst / "planetoid" / "Cora" / "raw")


def test_tampered_file_rejected_before_unpickling(data_root, tmp_path, monkeypatch):
    _copy_cora(data_root, tmp_path)
    graph = tmp_path / "planetoid" / "Cora" / "raw" / "ind.cora.graph"
    data = bytearray(graph.read_bytes())
    data[100] ^= 0xFF
    graph.write_bytes(bytes(data))

    def must_not_run(*args, **kwargs):
        raise AssertionError("a tampered file reached the unpickler")

    monkeypatch.setattr(pyg_planetoid, "read_planetoid_data", must_not_run)
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataFileError, match="checksum mismatch.*ind.cora.graph"):
        load_planetoid("Cora", tmp_path)


def test_missing_file_names_path_and_fetch(data_root, tmp_path):
    _copy_cora(data_root, tmp_path)
    (tmp_path / "planetoid" / "Cora" / "raw" / "ind.cora.tx").unlink()
    with pytest.raises(DataFileError, match=r"Cora/raw/ind\.cora\.tx.*datasets\.fetch\(\"Cora\""):
        load_planetoid("Cora", tmp_path)


def test_read_only_root_is_never_written(data_root, tmp_path, monkeypatch):
    root = tmp_path / "root"
    _copy_cora(data_root, root)
    for p in sorted(root.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    root.chmod(0o555)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    monkeypatch.setenv("AFFGRAPH_CACHE", str(tmp_path / "cache"))
    try:
        a = load_planetoid("Cora", root)      # processes into the fresh cache
        b = load_planetoid("Cora", root)      # reads the cache
    finally:
        for p in [root, *root.rglob("*")]:
            p.chmod(0o755)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert any((tmp_path / "cache" / "processed" / "planetoid" / "Cora" / "public").iterdir())
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


def test_unwritable_cache_still_loads(data_root, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AFFGRAPH_CACHE", str(blocker / "cache"))
    data = load_planetoid("Cora", data_root)
    assert data.num_nodes == 2708
