"""Small classification sets bundled with scikit-learn (no files needed)."""
from __future__ import annotations

import numpy as np
from sklearn import datasets as _skd

from affgraph.datasets._root import lookup
from affgraph.datasets.featsel import encode_labels


def load_embedded(name: str) -> tuple[np.ndarray, np.ndarray]:
    r"""A scikit-learn bundled set: ``"breast_cancer"`` (569 x 30, 2 classes), ``"digits"``
    (1797 x 64, 10 classes) or ``"wine"`` (178 x 13, 3 classes).

    Args:
        name (str): the set's name (case-insensitive).

    Shapes:
        - **X**: :math:`(n, d)` float64, **y**: :math:`(n)` int64 in ``0..K-1``.
    """
    canonical, _ = lookup(name, "embedded")
    X, y = getattr(_skd, f"load_{canonical}")(return_X_y=True)
    return np.asarray(X, dtype=np.float64), encode_labels(y)
