"""bench_diffusion.py end to end in --quick mode."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

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
    # the Lanczos run: a few products (the eigenvalue and the solve share them), each counted
    assert 2 <= by["large"]["products"] <= 30
    assert f"{by['large']['products']} operator products" in out
    assert "| closed | 200 x 30 |" in out and "PyIFS 0.0.3" in out
    assert "| time ours / theirs | target | met |" in out
    for r in rows:  # every ratio is ours / theirs
        if r["case"] != "large":
            assert r["ratio"] == pytest.approx(r["t_ours"] / r["t_ref"])
    assert "±" not in out  # one seed: bare means
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
    # std_weight means the same in the references: the weight of the std term
    np.testing.assert_allclose(inffs_scores(X, std_weight=0.3).numpy(),
                               bd.closed_form_reference(X, std_weight=0.3), rtol=1e-9)
    np.testing.assert_allclose(inffs_scores(X, std_weight=0.2, variant="fslib").numpy(),
                               bd.pyifs_reference(X, std_weight=0.2), rtol=1e-9)


def _row(case, t_ref, t_ours, **kw):
    from _common import ratio

    return dict(case=case, size="s", reference="ref", t_ref=t_ref, t_ours=t_ours,
                ratio=ratio(t_ours, t_ref), same_ranking=True, max_rel_err=1e-9, **kw)


def test_summarise_ratio_ours_over_theirs_and_met_per_case_limit():
    rows = [_row("closed", 2.0, 0.05),  # 0.025 <= 0.05: met
            _row("pyifs", 10.0, 0.1),  # 0.01 > 0.005: not met
            _row("appnp", 7e-3, 4e-3), _row("appnp", 7e-3, 5e-3),  # mean (0.571 + 0.714) / 2
            _row("ppr_inf", 2.5, 0.44),  # 0.176 <= 1.0
            _row("large", float("nan"), 30.0, peak_gb=25.0, base_gb=0.1)]  # 25 GB > 24 GB
    lines = bd.summarise(rows).splitlines()
    cells = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines[2:]}
    assert cells["closed"][5:8] == ["0.0250x", bd.TARGETS["closed"], "yes"]
    assert cells["pyifs"][5:8] == ["0.0100x", bd.TARGETS["pyifs"], "no"]
    # two seeds: mean ± sample std of 4/7 and 5/7 = 0.643 ± 0.101
    assert cells["appnp"][5:8] == ["0.643 ± 0.101x", bd.TARGETS["appnp"], "yes"]
    assert cells["ppr_inf"][5] == "0.176x" and cells["ppr_inf"][7] == "yes"
    assert cells["large"][3] == "—" and cells["large"][5] == "—" and cells["large"][7] == "no"
    assert cells["closed"][3] == "2.000" and "±" not in cells["closed"][3]  # one seed
