import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import feature_ranking as fr  # noqa: E402

from affgraph.datasets import load_embedded  # noqa: E402
from affgraph.selection import InfFS  # noqa: E402


def test_end_to_end_tiny(tmp_path, capsys):
    sels = ["anova", "fisher", "random", "inffs-h1", "inffs-hinf", "inffs-sup-hinf"]
    rows = fr.main(["--quick", "--datasets", "wine", "planted-small", "--selectors", *sels,
                    "--no-progress", "--out", str(tmp_path), "--json", str(tmp_path / "r.json"),
                    "--csv", str(tmp_path / "r.csv")])
    out = capsys.readouterr().out
    # wine has 13 features: k = 5, 10, 20->13; planted-small has 60: k = 5, 10, 20; 3 folds
    assert len(rows) == 2 * len(sels) * 3 * 3
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    assert {r["k_eff"] for r in rows if r["dataset"] == "wine"} == {5, 10, 13}
    assert "### wine (d=13" in out and "k=20→13" in out and "Average rank" in out
    assert "planted-small: precision@k" in out
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(rows))
    assert (tmp_path / "r.csv").read_text().startswith("dataset,selector,seed,fold,k,k_eff")
    assert (tmp_path / "feature_ranking_k.png").stat().st_size > 0
    assert (tmp_path / "feature_ranking_hops.png").stat().st_size > 0
    # supervised selectors find the planted features better than chance
    prec = lambda s: np.mean([r["precision"] for r in rows  # noqa: E731
                              if r["selector"] == s and r["dataset"] == "planted-small"])
    assert prec("anova") > prec("random") + 0.3
    # the saved rows print the same tables
    fr.main(["--load", str(tmp_path / "r.json"), "--no-plot"])
    assert capsys.readouterr().out.strip() == fr.format_tables(rows).strip()


