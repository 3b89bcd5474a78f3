"""Inf-FS scores against float64 closed forms, networkx Katz, PyIFS and loop references."""
import importlib
import math

import networkx as nx
import numpy as np
import pytest
import scipy.stats
import torch

from affgraph.inffs import (feature_affinity, fisher_scores, inffs_scores, inffs_subset_size,
                            mutual_info_scores)


def _data(m=60, n=25, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)) * rng.uniform(0.3, 3.0, size=n)
    X[:, 1] += 0.8 * X[:, 0]  # some correlated pairs
    X[:, 2] = np.round(X[:, 2])  # ties in the ranks
    return X


def _spearman(X):
    C = scipy.stats.spearmanr(X).correlation
    return np.nan_to_num(C, nan=0.0)


def _mm(v):
    return (v - v.min()) / (v.max() - v.min()) if v.max() > v.min() else np.zeros_like(v)


def _ref_paper_A(X, w=0.5):
    s = _mm(X.std(0, ddof=1))
    return w * np.maximum.outer(s, s) + (1 - w) * (1 - np.abs(_spearman(X)))


def _closed_form(A, r_abs):
    I = np.eye(A.shape[0])
    return (np.linalg.inv(I - r_abs * A) - I).sum(1)


def _rank(s):
    return np.argsort(-np.asarray(s), kind="stable")


# ---------------------------------------------------------------- paper variant

@pytest.mark.parametrize("dense", [True, False])
def test_paper_matches_closed_form(dense):
    X = _data()
    A = _ref_paper_A(X, 0.4)
    ref = _closed_form(A, 0.9 / np.linalg.eigvalsh(A).max())
    kw = {} if dense else dict(max_dense_bytes=0, block=7)  # float32 tiles, ragged blocks
    ours = inffs_scores(X, std_weight=0.4, **kw).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-8 if dense else 1e-6)
    np.testing.assert_array_equal(_rank(ours), _rank(ref))


def test_r_frac_is_the_decay_as_a_fraction_of_one_over_rho():
    """r_frac = 0.6 is the absolute Katz decay r = 0.6 / rho(A) of the dense closed form (the
    name r is the absolute decay everywhere else, so inffs_scores does not take it)."""
    X = _data(seed=3)
    A = _ref_paper_A(X)
    ref = _closed_form(A, 0.6 / np.linalg.eigvalsh(A).max())
    np.testing.assert_allclose(inffs_scores(X, r_frac=0.6).numpy(), ref, rtol=1e-8)
    with pytest.raises(TypeError, match="'r'"):
        inffs_scores(X, r=0.6)


def test_paper_is_katz_centrality_networkx():
    X = _data(seed=1)
    A = _ref_paper_A(X)
    rho = np.linalg.eigvalsh(A).max()
    g = nx.from_numpy_array(A)  # symmetric, with self-loops a_ii
    katz = nx.katz_centrality_numpy(g, alpha=0.9 / rho, beta=1.0, weight="weight")
    katz = np.array([katz[i] for i in range(A.shape[0])])
    s = inffs_scores(X).numpy() + 1.0  # Katz counts the empty walk
    np.testing.assert_allclose(s / np.linalg.norm(s), katz, rtol=1e-9)


def test_truncation_converges_and_one_hop_is_degree():
    X = _data(seed=2)
    A = _ref_paper_A(X)
    r = 0.9 / np.linalg.eigvalsh(A).max()
    ref = _closed_form(A, r)
    errs = [np.abs(inffs_scores(X, hops=K).numpy() - ref).max() for K in (1, 5, 20, 250)]
    assert all(a > b for a, b in zip(errs, errs[1:])) and errs[-1] < 1e-6 * ref.max()
    deg = inffs_scores(X, hops=1).numpy()
    np.testing.assert_allclose(deg, r * A.sum(1), rtol=1e-9)
    np.testing.assert_array_equal(_rank(deg), _rank(A.sum(1)))
    two = inffs_scores(X, hops=2).numpy()
    np.testing.assert_allclose(two, r * A.sum(1) + r * r * A @ A.sum(1), rtol=1e-9)


