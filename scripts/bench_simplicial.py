"""Speed and peak memory of 2-simplicial attention: affgraph's blocked kernel vs naive forms.

Two questions, ours and the competitor in the same run:

- sliding window (Roy et al. 2025, causal, ``w1 = 64, w2 = 16``, N = 4096, H = 1, D = 64)
  against the naive ``einsum`` over the same window, which gathers ``[N, w1, D]``, ``[N, w2, D]``
  and materialises the ``[N, w1, w2]`` logits;
- all pairs on a short sequence against the PyTorch path of the PyPI package
  ``simplicial-attention`` (``naive_two_simplicial_attend``, same conventions).

Each row checks that both outputs agree before timing them.

    python scripts/bench_simplicial.py                 # the full sizes
    python scripts/bench_simplicial.py --quick --json out.json
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    markdown_table, peak_memory, proc_status_bytes, set_seed, time_call, write_rows,
)

from affgraph.functional import simplicial_attention  # noqa: E402


def naive_window(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
                 w1: int, w2: int) -> Tensor:
    """Causal sliding-window 2-simplicial attention with the whole ``[N, H, w1, w2]`` logits."""
    n, h, d = q.shape
    i = torch.arange(n, device=q.device)
    j = i[:, None] - w1 + 1 + torch.arange(w1, device=q.device)  # (N, w1)
    l = i[:, None] - w2 + 1 + torch.arange(w2, device=q.device)  # (N, w2)
    K1, V1 = k1[j.clamp(min=0)], v1[j.clamp(min=0)]  # (N, w1, H, D)
    K2, V2 = k2[l.clamp(min=0)], v2[l.clamp(min=0)]  # (N, w2, H, D)
    logits = torch.einsum("nhd,njhd,nlhd->nhjl", q, K1, K2) / math.sqrt(d)
    mask = (j >= 0)[:, None, :, None] & (l >= 0)[:, None, None, :]
    logits = logits.masked_fill(~mask, -math.inf)
    s = logits.flatten(-2).softmax(-1).view(logits.shape)
    return torch.einsum("nhjl,njhe,nlhe->nhe", s, V1, V2)


def _inputs(n: int, h: int, d: int, device: str, dtype: torch.dtype) -> list[Tensor]:
    return [torch.randn(n, h, d, device=device, dtype=dtype) for _ in range(5)]


def cases(quick: bool, device: str, dtype: torch.dtype) -> list[tuple]:
    """``(case, ours, competitor, theirs)`` with zero-argument callables, inputs from seed 0."""
    set_seed(0)
    n, w1, w2, h, d = (256, 32, 8, 1, 32) if quick else (4096, 64, 16, 1, 64)
    n_all = 24 if quick else 128
    from simplicial_attention import naive_two_simplicial_attend

    xw = _inputs(n, h, d, device, dtype)
    xa = _inputs(n_all, h, d, device, dtype)
    bh = [x.permute(1, 0, 2)[None] for x in xa]  # (1, H, N, D)
    return [
        (f"window causal N={n} w1={w1} w2={w2} H={h} D={d} fwd",
         lambda: simplicial_attention(*xw, window=(w1, w2), causal=True),
         "naive einsum [N, w1, w2]", lambda: naive_window(*xw, w1, w2)),
        (f"all pairs causal N={n_all} H={h} D={d} fwd",
         lambda: simplicial_attention(*xa, causal=True),
         "simplicial-attention 0.1.6 (PyTorch path)",
         lambda: naive_two_simplicial_attend(bh[0], (bh[1], bh[2]), (bh[3], bh[4]),
                                             causal=True)[0].permute(1, 0, 2)),
    ]


def _no_grad(fn) -> Tensor:
    with torch.no_grad():
        return fn()


def measure_peaks(quick: bool, device: str, dtype: torch.dtype) -> list[list[int]]:
    """``[ours, competitor]`` peak bytes of one forward call per case.

    CUDA: the allocator's peak. CPU: in a fresh worker process (forking one that already ran
    OpenMP kernels can deadlock) with a fixed glibc mmap threshold, so freed blocks are
    returned and cannot hide the next call's memory; per call, the growth of the resident-set
    high-water mark (reset through ``/proc/self/clear_refs`` after a warm-up call, Linux), as
    ``bench_attention.py`` measures it."""
    if torch.device(device).type == "cuda":
        return [[peak_memory(lambda f=f: _no_grad(f), device=device) for f in (ours, theirs)]
                for _, ours, _, theirs in cases(quick, device, dtype)]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_peak-worker",
           "1" if quick else "0", str(dtype).replace("torch.", "")]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_worker(quick: str, dtype: str) -> None:

    peaks = []
    for _, ours, _, theirs in cases(quick == "1", "cpu", getattr(torch, dtype)):
        pair = []
        for fn in (ours, theirs):
            _no_grad(fn)  # warm-up: one-time allocations are not the call's working memory
            gc.collect()
            before = proc_status_bytes("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # high-water mark := current RSS
            _no_grad(fn)
            pair.append(proc_status_bytes("VmHWM") - before)
        peaks.append(pair)
    print(json.dumps(peaks))


def run(quick: bool = False, device: str = "cpu", dtype: torch.dtype = torch.float32) -> list[dict]:
    """Rows ``case, ours_s, competitor, competitor_s, ratio (competitor / ours),
    ours_peak_bytes, competitor_peak_bytes, max_abs_diff`` (forward passes, median times)."""
    peaks = measure_peaks(quick, device, dtype)
    repeat = 2 if quick else 5
    rows = []
    for (case, ours, competitor, theirs), (p_ours, p_theirs) in tqdm(
            list(zip(cases(quick, device, dtype), peaks)), desc="bench_simplicial", leave=False):
        a, b = _no_grad(ours), _no_grad(theirs)
        err = float((a.float() - b.float()).abs().max())
        if not err <= 1e-2 * (float(b.float().abs().max()) + 1e-12):
            raise RuntimeError(f"{case}: ours and {competitor} disagree (max abs diff {err:.3g})")
        ours_s = time_call(lambda: _no_grad(ours), repeat=repeat, warmup=1, device=device)
        theirs_s = time_call(lambda: _no_grad(theirs), repeat=repeat, warmup=1, device=device)
        rows.append({"case": case, "ours_s": ours_s, "competitor": competitor,
                     "competitor_s": theirs_s, "ratio": theirs_s / ours_s,
                     "ours_peak_bytes": p_ours, "competitor_peak_bytes": p_theirs,
                     "max_abs_diff": err})
    return rows


def format_rows(rows: list[dict]) -> str:
    return markdown_table(
        ["case", "ours (ms)", "competitor", "competitor (ms)", "ratio", "ours peak (MiB)",
         "competitor peak (MiB)"],
        [[r["case"], f"{1e3 * r['ours_s']:.1f}", r["competitor"], f"{1e3 * r['competitor_s']:.1f}",
          f"{r['ratio']:.2f}x", f"{r['ours_peak_bytes'] / 2**20:.1f}",
          f"{r['competitor_peak_bytes'] / 2**20:.1f}"] for r in rows])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="accepted for symmetry with the other scripts; timings use seed 0")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--csv", help="write the rows as CSV")
    args = parser.parse_args(argv)
    rows = run(quick=args.quick, device=args.device, dtype=getattr(torch, args.dtype))
    print(f"device: {args.device}, dtype: {args.dtype}, threads: {torch.get_num_threads()}")
    print(format_rows(rows))
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_peak-worker":
        _peak_worker(*sys.argv[2:4])
    else:
        main()
