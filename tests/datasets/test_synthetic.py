import math

import numpy as np
import pytest
import torch
from sklearn.feature_selection import f_classif
from sklearn.model_selection import cross_val_score
from sklearn.svm import LinearSVC
from torch_geometric.utils import contains_self_loops, homophily, is_undirected

from affgraph.datasets import make_csbm, make_planted_features


@pytest.mark.parametrize("h", [0.0, 0.1, 0.2, 0.5, 0.8, 0.9, 1.0])
@pytest.mark.parametrize("classes", [2, 5])
def test_csbm_edge_homophily_hits_target(h, classes):
    data = make_csbm(3000, h, num_classes=classes, avg_degree=6.0, seed=3)
    measured = homophily(data.edge_index, data.y, method="edge")  # PyG's measure as the oracle
    assert abs(measured - h) < 0.03
    if h in (0.0, 1.0):
        assert measured == h
    assert is_undirected(data.edge_index) and not contains_self_loops(data.edge_index)
    assert abs(data.num_edges / data.num_nodes - 6.0) < 0.3   # mean degree E/N


def test_csbm_features_classes_and_masks():
    data = make_csbm(4000, 0.5, num_classes=4, num_features=16, feature_snr=3.0, seed=0)
    assert data.x.shape == (4000, 16) and data.x.dtype == torch.float32
    assert torch.bincount(data.y).tolist() == [1000] * 4
    means = torch.stack([data.x[data.y == c].double().mean(0) for c in range(4)])
    dist = torch.cdist(means, means)[~torch.eye(4, dtype=torch.bool)]
    assert torch.allclose(dist, torch.full_like(dist, 3.0), atol=0.15)  # equidistant at snr
    resid = data.x.double() - means[data.y]
    assert abs(float(resid.var()) - 1.0) < 0.02                         # unit noise
    tr, va, te = data.train_mask, data.val_mask, data.test_mask
    assert int(tr.sum()) == 2400 and int(va.sum()) == 800 and int(te.sum()) == 800
    assert bool((tr ^ va ^ te).all()) and not bool((tr & va).any())
    assert torch.bincount(data.y[tr]).tolist() == [600] * 4            # stratified


def test_csbm_snr_zero_means_uninformative_features():
    data = make_csbm(2000, 0.5, feature_snr=0.0, seed=1)
    acc = cross_val_score(LinearSVC(), data.x.numpy(), data.y.numpy(), cv=3).mean()
    assert acc < 0.58


def test_csbm_deterministic():
    a, b = make_csbm(500, 0.3, seed=7), make_csbm(500, 0.3, seed=7)
    for key in ("x", "edge_index", "y", "train_mask"):
        assert torch.equal(a[key], b[key])
    c = make_csbm(500, 0.3, seed=8)
    assert not torch.equal(a.edge_index, c.edge_index)


def test_csbm_bad_input():
    with pytest.raises(ValueError, match="homophily"):
        make_csbm(100, 1.5)
    with pytest.raises(ValueError, match="homophily"):
        make_csbm(100, math.nan)
    with pytest.raises(ValueError, match="n must be >= 6"):
        make_csbm(5, 0.5, num_classes=3)
    with pytest.raises(ValueError, match="avg_degree"):
        make_csbm(10, 0.5, avg_degree=20)
    with pytest.raises(ValueError, match="train_ratio \\+ val_ratio"):
        make_csbm(100, 0.5, train_ratio=0.8, val_ratio=0.3)
    with pytest.raises(TypeError, match="n must be an int"):
        make_csbm(100.0, 0.5)
    with pytest.raises(ValueError, match="num_features"):
        make_csbm(100, 0.5, num_classes=4, num_features=3)


def test_planted_features_ground_truth():
    X, y, inf = make_planted_features(600, 200, 8, n_classes=3, class_sep=1.0, seed=2)
    assert X.shape == (600, 200) and X.dtype == np.float64 and y.dtype == np.int64
    assert inf.shape == (8,) and np.all(np.diff(inf) > 0)
    assert np.bincount(y).tolist() == [200, 200, 200]
    assert np.allclose(X.mean(0), 0) and np.allclose(X.var(0), 1)  # variance tells nothing
    noise = np.setdiff1d(np.arange(200), inf)
    _, p = f_classif(X, y)
    assert (p[inf] < 1e-3).all()                      # each planted column carries the classes
    assert (p[noise] < 1e-3).mean() < 0.02            # pure noise columns (about 0.1% by chance)
    assert set(np.argsort(p, kind="stable")[:8]) == set(inf)
    acc_inf = cross_val_score(LinearSVC(), X[:, inf], y, cv=3).mean()
    acc_noise = cross_val_score(LinearSVC(), X[:, noise[:8]], y, cv=3).mean()
    assert acc_inf > 0.8 and acc_noise < 0.42         # chance is 1/3


def test_planted_redundant_are_linear_in_informative():
    X, y, inf = make_planted_features(300, 40, 5, n_redundant=3, seed=0)
    others = np.setdiff1d(np.arange(40), inf)
    A = np.column_stack([X[:, inf], np.ones(300)])    # affine: columns are standardised
    coef, *_ = np.linalg.lstsq(A, X[:, others], rcond=None)
    resid = np.linalg.norm(A @ coef - X[:, others], axis=0)
    assert int((resid < 1e-8).sum()) == 3             # exactly the redundant ones


def test_planted_label_noise():
    _, y0, _ = make_planted_features(2000, 10, 2, seed=1)
    _, y1, _ = make_planted_features(2000, 10, 2, flip_y=0.5, seed=1)
    changed = (y0 != y1).mean()                       # half relabelled, half of those change
    assert 0.2 < changed < 0.3


def test_planted_deterministic_and_errors():
    a = make_planted_features(100, 30, 4, seed=5)
    b = make_planted_features(100, 30, 4, seed=5)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    c = make_planted_features(100, 30, 4, seed=6)
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="exceeds"):
        make_planted_features(100, 5, 4, n_redundant=2)
    with pytest.raises(ValueError, match="n_samples"):
        make_planted_features(5, 10, 2, n_classes=3)
    with pytest.raises(ValueError, match="flip_y"):
        make_planted_features(50, 10, 2, flip_y=1.5)
