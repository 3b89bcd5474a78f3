"""Bad inputs of affgraph.functional.inffs_scores and the InfFS selector."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import _oracles as ref
from _catalogue import Equals, Raises, case, check
from affgraph import InfFS
from affgraph.functional import inffs_scores

RNG = np.random.default_rng(0)
X = RNG.standard_normal((20, 7))
X_CONST = X.copy()
X_CONST[:, 2] = 3.0  # a constant feature: its correlations are 0
X_DUP = np.hstack([X[:, :4], X[:, :1]])  # a duplicated feature (correlation 1)
Y = np.arange(20) % 2
TOL = (1e-8, 1e-10)
TOL32 = (1e-4, 1e-6)  # the tiled float32 products (beyond max_dense_bytes)


def _score_cases():
    out = []
    finite = {
        "paper": (lambda: inffs_scores(X), lambda: ref.inffs_scores(X), TOL),
        "float32-tensor": (lambda: inffs_scores(torch.from_numpy(X).float()),
                           lambda: ref.inffs_scores(X.astype(np.float32)), TOL),
        "int-array": (lambda: inffs_scores(np.round(X * 3).astype(np.int64)),
                      lambda: ref.inffs_scores(np.round(X * 3)), TOL),
        "constant-feature": (lambda: inffs_scores(X_CONST), lambda: ref.inffs_scores(X_CONST),
                             TOL),
        "duplicate-feature": (lambda: inffs_scores(X_DUP), lambda: ref.inffs_scores(X_DUP), TOL),
        "two-by-two": (lambda: inffs_scores(X[:2, :2]), lambda: ref.inffs_scores(X[:2, :2]),
                       TOL),
        "tiny-scale": (lambda: inffs_scores(X * 1e-200), lambda: ref.inffs_scores(X), TOL),
        "huge-scale": (lambda: inffs_scores(X * 1e160), lambda: ref.inffs_scores(X), TOL),
        "mixed-scales": (lambda: inffs_scores(X * np.logspace(-150, 150, 7)),
                         lambda: ref.inffs_scores(X * np.logspace(-150, 150, 7)), TOL),
        "u2020-tiny-scale": (lambda: inffs_scores(X * 1e-200, Y, variant="u2020"),
                             lambda: inffs_scores(X, Y, variant="u2020"), TOL),
        "hops1": (lambda: inffs_scores(X, hops=1), lambda: ref.inffs_scores(X, hops=1), TOL),
        "hops3": (lambda: inffs_scores(X, hops=3), lambda: ref.inffs_scores(X, hops=3), TOL),
        "hops-list": (lambda: inffs_scores(X, hops=[1, math.inf]),
                      lambda: np.stack([ref.inffs_scores(X, hops=1), ref.inffs_scores(X)]),
                      TOL),
        "r_frac-small": (lambda: inffs_scores(X, r_frac=1e-6),
                         lambda: ref.inffs_scores(X, r_frac=1e-6), (1e-7, 1e-14)),
        "r_frac-near-one": (lambda: inffs_scores(X, r_frac=0.999),
                            lambda: ref.inffs_scores(X, r_frac=0.999), (1e-6, 1e-8)),
        "std_weight-0": (lambda: inffs_scores(X, std_weight=0.0),
                         lambda: ref.inffs_scores(X, w=0.0), TOL),
        "std_weight-1": (lambda: inffs_scores(X, std_weight=1.0),
                         lambda: ref.inffs_scores(X, w=1.0), TOL),
        "block-1": (lambda: inffs_scores(X, block=1), lambda: ref.inffs_scores(X), TOL),
        "tiled-float32": (lambda: inffs_scores(X, max_dense_bytes=0),
                          lambda: ref.inffs_scores(X), TOL32),
        "tiled-block-2": (lambda: inffs_scores(X, max_dense_bytes=0, block=2),
                          lambda: ref.inffs_scores(X), TOL32),
    }
    for label, (call, reference, tol) in finite.items():
        out.append(case("functional.inffs_scores", label, call,
                        Equals(reference, torch.float64, tol)))
    bad_nan = X.copy()
    bad_nan[3, 1] = np.nan
    bad_inf = X.copy()
    bad_inf[0, 0] = -np.inf
    errors = {
        "block-zero": (lambda: inffs_scores(X, block=0), "block"),
        "block-negative": (lambda: inffs_scores(X, block=-4), "block"),
        "block-float": (lambda: inffs_scores(X, block=2.5), "block"),
        "block-bool": (lambda: inffs_scores(X, block=True), "block"),
        "tol-zero": (lambda: inffs_scores(X, tol=0.0), "tol"),
        "tol-nan": (lambda: inffs_scores(X, tol=math.nan), "tol"),
        "tol-negative": (lambda: inffs_scores(X, tol=-1e-10), "tol"),
        "max_dense_bytes-negative": (lambda: inffs_scores(X, max_dense_bytes=-1),
                                     "max_dense_bytes"),
        "max_dense_bytes-float": (lambda: inffs_scores(X, max_dense_bytes=1e9),
                                  "max_dense_bytes"),
        "knn-zero": (lambda: inffs_scores(X, knn=0), "knn"),
        "knn-bool": (lambda: inffs_scores(X, knn=True), "knn"),
        "knn-float": (lambda: inffs_scores(X, knn=2.0), "knn"),
        "hops-zero": (lambda: inffs_scores(X, hops=0), "hops"),
        "hops-float": (lambda: inffs_scores(X, hops=2.5), "hops"),
        "hops-empty": (lambda: inffs_scores(X, hops=[]), "hops"),
        "hops-list-bad": (lambda: inffs_scores(X, hops=[1, 0]), "hops"),
        "hops-nan": (lambda: inffs_scores(X, hops=math.nan), "hops"),
        "r_frac-zero": (lambda: inffs_scores(X, r_frac=0.0), "r_frac"),
        "r_frac-one": (lambda: inffs_scores(X, r_frac=1.0), "r_frac"),
        "r_frac-nan": (lambda: inffs_scores(X, r_frac=math.nan), "r_frac"),
        "r_frac-bool": (lambda: inffs_scores(X, r_frac=True), "r_frac"),
        "variant-unknown": (lambda: inffs_scores(X, variant="2015"), "variant"),
        "X-1d": (lambda: inffs_scores(X[0]), "X"),
        "X-3d": (lambda: inffs_scores(X[None]), "X"),
        "X-one-sample": (lambda: inffs_scores(X[:1]), "samples"),
        "X-one-feature": (lambda: inffs_scores(X[:, :1]), "features"),
        "X-empty": (lambda: inffs_scores(np.zeros((0, 0))), "samples"),
        "X-nan": (lambda: inffs_scores(bad_nan), "X"),
        "X-inf": (lambda: inffs_scores(bad_inf), "X"),
        "X-strings": (lambda: inffs_scores(X.astype(str)), "X"),
        "X-object": (lambda: inffs_scores(np.array([[1, None], [2, 3]], dtype=object)), "X"),
        "std_weight-above-one": (lambda: inffs_scores(X, std_weight=1.5), "std_weight"),
        "std_weight-nan": (lambda: inffs_scores(X, std_weight=math.nan), "std_weight"),
        "term_weights-unsupervised": (lambda: inffs_scores(X, term_weights=(1, 1, 1)),
                                      "term_weights"),
        "term_weights-negative": (lambda: inffs_scores(X, Y, variant="u2020",
                                                       term_weights=(1, -1, 1)), "term_weights"),
        "y-length": (lambda: inffs_scores(X, Y[:5], variant="u2020"), "y"),
        "y-one-class": (lambda: inffs_scores(X, np.zeros(20), variant="u2020"), "class"),
        "y-nan": (lambda: inffs_scores(X, np.where(Y > 0, np.nan, 0.0), variant="u2020"), "y"),
        "paper-with-y": (lambda: inffs_scores(X, Y, variant="paper"), "variant"),
    }
    out += [case("functional.inffs_scores", label, call, Raises(name))
            for label, (call, name) in errors.items()]
    return out


def _selector_cases():
    out = []
    want = ref.inffs_scores(X)
    out.append(case("InfFS", "scores", lambda: InfFS(3).fit(X).scores_,
                    Equals(lambda: want, torch.float64, TOL)))
    out.append(case("InfFS", "ranking", lambda: InfFS(3).fit(X).ranking_,
                    Equals(lambda: np.argsort(np.argsort(-want, kind="stable"),
                                              kind="stable") + 1)))
    out.append(case("InfFS", "support-fraction", lambda: InfFS(0.5).fit(X).get_support(),
                    Equals(lambda: np.argsort(np.argsort(-want, kind="stable"),
                                              kind="stable") < 3)))
    out.append(case("InfFS", "constant-feature", lambda: InfFS(2).fit(X_CONST).scores_,
                    Equals(lambda: ref.inffs_scores(X_CONST), torch.float64, TOL)))
    bad = X.copy()
    bad[0, 0] = np.nan
    errors = {
        "n_features_to_select-zero": (InfFS(0), "n_features_to_select", "affgraph"),
        "n_features_to_select-fraction": (InfFS(1.5), "n_features_to_select", "affgraph"),
        "n_features_to_select-bool": (InfFS(True), "n_features_to_select", "affgraph"),
        "r_frac-two": (InfFS(2, r_frac=2.0), "r_frac", "affgraph"),
        "knn-zero": (InfFS(2, knn=0), "knn", "affgraph"),
        "hops-zero": (InfFS(2, hops=0), "hops", "affgraph"),
        "variant-unknown": (InfFS(2, variant="x"), "variant", "affgraph"),
        "supervised-paper": (InfFS(2, supervised=True), "supervised", "affgraph"),
        "std_weight-negative": (InfFS(2, std_weight=-0.1), "std_weight", "affgraph"),
    }
    for label, (sel, name, origin) in errors.items():
        out.append(case("InfFS", label, lambda sel=sel: sel.fit(X), Raises(name, origin=origin)))
    out += [
        case("InfFS", "supervised-without-y",
             lambda: InfFS(2, variant="u2020", supervised=True).fit(X), Raises("y")),
        case("InfFS", "X-nan", lambda: InfFS(2).fit(bad), Raises("X", origin="sklearn")),
        case("InfFS", "X-one-sample", lambda: InfFS(2).fit(X[:1]),
             Raises("sample", origin="sklearn")),
    ]
    return out


CASES = _score_cases() + _selector_cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_inffs(c):
    check(c)
