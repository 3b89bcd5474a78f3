"""Reference fidelity: InfFS_U / InfFS_S (2020) at their default decay, and the two FSLib v4.0
revisions of infFS.m, each transcribed line by line in float64 numpy."""
import math

import numpy as np
import pytest
import scipy.stats

from affgraph.inffs import default_r_frac, inffs_scores
from affgraph.selection import InfFS

MATLAB_EPS = np.finfo(np.float64).eps


def _data(m=50, n=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(m) % 2 == 0, -1, 1)
    X = rng.normal(size=(m, n)) * rng.uniform(0.3, 3.0, size=n)
    X[y == 1, :3] += 1.5
    X[:, 4] += 0.7 * X[:, 3]
    return X, y


def _spearman(X):
    return np.nan_to_num(scipy.stats.spearmanr(X).correlation, nan=0.0, posinf=0.0)


def _sigma(X):
    std = X.std(0, ddof=1)
    S = np.maximum.outer(std, std)
    S = S - S.min()
    return S / S.max()


def _fisher_product(X, y, neg, pos):
    sn, sp = X[y == neg], X[y == pos]
    st = sp.std(0, ddof=1) ** 2 + sn.std(0, ddof=1) ** 2
    st[st == 0] = 10000
    f = (sp.mean(0) - sn.mean(0)) ** 2 / st
    C = np.outer(f, f)
    C = C - C.min()
    return C / C.max()


def _inffs_u(X, alpha=0.5):
    """InfFS_U.m (2020): A = alpha*sigma + (1-alpha)*(1-|rho|), substochastic rescaling,
    factor = 1 - 5e-6 * N, S = inv(I - r A), WEIGHT = sum(S, 2)."""
    N = X.shape[1]
    A = alpha * _sigma(X) + (1 - alpha) * (1 - np.abs(_spearman(X)))
    eps = 5e-06 * N
    factor = 1 - eps
    rho = A.sum(1).max()
    A = A / (A.sum(1).max() + eps)
    r = factor / rho
    return np.linalg.inv(np.eye(N) - r * A).sum(1)


def _fslib_rev1(X, y, alpha, supervision):
    """infFS.m, FSLib v4.0 (labels -1/1): signed Spearman, r = 0.9 / max(eig(A))."""
    corr = _fisher_product(X, y, -1, 1) if supervision else _spearman(X)
    A = alpha * corr + (1 - alpha) * _sigma(X)
    r = 0.9 / np.linalg.eigvals(A).real.max()
    I = np.eye(A.shape[0])
    return (np.linalg.inv(I - r * A) - I).sum(1)


def _fslib_rev2(X, y, alpha, supervision):
    """The later infFS.m revision of FSLib v4.0 (labels 0/1): 1 - |Spearman|, factor 0.99,
    r = factor / max(eig(A + eps))."""
    corr = _fisher_product(X, y, 0, 1) if supervision else 1 - np.abs(_spearman(X))
    A = alpha * corr + (1 - alpha) * _sigma(X)
    r = 0.99 / np.linalg.eigvals(A + MATLAB_EPS).real.max()
    I = np.eye(A.shape[0])
    return (np.linalg.inv(I - r * A) - I).sum(1)


def test_u2020_default_decay_adds_exactly_one():
    X, y = _data()
    n = X.shape[1]
    assert default_r_frac("u2020", n) == 1 - 5e-6 * n
    assert default_r_frac("paper", n) == default_r_frac("fslib", n) == 0.9
    ours = inffs_scores(X, variant="u2020").numpy()
    np.testing.assert_allclose(ours + 1.0, _inffs_u(X), rtol=1e-12)
    ours_a = inffs_scores(X, variant="u2020", std_weight=0.3).numpy()
    np.testing.assert_allclose(ours_a + 1.0, _inffs_u(X, alpha=0.3), rtol=1e-12)  # w = alpha
    np.testing.assert_allclose(InfFS(variant="u2020").fit(X).scores_ + 1.0, _inffs_u(X),
                               rtol=1e-12)
    # the former default 0.9 is measurably off the reference
    off = inffs_scores(X, variant="u2020", r_frac=0.9).numpy() + 1.0
    assert np.abs(off / _inffs_u(X) - 1).max() > 1e-4


def test_u2020_supervised_default_decay_adds_exactly_one():
    X, y = _data(seed=2)
    n = X.shape[1]
    a = np.array([0.5, 0.5, 0.5])
    from affgraph.inffs import fisher_scores, mutual_info_scores
    codes = (y > 0).astype(int)
    mm = lambda v: (v - v.min()) / (v.max() - v.min())  # noqa: E731
    mi, fi = mm(mutual_info_scores(X, codes, 2)), mm(fisher_scores(X, codes, 2))
    SD = _sigma(X)
    MI, FI = np.tile(mi, (n, 1)), np.tile(fi, (n, 1))
    G = a[0] * (MI + FI.T) / 2 + a[1] * (MI + SD.T) / 2 + a[2] * (SD + FI.T) / 2
    eps = 5e-6 * n
    rho = G.sum(1).max()
    G = G / (G.sum(1).max() + eps)
    ref = np.linalg.inv(np.eye(n) - (1 - eps) / rho * G).sum(1)
    np.testing.assert_allclose(inffs_scores(X, y, variant="u2020").numpy() + 1.0, ref,
                               rtol=1e-12)


def test_u2020_default_refused_beyond_its_range():
    with pytest.raises(ValueError, match="r_frac"):
        default_r_frac("u2020", 200_000)


@pytest.mark.parametrize("alpha", [0.5, 0.2])
def test_fslib_is_the_first_revision(alpha):
    X, y = _data(seed=3)
    ours = inffs_scores(X, variant="fslib", std_weight=1 - alpha).numpy()
    np.testing.assert_allclose(ours, _fslib_rev1(X, y, alpha, False), rtol=1e-9)
    ours = inffs_scores(X, y, variant="fslib", std_weight=1 - alpha).numpy()
    np.testing.assert_allclose(ours, _fslib_rev1(X, y, alpha, True), rtol=1e-9)
    # and the estimator agrees, supervised included
    sel = InfFS(variant="fslib", supervised=True, std_weight=1 - alpha).fit(X, y)
    np.testing.assert_allclose(sel.scores_, _fslib_rev1(X, y, alpha, True), rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 0.7])
def test_second_revision_mapping(alpha):
    """Revision 2 = variant 'paper' (unsupervised) / 'fslib' with y (supervised), with
    std_weight = 1 - alpha and r_frac = 0.99."""
    X, y = _data(seed=4)
    y01 = (y > 0).astype(int)
    ours = inffs_scores(X, variant="paper", std_weight=1 - alpha, r_frac=0.99).numpy()
    np.testing.assert_allclose(ours, _fslib_rev2(X, y01, alpha, False), rtol=1e-9)
    ours = inffs_scores(X, y01, variant="fslib", std_weight=1 - alpha, r_frac=0.99).numpy()
    np.testing.assert_allclose(ours, _fslib_rev2(X, y01, alpha, True), rtol=1e-9)
    # the revisions differ: signed vs absolute correlation
    assert not np.allclose(_fslib_rev1(X, y, alpha, False), _fslib_rev2(X, y01, alpha, False),
                           rtol=1e-3)
    assert math.isfinite(ours.sum())
