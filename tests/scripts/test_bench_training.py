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
    # met: ours no slower than the PyG competitor; none for a hop count against its own K=1
    assert by[("AffinityDiffusion", "")]["met"] is (by[("AffinityDiffusion", "")]["ratio"] <= 1)
    assert "met" not in by[("AffinityAttention", "2")]
    assert json.loads((tmp_path / "t.json").read_text())[0]["model"] == "APPNP"


def test_bad_arguments():
    with pytest.raises(SystemExit, match="unknown dataset"):
        bt.main(["--dataset", "nope"])
    with pytest.raises(SystemExit, match="hops"):
        bt.main(["--hops", "0"])


def test_format_table_ratio_and_met_cells():
    rows = [{"model": "APPNP", "hops": "", "ms_per_epoch": 8.0},
            {"model": "AffinityDiffusion", "hops": "", "ms_per_epoch": 6.0, "vs": "APPNP",
             "ratio": 6.0 / 8.0, "met": True, "same_result": True},
            {"model": "AffinityAttention", "hops": "4", "ms_per_epoch": 30.0,
             "vs": "AffinityAttention (K=1)", "ratio": 30.0 / 12.0}]
    lines = bt.format_table(rows).splitlines()
    assert lines[0] == ("| model | ms / epoch | vs | time ours / vs | met | "
                        "same accuracy as vs |")
    assert lines[2] == "| APPNP | 8.00 | — | — | — | — |"
    assert lines[3] == "| AffinityDiffusion | 6.00 | APPNP | 0.75x | yes | yes |"
    assert lines[4] == ("| AffinityAttention (K=4) | 30.00 | AffinityAttention (K=1) | 2.50x "
                        "| — | — |")
