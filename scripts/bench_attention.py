"""Benchmark: affgraph attention against its competitor on the same inputs, in one run.

Cases (issue 2), forward only, ``q, k, v`` of shape ``[N, H, 64]``:

- ``complete``: all pairs, n = 2048, vs ``scaled_dot_product_attention`` on ``(1, H, N, D)``.
  Target: <= 1.15x SDPA's time.
- ``causal``: n = 2048, vs SDPA ``is_causal=True``. Target: <= 1.15x SDPA's time.
- ``window``: |i - j| <= 128, n = 16384, vs SDPA with the dense ``[N, N]`` boolean mask.
  Target: faster than the dense mask.
- ``knn``: a k = 16 nearest-neighbour graph of n = 100,000 random 3-D points (built with
  scikit-learn, not timed), H = 1, vs PyG ``TransformerConv``'s propagation (``propagate`` with
  the same ``query``, ``key``, ``value``: the same math). Targets: >= 2.5x faster, <= 0.5x its
  peak memory.

Each case checks that both sides agree, then times them alternately (``--repeat`` rounds,
median per seed) and reports mean ± std over ``--seeds`` (new inputs per seed; the bare mean
for one seed). If ``scripts/bench_simplicial.py`` exists its ``run(quick, device, dtype)``
rows are appended.

Ratios are ours / theirs (time, and peak memory where measured): below 1 means ours is
faster or smaller. "met" is yes when every ratio of the row is at most its limit: the case's
target above (1.15, 1.0, 0.4 and 0.5 for kNN memory), and 1.0 (ours no slower than theirs)
for the appended 2-simplicial rows, which have no target.

    python scripts/bench_attention.py --quick                     # seconds
    python scripts/bench_attention.py --json bench_attention.json # the full sizes
    python scripts/bench_attention.py --device cuda --dtype bfloat16
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    format_met, format_ratio, markdown_table, mean_std, met, peak_memory, ratio, set_seed,
    time_call, write_rows,
)

from affgraph.functional import attention  # noqa: E402

CASES = ("complete", "causal", "window", "knn")
FULL = {"complete": 2048, "causal": 2048, "window": 16384, "knn": 100_000}
QUICK = {"complete": 256, "causal": 256, "window": 512, "knn": 2000}
WINDOW, KNN_K, DIM = 128, 16, 64
QUICK_WINDOW = 32
#: per case: the target's wording and the limit of the ours / theirs time ratio
TARGETS = {"complete": ("time <= 1.15x SDPA", 1.15),
           "causal": ("time <= 1.15x SDPA", 1.15),
           "window": ("time <= 1.0x the dense mask", 1.0),
           "knn": ("time <= 0.4x (>= 2.5x faster)", 0.4)}
#: the limit of the kNN case's ours / theirs peak-memory ratio
KNN_MEMORY_LIMIT = 0.5


def knn_edge_index(n: int, k: int, seed: int) -> torch.Tensor:
    """``[2, n*k]`` edges ``j -> i`` from each point's k nearest neighbours (3-D points)."""
    from sklearn.neighbors import NearestNeighbors

    pts = torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)).numpy()
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(pts).kneighbors(pts)
    src = torch.from_numpy(idx[:, 1:]).reshape(-1)
    return torch.stack([src, torch.arange(n).repeat_interleave(k)])


def paired_times(ours: Callable, theirs: Callable, repeat: int, device: str) -> tuple[float, float]:
    """Median times of two functions timed alternately (so load changes hit both alike)."""
    a, b = [], []
    with torch.no_grad():
        ours(), theirs()  # warm-up
        for _ in range(repeat):
            a.append(time_call(ours, repeat=1, warmup=0, device=device))
            b.append(time_call(theirs, repeat=1, warmup=0, device=device))
    return statistics.median(a), statistics.median(b)


