"""scripts/grand_planetoid.py: the reference's stopping rule on hand-made sequences, its
adjacency (self-loops of weight 2) against a dense reference, a tiny run, and ``--quick``."""
import math
import sys
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import grand_planetoid as gp  # noqa: E402

from affgraph.nn.models.grand import grand_settings  # noqa: E402


def test_reference_stopping_hand_computed():
    """Patience 2. Epoch 0 best; 1: loss up, acc tie (>=) resets, not best; 2: loss tie (<=)
    best; 3, 4: neither, stop at 4; the best epoch is 2."""
    st = gp.ReferenceStopping(2)
    seq = [(1.0, 0.5), (1.2, 0.5), (1.0, 0.4), (1.1, 0.45), (1.3, 0.3)]
    best = [st.step(loss, acc) for loss, acc in seq[:3]]
    assert best == [True, False, True] and st.bad == 0 and not st.stop
    assert st.step(*seq[3]) is False and st.bad == 1 and not st.stop
    assert st.step(*seq[4]) is False and st.stop and st.best_epoch == 2


def test_reference_stopping_accuracy_resets_without_moving_the_best():
    st = gp.ReferenceStopping(1)
    assert st.step(0.5, 0.1)
    assert not st.step(0.9, 0.8) and not st.stop  # new best accuracy: counter reset
    assert not st.step(0.6, 0.7) and st.stop
    assert st.best_epoch == 0 and st.loss_min == 0.5 and st.acc_max == 0.8
    with pytest.raises(ValueError, match="patience"):
        gp.ReferenceStopping(0)


def test_reference_graph_normalises_as_adj_plus_identity():
    """One direction of an edge stored twice, a stray self-loop in edge_index, a raw self-loop
    at node 1: gcn_norm of the result is D^-1/2 (A + I) D^-1/2 with A_11 = 1 (diagonal 2)."""
    n = 4
    data = Data(edge_index=torch.tensor([[0, 0, 1, 2, 3], [1, 1, 2, 2, 2]]), num_nodes=n)
    ei, w = gp.reference_graph(data, torch.tensor([1]))
    a = torch.zeros(n, n, dtype=torch.double)
    for s, d in [(0, 1), (1, 2), (2, 3)]:
        a[s, d] = a[d, s] = 1.0
    a[1, 1] = 1.0
    a = a + torch.eye(n, dtype=torch.double)
    d = a.sum(1).rsqrt()
    expected = d[:, None] * a * d[None, :]
    ei2, w2 = gcn_norm(ei, w.double(), n, add_self_loops=True)
    dense = torch.zeros(n, n, dtype=torch.double)
    dense[ei2[1], ei2[0]] = w2
    torch.testing.assert_close(dense, expected)


def _tiny_data():
    g = torch.Generator().manual_seed(0)
    n = 30
    y = torch.arange(n) % 3
    x = torch.rand(n, 6, generator=g)
    x[torch.arange(n), y] += 1.0
    x = x / x.sum(1, keepdim=True)
    src = torch.randint(0, n, (60,), generator=g)
    dst = torch.randint(0, n, (60,), generator=g)
    ei, w = gp.reference_graph(Data(edge_index=torch.stack([src, dst]), num_nodes=n))
    idx = torch.arange(n)
    return Data(x=x, y=y, edge_index=ei, edge_weight=w, train_mask=idx < 9,
                val_mask=(idx >= 9) & (idx < 18), test_mask=idx >= 18)


def test_train_grand_tiny_run_is_deterministic_and_sane():
    data = _tiny_data()
    settings = grand_settings("CiteSeer").replace(epochs=6, patience=6)
    a = gp.train_grand(data, settings, seed=3, dataset="tiny")
    b = gp.train_grand(data, settings, seed=3, dataset="tiny")
    for key in ("val_loss", "val_acc", "test_acc", "best_epoch", "epochs_run"):
        assert a[key] == b[key]
    assert a["dataset"] == "tiny" and a["stopped"] == "epochs" and a["epochs_run"] == 6
    assert 1 <= a["best_epoch"] <= 6 and math.isfinite(a["val_loss"])
    n_test = int(data.test_mask.sum())
    assert abs(a["test_acc"] * n_test - round(a["test_acc"] * n_test)) < 1e-9
    timed = gp.train_grand(data, settings, seed=3, time_limit=0.0)
    assert timed["stopped"] == "time" and timed["epochs_run"] == 1 == timed["best_epoch"]


