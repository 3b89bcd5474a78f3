"""Benchmark: one training epoch of every node-classification model, ours against PyG's.

An epoch is what ``node_classification.py`` does per epoch: forward, cross-entropy on the
training nodes, backward, an Adam step, then an evaluation forward and one host transfer of
the validation loss and accuracies. Each model trains for ``--epochs`` epochs (after a
``--warmup`` run of 3 epochs) and the median over ``--repeat`` such runs, divided by the
epochs, is its time per epoch. The comparisons, in the same run and process:

- ``AffinityDiffusion`` against ``APPNP``: the same network and the same propagation
  (K = 10 personalised-PageRank hops over the GCN-normalised graph);
- ``AffinityAttention`` (K = 1) against ``TransformerConv``: one hop of dot-product attention;
- each hop count of a hop model (``AffinityAttention``, ``AffinityAttentionRW``,
  ``AffinityDiffusionCR``, whose epoch is its two stochastic passes and their consistency
  term) against its own K = 1.

Ratios are ours / theirs (time per epoch; below 1 means ours is faster). "met" is yes when
ours is no slower than its PyG competitor (ratio <= 1.0; there is no target); a hop count
against its own K = 1 is a cost, reported without a met cell ("—").

``--profile`` adds, per model, the operators with the most self time (device time on a GPU)
from ``torch.profiler`` over one timed run.

    python scripts/bench_training.py --dataset Cora --data-root /path/to/data
    python scripts/bench_training.py --dataset csbm-0.8 --device cuda --profile
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    format_met, format_ratio, markdown_table, met, ratio, resolve_device, time_call, write_rows,
)
from _models import DEFAULT_MODELS, HOP_MODELS, MODELS  # noqa: E402
from node_classification import (  # noqa: E402
    canonical_dataset, hop_label, load_graph, parse_hops, train_eval,
)

#: the competitor of each of our models (same math, PyG's implementation)
COMPETITOR = {"AffinityDiffusion": ("APPNP", ""), "AffinityAttention": ("TransformerConv", "")}


def epoch_time(model: str, data, *, hops: int | float | None, epochs: int, repeat: int,
               device: torch.device) -> tuple[float, dict]:
    """Median seconds per training epoch of ``model`` (see the module docstring), and the
    result of the timed runs (all seed 0, so they agree)."""
    train_eval(model, data, hops=hops, epochs=3, patience=3, device=device)  # warm-up
    last: dict = {}

    def one_run() -> None:
        last["res"] = train_eval(model, data, hops=hops, epochs=epochs, patience=epochs + 1,
                                 device=device)

    return time_call(one_run, repeat=repeat, warmup=0, device=device) / epochs, last["res"]


def profile_table(model: str, data, *, hops: int | float | None, epochs: int,
                  device: torch.device, top: int = 12) -> str:
    """The ``top`` operators by self time (device time on a GPU) of ``epochs`` epochs."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        train_eval(model, data, hops=hops, epochs=epochs, patience=epochs + 1, device=device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=top)


def run(dataset: str, models: Sequence[str], hops: Sequence[int | float], *, epochs: int = 20,
        repeat: int = 3, device: torch.device | str = "cpu", data_root: str | None = None,
        profile: bool = False) -> list[dict]:
    """One row per (model, hops): ``ms_per_epoch``, the timed runs' ``val_acc`` and
    ``best_epoch`` and, where it ran too, the ratio to the competitor (``vs``, ``ratio``).
    ``AffinityDiffusion`` and ``APPNP`` start from the same weights and draw the same dropout
    masks, so they must also reach the same accuracies (``same_result``)."""
    device = torch.device(device)
    data = load_graph(canonical_dataset(dataset), data_root, seed=0)
    configs = [(m, k) for m in models for k in (hops if m in HOP_MODELS else [None])]
    rows = []
    for m, k in configs:
        t, res = epoch_time(m, data, hops=k, epochs=epochs, repeat=repeat, device=device)
        rows.append({"dataset": dataset, "device": str(device), "model": m,
                     "hops": hop_label(k), "ms_per_epoch": 1000 * t, "val_acc": res["val_acc"],
                     "best_epoch": res["best_epoch"]})
        print(f"{m}{' K=' + hop_label(k) if k else ''}: {1000 * t:.2f} ms/epoch", flush=True)
        if profile:
            print(profile_table(m, data, hops=k, epochs=epochs, device=device), flush=True)
    times = {(r["model"], r["hops"]): r["ms_per_epoch"] for r in rows}
    for r in rows:
        ref = COMPETITOR.get(r["model"]) if r["hops"] in ("", "1") else (r["model"], "1")
        if ref is not None and ref in times and ref != (r["model"], r["hops"]):
            r["vs"] = f"{ref[0]} (K={ref[1]})" if ref[1] else ref[0]
            r["ratio"] = ratio(r["ms_per_epoch"], times[ref])
            if ref[0] != r["model"]:  # a PyG competitor, not the model's own K=1
                r["met"] = met([r["ratio"]], [1.0])
    by = {(r["model"], r["hops"]): r for r in rows}
    if ("AffinityDiffusion", "") in by and ("APPNP", "") in by:
        a, b = by[("AffinityDiffusion", "")], by[("APPNP", "")]
        a["same_result"] = (a["val_acc"], a["best_epoch"]) == (b["val_acc"], b["best_epoch"])
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """The Markdown table of :func:`run`'s rows: ms per epoch, the ours / vs ratio, met."""
    body = [[f"{r['model']} (K={r['hops']})" if r["hops"] else r["model"],
             f"{r['ms_per_epoch']:.2f}", r.get("vs", "—"), format_ratio(r.get("ratio")),
             format_met(r.get("met")),
             {True: "yes", False: "NO"}.get(r.get("same_result"), "—")] for r in rows]
    return markdown_table(["model", "ms / epoch", "vs", "time ours / vs", "met",
                           "same accuracy as vs"], body)


def main(argv: Sequence[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="csbm-0.8",
                   help="Cora, CiteSeer, PubMed, a WebKB set or csbm-H (default: csbm-0.8)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    p.add_argument("--hops", nargs="+", default=["1", "4", "16", "inf"],
                   help="hop counts of AffinityAttention (default: 1 4 16 inf)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per timed run (default: 20)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per model (default: 3)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--profile", action="store_true", help="print the top operators per model")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.epochs < 1 or args.repeat < 1:
        raise SystemExit("error: --epochs and --repeat must be >= 1")
    try:
        hops = parse_hops(args.hops)
        canonical_dataset(args.dataset)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    rows = run(args.dataset, args.models, hops, epochs=args.epochs, repeat=args.repeat,
               device=resolve_device(args.device), data_root=args.data_root,
               profile=args.profile)
    print(f"\nbench_training: {args.dataset} on {args.device}, {args.epochs} epochs x "
          f"{args.repeat} runs, torch threads {torch.get_num_threads()}\n")
    print(format_table(rows))
    write_rows(rows, json_path=args.json)
    return rows


if __name__ == "__main__":
    main()