def test_anova_accuracy_matches_sklearn_pipeline():
    # oracle: SelectKBest(f_classif) + StandardScaler + LinearSVC refitted per fold by sklearn
    rows = fr.run(["breast_cancer"], ["anova"], ks=[5], seeds=[0], n_folds=5, progress=False)
    X, y = load_embedded("breast_cancer")
    pipe = make_pipeline(SelectKBest(f_classif, k=5), StandardScaler(),
                         LinearSVC(C=1.0, max_iter=2000, random_state=0))
    ref = cross_val_score(pipe, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert np.allclose(sorted(r["accuracy"] for r in rows), sorted(ref))


def test_inffs_ranker_uses_the_selector_ranking():
    X, y = load_embedded("wine")
    order = fr.make_ranker("inffs-knn-h3", seed=0, knn=4)(X, y)
    ref = InfFS(hops=3, knn=4).fit(X).ranking_
    assert np.array_equal(ref[order], np.arange(1, 14))


def test_average_ranks_hand_computed():
    def row(d, s, acc, n=100):
        return dict(dataset=d, selector=s, seed=0, fold=0, k=10, k_eff=10, n_features=n,
                    accuracy=acc, precision=None, fit_s=0.0)
    rows = [row("a", "x", 0.9), row("a", "y", 0.8), row("a", "z", 0.8),
            row("b", "x", 0.5), row("b", "y", 0.7), row("b", "z", 0.6),
            row("c", "x", 0.1, 10), row("c", "y", 0.2, 10), row("c", "z", 0.3, 10)]  # d <= k
    ranks = fr.average_ranks(rows)[10]
    assert ranks["_n"] == 2
    assert ranks["x"] == pytest.approx((1 + 3) / 2)
    assert ranks["y"] == pytest.approx((2.5 + 1) / 2)
    assert ranks["z"] == pytest.approx((2.5 + 2) / 2)


def test_bad_names():
    with pytest.raises(SystemExit, match="unknown selector 'boruta'"):
        fr.main(["--quick", "--selectors", "boruta", "--no-progress"])
    with pytest.raises(SystemExit, match="unknown dataset 'mnist'"):
        fr.main(["--quick", "--datasets", "mnist", "--no-progress"])
    assert fr.expand_selectors(["baselines"]) == list(fr.BASELINES)
    assert len(fr.expand_datasets(["all"])) == 22 + 3 + 1


def _strip_time(rows):
    return [{k: v for k, v in r.items() if k != "fit_s"} for r in rows]


def test_workers_give_the_serial_rows(tmp_path):
    # the same (dataset, seed) jobs in 2 spawned worker processes: equal rows, serial order
    sels = ["random", "mi", "inffs-h2", "inffs-knn-h2", "inffs-sup-hinf", "relieff"]
    kw = dict(ks=[3, 8], seeds=[0, 1], n_folds=2, progress=False)
    done = []
    serial = fr.run(["wine", "planted-small"], sels, **kw)
    parallel = fr.run(["wine", "planted-small"], sels, workers=2,
                      on_dataset_done=lambda rows: done.append(
                          Counter(r["dataset"] for r in rows)), **kw)
    assert len(serial) == 2 * len(sels) * 2 * 2 * 2
    assert _strip_time(parallel) == _strip_time(serial)
    # one checkpoint per finished dataset: the first holds every row of one dataset (and maybe
    # rows of the other, which runs at the same time), the last holds everything
    per_set = len(serial) // 2
    assert len(done) == 2
    assert per_set in done[0].values()
    assert done[1] == {"wine": per_set, "planted-small": per_set}
    with pytest.raises(ValueError, match="workers must be a positive int"):
        fr.run(["wine"], ["random"], workers=0, **kw)


def test_load_merges_several_files(tmp_path, capsys):
    a = fr.run(["wine"], ["anova", "random"], ks=[5], seeds=[0], n_folds=2, progress=False)
    b = fr.run(["wine"], ["anova", "random"], ks=[5], seeds=[1], n_folds=2, progress=False)
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    rows = fr.main(["--load", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--no-plot"])
    assert rows == json.loads(json.dumps(a + b))
    assert "accuracy % over 2 folds x 2 seeds" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="cannot read rows"):
        fr.main(["--load", str(tmp_path / "missing.json"), "--no-plot"])


def test_rankers_see_the_training_fold_only(monkeypatch):
    X, y = load_embedded("wine")
    seen = {"fisher": [], "inffs": []}
    real_ranker, real_inffs = fr.make_ranker, fr.inffs_orders

    def spy_ranker(name, seed, knn=10, k_max=200):
        rank = real_ranker(name, seed, knn, k_max)

        def wrapped(Xtr, ytr):
            seen["fisher"].append((Xtr.copy(), ytr.copy()))
            return rank(Xtr, ytr)
        return wrapped

    def spy_inffs(selectors, Xtr, ytr, knn=10):
        if any(s.startswith("inffs") for s in selectors):
            seen["inffs"].append((Xtr.copy(), ytr.copy()))
        return real_inffs(selectors, Xtr, ytr, knn)
    monkeypatch.setattr(fr, "make_ranker", spy_ranker)
    monkeypatch.setattr(fr, "inffs_orders", spy_inffs)
    fr.run(["wine"], ["inffs-hinf", "fisher"], ks=[5], seeds=[3], n_folds=4, progress=False)
    splits = list(StratifiedKFold(4, shuffle=True, random_state=3).split(X, y))
    for calls in seen.values():
        assert len(calls) == 4
        for (Xs, ys), (tr, _) in zip(calls, splits):
            np.testing.assert_array_equal(Xs, X[tr])
            np.testing.assert_array_equal(ys, y[tr])


def test_a_ranker_writing_into_X_corrupts_no_row(monkeypatch):
    # scikit-feature's lap_score and MCFS write into the X they are given; a ranker that
    # zeroes its input must change neither its own nor a later selector's accuracy
    real_ranker = fr.make_ranker

    def vandal(name, seed, knn=10, k_max=200):
        rank = real_ranker("anova" if name == "random" else name, seed, knn, k_max)

        def wrapped(Xtr, ytr):
            order = rank(Xtr, ytr)
            Xtr[:] = 0.0
            ytr[:] = 0
            return order
        return wrapped

    alone, _ = fr._run_job("wine", 0, 0, ["relieff"], [5], 4, None, 10)
    monkeypatch.setattr(fr, "make_ranker", vandal)
    rows, failed = fr._run_job("wine", 0, 0, ["random", "relieff"], [5], 4, None, 10)
    acc = {r["selector"]: r["accuracy"] for r in rows}
    assert not failed
    assert acc["relieff"] == alone[0]["accuracy"]
    ref, _ = fr._run_job("wine", 0, 0, ["anova"], [5], 4, None, 10)  # "random" ran anova
    assert acc["random"] == ref[0]["accuracy"] > 0.8


def test_inffs_selects_the_top_scores():
    # the ranker's first k features are the k largest Inf-FS scores (higher = selected first)
    X, y = load_embedded("breast_cancer")
    order = fr.make_ranker("inffs-hinf", seed=0)(X, y)
    scores = InfFS().fit(X).scores_
    assert np.all(np.diff(scores[order]) <= 0)
    assert set(order[:10]) == set(np.argsort(-scores)[:10])


def test_diagnose_against_dense_closed_forms():
    # oracle: the float64 affinity built by hand (FSLib normalisation), its eigenvalues, and
    # the 1-hop / infinite-hop scores r A 1 and ((I - r A)^-1 - I) 1 with r = 0.9 / lambda_1
    X, y = load_embedded("wine")
    C = np.nan_to_num(spearmanr(X).statistic, nan=0.0)
    sd = X.std(0, ddof=1)
    M = np.maximum.outer(sd, sd)
    M = (M - M.min()) / (M.max() - M.min())
    A = 0.5 * M + 0.5 * (1 - np.abs(C))
    lam = np.linalg.eigvalsh(A)
    lam = lam[np.argsort(-np.abs(lam))]
    r = 0.9 / lam[0]
    h1 = r * A.sum(1)
    hinf = (np.linalg.inv(np.eye(13) - r * A) - np.eye(13)).sum(1)
    (row,) = fr.diagnose(["wine"], knn=3, ks=[5], progress=False)
    assert row["gap"] == pytest.approx(abs(lam[1]) / lam[0], rel=1e-9)
    assert row["tau"] == pytest.approx(kendalltau(h1, hinf).statistic, abs=1e-12)
    top = lambda s: set(np.argsort(-s, kind="stable")[:5])  # noqa: E731
    assert row["top5"] == len(top(h1) & top(hinf)) / 5
    assert row["rho_std"] == pytest.approx(spearmanr(hinf, sd).statistic, abs=1e-12)
    assert 0 < row["knn_gap"] < 1 and -1 <= row["knn_tau"] <= 1
    text = fr.format_diagnosis([row])
    assert "| wine | 178 | 13 |" in text


def test_shared_inffs_builds_give_the_selector_orders():
    # one affinity build per graph for all hop counts == each selector fitted on its own
    X, y, _ = fr.load_dataset("planted-small", None, 0)
    sels = list(fr.INFFS) + ["anova"]
    orders, fit, errors = fr.inffs_orders(sels, X, y, knn=5)
    assert set(orders) == set(fr.INFFS) and not errors and "anova" not in orders
    for s in fr.INFFS:
        np.testing.assert_array_equal(orders[s], fr.make_ranker(s, 0, knn=5)(X, y))
    assert all(t >= 0 for t in fit.values())


def test_one_svm_per_distinct_feature_set(monkeypatch):
    # wine has 13 features: at k=20 every selector keeps all of them, so one SVM fit per fold
    # serves all; each accuracy equals the SVM refitted on that selector's set by hand
    calls = []
    real = fr._svm_accuracy
    monkeypatch.setattr(fr, "_svm_accuracy", lambda *a: calls.append(a[0].shape) or real(*a))
    sels = ["anova", "fisher", "random", "variance"]
    rows = fr.run(["wine"], sels, ks=[3, 20], seeds=[0], n_folds=3, progress=False)
    X, y = load_embedded("wine")
    splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    n_sets = 0
    for fold, (tr, te) in enumerate(splits):
        sets = {tuple(np.sort(fr.make_ranker(s, fold)(X[tr], y[tr])[:3])) for s in sels}
        n_sets += len(sets) + 1  # + the set of all 13 features
        for r in rows:
            if r["fold"] == fold and r["k"] == 3:
                cols = np.sort(fr.make_ranker(r["selector"], fold)(X[tr], y[tr])[:3])
                assert r["accuracy"] == real(X[tr][:, cols], y[tr], X[te][:, cols], y[te])
    assert len(calls) == n_sets < len(rows)
    assert len({r["accuracy"] for r in rows if r["k"] == 20 and r["fold"] == 0}) == 1


# ---- the rivals, the families and the statistics -----------------------------------------

def test_rows_dropped_as_duplicates_are_duplicates():
    # fisher is anova's F times (C-1)/(n-C): the same order; the supervised u2020 hop counts
    # give one order (its decay): the families keep one of each
    X, y = load_embedded("breast_cancer")
    assert np.array_equal(fr.make_ranker("fisher", 0)(X, y), fr.make_ranker("anova", 0)(X, y))
    X, y, _ = fr.load_dataset("planted-small", None, 0)
    sup = [f"inffs-sup-h{h}" for h in fr.HOPS]
    orders, _, errors = fr.inffs_orders(sup, X, y)
    assert not errors
    for s in sup[1:]:
        np.testing.assert_array_equal(orders[s], orders["inffs-sup-h1"])
    fams = fr.expand_selectors(["supervised"]) + fr.expand_selectors(["unsupervised"])
    assert "fisher" not in fams and not set(sup[1:]) & set(fams) and "inffs-sup-h1" in fams


def test_families_split():
    sup, uns = fr.expand_selectors(["supervised"]), fr.expand_selectors(["unsupervised"])
    assert {"anova", "mi", "mrmr", "relieff", "inffs-rel-cv"} <= set(sup)
    assert {"variance", "lapscore", "spec", "mcfs", "ndfs", "udfs", "inffs-auto",
            "inffs-knn-h3"} <= set(uns)
    assert set(sup) & set(uns) == {"random"}
    assert {fr.family(s) for s in sup} == {"supervised", "both"}
    assert {fr.family(s) for s in uns} == {"unsupervised", "both"}

    def row(d, s, acc):
        return dict(dataset=d, selector=s, seed=0, fold=0, k=5, k_eff=5, n_features=50,
                    accuracy=acc, precision=None, fit_s=0.0)
    rng = np.random.default_rng(0)
    rows = [row(d, s, float(rng.random())) for d in "abcde"
            for s in ["anova", "mrmr", "inffs-sup-h1", "variance", "lapscore", "inffs-h1",
                      "random"]]
    text = fr.format_family_tables(rows)
    sup_t, uns_t = text.split("### Unsupervised family")
    assert "| anova |" in sup_t and "| variance |" not in sup_t and "| random |" in sup_t
    assert "| variance |" in uns_t and "| anova |" not in uns_t and "| random |" in uns_t
    assert "not significant" in text or " significant" in text
    # one text CD diagram per family and k, over the family's selectors
    assert text.count("Critical-difference diagram") == 2
    diagram = uns_t.split("```text\n")[1].split("```")[0]
    assert {line.split()[0] for line in diagram.splitlines()[3:-1]} == {
        "variance", "lapscore", "inffs-h1", "random"}


def test_family_stats_against_scipy():
    # oracle: the per-dataset means ranked by hand, scipy's Friedman test and Wilcoxon test
    from scipy.stats import friedmanchisquare, rankdata, wilcoxon

    rng = np.random.default_rng(1)
    sels = ["anova", "mrmr", "mi", "inffs-rel-cv", "random", "variance"]
    rows = [dict(dataset=f"d{i}", selector=s, seed=seed, fold=0, k=10, k_eff=10,
                 n_features=100, accuracy=float(rng.random()), precision=None, fit_s=0.0)
            for i in range(8) for s in sels for seed in range(2)]
    # a set where the headline did not run is left out, not the headline
    rows += [dict(rows[0], dataset="no-headline", selector=s) for s in sels[:3]]
    st = fr.family_stats(rows, "supervised", 10)
    assert st["datasets"] == [f"d{i}" for i in range(8)]
    assert st["selectors"] == ["anova", "mrmr", "mi", "inffs-rel-cv", "random"]
    means = np.array([[np.mean([r["accuracy"] for r in rows if r["dataset"] == f"d{i}"
                                and r["selector"] == s]) for s in st["selectors"]]
                      for i in range(8)])
    R = np.mean([rankdata(-m) for m in means], axis=0)
    assert [st["ranks"][s] for s in st["selectors"]] == pytest.approx(R.tolist())
    assert st["friedman"][1] == pytest.approx(friedmanchisquare(*means.T).pvalue)
    assert st["headline"] == "inffs-rel-cv"
    p_an = wilcoxon(means[:, 3], means[:, 0]).pvalue
    p_mr = wilcoxon(means[:, 3], means[:, 1]).pvalue
    lo, hi = sorted([p_an, p_mr])
    holm = {p_an: min(1, 2 * lo) if p_an == lo else min(1, max(2 * lo, hi)),
            p_mr: min(1, 2 * lo) if p_mr == lo else min(1, max(2 * lo, hi))}
    assert st["planned"]["anova"] == pytest.approx((p_an, holm[p_an]))
    assert st["planned"]["mrmr"] == pytest.approx((p_mr, holm[p_mr]))


def test_a_selector_missing_on_some_sets_is_compared_where_it_ran():
    # oracle: scipy's Wilcoxon test on the per-dataset means of the sets both ran on
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(2)
    sels = ["anova", "mrmr", "inffs-rel-cv", "mi"]
    rows = [dict(dataset=f"d{i}", selector=s, seed=0, fold=f, k=10, k_eff=10,
                 n_features=100, accuracy=float(rng.random()), precision=None, fit_s=0.0)
            for i in range(9) for s in sels for f in range(2)
            if not (s == "mi" and i >= 7)]  # mi stopped on d7 and d8
    st = fr.family_stats(rows, "supervised", 10)
    assert "mi" not in st["selectors"] and st["missing"] == ["mi"]

    def mean(d, s):
        return np.mean([r["accuracy"] for r in rows if r["dataset"] == d and r["selector"] == s])

    a = np.array([mean(f"d{i}", "inffs-rel-cv") for i in range(7)])
    b = np.array([mean(f"d{i}", "mi") for i in range(7)])
    n, diff, p = st["partial"]["mi"]
    assert n == 7 and diff == pytest.approx(float(np.mean(a - b)))
    assert p == pytest.approx(wilcoxon(a, b).pvalue)
    text = fr.format_family_tables(rows)
    assert f"{100 * diff:+.2f} / {p:.2g} (7 sets)" in text


def test_lapscore_is_the_laplacian_score_of_its_graph():
    # oracle: He et al.'s score f~'Lf~ / f~'Df~ (lower is better) on scikit-feature's default
    # graph (cosine 5-NN, binary), in float64 by hand
    from skfeature.utility.construct_W import construct_W

    X, y = load_embedded("wine")
    W = construct_W(X).toarray()
    D = np.diag(W.sum(1))
    L = D - W
    one = np.ones(len(X))
    F = X - np.outer(one, (X.T @ D @ one) / (one @ D @ one))
    score = np.einsum("ij,ik,kj->j", F, L, F) / np.einsum("ij,ik,kj->j", F, D, F)
    np.testing.assert_array_equal(fr.make_ranker("lapscore", 0)(X, y), np.argsort(score))


def test_rivals_give_full_orders():
    X, y = load_embedded("wine")
    for s in ["mi", "mrmr", "relieff", "spec", "mcfs", "ndfs", "udfs"]:
        order = fr.make_ranker(s, 0, k_max=5)(X, y)
        assert sorted(order.tolist()) == list(range(13)), s
    # mRMR keeps its first k_max picks, the rest follow in column order
    from affgraph.baselines import mrmr_order
    order = fr.make_ranker("mrmr", 0, k_max=5)(X, y)
    head = mrmr_order(X, y, 5)
    assert order[:5].tolist() == head.tolist()
    assert order[5:].tolist() == sorted(set(range(13)) - set(head.tolist()))


def test_inffs_auto_picks_the_best_reconstruction():
    # hand-made: columns 1 and 2 copy column 0; a candidate keeping the copies spans one
    # direction, one keeping independent columns spans three: the latter is chosen
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6))
    X[:, 1] = X[:, 0]
    X[:, 2] = 2 * X[:, 0]
    copies, spread = np.array([0, 1, 2, 3, 4, 5]), np.array([0, 3, 4, 1, 2, 5])
    orders = {"inffs-h1": copies, "inffs-knn-h2": spread}
    assert fr.auto_choice(orders, X, 3) == "inffs-knn-h2"
    assert fr.auto_choice({"inffs-h1": spread, "inffs-knn-h2": copies}, X, 3) == "inffs-h1"
    # ties (every column kept) go to the first candidate
    assert fr.auto_choice(orders, X, 6) == "inffs-h1"
    # in a run, each inffs-auto row is the row of the candidate it chose
    rows = fr.run(["wine"], ["inffs-auto", *fr.AUTO_CANDIDATES], ks=[3, 6], seeds=[0],
                  n_folds=3, knn=4, progress=False)
    acc = {(r["selector"], r["fold"], r["k"]): r["accuracy"] for r in rows}
    auto = [r for r in rows if r["selector"] == "inffs-auto"]
    assert len(auto) == 6 and all(r["choice"] in fr.AUTO_CANDIDATES for r in auto)
    for r in auto:
        assert r["accuracy"] == acc[(r["choice"], r["fold"], r["k"])]


