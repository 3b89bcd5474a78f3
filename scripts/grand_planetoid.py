"""GRAND on the public Planetoid splits, with the reference's per-dataset settings.

Trains :class:`affgraph.nn.models.GRAND` on Cora, CiteSeer and PubMed (the public split: 20
labels per class, 500 validation and 1000 test nodes) with ``GRAND_SETTINGS`` (the run scripts
of the reference implementation, ``THUDM/GRAND``) and the reference's protocol:

- features divided by their row sums (rows of zeros stay zero), as its ``normalize``;
- :math:`\\hat{A} = D^{-1/2}(A + I)D^{-1/2}` over the undirected citation graph, where
  :math:`A` keeps the self-loops of the raw graph (124 nodes of CiteSeer, 3 of PubMed, none of
  Cora), which PyG's loader drops: they come back with weight 2, as ``adj + I`` gives them;
- full-batch Adam on :class:`~affgraph.nn.models.GRANDLoss` (``samples`` DropNode passes);
  after each epoch the validation loss and accuracy in evaluation mode; an epoch that reaches
  the lowest validation loss so far (or ties it) or the highest validation accuracy so far
  (or ties it) resets the patience counter, training stops when the counter reaches the
  dataset's patience (or after 5000 epochs), and the test accuracy is read from the weights
  of the last epoch with the lowest validation loss.

``--models GRANDAttention`` trains the same network, settings and protocol with a learned
affinity in place of :math:`\hat{A}` (:class:`affgraph.nn.models.GRANDAttention`: softmax
attention over the graph and its self-loops, starting from the random walk), and
``GRANDAttention-fixed`` that network with its inverse temperature frozen at 0 (the random walk
:math:`(D + I)^{-1}(A + I)` throughout: the fixed-affinity control).

Prints a Markdown table of the test accuracy (mean ± sample standard deviation over seeds;
the reference reports the mean of 100 seeds with numpy's population deviation) next to the
published 85.4 / 75.4 / 82.7, and writes one row per run to ``--json``/``--csv`` when asked.

    python scripts/grand_planetoid.py --data-root /path/to/data            # 3 sets, 10 seeds
    python scripts/grand_planetoid.py --datasets Cora --seeds 1 --time-limit 120
    python scripts/grand_planetoid.py --datasets Cora --models GRAND GRANDAttention
    python scripts/grand_planetoid.py --quick                              # seconds: a smoke run
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, to_undirected

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, mean_std, resolve_device, set_seed, write_rows  # noqa: E402

from affgraph.nn.models.grand import GRAND, GRANDSettings, grand_settings  # noqa: E402
from affgraph.nn.models.grand_attention import GRANDAttention  # noqa: E402

DATASETS = ("Cora", "CiteSeer", "PubMed")
#: test accuracy (%) of GRAND in the paper (Table 2, mean of 100 runs)
PUBLISHED = {"Cora": 85.4, "CiteSeer": 75.4, "PubMed": 82.7}
_RAW = {"Cora": "cora", "CiteSeer": "citeseer", "PubMed": "pubmed"}
#: the networks ``--models`` trains: the fixed affinity, the learned one, and the learned
#: network with its inverse temperature frozen at 0 (the random walk, its fixed control)
MODELS = ("GRAND", "GRANDAttention", "GRANDAttention-fixed")


class ReferenceStopping:
    """The reference's early stopping, one :meth:`step` per epoch.

    An epoch whose validation loss is ``<=`` the lowest so far or whose validation accuracy is
    ``>=`` the highest so far resets the counter; it is the new best epoch (the weights to
    keep) when its loss is ``<=`` the lowest so far. Any other epoch adds one to the counter;
    :attr:`stop` once the counter reaches ``patience``.
    """

    def __init__(self, patience: int) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive int, got {patience!r}")
        self.patience = patience
        self.loss_min, self.acc_max, self.bad = math.inf, -math.inf, 0
        self.best_epoch: int | None = None
        self.epoch = -1

    def step(self, val_loss: float, val_acc: float) -> bool:
        """Record one epoch; whether it is the new best epoch."""
        self.epoch += 1
        best = False
        if val_loss <= self.loss_min or val_acc >= self.acc_max:
            if val_loss <= self.loss_min:
                best, self.best_epoch = True, self.epoch
            self.loss_min = min(val_loss, self.loss_min)
            self.acc_max = max(val_acc, self.acc_max)
            self.bad = 0
        else:
            self.bad += 1
        return best

    @property
    def stop(self) -> bool:
        return self.bad >= self.patience


def reference_graph(data: Data, self_loops: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Undirected ``edge_index`` and ``edge_weight`` whose ``gcn_norm`` (self-loops added
    where missing, weight 1) is the reference's ``D^-1/2 (A + I) D^-1/2``: every edge weight
    1 and each stored self-loop (``self_loops``, node ids) weight 2."""
    n = data.num_nodes
    ei = to_undirected(data.edge_index, num_nodes=n)
    ei = ei[:, ei[0] != ei[1]]
    w = torch.ones(ei.size(1))
    if self_loops is not None and self_loops.numel():
        loops = torch.unique(self_loops).view(1, -1).repeat(2, 1)
        ei = torch.cat([ei, loops], 1)
        w = torch.cat([w, torch.full((loops.size(1),), 2.0)])
    ei, w = coalesce(ei, w, num_nodes=n, reduce="max")
    return ei, w


