"""Where data lives and whether it is intact: root and cache folders, the manifest, sha256 checks.

Every raw file a loader reads is read into memory once and its bytes are checked against the
sha256 listed in the manifest (``affgraph/datasets/manifest.json``, shipped inside the
package); only those very bytes are then parsed or unpickled (:func:`read_verified`), so a file
swapped on disk after the check is never read. A missing file or an altered one raises
:class:`DataFileError` (a :class:`ValueError`) that names the expected path and the
:func:`affgraph.datasets.fetch` call that fills it. Nothing is ever downloaded implicitly.

Three folders are involved, each resolved in a fixed order:

- the **data root** (raw files, read only): the ``root`` argument, else ``$AFFGRAPH_DATA``, else
  :func:`default_root` (``affgraph`` in the user's data folder, where :func:`fetch` writes
  when it is given no root);
- the **cache** (processed files, written): ``$AFFGRAPH_CACHE``, else :func:`user_cache_dir`
  (``affgraph`` in the user's cache folder). It is never inside the installed package, the
  checkout or a data root, so a read-only root and a read-only install both work.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, NamedTuple

APP = "affgraph"
MANIFEST = "manifest.json"


class DataFileError(ValueError):
    """A data file is missing, altered, or unreadable."""


class DataCacheWarning(UserWarning):
    """A processed cache file failed its check and is being rebuilt from the raw files."""


class RawFile(NamedTuple):
    """A raw data file read once: its ``path``, its bytes ``data`` and their ``sha256``."""

    path: Path
    data: bytes
    sha256: str


def _platform_dir(kind: str) -> Path:
    """The user's base folder of ``kind`` ("cache" or "data") on this platform."""
    home = Path.home()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) if base else home / "AppData" / "Local"
    if sys.platform == "darwin":
        return home / "Library" / ("Caches" if kind == "cache" else "Application Support")
    var, fallback = (("XDG_CACHE_HOME", home / ".cache") if kind == "cache"
                     else ("XDG_DATA_HOME", home / ".local" / "share"))
    value = os.environ.get(var)
    return Path(value) if value and Path(value).is_absolute() else fallback


def user_cache_dir() -> Path:
    """The platform's per-user cache folder for affgraph.

    Linux and other POSIX systems: ``$XDG_CACHE_HOME/affgraph``, else ``~/.cache/affgraph``;
    macOS: ``~/Library/Caches/affgraph``; Windows: ``%LOCALAPPDATA%\\affgraph\\Cache``.
    """
    base = _platform_dir("cache") / APP
    return base / "Cache" if sys.platform == "win32" else base


def default_root() -> Path:
    """The data root used when neither ``root`` nor ``$AFFGRAPH_DATA`` is given.

    Linux and other POSIX systems: ``$XDG_DATA_HOME/affgraph``, else
    ``~/.local/share/affgraph``; macOS: ``~/Library/Application Support/affgraph``; Windows:
    ``%LOCALAPPDATA%\\affgraph\\Data``. :func:`affgraph.datasets.fetch` fills it when called
    without a root.
    """
    base = _platform_dir("data") / APP
    return base / "Data" if sys.platform == "win32" else base


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$AFFGRAPH_DATA``, else :func:`default_root`.

    Args:
        root (str or PathLike, optional): an explicit root folder. (default: :obj:`None`)

    The folder holds ``planetoid/``, ``webkb/``, ``featsel/`` and ``heterophilous/`` as laid out
    in the manifest. It may be read-only: loaders never write into it.
    """
    if root is None:
        env = os.environ.get("AFFGRAPH_DATA")
        return Path(env) if env else default_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
    return Path(root)


def cache_dir() -> Path:
    """The writable cache for processed files: ``$AFFGRAPH_CACHE``, else :func:`user_cache_dir`."""
    env = os.environ.get("AFFGRAPH_CACHE")
    return Path(env) if env else user_cache_dir()


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The parsed manifest (``{"version": 1, "datasets": {name: entry}}``), read from the
    installed package with :mod:`importlib.resources` (works from a wheel or a zip)."""
    res = resources.files(__package__).joinpath(MANIFEST)
    try:
        return json.loads(res.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataFileError(f"cannot read the dataset manifest {res}: {err}. The affgraph "
                            "installation is incomplete; reinstall the package") from err


def list_datasets(kind: str | None = None) -> list[str]:
    """Names of every dataset affgraph knows, optionally of one ``kind``: ``"planetoid"``,
    ``"webkb"``, ``"heterophilous"``, ``"featsel"`` (raw files in a data root),
    ``"embedded"`` (bundled with scikit-learn) or ``"synthetic"`` (generated)."""
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


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data`` (bytes already in memory)."""
    return hashlib.sha256(data).hexdigest()


def fetch_hint(dataset: str, root: Path) -> str:
    """The library call that downloads ``dataset`` into ``root``."""
    return f'affgraph.datasets.fetch("{dataset}", root="{root}")'


def read_file(root: Path, rel: str, entry: dict[str, Any], dataset: str) -> RawFile:
    """Read one raw file once and verify its bytes against its manifest entry.

    The returned :class:`RawFile` holds the bytes that were hashed: parse those, never the path
    again, so a file replaced on disk after the check is never read.

    Raises :class:`DataFileError` if it is missing, unreadable, or its sha256 is not an accepted
    one.
    """
    path = root / rel
    fetch = fetch_hint(dataset, root)
    if not path.is_file():
        raise DataFileError(
            f"missing data file for {dataset}: expected {path}. Put the file there, point "
            f"the loader at a data root that has it (root=... or set AFFGRAPH_DATA), or "
            f"download it with `{fetch}`")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataFileError(f"cannot read data file {path} for {dataset}: {err}") from err
    digest = sha256_bytes(data)
    if digest not in entry["sha256"]:
        raise DataFileError(
            f"checksum mismatch for {path}: sha256 {digest} is not the manifest's "
            f"{' or '.join(entry['sha256'])}. The file is altered or corrupted; replace it "
            f"(e.g. `{fetch}`)")
    return RawFile(path, data, digest)


def check_file(root: Path, rel: str, entry: dict[str, Any], dataset: str) -> Path:
    """Verify one raw file against its manifest entry; return its path.

    Raises :class:`DataFileError` if it is missing or its sha256 is not an accepted one.
    """
    return read_file(root, rel, entry, dataset).path


def read_verified(name: str, root: str | os.PathLike | None = None, *,
                  files: Iterable[str] | None = None) -> tuple[Path, dict[str, RawFile]]:
    """Read and verify the raw files of dataset ``name``: ``(root, {relative path: RawFile})``.

    Args:
        name (str): a dataset name from :func:`list_datasets`.
        root (str or PathLike, optional): the data root (see :func:`resolve_root`).
        files (iterable of str, optional): the relative paths to read (default: every
            non-optional file of the dataset).
    """
    canonical, entry = lookup(name)
    base = resolve_root(root)
    wanted = list(files) if files is not None else [
        rel for rel, e in entry["files"].items() if not e.get("optional", False)]
    out = {}
    for rel in wanted:
        if rel not in entry["files"]:
            raise ValueError(f"{rel!r} is not a file of dataset {canonical} in the manifest")
        out[rel] = read_file(base, rel, entry["files"][rel], canonical)
    return base, out


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
    return read_verified(name, root, files=files)[0]
