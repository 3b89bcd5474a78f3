"""Run a PyG dataset class on verified raw bytes, and cache its graph so that no planted file runs.

PyG's ``Planetoid``/``WebKB`` read ``raw_dir`` and write (and later unpickle) ``processed_dir``
under one root. Here neither folder is one a user or another process can reach:

- **Raw files.** The loader reads each raw file once and checks those bytes against the
  manifest (:func:`affgraph.datasets._root.read_verified`). The very same bytes are written
  into a private working folder (``mkdtemp``, mode ``0700``) that PyG parses, so a file swapped
  in the data root after its check is never read.
- **Processing.** PyG's ``processed_dir`` is a fresh folder inside the same working folder and
  the processed graph is handed over in memory: PyG never loads a ``processed/*.pt``,
  ``pre_transform.pt`` or ``pre_filter.pt`` that it did not just write.
- **Cache.** The graph is cached in the per-user cache folder
  (:func:`affgraph.datasets._root.cache_dir`) under ``processed/<key>/<digest>``, where the
  digest covers the sha256 of every raw file actually read (so each accepted variant of a file
  has its own folder). The folder holds ``data.pt``, a ``torch.save`` of a plain dictionary of
  tensors, and ``affgraph.json``, the size and sha256 of ``data.pt``. A cached load reads the
  bytes of ``data.pt`` once, checks them against ``affgraph.json`` and unpickles those bytes with
  ``torch.load(weights_only=True)``, which refuses to construct arbitrary objects. Any other file
  in the folder is ignored. A missing, truncated, altered or unreadable cache file is reported
  in a :class:`~affgraph.datasets._root.DataCacheWarning` naming it, and the graph is rebuilt
  from the raw files.
- **Atomicity.** A cache folder is written complete in a ``.tmp-*`` folder next to it and
  renamed into place. A ``.tmp-*`` folder left by a load that was killed is removed by a later
  load once it is older than :data:`STALE_AFTER` seconds and no running load holds its lock.

``download()`` raises: raw files are fetched only by an explicit
:func:`affgraph.datasets.fetch` call.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tempfile
import time
import warnings
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Mapping

import torch
from torch_geometric.data import Data

from affgraph.datasets import _root
from affgraph.datasets._root import DataCacheWarning, DataFileError, RawFile, cache_dir

try:  # POSIX: a running load holds an advisory lock on its working folder
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale folders are judged by age alone
    fcntl = None  # type: ignore[assignment]

FORMAT = 1
DATA = "data.pt"
SIDECAR = "affgraph.json"
LOCK = ".lock"
STALE_AFTER = 600.0  # seconds after which an unlocked .tmp-* folder counts as abandoned
MAX_SIDECAR = 1 << 16


def _verified_class(cls: type) -> type:
    class Verified(cls):  # type: ignore[misc, valid-type]
        def __init__(self, raw: Path, processed: Path, **kwargs: Any) -> None:
            self._raw, self._processed = str(raw), str(processed)
            self._built: tuple[Any, Any] | None = None
            super().__init__(root=str(processed), **kwargs)

        @property
        def raw_dir(self) -> str:
            return self._raw

        @property
        def processed_dir(self) -> str:
            return self._processed

        def download(self) -> None:
            raise DataFileError(f"raw files missing under {self._raw} (affgraph never downloads "
                                "implicitly; call affgraph.datasets.fetch(name, root=...))")

        def save(self, data_list: Any, path: str) -> None:  # keep the graph in memory
            self._built = self.collate(data_list)

        def load(self, path: str, data_cls: type = Data) -> None:  # never unpickle a file
            if self._built is None:
                raise DataFileError(f"{cls.__name__} produced no graph from {self._raw}")
            self.data, self.slices = self._built

    Verified.__name__ = f"Verified{cls.__name__}"
    return Verified


def cache_folder(key: list[str], files: Mapping[str, RawFile]) -> Path:
    """The cache folder of a graph built from ``files``: ``processed/<key...>/<digest>``.

    The digest covers the cache format and the relative path and sha256 of every raw file read,
    so two accepted versions of one raw file never share a folder.
    """
    ident = json.dumps({"format": FORMAT, "raw": sorted((rel, f.sha256)
                                                         for rel, f in files.items())})
    return cache_dir().joinpath("processed", *key, _root.sha256_bytes(ident.encode())[:16])


def _encode(data: Data) -> bytes:
    tensors = data.to_dict()
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise TypeError(f"graph attribute {k!r} is a {type(v).__name__}, not a tensor")
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "data": tensors}, buf)
    return buf.getvalue()


def _decode(blob: bytes) -> Data:
    obj = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if not (isinstance(obj, dict) and obj.get("format") == FORMAT
            and isinstance(obj.get("data"), dict)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                    for k, v in obj["data"].items())):
        raise ValueError("not an affgraph graph (a dictionary of tensors)")
    return Data.from_dict(obj["data"])


def _warn(message: str) -> None:
    warnings.warn(message + "; rebuilding it from the verified raw files", DataCacheWarning,
                  stacklevel=4)


def _read_cache(final: Path) -> tuple[Data | None, str | None]:
    """``(graph, None)`` if ``final/data.pt`` matches the size and sha256 that
    ``final/affgraph.json`` records, else ``(None, why)`` naming the file (``why`` is ``None``
    when the folder does not exist)."""
    if not final.is_dir():
        return None, None
    sidecar, path = final / SIDECAR, final / DATA
    try:
        with open(sidecar, "rb") as f:
            raw = f.read(MAX_SIDECAR + 1)
        if len(raw) > MAX_SIDECAR:
            raise ValueError("too large")
        meta = json.loads(raw)
        record = meta["files"][DATA] if isinstance(meta, dict) and meta.get(
            "format") == FORMAT and isinstance(meta.get("files"), dict) else None
        if not (isinstance(record, dict) and isinstance(record.get("sha256"), str)
                and isinstance(record.get("size"), int)):
            raise ValueError(f"no sha256 and size recorded for {DATA}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        return None, f"cache checksum file {sidecar} is missing or unreadable ({err})"
    try:
        with open(path, "rb") as f:
            blob = f.read(record["size"] + 1)  # never more than the recorded size
    except OSError as err:
        return None, f"processed cache file {path} is unreadable ({err})"
    if len(blob) != record["size"] or _root.sha256_bytes(blob) != record["sha256"]:
        size = f"{len(blob)} bytes" if len(blob) <= record["size"] else "larger"
        return None, (f"processed cache file {path} does not match the size and sha256 "
                      f"recorded in {sidecar} (truncated or altered: {size}, "
                      f"{record['size']} recorded)")
    try:
        return _decode(blob), None
    except pickle.UnpicklingError:
        why = "it holds objects other than tensors, refused by torch.load(weights_only=True)"
        return None, f"processed cache file {path} is not a graph saved by affgraph ({why})"
    except Exception as err:  # torch raises several types for malformed archives
        why = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return None, f"processed cache file {path} is not a graph saved by affgraph ({why})"


def _locked(folder: Path) -> bool:
    """Whether a running load holds the lock of the working ``folder``."""
    if fcntl is None or not (folder / LOCK).is_file():
        return False
    try:
        with open(folder / LOCK, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(f, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def clean_stale(parent: Path, older_than: float = STALE_AFTER) -> list[Path]:
    """Remove the ``.tmp-*`` folders in ``parent`` that a killed load left behind: older than
    ``older_than`` seconds and not locked by a running load. Returns the folders removed."""
    removed = []
    try:
        children = list(parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for child in children:
        if not child.name.startswith(".tmp-") or child.is_symlink() or not child.is_dir():
            continue
        try:
            age = now - child.stat().st_mtime
        except OSError:
            continue
        if age > older_than and not _locked(child):
            shutil.rmtree(child, ignore_errors=True)
            if not child.exists():
                removed.append(child)
    return removed


class _Workdir:
    """A private working folder (``mkdtemp``, mode 0700) locked for as long as it is used: in
    the cache next to the final folder when writable, else in the system's temporary folder."""

    def __init__(self, parent: Path) -> None:
        self.in_cache = True
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
        except OSError:  # read-only cache: work in a throwaway folder
            self.in_cache = False
            self.path = Path(tempfile.mkdtemp(prefix="affgraph-"))
        self._lock = open(self.path / LOCK, "wb")
        if fcntl is not None:
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    def __enter__(self) -> "_Workdir":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _write_raw(folder: Path, files: Mapping[str, RawFile], prefix: str) -> Iterator[Path]:
    for rel, f in files.items():
        sub = PurePosixPath(rel[len(prefix):] if rel.startswith(prefix) else rel)
        if sub.is_absolute() or ".." in sub.parts:
            raise ValueError(f"raw file {rel!r} lies outside {prefix!r}")
        dest = folder.joinpath(*sub.parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.data)
        yield dest