def raw_self_loops(name: str, root: str | os.PathLike | None) -> Tensor:
    """The nodes with a self-loop in the raw Planetoid graph file (its bytes checked against
    the manifest's sha256 before they are unpickled)."""
    from affgraph.datasets._root import read_verified

    rel = f"planetoid/{name}/raw/ind.{_RAW[name]}.graph"
    _, files = read_verified(name, root, files=[rel])
    graph = pickle.loads(files[rel].data, encoding="latin1")
    return torch.tensor(sorted(int(k) for k, v in graph.items() if k in v), dtype=torch.long)


def load_dataset(name: str, root: str | os.PathLike | None) -> Data:
    """The public split of ``name`` prepared as the reference prepares it (see the module
    docstring): ``x`` row-normalised, ``edge_index``/``edge_weight`` of :func:`reference_graph`."""
    from affgraph.datasets import load_planetoid

    data = load_planetoid(name, root, split="public").clone()
    rowsum = data.x.sum(1, keepdim=True)
    data.x = torch.where(rowsum > 0, data.x / rowsum.clamp(min=torch.finfo(data.x.dtype).tiny),
                         torch.zeros_like(data.x))
    data.edge_index, data.edge_weight = reference_graph(data, raw_self_loops(name, root))
    return data


def build_model(name: str, settings: GRANDSettings, in_channels: int,
                out_channels: int, logit_scale: float = 0.0) -> GRAND:
    """The network ``name`` of :data:`MODELS` with ``settings`` (support cached);
    ``logit_scale`` is the attention networks' initial inverse temperature."""
    if name == "GRAND":
        return settings.model(in_channels, out_channels, cached=True)
    if name not in MODELS:
        raise ValueError(f"model: unknown network {name!r}; choose from {MODELS}")
    return settings.model(in_channels, out_channels, network=GRANDAttention,
                          logit_scale=logit_scale, learn_affinity=name == "GRANDAttention",
                          cached=True)


