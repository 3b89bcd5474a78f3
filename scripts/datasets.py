"""The dataset script: list, verify, describe and fetch affgraph's datasets.

    python scripts/datasets.py list                    # every dataset, where it resolves, present?
    python scripts/datasets.py verify                  # sha256 of every file present
    python scripts/datasets.py info Cora               # nodes/edges/features/classes/homophily
    python scripts/datasets.py info colon              # samples/features/classes
    python scripts/datasets.py fetch Cora --root DIR   # download from the official source

The data root is ``--root``, else ``$AFFGRAPH_DATA``, else ``datasets/cache/``. Exit status 1
when a check fails or a download is impossible (offline it fails within ``--timeout`` seconds).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table  # noqa: E402

from affgraph.datasets import (DataFileError, list_datasets, load_embedded,  # noqa: E402
                               load_featsel, load_planetoid, load_webkb, resolve_root)
from affgraph.datasets._root import check_file, lookup, manifest  # noqa: E402
from affgraph.datasets.download import fetch  # noqa: E402


def _status(name: str, root: Path) -> tuple[str, list[str]]:
    """``("present" | "partial" | "missing" | "bundled", missing relative paths)``."""
    files = {rel: e for rel, e in manifest()["datasets"][name]["files"].items()
             if not e.get("optional")}
    if not files:
        return "bundled", []
    missing = [rel for rel in files if not (root / rel).is_file()]
    if not missing:
        return "present", []
    return ("missing" if len(missing) == len(files) else "partial"), missing


def _shape(entry: dict) -> str:
    s = entry["shape"]
    if "nodes" in s:
        return f"{s['nodes']} nodes, {s['edges']} edges, {s['features']} feats, {s['classes']} cls"
    return f"{s['samples']} x {s['features']}, {s['classes']} cls"


def cmd_list(root: Path) -> int:
    print(f"data root: {root}\n")
    table = []
    for name in list_datasets():
        entry = manifest()["datasets"][name]
        status, missing = _status(name, root)
        files = list(entry["files"])
        where = str(root / Path(files[0]).parts[0]) if files else "scikit-learn"
        table.append([name, entry["kind"], _shape(entry), where,
                      status + (f" ({len(missing)} missing)" if status == "partial" else "")])
    print(markdown_table(["dataset", "kind", "shape", "resolves to", "status"], table))
    return 0


def cmd_verify(root: Path, names: Sequence[str]) -> int:
    print(f"data root: {root}\n")
    bad = 0
    table = []
    for name in names or list_datasets():
        canonical, entry = lookup(name)
        files = entry["files"]
        present = [rel for rel in files if (root / rel).is_file()]
        if not files:
            table.append([canonical, "bundled", "-"])
            continue
        if not present:
            table.append([canonical, "not present", f"0/{len(files)}"])
            continue
        errors = []
        for rel in present:
            try:
                check_file(root, rel, files[rel], canonical)
            except DataFileError:
                errors.append(rel)
        bad += len(errors)
        status = "OK" if not errors else "ALTERED: " + ", ".join(errors)
        table.append([canonical, status, f"{len(present)}/{len(files)}"])
    print(markdown_table(["dataset", "sha256", "files present"], table))
    if bad:
        print(f"\n{bad} file(s) differ from the manifest: replace them (scripts/datasets.py "
              "fetch NAME) or restore the originals", file=sys.stderr)
    return 1 if bad else 0


def edge_homophily(edge_index: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of edges whose ends share a label (Zhu et al., NeurIPS 2020)."""
    if edge_index.size(1) == 0:
        return float("nan")
    return float((y[edge_index[0]] == y[edge_index[1]]).double().mean())


def cmd_info(name: str, root: Path) -> int:
    canonical, entry = lookup(name)
    kind = entry["kind"]
    if kind in ("planetoid", "webkb"):
        loader = load_planetoid if kind == "planetoid" else load_webkb
        data = loader(canonical, root)
        n, e = data.num_nodes, data.num_edges
        deg = torch.bincount(data.edge_index[1], minlength=n)
        rows = [["nodes", n], ["edges (directed pairs)", e], ["features", data.num_features],
                ["classes", int(data.y.max()) + 1],
                ["edge homophily", f"{edge_homophily(data.edge_index, data.y):.3f}"],
                ["mean in-degree", f"{e / n:.2f}"], ["isolated nodes", int((deg == 0).sum())]]
        for split in ("train", "val", "test"):
            mask = data[f"{split}_mask"]
            cnt = mask.sum(0)
            rows.append([f"{split} nodes" + (" (split 0 of 10)" if mask.dim() == 2 else ""),
                         int(cnt[0] if mask.dim() == 2 else cnt)])
    else:
        X, y = load_embedded(canonical) if kind == "embedded" else load_featsel(canonical, root)
        counts = np.bincount(y)
        rows = [["samples", X.shape[0]], ["features", X.shape[1]], ["classes", counts.size],
                ["class sizes", " ".join(map(str, counts))],
                ["constant features", int((np.ptp(X, axis=0) == 0).sum())],
                ["value range", f"[{X.min():g}, {X.max():g}]"]]
    print(f"{canonical} ({kind}; {entry['source']}; licence: {entry['licence']})\n")
    print(markdown_table(["statistic", "value"], rows))
    return 0


def cmd_fetch(name: str, root: Path, base_url: str | None, timeout: float) -> int:
    canonical, entry = lookup(name)
    if not entry["files"]:
        print(f"{canonical} is bundled with scikit-learn: nothing to fetch")
        return 0
    paths = fetch(canonical, root, base_url=base_url, timeout=timeout)
    print(f"{canonical}: {len(paths)} file(s) verified under {root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--root", default=None,
                   help="data root (default: $AFFGRAPH_DATA, then datasets/cache/)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="every dataset, where it resolves, whether present")
    v = sub.add_parser("verify", help="check the sha256 of every file present")
    v.add_argument("names", nargs="*", help="datasets to check (default: all)")
    i = sub.add_parser("info", help="a statistics table of one dataset")
    i.add_argument("name")
    f = sub.add_parser("fetch", help="download a dataset's raw files from the official source")
    f.add_argument("name")
    f.add_argument("--base-url", default=None, help="a mirror with the data root's layout")
    f.add_argument("--timeout", type=float, default=10.0, help="seconds per connection")
    for sp in (ls, v, i, f):
        sp.add_argument("--root", default=argparse.SUPPRESS, help="data root")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        root = resolve_root(args.root)
        if args.command == "list":
            return cmd_list(root)
        if args.command == "verify":
            return cmd_verify(root, args.names)
        if args.command == "info":
            return cmd_info(args.name, root)
        return cmd_fetch(args.name, root, args.base_url, args.timeout)
    except ValueError as err:  # unknown names, missing or altered files, failed downloads
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
