"""Run a PyG dataset class on verified, possibly read-only raw files, with no download.

PyG's ``Planetoid``/``WebKB`` read ``raw_dir`` and write ``processed_dir`` under one root. Here
``raw_dir`` is the verified folder of the data root (only read) and ``processed_dir`` lives in
the writable cache (:func:`affgraph.datasets._root.cache_dir`), in a folder named by the raw
files' checksums, so a processed file never outlives the raw files it came from. It is built in
a private temporary folder and renamed into place, so concurrent loads never see half a file.
``download()`` raises: raw files are fetched only by an explicit
:func:`affgraph.datasets.fetch` call.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from torch_geometric.data import Data

from affgraph.datasets._root import DataFileError, cache_dir


def _verified_class(cls: type) -> type:
    class Verified(cls):  # type: ignore[misc, valid-type]
        def __init__(self, raw: Path, processed: Path, **kwargs: Any) -> None:
            self._raw, self._processed = str(raw), str(processed)
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

    Verified.__name__ = f"Verified{cls.__name__}"
    return Verified


def load_verified(cls: type, raw: Path, key: list[str], checksums: list[str],
                  **kwargs: Any) -> Data:
    """Build ``cls(**kwargs)`` on the verified ``raw`` folder and return its single graph.

    Args:
        cls: a PyG ``InMemoryDataset`` class with one graph (``Planetoid``, ``WebKB``).
        raw: the folder of already verified raw files.
        key: path parts of the processed cache folder (e.g. ``["planetoid", "Cora", "public"]``).
        checksums: the raw files' sha256 digests, which name the cache folder.
    """
    digest = hashlib.sha256("".join(sorted(checksums)).encode()).hexdigest()[:16]
    final = cache_dir().joinpath("processed", *key, digest)
    verified = _verified_class(cls)
    if (final / "data.pt").is_file():
        return verified(raw, final, **kwargs)[0]
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    except OSError:  # read-only cache: process in a throwaway folder
        with tempfile.TemporaryDirectory() as scratch:
            return verified(raw, Path(scratch), **kwargs)[0]
    try:
        data = verified(raw, tmp, **kwargs)[0]
        try:
            os.rename(tmp, final)
        except OSError:  # another process got there first
            pass
        return data
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
