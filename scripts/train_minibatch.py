"""Node classification on mini-batches: a hop model trained over ``NeighborLoader`` batches.

Each batch is ``batch_size`` seed nodes (first, as PyG arranges them) and their sampled
``K``-hop in-neighbourhood (``--num-neighbors``, one fan-out per hop, ``-1`` for all); the loss
is the mean cross-entropy over the seeds. Two models, built from affgraph layers:

- ``attention`` (default): :class:`affgraph.nn.models.AffinityAttentionNet`, a projection and
  one ``AffinityAttention`` layer with ``--hops`` ppr hops (2 by default, one plain hop at 1);
  its self-loops are added on each sampled subgraph, which is exact (the softmax of a node
  only reads its own in-edges).
- ``diffusion``: :class:`affgraph.nn.models.MLPDiffusion`, APPNP's network over
  ``AffinityDiffusion(K=--hops, normalize=False, add_self_loops=False)``, fed with the
  ``gcn_norm`` weights (self-loops included) computed once on the *full* graph and carried
  through the loader as ``edge_weight``: normalising on a sampled subgraph would give its
  outermost nodes too small a degree.

Validation and test accuracy are computed on the same kind of batches, by default with every
neighbour (``--eval-neighbors -1``), which gives exactly the full-graph outputs. The reported
test accuracy is the one at the epoch of best validation accuracy. Data: a contextual SBM graph
(``csbm-H``, generated, no files; ``--csbm-nodes``) or Cora/CiteSeer/PubMed and the WebKB sets
from ``--data-root``. Deterministic under ``--seed`` on the CPU (graph, initialisation,
shuffling, sampling, dropout). ``--threads`` sets torch's CPU threads (default: 1, which is
the fastest for batches of a few thousand nodes and never oversubscribes a shared machine;
``--threads 0`` leaves torch's default, which ``OMP_NUM_THREADS`` sets).

    python scripts/train_minibatch.py                  # csbm-0.8, 20k nodes, attention K=2
    python scripts/train_minibatch.py --model diffusion --hops 3 --num-neighbors 10 10 10
    python scripts/train_minibatch.py --dataset PubMed --data-root DATA --batch-size 512
    python scripts/train_minibatch.py --quick          # seconds: a small graph, 2 epochs
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import resolve_device, set_seed  # noqa: E402
from node_classification import load_graph  # noqa: E402

from affgraph._checks import check_choice, check_dropout, check_positive_int  # noqa: E402
from affgraph.nn import AffinityDiffusion  # noqa: E402
from affgraph.nn.models import AffinityAttentionNet, MLPDiffusion  # noqa: E402

MODELS = ("attention", "diffusion")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# PyG warns that torch-sparse's sampler (used without pyg-lib) is deprecated; it samples the same
warnings.filterwarnings("ignore", message="Using 'NeighborSampler' without a 'pyg-lib'")

__all__ = ["MODELS", "build_model", "prepare_graph", "make_loader", "seed_logits",
           "train_epoch", "evaluate", "check_fanouts", "run", "main"]


def check_fanouts(num_neighbors: Sequence[int], hops: int) -> list[int]:
    """One fan-out per hop, each ``-1`` (all neighbours) or ``>= 1``."""
    fan = list(num_neighbors)
    if len(fan) != hops:
        raise ValueError(f"num_neighbors needs one fan-out per hop ({hops}), got {fan}")
    for f in fan:
        if isinstance(f, bool) or not isinstance(f, int) or (f < 1 and f != -1):
            raise ValueError(f"num_neighbors must be -1 (all) or positive ints, got {fan}")
    return fan


def build_model(model: str, in_channels: int, num_classes: int, *, hops: int = 2,
                hidden: int = 64, heads: int = 8, dropout: float = 0.5) -> nn.Module:
    """The ``attention`` or ``diffusion`` network (see the module doc) with ``hops`` hops."""
    check_choice("model", model, MODELS)
    check_positive_int("hops", hops)
    if model == "attention":
        return AffinityAttentionNet(in_channels, num_classes, K=hops, hidden_channels=hidden,
                                    heads=heads, dropout=dropout)
    prop = AffinityDiffusion(hops, normalize=False, add_self_loops=False)
    return MLPDiffusion(in_channels, num_classes, prop, hidden_channels=hidden, dropout=dropout)


def prepare_graph(data: Data, model: str, dtype: torch.dtype = torch.float32) -> Data:
    """A copy of ``data`` ready for the loader: features in ``dtype``; for ``diffusion`` the
    edges with self-loops and their ``gcn_norm`` weights on the full graph as ``edge_weight``
    (:math:`\\hat{D}^{-1/2}(A + I)\\hat{D}^{-1/2}`, the degrees of the whole graph)."""
    check_choice("model", model, MODELS)
    out = Data(x=data.x.to(dtype), edge_index=data.edge_index, y=data.y,
               num_nodes=data.num_nodes)
    for key in ("train_mask", "val_mask", "test_mask"):
        out[key] = data[key]
    if model == "diffusion":
        out.edge_index, out.edge_weight = gcn_norm(data.edge_index, None, data.num_nodes,
                                                   add_self_loops=True, dtype=dtype)
    return out


def make_loader(data: Data, nodes: Tensor, num_neighbors: Sequence[int], batch_size: int, *,
                shuffle: bool = False, seed: int = 0):
    """A ``NeighborLoader`` over the seed ``nodes`` (shuffled each pass with a generator of
    ``seed`` when ``shuffle``)."""
    from torch_geometric.loader import NeighborLoader

    check_positive_int("batch_size", batch_size)
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return NeighborLoader(data, num_neighbors=list(num_neighbors), batch_size=batch_size,
                          input_nodes=nodes, shuffle=shuffle, generator=gen)


def seed_logits(model: nn.Module, batch: Data, device: torch.device) -> Tensor:
    """The model's logits ``[batch_size, C]`` of the batch's seed nodes."""
    x, ei = batch.x.to(device), batch.edge_index.to(device)
    w = getattr(batch, "edge_weight", None)
    out = model(x, ei) if w is None else model(x, ei, w.to(device))
    return out[:batch.batch_size]


def train_epoch(model: nn.Module, loader, opt: torch.optim.Optimizer, device: torch.device, *,
                progress: bool = False, desc: str = "train") -> tuple[float, float]:
    """One pass over ``loader``: an optimiser step per batch on the seeds' mean cross-entropy.
    Returns the seed-weighted mean loss and the training accuracy over the seeds."""
    model.train()
    total, loss_sum, correct = 0, 0.0, 0
    for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
        logits = seed_logits(model, batch, device)
        y = batch.y[:batch.batch_size].to(device)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n = int(y.numel())
        total, loss_sum = total + n, loss_sum + loss.item() * n
        correct += int((logits.argmax(-1) == y).sum())
    return loss_sum / max(total, 1), correct / max(total, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device) -> tuple[int, int]:
    """``(correct, total)`` over the seed nodes of ``loader``, in evaluation mode."""
    model.eval()
    correct = total = 0
    for batch in loader:
        y = batch.y[:batch.batch_size].to(device)
        correct += int((seed_logits(model, batch, device).argmax(-1) == y).sum())
        total += int(y.numel())
    return correct, total


def accuracy(correct: int, total: int) -> float:
    """``correct / total`` (``0.0`` for no nodes)."""
    return correct / total if total else 0.0


def check_run_args(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    """Check the options both training scripts share, set the thread count, and return the
    training and evaluation fan-outs (``num_neighbors``: 10 per hop unless given)."""
    if args.threads != 0:
        check_positive_int("threads", args.threads)
        torch.set_num_threads(args.threads)
    fan = check_fanouts(args.num_neighbors or [10] * args.hops, args.hops)
    eval_fan = check_fanouts([args.eval_neighbors] * args.hops, args.hops)
    check_positive_int("epochs", args.epochs)
    check_dropout("dropout", args.dropout)
    return fan, eval_fan


def run(args: argparse.Namespace) -> dict:
    """Train and evaluate as ``args`` says; the summary and one row per epoch."""
    device = resolve_device(args.device)
    fan, eval_fan = check_run_args(args)
    set_seed(args.seed)
    raw = load_graph(args.dataset, args.data_root, csbm_nodes=args.csbm_nodes, seed=args.seed)
    data = prepare_graph(raw, args.model, DTYPES[args.dtype])
    num_classes = int(data.y.max()) + 1
    model = build_model(args.model, data.num_features, num_classes, hops=args.hops,
                        hidden=args.hidden, heads=args.heads, dropout=args.dropout)
    model = model.to(device=device, dtype=DTYPES[args.dtype])
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    idx = {k: data[f"{k}_mask"].nonzero().view(-1) for k in ("train", "val", "test")}
    train_loader = make_loader(data, idx["train"], fan, args.batch_size, shuffle=True,
                               seed=args.seed)
    eval_loaders = {k: make_loader(data, idx[k], eval_fan, args.eval_batch_size)
                    for k in ("val", "test")}
    rows, best = [], None
    progress = not args.no_progress
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss, train_acc = train_epoch(model, train_loader, opt, device, progress=progress,
                                      desc=f"epoch {epoch}/{args.epochs}")
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        acc = {k: accuracy(*evaluate(model, eval_loaders[k], device)) for k in ("val", "test")}
        t_eval = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": loss, "train_acc": train_acc, "val_acc": acc["val"],
               "test_acc": acc["test"], "train_s": t_train, "eval_s": t_eval}
        rows.append(row)
        if best is None or row["val_acc"] > best["val_acc"]:
            best = row
        if progress or args.verbose:
            tqdm.write(f"epoch {epoch:3d}  loss {loss:.4f}  train {train_acc:.3f}  "
                       f"val {acc['val']:.3f}  test {acc['test']:.3f}  "
                       f"{t_train:.2f} s train  {t_eval:.2f} s eval")
    summary = {
        "dataset": args.dataset, "model": args.model, "hops": args.hops, "num_neighbors": fan,
        "batch_size": args.batch_size, "seed": args.seed, "epochs": args.epochs,
        "nodes": int(data.num_nodes), "edges": int(raw.edge_index.size(1)),
        "best_epoch": best["epoch"], "val_acc": best["val_acc"], "test_acc": best["test_acc"],
        "train_s_per_epoch": sum(r["train_s"] for r in rows) / len(rows),
        "eval_s_per_epoch": sum(r["eval_s"] for r in rows) / len(rows),
        "threads": torch.get_num_threads(), "device": str(device), "epoch_rows": rows,
    }
    return summary


#: what ``--quick`` changes (flags given explicitly still win)
QUICK = {"csbm_nodes": 1000, "epochs": 2, "batch_size": 128, "hidden": 16, "heads": 2}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(p)
    p.add_argument("--json", default=None, help="write the summary and epoch rows here")
    return parse_with_quick(p, argv)


def parse_with_quick(p: argparse.ArgumentParser,
                     argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; with ``--quick`` the :data:`QUICK` sizes replace the defaults."""
    if p.parse_known_args(argv)[0].quick:
        p.set_defaults(**QUICK)
    return p.parse_args(argv)


