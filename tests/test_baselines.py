import networkx as nx
import numpy as np
import pytest
import scipy.linalg
from sklearn.feature_selection import f_classif
from skrebate import ReliefF

from affgraph.baselines import fisher_score, laplacian_score, mrmr_order, relieff_score
from affgraph.datasets import make_planted_features


def _data(n=60, d=8, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.arange(n) % classes
    X[:, 0] += 1.5 * y  # feature 0 carries the class
    return X, y


# ---- Fisher score ------------------------------------------------------------------------

def test_fisher_hand_computed():
    X = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 6.0], [7.0, 4.0]])
    y = np.array([0, 0, 1, 1])
    # f0: means 2, 6, overall 4 -> between 2*4 + 2*4 = 16; within 1+1+1+1 = 4 -> 4
    # f1: means 5, 5 -> between 0 -> 0
    assert np.allclose(fisher_score(X, y), [4.0, 0.0])


@pytest.mark.parametrize("classes", [2, 3, 5])
def test_fisher_equals_scaled_anova_f(classes):
    X, y = _data(n=90, classes=classes)
    F, _ = f_classif(X, y)
    n, C = X.shape[0], classes
    assert np.allclose(fisher_score(X, y), F * (C - 1) / (n - C), rtol=1e-10)


def test_fisher_constant_and_perfect_features():
    y = np.array([0, 0, 1, 1, 1])
    X = np.stack([np.full(5, 3.0), y * 2.0 + 1.0, np.arange(5.0)], axis=1)
    s = fisher_score(X, y)
    assert s[0] == 0.0 and s[1] == np.inf and np.isfinite(s[2]) and s[2] > 0


def test_fisher_bad_input():
    X, y = _data()
    with pytest.raises(ValueError, match="at least 2 classes"):
        fisher_score(X, np.zeros(len(y)))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fisher_score(X, y)
    with pytest.raises(ValueError):
        fisher_score(X[:, :3], y[:10])


# ---- Laplacian score ---------------------------------------------------------------------

def _laplacian_score_networkx(X, k):
    """Independent reference: the kNN heat-kernel graph built with loops and networkx."""
    n = X.shape[0]
    D2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for i in range(n):
        for j in np.argsort(D2[i], kind="stable")[1:k + 1]:
            G.add_edge(i, int(j), d2=D2[i, j])
    t = np.mean([e["d2"] for _, _, e in G.edges(data=True)])
    for _, _, e in G.edges(data=True):
        e["weight"] = np.exp(-e["d2"] / t)
    L = nx.laplacian_matrix(G, nodelist=range(n), weight="weight").toarray()
    Dm = np.diag([G.degree(i, weight="weight") for i in range(n)])
    one = np.ones(n)
    out = []
    for f in X.T:
        ft = f - (f @ Dm @ one) / (one @ Dm @ one) * one
        out.append((ft @ L @ ft) / (ft @ Dm @ ft))
    return np.array(out)


def test_laplacian_matches_networkx_reference():
    X, _ = _data(n=40, d=6)
    assert np.allclose(laplacian_score(X, n_neighbors=4), _laplacian_score_networkx(X, 4), rtol=1e-9)


def test_laplacian_generalised_eigenvector_attains_its_eigenvalue():
    rng = np.random.default_rng(1)
    W = rng.random((12, 12))
    W = (W + W.T) / 2
    np.fill_diagonal(W, 0)
    D = np.diag(W.sum(1))
    vals, vecs = scipy.linalg.eigh(D - W, D)          # L v = lambda D v; v_0 is constant
    X = np.column_stack([vecs[:, 1], vecs[:, 5], rng.standard_normal(12)])
    s = laplacian_score(X, W=W)
    assert np.allclose(s[:2], vals[[1, 5]], rtol=1e-9)
    assert s[2] >= vals[1] - 1e-12                    # lambda_2 is the minimum


