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
    assert counts["simplicial"] == 16 * width + 6 * (width * width + width) + hidden * (width + 2) + 1
    assert counts["attention"] == counts["attention-K"]
    # the standard models are padded to within one readout unit of the simplicial budget
    assert abs(counts["attention"] - counts["simplicial"]) <= (width + 2) // 2 + 1


def test_forward_shapes_and_unknown_model():
    model = higher_order.Match3Net("simplicial", 7, 8, 16)
    assert model(torch.randint(0, 7, (3, 5))).shape == (3, 5)
    with pytest.raises(ValueError, match="unknown model"):
        higher_order.Match3Net("mamba", 7, 8, 16)


def test_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "rows.json"
    plot = tmp_path / "acc.png"
    rows = higher_order.main(["--quick", "--json", str(out), "--csv", str(tmp_path / "rows.csv"),
                              "--plot", str(plot)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(rows))
    assert {r["model"] for r in rows} == {"attention", "attention-4", "simplicial"}
    assert {r["seq_len"] for r in rows} == {4, 6} and {r["seed"] for r in rows} == {0, 1}
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in rows)
    assert plot.stat().st_size > 0 and (tmp_path / "rows.csv").read_text().startswith("model,")
    table = capsys.readouterr().out
    assert "| simplicial |" in table and "N=6" in table
    # re-summarising the JSON reproduces the table without training
    again = higher_order.main(["--from-json", str(out)])
    assert again == json.loads(out.read_text())
    assert higher_order.summarize(rows) in capsys.readouterr().out
