"""Benchmark: Inf-FS and K-hop diffusion against their reference implementations, in one run.

Five cases, each timed against its competitor in the same process and seed:

- ``closed``: Inf-FS (``variant="paper"``) on n features x m samples vs the closed form as the
  reference code computes it (numpy float64: affinity, full ``eigvalsh`` for rho, ``inv``);
  same ranking required. Target >= 20x at 6,000 x 100.
- ``pyifs``: ``variant="fslib"`` vs the PyPI port ``PyIFS`` 0.0.3 (Python loops over all
  n^2 entries); same ranking required. Target >= 200x at 2,000 x 100.
- ``large``: Inf-FS at 100,000 features x 200 samples (the dense matrix alone would be 80 GB),
  run in a worker process; reports wall time, the worker's peak resident memory and the
  number of products with the affinity operator (each one pass over its |Z^T Z| tiles).
- ``appnp``: K = 10 diffusion (``AffinityDiffusion``) vs PyG ``APPNP`` on a PubMed-sized graph
  (19,717 nodes, 88,648 directed edges, 500 channels; random, or PubMed itself with
  ``--data-root``). Target <= 1.1x APPNP's time.
- ``ppr_inf``: the closed form, ``AffinityDiffusion(K=math.inf)`` (CG solves forward and
  backward), vs PyG ``APPNP`` with the K at which its truncated series reaches the same
  tolerance, (1 - alpha)^K <= 1e-6 (K = 132 at alpha = 0.1); forward and backward
  on 64 channels (a hidden layer's width) of the same graph. No target.

Ratios are ours / theirs (time; below 1 means ours is faster), mean ± std over ``--seeds``
(the bare mean for one seed). "met" is yes when the mean ratio is at most the case's limit:
the target above (0.05 for >= 20x, 0.005 for >= 200x, 1.1), 1.0 (ours no slower than theirs)
for ``ppr_inf``, which has no target, and for ``large`` its peak resident memory over the
24 GB budget, at most 1.0.

    python scripts/bench_diffusion.py --quick                # small sizes, seconds
    python scripts/bench_diffusion.py --json bench.json      # the full sizes (~10 min on 2 cores)
    python scripts/bench_diffusion.py --cases appnp ppr_inf --data-root /path/to/data
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.stats
import torch
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    format_met, markdown_table, mean_std, met, proc_status_bytes, ratio, set_seed, time_call,
    write_rows,
)

from affgraph.inffs import inffs_scores  # noqa: E402

CASES = ("closed", "pyifs", "large", "appnp", "ppr_inf")
FULL = {"closed": (6000, 100), "pyifs": (2000, 100), "large": (100_000, 200),
        "appnp": (19_717, 88_648, 500), "ppr_inf": (19_717, 88_648, 64)}
QUICK = {"closed": (200, 30), "pyifs": (80, 20), "large": (1500, 30), "appnp": (1000, 4000, 16),
         "ppr_inf": (1000, 4000, 8)}
TARGETS = {"closed": "time <= 0.05x (>= 20x faster)", "pyifs": "time <= 0.005x (>= 200x faster)",
           "large": "peak RSS <= 24 GB", "appnp": "time <= 1.1x APPNP",
           "ppr_inf": "time <= 1.0x (no target)"}
#: the limit of each case's ours / theirs time ratio (``large``: peak RSS / the budget)
LIMITS = {"closed": 1 / 20, "pyifs": 1 / 200, "large": 1.0, "appnp": 1.1, "ppr_inf": 1.0}
#: the memory budget of the ``large`` case, in GB
LARGE_BUDGET_GB = 24.0


def _features(m: int, n: int, seed: int) -> np.ndarray:
    """Gaussian features with varied scales and some correlated blocks."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)) * rng.uniform(0.5, 2.0, size=n)
    k = n // 10
    X[:, :k] += rng.normal(size=(m, 1))  # a correlated block
    return X


def _same_ranking(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(np.argsort(-a, kind="stable"), np.argsort(-b, kind="stable")))


# ---- references ------------------------------------------------------------------------------

