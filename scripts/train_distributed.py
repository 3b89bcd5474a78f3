"""Data-parallel training of a hop model over ``NeighborLoader`` batches, across processes.

Every process (rank) builds the same graph and the same initial model from ``--seed`` (the
models, options and data of ``train_minibatch.py``), wrapped in ``DistributedDataParallel``
(gloo on the CPU, nccl on CUDA, one GPU per rank: ``cuda:LOCAL_RANK``). Each epoch the training
nodes are shuffled by a generator of ``(seed, epoch)``, the same on every rank, cut to a
multiple of the world size :math:`W`, and rank :math:`r` takes every :math:`W`-th node from the
:math:`r`-th (:func:`affgraph._dist.my_blocks`): disjoint shares of equal size, so every rank
takes the same number of steps on batches of the same size. A rank's loss is the mean
cross-entropy over its batch's seeds and DDP averages the gradients over the ranks, so step
:math:`t` on :math:`W` ranks of ``--batch-size`` :math:`B` seeds is the step of one process on
the :math:`WB` seeds ``order[t W B : (t + 1) W B]`` of the shuffled order; with every neighbour
sampled (``--num-neighbors -1 ...``) and no dropout, exactly (to rounding). Sampling and dropout
draw from the generator of ``seed + rank``. Validation and test accuracy: each rank evaluates
its share of the nodes (all neighbours by default, exact) and the counts are summed over ranks.

One machine, N processes (``torchrun`` sets ``OMP_NUM_THREADS=1`` per process; ``--threads``
defaults to 1 as well)::

    torchrun --nproc_per_node=2 scripts/train_distributed.py --quick
    torchrun --nproc_per_node=4 scripts/train_distributed.py --csbm-nodes 100000 --epochs 5
    torchrun --nproc_per_node=8 scripts/train_distributed.py --device cuda --batch-size 1024

Several machines (here 2 with 4 processes each): the same command on every machine, with its
own ``--node_rank``, and the address and a free port of machine 0::

    torchrun --nnodes=2 --nproc_per_node=4 --node_rank=0 --master_addr=10.0.0.1 \\
        --master_port=29500 scripts/train_distributed.py --device cuda
    torchrun --nnodes=2 --nproc_per_node=4 --node_rank=1 --master_addr=10.0.0.1 \\
        --master_port=29500 scripts/train_distributed.py --device cuda

Without ``torchrun``: ``python scripts/train_distributed.py --spawn 2 --quick`` starts 2 local
processes itself (a free port on 127.0.0.1); plain ``python scripts/train_distributed.py``
trains in one process without a process group.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import resolve_device, set_seed  # noqa: E402
from node_classification import load_graph  # noqa: E402
from train_minibatch import (  # noqa: E402
    DTYPES, accuracy, add_training_args, build_model, check_run_args, evaluate, format_summary,
    make_loader, parse_with_quick, prepare_graph, seed_logits,
)

from affgraph._checks import check_choice, check_nonnegative_int  # noqa: E402
from affgraph._checks import check_positive_int  # noqa: E402
from affgraph._dist import all_reduce_sum, my_blocks, rank_world  # noqa: E402

OPTIMIZERS = ("adam", "sgd")

__all__ = ["OPTIMIZERS", "epoch_order", "rank_share", "train", "spawn", "main"]


def epoch_order(nodes: Tensor, epoch: int, seed: int, world: int) -> Tensor:
    """The training nodes of ``epoch`` in the order of a generator seeded by ``(seed, epoch)``
    (the same on every rank), cut to a multiple of ``world``."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = nodes[torch.randperm(nodes.numel(), generator=gen)]
    return order[:order.numel() - order.numel() % world]


def rank_share(nodes: Tensor) -> Tensor:
    """This rank's share of ``nodes``: every ``world_size``-th one from index ``rank``."""
    return torch.tensor(my_blocks(nodes.tolist()), dtype=torch.long)