def test_laplacian_constant_feature_is_worst_and_errors():
    X, _ = _data(n=30, d=3)
    X[:, 1] = 2.0
    s = laplacian_score(X, n_neighbors=3)
    assert s[1] == np.inf and np.isfinite(s[[0, 2]]).all()
    with pytest.raises(ValueError, match="n_neighbors"):
        laplacian_score(X, n_neighbors=30)
    with pytest.raises(ValueError, match="symmetric"):
        laplacian_score(X, W=np.triu(np.ones((30, 30))))


# ---- ReliefF -----------------------------------------------------------------------------

def _relieff_loops(X, y, k):
    """Robnik-Sikonja & Kononenko (2003), Fig. 3, transcribed with plain loops (m = n)."""
    n, d = X.shape
    span = X.max(0) - X.min(0)
    span[span == 0] = 1
    classes = sorted(set(y))
    P = {c: np.mean(y == c) for c in classes}
    dist = lambda a, b: sum(abs(X[a, f] - X[b, f]) / span[f] for f in range(d))  # noqa: E731
    W = np.zeros(d)
    for i in range(n):
        for c in classes:
            cand = sorted((dist(i, j), j) for j in range(n) if j != i and y[j] == c)[:k]
            for _, j in cand:
                diff = np.abs(X[i] - X[j]) / span
                if c == y[i]:
                    W -= diff / (n * len(cand))
                else:
                    W += P[c] / (1 - P[y[i]]) * diff / (n * len(cand))
    return W


def test_relieff_matches_skrebate_binary():
    X, y = _data(n=50, d=7)
    ref = ReliefF(n_neighbors=6, categorical_threshold=0).fit(X, y).feature_importances_
    assert np.allclose(relieff_score(X, y, n_neighbors=6), ref, atol=1e-12)


def test_relieff_matches_loops_multiclass():
    X, y = _data(n=27, d=5, classes=3, seed=4)
    y[:4] = 2                                         # unequal class sizes
    assert np.allclose(relieff_score(X, y, n_neighbors=3), _relieff_loops(X, y, 3), atol=1e-12)
    # k larger than a class: capped at the class size, as in the loops
    assert np.allclose(relieff_score(X, y, n_neighbors=20), _relieff_loops(X, y, 20), atol=1e-12)


def test_relieff_ranks_planted_features_first():
    for seed in range(3):   # 4 classes on the corners of a square: both planted features matter
        X, y, inf = make_planted_features(200, 30, 2, n_classes=4, class_sep=2.0, seed=seed)
        assert set(np.argsort(-relieff_score(X, y))[:2]) == set(inf)
        assert set(np.argsort(-fisher_score(X, y))[:2]) == set(inf)
    top = np.argsort(-relieff_score(X, y))[:2]
    assert set(top) == set(inf)
    with pytest.raises(ValueError, match="n_neighbors"):
        relieff_score(X, y, n_neighbors=0)


# ---- mRMR --------------------------------------------------------------------------------

def test_mrmr_order_matches_mrmr_selection():
    # oracle: the package's own pandas implementation, on correlated and constant features
    import pandas as pd
    from mrmr import mrmr_classif

    rng = np.random.default_rng(5)
    X = rng.standard_normal((45, 30))
    y = np.arange(45) % 3
    X[:, 4] += y
    X[:, 9] = 2 * X[:, 4] + 0.05 * rng.standard_normal(45)  # redundant with feature 4
    X[:, 12] = 1.0                                           # constant: never a candidate
    ref = mrmr_classif(pd.DataFrame(X), pd.Series(y), K=20, n_jobs=1, show_progress=False)
    got = mrmr_order(X, y, 20)
    assert got.tolist() == [int(j) for j in ref]
    assert 12 not in got and got[0] == 4
    assert mrmr_order(X, y, 1000).size == 29  # capped by the candidates
    with pytest.raises(ValueError, match="k must"):
        mrmr_order(X, y, 0)