def closed_form_reference(X: np.ndarray, std_weight: float = 0.5, r: float = 0.9) -> np.ndarray:
    """Inf-FS (ICCV 2015) as the reference code does it: dense affinity, eig, inv (float64)."""
    s = X.std(0, ddof=1)
    s = (s - s.min()) / (s.max() - s.min())
    C = np.nan_to_num(scipy.stats.spearmanr(X).correlation)
    A = std_weight * np.maximum.outer(s, s) + (1 - std_weight) * (1 - np.abs(C))
    rho = np.linalg.eigvalsh(A).max()
    I = np.eye(A.shape[0])
    return (np.linalg.inv(I - (r / rho) * A) - I).sum(1)


def pyifs_reference(X: np.ndarray, std_weight: float = 0.5) -> np.ndarray:
    """PyIFS's ``infFS`` (FSLib's graph); its ``alpha`` weighs the correlation: 1 - std_weight."""
    mod = importlib.import_module("PyIFS.InfFS")
    mod.stats, mod.math = scipy.stats, math  # PyIFS 0.0.3 forgets to import them
    _, weight = mod.InfFS().infFS(X.copy(), None, 1.0 - std_weight, 0, 0)
    return np.asarray(weight)


# ---- cases -------------------------------------------------------------------------------------

def case_closed(n: int, m: int, seed: int, repeat: int) -> dict:
    X = _features(m, n, seed)
    t0 = time.perf_counter()
    ref = closed_form_reference(X)
    t_ref = time.perf_counter() - t0
    ours = inffs_scores(X).numpy()
    t_ours = time_call(lambda: inffs_scores(X), repeat=repeat, warmup=0)
    return dict(case="closed", size=f"{n} x {m}", reference="eigvalsh + inv (numpy)",
                t_ref=t_ref, t_ours=t_ours, ratio=ratio(t_ours, t_ref),
                same_ranking=_same_ranking(ours, ref),
                max_rel_err=float(np.abs(ours - ref).max() / np.abs(ref).max()))


def case_pyifs(n: int, m: int, seed: int, repeat: int) -> dict:
    X = _features(m, n, seed)
    t0 = time.perf_counter()
    ref = pyifs_reference(X)
    t_ref = time.perf_counter() - t0
    ours = inffs_scores(X, variant="fslib").numpy()
    t_ours = time_call(lambda: inffs_scores(X, variant="fslib"), repeat=repeat, warmup=1)
    return dict(case="pyifs", size=f"{n} x {m}", reference="PyIFS 0.0.3", t_ref=t_ref,
                t_ours=t_ours, ratio=ratio(t_ours, t_ref), same_ranking=_same_ranking(ours, ref),
                max_rel_err=float(np.abs(ours - ref).max() / np.abs(ref).max()))


