import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import node_classification as nc  # noqa: E402
from _models import build_model  # noqa: E402

KEYS = {"dataset", "model", "hops", "seed", "metric", "val_acc", "test_acc", "train_acc",
        "best_epoch", "epochs_run", "time_s", "device"}
AUC_KEYS = {"val_roc_auc", "test_roc_auc", "train_roc_auc"}


def _row(model, hops, seed, val, test, dataset="D"):
    return {"dataset": dataset, "model": model, "hops": hops, "seed": seed, "val_acc": val,
            "test_acc": test}


def test_run_tiny_rows_are_sane():
    rows = nc.run(["csbm-0.9"], ["GCN", "AffinityAttention"], hops=[1, math.inf], seeds=1,
                  epochs=2, patience=2, csbm_nodes=40, progress=False)
    assert [(r["model"], r["hops"]) for r in rows] == [
        ("GCN", ""), ("AffinityAttention", "1"), ("AffinityAttention", "inf")]
    for r in rows:
        extra = {"attn_dropout"} if r["model"] == "AffinityAttention" else set()
        assert set(r) == KEYS | extra and r["dataset"] == "csbm-0.9" and r["seed"] == 0
        assert r["metric"] == "accuracy"  # cSBM graphs are binary but scored by accuracy
        assert r["device"] == "cpu"
        for key in ("val_acc", "test_acc", "train_acc"):
            assert 0.0 <= r[key] <= 1.0
        assert 1 <= r["best_epoch"] <= r["epochs_run"] <= 2


def test_train_eval_is_deterministic_and_accuracy_matches_mask_size():
    data = nc.load_graph("csbm-0.8", None, csbm_nodes=50, seed=1)
    a = nc.train_eval("GCN", data, epochs=4, patience=4, seed=3)
    b = nc.train_eval("GCN", data, epochs=4, patience=4, seed=3)
    for key in ("val_acc", "test_acc", "train_acc", "best_epoch", "epochs_run"):
        assert a[key] == b[key]
    # an accuracy is a count of correct nodes over the mask size
    n_test = int(data.test_mask.sum())
    assert abs(a["test_acc"] * n_test - round(a["test_acc"] * n_test)) < 1e-4


def test_format_table_hand_computed_and_best_hop_by_validation():
    rows = [_row("GCN", "", 0, 0.70, 0.80), _row("GCN", "", 1, 0.70, 0.82),
            # K=1 has the better test accuracy, K=4 the better validation accuracy
            _row("AffinityAttention", "1", 0, 0.60, 0.90), _row("AffinityAttention", "1", 1, 0.60, 0.90),
            _row("AffinityAttention", "4", 0, 0.75, 0.85), _row("AffinityAttention", "4", 1, 0.77, 0.85)]
    lines = nc.format_table(rows).splitlines()
    assert lines[0] == "| model | D |"
    assert lines[2] == "| GCN | 81.0 ± 1.4 |"
    assert lines[3] == "| AffinityAttention (K=1) | 90.0 ± 0.0 |"
    assert lines[4] == f"| AffinityAttention (K=4) | **85.0 ± 0.0** {nc.BEST_MARK} |"
    assert "best mean validation accuracy" in lines[-1]


def test_format_table_missing_cells_and_empty():
    rows = [_row("GCN", "", 0, 0.5, 0.5, "A"), _row("APPNP", "", 0, 0.5, 0.25, "B")]
    lines = nc.format_table(rows).splitlines()
    assert lines[2] == "| GCN | 50.0 | — |" and lines[3] == "| APPNP | — | 25.0 |"  # 1 seed
    assert "Test accuracy (%), one seed;" in lines[-1] and "±" not in lines[-1]
    # unequal seed counts: each cell says its n
    lines = nc.format_table(rows + [_row("GCN", "", 1, 0.5, 0.7, "A")]).splitlines()
    assert lines[2] == "| GCN | 60.0 ± 14.1 (n=2) | — |" and "n seeds (per cell)" in lines[-1]
    with pytest.raises(ValueError, match="no result rows"):
        nc.format_table([])


