import shutil
import sys
from pathlib import Path

import numpy as np
from torch_geometric.utils import homophily

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import datasets as ds_script  # noqa: E402

from affgraph.datasets import load_planetoid, load_webkb  # noqa: E402


def test_list(data_root, tmp_path, capsys):
    assert ds_script.main(["--root", str(data_root), "list"]) == 0
    out = capsys.readouterr().out
    assert f"data root: {data_root}" in out
    assert "| Cora | planetoid | 2708 nodes, 10556 edges, 1433 feats, 7 cls |" in out
    assert out.count("| present |") == 28 and out.count("| bundled |") == 3
    shutil.copytree(data_root / "webkb" / "cornell", tmp_path / "webkb" / "cornell")
    (tmp_path / "webkb" / "cornell" / "raw" / "out1_graph_edges.txt").unlink()
    ds_script.main(["list", "--root", str(tmp_path)])  # a subcommand's --root works too
    out = capsys.readouterr().out
    assert "| Cornell | webkb |" in out and "partial (1 missing)" in out
    assert out.count("| missing |") == 27


def test_verify_ok_and_altered(data_root, tmp_path, capsys):
    assert ds_script.main(["verify", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert out.count("| OK |") == 28
    (tmp_path / "featsel").mkdir()
    data = bytearray((data_root / "featsel" / "Yale.mat").read_bytes())
    data[0] ^= 1
    (tmp_path / "featsel" / "Yale.mat").write_bytes(bytes(data))
    assert ds_script.main(["verify", "--root", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "| Yale | ALTERED: featsel/Yale.mat | 1/1 |" in captured.out
    assert "| colon | not present | 0/1 |" in captured.out
    assert "differ from the manifest" in captured.err


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
    assert ds_script.main(["fetch", "colon", "--root", str(tmp_path), "--base-url",
                           "http://127.0.0.1:9", "--timeout", "2"]) == 1
    assert "cannot download" in capsys.readouterr().err
