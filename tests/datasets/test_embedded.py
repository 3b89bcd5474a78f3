import numpy as np
import pytest
from sklearn.datasets import load_wine

from affgraph.datasets import load_embedded


@pytest.mark.parametrize("name,shape,k", [("breast_cancer", (569, 30), 2),
                                          ("digits", (1797, 64), 10),
                                          ("wine", (178, 13), 3)])
def test_embedded(name, shape, k):
    X, y = load_embedded(name)
    assert X.shape == shape and X.dtype == np.float64 and y.dtype == np.int64
    assert np.array_equal(np.unique(y), np.arange(k))


def test_embedded_values_and_errors():
    X, y = load_embedded("WINE")
    ref = load_wine()
    assert np.array_equal(X, ref.data) and np.array_equal(y, ref.target)
    with pytest.raises(ValueError, match="unknown embedded dataset 'iris'.*breast_cancer"):
        load_embedded("iris")
