import json
import sys
from pathlib import Path

import numpy as np
import pytest
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