def make_case(case: str, n: int, heads: int, device: str, dtype: torch.dtype, seed: int,
              window: int):
    """``(ours, competitor_name, theirs)`` closures over fresh inputs for one seed."""
    set_seed(seed)
    q, k, v = (torch.randn(n, heads, DIM, device=device, dtype=dtype) for _ in range(3))
    bhnd = [t.transpose(0, 1).contiguous().unsqueeze(0) for t in (q, k, v)]  # (1, H, N, D)
    if case in ("complete", "causal"):
        causal = case == "causal"
        return (lambda: attention(q, k, v, causal=causal), "SDPA" + (" is_causal" if causal else ""),
                lambda: F.scaled_dot_product_attention(*bhnd, is_causal=causal)[0].transpose(0, 1))
    if case == "window":
        i = torch.arange(n, device=device)
        mask = (i[:, None] - i[None, :]).abs() <= window  # (N, N)
        return (lambda: attention(q, k, v, window=window), "SDPA + dense mask",
                lambda: F.scaled_dot_product_attention(*bhnd, attn_mask=mask)[0].transpose(0, 1))
    from torch_geometric.nn import TransformerConv

    ei = knn_edge_index(n, KNN_K, seed).to(device)
    conv = TransformerConv(DIM, DIM, heads=heads, root_weight=False).to(device)
    return (lambda: attention(q, k, v, ei), "TransformerConv propagate",
            lambda: conv.propagate(ei, query=q, key=k, value=v, edge_attr=None))


def run(cases: Sequence[str] = CASES, *, quick: bool = False, device: str = "cpu",
        dtype: torch.dtype = torch.float32, seeds: Sequence[int] = (0,),
        heads: Sequence[int] = (1, 8), repeat: int = 5) -> list[dict]:
    """One row per (case, heads): mean times over seeds, ratio ours/competitor, target met."""
    sizes = QUICK if quick else FULL
    window = QUICK_WINDOW if quick else WINDOW
    tol = 3e-2 if dtype in (torch.bfloat16, torch.float16) else 1e-3
    jobs = [(c, h) for c in cases for h in ((1,) if c == "knn" else heads)]
    rows = []
    for case, h in tqdm(jobs, desc="bench_attention", leave=False):
        n = sizes[case]
        ours_t, theirs_t, errs, peaks = [], [], [], None
        for seed in seeds:
            ours, name, theirs = make_case(case, n, h, device, dtype, seed, window)
            with torch.no_grad():
                a, b = ours(), theirs()
            err = float((a.float() - b.float()).abs().max())
            if not err <= tol * (float(b.float().abs().max()) + 1e-12):
                raise RuntimeError(f"{case}: affgraph and {name} disagree (max abs diff {err:.3g})")
            del a, b
            t_o, t_t = paired_times(ours, theirs, repeat, device)
            ours_t.append(t_o), theirs_t.append(t_t), errs.append(err)
            if case == "knn" and peaks is None:
                del ours, theirs
                peaks = measure_peaks(case, n, h, device, dtype, seed, window)
        time_ratio = ratio(statistics.fmean(ours_t), statistics.fmean(theirs_t))
        target, limit = TARGETS[case]
        label = {"window": f"window w={window}", "knn": f"kNN k={KNN_K}"}.get(case, case)
        row = {"case": f"{label}, n={n}, H={h}", "ours_s": statistics.fmean(ours_t),
               "ours_std_s": statistics.stdev(ours_t) if len(ours_t) > 1 else 0.0,
               "competitor": name, "competitor_s": statistics.fmean(theirs_t),
               "competitor_std_s": statistics.stdev(theirs_t) if len(theirs_t) > 1 else 0.0,
               "ratio": time_ratio, "target": target,
               "met": met([time_ratio], [limit]), "max_abs_diff": max(errs), "seeds": len(seeds),
               "ours_ms": mean_std(ours_t, 1e3), "competitor_ms": mean_std(theirs_t, 1e3)}
        if peaks is not None:
            row.update(ours_peak_bytes=peaks[0], competitor_peak_bytes=peaks[1],
                       memory_ratio=ratio(peaks[0], max(peaks[1], 1)))
            row["met"] = met([time_ratio, row["memory_ratio"]], [limit, KNN_MEMORY_LIMIT])
            row["target"] += f", peak memory <= {KNN_MEMORY_LIMIT}x"
        rows.append(row)
    return rows