def train_grand(data: Data, settings: GRANDSettings, *, seed: int = 0,
                device: torch.device | str = "cpu", time_limit: float | None = None,
                dataset: str = "", model: str = "GRAND", logit_scale: float = 0.0) -> dict:
    """One run of ``model`` (:data:`MODELS`) on ``data`` (``x``, ``edge_index``, optional
    ``edge_weight``, ``y`` and the three masks) with ``settings``; the row of the run:
    validation loss and accuracy at the best epoch, the test accuracy of its weights, the
    epochs run and why training stopped (``"patience"``, ``"epochs"`` or ``"time"``,
    ``time_limit`` seconds). The attention networks (initial inverse temperature
    ``logit_scale``) take the support only (their weights are the affinity): ``edge_weight``
    goes to GRAND alone; their rows add ``logit_scale_init`` and the kept ``logit_scale``."""
    set_seed(seed)
    t0 = time.perf_counter()
    x, y = data.x.to(device), data.y.to(device)
    ei = data.edge_index.to(device)
    w = data.edge_weight.to(device) if data.get("edge_weight") is not None else None
    masks = {k: data[f"{k}_mask"].to(device) for k in ("train", "val", "test")}
    name = model
    model = build_model(name, settings, x.size(1), int(y.max()) + 1, logit_scale).to(device)
    if name != "GRAND":
        w = None
    loss_fn, opt = settings.loss(), settings.optimizer(model.parameters())

    def net(x_: Tensor, ei_: Tensor) -> Tensor:
        return model(x_, ei_, w)

    stopper, best_state, reason = ReferenceStopping(settings.patience), None, "epochs"
    best = {"val_loss": math.nan, "val_acc": math.nan}
    for epoch in range(settings.epochs):
        model.train()
        opt.zero_grad()
        loss_fn(net, x, ei, y, masks["train"]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = torch.log_softmax(net(x, ei), -1)
            val_loss = F.nll_loss(out[masks["val"]], y[masks["val"]]).item()
            val_acc = (out[masks["val"]].argmax(1) == y[masks["val"]]).double().mean().item()
        if stopper.step(val_loss, val_acc):
            best_state = copy.deepcopy(model.state_dict())
            best = {"val_loss": val_loss, "val_acc": val_acc}
        if stopper.stop:
            reason = "patience"
            break
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            reason = "time"
            break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        pred = net(x, ei).argmax(1)
    test_acc = (pred[masks["test"]] == y[masks["test"]]).double().mean().item()
    extra = {}
    if isinstance(model, GRANDAttention):  # the inverse temperature of the kept weights
        extra = {"logit_scale_init": logit_scale,
                 "logit_scale": float(model.logit_scale.detach())}
    return {"dataset": dataset, "model": name, "seed": seed, **best, "test_acc": test_acc,
            "best_epoch": stopper.best_epoch + 1, "epochs_run": stopper.epoch + 1,
            "stopped": reason, "time_s": time.perf_counter() - t0, "device": str(device),
            **extra}


def format_table(rows: Sequence[dict]) -> str:
    """Test accuracy (%) per dataset and network: mean ± sample std over seeds, GRAND's
    published number and the gap to it (rows without ``model`` are GRAND's)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r.get("model", "GRAND")), []).append(r["test_acc"])
    out = []
    for (name, net), accs in groups.items():
        mean = 100 * sum(accs) / len(accs)
        pub = PUBLISHED.get(name)
        gap = "—" if pub is None else f"{mean - pub:+.1f}"
        out.append([name, net, len(accs), mean_std(accs, 100.0), "—" if pub is None else pub,
                    gap])
    return markdown_table(["dataset", "model", "seeds", "test acc. (%)", "GRAND published",
                           "gap"], out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), type=_dataset,
                   help="Cora CiteSeer PubMed (default: all three)")
    p.add_argument("--models", nargs="+", default=["GRAND"], choices=MODELS,
                   help="GRAND (fixed affinity), GRANDAttention (learned), "
                        "GRANDAttention-fixed (its temperature frozen at 0) (default: GRAND)")
    p.add_argument("--logit-scale", type=float, default=0.0, metavar="G",
                   help="initial inverse temperature of the attention networks (default: 0, "
                        "uniform rows)")
    p.add_argument("--seeds", nargs="+", type=int, default=[10],
                   help="one number n (seeds 0..n-1) or a list of seeds (default: 10)")
    p.add_argument("--data-root", default=None,
                   help="folder with planetoid/ (default: $AFFGRAPH_DATA)")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="cap on the epochs (default: the settings' 5000)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop each run's training after this many seconds (its best epoch "
                        "so far is tested; the row says stopped=time)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 seed, 3 epochs, patience 3 per dataset")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="write one row per run to this JSON file")
    p.add_argument("--csv", default=None, help="write one row per run to this CSV file")
    return p


def _dataset(name: str) -> str:
    for d in DATASETS:
        if d.lower() == name.lower():
            return d
    raise argparse.ArgumentTypeError(f"unknown dataset {name!r}; choose from {DATASETS}")


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = list(range(args.seeds[0])) if len(args.seeds) == 1 else args.seeds
    epochs, patience = args.max_epochs, None
    if args.quick:
        seeds, epochs, patience = [0], 3, 3
    if epochs is not None and epochs < 1:
        raise SystemExit(f"error: --max-epochs must be >= 1, got {epochs}")
    if not seeds:
        raise SystemExit("error: --seeds needs at least one seed")
    root = args.data_root or os.environ.get("AFFGRAPH_DATA")
    if not root or not Path(root).is_dir():
        raise SystemExit("error: the Planetoid sets need a data root: pass --data-root DIR or "
                         "set AFFGRAPH_DATA=DIR (the folder holding planetoid/)")
    device = resolve_device(args.device)
    rows = []
    for name in args.datasets:
        data = load_dataset(name, root)
        settings = grand_settings(name)
        changes = {k: v for k, v in (("epochs", epochs), ("patience", patience)) if v}
        settings = settings.replace(**changes)
        for net, seed in ((net, seed) for net in args.models for seed in seeds):
            row = train_grand(data, settings, seed=seed, device=device,
                              time_limit=args.time_limit, dataset=name, model=net,
                              logit_scale=args.logit_scale)
            rows.append(row)
            print(f"{name} {net} seed {seed}: test {100 * row['test_acc']:.1f} (val "
                  f"{100 * row['val_acc']:.1f}, best epoch {row['best_epoch']} of "
                  f"{row['epochs_run']}, {row['stopped']}, {row['time_s']:.0f} s)", flush=True)
            write_rows(rows, json_path=args.json)
    print(format_table(rows))
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    main()