def add_training_args(p: argparse.ArgumentParser) -> None:
    """The options this script and ``train_distributed.py`` share."""
    p.add_argument("--dataset", default="csbm-0.8",
                   help="csbm-H (generated) or a Planetoid/WebKB name (default: csbm-0.8)")
    p.add_argument("--data-root", default=None, help="data root of the Planetoid/WebKB sets")
    p.add_argument("--csbm-nodes", type=int, default=20000, help="cSBM size (default: 20000)")
    p.add_argument("--model", choices=MODELS, default="attention")
    p.add_argument("--hops", type=int, default=2, help="K (default: 2)")
    p.add_argument("--num-neighbors", type=int, nargs="+", default=None,
                   help="fan-out per hop, -1 for all (default: 10 per hop)")
    p.add_argument("--eval-neighbors", type=int, default=-1,
                   help="fan-out per hop of the evaluation batches (default: -1, all: exact)")
    p.add_argument("--batch-size", type=int, default=256, help="seed nodes per batch")
    p.add_argument("--eval-batch-size", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--heads", type=int, default=8, help="attention heads (attention only)")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default: 1; 0: torch decides)")
    p.add_argument("--quick", action="store_true",
                   help="seconds: 1000 cSBM nodes, 2 epochs, batch 128, hidden 16, 2 heads "
                        "(explicit flags still win)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true",
                   help="print each epoch's line even with --no-progress")


def format_summary(s: dict) -> str:
    """One line of a run's summary (with ``world_size``, a data-parallel run's: per rank)."""
    fan = " ".join(map(str, s["num_neighbors"]))
    ranks = f"{s['world_size']} rank(s) x " if "world_size" in s else ""
    per = " per rank" if "world_size" in s else ""
    return (f"{s['dataset']} ({s['nodes']} nodes, {s['edges']} edges), {s['model']} K={s['hops']}, "
            f"num_neighbors {fan}, {ranks}batch {s['batch_size']}, seed {s['seed']}: "
            f"test accuracy {100 * s['test_acc']:.1f}% at best validation epoch "
            f"{s['best_epoch']}/{s['epochs']} (val {100 * s['val_acc']:.1f}%); "
            f"{s['train_s_per_epoch']:.2f} s train + {s['eval_s_per_epoch']:.2f} s eval "
            f"per epoch, {s['threads']} thread(s){per}, {s['device']}")


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    summary = run(args)
    print(format_summary(summary))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=2, default=float))
    return summary


if __name__ == "__main__":
    main()