def test_knn_sparsification_matches_dense_and_differs_from_degree():
    X = _data(n=30, seed=3)
    A = _ref_paper_A(X)
    k = 3
    off = A.copy()
    np.fill_diagonal(off, -np.inf)
    keep = np.zeros_like(A, dtype=bool)
    top = np.argsort(-off, axis=1, kind="stable")[:, :k]
    keep[np.repeat(np.arange(30), k), top.ravel()] = True
    keep |= keep.T
    np.fill_diagonal(keep, True)
    Ak = np.where(keep, A, 0.0)
    rho = np.abs(np.linalg.eigvals(Ak)).max()
    ref = _closed_form(Ak, 0.9 / rho)
    ours = inffs_scores(X, knn=k).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-8)
    deg = inffs_scores(X, knn=k, hops=1).numpy()
    assert not np.array_equal(_rank(ours), _rank(deg))  # multi-hop ranking differs
    # u2020 on the same kNN graph: divided by its largest row sum
    eps = 5e-6 * 30
    rowmax = Ak.sum(1).max()
    ref_u = _closed_form(Ak / (rowmax + eps), 0.9 / rowmax)
    np.testing.assert_allclose(inffs_scores(X, knn=k, variant="u2020", r_frac=0.9).numpy(),
                               ref_u, rtol=1e-8)
    np.testing.assert_allclose(inffs_scores(X, knn=np.int64(k), hops=np.int64(2)).numpy(),
                               Ak.sum(1) * 0.9 / rho + (0.9 / rho) ** 2 * Ak @ Ak.sum(1),
                               rtol=1e-9)
    # knn >= n - 1 keeps everything: the dense ranking
    np.testing.assert_allclose(inffs_scores(X, knn=40).numpy(), inffs_scores(X).numpy(),
                               rtol=1e-8)


# ---------------------------------------------------------------- fslib = PyIFS

def _pyifs():
    mod = importlib.import_module("PyIFS.InfFS")
    mod.stats, mod.math = scipy.stats, math  # the package forgets to import them
    return mod.InfFS()


def test_fslib_matches_pyifs_unsupervised():
    X = _data(m=40, n=20, seed=4)
    ranked, weight = _pyifs().infFS(X.copy(), None, 0.5, 0, 0)
    ours = inffs_scores(X, variant="fslib").numpy()
    np.testing.assert_allclose(ours, weight, rtol=1e-8)
    np.testing.assert_array_equal(_rank(ours), ranked)


def test_fslib_matches_pyifs_supervised():
    X = _data(m=40, n=20, seed=5)
    y = np.where(np.random.default_rng(5).random(40) < 0.5, -1, 1)
    X[y == 1, :4] += 1.5
    ranked, weight = _pyifs().infFS(X.copy(), y, 0.3, 1, 0)  # PyIFS's alpha = 1 - std_weight
    ours = inffs_scores(X, y, std_weight=0.7, variant="fslib").numpy()
    np.testing.assert_allclose(ours, weight, rtol=1e-8)
    np.testing.assert_array_equal(_rank(ours), ranked)


def test_fslib_std_weight_matches_pyifs_alpha_on_the_correlation():
    X = _data(m=40, n=20, seed=4)
    ranked, weight = _pyifs().infFS(X.copy(), None, 0.8, 0, 0)  # PyIFS's alpha = 1 - std_weight
    ours = inffs_scores(X, std_weight=0.2, variant="fslib").numpy()
    np.testing.assert_allclose(ours, weight, rtol=1e-8)
    np.testing.assert_array_equal(_rank(ours), ranked)


