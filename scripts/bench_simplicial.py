"""Speed and peak memory of 2-simplicial attention: affgraph's blocked kernel vs naive forms.

Two questions, ours and the competitor in the same run:

- sliding window (Roy et al. 2025, causal, ``w1 = 64, w2 = 16`` positions, ours
  ``window=(63, 15)``, N = 4096, H = 1, D = 64) against the naive ``einsum`` over that window,
  which gathers ``[N, w1, D]``, ``[N, w2, D]`` and materialises the ``[N, w1, w2]`` logits;
- all pairs on a short sequence against the PyTorch path of the PyPI package
  ``simplicial-attention`` (``naive_two_simplicial_attend``, same conventions).

Each row checks that both outputs agree before timing them. Ratios are ours / theirs (time
and peak memory; below 1 means ours is faster or smaller). No case has a target, so "met" is
yes when ours is no slower than theirs (time ratio <= 1.0), the rule every benchmark table of
the scripts states; memory is reported, not judged.

Kernel comparison (``--kernels``, on by default with ``--device cuda``): for each size
``N, H, D, w1, w2`` and dtype, the causal sliding window computed by ours, by the naive
``einsum`` and by the Triton kernel of the PyPI package ``simplicial-attention`` 0.1.6
(``sliding_two_simplicial_attn``, the forward kernel of Roy et al., appendix B), each after a
parity check against ours in float32 on the same inputs: milliseconds, achieved TFLOP/s and
peak memory. The Triton kernel's conventions, read from its source: layout ``[b, n, h, d]``
(ours ``[n, h, d]`` is ``x[None]``, no copy), scale ``D^-1/2``, window
``i - w1 < j <= i, i - w2 < l <= i`` only with ``causal=True`` (without it the kernel masks
nothing and sums over whole query blocks, so that is not a window), ``D <= 64`` (its
``HEAD_DIM`` is fixed at 64), bfloat16 matmuls and a bfloat16-rounded output whatever the
input dtype. So ``w1, w2`` count positions (``i - w1 < j <= i``), and the comparison is ours
``window=(w1 - 1, w2 - 1), causal=True`` (ours: ``i - w <= j <= i``). FLOPs are counted as
``4 N H w1 w2 D`` (``2 D`` per pair ``(j, l)`` for the trilinear logit as a dot product of
``q * k1`` with ``k2``, ``2 D`` for adding ``p (v1 * v2)`` to the output; the softmax is not
counted), the nominal window as in flash attention's ``4 N^2 D``. Every kernel runs in its own
``try``: a failure (missing package or Triton, compile error, out of memory) is printed and
recorded in its row, and the other rows still come.

    python scripts/bench_simplicial.py                 # the full sizes
    python scripts/bench_simplicial.py --quick --json out.json
    python scripts/bench_simplicial.py --device cuda --json cuda.json   # + kernel comparison
    python scripts/bench_simplicial.py --kernels --quick   # the comparison's logic on the CPU
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
from torch import Tensor

try:
    from tqdm.auto import tqdm
except ImportError:  # a bare benchmark machine: no progress bar
    def tqdm(iterable, **_):
        return iterable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    format_met, format_ratio, markdown_table, met, peak_memory, ratio, set_seed, time_call,
    write_rows,
)

from affgraph.functional import simplicial_attention  # noqa: E402


def naive_window(q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
                 w1: int, w2: int) -> Tensor:
    """Causal sliding-window 2-simplicial attention over ``w1 x w2`` positions per query
    (``i - w1 < j <= i``, ``i - w2 < l <= i``: ours ``window=(w1 - 1, w2 - 1)``) with the whole
    ``[N, H, w1, w2]`` logits."""
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


def window_flops(n: int, h: int, d: int, w1: int, w2: int) -> int:
    """Nominal FLOPs of a sliding-window forward: ``2 N H w1 w2 D`` for the trilinear logits
    (one multiply-add per feature and pair) plus as many for the output ``sum p (v1 * v2)``."""
    return 4 * n * h * w1 * w2 * d


def to_theirs(x: Tensor) -> Tensor:
    """Ours ``[N, H, D]`` -> the Triton kernel's ``[b, n, h, d]`` with ``b = 1`` (a view)."""
    return x.unsqueeze(0)


