"""Node classification: how many hops of affinity attention, on which graph?

Trains PyG's GCN, GAT, APPNP and TransformerConv with their published hyper-parameters and
affgraph's models (:mod:`affgraph.nn.models`; see ``_models.py``): ``AffinityAttention`` and
``AffinityAttentionRW`` (learned affinity) and ``AffinityDiffusionCR`` (fixed affinity,
GRAND's random propagation), each for every hop count, and ``AffinityDiffusion`` (APPNP's
network, K = 10) on the public Planetoid splits (Cora, CiteSeer, PubMed), the 10 geom-gcn
splits of WebKB (Cornell, Texas, Wisconsin; seed ``s`` uses split ``s % 10``), the heterophilous
sets of Platonov et al. (ICLR 2023: minesweeper, tolokers, chameleon_filtered; their 10 fixed
splits, seed ``s`` uses split ``s % 10``) and contextual SBM graphs (``csbm-H`` is edge
homophily ``H``, a fresh graph per seed). Each dataset has one metric (:func:`dataset_metric`):
ROC AUC of the class-1 softmax probability on the binary minesweeper and tolokers (the paper's
metric), accuracy elsewhere. Full-batch Adam, early stopping on the validation value of that
metric (ties broken by the validation loss); the test value is read at the best validation
epoch. Prints a Markdown table of the test metric (mean ± std over seeds), writes a plot of it
against hops per dataset and, when asked, CSV/JSON rows (one per run).

    python scripts/node_classification.py --data-root /path/to/data          # everything, 10 seeds
    python scripts/node_classification.py --datasets Cora --models GCN AffinityAttention --hops 1 4 inf
    python scripts/node_classification.py --datasets minesweeper tolokers chameleon_filtered
    python scripts/node_classification.py --quick                               # a tiny cSBM smoke run
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected
from tqdm.auto import tqdm

from affgraph.metrics import check_binary_target, roc_auc_unchecked

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_output_args, load_rows, markdown_table, mean_std, resolve_device, resume_rows, set_seed,
    single_thread_pool, write_rows,
)
from _models import (  # noqa: E402
    ATTENTION_MODELS, ATTN_DROPOUT, BUDGETED_MODELS, BUDGETS, DEFAULT_MODELS, Budget, HOP_MODELS,
    HOP_NET_MODELS, MODELS, SPECS, build_model, check_dropout, resolve_budget,
)

PLANETOID = ("Cora", "CiteSeer", "PubMed")
WEBKB = ("Cornell", "Texas", "Wisconsin")
#: Platonov et al. (ICLR 2023); not in the default :data:`DATASETS` (pass them by name)
HETEROPHILOUS = ("minesweeper", "tolokers", "chameleon_filtered")
#: the datasets scored by ROC AUC (binary; the others by accuracy)
ROC_AUC_DATASETS = ("minesweeper", "tolokers")
#: metric name -> the suffix of its row keys (``val_acc``, ``test_roc_auc``, ...)
METRICS = {"accuracy": "acc", "roc_auc": "roc_auc"}
#: metric name -> how tables and plots name it, and the unit of its value times 100
METRIC_LABELS = {"accuracy": ("accuracy", "%"), "roc_auc": ("ROC AUC", "× 100")}
CSBM_DEFAULT = ("csbm-0.1", "csbm-0.3", "csbm-0.5", "csbm-0.7", "csbm-0.9")
DATASETS = PLANETOID + WEBKB + CSBM_DEFAULT
HOPS = (1, 2, 4, 8, 16, math.inf)
BEST_MARK = "†"


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------
def parse_hops(values: Iterable[str | int | float]) -> list[int | float]:
    """Hop counts from strings: positive integers or ``inf``."""
    out: list[int | float] = []
    for v in values:
        s = str(v).strip().lower()
        if s in ("inf", "infinity", "math.inf"):
            out.append(math.inf)
            continue
        try:
            k = int(s)
        except ValueError:
            raise ValueError(f"hops must be positive integers or 'inf', got {v!r}") from None
        if k < 1:
            raise ValueError(f"hops must be >= 1, got {k}")
        out.append(k)
    if not out:
        raise ValueError("give at least one hop count")
    return out


def hop_label(hops: int | float | None) -> str:
    """``"4"``, ``"inf"`` or ``""`` (a model without hops)."""
    if hops is None:
        return ""
    return "inf" if hops == math.inf else str(int(hops))


def csbm_homophily(name: str) -> float | None:
    """``0.3`` for ``"csbm-0.3"``; ``None`` for a name that is not a cSBM name."""
    if not name.lower().startswith("csbm"):
        return None
    try:
        h = float(name.split("-", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"a cSBM dataset is named 'csbm-H' with homophily H in [0, 1], "
                         f"got {name!r}") from None
    if not 0.0 <= h <= 1.0:
        raise ValueError(f"cSBM homophily must be in [0, 1], got {name!r}")
    return h


def canonical_dataset(name: str) -> str:
    """The canonical spelling of a dataset name (case-insensitive; ``-`` = ``_`` in the
    heterophilous names), or a ``ValueError`` listing the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"dataset names are strings, got {type(name).__name__}")
    if csbm_homophily(name) is not None:
        return f"csbm-{csbm_homophily(name):g}"
    for known in PLANETOID + WEBKB:
        if known.lower() == name.lower():
            return known
    for known in HETEROPHILOUS:
        if known == name.lower().replace("-", "_"):
            return known
    raise ValueError(f"unknown dataset {name!r}; known: "
                     f"{', '.join(PLANETOID + WEBKB + HETEROPHILOUS)} and "
                     "csbm-H (H the edge homophily in [0, 1])")


