import json
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import bench_simplicial  # noqa: E402

KEYS = {"case", "ours_s", "competitor", "competitor_s", "ratio", "ours_peak_bytes",
        "competitor_peak_bytes"}


def test_naive_window_matches_explicit_loops():
    torch.manual_seed(0)
    n, h, d, w1, w2 = 9, 2, 3, 4, 2
    q, k1, k2, v1, v2 = (torch.randn(n, h, d, dtype=torch.float64) for _ in range(5))
    out = bench_simplicial.naive_window(q, k1, k2, v1, v2, w1, w2)
    for i in range(n):
        pairs = [(j, l) for j in range(max(0, i - w1 + 1), i + 1)
                 for l in range(max(0, i - w2 + 1), i + 1)]
        logits = torch.stack([(q[i] * k1[j] * k2[l]).sum(-1) for j, l in pairs]) / math.sqrt(d)
        s = logits.softmax(0)
        expected = sum(s[p, :, None] * v1[j] * v2[l] for p, (j, l) in enumerate(pairs))
        torch.testing.assert_close(out[i], expected)


def test_quick_main_writes_rows(tmp_path):
    out = tmp_path / "bench.json"
    rows = bench_simplicial.main(["--quick", "--json", str(out)])
    assert len(rows) == 2 and all(KEYS <= set(r) for r in rows)
    for r in rows:
        assert r["ours_s"] > 0 and r["competitor_s"] > 0
        assert math.isclose(r["ratio"], r["competitor_s"] / r["ours_s"])
        assert r["max_abs_diff"] < 1e-3
    assert json.loads(out.read_text())[0]["case"] == rows[0]["case"]