def test_webkb_seed_selects_split(data_root):
    from affgraph.datasets import load_webkb

    ref = load_webkb("Texas", data_root)
    data = nc.load_graph("texas", data_root, seed=13)
    for key in ("train_mask", "val_mask", "test_mask"):
        assert torch.equal(data[key], ref[key][:, 3])
    # row-normalised bag of words, undirected edges
    assert torch.allclose(data.x.sum(1)[ref.x.sum(1) > 0], torch.ones(1))
    assert data.edge_index.size(1) >= ref.edge_index.size(1)


def test_bad_names_and_hops():
    with pytest.raises(ValueError, match="unknown dataset"):
        nc.canonical_dataset("Amazon")
    with pytest.raises(ValueError, match="homophily"):
        nc.canonical_dataset("csbm-1.5")
    with pytest.raises(ValueError, match="inf"):
        nc.parse_hops(["two"])
    with pytest.raises(ValueError, match=">= 1"):
        nc.parse_hops(["0"])
    assert nc.parse_hops(["1", "inf", 3]) == [1, math.inf, 3]
    with pytest.raises(ValueError, match="unknown model"):
        nc.run(["csbm-0.5"], ["MLP"], seeds=1, progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("MLP", 4, 2)


def test_main_end_to_end(tmp_path, capsys):
    js, cs = tmp_path / "rows.json", tmp_path / "rows.csv"
    rows = nc.main(["--datasets", "csbm-0.2", "csbm-0.9", "--models", "GCN", "AffinityAttention",
                    "--hops", "1", "2", "--seeds", "1", "--epochs", "3", "--patience", "3",
                    "--csbm-nodes", "60", "--json", str(js), "--csv", str(cs),
                    "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0] == "| model | csbm-0.2 | csbm-0.9 |"
    assert [line.split(" | ")[0] for line in table[1:]] == [
        "| GCN", "| AffinityAttention (K=1)", "| AffinityAttention (K=2)"]
    assert sum(line.count(nc.BEST_MARK) for line in table) == 2  # one best hop per dataset
    assert "(K=" not in table[1] and nc.BEST_MARK not in table[1]  # GCN has no hops
    saved = json.loads(js.read_text())
    assert saved == json.loads(json.dumps(rows)) and len(saved) == 6
    assert all(0 <= r["test_acc"] <= 1 for r in saved)
    assert len(cs.read_text().splitlines()) == 7
    assert (tmp_path / "node_classification_hops.png").stat().st_size > 0
    # --load re-prints the same table from the saved rows
    nc.main(["--load", str(js), "--no-plot"])
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")] == table


def test_main_rejects_unknown_dataset():
    with pytest.raises(SystemExit, match="unknown dataset"):
        nc.main(["--datasets", "nope", "--no-plot", "--no-progress"])


def test_resume_runs_only_the_missing_rows(tmp_path):
    js = tmp_path / "rows.json"
    common = ["--datasets", "csbm-0.5", "--models", "GCN", "--epochs", "3", "--patience", "3",
              "--csbm-nodes", "50", "--json", str(js), "--no-plot", "--no-progress"]
    first = nc.main(common + ["--seeds", "1"])
    full = nc.main(common + ["--seeds", "3"])  # the uncut run, for comparison
    js.write_text(json.dumps(first))            # as if the 3-seed run had been cut after seed 0
    resumed = nc.main(common + ["--seeds", "3", "--resume"])
    assert [r["seed"] for r in resumed] == [0, 1, 2]
    assert resumed[0] == json.loads(json.dumps(first[0]))  # kept as saved, not rerun
    for a, b in zip(resumed[1:], full[1:]):                # the missing runs are the same runs
        assert a["test_acc"] == b["test_acc"] and a["val_acc"] == b["val_acc"]
    assert json.loads(js.read_text()) == json.loads(json.dumps(resumed))
    with pytest.raises(SystemExit, match="give --json"):
        nc.main(["--datasets", "csbm-0.5", "--resume", "--no-plot"])


def test_workers_give_the_serial_rows_in_the_serial_order():
    kwargs = dict(hops=[1, math.inf], seeds=2, epochs=3, patience=3, csbm_nodes=40,
                  progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers use one thread: bit-for-bit equal rows
    try:
        serial = nc.run(["csbm-0.9", "csbm-0.2"], ["GCN", "AffinityAttention"], **kwargs)
    finally:
        torch.set_num_threads(threads)
    saved = []
    pooled = nc.run(["csbm-0.9", "csbm-0.2"], ["GCN", "AffinityAttention"], workers=2,
                    on_row=lambda rows: saved.append(len(rows)), **kwargs)
    assert len(serial) == 12 and saved == list(range(1, 13))   # a checkpoint after each run
    drop = lambda r: {k: v for k, v in r.items() if k != "time_s"}  # noqa: E731
    assert [drop(r) for r in pooled] == [drop(r) for r in serial]
    # --resume with a pool: the kept rows come first, as saved
    part = nc.run(["csbm-0.9"], ["GCN"], workers=2, done=serial[:1], **kwargs)
    assert part[0] is serial[0] and [drop(r) for r in part] == [
        drop(r) for r in serial if r["dataset"] == "csbm-0.9" and r["model"] == "GCN"]
    with pytest.raises(ValueError, match="workers"):
        nc.run(["csbm-0.9"], ["GCN"], workers=0, **kwargs)


def test_runs_start_seed_by_seed_and_rows_keep_the_dataset_order(monkeypatch):
    started = []

    def fake(task, **setup):
        started.append(task)
        return {"dataset": task[0], "seed": task[1], "model": task[2], "hops": ""}

    monkeypatch.setattr(nc, "run_task", fake)
    rows = nc.run(["csbm-0.9", "csbm-0.2"], ["GCN", "GAT"], seeds=2, progress=False)
    assert [(t[1], t[0], t[2]) for t in started] == [
        (s, d, m) for s in (0, 1) for d in ("csbm-0.9", "csbm-0.2") for m in ("GCN", "GAT")]
    assert [(r["dataset"], r["seed"], r["model"]) for r in rows] == [
        (d, s, m) for d in ("csbm-0.9", "csbm-0.2") for s in (0, 1) for m in ("GCN", "GAT")]


def test_random_walk_model_is_the_attention_network_with_a_zero_logit_scale():
    """AffinityAttentionRW: a learnt temperature per head starting at 0 (uniform attention;
    its formula is tested in tests/nn/models); AffinityAttention has no scale."""
    assert build_model("AffinityAttention", 5, 3, 2)[0].attn.logit_scale is None
    model = build_model("AffinityAttentionRW", 5, 3, 2)[0]
    assert torch.equal(model.attn.logit_scale.data, torch.zeros(8))


def test_attn_dropout_is_set_recorded_and_compared(tmp_path):
    assert build_model("AffinityAttention", 5, 2, 4)[0].attn.dropout == 0.0  # the default
    assert build_model("AffinityAttention", 5, 2, 4, attn_dropout=0.6)[0].attn.dropout == 0.6
    with pytest.raises(ValueError, match="not GCN"):
        build_model("GCN", 5, 2, attn_dropout=0.6)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        build_model("AffinityAttention", 5, 2, 4, attn_dropout=1.0)
    kwargs = dict(hops=[2, math.inf], seeds=1, epochs=2, patience=2, csbm_nodes=40,
                  progress=False)
    rows = nc.run(["csbm-0.9"], ["GCN", "AffinityAttention"], attn_dropout=[0.3, 0.0], **kwargs)
    # recorded as applied: none on the baselines, none at K = inf (which so runs once)
    assert [(r["model"], r["hops"], r.get("attn_dropout")) for r in rows] == [
        ("GCN", "", None), ("AffinityAttention", "2", 0.3), ("AffinityAttention", "2", 0.0),
        ("AffinityAttention", "inf", 0.0)]
    assert nc.run(["csbm-0.9"], ["GCN", "AffinityAttention"], attn_dropout=0.3, done=rows,
                  **kwargs) == rows  # nothing left to run
    more = nc.run(["csbm-0.9"], ["AffinityAttention"], attn_dropout=0.6, done=rows, **kwargs)
    assert more[:4] == rows and [(r["hops"], r["attn_dropout"]) for r in more[4:]] == [("2", 0.6)]
    table = nc.format_table(more)
    for label in ("AffinityAttention (K=2)", "AffinityAttention (K=2, attn dropout 0.3)",
                  "AffinityAttention (K=2, attn dropout 0.6)", "AffinityAttention (K=inf)"):
        assert f"| {label} |" in table
    old = [{k: v for k, v in r.items() if k != "attn_dropout"} for r in rows]
    with pytest.raises(ValueError, match="K=2 seed 0.*no attn_dropout"):  # from before the field
        nc.run(["csbm-0.9"], ["AffinityAttention"], done=old, **kwargs)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="no attn_dropout"):
        nc.main(["--datasets", "csbm-0.9", "--json", str(path), "--resume", "--no-plot"])
    with pytest.raises(SystemExit, match=r"\[0, 1\)"):
        nc.main(["--datasets", "csbm-0.9", "--attn-dropout", "0", "-0.1", "--no-plot"])


def test_best_hop_is_marked_per_attention_dropout_and_bold_over_all():
    def row(k, p, val, test):
        return {**_row("AffinityAttention", k, 0, val, test), "attn_dropout": p}

    rows = [row("1", 0.0, 0.5, 0.1), row("2", 0.0, 0.6, 0.2), row("1", 0.6, 0.7, 0.3),
            row("2", 0.6, 0.4, 0.4)]
    lines = nc.format_table(rows).splitlines()
    assert lines[2:6] == ["| AffinityAttention (K=1) | 10.0 |",
                          f"| AffinityAttention (K=2) | 20.0 {nc.BEST_MARK} |",
                          f"| AffinityAttention (K=1, attn dropout 0.6) | **30.0** "
                          f"{nc.BEST_MARK} |",
                          "| AffinityAttention (K=2, attn dropout 0.6) | 40.0 |"]
    assert lines[-1].endswith("bold: the best of them over all hop models and attention "
                              "dropouts.")
    assert nc.best_hops(rows, overall=True) == {"D": (nc.ModelKey("AffinityAttention", 0.6), "1")}
    # a second hop model with a better validation cell takes the bold, keeps its own mark
    rw = {**_row("AffinityAttentionRW", "2", 0, 0.8, 0.5), "attn_dropout": 0.0}
    lines = nc.format_table(rows + [rw]).splitlines()
    assert lines[4] == f"| AffinityAttention (K=1, attn dropout 0.6) | 30.0 {nc.BEST_MARK} |"
    assert lines[6] == f"| AffinityAttentionRW (K=2) | **50.0** {nc.BEST_MARK} |"
    assert nc.best_hops(rows + [rw], overall=True) == {"D": (nc.ModelKey("AffinityAttentionRW"),
                                                             "2")}


def test_time_limit_leaves_the_rest_to_resume(capsys):
    kwargs = dict(hops=[1], seeds=2, epochs=3, patience=3, csbm_nodes=40, progress=False)
    grid = (["csbm-0.9", "csbm-0.2"], ["GCN", "AffinityAttention"])
    assert nc.run(*grid, time_limit=1e-9, **kwargs) == []  # serial: nothing starts
    assert "8 run(s) not started" in capsys.readouterr().err
    part = nc.run(*grid, workers=2, time_limit=1e-9, **kwargs)
    # the pool had handed out at most one run per worker plus one queued
    assert len(part) <= 4
    rest = nc.run(*grid, done=part, **kwargs)
    assert len(rest) == 8 and sorted((r["dataset"], r["seed"], r["model"]) for r in rest) == \
        sorted({(r["dataset"], r["seed"], r["model"]) for r in rest})
    with pytest.raises(ValueError, match="time_limit"):
        nc.run(*grid, time_limit=0, **kwargs)


def test_table_columns_follow_the_dataset_order_not_the_row_order():
    rows = [_row("GCN", "", 0, 0.5, 0.5, d) for d in
            ("mine", "csbm-0.9", "PubMed", "Texas", "csbm-0.1", "Cora")]
    header = nc.format_table(rows).splitlines()[0]
    assert header == "| model | Cora | PubMed | Texas | csbm-0.1 | csbm-0.9 | mine |"


def test_hop_series_share_one_x_axis_per_dataset():
    """A model run at fewer hop counts sits at those counts' positions on the panel's axis."""
    def row(k, p, seed, test):
        return {**_row("AffinityAttention", k, seed, 0.5, test), "attn_dropout": p}

    rows = [row("1", 0.0, 0, 0.5), row("1", 0.0, 1, 0.7), row("inf", 0.0, 0, 0.8),
            row("4", 0.6, 0, 0.3), _row("GCN", "", 0, 0.5, 0.9)]
    ks, series = nc.hop_series(nc.summarize(rows), "D")
    assert ks == ["1", "4", "inf"]
    default, dropped = nc.ModelKey("AffinityAttention"), nc.ModelKey("AffinityAttention", 0.6)
    assert list(series) == [default, dropped]  # the baseline is no hop curve
    xs, means, stds = series[default]
    assert xs == [0, 2]
    assert means == pytest.approx([60.0, 80.0]) and stds == pytest.approx([14.1421356, 0.0])
    assert series[dropped] == ([1], [pytest.approx(30.0)], [0.0])
    assert nc.hop_series(nc.summarize(rows), "other") == ([], {})


# ---------------------------------------------------------------------------------------------
# metrics per dataset: ROC AUC on the binary heterophilous sets, accuracy elsewhere
# ---------------------------------------------------------------------------------------------
def test_each_dataset_has_one_metric():
    assert nc.dataset_metric("minesweeper") == nc.dataset_metric("Tolokers") == "roc_auc"
    for name in ("chameleon_filtered", "Chameleon-Filtered", "Cora", "texas", "csbm-0.5"):
        assert nc.dataset_metric(name) == "accuracy"  # binary cSBM graphs included
    assert nc.canonical_dataset("Chameleon-Filtered") == "chameleon_filtered"
    assert nc.canonical_dataset("MINESWEEPER") == "minesweeper"
    assert nc.score_key("test", "roc_auc") == "test_roc_auc"
    assert nc.score_key("val", "accuracy") == "val_acc"
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        nc.score_key("val", "f1")
    with pytest.raises(ValueError, match="unknown dataset.*minesweeper"):
        nc.canonical_dataset("roman_empire")  # the error lists the known sets
    assert set(nc.HETEROPHILOUS).isdisjoint(nc.DATASETS)  # the default list is unchanged


def test_train_eval_roc_auc_is_sklearns_on_the_saved_outputs_at_the_best_validation_epoch():
    """An independent replay of the selection: sklearn's ROC AUC of the class-1 softmax
    probability on every epoch's saved outputs, the best epoch by (validation AUC, -validation
    loss); on this graph it is not the epoch the validation accuracy would pick."""
    from sklearn.metrics import roc_auc_score

    data = nc.load_graph("csbm-0.3", None, csbm_nodes=60, seed=3)
    outs = {}
    res = nc.train_eval("GCN", data, epochs=20, patience=20, seed=3, metric="roc_auc",
                        on_epoch=lambda epoch, out: outs.__setitem__(epoch, out.clone()))
    assert set(res) == {"metric", "val_acc", "test_acc", "train_acc", "best_epoch",
                        "epochs_run", "time_s"} | AUC_KEYS and res["metric"] == "roc_auc"
    assert sorted(outs) == list(range(1, 21)) and res["epochs_run"] == 20
    y = data.y.numpy()

    def auc(out, mask):
        prob = torch.softmax(out.double(), dim=-1)[:, 1].numpy()
        return roc_auc_score(y[mask.numpy()], prob[mask.numpy()])

    def val_loss(out):
        return float(torch.nn.functional.cross_entropy(out[data.val_mask], data.y[data.val_mask]))

    def best_epoch(score):
        best, key = 0, (-1.0, -math.inf)
        for e in sorted(outs):
            k = (score(outs[e]), -val_loss(outs[e]))
            if k > key:
                best, key = e, k
        return best

    # an AUC is a multiple of 1 / (2 n_pos n_neg): rounding undoes sklearn's float error, so
    # that equal AUCs tie (and the validation loss decides) as they do in exact counts
    by_auc = best_epoch(lambda out: round(auc(out, data.val_mask), 10))
    by_acc = best_epoch(lambda out: float((out.argmax(1) == data.y)[data.val_mask].float().mean()))
    assert res["best_epoch"] == by_auc != by_acc
    out = outs[by_auc]
    for split in ("val", "test", "train"):
        assert res[f"{split}_roc_auc"] == pytest.approx(auc(out, data[f"{split}_mask"]), abs=1e-12)
        acc = (out.argmax(1) == data.y)[data[f"{split}_mask"]].double().mean()
        assert res[f"{split}_acc"] == pytest.approx(float(acc), abs=1e-6)
    # the accuracy run of the same seed selects by accuracy and records no AUC
    acc_res = nc.train_eval("GCN", data, epochs=20, patience=20, seed=3)
    assert acc_res["metric"] == "accuracy" and acc_res["best_epoch"] == by_acc
    assert not AUC_KEYS & set(acc_res)


def test_train_eval_roc_auc_refuses_what_has_no_auc():
    data = nc.load_graph("csbm-0.8", None, csbm_nodes=40, seed=0)
    with pytest.raises(ValueError, match="unknown metric"):
        nc.train_eval("GCN", data, epochs=1, metric="auc")
    three = data.clone()
    three.y = three.y.clone()
    three.y[0] = 2
    with pytest.raises(ValueError, match="binary y.*3 classes"):
        nc.train_eval("GCN", three, epochs=1, metric="roc_auc")
    one_class = data.clone()
    one_class.y = one_class.y.clone()
    one_class.y[one_class.test_mask] = 0
    with pytest.raises(ValueError, match=r"y\[test_mask\] must hold both classes"):
        nc.train_eval("GCN", one_class, epochs=1, metric="roc_auc")


def _auc_row(model, hops, seed, val_auc, test_auc, val_acc, test_acc, dataset="minesweeper"):
    return {**_row(model, hops, seed, val_acc, test_acc, dataset), "metric": "roc_auc",
            "val_roc_auc": val_auc, "test_roc_auc": test_auc}


def test_format_table_says_each_columns_metric_and_selects_on_it():
    rows = [{**_row("GCN", "", 0, 0.70, 0.80, "Cora"), "metric": "accuracy"},
            _row("GCN", "", 1, 0.70, 0.82, "Cora"),  # a row from before rows said: accuracy
            _auc_row("GCN", "", 0, 0.60, 0.91, 0.9, 0.9),
            _auc_row("GCN", "", 1, 0.62, 0.93, 0.9, 0.9),
            # K=1 has the better validation accuracy, K=2 the better validation ROC AUC
            _auc_row("AffinityAttention", "1", 0, 0.70, 0.75, 0.99, 0.99),
            _auc_row("AffinityAttention", "2", 0, 0.80, 0.65, 0.10, 0.10)]
    lines = nc.format_table(rows).splitlines()
    assert lines[0] == "| model | Cora (accuracy) | minesweeper (ROC AUC) |"
    assert lines[2] == "| GCN | 81.0 ± 1.4 (n=2) | 92.0 ± 1.4 (n=2) |"
    assert lines[3] == "| AffinityAttention (K=1) | — | 75.0 (n=1) |"
    assert lines[4] == f"| AffinityAttention (K=2) | — | **65.0 (n=1)** {nc.BEST_MARK} |"
    assert lines[-1].startswith("Test accuracy (%) or ROC AUC (× 100), as each column says, ")
    assert "best mean validation value of the column's metric" in lines[-1]
    assert nc.best_hops(rows) == {(nc.ModelKey("AffinityAttention"), "minesweeper"): "2"}
    # a ROC AUC table alone
    lines = nc.format_table(rows[2:4]).splitlines()
    assert lines[0] == "| model | minesweeper (ROC AUC) |" and lines[2] == "| GCN | 92.0 ± 1.4 |"
    assert lines[-1].startswith("Test ROC AUC (× 100), mean ± std over 2 seeds;")
    with pytest.raises(ValueError, match="minesweeper mix the metrics 'roc_auc' and 'accuracy'"):
        nc.format_table(rows[2:4] + [_row("GCN", "", 2, 0.5, 0.5, "minesweeper")])
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        nc.summarize([{**rows[0], "metric": "f1"}])


def test_plot_labels_each_panel_with_its_metric(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {}
    savefig = plt.Figure.savefig

    def keep_labels(fig, *args, **kwargs):
        labels.update({ax.get_title(): ax.get_ylabel() for ax in fig.axes if ax.get_title()})
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep_labels)
    rows = [_row("AffinityAttention", "1", 0, 0.5, 0.5, "Cora"),
            _auc_row("AffinityAttention", "1", 0, 0.6, 0.7, 0.5, 0.5)]
    assert nc.plot_hops(rows, tmp_path / "p.png").stat().st_size > 0
    assert labels == {"Cora": "test accuracy (%)", "minesweeper": "test ROC AUC (× 100)"}


def test_heterophilous_seed_selects_split(data_root):
    from affgraph.datasets import load_heterophilous

    for name in nc.HETEROPHILOUS:
        ref = load_heterophilous(name, data_root)
        assert ref.train_mask.shape == (ref.num_nodes, 10)
        data = nc.load_graph(name, data_root, seed=13)
        for key in ("train_mask", "val_mask", "test_mask"):
            assert data[key].shape == (ref.num_nodes,)
            assert torch.equal(data[key], ref[key][:, 3])
        assert not torch.equal(ref.train_mask[:, 0], data.train_mask)  # the splits differ
        assert torch.equal(data.x, ref.x)  # features as stored, not row-normalised
        assert torch.equal(data.edge_index, ref.edge_index)  # already undirected


def test_main_tiny_run_on_minesweeper_and_chameleon(data_root, tmp_path, capsys):
    from sklearn.metrics import roc_auc_score

    js = tmp_path / "rows.json"
    rows = nc.main(["--datasets", "minesweeper", "chameleon-filtered", "--models", "GCN",
                    "--seeds", "1", "--epochs", "2", "--patience", "2",
                    "--data-root", str(data_root), "--json", str(js), "--no-plot",
                    "--no-progress"])
    assert [(r["dataset"], r["metric"]) for r in rows] == [("minesweeper", "roc_auc"),
                                                           ("chameleon_filtered", "accuracy")]
    assert set(rows[0]) == KEYS | AUC_KEYS and set(rows[1]) == KEYS
    assert 0.0 <= rows[0]["test_roc_auc"] <= 1.0 and 1 <= rows[0]["best_epoch"] <= 2
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[0] == "| model | minesweeper (ROC AUC) | chameleon_filtered (accuracy) |"
    assert table[1] == (f"| GCN | {100 * rows[0]['test_roc_auc']:.1f} | "
                        f"{100 * rows[1]['test_acc']:.1f} |")
    # the recorded AUC is sklearn's on the replayed run's outputs at the best epoch
    data = nc.load_graph("minesweeper", data_root, seed=0)
    outs = {}
    nc.train_eval("GCN", data, epochs=2, patience=2, seed=0, metric="roc_auc",
                  on_epoch=lambda e, out: outs.__setitem__(e, out.clone()))
    prob = torch.softmax(outs[rows[0]["best_epoch"]].double(), dim=-1)[:, 1]
    m = data.test_mask
    assert rows[0]["test_roc_auc"] == pytest.approx(
        roc_auc_score(data.y[m].numpy(), prob[m].numpy()), abs=1e-12)
    nc.main(["--load", str(js), "--no-plot"])
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")] == table


def test_the_budget_sizes_and_trains_the_residual_baselines(tmp_path):
    from _models import Budget

    data = nc.load_graph("csbm-0.8", None, csbm_nodes=40, seed=0)
    tiny = Budget(hidden=8, layers=1, heads=2, steps=3)
    # the budget's steps, not epochs, bound the run (patience never stops it here)
    res = nc.train_eval("ResMLP", data, epochs=50, patience=50, budget=tiny)
    assert res["epochs_run"] == 3
    assert nc.train_eval("GCN", data, epochs=4, patience=50)["epochs_run"] == 4
    with pytest.raises(ValueError, match="budget applies to"):
        nc.train_eval("GCN", data, epochs=4, budget="cpu")
    js = tmp_path / "rows.json"
    common = ["--datasets", "csbm-0.8", "--models", "GCN", "ResMLP", "--epochs", "2",
              "--patience", "2", "--csbm-nodes", "40", "--seeds", "1", "--json", str(js),
              "--no-plot", "--no-progress"]
    rows = nc.main(common + ["--budget", "cpu"])
    assert [r.get("budget") for r in rows] == [None, "cpu"]
    # GCN stops at --epochs 2; ResMLP runs past it (the budget's 1000 steps, patience 2 stops it)
    assert rows[0]["epochs_run"] <= 2 < rows[1]["epochs_run"] <= 1000
    with pytest.raises(SystemExit, match="budget 'cpu', this run with 'paper'"):
        nc.main(common + ["--resume"])
    with pytest.raises(SystemExit):
        nc.main(common + ["--budget", "gpu"])
    with pytest.raises(ValueError, match="unknown budget 'gpu'"):
        nc.run(["csbm-0.8"], ["ResMLP"], seeds=1, budget="gpu", progress=False)
    with pytest.raises(TypeError, match="budget must be a name"):
        nc.run(["csbm-0.8"], ["ResMLP"], seeds=1, budget=tiny, progress=False)
