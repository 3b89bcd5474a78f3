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
    # w1 x w2 positions per query (i - w < j <= i) are ours window=(w1 - 1, w2 - 1)
    ours = bench_simplicial.simplicial_attention(q, k1, k2, v1, v2, window=(w1 - 1, w2 - 1),
                                                 causal=True)
    torch.testing.assert_close(ours, out)
    assert not torch.allclose(ours, bench_simplicial.simplicial_attention(
        q, k1, k2, v1, v2, window=(w1, w2), causal=True))  # one position more: another support


def test_quick_main_writes_rows(tmp_path, capsys):
    # also the kernel comparison's flow end to end on the CPU: there the real Triton import
    # fails (no Triton or no GPU), which must leave the other rows intact
    out = tmp_path / "bench.json"
    rows = bench_simplicial.main(["--quick", "--kernels", "--kernel-dtypes", "float32",
                                  "--threads", "1", "--json", str(out)])
    pairs = [r for r in rows if not r["case"].startswith("kernel: ")]
    assert len(pairs) == 2 and all(KEYS <= set(r) for r in pairs)
    for r in pairs:
        assert r["ours_s"] > 0 and r["competitor_s"] > 0
        assert math.isclose(r["ratio"], r["ours_s"] / r["competitor_s"])  # ours / theirs
        if r["competitor_peak_bytes"] > 0:  # a peak below the sampler's resolution reads 0
            assert math.isclose(r["memory_ratio"],
                                r["ours_peak_bytes"] / r["competitor_peak_bytes"])
        else:
            assert math.isnan(r["memory_ratio"])
        assert r["met"] is (r["ratio"] <= 1.0)
        assert r["max_abs_diff"] < 1e-3
    assert json.loads(out.read_text())[0]["case"] == rows[0]["case"]
    assert len(json.loads(out.read_text())) == len(rows)
    kernels = [r for r in rows if r["case"].startswith("kernel: ")]
    assert len(kernels) == 3 * len(bench_simplicial.QUICK_KERNEL_SIZES)
    try:
        import triton  # noqa: F401
        can_triton = torch.cuda.is_available()
    except ImportError:
        can_triton = False
    for r in kernels:
        if r["kernel"] == "simplicial-attention Triton":
            assert can_triton or r["error"]
        else:
            assert r["error"] is None and r["parity_ok"] and r["tflops"] > 0
    assert "TFLOP/s" in capsys.readouterr().out


def package_stand_in(q, keys, values, w1, w2, causal=True):
    """The Triton function's call signature and layout ``[b, n, h, d]``, computed by the
    package's PyTorch path ``naive_two_simplicial_attend`` (layout ``[b, h, n, d]``, causal all
    pairs), which is the causal window when both widths cover the sequence."""
    from simplicial_attention import naive_two_simplicial_attend

    assert causal and w1 >= q.size(1) and w2 >= q.size(1)
    t = lambda x: x.transpose(1, 2)  # noqa: E731
    out = naive_two_simplicial_attend(t(q), (t(keys[0]), t(keys[1])), (t(values[0]), t(values[1])),
                                      causal=True)
    return t(out)


def test_triton_mapping_matches_ours_through_the_package():
    # ours [N, H, D] -> theirs [1, N, H, D]; the same scale and causal window
    torch.manual_seed(0)
    xs = [torch.randn(20, 3, 8) for _ in range(5)]
    theirs = bench_simplicial.triton_window(package_stand_in, *xs, 20, 24)
    ours = bench_simplicial.simplicial_attention(*xs, window=(19, 23), causal=True)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
    assert bench_simplicial.to_theirs(xs[0]).data_ptr() == xs[0].data_ptr()  # a view


def test_kernel_rows_on_cpu_with_stand_in_and_failures():
    sizes = ((32, 2, 8, 32, 32),)
    rows = bench_simplicial.kernel_rows("cpu", (torch.float32, torch.bfloat16), sizes, repeat=1,
                                        triton_fn=package_stand_in)
    assert [(r["dtype"], r["kernel"]) for r in rows] == [
        (t, k) for k in bench_simplicial.KERNELS for t in ("float32", "bfloat16")]  # Triton last
    for r in rows:
        assert r["error"] is None and r["parity_ok"] and r["ms"] > 0
        n, h, d, w1, w2 = sizes[0]
        assert math.isclose(r["tflops"], 4 * n * h * w1 * w2 * d / (r["ms"] / 1e3) / 1e12)
        assert r["peak_bytes"] is None  # measured on CUDA only
    assert rows[0]["rel_err"] == 0  # ours float32 is the reference

    def broken(*args, **kwargs):
        raise RuntimeError("triton compile failed")

    rows = bench_simplicial.kernel_rows("cpu", (torch.float32,), sizes, repeat=1,
                                        triton_fn=broken, memory_fraction=0.0)
    ours, naive, triton = rows
    assert ours["error"] is None and ours["ms"] > 0
    assert naive["error"].startswith("MemoryError: skipped") and naive["ms"] is None
    assert triton["error"] == "RuntimeError: triton compile failed" and triton["ms"] is None
    table = bench_simplicial.format_kernel_rows(rows)
    assert "triton compile failed" in table and table.count("\n") == 4


def test_format_rows_ratio_ours_over_theirs_and_met():
    rows = [{"case": "window", "ours_s": 0.0687, "competitor": "naive einsum",
             "competitor_s": 0.2898, "ratio": 0.0687 / 0.2898,
             "ours_peak_bytes": int(7.1 * 2**20), "competitor_peak_bytes": int(231.5 * 2**20),
             "memory_ratio": 7.1 / 231.5, "met": True},
            {"case": "all pairs", "ours_s": 0.004, "competitor": "package",
             "competitor_s": 0.002, "ratio": 2.0, "ours_peak_bytes": 2**20,
             "competitor_peak_bytes": 2**20, "memory_ratio": 1.0, "met": False}]
    lines = bench_simplicial.format_rows(rows).splitlines()
    assert lines[0].endswith("| time ours / theirs | ours peak (MiB) | competitor peak (MiB) "
                             "| memory ours / theirs | met |")
    # 68.7 / 289.8 = 0.237; 7.1 / 231.5 = 0.031
    assert lines[2] == ("| window | 68.7 | naive einsum | 289.8 | 0.24x | 7.1 | 231.5 | 0.03x "
                        "| yes |")
    assert lines[3] == "| all pairs | 4.0 | package | 2.0 | 2.00x | 1.0 | 1.0 | 1.00x | no |"
