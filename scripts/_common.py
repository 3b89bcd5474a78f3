"""Helpers shared by the benchmark and comparison scripts: seeding, timing, tables, output files.

Scripts import it as ``from _common import ...`` (the scripts folder is on ``sys.path`` when a
script runs; tests add it explicitly).
"""
from __future__ import annotations

import csv
import gc
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

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
    """``"m ± s"`` of ``values`` times ``scale`` (sample std; 0 for one value)."""
    vals = [v * scale for v in values]
    m = statistics.fmean(vals)
    s = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def write_rows(rows: list[dict], *, csv_path: str | None = None, json_path: str | None = None) -> None:
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
