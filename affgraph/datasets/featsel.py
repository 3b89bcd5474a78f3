"""The scikit-feature ``.mat`` benchmark sets for feature selection (Li et al., 2017)."""
from __future__ import annotations

import io
import os

import numpy as np
import scipy.io
import scipy.sparse

from affgraph.datasets._root import DataFileError, lookup, read_verified


def encode_labels(y: np.ndarray) -> np.ndarray:
    """Map labels of any coding ({-1, 1}, 1..K, arbitrary values) to ``0..K-1`` (sorted order)."""
    y = np.asarray(y).ravel()
    return np.unique(y, return_inverse=True)[1].astype(np.int64)


def load_featsel(name: str, root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""A feature-selection benchmark from the scikit-feature repository (`"Feature Selection: A
    Data Perspective" <https://arxiv.org/abs/1601.07996>`_, Li et al., ACM CSUR 2017).

    Reads ``{root}/featsel/{name}.mat`` (variables ``X`` and ``Y``) once and parses the bytes
    whose sha256 was checked.
    ``X`` is stored as float or integer; it is returned as float64. ``Y`` is coded as
    ``{-1, 1}``, ``{1, 2}`` or ``1..K``; it is remapped to ``0..K-1`` in sorted order.

    Args:
        name (str): one of the 22 sets, e.g. ``"colon"``, ``"ALLAML"``, ``"Prostate-GE"``
            (case-insensitive, ``-`` = ``_``; see :func:`list_datasets("featsel")`).
        root (str or PathLike, optional): the data root; else ``$AFFGRAPH_DATA``, else the
            per-user default (see :func:`affgraph.datasets.resolve_root`). (default: :obj:`None`)

    Shapes:
        - **X**: :math:`(n, d)` float64, **y**: :math:`(n)` int64 in ``0..K-1``.
    """
    canonical, entry = lookup(name, "featsel")
    (rel,) = entry["files"]
    _, raw = read_verified(canonical, root, files=[rel])
    path, blob = raw[rel].path, raw[rel].data
    try:
        mat = scipy.io.loadmat(io.BytesIO(blob))  # the very bytes that were checked
    except Exception as err:  # scipy raises several types for malformed files
        raise DataFileError(f"cannot parse {path} as a MATLAB file: {err}") from err
    if "X" not in mat or "Y" not in mat:
        raise DataFileError(f"{path} lacks the variables X and Y (has {sorted(mat)})")
    X = mat["X"]
    X = X.toarray() if scipy.sparse.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    y = np.asarray(mat["Y"]).ravel()
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise DataFileError(f"{path}: X {X.shape} and Y {y.shape} do not describe the same samples")
    if not np.isfinite(X).all():
        raise DataFileError(f"{path}: X contains NaN or inf values")
    return X, encode_labels(y)
