"""Benchmark: K-hop diffusion on a power-law graph past what PyG's full-batch layers hold.

One run generates an undirected graph with power-law degrees (Chung-Lu, exponent ``--gamma``;
every undirected edge stored in both directions, so ``--edges`` counts directed edges; no
self-loops; ``--seed`` fixes it) and ``--channels`` standard-normal features, then, for each
edge count of ``--edges``, runs every method in its own child process:

- ``ours_k10``: ``AffinityDiffusion(K=10, alpha=0.1)`` (GCN-normalised, self-loops), forward;
- ``ours_inf``: ``AffinityDiffusion(K=math.inf, alpha=0.1)``, the PPR closed form;
- ``appnp``: PyG's ``APPNP(K=10, alpha=0.1)`` on the same ``edge_index`` (the reference);
- ``features``: ``DiffusionFeatures(hops=(1, 2, 4, math.inf))`` (PPR, ``--block-size``);
- ``features_power``: ``DiffusionFeatures(4, coeffs="power", add_self_loops=False)``, the
  same operator as ``sign``: PyG's ``SIGN(4)`` transform;
- ``train_attention``: one epoch of mini-batch training of ``AffinityAttention(hops=2)`` and a
  linear classifier over ``NeighborLoader`` batches (fan-outs ``--fanout``, ``--train-nodes``
  seed nodes, random labels: a timing, not an accuracy).

Everything runs without autograd except the training epoch. Each child loads the saved graph
and features, then measures its call: wall time (mean ± std over ``--repeat`` calls) and peak
memory, the growth of the child's resident-set high-water mark over its resident set before
the first call (the inputs already loaded: :func:`_common.peak_memory`'s figure). A child's
address space is capped at ``--mem-cap-gb`` (``RLIMIT_AS``), so a method that needs more fails
with an allocation error, reported as ``OOM`` with what it tried to allocate: the point where
it runs out is measured, not guessed. Ratios are ours / APPNP's (below 1: ours is smaller).
The outputs are checked against each other in the same run: ``ours_k10`` against ``appnp``,
``features_power`` against ``sign`` (max |a - b| / max |b|) and, with ``--quick``, every
output against the float64 ``diffuse`` of the same hop count.

Threads: ``--threads`` (default 2) torch threads in every child (``OMP_NUM_THREADS`` too).

    python scripts/bench_scale.py --quick
    python scripts/bench_scale.py --nodes 2000000 --edges 1000000 5000000 20000000 50000000
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    format_met, format_ratio, markdown_table, mean_std, met, proc_status_bytes, ratio, write_rows,
)

METHODS = ("ours_k10", "ours_inf", "appnp", "features", "features_power", "sign",
           "train_attention")
#: ours / APPNP targets (time, peak memory) of the diffusion layers where APPNP fits
TARGETS = {"ours_k10": 0.5, "ours_inf": 0.5}
ALPHA, K = 0.1, 10
GB = 1024 ** 3


# ----------------------------------------------------------------------------------------------
# the graph
# ----------------------------------------------------------------------------------------------

def power_law_graph(num_nodes: int, num_edges: int, *, gamma: float = 2.5,
                    seed: int = 0) -> torch.Tensor:
    r"""An undirected Chung-Lu graph with power-law expected degrees, ``[2, num_edges]``.

    Node :math:`i` (in a random order) has weight :math:`w_i = (i + 1)^{-1/(\gamma - 1)}`; each
    of the ``num_edges / 2`` undirected edges draws both ends independently with probability
    :math:`w_i / \sum_j w_j`, so expected degrees are proportional to :math:`w_i` and their
    distribution has tail exponent :math:`\gamma`. Self-loops are redrawn (duplicates are
    kept: they add up in both PyG's and affgraph's products); every edge is stored in both
    directions. Vectorised numpy, deterministic under ``seed``.
    """
    if num_edges % 2 or num_edges < 2 or num_nodes < 2:
        raise ValueError(f"num_edges must be even and >= 2 and num_nodes >= 2, got "
                         f"{num_edges}, {num_nodes}")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum((np.arange(1, num_nodes + 1, dtype=np.float64)) ** (-1.0 / (gamma - 1.0)))
    cdf /= cdf[-1]
    label = rng.permutation(num_nodes)
    half = num_edges // 2
    src = np.empty(0, dtype=np.int64)
    dst = np.empty(0, dtype=np.int64)
    while src.size < half:  # redraw the few self-loops
        m = half - src.size + 1024
        u = np.searchsorted(cdf, rng.random(m), side="right").clip(max=num_nodes - 1)
        v = np.searchsorted(cdf, rng.random(m), side="right").clip(max=num_nodes - 1)
        keep = u != v
        src = np.concatenate([src, label[u[keep]]])
        dst = np.concatenate([dst, label[v[keep]]])
    src, dst = src[:half], dst[:half]
    return torch.from_numpy(np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]))


def node_features(num_nodes: int, channels: int, *, seed: int = 0) -> torch.Tensor:
    """``[num_nodes, channels]`` float32 standard-normal features under ``seed``."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(num_nodes, channels, generator=g)


