import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import higher_order  # noqa: E402


@pytest.mark.parametrize("width,hidden", [(16, 64), (32, 64), (4, 8)])
def test_equal_parameter_budget(width, hidden):
    counts = {}
    for kind in ("attention", "attention-K", "simplicial"):
        model = higher_order.Match3Net(kind, 16, width,
                                       higher_order.readout_hidden(kind, width, hidden), hops=3)
        counts[kind] = sum(p.numel() for p in model.parameters())
    # simplicial: embedding + 6 (w^2 + w) + readout h (w + 2) + 1, by hand
    assert counts["simplicial"] == (16 * width + 6 * (width * width + width)
                                    + hidden * (width + 2) + 1)
    assert counts["attention"] == counts["attention-K"]
    # the standard models are padded to within one readout unit of the simplicial budget
    assert abs(counts["attention"] - counts["simplicial"]) <= (width + 2) // 2 + 1


def test_forward_shapes_and_unknown_model():
    model = higher_order.Match3Net("simplicial", 7, 8, 16)
    assert model(torch.randint(0, 7, (3, 5))).shape == (3, 5)
    with pytest.raises(ValueError, match="unknown model"):
        higher_order.Match3Net("mamba", 7, 8, 16)



def _dense_attention_series(layer, x, sizes, theta):
    """float64 ``W_r x + sum_k theta_k S^k V`` with ``S`` the row softmax of ``q k^T / sqrt(d)``
    inside each sequence (block diagonal), written out densely."""
    q, k, v = layer.lin_query(x), layer.lin_key(x), layer.lin_value(x)
    s = torch.block_diag(*(torch.softmax(qi @ ki.T / q.size(1) ** 0.5, dim=-1) for qi, ki in
                           zip(q.split(sizes), k.split(sizes))))
    out, hop = theta[0] * v, v
    for t in theta[1:]:
        hop = s @ hop
        out = out + t * hop
    return out + layer.lin_skip(x)


@pytest.mark.parametrize("kind,hops", [("attention", 3), ("attention-K", 1), ("attention-K", 3)])
def test_attention_layers_compute_one_hop_and_the_ppr_series(kind, hops):
    # attention (and attention-K with K = 1): S V; attention-K: MAGNA's PPR series over K hops,
    # theta_k = 0.1 * 0.9^k (k < K) and theta_K = 0.9^K, against the dense float64 form
    torch.manual_seed(0)
    model = higher_order.Match3Net(kind, 7, 6, 8, hops=hops).double()
    tokens = torch.randint(0, 7, (2, 5))
    x = model.embed(tokens.reshape(-1))
    batch = torch.arange(2).repeat_interleave(5)
    k = 1 if kind == "attention" else hops
    theta = [0.0, 1.0] if k == 1 else [0.1 * 0.9 ** i for i in range(k)] + [0.9 ** k]
    expected = _dense_attention_series(model.layer, x, [5, 5], theta)
    torch.testing.assert_close(model.layer(x, batch=batch), expected)

def test_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "rows.json"
    plot = tmp_path / "acc.png"
    rows = higher_order.main(["--quick", "--device", "cpu", "--json", str(out),
                              "--csv", str(tmp_path / "rows.csv"), "--plot", str(plot)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(rows))
    assert {r["model"] for r in rows} == {"attention", "attention-4", "simplicial"}
    assert {r["seq_len"] for r in rows} == {6, 8} and {r["seed"] for r in rows} == {0, 1}
    assert all(r["pairwise_free"] and r["device"] == "cpu" and r["modulus"] == 16 for r in rows)
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in rows)
    assert plot.stat().st_size > 0 and (tmp_path / "rows.csv").read_text().startswith("model,")
    table = capsys.readouterr().out
    assert "| simplicial |" in table and "N=8" in table and "pairwise-free" in table
    assert all(r["steps"] == 5 and r["batch_size"] == 64 for r in rows) and "5 steps x 64" in table
    # re-summarising the JSON reproduces the table without training
    again = higher_order.main(["--from-json", str(out)])
    assert again == json.loads(out.read_text())
    table = capsys.readouterr().out
    assert higher_order.summarize(rows) in table and "5 steps x 64" in table  # not the defaults


