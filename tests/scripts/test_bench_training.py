"""bench_training.py end to end at a tiny size."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_training as bt  # noqa: E402


def test_tiny_run_rows_ratios_and_table(tmp_path, capsys):
    rows = bt.main(["--dataset", "csbm-0.8", "--epochs", "15", "--repeat", "1", "--hops", "1",
                    "2", "--models", "APPNP", "TransformerConv", "AffinityAttention",
                    "AffinityDiffusion", "AffinityDiffusionCR", "--json",
                    str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    by = {(r["model"], r["hops"]): r for r in rows}
    assert list(by) == [("APPNP", ""), ("TransformerConv", ""), ("AffinityAttention", "1"),
                        ("AffinityAttention", "2"), ("AffinityDiffusion", ""),
                        ("AffinityDiffusionCR", "1"), ("AffinityDiffusionCR", "2")]
    t = {k: r["ms_per_epoch"] for k, r in by.items()}
    assert all(v > 0 for v in t.values())
    assert by[("AffinityDiffusion", "")]["ratio"] == pytest.approx(
        t[("AffinityDiffusion", "")] / t[("APPNP", "")])
    assert by[("AffinityAttention", "1")]["vs"] == "TransformerConv"
    assert by[("AffinityAttention", "2")]["vs"] == "AffinityAttention (K=1)"
    assert by[("AffinityDiffusionCR", "2")]["vs"] == "AffinityDiffusionCR (K=1)"  # its own K=1
    assert "vs" not in by[("AffinityDiffusionCR", "1")]
    assert "ratio" not in by[("APPNP", "")]
    # the same propagation from the same weights: the same training run
    assert by[("AffinityDiffusion", "")]["same_result"] is True
    assert "| AffinityDiffusion |" in out and "| yes |" in out
    assert json.loads((tmp_path / "t.json").read_text())[0]["model"] == "APPNP"


def test_bad_arguments():
    with pytest.raises(SystemExit, match="unknown dataset"):
        bt.main(["--dataset", "nope"])
    with pytest.raises(SystemExit, match="hops"):
        bt.main(["--hops", "0"])