def test_std_weight_is_the_weight_of_the_std_term_in_every_variant():
    """w max(s_i, s_j) + (1 - w) * (the other term), against dense float64 formulas."""
    X = _data(m=40, n=9, seed=12)
    y = np.where(np.arange(40) % 3 == 0, "a", "b")
    s = _mm(X.std(0, ddof=1))
    S, C = np.maximum.outer(s, s), _spearman(X)
    m1, m0 = X[y == "a"].mean(0), X[y == "b"].mean(0)
    f = (m1 - m0) ** 2 / (X[y == "a"].var(0, ddof=1) + X[y == "b"].var(0, ddof=1))
    FF = _mm(np.outer(f, f))
    other = {("paper", None): 1 - np.abs(C), ("u2020", None): 1 - np.abs(C),
             ("fslib", None): C, ("fslib", "y"): FF}
    for (variant, yy), B in other.items():
        labels = y if yy else None
        for w in (0.0, 0.3, 1.0):
            A = feature_affinity(X, labels, std_weight=w, variant=variant,
                                 gemm_dtype=torch.float64)
            np.testing.assert_allclose(A.dense().numpy(), w * S + (1 - w) * B, atol=1e-12)
        # None is 0.5
        np.testing.assert_array_equal(
            feature_affinity(X, labels, variant=variant).dense().numpy(),
            feature_affinity(X, labels, std_weight=0.5, variant=variant).dense().numpy())
    # the supervised u2020 graph: None is (0.5, 0.5, 0.5)
    np.testing.assert_array_equal(
        inffs_scores(X, y, variant="u2020").numpy(),
        inffs_scores(X, y, variant="u2020", term_weights=[0.5, 0.5, 0.5]).numpy())


# ---------------------------------------------------------------- u2020

def test_u2020_unsupervised_matches_reference_formulas():
    X = _data(seed=6)
    n = X.shape[1]
    A = _ref_paper_A(X, 0.5)
    rowmax = A.sum(1).max()
    eps = 5e-6 * n
    Ah = A / (rowmax + eps)
    S = np.linalg.inv(np.eye(n) - (1 - eps) / rowmax * Ah)
    weight = S.sum(1)
    ours = inffs_scores(X, variant="u2020", r_frac=1 - eps).numpy()
    np.testing.assert_allclose(ours + 1.0, weight, rtol=1e-10)  # the 2020 code keeps I
    counts = np.histogram(weight, int(0.5 * n))[0]
    assert inffs_subset_size(ours) == int((counts > counts.mean()).sum())