def test_training_data_are_pairwise_free_and_the_switch_turns_it_off(monkeypatch):
    from affgraph.datasets.match3 import match3_pairwise_free

    seen = []
    real = higher_order.match3_data

    def spy(*args, **kwargs):
        seen.append(kwargs["pairwise_free"])
        return real(*args, **kwargs)

    monkeypatch.setattr(higher_order, "match3_data", spy)
    row = higher_order.train_one("attention", 8, 16, 0, width=4, hidden=8, hops=2, steps=2,
                                 batch_size=4, lr=1e-3, n_train=32, n_test=16, pairwise_free=True)
    assert seen == [True, True] and row["pairwise_free"] is True
    x, _ = real(32, 8, 16, seed=10_000, pairwise_free=True)
    assert match3_pairwise_free(x, 16).all()
    seen.clear()
    rows = higher_order.main(["--quick", "--no-pairwise-free", "--models", "attention",
                              "--seeds", "0"])
    assert set(seen) == {False} and not any(r["pairwise_free"] for r in rows)


def test_same_seed_same_result_and_bad_device():
    kw = dict(width=4, hidden=8, hops=2, steps=3, batch_size=4, lr=1e-3, n_train=32, n_test=16)
    a = higher_order.train_one("simplicial", 6, 16, 1, **kw)
    b = higher_order.train_one("simplicial", 6, 16, 1, **kw)
    assert a["test_acc"] == b["test_acc"] and a["final_loss"] == b["final_loss"]
    with pytest.raises(SystemExit, match="device"):
        higher_order.main(["--quick", "--device", "nonsense"])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="CUDA is not available"):
            higher_order.main(["--quick", "--device", "cuda"])


def test_resume_trains_only_the_missing_runs(tmp_path, monkeypatch):
    out = tmp_path / "rows.json"
    args = ["--quick", "--device", "cpu", "--json", str(out), "--models", "attention"]
    full = higher_order.main(args)
    out.write_text(json.dumps(full[:1]))  # as if cut after the first run
    trained = []
    real = higher_order.train_one
    def spy(kind, n, *a, **kw):
        trained.append((kind, n, a[1]))
        return real(kind, n, *a, **kw)

    monkeypatch.setattr(higher_order, "train_one", spy)
    resumed = higher_order.main(args + ["--resume"])
    assert trained == [("attention", 6, 1), ("attention", 8, 0), ("attention", 8, 1)]
    assert [(r["seq_len"], r["seed"], r["test_acc"]) for r in resumed] == \
        [(r["seq_len"], r["seed"], r["test_acc"]) for r in full]
    assert json.loads(out.read_text()) == json.loads(json.dumps(resumed))
    with pytest.raises(SystemExit, match="give --json"):
        higher_order.main(["--quick", "--resume"])


def test_steps_per_length(capsys):
    tiny = ["--modulus", "16", "--width", "4", "--hidden", "8", "--n-train", "64", "--n-test", "32",
            "--seeds", "0", "--models", "attention", "--device", "cpu"]
    rows = higher_order.main(tiny + ["--lengths", "6", "8", "--steps", "3", "4"])
    assert [(r["seq_len"], r["steps"]) for r in rows] == [(6, 3), (8, 4)]
    assert "steps 3 at N=6, 4 at N=8" in capsys.readouterr().out
    rows = higher_order.main(tiny + ["--lengths", "6", "8", "--steps", "2"])
    assert [r["steps"] for r in rows] == [2, 2]
    with pytest.raises(SystemExit, match="one per length"):
        higher_order.main(tiny + ["--lengths", "6", "8", "10", "--steps", "2", "3"])