def measure_peaks(case: str, n: int, heads: int, device: str, dtype: torch.dtype, seed: int,
                  window: int) -> list[int]:
    """Peak bytes of one forward call of ours and of the competitor.

    CUDA: the allocator's peak (``_common.peak_memory``). CPU: in one fresh worker process
    (forking a process that already ran sparse/OpenMP kernels can deadlock): for each side, the
    growth of the resident set's high-water mark over the resident set before the call, the
    mark being reset through ``/proc/self/clear_refs`` after one warm-up call (Linux)."""
    if device.startswith("cuda"):
        ours, _, theirs = make_case(case, n, heads, device, dtype, seed, window)
        return [peak_memory(lambda f=f: _no_grad(f), device=device) for f in (ours, theirs)]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_peak-worker", case, str(n),
           str(heads), str(dtype).replace("torch.", ""), str(seed), str(window)]
    # a fixed mmap threshold: every block > 128 KiB is mapped and unmapped on free, so glibc
    # does not keep freed blocks around to hide the next call's working memory
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return [int(x) for x in out.stdout.strip().splitlines()[-1].split()]


def _peak_worker(case: str, n: str, heads: str, dtype: str, seed: str, window: str) -> None:
    ours, _, theirs = make_case(case, int(n), int(heads), "cpu", getattr(torch, dtype), int(seed),
                                int(window))
    peaks = [peak_memory(lambda f=f: _no_grad(f)) for f in (ours, theirs)]
    print(*peaks)


def _no_grad(fn: Callable) -> None:
    with torch.no_grad():
        fn()


def simplicial_rows(quick: bool, device: str, dtype: torch.dtype,
                    threads: int | None = None) -> list[dict]:
    """Rows of ``scripts/bench_simplicial.py``'s ``run`` if that file exists, computed in a
    fresh process (its fork-based CPU memory probe must not inherit this process's threads)."""
    path = Path(__file__).resolve().parent / "bench_simplicial.py"
    if not path.exists():
        return []
    code = ("import json, sys, torch; sys.path.insert(0, sys.argv[1]); "
            "import bench_simplicial as b; t = int(sys.argv[5]); t and torch.set_num_threads(t); "
            "rows = b.run(quick=sys.argv[2] == '1', device=sys.argv[3], dtype=getattr(torch, sys.argv[4])); "
            "print(json.dumps(rows, default=float))")
    out = subprocess.run([sys.executable, "-c", code, str(path.parent), "1" if quick else "0",
                          device, str(dtype).replace("torch.", ""), str(threads or 0)],
                         check=True, capture_output=True, text=True)
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    for r in rows:
        r.setdefault("ours_ms", f"{1e3 * r['ours_s']:.1f}")
        r.setdefault("competitor_ms", f"{1e3 * r['competitor_s']:.1f}")
        r.setdefault("ratio", ratio(r["ours_s"], r["competitor_s"]))
        r.setdefault("target", "time <= 1.0x (no target)")
        r.setdefault("met", met([r["ratio"]], [1.0]))
        r["case"] = "2-simplicial: " + r["case"]
    return rows


def format_rows(rows: list[dict]) -> str:
    """The Markdown table of :func:`run`'s rows: times, ours / theirs ratios, target, met."""
    def mem(r: dict) -> str:
        if "ours_peak_bytes" not in r:
            return "—"
        return f"{r['ours_peak_bytes'] / 2**20:.0f} / {r['competitor_peak_bytes'] / 2**20:.0f}"

    return markdown_table(
        ["case", "ours (ms)", "competitor", "competitor (ms)", "time ours / theirs",
         "peak MiB (ours / theirs)", "memory ours / theirs", "target", "met"],
        [[r["case"], r["ours_ms"], r["competitor"], r["competitor_ms"], format_ratio(r["ratio"]),
          mem(r), format_ratio(r.get("memory_ratio")), r["target"], format_met(r.get("met"))]
         for r in rows])


def main(argv: list[str] | None = None) -> list[dict]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_peak-worker"]:
        _peak_worker(*argv[1:])
        return []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=CASES)
    parser.add_argument("--heads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing rounds per seed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-simplicial", action="store_true", help="skip the 2-simplicial rows")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--csv", help="write the rows as CSV")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.cases, quick=args.quick, device=args.device, dtype=dtype, seeds=args.seeds,
               heads=args.heads, repeat=args.repeat)
    if not args.no_simplicial:
        rows += simplicial_rows(args.quick, args.device, dtype, args.threads)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"device: {args.device} ({name}), dtype: {args.dtype}, threads: "
          f"{torch.get_num_threads()}, seeds: {args.seeds}")
    print(format_rows(rows))
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    main()
