"""Helpers shared by the benchmark and comparison scripts: seeding, timing, tables, output files.

Scripts import it as ``from _common import ...`` (the scripts folder is on ``sys.path`` when a
script runs; tests add it explicitly).

Every benchmark table uses one ratio direction, ours / theirs (:func:`ratio`), and one "met"
rule, each ratio within its limit (:func:`met`): the case's target, else 1.0.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) for one run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1,
              device: torch.device | str | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_memory(fn: Callable[[], Any], device: torch.device | str | None = None, *,
                warmup: bool = True) -> int:
    """Peak bytes of working memory of one ``fn()`` call.

    On a GPU: the CUDA allocator's peak above what was allocated before the call. On the CPU
    (Linux): the growth of this process's resident-set high-water mark over the resident set
    before the call, the mark being reset through ``/proc/self/clear_refs``. ``warmup`` runs
    ``fn`` once first, so one-time allocations (caches, thread pools) are not counted. No
    process is forked (forking after torch's OpenMP pool has started can deadlock); for a
    figure that earlier allocations of this process cannot distort, call it in a fresh worker
    process started with ``MALLOC_MMAP_THRESHOLD_=131072``, so glibc returns freed blocks.
    """
    if warmup:
        fn()
    gc.collect()
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated() - base)
    before = proc_status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the RSS
    fn()
    return max(0, proc_status_bytes("VmHWM") - before)


def proc_status_bytes(field: str) -> int:
    """A memory field of ``/proc/self/status`` in bytes (Linux): ``VmRSS`` (resident now) or
    ``VmHWM`` (resident high-water mark, reset by writing ``5`` to ``/proc/self/clear_refs``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def mean_std(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    """``"m ± s"`` of ``values`` times ``scale`` (mean and sample standard deviation).

    One value has no spread to report, so it prints as the bare mean ``"m"`` (never
    ``"m ± 0.0"``); so does a spread that is not finite (never ``"± nan"``).
    """
    vals = [v * scale for v in values]
    if not vals:
        raise ValueError("mean_std: values is empty")
    m = statistics.fmean(vals)
    finite = len(vals) > 1 and all(math.isfinite(v) for v in vals)
    s = statistics.stdev(vals) if finite else math.nan
    if not math.isfinite(s):
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def ratio(ours: float, theirs: float) -> float:
    """``ours / theirs`` (a time or a memory figure; below 1 means ours is smaller), the one
    ratio direction of every benchmark table; ``nan`` when either side is missing (``nan``)
    or ``theirs`` is not positive."""
    if math.isnan(ours) or math.isnan(theirs) or theirs <= 0:
        return math.nan
    return ours / theirs


def met(ratios: Sequence[float], limits: Sequence[float]) -> bool | None:
    """The "met" rule of every benchmark table: each ``ours / theirs`` ratio is at most its
    limit (the case's target; ``1.0``, ours no slower or larger than theirs, where the case
    has none). ``None`` (nothing to judge) when any ratio is ``nan``."""
    if len(ratios) != len(limits):
        raise ValueError(f"met: {len(ratios)} ratios but {len(limits)} limits")
    if any(math.isnan(r) for r in ratios):
        return None
    return all(r <= lim for r, lim in zip(ratios, limits))


def format_ratio(value: float | None, digits: int = 2) -> str:
    """An ``ours / theirs`` ratio as a table cell: ``"0.47x"``; ``"—"`` when missing."""
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.{digits}f}x"


def format_met(value: bool | None) -> str:
    """A "met" cell: ``"yes"``, ``"no"``, or ``"—"`` when there is nothing to judge."""
    return {True: "yes", False: "no", None: "—"}[value]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def write_rows(rows: list[dict], *, csv_path: str | None = None,
               json_path: str | None = None) -> None:
    """Write result rows (dicts with the same keys) to CSV and/or JSON files."""
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(rows, indent=2, default=float))
    if csv_path and rows:
        Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
        keys = list(dict.fromkeys(k for row in rows for k in row))
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)


def add_output_args(p: argparse.ArgumentParser, *, row: str = "run", plot: str = "plot",
                    threads: int | None = 1, device: bool = True) -> None:
    """The output and runtime options the comparison scripts share: ``--out``, ``--no-plot``,
    ``--csv``, ``--json`` (rewritten as the run goes, so a cut run keeps what it finished),
    ``--load`` (tabulate saved rows, run nothing), ``--threads``, ``--device`` (unless
    ``device=False``) and ``--no-progress``. ``row`` names what one row is, ``plot`` what the
    folder holds."""
    p.add_argument("--out", default="results", help=f"folder of the {plot} (default: results/)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--csv", default=None, help=f"write one row per {row} to this CSV file")
    p.add_argument("--json", default=None, help=f"write one row per {row} to this JSON file "
                   "(rewritten as the run goes, so a cut run keeps what it finished)")
    p.add_argument("--load", nargs="+", default=None, metavar="JSON",
                   help="tabulate and plot the rows saved by --json (one or more files, "
                        "concatenated); run nothing")
    p.add_argument("--threads", type=int, default=threads,
                   help=f"torch CPU threads (default: {threads or 'torch decides'})")
    if device:
        p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--no-progress", action="store_true")


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_single_thread_worker() -> None:
    """Pool worker: one torch thread and one BLAS/OpenMP thread (16 workers on 16 cores)."""
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        pass


@contextlib.contextmanager
def single_thread_pool(workers: int) -> Iterator[Any]:
    """A ``ProcessPoolExecutor`` of ``workers`` fresh (spawned) processes, each with one torch
    and one BLAS/OpenMP thread, so that ``workers`` processes fill ``workers`` cores and do not
    oversubscribe them. The thread variables are set only while the pool is made. When the
    ``with`` body raises, the jobs not yet started are cancelled (the running ones finish)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    os.environ.update({v: "1" for v in _THREAD_VARS})  # inherited by the spawned workers
    try:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_single_thread_worker)
    finally:
        for v, val in saved.items():
            if val is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = val
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # a failed job: drop the queued ones
        raise
    pool.shutdown(wait=True)


def load_rows(paths: Sequence[str]) -> list[dict]:
    """The rows of one or more JSON files written by ``--json``, concatenated; a clear
    ``SystemExit`` for a missing or malformed file."""
    rows: list[dict] = []
    for path in paths:
        try:
            part = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"error: cannot read rows from {path}: {err}") from None
        if not isinstance(part, list) or not all(isinstance(r, dict) for r in part):
            raise SystemExit(f"error: {path} does not hold a JSON list of rows")
        rows += part
    return rows


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, or a clear ``SystemExit`` when it is not usable here."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise SystemExit(f"error: bad --device {name!r}: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {name} asked for, but CUDA is not available here")
    return device


def resume_rows(json_path: str | None) -> list[dict]:
    """The rows an earlier, cut run saved in ``--json`` (none if the file does not exist yet),
    for ``--resume``; a clear ``SystemExit`` without ``--json``."""
    if not json_path:
        raise SystemExit("error: --resume continues the run saved in --json FILE; give --json")
    return load_rows([json_path]) if Path(json_path).exists() else []