def _rss(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in bytes (Linux); elsewhere the
    ``ru_maxrss`` high-water mark, which on Linux would include the parent's peak (it survives
    fork and exec)."""
    try:
        return proc_status_bytes(field)
    except (OSError, RuntimeError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _large_worker(n: int, m: int, seed: int, dense_bytes: int) -> None:
    """Runs in a fresh process: prints time, peak RSS and the resident size before the work."""
    from affgraph.inffs import FeatureAffinity

    products = [0]
    matvec = FeatureAffinity.matvec

    def counted(self, v):  # the operator products (each one pass over the tiles)
        products[0] += 1
        return matvec(self, v)

    FeatureAffinity.matvec = counted
    X = _features(m, n, seed)
    base = _rss("VmRSS")
    t0 = time.perf_counter()
    s = inffs_scores(X, max_dense_bytes=dense_bytes).numpy()
    t = time.perf_counter() - t0
    peak = _rss("VmHWM")
    print(json.dumps(dict(t=t, peak=peak, base=base, finite=bool(np.isfinite(s).all()),
                          top=int(np.argmax(s)), products=products[0])))


def case_large(n: int, m: int, seed: int, quick: bool) -> dict:
    dense_bytes = 0 if quick else 2 ** 30  # quick mode forces the tiled path at small n
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_large-worker",
           str(n), str(m), str(seed), str(dense_bytes)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return dict(case="large", size=f"{n} x {m}", reference="(dense: "
                f"{8 * n * n / 1e9:.1f} GB matrix)", t_ref=float("nan"), t_ours=res["t"],
                ratio=float("nan"), same_ranking=res["finite"], max_rel_err=float("nan"),
                peak_gb=res["peak"] / 1e9, base_gb=res["base"] / 1e9, products=res["products"])


def _pubmed_sized(num_nodes: int, num_edges: int, channels: int, seed: int):
    from torch_geometric.utils import to_undirected

    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, num_nodes, (2, num_edges // 2), generator=g)
    ei = to_undirected(ei[:, ei[0] != ei[1]], num_nodes=num_nodes)
    x = torch.randn(num_nodes, channels, generator=g)
    return x, ei


def _graph(num_nodes: int, num_edges: int, channels: int, seed: int,
           data_root: str | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``(x, edge_index, name)``: PubMed from ``data_root``, else a random graph of the sizes."""
    if data_root:
        from affgraph.datasets import load_planetoid

        data = load_planetoid("PubMed", root=data_root)
        return data.x, data.edge_index, "PubMed"
    set_seed(seed)
    x, ei = _pubmed_sized(num_nodes, num_edges, channels, seed)
    return x, ei, "random"


def case_appnp(num_nodes: int, num_edges: int, channels: int, seed: int, repeat: int,
               data_root: str | None, device: str = "cpu") -> dict:
    from torch_geometric.nn import APPNP

    from affgraph.nn import AffinityDiffusion

    x, ei, name = _graph(num_nodes, num_edges, channels, seed, data_root)
    x, ei = x.to(device), ei.to(device)
    ours_layer, ref_layer = AffinityDiffusion(K=10, alpha=0.1), APPNP(K=10, alpha=0.1)
    with torch.no_grad():
        diff = float((ours_layer(x, ei) - ref_layer(x, ei)).abs().max())
        t_ref = time_call(lambda: ref_layer(x, ei), repeat=repeat, warmup=1, device=device)
        t_ours = time_call(lambda: ours_layer(x, ei), repeat=repeat, warmup=1, device=device)
    return dict(case="appnp", size=f"{name} N={x.size(0)} E={ei.size(1)} C={x.size(1)} "
                f"on {device}",
                reference="PyG APPNP(K=10)", t_ref=t_ref, t_ours=t_ours,
                ratio=ratio(t_ours, t_ref),
                same_ranking=diff < 1e-4, max_rel_err=diff)


def case_ppr_inf(num_nodes: int, num_edges: int, channels: int, seed: int, repeat: int,
                 data_root: str | None, device: str = "cpu", alpha: float = 0.1,
                 tol: float = 1e-6) -> dict:
    from torch_geometric.nn import APPNP

    from affgraph.nn import AffinityDiffusion

    x0, ei, name = _graph(num_nodes, num_edges, 1, seed, data_root)
    n = x0.size(0)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, generator=g).to(device).requires_grad_(True)
    grad = torch.randn(n, channels, generator=g).to(device)
    ei = ei.to(device)
    hops = math.ceil(math.log(tol) / math.log(1.0 - alpha))  # (1 - alpha)^K <= tol
    ours_layer = AffinityDiffusion(K=math.inf, alpha=alpha, tol=tol)
    ref_layer = APPNP(K=hops, alpha=alpha)

    def step(layer: torch.nn.Module) -> torch.Tensor:
        x.grad = None
        out = layer(x, ei)
        out.backward(grad)
        return out.detach()

    out_ours, out_ref = step(ours_layer), step(ref_layer)
    scale = float(out_ref.abs().max())
    diff = float((out_ours - out_ref).abs().max()) / scale
    t_ref = time_call(lambda: step(ref_layer), repeat=repeat, warmup=1, device=device)
    t_ours = time_call(lambda: step(ours_layer), repeat=repeat, warmup=1, device=device)
    return dict(case="ppr_inf", size=f"{name} N={n} E={ei.size(1)} C={channels} on {device}",
                reference=f"PyG APPNP(K={hops}), fwd+bwd", t_ref=t_ref, t_ours=t_ours,
                ratio=ratio(t_ours, t_ref), same_ranking=diff < 1e-4, max_rel_err=diff)


