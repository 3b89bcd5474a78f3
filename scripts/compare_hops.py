"""How many hops? One affinity-graph diffusion, two tasks: node classification and feature ranking.

affgraph's claim is that attention (one hop over an affinity graph of nodes) and Inf-FS
(infinitely many hops over an affinity graph of features) are two ends of one axis. This
script walks that axis on both tasks and prints a table for each:

- node classification on contextual SBM graphs from heterophilous to homophilous: learned
  affinity (``AffinityAttention``) and fixed affinity (``AffinityDiffusionCR``, GRAND's random
  propagation), each with hops 1, 2, 4, 8, inf, against GCN, via ``node_classification.run``;
- feature ranking on breast_cancer, digits and a planted-feature set (``InfFS`` with 1, 2, 5
  and infinitely many hops, dense and kNN-sparsified; the label-aware ``InfFS(variant=
  "relevance", hops="cv")``, class relevance times non-redundancy on the kNN feature graph with
  the hop count chosen by inner cross-validation on each training fold, ``inffs-rel-affcv``
  with the graph's form chosen too, and the product graph at 1 and infinitely many hops;
  against ANOVA F and random), via ``feature_ranking.run``.

The default run needs no files and takes under 3 minutes on 2 CPU cores. ``--full`` runs the
real datasets (Planetoid, WebKB, the 22 feature-selection sets) and needs a data root
(``--data-root`` or ``$AFFGRAPH_DATA``).

    python scripts/compare_hops.py                                  # embedded data, < 3 min
    python scripts/compare_hops.py --full --data-root /path/to/data
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import feature_ranking  # noqa: E402
import node_classification  # noqa: E402
from _common import write_rows  # noqa: E402

NODE_DATASETS = ("csbm-0.1", "csbm-0.5", "csbm-0.9")
NODE_MODELS = ("GCN", "AffinityAttention", "AffinityDiffusionCR")
NODE_HOPS = (1, 2, 4, 8, math.inf)
FEATURE_DATASETS = ("breast_cancer", "digits", "planted")
FEATURE_SELECTORS = ("inffs-h1", "inffs-h2", "inffs-h5", "inffs-hinf", "inffs-knn-hinf",
                     "inffs-rel-h1", "inffs-rel-hinf", "inffs-rel-cv", "inffs-rel-affcv",
                     "anova", "random")
FEATURE_KS = (5, 10, 20)

FULL_NODE_DATASETS = node_classification.PLANETOID + node_classification.WEBKB + NODE_DATASETS
FULL_NODE_MODELS = node_classification.DEFAULT_MODELS
FULL_NODE_HOPS = node_classification.HOPS
FULL_FEATURE_DATASETS = ("all",)
FULL_FEATURE_SELECTORS = ("inffs", "rel", "baselines")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--full", action="store_true",
                   help="the real datasets (needs --data-root or AFFGRAPH_DATA), all models "
                        "and selectors, 10 node-classification seeds")
    p.add_argument("--data-root", default=None, help="folder with planetoid/, webkb/, featsel/")
    p.add_argument("--seeds", type=int, default=None,
                   help="node-classification seeds (default: 2; 10 with --full)")
    p.add_argument("--feature-seeds", type=int, default=1,
                   help="feature-ranking seeds (cross-validation shuffles; default: 1)")
    p.add_argument("--epochs", type=int, default=None,
                   help="max training epochs (default: 100; 500 with --full)")
    p.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience (default: 20; 100 with --full)")
    p.add_argument("--csbm-nodes", type=int, default=300,
                   help="nodes of each cSBM graph (default: 300; 1000 with --full)")
    p.add_argument("--tiny", action="store_true",
                   help="a seconds-long smoke run (tests): 1 seed, few epochs, small data")
    p.add_argument("--out", default="results", help="folder of the plots (default: results/)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--json", default=None,
                   help="write {'node_classification': rows, 'feature_ranking': rows} here")
    p.add_argument("--csv", default=None,
                   help="write the rows as NAME_nodes.csv and NAME_features.csv beside this path")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--no-progress", action="store_true")
    return p


def _csv_paths(path: str) -> tuple[str, str]:
    p = Path(path)
    suffix = p.suffix or ".csv"
    return (str(p.with_name(f"{p.stem}_nodes{suffix}")),
            str(p.with_name(f"{p.stem}_features{suffix}")))


def main(argv: Sequence[str] | None = None) -> dict[str, list[dict]]:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    root = args.data_root
    if args.full:
        root = node_classification.data_root_or_fail(root)
        node_cfg = dict(datasets=FULL_NODE_DATASETS, models=FULL_NODE_MODELS,
                        hops=FULL_NODE_HOPS, seeds=10, epochs=500, patience=100,
                        csbm_nodes=1000)
        feat_cfg = dict(datasets=FULL_FEATURE_DATASETS, selectors=FULL_FEATURE_SELECTORS,
                        ks=feature_ranking.KS, n_folds=5)
    else:
        node_cfg = dict(datasets=NODE_DATASETS, models=NODE_MODELS, hops=NODE_HOPS, seeds=2,
                        epochs=100, patience=20, csbm_nodes=args.csbm_nodes)
        feat_cfg = dict(datasets=FEATURE_DATASETS, selectors=FEATURE_SELECTORS,
                        ks=FEATURE_KS, n_folds=3)
        if args.tiny:
            node_cfg.update(datasets=("csbm-0.2", "csbm-0.9"), hops=(1, 2), seeds=1,
                            epochs=3, patience=3, csbm_nodes=60)
            feat_cfg.update(datasets=("breast_cancer", "planted-small"),
                            selectors=("inffs-h1", "inffs-hinf", "inffs-rel-cv", "anova"),
                            ks=(5,), n_folds=2)
    for key in ("seeds", "epochs", "patience"):
        if getattr(args, key) is not None:
            node_cfg[key] = getattr(args, key)
    if args.full and args.csbm_nodes != build_parser().get_default("csbm_nodes"):
        node_cfg["csbm_nodes"] = args.csbm_nodes
    progress = not args.no_progress

    print("## Node classification: learned (AffinityAttention) and fixed (AffinityDiffusionCR) "
          "affinity hops vs GCN "
          f"({', '.join(node_cfg['datasets'])})\n", flush=True)
    node_rows = node_classification.run(
        node_cfg["datasets"], node_cfg["models"], hops=node_cfg["hops"],
        seeds=node_cfg["seeds"], data_root=root, epochs=node_cfg["epochs"],
        patience=node_cfg["patience"], csbm_nodes=node_cfg["csbm_nodes"], progress=progress)
    print(node_classification.format_table(node_rows), flush=True)

    print("\n## Feature ranking: Inf-FS hops and the label-aware Inf-FS vs baselines "
          f"({', '.join(feat_cfg['datasets'])})\n", flush=True)
    feat_rows = feature_ranking.run(
        feat_cfg["datasets"], feat_cfg["selectors"], ks=feat_cfg["ks"],
        seeds=args.feature_seeds, n_folds=feat_cfg["n_folds"], root=root, progress=progress)
    print(feature_ranking.format_tables(feat_rows), flush=True)

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"node_classification": node_rows, "feature_ranking": feat_rows}, indent=2,
            default=float))
    if args.csv:
        node_csv, feat_csv = _csv_paths(args.csv)
        write_rows(node_rows, csv_path=node_csv)
        write_rows(feat_rows, csv_path=feat_csv)
    if not args.no_plot:
        paths = [node_classification.plot_hops(node_rows,
                                               Path(args.out) / "compare_hops_nodes.png")]
        if feat_rows:
            paths += feature_ranking.plot(feat_rows, Path(args.out))
        for path in paths:
            print(f"plot: {path}")
    return {"node_classification": node_rows, "feature_ranking": feat_rows}


if __name__ == "__main__":
    main()