def _device(name: str) -> torch.device:
    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def train(args: argparse.Namespace) -> tuple[dict, nn.Module]:
    """Train on this rank (the default process group, if initialised, gives the rank and the
    world size); the summary (the same on every rank) and the trained module."""
    rank, world = rank_world()
    device = _device(args.device)
    fan, eval_fan = check_run_args(args)
    check_nonnegative_int("steps", args.steps)
    check_choice("optimizer", args.optimizer, OPTIMIZERS)
    dtype = DTYPES[args.dtype]
    set_seed(args.seed)
    raw = load_graph(args.dataset, args.data_root, csbm_nodes=args.csbm_nodes, seed=args.seed)
    data = prepare_graph(raw, args.model, dtype)
    num_classes = int(data.y.max()) + 1
    module = build_model(args.model, data.num_features, num_classes, hops=args.hops,
                         hidden=args.hidden, heads=args.heads, dropout=args.dropout)
    module = module.to(device=device, dtype=dtype)
    model: nn.Module = module
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None)
    opt_cls = torch.optim.Adam if args.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(module.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    set_seed(args.seed + rank)  # sampling and dropout: a stream per rank
    idx = {k: data[f"{k}_mask"].nonzero().view(-1) for k in ("train", "val", "test")}
    eval_loaders = {k: make_loader(data, rank_share(idx[k]), eval_fan, args.eval_batch_size)
                    for k in ("val", "test")}
    rows, steps, best = [], 0, None
    progress = rank == 0 and not args.no_progress
    for epoch in range(1, args.epochs + 1):
        share = rank_share(epoch_order(idx["train"], epoch, args.seed, world))
        loader = make_loader(data, share, fan, args.batch_size)
        t0 = time.perf_counter()
        model.train()
        # seed-weighted loss sum, seeds and correct seeds of this rank, summed over ranks below
        stats = torch.zeros(3, dtype=torch.float64)
        for batch in tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                          disable=not progress):
            logits = seed_logits(model, batch, device)
            y = batch.y[:batch.batch_size].to(device)
            loss = F.cross_entropy(logits, y)  # the mean: DDP's average is the whole's mean
            opt.zero_grad()
            loss.backward()
            opt.step()
            stats += torch.tensor([loss.item() * y.numel(), y.numel(),
                                   int((logits.argmax(-1) == y).sum())], dtype=torch.float64)
            steps += 1
            if args.steps and steps >= args.steps:
                break
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        counts = torch.tensor([c for k in ("val", "test")
                               for c in evaluate(module, eval_loaders[k], device)],
                              dtype=torch.float64)
        t_eval = time.perf_counter() - t0
        # summed over ranks on the device (nccl reduces CUDA tensors only)
        stats, counts = (all_reduce_sum(t.to(device)).cpu() for t in (stats, counts))
        row = {"epoch": epoch, "loss": float(stats[0] / stats[1].clamp(min=1)),
               "train_acc": accuracy(int(stats[2]), int(stats[1])),
               "val_acc": accuracy(int(counts[0]), int(counts[1])),
               "test_acc": accuracy(int(counts[2]), int(counts[3])),
               "train_s": t_train, "eval_s": t_eval, "steps": steps}
        rows.append(row)
        if best is None or row["val_acc"] > best["val_acc"]:
            best = row
        if progress or (rank == 0 and args.verbose):
            tqdm.write(f"epoch {epoch:3d}  loss {row['loss']:.4f}  train {row['train_acc']:.3f}"
                       f"  val {row['val_acc']:.3f}  test {row['test_acc']:.3f}  "
                       f"{t_train:.2f} s train  {t_eval:.2f} s eval")
        if args.steps and steps >= args.steps:
            break
    summary = {
        "dataset": args.dataset, "model": args.model, "hops": args.hops, "num_neighbors": fan,
        "batch_size": args.batch_size, "world_size": world, "seed": args.seed,
        "optimizer": args.optimizer, "nodes": int(data.num_nodes),
        "edges": int(raw.edge_index.size(1)), "epochs": len(rows), "steps": steps,
        "best_epoch": best["epoch"], "val_acc": best["val_acc"], "test_acc": best["test_acc"],
        "train_s_per_epoch": sum(r["train_s"] for r in rows) / len(rows),
        "eval_s_per_epoch": sum(r["eval_s"] for r in rows) / len(rows),
        "threads": torch.get_num_threads(), "device": str(device), "epoch_rows": rows,
    }
    return summary, module


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--steps", type=int, default=0,
                   help="stop after this many optimiser steps (default: 0, no limit)")
    p.add_argument("--spawn", type=int, default=0, metavar="N",
                   help="start N local processes without torchrun (default: 0, do not)")
    p.add_argument("--save-params", default=None, metavar="PATH",
                   help="each rank saves its trained state_dict to PATH with {rank} replaced")
    p.add_argument("--json", default=None, help="rank 0 writes the summary here")
    return parse_with_quick(p, argv)


def _worker(argv: Sequence[str] | None) -> dict:
    """One rank: join the process group the environment describes (``torchrun``'s ``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; none: one process), train, save, leave."""
    args = parse_args(argv)
    dist = torch.distributed
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.device(args.device).type == "cuda" else "gloo"
        if backend == "nccl":
            _device(args.device)
        dist.init_process_group(backend, init_method="env://")
    try:
        summary, module = train(args)
        rank = rank_world()[0]
        if args.save_params:
            path = Path(args.save_params.format(rank=rank))
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, path)
        if rank == 0:
            print(format_summary(summary), flush=True)
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(summary, indent=2, default=float))
        return summary
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _spawned(rank: int, world: int, port: int, argv: Sequence[str]) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    _worker(argv)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(nprocs: int, argv: Sequence[str]) -> None:
    """Run ``argv`` (without ``--spawn``) on ``nprocs`` fresh local processes, one rank each."""
    check_positive_int("spawn", nprocs)
    torch.multiprocessing.start_processes(_spawned, args=(nprocs, free_port(), list(argv)),
                                          nprocs=nprocs, start_method="spawn")


def _without_spawn(argv: Sequence[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--spawn":
            skip = True
        elif not a.startswith("--spawn="):
            out.append(a)
    return out


def main(argv: Sequence[str] | None = None) -> dict | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.spawn:
        spawn(args.spawn, _without_spawn(argv))
        return None
    return _worker(argv)


if __name__ == "__main__":
    main()
