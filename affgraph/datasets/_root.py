"""Where data lives and whether it is intact: root resolution, the manifest, sha256 checks.

Every raw file a loader reads is first checked against the sha256 listed in
``datasets/manifest.json``; only then is it parsed or unpickled. A missing file or an altered
one raises :class:`DataFileError` (a :class:`ValueError`) that names the expected path and the
``scripts/datasets.py fetch`` command. Nothing is ever downloaded implicitly.
"""
from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

_REPO = Path(__file__).resolve().parents[2]
MANIFEST_PATH = _REPO / "datasets" / "manifest.json"
DEFAULT_CACHE = _REPO / "datasets" / "cache"


class DataFileError(ValueError):
    """A data file is missing, altered, or unreadable."""


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$AFFGRAPH_DATA``, else ``datasets/cache/``.

    Args:
        root (str or PathLike, optional): an explicit root folder. (default: :obj:`None`)

    The folder holds ``planetoid/``, ``webkb/`` and ``featsel/`` as laid out in the manifest.
    It may be read-only: nothing is written into it.
    """
    if root is None:
        env = os.environ.get("AFFGRAPH_DATA")
        return Path(env) if env else DEFAULT_CACHE
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
    return Path(root)


def cache_dir() -> Path:
    """The writable cache for processed files: ``$AFFGRAPH_CACHE`` else ``datasets/cache/``."""
    env = os.environ.get("AFFGRAPH_CACHE")
    return Path(env) if env else DEFAULT_CACHE


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The parsed ``datasets/manifest.json`` (``{"version": 1, "datasets": {name: entry}}``)."""
    try:
        return json.loads(MANIFEST_PATH.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataFileError(f"cannot read the dataset manifest {MANIFEST_PATH}: {err}") from err


def list_datasets(kind: str | None = None) -> list[str]:
    """Names of every dataset in the manifest (optionally only one ``kind``:
    ``"planetoid"``, ``"webkb"``, ``"featsel"`` or ``"embedded"``)."""
    entries = manifest()["datasets"]
    kinds = {e["kind"] for e in entries.values()}
    if kind is not None and kind not in kinds:
        raise ValueError(f"unknown dataset kind {kind!r}; known kinds: {sorted(kinds)}")
    return [n for n, e in entries.items() if kind is None or e["kind"] == kind]


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


def lookup(name: str, kind: str | None = None) -> tuple[str, dict[str, Any]]:
    """The canonical name and manifest entry of ``name`` (case-insensitive, ``-`` = ``_``)."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a str, got {type(name).__name__}")
    known = list_datasets(kind)
    for canonical in known:
        if _norm(canonical) == _norm(name):
            return canonical, manifest()["datasets"][canonical]
    what = f"{kind} dataset" if kind else "dataset"
    raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")


def sha256sum(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(root: Path, rel: str, entry: dict[str, Any], dataset: str) -> Path:
    """Verify one raw file against its manifest entry; return its path.

    Raises :class:`DataFileError` if it is missing or its sha256 is not an accepted one.
    """
    path = root / rel
    fetch = f"python scripts/datasets.py fetch {dataset} --root {root}"
    if not path.is_file():
        raise DataFileError(
            f"missing data file for {dataset}: expected {path}. Put the file there (data root "
            f"from the root argument, then $AFFGRAPH_DATA, then datasets/cache/), or run `{fetch}`"
        )
    digest = sha256sum(path)
    if digest not in entry["sha256"]:
        raise DataFileError(
            f"checksum mismatch for {path}: sha256 {digest} is not the manifest's "
            f"{' or '.join(entry['sha256'])}. The file is altered or corrupted; replace it "
            f"(e.g. `{fetch}`)"
        )
    return path


def verify(name: str, root: str | os.PathLike | None = None, *,
           files: Iterable[str] | None = None) -> Path:
    """Check the raw files of dataset ``name`` under the resolved root before any parsing.

    Args:
        name (str): a dataset name from :func:`list_datasets`.
        root (str or PathLike, optional): the data root (see :func:`resolve_root`).
        files (iterable of str, optional): the relative paths to check (default: every
            non-optional file of the dataset).

    Returns the resolved root.
    """
    canonical, entry = lookup(name)
    base = resolve_root(root)
    wanted = list(files) if files is not None else [
        rel for rel, e in entry["files"].items() if not e.get("optional", False)]
    for rel in wanted:
        if rel not in entry["files"]:
            raise ValueError(f"{rel!r} is not a file of dataset {canonical} in the manifest")
        check_file(base, rel, entry["files"][rel], canonical)
    return base
