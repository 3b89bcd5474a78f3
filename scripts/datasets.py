"""The dataset script: list, verify, describe and fetch affgraph's datasets.

    python scripts/datasets.py list                    # every dataset known, present in the root?
    python scripts/datasets.py verify                  # every required file present and intact?
    python scripts/datasets.py verify Cora colon       # only these datasets
    python scripts/datasets.py info Cora               # nodes/edges/features/classes/homophily
    python scripts/datasets.py info colon              # samples/features/classes
    python scripts/datasets.py fetch Cora --root DIR   # download from the official source

The data root is ``--root``, else ``$AFFGRAPH_DATA``, else the per-user default folder
(``affgraph.datasets.resolve_root``; ``~/.local/share/affgraph`` on Linux). Exit status 1 when
the root is missing, a required file is missing or altered, or a download is impossible
(offline it fails within ``--timeout`` seconds). The same checks are library calls:
``affgraph.datasets.list_datasets()``, ``affgraph.datasets._root.verify(name, root)`` and
``affgraph.datasets.fetch(name, root=...)``.
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table  # noqa: E402

from affgraph.datasets import (DataFileError, list_datasets, load_embedded,  # noqa: E402
                               load_featsel, load_planetoid, load_webkb, resolve_root)
from affgraph.datasets._root import check_file, lookup, manifest, read_verified  # noqa: E402
from affgraph.datasets.download import fetch  # noqa: E402

NO_FILES = {"embedded": "bundled", "synthetic": "generated"}


def _required(entry: dict) -> dict[str, dict]:
    return {rel: e for rel, e in entry["files"].items() if not e.get("optional")}


def _status(name: str, root: Path) -> tuple[str, list[str]]:
    """``("present" | "partial" | "missing" | "bundled" | "generated", missing paths)``."""
    entry = manifest()["datasets"][name]
    files = _required(entry)
    if not files:
        return NO_FILES[entry["kind"]], []
    missing = [rel for rel in files if not (root / rel).is_file()]
    if not missing:
        return "present", []
    return ("missing" if len(missing) == len(files) else "partial"), missing


def _shape(entry: dict) -> str:
    s = entry["shape"]
    if "nodes" in s:
        return f"{s['nodes']} nodes, {s['edges']} edges, {s['features']} feats, {s['classes']} cls"
    if "samples" in s:
        return f"{s['samples']} x {s['features']}, {s['classes']} cls"
    return "any size"


def _where(entry: dict, root: Path) -> str:
    if entry["kind"] == "embedded":
        return "scikit-learn"
    if entry["kind"] == "synthetic":
        return entry["generator"]
    return str(root / Path(next(iter(entry["files"]))).parts[0])


def cmd_list(root: Path) -> int:
    note = "" if root.is_dir() else " (does not exist)"
    print(f"data root: {root}{note}\n")
    table, counts = [], {}
    for name in list_datasets():
        entry = manifest()["datasets"][name]
        status, missing = _status(name, root)
        counts[status] = counts.get(status, 0) + 1
        table.append([name, entry["kind"], _shape(entry), _where(entry, root),
                      status + (f" ({len(missing)} missing)" if status == "partial" else "")])
    print(markdown_table(["dataset", "kind", "shape", "resolves to", "status"], table))
    on_disk = sum(counts.get(k, 0) for k in ("present", "partial", "missing"))
    print(f"\n{counts.get('present', 0)} of {on_disk} file-based datasets present in the root"
          f" ({counts.get('partial', 0)} partial); {counts.get('bundled', 0)} bundled with "
          f"scikit-learn, {counts.get('generated', 0)} generated")
    return 0


def cmd_verify(root: Path, names: Sequence[str]) -> int:
    """Check every required file of ``names`` (default: every dataset) for presence and sha256;
    exit status 1, naming the files, when one is missing or altered or the root is missing."""
    if not root.is_dir():
        print(f"error: data root {root} does not exist (pass --root DIR or set AFFGRAPH_DATA; "
              "affgraph.datasets.fetch(name, root=DIR) fills one)", file=sys.stderr)
        return 1
    print(f"data root: {root}\n")
    table, altered, missing = [], [], []
    for name in names or list_datasets():
        canonical, entry = lookup(name)
        files = _required(entry)
        if not files:
            table.append([canonical, NO_FILES[entry["kind"]], "-"])
            continue
        absent = [rel for rel in files if not (root / rel).is_file()]
        bad = []
        for rel in files:
            if rel in absent:
                continue
            try:
                check_file(root, rel, files[rel], canonical)
            except DataFileError:
                bad.append(rel)
        altered += bad
        missing.append((canonical, absent, len(files)))
        status = ("OK" if not bad and not absent else
                  "; ".join(([f"ALTERED: {', '.join(bad)}"] if bad else []) +
                            ([f"MISSING {len(absent)}"] if absent else [])))
        table.append([canonical, status, f"{len(files) - len(absent)}/{len(files)}"])
    print(markdown_table(["dataset", "sha256", "files present"], table))
    for canonical, absent, total in missing:
        if len(absent) == total and total > 3:
            print(f"missing: all {total} files of {canonical}, e.g. {root / absent[0]}",
                  file=sys.stderr)
        else:
            for rel in absent:
                print(f"missing: {root / rel} ({canonical})", file=sys.stderr)
    for rel in altered:
        print(f"altered: {root / rel}", file=sys.stderr)
    n_missing = sum(len(a) for _, a, _ in missing)
    if altered or n_missing:
        print(f"\n{len(altered)} file(s) differ from the manifest and {n_missing} required "
              "file(s) are missing: restore the originals or download them with "
              f'affgraph.datasets.fetch("NAME", root="{root}")', file=sys.stderr)
        return 1
    return 0


def edge_homophily(edge_index: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of edges whose ends share a label (Zhu et al., NeurIPS 2020)."""
    if edge_index.size(1) == 0:
        return float("nan")
    return float((y[edge_index[0]] == y[edge_index[1]]).double().mean())


