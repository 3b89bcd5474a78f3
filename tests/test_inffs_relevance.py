"""The label-aware Inf-FS graph (variant="relevance") against float64 numpy references: the
affinity, the closed form, the K-hop series, the kNN graph, and the inner-CV hop choice."""
import math

import numpy as np
import pytest
import scipy.stats
import torch
from sklearn.feature_selection import f_classif
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import StratifiedKFold

from affgraph.inffs import feature_affinity, inffs_scores
from affgraph.relevance import anova_scores, choose_hops
from affgraph.selection import InfFS


def _data(m=60, n=14, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(m) % classes
    X = rng.normal(size=(m, n)) * rng.uniform(0.5, 2.0, size=n)
    X[:, 0] += 1.5 * y
    X[:, 1] = X[:, 0] + 0.3 * rng.normal(size=m)  # relevant and redundant with feature 0
    X[:, 2] += 1.2 * (y == 1)
    X[:, 3] = np.round(X[:, 3])  # ties in the ranks
    return X, y


def _ref_A(X, y, correlation="spearman"):
    f = np.nan_to_num(f_classif(X, y)[0])
    q = f / f.max()
    if correlation == "spearman":
        C = scipy.stats.spearmanr(X).correlation
    else:
        C = np.corrcoef(X, rowvar=False)
    return np.outer(q, q) * (1 - np.abs(C))


def _rank(s):
    return np.argsort(-np.asarray(s), kind="stable")


@pytest.mark.parametrize("correlation", ["spearman", "pearson"])
def test_affinity_is_relevance_product_times_non_redundancy(correlation):
    X, y = _data()
    A = feature_affinity(X, y, variant="relevance", correlation=correlation,
                         gemm_dtype=torch.float64)
    ref = _ref_A(X, y, correlation)
    np.testing.assert_allclose(A.dense().numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(np.diag(ref), 0.0, atol=1e-12)
    # string labels give the same graph; None is anova / spearman
    np.testing.assert_array_equal(
        feature_affinity(X, np.array(list("abc"))[y], variant="relevance").dense().numpy(),
        feature_affinity(X, y, variant="relevance", relevance="anova",
                         correlation="spearman").dense().numpy())


def test_max_form():
    X, y = _data()
    f = np.nan_to_num(f_classif(X, y)[0])
    q = f / f.max()
    C = scipy.stats.spearmanr(X).correlation
    ref = 0.5 * np.maximum.outer(q, q) + 0.5 * (1 - np.abs(C))
    A = feature_affinity(X, y, variant="relevance", affinity="max", gemm_dtype=torch.float64)
    np.testing.assert_allclose(A.dense().numpy(), ref, atol=1e-12)
    r = 0.9 / np.linalg.eigvalsh(ref).max()
    n = ref.shape[0]
    closed = (np.linalg.inv(np.eye(n) - r * ref) - np.eye(n)).sum(1)
    np.testing.assert_allclose(inffs_scores(X, y, variant="relevance", affinity="max").numpy(),
                               closed, rtol=1e-8)


def test_fisher_and_mi_relevance():
    X, y = _data(classes=2)
    a, b = X[y == 0], X[y == 1]
    f = (a.mean(0) - b.mean(0)) ** 2 / (a.var(0, ddof=1) + b.var(0, ddof=1))
    q = f / f.max()
    C = scipy.stats.spearmanr(X).correlation
    A = feature_affinity(X, y, variant="relevance", relevance="fisher",
                         gemm_dtype=torch.float64).dense().numpy()
    np.testing.assert_allclose(A, np.outer(q, q) * (1 - np.abs(C)), atol=1e-12)
    from affgraph.inffs import mutual_info_scores
    mi = mutual_info_scores(X, y, 2)
    A = feature_affinity(X, y, variant="relevance", relevance="mi",
                         gemm_dtype=torch.float64).dense().numpy()
    np.testing.assert_allclose(A, np.outer(mi, mi) / mi.max() ** 2 * (1 - np.abs(C)),
                               atol=1e-12)


def test_anova_scores_match_f_classif():
    X, y = _data(classes=4)
    np.testing.assert_allclose(anova_scores(X, y, 4), f_classif(X, y)[0], rtol=1e-10)
    np.testing.assert_allclose(anova_scores(X * 1e-200, y, 4), f_classif(X, y)[0], rtol=1e-10)
    # a constant feature scores 0; one constant within each class gets the largest finite F
    X2 = X.copy()
    X2[:, 5] = 3.0
    X2[:, 6] = y * 2.0
    F = anova_scores(X2, y, 4)
    finite = np.delete(f_classif(X2, y)[0], [5, 6])
    assert F[5] == 0.0 and F[6] == np.delete(F, [5, 6]).max()
    np.testing.assert_allclose(F[6], finite.max(), rtol=1e-10)


def test_closed_form_and_k_hop_series():
    X, y = _data()
    A = _ref_A(X, y)
    n = A.shape[0]
    r = 0.9 / np.linalg.eigvalsh(A).max()
    closed = (np.linalg.inv(np.eye(n) - r * A) - np.eye(n)).sum(1)
    np.testing.assert_allclose(inffs_scores(X, y, variant="relevance").numpy(), closed,
                               rtol=1e-8)
    S = inffs_scores(X, y, variant="relevance", hops=[1, 2, 3]).numpy()
    v, series = np.ones(n), np.zeros(n)
    for K in (1, 2, 3):
        v = r * A @ v
        series = series + v
        np.testing.assert_allclose(S[K - 1], series, rtol=1e-9)
    # the tiled float32 products give the same ranking
    tiled = inffs_scores(X, y, variant="relevance", max_dense_bytes=0, block=5).numpy()
    np.testing.assert_allclose(tiled, closed, rtol=1e-5)
    assert _rank(closed)[0] in (0, 1)  # the most relevant pair leads


def test_knn_graph_series():
    X, y = _data(seed=3)
    A = _ref_A(X, y)
    n, k = A.shape[0], 3
    B = A.copy()
    np.fill_diagonal(B, -np.inf)
    keep = np.zeros((n, n), bool)
    for i in range(n):
        keep[i, np.argsort(-B[i], kind="stable")[:k]] = True
    keep |= keep.T
    Ak = np.where(keep, A, 0.0)
    r = 0.9 / np.linalg.eigvalsh(Ak).max()
    closed = (np.linalg.inv(np.eye(n) - r * Ak) - np.eye(n)).sum(1)
    np.testing.assert_allclose(inffs_scores(X, y, variant="relevance", knn=k).numpy(), closed,
                               rtol=1e-7)
    two = inffs_scores(X, y, variant="relevance", knn=k, hops=2).numpy()
    np.testing.assert_allclose(two, r * Ak.sum(1) + r * r * Ak @ Ak.sum(1), rtol=1e-9)


def _direct_cv(X, y, grid, cv, ks, seed, **kw):
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    acc = np.zeros(len(grid))
    for tr, va in folds.split(X, y):
        for g, h in enumerate(grid):
            s = inffs_scores(X[tr], y[tr], hops=h, **kw).numpy()
            for k in ks:
                cols = np.sort(np.argsort(-s, kind="stable")[:k])
                mu, sd = X[tr][:, cols].mean(0), X[tr][:, cols].std(0)
                clf = RidgeClassifier(alpha=1.0).fit((X[tr][:, cols] - mu) / sd, y[tr])
                acc[g] += (clf.predict((X[va][:, cols] - mu) / sd) == y[va]).mean()
    return acc / (cv * len(ks))


def test_choose_hops_matches_direct_computation_and_is_deterministic():
    X, y = _data(m=90, n=20, seed=5)
    grid, ks = [1, 2, math.inf], [2, 4]
    best, scores = choose_hops(X, y, hop_grid=grid, cv=3, cv_ks=ks, random_state=7,
                               variant="relevance", knn=4)
    ref = _direct_cv(X, y, grid, 3, ks, 7, variant="relevance", knn=4)
    np.testing.assert_allclose(scores, ref, rtol=1e-12)
    assert best == grid[int(np.argmax(ref))]
    again = choose_hops(X, y, hop_grid=grid, cv=3, cv_ks=ks, random_state=7,
                        variant="relevance", knn=4)
    assert again[0] == best and np.array_equal(again[1], scores)
    # the estimator: the same choice, then every sample scored with that hop count
    sel = InfFS(4, variant="relevance", knn=4, hops="cv", hop_grid=grid, cv_ks=ks,
                random_state=7).fit(X, y)
    assert sel.hops_ == best and np.array_equal(sel.cv_scores_, scores)
    np.testing.assert_array_equal(
        sel.scores_, inffs_scores(X, y, variant="relevance", knn=4, hops=best).numpy())
    # cv_ks defaults to an int n_features_to_select
    a = InfFS(2, variant="relevance", hops="cv", hop_grid=grid, random_state=1).fit(X, y)
    b = InfFS(0.1, variant="relevance", hops="cv", hop_grid=grid, random_state=1,
              cv_ks=2).fit(X, y)
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)


def test_affinity_cv_chooses_form_and_hops_jointly():
    X, y = _data(m=90, n=20, seed=6)
    grid, ks = [1, math.inf], [3]
    table = np.stack([_direct_cv(X, y, grid, 3, ks, 2, variant="relevance", knn=4, affinity=f)
                      for f in ("product", "max")])
    sel = InfFS(variant="relevance", knn=4, hops="cv", affinity="cv", hop_grid=grid,
                cv_ks=ks, random_state=2).fit(X, y)
    np.testing.assert_allclose(sel.cv_scores_, table, rtol=1e-12)
    f, g = np.unravel_index(np.argmax(table), table.shape)
    assert (sel.affinity_, sel.hops_) == (("product", "max")[f], grid[g])
    np.testing.assert_array_equal(sel.scores_, inffs_scores(
        X, y, variant="relevance", knn=4, hops=sel.hops_, affinity=sel.affinity_).numpy())
    # the form alone at a fixed hop count: a [2, 1] table
    one = InfFS(variant="relevance", knn=4, hops=2, affinity="cv", cv_ks=ks,
                random_state=2).fit(X, y)
    assert one.cv_scores_.shape == (2, 1) and one.hops_ == 2
    assert InfFS(variant="relevance").fit(X, y).affinity_ == "product"
    assert InfFS().fit(X).affinity_ is None


def test_fixed_hops_estimator_and_default_supervision():
    X, y = _data()
    sel = InfFS(3, variant="relevance", hops=2).fit(X, y)
    np.testing.assert_array_equal(sel.scores_,
                                  inffs_scores(X, y, variant="relevance", hops=2).numpy())
    assert sel.hops_ == 2 and sel.cv_scores_ is None
    assert InfFS(variant="relevance").__sklearn_tags__().target_tags.required
    assert not InfFS().__sklearn_tags__().target_tags.required


@pytest.mark.parametrize("kwargs,y_needed,match", [
    (dict(relevance="bogus"), True, "relevance"),
    (dict(affinity="sum"), True, "affinity"),
    (dict(affinity="cv"), True, "affinity"),
    (dict(correlation="kendall"), True, "correlation"),
    (dict(std_weight=0.3), True, "std_weight"),
    (dict(term_weights=(1, 1, 1)), True, "term_weights"),
    (dict(), False, "pass y"),
])
def test_inffs_scores_bad_arguments(kwargs, y_needed, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        inffs_scores(X, y if y_needed else None, variant="relevance", **kwargs)


def test_relevance_options_refused_elsewhere():
    X, y = _data()
    with pytest.raises(ValueError, match="relevance='mi' applies to variant='relevance'"):
        inffs_scores(X, variant="paper", relevance="mi")
    with pytest.raises(ValueError, match="correlation='pearson' applies"):
        inffs_scores(X, y, variant="u2020", correlation="pearson")
    with pytest.raises(ValueError, match="affinity='max' applies"):
        inffs_scores(X, y, variant="fslib", affinity="max")
    with pytest.raises(ValueError, match="affinity='cv' applies to variant='relevance'"):
        InfFS(variant="u2020", supervised=True, affinity="cv").fit(X, y)


@pytest.mark.parametrize("kwargs,match", [
    (dict(hops="auto"), "hops"),
    (dict(hops="cv", hop_grid=()), "hop_grid"),
    (dict(hops="cv", hop_grid=(1, 0)), "hop_grid"),
    (dict(hops="cv", hop_grid=(2, 2)), "hop_grid"),
    (dict(hops="cv", hop_grid=(1, 2.5)), "hop_grid"),
    (dict(hops="cv", cv=1), "cv"),
    (dict(hops="cv", cv=2.0), "cv"),
    (dict(hops="cv", cv_ks=0), "cv_ks"),
    (dict(hops="cv", cv_ks=()), "cv_ks"),
    (dict(hops="cv", cv=40), "cv=40"),
    (dict(supervised=False), "needs the labels"),
    (dict(variant="paper", hops="cv"), "hops='cv'"),
    (dict(variant="paper", supervised=True), "supervised=True requires"),
])
def test_estimator_bad_arguments(kwargs, match):
    X, y = _data()
    kw = dict(variant="relevance")
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        InfFS(**kw).fit(X, y)


def test_hop_grid_type_error():
    X, y = _data()
    with pytest.raises(TypeError, match="hop_grid"):
        InfFS(variant="relevance", hops="cv", hop_grid=3).fit(X, y)
