"""bench_diffusion.py end to end in --quick mode."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_diffusion as bd  # noqa: E402


def test_quick_run_end_to_end(tmp_path, capsys):
    rows = bd.main(["--quick", "--no-progress", "--repeat", "1", "--json",
                    str(tmp_path / "b.json"), "--csv", str(tmp_path / "b.csv")])
    out = capsys.readouterr().out
    assert [r["case"] for r in rows] == list(bd.CASES)
    assert all(r["same_ranking"] for r in rows)  # rankings / outputs agree with the references
    by = {r["case"]: r for r in rows}
    assert by["closed"]["max_rel_err"] < 1e-8 and by["pyifs"]["max_rel_err"] < 1e-8
    assert by["appnp"]["max_rel_err"] < 1e-4
    assert by["ppr_inf"]["max_rel_err"] < 1e-4  # closed form vs APPNP's 132-term series
    assert by["large"]["t_ours"] > 0 and by["large"]["peak_gb"] > 0
    assert "| closed | 200 x 30 |" in out and "PyIFS 0.0.3" in out and "ours/APPNP" in out
    assert "PyG APPNP(K=132), fwd+bwd" in out
    saved = json.loads((tmp_path / "b.json").read_text())
    assert [r["case"] for r in saved] == list(bd.CASES)
    assert (tmp_path / "b.csv").read_text().startswith("case,size,reference")


def test_references_are_the_closed_form():
    X = bd._features(30, 12, seed=1)
    ref = bd.closed_form_reference(X)
    from affgraph.inffs import inffs_scores

    np.testing.assert_allclose(inffs_scores(X).numpy(), ref, rtol=1e-9)
    np.testing.assert_allclose(inffs_scores(X, variant="fslib").numpy(), bd.pyifs_reference(X),
                               rtol=1e-9)