def _install(out: Path, final: Path, work: Path) -> None:
    """Rename the complete folder ``out`` to ``final``, moving a stale ``final`` aside first
    (a valid ``final`` that another load installed meanwhile is kept)."""
    try:
        os.rename(out, final)
        return
    except OSError:
        if not final.exists():
            raise
    if _read_cache(final)[0] is not None:
        return
    try:
        os.rename(final, work / "stale")  # removed with the working folder
        os.rename(out, final)
    except OSError:  # another load installed its copy meanwhile
        pass


def load_verified(cls: type, files: Mapping[str, RawFile], prefix: str, key: list[str],
                  **kwargs: Any) -> Data:
    """Build ``cls(**kwargs)`` on verified raw bytes and return its single graph, cached.

    Args:
        cls: a PyG ``InMemoryDataset`` class with one graph (``Planetoid``, ``WebKB``).
        files: the verified raw files (relative path -> :class:`RawFile`), as read by
            :func:`affgraph.datasets._root.read_verified`.
        prefix: the part of their relative paths that is the dataset's raw folder (e.g.
            ``"planetoid/Cora/raw/"``); the rest is their path inside PyG's ``raw_dir``.
        key: path parts of the processed cache folder (e.g. ``["planetoid", "Cora", "public"]``).
    """
    final = cache_folder(key, files)
    clean_stale(final.parent)
    data, problem = _read_cache(final)
    if data is not None:
        return data
    if problem is not None:
        _warn(problem)
    with _Workdir(final.parent) as work:
        raw = work.path / "raw"
        raw.mkdir()
        list(_write_raw(raw, files, prefix))
        built = _verified_class(cls)(raw, work.path / "pyg", **kwargs)[0]
        blob = _encode(built)
        data = _decode(blob)  # the graph returned is the one a cached load returns
        if work.in_cache:
            out = work.path / "out"
            out.mkdir()
            (out / DATA).write_bytes(blob)
            meta = {"format": FORMAT,
                    "files": {DATA: {"sha256": _root.sha256_bytes(blob), "size": len(blob)}},
                    "raw": {rel: f.sha256 for rel, f in sorted(files.items())}}
            (out / SIDECAR).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            try:
                _install(out, final, work.path)
            except OSError:  # the cache cannot take it: the graph is still returned
                pass
    return data