def test_format_table_hand_computed():
    rows = [{"dataset": "Cora", "test_acc": 0.85}, {"dataset": "Cora", "test_acc": 0.83}]
    lines = gp.format_table(rows).splitlines()
    assert lines[2] == "| Cora | GRAND | 2 | 84.0 ± 1.4 | 85.4 | -1.4 |"
    rows += [{"dataset": "Cora", "model": "GRANDAttention", "test_acc": 0.86}]
    lines = gp.format_table(rows).splitlines()
    assert lines[3] == "| Cora | GRANDAttention | 1 | 86.0 | 85.4 | +0.6 |"


def test_build_model_gives_each_network_its_affinity():
    """GRAND with the dataset's settings; GRANDAttention with the same MLP and a learnable
    inverse temperature; the -fixed control with it frozen (a buffer)."""
    s = grand_settings("CiteSeer")
    grand = gp.build_model("GRAND", s, 6, 3)
    att = gp.build_model("GRANDAttention", s, 6, 3)
    fixed = gp.build_model("GRANDAttention-fixed", s, 6, 3)
    assert type(grand).__name__ == "GRAND" and type(att).__name__ == "GRANDAttention"
    for m in (grand, att, fixed):
        assert (m.K, m.lin1.out_features, m.dropout) == (s.K, s.hidden_channels, s.dropout)
    assert "logit_scale" in dict(att.named_parameters())
    assert "logit_scale" not in dict(fixed.named_parameters())
    assert "logit_scale" in dict(fixed.named_buffers())
    with pytest.raises(ValueError, match="model"):
        gp.build_model("GAT", s, 6, 3)


def test_train_grand_attention_tiny_runs_are_deterministic():
    data = _tiny_data()
    settings = grand_settings("CiteSeer").replace(epochs=4, patience=4)
    a = gp.train_grand(data, settings, seed=1, dataset="tiny", model="GRANDAttention")
    b = gp.train_grand(data, settings, seed=1, dataset="tiny", model="GRANDAttention")
    assert a["model"] == "GRANDAttention" and a["epochs_run"] == 4 and "logit_scale" in a
    assert a["logit_scale_init"] == 0.0
    for key in ("val_loss", "val_acc", "test_acc", "best_epoch"):
        assert a[key] == b[key]
    c = gp.train_grand(data, settings, seed=1, dataset="tiny", model="GRANDAttention-fixed")
    assert c["model"] == "GRANDAttention-fixed" and math.isfinite(c["val_loss"])


def test_without_data_root_fails_clearly(monkeypatch):
    monkeypatch.delenv("AFFGRAPH_DATA", raising=False)
    with pytest.raises(SystemExit, match="need a data root.*--data-root.*AFFGRAPH_DATA"):
        gp.main(["--quick"])


def test_raw_self_loops_and_prepared_cora(data_root):
    """CiteSeer's raw graph has 124 self-loops, PubMed's 3, Cora's none; Cora's prepared
    features sum to 1 per row and its weights are all 1 (no raw self-loop)."""
    assert gp.raw_self_loops("CiteSeer", data_root).numel() == 124
    assert gp.raw_self_loops("PubMed", data_root).numel() == 3
    assert gp.raw_self_loops("Cora", data_root).numel() == 0
    data = gp.load_dataset("Cora", data_root)
    torch.testing.assert_close(data.x.sum(1), torch.ones(data.num_nodes))
    assert (data.edge_weight == 1).all() and (data.edge_index[0] != data.edge_index[1]).all()


def test_quick_on_cora(data_root, tmp_path, capsys):
    out = tmp_path / "rows.json"
    rows = gp.main(["--quick", "--datasets", "cora", "--data-root", str(data_root),
                    "--threads", "1", "--json", str(out)])
    assert [(r["dataset"], r["seed"], r["epochs_run"]) for r in rows] == [("Cora", 0, 3)]
    assert out.exists() and "| Cora | GRAND | 1 |" in capsys.readouterr().out