# ---- main ----------------------------------------------------------------------------------------

def _fmt(vals: Sequence[float], digits: int = 3) -> str:
    vals = [v for v in vals if not math.isnan(v)]
    return mean_std(vals, digits=digits) if vals else "—"


def case_met(case: str, rs: Sequence[dict]) -> bool | None:
    """The met rule of the module docstring for the rows ``rs`` of one case."""
    if case == "large":
        return met([statistics.fmean(r["peak_gb"] for r in rs) / LARGE_BUDGET_GB], [1.0])
    ratios = [r["ratio"] for r in rs if not math.isnan(r["ratio"])]
    return met([statistics.fmean(ratios) if ratios else math.nan], [LIMITS[case]])


def summarise(rows: list[dict]) -> str:
    """The Markdown table of the rows: times, the ours / theirs ratio, target, met."""
    table = []
    for case in CASES:
        rs = [r for r in rows if r["case"] == case]
        if not rs:
            continue
        cell = _fmt([r["ratio"] for r in rs], 3 if case in ("appnp", "ppr_inf") else 4)
        cell = "—" if cell == "—" else f"{cell}x"
        extra = (f"peak RSS {_fmt([r['peak_gb'] for r in rs], 2)} GB "
                 f"(before: {_fmt([r['base_gb'] for r in rs], 2)} GB); "
                 f"{max(r.get('products', 0) for r in rs)} operator products"
                 if case == "large" else
                 f"max diff {max(r['max_rel_err'] for r in rs):.1e}")
        table.append([case, rs[0]["size"], rs[0]["reference"], _fmt([r["t_ref"] for r in rs]),
                      _fmt([r["t_ours"] for r in rs]), cell, TARGETS[case],
                      format_met(case_met(case, rs)),
                      "yes" if all(r["same_ranking"] for r in rs) else "NO", extra])
    return markdown_table(["case", "size", "reference", "ref time (s)", "ours (s)",
                           "time ours / theirs", "target", "met", "agrees", "notes"], table)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--repeat", type=int, default=3, help="timed repeats of the fast calls")
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    p.add_argument("--large-size", nargs=2, type=int, metavar=("N", "M"),
                   help="features and samples of the 'large' case (default 100000 200)")
    p.add_argument("--data-root", default=None, help="use PubMed from this data root")
    p.add_argument("--device", default="cpu",
                   help="torch device of the appnp and ppr_inf cases (the Inf-FS cases run "
                   "on the CPU)")
    p.add_argument("--json", default=None)
    p.add_argument("--csv", default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.large_size:
        sizes["large"] = tuple(args.large_size)
    rows = []
    jobs = [(c, s) for s in args.seeds for c in args.cases]
    for case, seed in tqdm(jobs, desc="bench_diffusion", disable=args.no_progress):
        set_seed(seed)
        if case == "closed":
            row = case_closed(*sizes["closed"], seed, args.repeat)
        elif case == "pyifs":
            row = case_pyifs(*sizes["pyifs"], seed, args.repeat)
        elif case == "large":
            row = case_large(*sizes["large"], seed, args.quick)
        elif case == "appnp":
            row = case_appnp(*sizes["appnp"], seed, args.repeat, args.data_root, args.device)
        else:
            row = case_ppr_inf(*sizes["ppr_inf"], seed, args.repeat, args.data_root, args.device)
        row["seed"] = seed
        rows.append(row)
    print(f"\nbench_diffusion ({'quick' if args.quick else 'full'}; torch threads "
          f"{torch.get_num_threads()}; seeds {args.seeds})\n")
    print(summarise(rows))
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_large-worker":
        n_, m_, seed_, dense_ = map(int, sys.argv[2:6])
        _large_worker(n_, m_, seed_, dense_)
    else:
        main()