def triton_window(fn, q: Tensor, k1: Tensor, k2: Tensor, v1: Tensor, v2: Tensor,
                  w1: int, w2: int) -> Tensor:
    """``fn`` = ``sliding_two_simplicial_attn`` of ``simplicial-attention`` on our tensors:
    causal window ``i - w1 < j <= i``, ``i - w2 < l <= i`` (ours ``window=(w1 - 1, w2 - 1)``),
    scale ``D^-1/2``; ``[N, H, D]``."""
    q, k1, k2, v1, v2 = (to_theirs(x) for x in (q, k1, k2, v1, v2))
    return fn(q, (k1, k2), (v1, v2), w1=w1, w2=w2, causal=True)[0]


def load_triton():
    """The package's Triton sliding-window function (raises if the package, Triton or CUDA is
    missing)."""
    from simplicial_attention.triton_two_simplicial_attention import sliding_two_simplicial_attn
    return sliding_two_simplicial_attn


def _inputs(n: int, h: int, d: int, device: str, dtype: torch.dtype) -> list[Tensor]:
    return [torch.randn(n, h, d, device=device, dtype=dtype) for _ in range(5)]


def cases(quick: bool, device: str, dtype: torch.dtype) -> list[tuple]:
    """``(case, ours, competitor, theirs)`` with zero-argument callables, inputs from seed 0."""
    set_seed(0)
    n, w1, w2, h, d = (256, 32, 8, 1, 32) if quick else (4096, 64, 16, 1, 64)
    n_all = 24 if quick else 128
    xw = _inputs(n, h, d, device, dtype)
    xa = _inputs(n_all, h, d, device, dtype)
    rows = [
        (f"window causal N={n} w1={w1} w2={w2} H={h} D={d} fwd",
         lambda: simplicial_attention(*xw, window=(w1 - 1, w2 - 1), causal=True),
         "naive einsum [N, w1, w2]", lambda: naive_window(*xw, w1, w2)),
    ]
    try:
        from simplicial_attention import naive_two_simplicial_attend
    except ImportError as e:  # the package is optional: drop its row, keep ours
        print(f"simplicial-attention not importable ({e}); all-pairs row skipped", file=sys.stderr)
        return rows
    bh = [x.permute(1, 0, 2)[None] for x in xa]  # (1, H, N, D)
    return rows + [
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
    peaks = [[peak_memory(lambda f=f: _no_grad(f)) for f in (ours, theirs)]
             for _, ours, _, theirs in cases(quick == "1", "cpu", getattr(torch, dtype))]
    print(json.dumps(peaks))


def run(quick: bool = False, device: str = "cpu", dtype: torch.dtype = torch.float32) -> list[dict]:
    """Rows ``case, ours_s, competitor, competitor_s, ratio (ours / competitor time),
    ours_peak_bytes, competitor_peak_bytes, memory_ratio (ours / competitor), met (time ratio
    <= 1.0), max_abs_diff`` (forward passes, median times)."""
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
        time_ratio = ratio(ours_s, theirs_s)
        rows.append({"case": case, "ours_s": ours_s, "competitor": competitor,
                     "competitor_s": theirs_s, "ratio": time_ratio,
                     "ours_peak_bytes": p_ours, "competitor_peak_bytes": p_theirs,
                     "memory_ratio": ratio(p_ours, p_theirs), "met": met([time_ratio], [1.0]),
                     "max_abs_diff": err})
    return rows


KERNEL_SIZES = ((4096, 1, 64, 64, 16), (16384, 8, 64, 64, 16), (16384, 8, 64, 512, 32))
QUICK_KERNEL_SIZES = ((256, 1, 64, 32, 8), (192, 2, 64, 16, 24))
KERNELS = ("ours", "naive einsum", "simplicial-attention Triton")


def _naive_bytes(n: int, h: int, d: int, w1: int, w2: int, dtype: torch.dtype) -> int:
    """Rough working memory of ``naive_window``: gathered keys/values and ~3 logit tensors."""
    elem = torch.finfo(dtype).bits // 8
    return elem * (2 * n * h * (w1 + w2) * d + 3 * n * h * w1 * w2)


def _tolerance(dtype: torch.dtype, kernel: str) -> float:
    """Largest accepted ``max |out - ours float32| / max |ours float32|``: the Triton kernel
    multiplies in bfloat16 whatever the input dtype; bfloat16 rows round to 8 bits."""
    if kernel.startswith("simplicial-attention") or dtype in (torch.bfloat16, torch.float16):
        return 5e-2
    return 1e-4


def kernel_rows(device: str = "cuda", dtypes: tuple = (torch.bfloat16, torch.float32),
                sizes: tuple = KERNEL_SIZES, repeat: int = 10, triton_fn=None,
                memory_fraction: float = 0.25) -> list[dict]:
    """Rows ``size, dtype, kernel, ms, tflops, peak_bytes, rel_err, parity_ok, error`` for the
    causal sliding window (forward, no grad): ours, the naive ``einsum``, the package's Triton
    kernel (``triton_fn``, default :func:`load_triton`; on a CPU pass a stand-in).

    Each kernel is checked against ours in float32 on the same (dtype-rounded) inputs first;
    a kernel that raises gets ``error`` and no numbers, the others still run. The naive form
    is skipped when its estimated memory exceeds ``memory_fraction`` of the free memory. Peak
    memory is measured on CUDA only (the allocator's peak), ``None`` elsewhere. The Triton
    rows run last, so that a kernel which breaks the CUDA context cannot lose ours; each row
    is also printed as soon as it is done."""
    cuda = torch.device(device).type == "cuda"
    rows = []
    for kernel in KERNELS:
        for n, h, d, w1, w2 in sizes:
            for dtype in dtypes:
                set_seed(0)  # the same inputs for every kernel
                xs = _inputs(n, h, d, device, dtype)
                size = f"N={n} H={h} D={d} w1={w1} w2={w2}"
                row = {"size": size, "dtype": str(dtype).replace("torch.", ""), "kernel": kernel,
                       "ms": None, "tflops": None, "peak_bytes": None, "rel_err": None,
                       "parity_ok": None, "error": None}
                rows.append(row)
                try:
                    with torch.no_grad():
                        ref = simplicial_attention(*(x.float() for x in xs),
                                                   window=(w1 - 1, w2 - 1),
                                                   causal=True)
                    scale = float(ref.abs().max())
                    if kernel == "ours":
                        fn = lambda: simplicial_attention(  # noqa: E731
                            *xs, window=(w1 - 1, w2 - 1), causal=True)
                    elif kernel == "naive einsum":
                        need = _naive_bytes(n, h, d, w1, w2, dtype)
                        free = (torch.cuda.mem_get_info()[0] if cuda
                                else _available_cpu_bytes())
                        if need > memory_fraction * free:
                            raise MemoryError(f"skipped: needs ~{need / 2**30:.1f} GiB, "
                                              f"{free / 2**30:.1f} GiB free")
                        fn = lambda: naive_window(*xs, w1, w2)  # noqa: E731
                    else:
                        tri = triton_fn if triton_fn is not None else load_triton()
                        fn = lambda tri=tri: triton_window(tri, *xs, w1, w2)  # noqa: E731
                    out = _no_grad(fn)
                    if out.shape != ref.shape:
                        raise RuntimeError(f"output shape {tuple(out.shape)} != {tuple(ref.shape)}")
                    rel = float((out.float() - ref).abs().max()) / max(scale, 1e-30)
                    row["rel_err"] = rel
                    row["parity_ok"] = bool(rel <= _tolerance(dtype, kernel))
                    if not row["parity_ok"]:
                        print(f"warning: {kernel} {size} {row['dtype']} differs from ours: "
                              f"relative max error {rel:.3g}", file=sys.stderr)
                    del out
                    sec = time_call(lambda: _no_grad(fn), repeat=repeat, warmup=2, device=device)
                    row["ms"] = 1e3 * sec
                    row["tflops"] = window_flops(n, h, d, w1, w2) / sec / 1e12
                    if cuda:
                        row["peak_bytes"] = peak_memory(lambda: _no_grad(fn), device=device)
                except Exception as e:  # noqa: BLE001 -- isolate every kernel's failure
                    row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                    print(f"{kernel} {size} {row['dtype']}: {row['error']}", file=sys.stderr)
                finally:
                    if cuda:
                        try:
                            torch.cuda.empty_cache()
                        except Exception:  # noqa: BLE001 -- a broken context: keep the rows
                            pass
                print("kernel row: " + json.dumps(row), flush=True)
    return rows


def _available_cpu_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 1 << 62


def format_kernel_rows(rows: list[dict]) -> str:
    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    return markdown_table(
        ["size (causal window)", "dtype", "kernel", "ms", "TFLOP/s", "peak (MiB)",
         "rel. err vs ours fp32", "parity", "error"],
        [[r["size"], r["dtype"], r["kernel"], num(r["ms"], ".3f"), num(r["tflops"], ".3f"),
          "" if r["peak_bytes"] is None else f"{r['peak_bytes'] / 2**20:.1f}",
          num(r["rel_err"], ".2g"), {True: "ok", False: "MISMATCH", None: ""}[r["parity_ok"]],
          r["error"] or ""] for r in rows])


def format_rows(rows: list[dict]) -> str:
    """The Markdown table of :func:`run`'s rows: times, peaks, ours / theirs ratios, met."""
    return markdown_table(
        ["case", "ours (ms)", "competitor", "competitor (ms)", "time ours / theirs",
         "ours peak (MiB)", "competitor peak (MiB)", "memory ours / theirs", "met"],
        [[r["case"], f"{1e3 * r['ours_s']:.1f}", r["competitor"], f"{1e3 * r['competitor_s']:.1f}",
          format_ratio(r["ratio"]), f"{r['ours_peak_bytes'] / 2**20:.1f}",
          f"{r['competitor_peak_bytes'] / 2**20:.1f}", format_ratio(r.get("memory_ratio")),
          format_met(r.get("met"))] for r in rows])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "bfloat16"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="accepted for symmetry with the other scripts; timings use seed 0")
    parser.add_argument("--kernels", action=argparse.BooleanOptionalAction, default=None,
                        help="ours / naive / Triton comparison (default: on with CUDA)")
    parser.add_argument("--kernel-dtypes", nargs="+", default=["bfloat16", "float32"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--kernel-repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--csv", help="write the rows as CSV")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.device(args.device).type == "cuda"
    name = torch.cuda.get_device_name(args.device) if cuda else "CPU"
    print(f"device: {args.device} ({name}), torch {torch.__version__}, dtype: {args.dtype}, "
          f"threads: {torch.get_num_threads()}", flush=True)
    rows = run(quick=args.quick, device=args.device, dtype=getattr(torch, args.dtype))
    print(format_rows(rows), flush=True)
    if args.kernels or (args.kernels is None and cuda):
        krows = kernel_rows(args.device, tuple(getattr(torch, t) for t in args.kernel_dtypes),
                            QUICK_KERNEL_SIZES if args.quick else KERNEL_SIZES,
                            repeat=2 if args.quick else args.kernel_repeat)
        print("\nkernels, causal sliding window, forward; FLOPs = 4 N H w1 w2 D; "
              "the Triton kernel multiplies in bfloat16 for every input dtype")
        print(format_kernel_rows(krows), flush=True)
        rows = rows + [dict(r, case="kernel: " + r["size"]) for r in krows]
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_peak-worker":
        _peak_worker(*sys.argv[2:4])
    else:
        main()