# ----------------------------------------------------------------------------------------------
# the methods (each run in a child process)
# ----------------------------------------------------------------------------------------------

def _run_method(name: str, x: torch.Tensor, ei: torch.Tensor, args: argparse.Namespace
                ) -> dict[str, torch.Tensor]:
    """One call of method ``name``; its outputs by name."""
    from torch_geometric.data import Data

    if name == "ours_k10" or name == "ours_inf":
        from affgraph.nn import AffinityDiffusion

        layer = AffinityDiffusion(K=K if name == "ours_k10" else math.inf, alpha=ALPHA)
        with torch.no_grad():
            return {"out": layer(x, ei)}
    if name == "appnp":
        from torch_geometric.nn import APPNP

        with torch.no_grad():
            return {"out": APPNP(K=K, alpha=ALPHA)(x, ei)}
    if name in ("features", "features_power"):
        from affgraph.transforms import DiffusionFeatures

        tf = (DiffusionFeatures((1, 2, 4, math.inf), alpha=ALPHA, block_size=args.block_size)
              if name == "features" else
              DiffusionFeatures(4, coeffs="power", add_self_loops=False,
                                block_size=args.block_size))
        data = tf(Data(x=x, edge_index=ei))
        return {k: data[k] for k in tf.names()}
    if name == "sign":
        from torch_geometric.transforms import SIGN

        data = SIGN(4)(Data(x=x, edge_index=ei))
        return {f"x{k}": data[f"x{k}"] for k in range(1, 5)}
    if name == "train_attention":
        return _train_epoch(x, ei, args)
    raise ValueError(f"unknown method {name!r}")


def _train_epoch(x: torch.Tensor, ei: torch.Tensor, args: argparse.Namespace
                 ) -> dict[str, torch.Tensor]:
    """One epoch of ``AffinityAttention(hops=2)`` + linear over ``NeighborLoader`` batches."""
    from torch_geometric.data import Data
    from torch_geometric.loader import NeighborLoader

    from affgraph.nn import AffinityAttention

    torch.manual_seed(args.seed)
    n = x.size(0)
    y = torch.randint(0, 4, (n,))
    train = torch.randperm(n)[:min(args.train_nodes, n)]
    loader = NeighborLoader(Data(x=x, edge_index=ei, y=y), num_neighbors=list(args.fanout),
                            batch_size=args.batch_size, input_nodes=train, shuffle=True)
    conv = AffinityAttention(x.size(1), 64, hops=2)
    head = torch.nn.Linear(64, 4)
    opt = torch.optim.Adam(list(conv.parameters()) + list(head.parameters()), lr=0.01)
    total = torch.zeros(())
    for batch in loader:
        opt.zero_grad()
        out = head(torch.relu(conv(batch.x, batch.edge_index)))[:batch.batch_size]
        loss = torch.nn.functional.cross_entropy(out, batch.y[:batch.batch_size])
        loss.backward()
        opt.step()
        total += loss.detach() * batch.batch_size
    return {"loss": total / train.numel()}


def _import_all() -> None:
    import torch_geometric.loader  # noqa: F401
    import torch_geometric.nn  # noqa: F401
    import torch_geometric.transforms  # noqa: F401

    import affgraph.nn  # noqa: F401
    import affgraph.transforms  # noqa: F401


