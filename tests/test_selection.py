"""InfFS selector: scikit-learn conformance and agreement with inffs_scores."""
import math

import numpy as np
import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from affgraph.inffs import inffs_scores, inffs_subset_size
from affgraph.selection import InfFS


def _check_name(check):
    return getattr(check, "func", check).__name__


_ESTIMATORS = [InfFS(), InfFS(3, variant="fslib", hops=4),
               InfFS(0.5, variant="u2020", supervised=True, term_weights=(0.2, 0.3, 0.5)),
               InfFS(std_weight=0.3, variant="fslib"),
               InfFS(2, knn=2),
               InfFS(2, variant="fslib", supervised=True),
               InfFS(2, variant="relevance", knn=3, hops=2),
               InfFS(2, variant="relevance", hops="cv", hop_grid=(1, math.inf),
                     random_state=0)]
# every scikit-learn check, except the array-API one: InfFS declares no array-API support
# and scikit-learn itself skips that check unless SCIPY_ARRAY_API is set at start-up
_CHECKS = [(est, chk) for e in _ESTIMATORS for est, chk in estimator_checks_generator(e)
           if "array_api" not in _check_name(chk)]


@pytest.mark.parametrize("estimator,check", _CHECKS,
                         ids=[f"{est}-{_check_name(chk)}" for est, chk in _CHECKS])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 12)) * rng.uniform(0.5, 2.0, size=12)
    y = np.repeat(["no", "yes"], 40)
    X[y == "yes", :2] += 2.0
    return X, y


def test_scores_ranking_and_support():
    X, _ = _data()
    sel = InfFS(4, r_frac=0.8).fit(X)
    ref = inffs_scores(X, r_frac=0.8).numpy()
    np.testing.assert_array_equal(sel.scores_, ref)
    order = np.argsort(-ref)
    np.testing.assert_array_equal(sel.ranking_[order], np.arange(1, 13))
    assert sel.n_features_in_ == 12 and sel.n_features_to_select_ == 4
    np.testing.assert_array_equal(np.flatnonzero(sel.get_support()), np.sort(order[:4]))
    np.testing.assert_array_equal(sel.transform(X), X[:, np.sort(order[:4])])
    assert InfFS().fit(X).n_features_to_select_ == 6  # default: half
    assert InfFS(0.25).fit(X).n_features_to_select_ == 3


def test_r_frac_parameter():
    X, _ = _data()
    params = InfFS(r_frac=0.7).get_params()
    assert params["r_frac"] == 0.7 and "r" not in params
    np.testing.assert_array_equal(InfFS(r_frac=0.7).fit(X).scores_,
                                  inffs_scores(X, r_frac=0.7).numpy())
    assert not np.allclose(InfFS(r_frac=0.7).fit(X).scores_, InfFS().fit(X).scores_)
    with pytest.raises(TypeError, match="'r'"):
        InfFS(r=0.7)


def test_std_weight_and_term_weights_parameters():
    X, y = _data()
    params = InfFS(std_weight=0.3).get_params()
    assert params["std_weight"] == 0.3 and params["term_weights"] is None
    assert "alpha" not in params
    for variant in ("paper", "fslib", "u2020"):
        np.testing.assert_array_equal(InfFS(std_weight=0.3, variant=variant).fit(X).scores_,
                                      inffs_scores(X, std_weight=0.3, variant=variant).numpy())
    assert not np.allclose(InfFS(std_weight=0.3).fit(X).scores_, InfFS().fit(X).scores_)
    a = (0.2, 0.3, 0.5)
    sup = InfFS(variant="u2020", supervised=True, term_weights=a).fit(X, y)
    np.testing.assert_array_equal(sup.scores_,
                                  inffs_scores(X, y, variant="u2020", term_weights=a).numpy())
    with pytest.raises(TypeError, match="'alpha'"):
        InfFS(alpha=0.5)
    with pytest.raises(ValueError, match="std_weight=0.3 does not apply to the supervised"):
        InfFS(variant="u2020", supervised=True, std_weight=0.3).fit(X, y)
    with pytest.raises(ValueError, match="term_weights=.* applies to the supervised"):
        InfFS(variant="u2020", term_weights=a).fit(X)
    with pytest.raises(ValueError, match="std_weight must be a number"):
        InfFS(std_weight=2.0).fit(X)


