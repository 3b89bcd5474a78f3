"""bench_scale.py: the power-law generator, each method against its oracle, the tables, and a
--quick run end to end (two child processes)."""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_scale as bs  # noqa: E402


def test_power_law_graph_is_deterministic_symmetric_and_heavy_tailed():
    ei = bs.power_law_graph(5000, 40000, seed=3)
    assert ei.shape == (2, 40000) and ei.dtype == torch.int64
    assert torch.equal(ei, bs.power_law_graph(5000, 40000, seed=3))
    assert not torch.equal(ei, bs.power_law_graph(5000, 40000, seed=4))
    assert bool((ei[0] != ei[1]).all()) and int(ei.min()) >= 0 and int(ei.max()) < 5000
    half = ei.size(1) // 2
    assert torch.equal(ei[:, half:], ei[:, :half].flip(0))  # each edge both ways
    deg = torch.bincount(ei[1], minlength=5000).double()
    assert float(deg.max()) > 20 * float(deg.mean())  # power law: hubs far above the mean
    with pytest.raises(ValueError, match="even"):
        bs.power_law_graph(10, 7)


def _args(**kw):
    return argparse.Namespace(**dict(dict(block_size=3, seed=0, train_nodes=50, batch_size=25,
                                          fanout=[5, 5]), **kw))


def test_methods_against_their_oracles():
    from affgraph.diffusion import diffuse

    ei = bs.power_law_graph(400, 3000, seed=1)
    x = bs.node_features(400, 7, seed=1)
    run = {m: bs._run_method(m, x, ei, _args())
           for m in ("ours_k10", "ours_inf", "appnp", "features", "features_power", "sign")}
    torch.testing.assert_close(run["ours_k10"]["out"], run["appnp"]["out"], rtol=1e-5,
                               atol=1e-6)
    for k in range(1, 5):
        torch.testing.assert_close(run["features_power"][f"x{k}"], run["sign"][f"x{k}"],
                                   rtol=1e-5, atol=1e-6)
    x64 = x.double()
    for h, name in ((1, "x1"), (2, "x2"), (4, "x4"), (math.inf, "x_inf")):
        ref = diffuse(x64, ei, hops=h, coeffs="ppr", alpha=bs.ALPHA, normalize="sym",
                      add_self_loops=True, tol=1e-12)
        assert bs.rel_err(run["features"][name].numpy(), ref.numpy()) < 1e-5
    ref = diffuse(x64, ei, hops=math.inf, coeffs="ppr", alpha=bs.ALPHA, normalize="sym",
                  add_self_loops=True, tol=1e-12)
    assert bs.rel_err(run["ours_inf"]["out"].numpy(), ref.numpy()) < 1e-5
    loss = bs._run_method("train_attention", x, ei, _args())["loss"]
    assert math.isfinite(float(loss)) and 0.5 < float(loss) < 5.0  # about log 4 on 4 classes


def test_rel_err():
    b = np.array([1.0, -4.0])
    assert bs.rel_err(b + [0.0, 0.4], b) == pytest.approx(0.1)
    assert math.isnan(bs.rel_err(None, b))


def _row(method, t, peak, edges=10, **kw):
    return dict(method=method, edges=edges, ok=True, times=[t], peak_gb=peak, **kw)


def test_summarise_ratios_met_and_oom():
    rows = [_row("appnp", 4.0, 2.0), _row("ours_k10", 1.0, 0.5), _row("ours_inf", 3.0, 0.5),
            dict(method="appnp", edges=20, ok=False, oom=True, peak_gb=17.5,
                 error="OOM: DefaultCPUAllocator: can't allocate memory"),
            _row("ours_k10", 9.0, 5.0, edges=20)]
    lines = bs.summarise(rows).splitlines()
    cells = [line.split(" | ") for line in lines[2:]]
    assert cells[1][4:7] == ["0.25x", "0.25x", "yes"]  # ours / APPNP, both within 0.5
    assert cells[2][4:7] == ["0.75x", "0.25x", "no"]
    assert cells[3][2] == "OOM" and "OOM" in cells[3][7]
    assert cells[4][4] == "—" and cells[4][6] == "yes"  # APPNP ran out: finishing is the target
    growth = bs.growth_table(rows).splitlines()
    assert growth[2].startswith("| 10 | 1.00 | 3.00 | 4.00")
    assert growth[3].startswith("| 20 | 9.00 | — | OOM")


def test_quick_run_end_to_end(tmp_path, capsys):
    rows = bs.main(["--quick", "--methods", "ours_k10", "appnp", "--json",
                    str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert [r["method"] for r in rows] == ["ours_k10", "appnp"]
    assert all(r["ok"] and r["peak_gb"] >= 0 and r["times"][0] > 0 for r in rows)
    checks = rows[0]["checks"]
    assert checks["ours_k10 vs appnp"] < 1e-5  # our K = 10 output is APPNP's
    assert checks["ours_k10 vs float64"] < 1e-5
    assert "| 20,000 | ours_k10 |" in out and "Agreement" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert [r["method"] for r in saved] == ["ours_k10", "appnp"]
