import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from _common import (  # noqa: E402
    markdown_table, mean_std, peak_memory, proc_status_bytes, set_seed, time_call, write_rows,
)


def test_mean_std_hand_computed():
    # mean 0.81, sample std sqrt(((0.01)^2 * 2) / 1) = 0.014142 -> x100 = 81.0 ± 1.4
    assert mean_std([0.80, 0.82], scale=100) == "81.0 ± 1.4"
    # two equal values have a measured spread of 0, which is printed
    assert mean_std([0.5, 0.5], scale=100) == "50.0 ± 0.0"


def test_mean_std_single_value_is_the_bare_mean():
    # one seed or repeat: no "± 0.0" and no "± nan", just the mean
    assert mean_std([0.5], scale=100, digits=2) == "50.00"
    assert mean_std([0.0123], scale=1e3) == "12.3"
    assert "±" not in mean_std([float("inf")])
    assert mean_std([1.0, float("inf")]) == "inf"  # a spread that is not finite
    with pytest.raises(ValueError, match="values"):
        mean_std([])


def test_ratio_is_ours_over_theirs():
    from _common import ratio

    # ours 2.2 ms vs theirs 4.6 ms: 2.2 / 4.6 = 0.47826...
    assert ratio(2.2e-3, 4.6e-3) == pytest.approx(0.478260869)
    assert ratio(3.0, 1.5) == 2.0  # ours twice as slow
    assert math.isnan(ratio(float("nan"), 1.0)) and math.isnan(ratio(1.0, 0.0))


def test_met_rule_and_cells():
    from _common import format_met, format_ratio, met

    assert met([1.0], [1.0]) is True  # ours == theirs meets "ours <= theirs"
    assert met([1.01], [1.0]) is False
    assert met([0.39, 0.06], [0.4, 0.5]) is True  # time and memory targets both hold
    assert met([0.39, 0.6], [0.4, 0.5]) is False  # the memory target fails
    assert met([float("nan")], [1.0]) is None
    with pytest.raises(ValueError, match="limits"):
        met([1.0, 2.0], [1.0])
    assert format_ratio(0.478260869) == "0.48x" and format_ratio(float("nan")) == "—"
    assert format_ratio(None) == "—" and format_ratio(12.345, 1) == "12.3x"
    assert [format_met(v) for v in (True, False, None)] == ["yes", "no", "—"]


def test_markdown_table_layout():
    table = markdown_table(["model", "acc"], [["gcn", "81.5"], ["gat", "83.0"]])
    assert table.splitlines() == ["| model | acc |", "|---|---|", "| gcn | 81.5 |",
                                  "| gat | 83.0 |"]


def test_write_rows_roundtrip(tmp_path):
    rows = [{"a": 1, "b": 2.5}, {"a": 2, "c": "x"}]
    write_rows(rows, csv_path=str(tmp_path / "r.csv"), json_path=str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == rows
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0] == "a,b,c" and lines[1] == "1,2.5," and lines[2] == "2,,x"


def test_set_seed_determinism():
    set_seed(3)
    a = torch.rand(4)
    set_seed(3)
    assert torch.equal(a, torch.rand(4))


def test_time_and_peak_memory_measure_something():
    calls = []
    t = time_call(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 5 and t >= 0.0
    # a 400 MB allocation touched in full must show up in the reset high-water mark (in a
    # fresh process: see test_proc_status_bytes_tracks_an_allocation)
    import subprocess

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / 'scripts')!r})\n"
            "import torch\nfrom _common import peak_memory\n"
            "print(peak_memory(lambda: torch.ones(100_000_000).sum()))\n")
    grow = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=True).stdout.split()[-1])
    assert grow >= 300 * 2**20


def test_proc_status_bytes_tracks_an_allocation():
    # in a fresh process: in this one, pages that earlier tests freed may still be resident
    # in the allocator's heap and serve the new tensor without any growth of VmRSS
    import subprocess

    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / 'scripts')!r})\n"
            "import torch\nfrom _common import proc_status_bytes\n"
            "before = proc_status_bytes('VmRSS')\n"
            "x = torch.ones(50_000_000)  # 200 MB, touched\n"
            "print(proc_status_bytes('VmRSS') - before, proc_status_bytes('VmHWM'), "
            "proc_status_bytes('VmRSS'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    grown, hwm, rss = (int(v) for v in out)
    assert 150 * 2**20 <= grown <= 400 * 2**20
    assert hwm >= rss
    assert proc_status_bytes("VmHWM") >= proc_status_bytes("VmRSS")


def test_load_rows_concatenates_and_rejects_bad_files(tmp_path):
    from _common import load_rows

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('[{"x": 1}]')
    b.write_text('[{"x": 2}, {"x": 3}]')
    assert [r["x"] for r in load_rows([str(a), str(b)])] == [1, 2, 3]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read rows"):
        load_rows([str(tmp_path / "bad.json")])
    (tmp_path / "obj.json").write_text('{"x": 1}')
    with pytest.raises(SystemExit, match="list of rows"):
        load_rows([str(tmp_path / "obj.json")])
    with pytest.raises(SystemExit, match="cannot read rows"):
        load_rows([str(tmp_path / "missing.json")])


def test_resolve_device_errors_clearly():
    from _common import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(SystemExit, match="bad --device"):
        resolve_device("nonsense")
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="CUDA is not available"):
            resolve_device("cuda")