def test_ties_rank_stably():
    X, _ = _data()
    X2 = np.hstack([X[:, :3], X[:, :3]])  # duplicated features score exactly alike
    sel = InfFS(variant="fslib").fit(X2)
    for i in range(3):
        assert sel.scores_[i] == pytest.approx(sel.scores_[i + 3], rel=1e-12)
    # the first copy of each tied pair ranks first
    ranks = sel.ranking_
    assert all(abs(ranks[i] - ranks[i + 3]) == 1 for i in range(3))


def test_supervised_u2020_and_automatic_subset():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 12))
    y = np.repeat(["no", "yes"], 40)
    X[y == "yes", :2] += 2.0
    sel = InfFS(variant="u2020", supervised=True).fit(X, y)
    np.testing.assert_allclose(sel.scores_, inffs_scores(X, y, variant="u2020").numpy())
    assert set(np.argsort(sel.ranking_)[:2]) == {0, 1}  # the label-shifted features
    assert sel.n_features_to_select_ == max(inffs_subset_size(sel.scores_), 1)
    uns = InfFS(variant="u2020").fit(X, y)  # y ignored when unsupervised
    np.testing.assert_allclose(uns.scores_, inffs_scores(X, variant="u2020").numpy())


def test_errors():
    X, y = _data()
    with pytest.raises(ValueError, match="supervised=True requires variant 'u2020'.*"
                                         "variant='paper' is unsupervised"):
        InfFS(supervised=True).fit(X, y)
    with pytest.raises(ValueError, match="requires y"):
        InfFS(variant="u2020", supervised=True).fit(X)
    with pytest.raises(ValueError, match="unknown Inf-FS variant"):
        InfFS(variant="x").fit(X)
    with pytest.raises(ValueError, match="n_features_to_select"):
        InfFS(0).fit(X)
    with pytest.warns(UserWarning, match="greater than n_features"):
        assert InfFS(13).fit(X).get_support().all()
    with pytest.raises(ValueError, match="n_features_to_select"):
        InfFS(1.5).fit(X)
    with pytest.raises(ValueError, match="diverges"):
        InfFS(r_frac=1.2).fit(X)
    with pytest.raises(ValueError, match="NaN"):
        InfFS().fit(np.where(X > 2, np.nan, X))
    with pytest.raises(ValueError, match="hops"):
        InfFS(hops=math.nan).fit(X)


def test_supervised_fslib_agrees_with_inffs_scores():
    X, y = _data()
    sel = InfFS(variant="fslib", supervised=True, std_weight=0.7).fit(X, y)
    np.testing.assert_array_equal(sel.scores_,
                                  inffs_scores(X, y, variant="fslib", std_weight=0.7).numpy())
    fisher_only = InfFS(variant="fslib", supervised=True, std_weight=0.0).fit(X, y)
    assert set(np.argsort(fisher_only.ranking_)[:2]) == {0, 1}  # the label-shifted features
    assert InfFS(variant="fslib", supervised=True).__sklearn_tags__().target_tags.required
    with pytest.raises(ValueError, match="requires y"):
        InfFS(variant="fslib", supervised=True).fit(X)
    # unsupervised fslib ignores y
    np.testing.assert_array_equal(InfFS(variant="fslib").fit(X, y).scores_,
                                  inffs_scores(X, variant="fslib").numpy())


def test_default_r_frac_is_the_reference_decay():
    X, y = _data()
    n = X.shape[1]
    assert InfFS().get_params()["r_frac"] is None
    for variant, r in (("paper", 0.9), ("fslib", 0.9), ("u2020", 1 - 5e-6 * n)):
        np.testing.assert_array_equal(InfFS(variant=variant).fit(X).scores_,
                                      inffs_scores(X, variant=variant, r_frac=r).numpy())
    np.testing.assert_array_equal(
        InfFS(variant="u2020", supervised=True).fit(X, y).scores_,
        inffs_scores(X, y, variant="u2020", r_frac=1 - 5e-6 * n).numpy())