def child_main(args: argparse.Namespace) -> None:
    """Run one method on the saved graph; print one JSON line of measurements."""
    cap = int(args.mem_cap_gb * GB)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    torch.set_num_threads(args.threads)
    folder = Path(args.graph)
    row: dict = {"method": args.child, "ok": False}
    _import_all()  # imports are not part of a method's time or memory
    try:
        ei = torch.from_numpy(np.load(folder / "edge_index.npy"))
        x = torch.from_numpy(np.load(folder / "x.npy"))
        base = proc_status_bytes("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            outs = _run_method(args.child, x, ei, args)
            times.append(time.perf_counter() - t0)
            peak = proc_status_bytes("VmHWM") - base
            if len(times) < args.repeat:
                del outs
        row.update(ok=True, times=times, peak_gb=max(0, peak) / GB, base_gb=base / GB)
        if args.save:
            for k, v in outs.items():
                np.save(folder / f"out_{args.child}_{k}.npy", v.numpy())
    except (MemoryError, RuntimeError) as err:  # an allocation beyond the cap
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        oom = isinstance(err, MemoryError) or "alloc" in msg.lower() or "memory" in msg.lower()
        row.update(error=("OOM: " if oom else "") + msg[:300], oom=oom,
                   peak_gb=max(0, proc_status_bytes("VmHWM") - base) / GB)
    print("RESULT " + json.dumps(row), flush=True)


def run_child(method: str, folder: Path, args: argparse.Namespace, save: bool) -> dict:
    """``method`` in a fresh process (``--threads`` threads, the address-space cap)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MALLOC_MMAP_THRESHOLD_="131072")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, "--graph",
           str(folder), "--threads", str(args.threads), "--mem-cap-gb", str(args.mem_cap_gb),
           "--repeat", str(args.repeat), "--block-size", str(args.block_size),
           "--train-nodes", str(args.train_nodes), "--batch-size", str(args.batch_size),
           "--seed", str(args.seed), "--fanout", *map(str, args.fanout)]
    if save:
        cmd.append("--save")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=args.child_timeout)
    except subprocess.TimeoutExpired:
        return {"method": method, "ok": False, "error": f"timeout {args.child_timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            row = json.loads(line[7:])
            row["wall_s"] = time.perf_counter() - t0
            return row
    tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
    return {"method": method, "ok": False, "oom": proc.returncode == -9,
            "error": f"exit {proc.returncode}: {tail[0][:300]}"}


# ----------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------

def _load(folder: Path, method: str, key: str) -> Optional[np.ndarray]:
    path = folder / f"out_{method}_{key}.npy"
    return np.load(path) if path.exists() else None


def rel_err(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> float:
    """``max |a - b| / max |b|`` (``nan`` when either is missing)."""
    if a is None or b is None:
        return math.nan
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-300))


def check_outputs(folder: Path, quick: bool) -> dict[str, float]:
    """The agreements of the saved outputs (see the module docstring)."""
    errs = {"ours_k10 vs appnp": rel_err(_load(folder, "ours_k10", "out"),
                                         _load(folder, "appnp", "out"))}
    errs["features_power vs sign"] = max(
        rel_err(_load(folder, "features_power", f"x{k}"), _load(folder, "sign", f"x{k}"))
        for k in range(1, 5))
    if quick:
        from affgraph.diffusion import diffuse

        ei = torch.from_numpy(np.load(folder / "edge_index.npy"))
        x = torch.from_numpy(np.load(folder / "x.npy")).double()
        ref = {h: diffuse(x, ei, hops=h, coeffs="ppr", alpha=ALPHA, normalize="sym",
                          add_self_loops=True, tol=1e-12).numpy() for h in (1, 2, 4, K, math.inf)}
        errs["ours_k10 vs float64"] = rel_err(_load(folder, "ours_k10", "out"), ref[K])
        errs["ours_inf vs float64"] = rel_err(_load(folder, "ours_inf", "out"), ref[math.inf])
        errs["features vs float64"] = max(
            rel_err(_load(folder, "features", "x_inf" if h == math.inf else f"x{h}"), ref[h])
            for h in (1, 2, 4, math.inf))
    return errs


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------

def _mean(row: dict) -> float:
    return float(np.mean(row["times"])) if row.get("ok") else math.nan


def summarise(rows: list[dict]) -> str:
    """Per edge count and method: time, peak memory, the ratios to APPNP and "met"."""
    table = []
    for r in rows:
        ref = next((a for a in rows if a["edges"] == r["edges"] and a["method"] == "appnp"), {})
        t_ratio = ratio(_mean(r), _mean(ref)) if ref else math.nan
        m_ratio = (ratio(r.get("peak_gb", math.nan), ref.get("peak_gb", math.nan))
                   if r.get("ok") and ref.get("ok") else math.nan)
        verdict = "—"
        if r["method"] in TARGETS:
            lim = TARGETS[r["method"]]
            verdict = format_met(met([t_ratio, m_ratio], [lim, lim])) if ref.get("ok") \
                else format_met(bool(r.get("ok")))  # APPNP does not fit: ours must finish
        time_cell = mean_std(r["times"], digits=2) if r.get("ok") else \
            ("OOM" if r.get("oom") else "failed")
        table.append([f"{r['edges']:,}", r["method"], time_cell,
                      f"{r['peak_gb']:.2f}" if "peak_gb" in r else "—",
                      format_ratio(t_ratio), format_ratio(m_ratio), verdict,
                      r.get("error", "")[:80]])
    return markdown_table(["edges", "method", "time (s)", "peak (GB)", "time / APPNP",
                           "peak / APPNP", "met (<= 0.5x, or finishes)", "note"], table)


def growth_table(rows: list[dict]) -> str:
    """Time (s) of each method against the edge count."""
    edges = sorted({r["edges"] for r in rows})
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    body = []
    for e in edges:
        cells = [f"{e:,}"]
        for m in methods:
            r = next((a for a in rows if a["edges"] == e and a["method"] == m), None)
            cells.append("—" if r is None else f"{_mean(r):.2f}" if r.get("ok") else
                         ("OOM" if r.get("oom") else "failed"))
        body.append(cells)
    return markdown_table(["edges"] + list(methods), body)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="2,000 nodes, 20,000 edges, 8 channels: seconds")
    p.add_argument("--nodes", type=int, default=2_000_000)
    p.add_argument("--edges", type=int, nargs="+",
                   default=[1_000_000, 5_000_000, 20_000_000, 50_000_000],
                   help="directed edge counts (each undirected edge counts twice)")
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--gamma", type=float, default=2.5, help="degree exponent")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--repeat", type=int, default=1, help="timed calls per child")
    p.add_argument("--block-size", type=int, default=16, help="DiffusionFeatures' block_size")
    p.add_argument("--train-nodes", type=int, default=20_000,
                   help="seed nodes of the training epoch")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanout", type=int, nargs="+", default=[10, 10])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mem-cap-gb", type=float, default=18.0,
                   help="address-space cap of each child (RLIMIT_AS)")
    p.add_argument("--child-timeout", type=float, default=1800.0)
    p.add_argument("--no-check", action="store_true", help="do not save and compare outputs")
    p.add_argument("--json", default=None, help="write the rows to this JSON file (rewritten "
                   "after every child)")
    p.add_argument("--csv", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--graph", default=None, help=argparse.SUPPRESS)
    p.add_argument("--save", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.edges, args.channels = 2_000, [20_000], 8
        args.train_nodes, args.batch_size, args.block_size = 300, 100, 3
    if any(e % 2 for e in args.edges):
        p.error("--edges must be even (undirected edges stored both ways)")
    return args


def main(argv: Optional[Sequence[str]] = None) -> list[dict]:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return []
    rows: list[dict] = []
    checks: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        for edges in args.edges:
            folder = Path(tmp) / str(edges)
            folder.mkdir()
            t0 = time.perf_counter()
            ei = power_law_graph(args.nodes, edges, gamma=args.gamma, seed=args.seed)
            np.save(folder / "edge_index.npy", ei.numpy())
            np.save(folder / "x.npy", node_features(args.nodes, args.channels,
                                                    seed=args.seed).numpy())
            deg = torch.bincount(ei[1], minlength=args.nodes)
            print(f"graph: {args.nodes:,} nodes, {edges:,} directed edges, max degree "
                  f"{int(deg.max()):,}, {args.channels} channels, seed {args.seed} "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
            del ei, deg
            for method in args.methods:
                row = run_child(method, folder, args, save=not args.no_check)
                row.update(edges=edges, nodes=args.nodes, channels=args.channels,
                           seed=args.seed, threads=args.threads)
                rows.append(row)
                state = (mean_std(row["times"], digits=2) + " s, peak "
                         f"{row['peak_gb']:.2f} GB") if row.get("ok") else row.get("error")
                print(f"  {method}: {state}", flush=True)
                if args.json:
                    write_rows(rows, json_path=args.json)
            if not args.no_check:
                checks[edges] = check_outputs(folder, args.quick)
                for r in rows:
                    if r["edges"] == edges:
                        r["checks"] = checks[edges]
                for f in folder.glob("out_*.npy"):
                    f.unlink()
    print()
    print(summarise(rows))
    print()
    print("Time (s) against the edge count:")
    print(growth_table(rows))
    if checks:
        print()
        print("Agreement (max |a - b| / max |b|):")
        print(markdown_table(["edges"] + list(next(iter(checks.values()))),
                             [[f"{e:,}"] + [f"{v:.2e}" for v in c.values()]
                              for e, c in checks.items()]))
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    main()