def test_load_keeps_the_last_of_repeated_rows(tmp_path, capsys):
    rows = fr.run(["wine"], ["anova", "random"], ks=[5], seeds=[0], n_folds=3, progress=False)
    redo = [dict(r, accuracy=0.5) for r in rows if r["selector"] == "random"]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.json").write_text(json.dumps(redo))
    merged = fr.main(["--load", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                      "--no-plot"])
    assert len(merged) == len(rows)
    assert [r["accuracy"] for r in merged if r["selector"] == "random"] == [0.5] * 3
    assert [r for r in merged if r["selector"] == "anova"] == \
        [r for r in rows if r["selector"] == "anova"]


def test_label_aware_inffs_is_wired():
    # the benchmark's orders are the estimator's ranking_ (hops fixed or chosen by inner CV);
    # the fixed hop counts share one affinity build with the same orders
    X, y = load_embedded("wine")
    cases = [("inffs-rel-h1", 1, {}), ("inffs-rel-hinf", np.inf, {}), ("inffs-rel-cv", "cv", {}),
             ("inffs-rel-affcv", "cv", {"affinity": "cv"})]
    for name, hops, aff in cases:
        sel = InfFS(variant="relevance", supervised=True, hops=hops, knn=4, random_state=7,
                    **aff)
        ref = np.argsort(sel.fit(X, y).ranking_, kind="stable")
        np.testing.assert_array_equal(fr.make_ranker(name, 7, knn=4)(X, y), ref)
    orders, _, errors = fr.inffs_orders(["inffs-rel-h1", "inffs-rel-hinf", "anova"], X, y,
                                        knn=4)
    assert not errors and set(orders) == {"inffs-rel-h1", "inffs-rel-hinf"}
    for name in orders:
        np.testing.assert_array_equal(orders[name], fr.make_ranker(name, 0, knn=4)(X, y))
    assert fr.family("inffs-rel-cv") == "supervised"


