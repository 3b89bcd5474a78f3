import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_attention  # noqa: E402


def test_quick_run_end_to_end(tmp_path, capsys):
    out = tmp_path / "rows.json"
    rows = bench_attention.main(["--quick", "--repeat", "1", "--heads", "2", "--threads", "1",
                                 "--json", str(out)])
    printed = capsys.readouterr().out
    saved = json.loads(out.read_text())
    ours = [r for r in saved if not r["case"].startswith("2-simplicial")]
    assert [r["case"].split(",")[0] for r in ours] == ["complete", "causal", "window w=32",
                                                       "kNN k=16"]
    for r in ours:
        assert r["time_ratio"] == pytest.approx(r["ours_s"] / r["competitor_s"])
        assert r["max_abs_diff"] < 1e-3 and r["ours_s"] > 0 and r["competitor_s"] > 0
        assert r["case"] in printed
    knn = ours[-1]
    assert knn["competitor"] == "TransformerConv propagate"
    assert knn["competitor_peak_bytes"] > knn["ours_peak_bytes"] >= 0
    if (Path(bench_attention.__file__).parent / "bench_simplicial.py").exists():
        assert any(r["case"].startswith("2-simplicial") for r in saved)
    assert len(rows) == len(saved)


def test_disagreement_is_an_error(monkeypatch):
    real = bench_attention.attention
    monkeypatch.setattr(bench_attention, "attention", lambda *a, **k: real(*a, **k) + 1.0)
    with pytest.raises(RuntimeError, match="disagree"):
        bench_attention.run(["complete"], quick=True, heads=[1], repeat=1)


def test_knn_edges_are_k_nearest():
    ei = bench_attention.knn_edge_index(50, 4, seed=0)
    pts = torch.rand(50, 3, generator=torch.Generator().manual_seed(0))
    d = torch.cdist(pts, pts).fill_diagonal_(float("inf"))
    ref = d.topk(4, largest=False).indices
    for i in range(50):
        assert set(ei[0][ei[1] == i].tolist()) == set(ref[i].tolist())