def dataset_metric(name: str) -> str:
    """The metric a dataset is scored by, a key of :data:`METRICS`: ``"roc_auc"`` for the
    binary heterophilous sets (:data:`ROC_AUC_DATASETS`, as Platonov et al.), ``"accuracy"``
    for every other one (the cSBM graphs included)."""
    return "roc_auc" if canonical_dataset(name) in ROC_AUC_DATASETS else "accuracy"


def score_key(split: str, metric: str) -> str:
    """The row key of ``metric`` on ``split``: ``score_key("test", "roc_auc") ==
    "test_roc_auc"``, ``score_key("val", "accuracy") == "val_acc"``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    return f"{split}_{METRICS[metric]}"


def needs_root(datasets: Iterable[str]) -> bool:
    """Whether any of the datasets is read from files."""
    return any(csbm_homophily(d) is None for d in datasets)


def load_graph(name: str, root: str | os.PathLike | None, *, csbm_nodes: int = 1000,
               seed: int = 0) -> Data:
    """The graph ``name`` with the masks of seed ``seed`` (1-D boolean; split ``seed % 10`` of
    the geom-gcn sets and of the heterophilous sets), undirected edges, and for the
    bag-of-words sets (Planetoid, WebKB) features divided by their row sums clamped at 1 (PyG's
    ``NormalizeFeatures``); the heterophilous sets keep their features as stored."""
    name = canonical_dataset(name)
    h = csbm_homophily(name)
    if h is not None:
        data = make_csbm_graph(csbm_nodes, h, seed)
    else:
        from affgraph.datasets import load_heterophilous, load_planetoid, load_webkb

        if name in HETEROPHILOUS:
            data = load_heterophilous(name, root)
        else:
            data = load_planetoid(name, root) if name in PLANETOID else load_webkb(name, root)
        data = data.clone()
        for key in ("train_mask", "val_mask", "test_mask"):
            m = data[key]
            data[key] = m[:, seed % m.size(1)] if m.dim() == 2 else m
        if name not in HETEROPHILOUS:
            data.x = data.x / data.x.sum(dim=1, keepdim=True).clamp(min=1.0)
    data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
    return data


def make_csbm_graph(n: int, homophily: float, seed: int) -> Data:
    """A 2-class cSBM graph with weak features (so that the graph matters)."""
    from affgraph.datasets import make_csbm

    return make_csbm(n, homophily, num_classes=2, num_features=32, avg_degree=5.0,
                     feature_snr=1.0, seed=seed)


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------
def train_eval(model_name: str, data: Data, *, hops: int | float | None = None,
               epochs: int = 500, patience: int = 100, seed: int = 0,
               device: torch.device | str = "cpu", attn_dropout: float | None = None,
               metric: str = "accuracy", budget: str | Budget | None = None,
               on_epoch: Callable[[int, Tensor], None] | None = None) -> dict:
    """Train one model on one graph (on ``device``); the scores at the best validation epoch.

    ``metric`` (a key of :data:`METRICS`) selects the epoch: the best epoch has the highest
    validation value of it (ties: the lowest validation loss); training stops after
    ``patience`` epochs that improve neither. ``"roc_auc"`` scores the class-1 softmax
    probability (:func:`affgraph.metrics.roc_auc`; in float64 and ranked through its logarithm,
    which does not round to a tie at 1 where the model is confident) and needs a binary ``y``
    with both classes in every mask.
    ``attn_dropout`` overrides the attention models' attention dropout (see
    :func:`_models.build_model`). ``budget`` (a name in :data:`_models.BUDGETS`, default
    ``"paper"``) sizes the budgeted models (:data:`_models.BUDGETED_MODELS`: the residual
    baselines and affgraph's hop nets), sets their learning rate, and they train for its
    ``steps`` instead of ``epochs``; the other models refuse it. A model whose spec has a
    ``consistency`` objective (:class:`affgraph.nn.models.GRANDLoss`) trains on the mean
    cross-entropy of that many stochastic passes plus their consistency term.
    ``on_epoch(epoch, out)``, when given, sees each epoch's evaluation-mode logits ``out``
    (``[N, C]``).

    Returns:
        ``metric``, ``val_acc, test_acc, train_acc`` (always; at the best epoch), with
        ``metric="roc_auc"`` also ``val_roc_auc, test_roc_auc, train_roc_auc``, and
        ``best_epoch, epochs_run, time_s``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    auc = metric == "roc_auc"
    num_classes = int(data.y.max()) + 1
    if auc:
        if num_classes != 2:
            raise ValueError(f"metric='roc_auc' needs a binary y (classes 0 and 1), got "
                             f"{num_classes} classes")
        for split in ("val", "test", "train"):  # once: the per-epoch AUC runs unchecked
            check_binary_target(data.y[data[f"{split}_mask"]], name=f"y[{split}_mask]")
    if SPECS[model_name].budgeted:
        epochs = resolve_budget(budget).steps
    set_seed(seed)
    model, opt = build_model(model_name, data.num_features, num_classes, hops,
                             attn_dropout=attn_dropout, budget=budget)
    cons = SPECS[model_name].consistency
    model = model.to(device)  # in place: the optimiser's parameters move with it
    data = data.to(device)
    x, ei, y = data.x, data.edge_index, data.y
    masks = {"val": data.val_mask, "test": data.test_mask, "train": data.train_mask}
    if getattr(model, "sparse_input", False):
        x = x.to_sparse().coalesce()
    names = ["val_acc", "test_acc", "train_acc"] + (
        ["val_roc_auc", "test_roc_auc", "train_roc_auc"] if auc else [])
    select = score_key("val", metric)
    best = (-1.0, math.inf)
    best_val_loss = math.inf
    result = {"metric": metric, **dict.fromkeys(names, 0.0), "best_epoch": 0}
    bad = 0
    t0 = time.perf_counter()
    epoch = 0
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        if cons is None:
            out = model(x, ei)
            loss = F.cross_entropy(out[data.train_mask], y[data.train_mask])
        else:  # GRAND: several stochastic passes, their consistency over all nodes
            loss = cons(model, x, ei, y, data.train_mask)
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            out = model(x, ei)
            correct = (out.argmax(dim=-1) == y).float()
            values = [F.cross_entropy(out[data.val_mask], y[data.val_mask])]
            values += [correct[masks[k]].mean() for k in ("val", "test", "train")]
            if auc:
                score = out.double().log_softmax(dim=-1)[:, 1]
                values += [roc_auc_unchecked(score[masks[k]], y[masks[k]])
                           for k in ("val", "test", "train")]
            # one host transfer per epoch (a GPU run is bound by its syncs)
            val_loss, *scores = torch.stack([v.double() for v in values]).tolist()
        if on_epoch is not None:
            on_epoch(epoch, out)
        epoch_scores = dict(zip(names, scores))
        improved = False
        if (epoch_scores[select], -val_loss) > (best[0], -best[1]):
            best = (epoch_scores[select], val_loss)
            result = {"metric": metric, **epoch_scores, "best_epoch": epoch}
            improved = True
        if val_loss < best_val_loss:
            best_val_loss = val_loss
            improved = True
        bad = 0 if improved else bad + 1
        if bad >= patience:
            break
    result.update(epochs_run=epoch, time_s=time.perf_counter() - t0)
    return result


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or any(s < 0 for s in out):
        raise ValueError(f"seeds must be a non-empty list of non-negative ints, got {seeds!r}")
    return out


def run(datasets: Sequence[str] = DATASETS, models: Sequence[str] = DEFAULT_MODELS, *,
        hops: Sequence[int | float] = HOPS, seeds: int | Sequence[int] = 10,
        data_root: str | os.PathLike | None = None, epochs: int = 500, patience: int = 100,
        csbm_nodes: int = 1000, progress: bool = True, device: torch.device | str = "cpu",
        on_row: Callable[[list[dict]], None] | None = None,
        done: Sequence[dict] = (), workers: int = 1,
        time_limit: float | None = None,
        attn_dropout: float | Sequence[float] = ATTN_DROPOUT, budget: str = "paper"
        ) -> list[dict]:
    """Train every (dataset, model, hop count, seed); one row per run.

    Args:
        datasets: names from :data:`DATASETS`, :data:`HETEROPHILOUS` or ``csbm-H``; each is
            scored by its :func:`dataset_metric`.
        models: names from :data:`MODELS`; the hop models run once per hop count.
        hops: hop counts of the hop models (``math.inf`` allowed).
        seeds: a count ``n`` (seeds ``0..n-1``) or an explicit list.
        data_root: the data root of the file-based sets (else ``$AFFGRAPH_DATA``, else
            :func:`affgraph.datasets.resolve_root`'s per-user default).
        epochs, patience: training length and early-stopping patience.
        csbm_nodes: nodes of each cSBM graph.
        progress: show a tqdm progress bar.
        device: the torch device that trains the models.
        on_row: called with the rows so far after each run (checkpointing).
        done: rows of an earlier, cut run (``--resume``): kept, and their runs (same dataset,
            model, hops and seed) are not repeated.
        workers: ``> 1`` runs the runs in a pool of that many fresh (spawned) processes of one
            CPU thread each, all on ``device``; the rows come back in the serial order and,
            but for ``time_s``, equal the serial run's (each run is seeded; on the CPU bit for
            bit when the serial run also uses one thread). Serial or pooled, the runs start
            seed by seed (every dataset, model and hop count of the first seed, then the next),
            so a grid cut short has every cell at about the same number of seeds.
        attn_dropout: attention dropout of the attention models, or a list of values to compare
            (each hop count runs once per value). Their rows record the dropout in effect as
            ``attn_dropout`` (none at ``hops=inf``, which therefore runs once); tables label a
            value other than :data:`_models.ATTN_DROPOUT` as a variant of the model. ``done``
            attention-model rows without the field are refused.
        time_limit: start no run after this many seconds (the running ones finish; a pool
            may already have handed each worker one more); the rest are left to ``--resume``.
        budget: the name in :data:`_models.BUDGETS` that sizes and trains the budgeted
            models (the residual baselines and the hop nets; :func:`train_eval`); their rows
            record it as ``budget``, and kept ``done`` rows of another budget are refused.

    Returns:
        rows with ``dataset, model, hops`` (``"4"``, ``"inf"`` or ``""``), ``seed``, the
        dataset's ``metric`` (``"accuracy"`` or ``"roc_auc"``), ``val_acc, test_acc,
        train_acc`` (fractions) and on a ``roc_auc`` dataset ``val_roc_auc, test_roc_auc,
        train_roc_auc`` (all at the epoch of the best validation value of the metric),
        ``best_epoch, epochs_run, time_s`` and the ``device`` that trained it.
    """
    datasets = [canonical_dataset(d) for d in datasets]
    for m in models:
        if m not in MODELS:
            raise ValueError(f"unknown model {m!r}; known: {', '.join(MODELS)}")
    hops = parse_hops(hops)
    seeds = _seed_list(seeds)
    if epochs < 1 or patience < 1:
        raise ValueError(f"epochs and patience must be >= 1, got {epochs} and {patience}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {time_limit!r}")
    drops = [attn_dropout] if isinstance(attn_dropout, (int, float)) else list(attn_dropout)
    check_budget_name(budget)
    check_kept_rows(done, drops, budget=budget)
    variants = [(k, p) for k in hops
                for p in dict.fromkeys(_effective_attn_dropout(hop_label(k), q) for q in drops)]
    hops_only = [(k, None) for k in hops]
    configs = [(m, k, p) for m in models
               for k, p in (variants if m in ATTENTION_MODELS else
                            hops_only if m in HOP_MODELS else [(None, None)])]
    finished = {(r["dataset"], r["model"], r["hops"], r["seed"], r.get("attn_dropout"))
                for r in done}
    tasks = [(name, seed, m, k, p) for name in datasets for seed in seeds for m, k, p in configs
             if (name, m, hop_label(k), seed, p) not in finished]
    new: dict[tuple, dict] = {}
    setup = dict(data_root=data_root, csbm_nodes=csbm_nodes, epochs=epochs,
                 patience=patience, device=str(device), budget=budget)

    def rows_so_far() -> list[dict]:
        return list(done) + [new[t] for t in tasks if t in new]

    def finish(task: tuple, row: dict) -> None:
        new[task] = row
        bar.set_postfix_str(f"{task[0]} {task[2]}{' K=' + hop_label(task[3]) if task[3] else ''}"
                            f"{'' if task[4] is None else f' p={task[4]:g}'} seed {task[1]}")
        bar.update()
        if on_row is not None:
            on_row(rows_so_far())

    total = len(datasets) * len(seeds) * len(configs)
    start = time.monotonic()

    def out_of_time() -> bool:
        return time_limit is not None and time.monotonic() - start >= time_limit

    with tqdm(total=total, initial=total - len(tasks), desc="node classification",
              disable=not progress, dynamic_ncols=True) as bar:
        # seed-major: a run cut short has every cell at about the same number of seeds
        order = sorted(tasks, key=lambda t: seeds.index(t[1]))
        if workers == 1:
            for task in order:
                if out_of_time():
                    break
                finish(task, run_task(task, **setup))
        else:
            from concurrent.futures import FIRST_COMPLETED, wait

            with single_thread_pool(workers) as pool:
                futures = {pool.submit(run_task, t, **setup): t for t in order}
                pending = set(futures)
                while pending:
                    finished_now, pending = wait(pending, timeout=1.0,
                                                 return_when=FIRST_COMPLETED)
                    for fut in finished_now:
                        if not fut.cancelled():
                            finish(futures[fut], fut.result())
                    if out_of_time():
                        for fut in pending:
                            fut.cancel()  # the queued runs; the running ones finish
    left = len(tasks) - len(new)
    if left:
        print(f"\nnode classification: time limit of {time_limit:g} s reached, {left} run(s) not "
              "started; rerun with --resume to run them", file=sys.stderr)
    return rows_so_far()


_GRAPHS: dict[tuple, Data] = {}


def run_task(task: tuple[str, int, str, int | float | None, float | None], *,
             data_root: str | os.PathLike | None, csbm_nodes: int, epochs: int, patience: int,
             device: str, budget: str = "paper") -> dict:
    """One run ``(dataset, seed, model, hops, attn_dropout)`` as a result row (in this process
    or a pool worker; the last few graphs are kept, so a worker loads a graph once per seed)."""
    name, seed, model_name, k, attn_dropout = task
    key = (name, None if data_root is None else str(data_root), csbm_nodes, seed)
    if key not in _GRAPHS:
        while len(_GRAPHS) >= 4:
            _GRAPHS.pop(next(iter(_GRAPHS)))
        _GRAPHS[key] = load_graph(name, data_root, csbm_nodes=csbm_nodes, seed=seed)
    budgeted = SPECS[model_name].budgeted
    res = train_eval(model_name, _GRAPHS[key], hops=k, epochs=epochs, patience=patience,
                     seed=seed, device=device, attn_dropout=attn_dropout,
                     metric=dataset_metric(name), budget=budget if budgeted else None)
    row = {"dataset": name, "model": model_name, "hops": hop_label(k), "seed": seed, **res,
           "device": str(device)}
    if model_name in ATTENTION_MODELS:
        row["attn_dropout"] = attn_dropout
    if budgeted:
        row["budget"] = budget
    if learns_coeffs(model_name, row["hops"]):
        row["coeff_lr"] = resolve_budget(budget).coeff_lr
    return row


def learns_coeffs(model: str, hops: str) -> bool:
    """Whether a run of ``model`` at hop label ``hops`` learns hop coefficients (the hop nets
    at a finite hop count), trained at the budget's ``coeff_lr``."""
    return model in HOP_NET_MODELS and hops != "inf"


def check_budget_name(budget: object) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``budget`` names one of
    :data:`_models.BUDGETS` (rows record the name)."""
    if not isinstance(budget, str):
        raise TypeError(f"budget must be a name in {tuple(BUDGETS)}, got "
                        f"{type(budget).__name__}")
    resolve_budget(budget)


def check_kept_rows(done: Sequence[dict], attn_dropout: Sequence[float], *,
                    budget: str = "paper") -> None:
    """Raise ``ValueError`` for an attention dropout outside ``[0, 1)``, a kept attention row
    that does not record its attention dropout (rows written before 2026-11-27, when the
    default was 0.6 and rows did not say), or a kept row of a budgeted model trained with
    another budget than ``budget`` (rows without the field were trained with ``"paper"``), or a
    kept hop-net row that learnt its hop coefficients at another ``coeff_lr`` than the
    budget's (rows without the field learnt them at the model's ``lr``)."""
    if not attn_dropout:
        raise ValueError("give at least one attn_dropout")
    for p in attn_dropout:
        check_dropout("attn_dropout", p)
    for r in done:
        if r["model"] in ATTENTION_MODELS and "attn_dropout" not in r:
            raise ValueError(
                f"a kept row ({r['dataset']} {r['model']} K={r['hops']} seed {r['seed']}) has "
                "no attn_dropout (rows from before 2026-11-27 were trained with 0.6): add the "
                "field to the file or write to another one")
        kept_budget = r.get("budget", "paper")
        if SPECS[r["model"]].budgeted and kept_budget != budget:
            raise ValueError(
                f"a kept row ({r['dataset']} {r['model']} seed {r['seed']}) was trained with "
                f"budget {kept_budget!r}, this run with {budget!r}: pass that "
                "--budget or write to another file")
        if learns_coeffs(r["model"], r["hops"]) and \
                r.get("coeff_lr") != resolve_budget(budget).coeff_lr:
            raise ValueError(
                f"a kept row ({r['dataset']} {r['model']} K={r['hops']} seed {r['seed']}) "
                f"trained its hop coefficients at coeff_lr={r.get('coeff_lr')} (none: at the "
                f"model's lr, rows from before 2026-12-04), this run at "
                f"{resolve_budget(budget).coeff_lr:g}: write to another file")


def _effective_attn_dropout(hops: str, attn_dropout: float) -> float:
    """The attention dropout an attention model applies: none at ``hops=inf`` (the closed
    form)."""
    return 0.0 if hops == "inf" else float(attn_dropout)


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------
def _hop_key(label: str) -> float:
    return math.inf if label == "inf" else float(label) if label else -1.0


def _dataset_order(rows: Sequence[dict]) -> list[str]:
    """The datasets of ``rows``: the known ones in :data:`DATASETS` order (the heterophilous
    sets after WebKB), cSBM by homophily, then any other in order of appearance (rows merged
    from several files keep one order)."""
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    known = PLANETOID + WEBKB + HETEROPHILOUS

    def key(name: str) -> tuple:
        if name in known:
            return (0, known.index(name))
        h = csbm_homophily(name) if name.lower().startswith("csbm-") else None
        return (1, h) if h is not None else (2, names.index(name))

    return sorted(names, key=key)


class ModelKey(NamedTuple):
    """The model a row belongs to in tables: its name, and for an attention model trained with
    an attention dropout other than the default, that dropout (else ``None``). Each attention
    dropout of a model is a model of its own; ``str`` gives the table's name for it."""

    name: str
    attn_dropout: float | None = None

    def label(self, hops: str = "") -> str:
        """The table's row name: ``name[, attn dropout p]``, with hops
        ``name (K=k[, attn dropout p])``."""
        drop = "" if self.attn_dropout is None else f"attn dropout {self.attn_dropout:g}"
        if hops:
            return f"{self.name} (K={hops}{', ' + drop if drop else ''})"
        return f"{self.name}, {drop}" if drop else self.name

    def __str__(self) -> str:
        return self.label()

    def order(self) -> tuple:
        """Sort key: the order of :data:`MODELS`, the default dropout first, then by dropout."""
        rank = MODELS.index(self.name) if self.name in MODELS else len(MODELS)
        return (rank, self.name, self.attn_dropout is not None, self.attn_dropout or 0.0)