def test_time_limit_stops_a_python_loop():
    import time
    start = time.perf_counter()
    with pytest.raises(fr.SelectorTimeout):
        with fr.time_limit(0.05):
            for _ in range(500):  # 5 s if the limit failed
                time.sleep(0.01)
    assert time.perf_counter() - start < 1.0
    with fr.time_limit(None):  # no limit: the body runs to its end
        time.sleep(0.01)
    time.sleep(0.1)  # the timer was cleared: nothing fires after the block


def test_slow_selector_is_left_out_with_its_reason(monkeypatch):
    import time
    calls = Counter()

    def slow_factory(seed, k_max):
        def rank(X, y):
            calls["slow"] += 1
            for _ in range(500):
                time.sleep(0.01)
            return np.arange(X.shape[1])
        return rank

    monkeypatch.setitem(fr._EXTRA, "slowsel", slow_factory)
    rows = fr.run(["wine"], ["anova", "slowsel"], ks=[5], n_folds=3, progress=False,
                  limit_s=0.1)
    results, errors = fr.split_errors(rows)
    assert {r["selector"] for r in results} == {"anova"} and len(results) == 3
    assert len(errors) == 1 and errors[0]["selector"] == "slowsel"
    assert errors[0]["error"].startswith("too slow: stopped after 0 s (limit 0.1 s) on seed 0")
    assert calls["slow"] == 1  # the later folds skipped it
    assert "| wine | `slowsel` | too slow" in fr.format_errors(errors)
    # a job that finds the selector in the shared registry skips it without calling it
    slow = {("wine", "slowsel"): "too slow: seen before"}
    rows, failed = fr._run_job("wine", 0, 1, ["slowsel"], [5], 3, None, 10, slow=slow)
    assert rows == [] and failed == {"slowsel": "too slow: seen before"} and calls["slow"] == 1
    with pytest.raises(ValueError, match="limit_s"):
        fr.run(["wine"], ["anova"], ks=[5], progress=False, limit_s=0)