def _ref_mi(a, labels):
    """Loop reference of the normalised mutual information (equal-width bins, 1e-5 floors)."""
    m = a.size
    nbins = 20 if m / 10 > 20 else int(max(math.floor(m / 10), 10))
    classes = sorted(set(labels.tolist()))
    lo, width = a.min(), (a.max() - a.min()) / nbins
    bins = [min(int((v - lo) // width), nbins - 1) for v in a]
    pA = np.array([bins.count(b) / m for b in range(nbins)])
    pA[pA == 0] = 1e-5
    pY = np.array([(labels == c).sum() / m for c in classes])
    info = 0.0
    for ci, c in enumerate(classes):
        for b in range(nbins):
            cnt = sum(1 for v, bb in zip(labels, bins) if v == c and bb == b)
            p = (cnt if cnt else 1e-5) / m
            info += p * math.log(p / (pA[b] * pY[ci]))
    HA = -(pA * np.log(pA)).sum()
    HY = -(pY * np.log(pY)).sum()
    return 2 * info / (HA + HY)


def test_u2020_supervised_matches_loop_reference():
    X = _data(m=60, n=12, seed=7)
    y = np.array([-1, 1] * 30)
    X[y == 1, :3] += 2.0
    a = (0.2, 0.5, 0.3)
    n = X.shape[1]
    mi = _mm(np.array([_ref_mi(X[:, i], y) for i in range(n)]))
    fi = ((X[y == 1].mean(0) - X[y == -1].mean(0)) ** 2
          / (X[y == 1].var(0, ddof=1) + X[y == -1].var(0, ddof=1)))
    fi = _mm(fi)
    sd = _mm(X.std(0, ddof=1))
    SD = np.maximum.outer(sd, sd)
    G = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            G[i, j] = (a[0] * (mi[j] + fi[i]) / 2 + a[1] * (mi[j] + SD[i, j]) / 2
                       + a[2] * (SD[i, j] + fi[i]) / 2)
    rowmax = G.sum(1).max()
    eps = 5e-6 * n
    S = np.linalg.inv(np.eye(n) - (1 - eps) / rowmax * G / (rowmax + eps))
    ours = inffs_scores(X, y, term_weights=a, variant="u2020", r_frac=1 - eps).numpy()
    np.testing.assert_allclose(ours + 1.0, S.sum(1), rtol=1e-10)
    assert _rank(ours)[0] in (0, 1, 2)  # an informative feature wins


def test_labels_of_any_type_and_many_classes():
    X = _data(m=45, n=10, seed=8)
    y = np.repeat([0, 1, 2], 15)
    X[y == 2, 0] += 3.0
    base = inffs_scores(X, y, variant="u2020").numpy()
    for enc in (np.array(["a", "b", "c"])[y], y + 1, y * 2.5 - 7, torch.tensor(y)):
        np.testing.assert_allclose(inffs_scores(X, enc, variant="u2020").numpy(), base,
                                   rtol=1e-12)
    assert _rank(base)[0] == 0
    # three-class Fisher score by hand: mean over the 3 class pairs
    Xs = np.array([[0.0], [2.0], [1.0], [3.0], [5.0], [7.0]])
    codes = np.array([0, 0, 1, 1, 2, 2])
    ref = ((1 - 2) ** 2 / (2 + 2) + (1 - 6) ** 2 / (2 + 2) + (2 - 6) ** 2 / (2 + 2)) / 3
    np.testing.assert_allclose(fisher_scores(Xs, codes, 3), [ref])
    # binary {-1, 1}: equals the two-class formula in either label order
    yb = np.array([-1, 1] * 3)
    f1 = inffs_scores(X[:6, :4], yb, variant="u2020").numpy()
    f2 = inffs_scores(X[:6, :4], -yb, variant="u2020").numpy()
    np.testing.assert_allclose(f1, f2, rtol=1e-12)


def test_mutual_info_constant_and_separating_features():
    rng = np.random.default_rng(9)
    y = np.repeat([0, 1], 50)
    X = np.column_stack([y + 0.01 * rng.normal(size=100), rng.normal(size=100), np.ones(100)])
    mi = mutual_info_scores(X, y, 2)
    np.testing.assert_allclose(mi[:2], [_ref_mi(X[:, 0], y), _ref_mi(X[:, 1], y)], rtol=1e-12)
    assert mi[0] > 0.5 > mi[1] and mi[2] == 0.0


# ---------------------------------------------------------------- edge cases and errors

def test_constant_features_defined():
    X = _data(seed=10)
    X[:, 3] = 2.0
    ours = inffs_scores(X).numpy()
    A = _ref_paper_A(X)  # spearman NaN -> 0 for the constant feature, as FSLib/PyIFS do
    np.testing.assert_allclose(ours, _closed_form(A, 0.9 / np.linalg.eigvalsh(A).max()),
                               rtol=1e-8)
    allconst = np.ones((5, 4))
    s = inffs_scores(allconst).numpy()  # A = (1 - std_weight) J: every feature equal
    np.testing.assert_allclose(s, np.full(4, s[0]))
    assert np.isfinite(s).all()


def test_bad_input_errors():
    X = _data()
    with pytest.raises(ValueError, match="NaN"):
        Xn = X.copy()
        Xn[0, 0] = np.nan
        inffs_scores(Xn)
    with pytest.raises(ValueError, match="1 sample"):
        inffs_scores(X[:1])
    with pytest.raises(ValueError, match="1 feature"):
        inffs_scores(X[:, :1])
    with pytest.raises(ValueError, match="2-d"):
        inffs_scores(X[:, 0])
    with pytest.raises(TypeError, match="numeric"):
        inffs_scores(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match="diverges"):
        inffs_scores(X, r_frac=1.0)
    with pytest.raises(ValueError, match="unknown Inf-FS variant"):
        inffs_scores(X, variant="2015")
    with pytest.raises(ValueError, match="hops"):
        inffs_scores(X, hops=0)
    with pytest.raises(ValueError, match="knn"):
        inffs_scores(X, knn=0)
    with pytest.raises(ValueError, match="2 classes"):
        inffs_scores(X, np.zeros(60), variant="u2020")
    with pytest.raises(ValueError, match="60 labels"):
        inffs_scores(X, np.zeros(5), variant="u2020")
    with pytest.raises(ValueError, match="unsupervised"):
        inffs_scores(X, np.arange(60) % 2, variant="paper")
    y2 = np.arange(60) % 2
    for bad in [(0.5, -1.0, 0.5), (0.5, 0.5), 0.5, (0.5, math.nan, 0.5), ("a", "b", "c")]:
        with pytest.raises(ValueError, match="term_weights must be 3 finite"):
            inffs_scores(X, y2, variant="u2020", term_weights=bad)
    for bad in [1.5, -0.1, True, (0.5, 0.5, 0.5), "0.5"]:
        with pytest.raises(ValueError, match=r"std_weight must be a number in \[0, 1\]"):
            inffs_scores(X, std_weight=bad)
    # each weight belongs to its graph: refused, not ignored, elsewhere
    with pytest.raises(ValueError, match="std_weight=0.5 does not apply to the supervised"):
        inffs_scores(X, y2, variant="u2020", std_weight=0.5)
    for variant, yy in [("paper", None), ("u2020", None), ("fslib", None), ("fslib", y2)]:
        with pytest.raises(ValueError, match="term_weights=.* applies to the supervised"):
            feature_affinity(X, yy, variant=variant, term_weights=(0.2, 0.3, 0.5))


def test_feature_affinity_rows_entries_and_products_agree():
    X = _data(n=17, seed=11)
    y = np.arange(60) % 3
    for variant, yy in [("paper", None), ("fslib", None), ("fslib", y % 2), ("u2020", y)]:
        A = feature_affinity(X, yy, variant=variant, block=5, gemm_dtype=torch.float64)
        D = A.rows(0, 17)
        i, j = torch.meshgrid(torch.arange(17), torch.arange(17), indexing="ij")
        torch.testing.assert_close(A.entries(i.reshape(-1), j.reshape(-1)).reshape(17, 17), D)
        v = torch.randn(17, dtype=torch.float64)
        torch.testing.assert_close(A.matvec(v), D @ v, rtol=1e-12, atol=1e-12)
        assert A.symmetric == bool(torch.allclose(D, D.T))
        torch.testing.assert_close(A.dense(), D, rtol=1e-14, atol=1e-14)  # tiles, mirrored
        torch.testing.assert_close(A.matvec(v), D @ v, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- real data

@pytest.mark.parametrize("name", ["wine", "breast_cancer"])
def test_real_data_against_closed_form_and_pyifs(name):
    # bundled real sets (no data root needed): the paper scores against the float64 dense
    # closed form built by hand, the fslib scores against PyIFS, unsupervised and (binary
    # labels) supervised; higher = better in all three, so the top features coincide too
    from affgraph.datasets import load_embedded
    X, y = load_embedded(name)
    A = _ref_paper_A(X)
    ref = _closed_form(A, 0.9 / np.linalg.eigvalsh(A).max())
    ours = inffs_scores(X).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-9)
    np.testing.assert_array_equal(_rank(ours), _rank(ref))
    ranked, weight = _pyifs().infFS(X.copy(), None, 0.5, 0, 0)
    ours = inffs_scores(X, variant="fslib").numpy()
    np.testing.assert_allclose(ours, weight.real, rtol=1e-9)
    np.testing.assert_array_equal(_rank(ours), ranked)
    yb = np.where(y == y.min(), -1, 1)  # wine: class 0 against the rest
    ranked, weight = _pyifs().infFS(X.copy(), yb, 0.5, 1, 0)
    ours = inffs_scores(X, yb, variant="fslib").numpy()
    np.testing.assert_allclose(ours, weight.real, rtol=1e-9)
    np.testing.assert_array_equal(_rank(ours), ranked)


@pytest.mark.parametrize("kw", [dict(), dict(knn=4), dict(variant="u2020"),
                                dict(variant="u2020", knn=4), dict(variant="fslib"),
                                dict(max_dense_bytes=0, block=7)])
def test_sequence_of_hops_equals_single_calls(kw):
    # one affinity build for several hop counts: each row is the single-hop call, bit for bit
    X = _data(n=20, seed=8)
    hops = [1, 2, 3, 5, math.inf]
    many = inffs_scores(X, hops=hops, **kw)
    assert many.shape == (5, 20)
    for row, h in zip(many, hops):
        assert torch.equal(row, inffs_scores(X, hops=h, **kw))
    assert torch.equal(inffs_scores(X, hops=np.array([2]), **kw)[0], many[1])
    with pytest.raises(ValueError, match="hops must be an int >= 1"):
        inffs_scores(X, hops=[1, 0], **kw)
    with pytest.raises(ValueError, match="empty"):
        inffs_scores(X, hops=[], **kw)