def model_key(row: dict) -> ModelKey:
    """The :class:`ModelKey` of a result row."""
    p = row.get("attn_dropout")
    if row["model"] in ATTENTION_MODELS and p is not None and p != ATTN_DROPOUT:
        return ModelKey(row["model"], p)
    return ModelKey(row["model"])


def row_metric(row: dict) -> str:
    """The metric of a result row (rows from before rows recorded it: ``"accuracy"``)."""
    metric = row.get("metric", "accuracy")
    if metric not in METRICS:
        raise ValueError(f"a row ({row['dataset']} {row['model']} seed {row['seed']}) has an "
                         f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    return metric


def dataset_metrics(rows: Sequence[dict]) -> dict[str, str]:
    """``{dataset: metric}`` of ``rows``; a ``ValueError`` where one dataset's rows disagree
    (their values cannot share a table cell)."""
    out: dict[str, str] = {}
    for r in rows:
        m = row_metric(r)
        if out.setdefault(r["dataset"], m) != m:
            raise ValueError(f"the rows of {r['dataset']} mix the metrics {out[r['dataset']]!r} "
                             f"and {m!r}")
    return out


def summarize(rows: Sequence[dict]) -> dict[tuple[ModelKey, str, str], dict[str, list[float]]]:
    """``{(model, hops, dataset): {"test": [...], "val": [...]}}`` over seeds, the values of
    each row's metric (:func:`row_metric`: ``test_acc`` or ``test_roc_auc``, ...); ``model``
    is the row's :class:`ModelKey`."""
    dataset_metrics(rows)  # one metric per dataset
    out: dict = defaultdict(lambda: {"test": [], "val": []})
    for r in rows:
        metric = row_metric(r)
        cell = out[(model_key(r), r["hops"], r["dataset"])]
        cell["test"].append(r[score_key("test", metric)])
        cell["val"].append(r[score_key("val", metric)])
    return dict(out)


def best_hops(rows: Sequence[dict], *, overall: bool = False
              ) -> dict[tuple[ModelKey, str], str] | dict[str, tuple[ModelKey, str]]:
    """For each (hop model, dataset) the hop count with the best mean *validation* value of the
    dataset's metric (accuracy or ROC AUC).

    The keys are ``(ModelKey, dataset)``. With ``overall`` the choice runs over all hop models
    and their attention dropouts: the keys are the datasets and the values ``(ModelKey, hops)``,
    affgraph's best cell on each dataset as chosen by validation.
    """
    best: dict = {}
    for (model, k, ds), cell in summarize(rows).items():
        if not k:
            continue
        v = statistics.fmean(cell["val"])
        key = ds if overall else (model, ds)
        if key not in best or v > best[key][0]:
            best[key] = (v, (model, k))
    return {key: (mk if overall else mk[1]) for key, (_, mk) in best.items()}


def format_table(rows: Sequence[dict]) -> str:
    """Markdown table: the test metric (times 100) mean ± std over seeds, model (and hops) x
    dataset.

    Each dataset's cells hold its metric (:func:`dataset_metrics`): when any dataset is not
    scored by accuracy, every column header names its metric (``"minesweeper (ROC AUC)"``,
    ``"Cora (accuracy)"``), and the caption says so. The hop count of each hop model (and
    attention dropout) with the best mean validation value on a dataset is marked with
    :data:`BEST_MARK`; the best of all hop models and dropouts on the dataset, also by
    validation, is set in bold.
    """
    if not rows:
        raise ValueError("no result rows to tabulate")
    metrics = dataset_metrics(rows)
    cells = summarize(rows)
    marks = best_hops(rows)
    overall = best_hops(rows, overall=True)
    datasets = _dataset_order(rows)
    models = list(dict.fromkeys((model_key(r), r["hops"]) for r in rows))
    models.sort(key=lambda mk: (mk[0].order(), _hop_key(mk[1])))
    counts = {len(cell["test"]) for cell in cells.values()}
    body = []
    for model, k in models:
        line = [model.label(k)]
        for ds in datasets:
            cell = cells.get((model, k, ds))
            if cell is None:
                line.append("—")
                continue
            text = mean_std(cell["test"], scale=100.0)
            if len(counts) > 1:
                text += f" (n={len(cell['test'])})"
            if k and marks.get((model, ds)) == k:
                bold = overall.get(ds) == (model, k)
                text = f"**{text}** {BEST_MARK}" if bold else f"{text} {BEST_MARK}"
            line.append(text)
        body.append(line)
    used = set(metrics.values())
    header = datasets if used == {"accuracy"} else [
        f"{ds} ({METRIC_LABELS[metrics[ds]][0]})" for ds in datasets]
    table = markdown_table(["model"] + header, body)
    if counts == {1}:
        desc = "one seed"
    else:
        desc = "mean ± std over " + (f"{counts.pop()} seeds" if len(counts) == 1
                                     else "n seeds (per cell)")
    variants = len({m for m, k in models if k}) > 1
    if len(used) == 1:
        name, unit = METRIC_LABELS[used.pop()]
        what, val_what = f"{name} ({unit})", name
    else:
        what = " or ".join(f"{METRIC_LABELS[m][0]} ({METRIC_LABELS[m][1]})"
                           for m in METRICS if m in used) + ", as each column says"
        val_what = "value of the column's metric"
    return (f"{table}\n\nTest {what}, {desc}; "
            f"{BEST_MARK} = the hop count with the best mean validation {val_what}"
            + ("; bold: the best of them over all hop models and attention dropouts."
               if variants else "."))


def hop_series(cells: dict, dataset: str
               ) -> tuple[list[str], dict[ModelKey, tuple[list[int], list[float], list[float]]]]:
    """The hop curves of one plot panel from :func:`summarize`'s cells: the hop counts run on
    ``dataset`` by any hop model (one x position each, in hop order), and per hop model its x
    positions and the test metric's mean and std (times 100) over seeds."""
    all_ks = sorted({k for (m, k, d) in cells if k and d == dataset}, key=_hop_key)
    series = {}
    for model in sorted({m for (m, k, d) in cells if k and d == dataset}, key=ModelKey.order):
        tests = [(i, cells[(model, k, dataset)]["test"]) for i, k in enumerate(all_ks)
                 if (model, k, dataset) in cells]
        series[model] = ([i for i, _ in tests],
                         [100 * statistics.fmean(t) for _, t in tests],
                         [100 * statistics.stdev(t) if len(t) > 1 else 0.0 for _, t in tests])
    return all_ks, series


def plot_hops(rows: Sequence[dict], path: str | os.PathLike) -> Path:
    """The test metric against hops, one panel per dataset (its metric on the y axis); the
    other models as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = dataset_metrics(rows)
    cells = summarize(rows)
    datasets = _dataset_order(rows)
    # one colour per model in all panels
    colours = {m: f"C{i % 10}" for i, m in enumerate(sorted({c[0] for c in cells},
                                                             key=ModelKey.order))}
    ncol = min(3, len(datasets))
    nrow = math.ceil(len(datasets) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    for ax, ds in zip(axes.flat, datasets):
        all_ks, series = hop_series(cells, ds)
        for model, (xs, means, stds) in series.items():
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color=colours[model],
                        label=str(model))
        if all_ks:
            ax.set_xticks(range(len(all_ks)), ["∞" if k == "inf" else k for k in all_ks])
        baselines = sorted((c for c in cells if not c[1] and c[2] == ds),
                           key=lambda c: c[0].order())
        for m, k, d in baselines:
            ax.axhline(100 * statistics.fmean(cells[(m, k, d)]["test"]), ls="--", lw=1,
                       color=colours[m], label=str(m))
        ax.set_title(ds)
        ax.set_xlabel("hops K")
        name, unit = METRIC_LABELS[metrics[ds]]
        ax.set_ylabel(f"test {name} ({unit})")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def data_root_or_fail(root: str | None) -> str:
    """The data root from ``--data-root`` or ``$AFFGRAPH_DATA``; a clear error when neither."""
    root = root or os.environ.get("AFFGRAPH_DATA")
    if not root:
        raise SystemExit("error: the real datasets need a data root: pass --data-root DIR or set "
                         "AFFGRAPH_DATA=DIR (the folder holding planetoid/, webkb/ and "
                         "heterophilous/)")
    if not Path(root).is_dir():
        raise SystemExit(f"error: data root {root} is not a directory")
    return root


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS),
                   help="Cora CiteSeer PubMed Cornell Texas Wisconsin minesweeper tolokers "
                        "chameleon_filtered csbm-H ... (default: all but the three heterophilous "
                        "sets of Platonov et al.: " + " ".join(DATASETS) + ")")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=MODELS)
    p.add_argument("--hops", nargs="+", default=[hop_label(k) for k in HOPS],
                   help=f"hop counts of the hop models ({', '.join(HOP_MODELS)}), integers "
                        "or inf (default: 1 2 4 8 16 inf)")
    p.add_argument("--attn-dropout", type=float, nargs="+", default=[ATTN_DROPOUT],
                   help=f"attention dropout of AffinityAttention(RW), one value or several to "
                        f"compare (default: {ATTN_DROPOUT}, chosen on validation; the README's "
                        "cSBM and WebKB tables used 0.6)")
    p.add_argument("--budget", default="paper", choices=list(BUDGETS),
                   help="size and training steps of the residual baselines and the hop nets "
                        f"({', '.join(BUDGETED_MODELS)}; _models.BUDGETS): 'paper' is Platonov "
                        "et al.'s (512 wide, 5 blocks, 1000 steps), 'cpu' 128 wide and 2 "
                        "blocks; --epochs does not apply to them (default: paper)")
    p.add_argument("--seeds", nargs="+", type=int, default=[10],
                   help="one number n (seeds 0..n-1) or a list of seeds (default: 10)")
    p.add_argument("--data-root", default=None,
                   help="folder with planetoid/, webkb/ and heterophilous/ (default: "
                        "$AFFGRAPH_DATA, then the per-user data folder)")
    p.add_argument("--epochs", type=int, default=500)
    p.add_argument("--patience", type=int, default=100)
    p.add_argument("--csbm-nodes", type=int, default=1000)
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: cSBM only, 2 seeds, 30 epochs, hops 1 2 inf")
    add_output_args(p, row="run", plot="plot")
    p.add_argument("--workers", type=int, default=1,
                   help="processes training runs in parallel, one CPU thread each, all on "
                        "--device (default: 1, in this process)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="start no run after this many seconds (running ones finish); continue "
                        "later with --resume")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in the --json file and run only the missing ones")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.datasets = ["csbm-0.2", "csbm-0.8"]
        args.seeds, args.epochs, args.patience = [2], 30, 30
        args.csbm_nodes = 200
        if args.hops == [hop_label(k) for k in HOPS]:
            args.hops = ["1", "2", "inf"]
    if args.load:
        rows = load_rows(args.load)
        print(format_table(rows))
        if not args.no_plot:
            print(f"plot: {plot_hops(rows, Path(args.out) / 'node_classification_hops.png')}")
        return rows
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be >= 1, got {args.workers}")
    try:
        seeds = _seed_list(args.seeds[0] if len(args.seeds) == 1 else args.seeds)
        datasets = [canonical_dataset(d) for d in args.datasets]
        hops = parse_hops(args.hops)
        done = resume_rows(args.json) if args.resume else []
        check_kept_rows(done, args.attn_dropout, budget=args.budget)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
    root = args.data_root
    if needs_root(datasets) and root is None and os.environ.get("AFFGRAPH_DATA") is None:
        from affgraph.datasets import resolve_root

        print(f"note: no --data-root or AFFGRAPH_DATA; reading {resolve_root()}", file=sys.stderr)
    rows = run(datasets, args.models, hops=hops, seeds=seeds, data_root=root, done=done,
               epochs=args.epochs, patience=args.patience, csbm_nodes=args.csbm_nodes,
               progress=not args.no_progress, device=resolve_device(args.device),
               workers=args.workers, time_limit=args.time_limit, attn_dropout=args.attn_dropout,
               budget=args.budget,
               on_row=(lambda r: write_rows(r, json_path=args.json)) if args.json else None)
    if not rows:
        print("no runs finished")
        return rows
    print(format_table(rows))
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    if not args.no_plot:
        path = plot_hops(rows, Path(args.out) / "node_classification_hops.png")
        print(f"plot: {path}")
    return rows


if __name__ == "__main__":
    main()