def test_time_limit_is_shared_by_the_worker_processes(tmp_path, capsys):
    # mutual information on wine takes far more than 0.1 ms: stopped on its first fold, and
    # the worker processes share that through the run's registry; the Inf-FS orders are
    # not limited
    rows = fr.main(["--datasets", "wine", "--selectors", "inffs-h1", "mi", "--k", "5",
                    "--folds", "3", "--workers", "2", "--time-limit", "0.0001",
                    "--no-progress", "--no-plot", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert {r["selector"] for r in rows} == {"inffs-h1"} and len(rows) == 3
    assert "### Did not run" in out and "| wine | `mi` | too slow" in out
    saved = json.loads((tmp_path / "r.json").read_text())
    assert [r["selector"] for r in saved if "error" in r] == ["mi"]
    fr.main(["--load", str(tmp_path / "r.json"), "--no-plot"])
    assert "| wine | `mi` | too slow" in capsys.readouterr().out


def test_resume_runs_only_the_missing_jobs(tmp_path, monkeypatch):
    sels = ["anova", "random", "inffs-h1"]
    kw = dict(ks=[3, 8], seeds=[0], n_folds=3, progress=False)
    full = fr.run(["wine"], sels, **kw)
    # a cut run: folds 0 and 2 saved (fold 1 missing), and an error row of a selector
    saved = [r for r in full if r["fold"] != 1] + [
        dict(dataset="wine", selector="mi", error="too slow: stopped after 9 s")]
    calls = Counter()
    make = fr.make_ranker

    def counting(name, seed, *a, **k):
        calls[(name, seed % 1000)] += 1
        return make(name, seed, *a, **k)
    monkeypatch.setattr(fr, "make_ranker", counting)
    seen = []
    rows = fr.run(["wine"], sels + ["mi"], done_rows=saved, on_job_done=seen.append, **kw)
    results, errors = fr.split_errors(rows)
    assert _strip_time(results) == _strip_time(full)  # mi stays out: its error row
    assert [e["selector"] for e in errors] == ["mi"]
    assert set(calls) == {("anova", 1), ("random", 1)}  # fold 1 only; mi not tried again
    assert len(seen) == 1 and len(fr.split_errors(seen[0])[0]) == len(full)
    # a saved job that lacks a requested k or selector runs again
    calls.clear()
    fr.run(["wine"], sels, done_rows=[r for r in full if r["k"] == 3], **dict(kw, n_folds=3))
    assert {f for (_, f) in calls} == {0, 1, 2}
    # the command line: --resume continues the file, --resume without --json is refused
    path = tmp_path / "r.json"
    path.write_text(json.dumps(saved))
    monkeypatch.setattr(fr, "make_ranker", make)
    out = fr.main(["--datasets", "wine", "--selectors", *sels, "mi", "--k", "3", "8",
                   "--folds", "3", "--no-progress", "--no-plot", "--json", str(path),
                   "--resume"])
    assert _strip_time(out) == _strip_time(full)
    assert json.loads(path.read_text())[-1]["error"].startswith("too slow")
    with pytest.raises(SystemExit, match="--json"):
        fr.main(["--datasets", "wine", "--resume", "--no-plot"])
