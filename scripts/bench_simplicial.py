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
import math
import sys
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, peak_memory, set_seed, time_call, write_rows  # noqa: E402

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


def _row(case: str, ours, competitor: str, theirs, device: str, repeat: int) -> dict:
    with torch.no_grad():
        a, b = ours(), theirs()
    err = float((a.float() - b.float()).abs().max())
    scale = float(b.float().abs().max()) + 1e-12
    if not err <= 1e-2 * scale:
        raise RuntimeError(f"{case}: ours and {competitor} disagree (max abs diff {err:.3g})")

    def timed(fn):
        with torch.no_grad():
            return time_call(fn, repeat=repeat, warmup=1, device=device)

    def peak(fn):
        def run():
            if torch.device(device).type == "cpu":
                # peak_memory forks on the CPU: a forked child must not enter the parent's
                # OpenMP thread pool (it deadlocks), so it runs single-threaded
                torch.set_num_threads(1)
            with torch.no_grad():
                fn()
        return peak_memory(run, device=device)

    ours_s, theirs_s = timed(ours), timed(theirs)
    return {"case": case, "ours_s": ours_s, "competitor": competitor, "competitor_s": theirs_s,
            "ratio": theirs_s / ours_s, "ours_peak_bytes": peak(ours),
            "competitor_peak_bytes": peak(theirs), "max_abs_diff": err}


def run(quick: bool = False, device: str = "cpu", dtype: torch.dtype = torch.float32) -> list[dict]:
    """Rows ``case, ours_s, competitor, competitor_s, ratio (competitor / ours),
    ours_peak_bytes, competitor_peak_bytes, max_abs_diff`` (forward passes, median times)."""
    set_seed(0)
    n, w1, w2, h, d = (256, 32, 8, 1, 32) if quick else (4096, 64, 16, 1, 64)
    n_all = 24 if quick else 128
    repeat = 2 if quick else 5
    rows = []
    cases = ["window", "all_pairs"]
    for case in tqdm(cases, desc="bench_simplicial", leave=False):
        if case == "window":
            xs = _inputs(n, h, d, device, dtype)
            rows.append(_row(
                f"window causal N={n} w1={w1} w2={w2} H={h} D={d} fwd",
                lambda: simplicial_attention(*xs, window=(w1, w2), causal=True),
                "naive einsum [N, w1, w2]", lambda: naive_window(*xs, w1, w2), device, repeat))
        else:
            from simplicial_attention import naive_two_simplicial_attend

            xs = _inputs(n_all, h, d, device, dtype)
            bh = [x.permute(1, 0, 2)[None] for x in xs]  # (1, H, N, D)
            rows.append(_row(
                f"all pairs causal N={n_all} H={h} D={d} fwd",
                lambda: simplicial_attention(*xs, causal=True),
                "simplicial-attention 0.1.6 (PyTorch path)",
                lambda: naive_two_simplicial_attend(bh[0], (bh[1], bh[2]), (bh[3], bh[4]),
                                                    causal=True)[0].permute(1, 0, 2),
                device, repeat))
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
    main()
