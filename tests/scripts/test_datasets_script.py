import os
import pickle
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from torch_geometric.datasets import HeterophilousGraphDataset
from torch_geometric.utils import homophily

import affgraph.datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import datasets as ds_script  # noqa: E402

from affgraph.datasets import list_datasets, load_planetoid, load_webkb  # noqa: E402
from affgraph.datasets._root import manifest  # noqa: E402


def test_list(data_root, tmp_path, capsys):
    assert ds_script.main(["--root", str(data_root), "list"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {data_root}" in out
    assert "| Cora | planetoid | 2708 nodes, 10556 edges, 1433 feats, 7 cls |" in out
    assert out.count("| present |") == 31 and out.count("| bundled |") == 3
    assert "| Minesweeper | heterophilous | 10000 nodes, 78804 edges, 7 feats, 2 cls |" in out
    assert "31 of 31 file-based datasets present in the root (0 partial)" in out
    shutil.copytree(data_root / "webkb" / "cornell", tmp_path / "webkb" / "cornell")
    (tmp_path / "webkb" / "cornell" / "raw" / "out1_graph_edges.txt").unlink()
    ds_script.main(["list", "--root", str(tmp_path)])  # a subcommand's --root works too
    out = capsys.readouterr().out
    assert "| Cornell | webkb |" in out and "partial (1 missing)" in out
    assert out.count("| missing |") == 30
    assert "0 of 31 file-based datasets present in the root (1 partial)" in out


def test_list_shows_every_known_dataset_without_a_root(tmp_path, capsys):
    assert ds_script.main(["list", "--root", str(tmp_path / "nowhere")]) == 0
    out = capsys.readouterr().out
    assert f"data root: {tmp_path / 'nowhere'} (does not exist)" in out
    for name in list_datasets():
        assert f"| {name} |" in out
    for name, gen in [("cSBM", "make_csbm"), ("planted_features", "make_planted_features"),
                      ("Match3", "make_match3")]:
        assert f"| {name} | synthetic | any size | affgraph.datasets.{gen} | generated |" in out
        assert callable(getattr(affgraph.datasets, gen))       # the generator it names exists
    assert "| digits | embedded | 1797 x 64, 10 cls | scikit-learn | bundled |" in out
    assert out.count("| missing |") == 31


def test_verify_ok_and_altered(data_root, tmp_path, capsys):
    assert ds_script.main(["verify", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert out.count("| OK |") == 31
    (tmp_path / "featsel").mkdir()
    data = bytearray((data_root / "featsel" / "Yale.mat").read_bytes())
    data[0] ^= 1
    (tmp_path / "featsel" / "Yale.mat").write_bytes(bytes(data))
    assert ds_script.main(["verify", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "| Yale | ALTERED: featsel/Yale.mat | 1/1 |" in captured.out
    assert "| colon | MISSING 1 | 0/1 |" in captured.out
    assert f"missing: {tmp_path / 'featsel' / 'colon.mat'} (colon)" in captured.err
    assert f"altered: {tmp_path / 'featsel' / 'Yale.mat'}" in captured.err
    assert "1 file(s) differ from the manifest" in captured.err


def test_verify_fails_on_a_missing_file_and_names_it(data_root, tmp_path, capsys):
    src = data_root / "webkb" / "cornell"
    shutil.copytree(src, tmp_path / "webkb" / "cornell")
    assert ds_script.main(["verify", "Cornell", "--root", str(tmp_path)]) == 0  # complete copy
    assert "| Cornell | OK | 12/12 |" in capsys.readouterr().out
    gone = tmp_path / "webkb" / "cornell" / "raw" / "cornell_split_0.6_0.2_7.npz"
    gone.unlink()
    assert ds_script.main(["verify", "Cornell", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "| Cornell | MISSING 1 | 11/12 |" in captured.out
    assert f"missing: {gone} (Cornell)" in captured.err
    assert "1 required file(s) are missing" in captured.err


def test_verify_fails_without_a_root(tmp_path, capsys):
    assert ds_script.main(["verify", "--root", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert f"data root {tmp_path / 'nowhere'} does not exist" in err and "AFFGRAPH_DATA" in err
    assert ds_script.main(["verify", "wine", "cSBM", "--root", str(tmp_path)]) == 0  # no files
    assert "| cSBM | generated | - |" in capsys.readouterr().out


def test_info_graph_matches_independent_statistics(data_root, capsys):
    assert ds_script.main(["info", "cora", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    data = load_planetoid("Cora", data_root)
    h = homophily(data.edge_index, data.y, method="edge")   # PyG as the oracle
    assert f"| edge homophily | {h:.3f} |" in out and abs(h - 0.81) < 0.005
    for line in ("| nodes | 2708 |", "| edges (directed pairs) | 10556 |", "| classes | 7 |",
                 "| train nodes | 140 |", "| val nodes | 500 |", "| test nodes | 1000 |"):
        assert line in out
    assert ds_script.main(["info", "Wisconsin", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    h = homophily(load_webkb("Wisconsin", data_root).edge_index,
                  load_webkb("Wisconsin", data_root).y, method="edge")
    assert f"| edge homophily | {h:.3f} |" in out and h < 0.3        # heterophilous
    assert "| train nodes (split 0 of 10) | 120 |" in out


def test_info_heterophilous_matches_pyg(data_root, tmp_path, capsys):
    # PyG's HeterophilousGraphDataset on a copy of the same npz is the oracle
    shutil.copytree(data_root / "heterophilous" / "minesweeper", tmp_path / "minesweeper")
    ref = HeterophilousGraphDataset(str(tmp_path), "Minesweeper")[0]
    assert ds_script.main(["info", "minesweeper", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    h = homophily(ref.edge_index, ref.y, method="edge")
    shape = manifest()["datasets"]["Minesweeper"]["shape"]
    assert (ref.num_nodes, ref.num_edges, ref.num_features) == (
        shape["nodes"], shape["edges"], shape["features"])
    for line in (f"| nodes | {ref.num_nodes} |", f"| edges (directed pairs) | {ref.num_edges} |",
                 f"| features | {ref.num_features} |", "| classes | 2 |",
                 f"| edge homophily | {h:.3f} |",
                 f"| train nodes (split 0 of 10) | {int(ref.train_mask[:, 0].sum())} |",
                 f"| test nodes (split 0 of 10) | {int(ref.test_mask[:, 0].sum())} |"):
        assert line in out
    assert torch.bincount(ref.y).tolist() == [8000, 2000]


def test_info_tabular(data_root, capsys):
    assert ds_script.main(["info", "lung_small", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "| samples | 73 |" in out and "| features | 325 |" in out and "| classes | 7 |" in out
    assert "| class sizes | 6 5 5 16 7 13 21 |" in out
    assert ds_script.main(["info", "digits"]) == 0
    out = capsys.readouterr().out
    assert "| samples | 1797 |" in out and "| value range | [0, 16] |" in out
    # digits has constant pixels (always 0): counted independently
    from sklearn.datasets import load_digits
    n_const = int((np.ptp(load_digits().data, axis=0) == 0).sum())
    assert f"| constant features | {n_const} |" in out


def test_errors_and_fetch(tmp_path, capsys):
    assert ds_script.main(["info", "mnist"]) == 1
    assert "unknown dataset 'mnist'" in capsys.readouterr().err
    assert ds_script.main(["info", "Cora", "--root", str(tmp_path)]) == 1
    assert "missing data file" in capsys.readouterr().err
    assert ds_script.main(["fetch", "wine"]) == 0
    assert "bundled" in capsys.readouterr().out
    assert ds_script.main(["fetch", "Match3"]) == 0
    assert "generated by affgraph.datasets.make_match3" in capsys.readouterr().out
    assert ds_script.main(["info", "cSBM"]) == 0
    assert "generated by affgraph.datasets.make_csbm" in capsys.readouterr().out
    assert ds_script.main(["fetch", "colon", "--root", str(tmp_path), "--base-url",
                           "http://127.0.0.1:9", "--timeout", "2"]) == 1
    assert "cannot download" in capsys.readouterr().err


def test_verify_fails_for_a_missing_root_from_the_environment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AFFGRAPH_DATA", str(tmp_path / "gone"))
    assert ds_script.main(["verify"]) == 1
    assert f"data root {tmp_path / 'gone'} does not exist" in capsys.readouterr().err
    assert ds_script.main(["verify", "Texas"]) == 1


def test_verify_refuses_a_planted_pickle_without_unpickling_it(data_root, tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(tmp_path / "marker"),)

    shutil.copytree(data_root / "planetoid" / "Cora" / "raw",
                    tmp_path / "planetoid" / "Cora" / "raw")
    planted = tmp_path / "planetoid" / "Cora" / "raw" / "ind.cora.graph"
    planted.write_bytes(pickle.dumps(Payload(), protocol=2))
    (tmp_path / "planetoid" / "Cora" / "raw" / "ind.cora.tx").unlink()
    assert ds_script.main(["verify", "Cora", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    expected = "| Cora | ALTERED: planetoid/Cora/raw/ind.cora.graph; MISSING 19 | 7/26 |"
    assert expected in captured.out  # the geom-gcn files are required too
    assert f"altered: {planted}" in captured.err
    assert ds_script.main(["info", "Cora", "--root", str(tmp_path)]) == 1
    assert f"checksum mismatch for {planted}" in capsys.readouterr().err
    assert not (tmp_path / "marker").exists()