def _heterophilous(canonical: str, entry: dict, root: Path) -> Data:
    """The npz of a heterophilous set (its checked bytes) as a graph: edges made undirected as
    PyG's ``HeterophilousGraphDataset`` does, the ten splits as ``[N, 10]`` masks."""
    (rel,) = entry["files"]
    _, raw = read_verified(canonical, root, files=[rel])
    with np.load(io.BytesIO(raw[rel].data), allow_pickle=False) as z:  # the checked bytes
        x = torch.from_numpy(z["node_features"])
        edge_index = to_undirected(torch.from_numpy(z["edges"]).t(), num_nodes=x.size(0))
        masks = {f"{k}_mask": torch.from_numpy(z[f"{k}_masks"]).t()
                 for k in ("train", "val", "test")}
        return Data(x=x, edge_index=edge_index, y=torch.from_numpy(z["node_labels"]), **masks)


def cmd_info(name: str, root: Path) -> int:
    canonical, entry = lookup(name)
    kind = entry["kind"]
    if kind == "synthetic":
        print(f"{canonical} is generated by {entry['generator']}(...) ({entry['source']}); "
              "its size is a parameter: nothing to describe or fetch")
        return 0
    if kind in ("planetoid", "webkb", "heterophilous"):
        loader = {"planetoid": load_planetoid, "webkb": load_webkb}.get(kind)
        data = loader(canonical, root) if loader else _heterophilous(canonical, entry, root)
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
        where = ("bundled with scikit-learn" if entry["kind"] == "embedded"
                 else f"generated by {entry['generator']}")
        print(f"{canonical} is {where}: nothing to fetch")
        return 0
    paths = fetch(canonical, root, base_url=base_url, timeout=timeout)
    print(f"{canonical}: {len(paths)} file(s) verified under {root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--root", default=None,
                   help="data root (default: $AFFGRAPH_DATA, then the per-user data folder)")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="every dataset known, where it resolves, whether present")
    v = sub.add_parser("verify", help="every required file present, with the manifest's sha256")
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
