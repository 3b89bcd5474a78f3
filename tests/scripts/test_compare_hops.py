import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import compare_hops  # noqa: E402
import node_classification  # noqa: E402


def test_tiny_run_prints_both_tables_and_writes_outputs(tmp_path, capsys):
    js, cs = tmp_path / "out.json", tmp_path / "out.csv"
    result = compare_hops.main(["--tiny", "--json", str(js), "--csv", str(cs),
                                "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "## Node classification" in out and "## Feature ranking" in out
    # node table: GCN and one row per hop count of each hop model, one best-hop mark per hop
    # model and cSBM graph
    node_table = [line for line in out.split("## Feature ranking")[0].splitlines()
                  if line.startswith("| ")]
    assert node_table[0] == "| model | csbm-0.2 | csbm-0.9 |"
    assert [line.split(" | ")[0] for line in node_table[1:]] == [
        "| GCN", "| AffinityAttention (K=1)", "| AffinityAttention (K=2)",
        "| AffinityDiffusionCR (K=1)", "| AffinityDiffusionCR (K=2)"]
    assert sum(line.count(node_classification.BEST_MARK) for line in node_table) == 4
    # feature tables: one per dataset with the hop selectors
    assert "### breast_cancer" in out and "### planted-small" in out and "| inffs-hinf |" in out
    assert "| inffs-rel-cv |" in out
    saved = json.loads(js.read_text())
    assert set(saved) == {"node_classification", "feature_ranking"}
    assert saved["node_classification"] == json.loads(json.dumps(result["node_classification"]))
    assert len(saved["node_classification"]) == 2 * 5
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in saved["node_classification"])
    feats = saved["feature_ranking"]
    assert {r["selector"] for r in feats} == {"inffs-h1", "inffs-hinf", "inffs-rel-cv", "anova"}
    # every (dataset, fold) has a label-aware row, on the same folds as ANOVA's
    rel = {(r["dataset"], r["fold"]) for r in feats if r["selector"] == "inffs-rel-cv"}
    assert rel == {(r["dataset"], r["fold"]) for r in feats if r["selector"] == "anova"}
    assert len(rel) == 2 * 2
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in feats)
    assert all(0.0 <= r["precision"] <= 1.0 for r in feats if r["dataset"] == "planted-small")
    assert (tmp_path / "out_nodes.csv").is_file() and (tmp_path / "out_features.csv").is_file()
    assert (tmp_path / "compare_hops_nodes.png").stat().st_size > 0
    assert (tmp_path / "feature_ranking_k.png").stat().st_size > 0


def test_full_without_data_root_fails_clearly(monkeypatch):
    monkeypatch.delenv("AFFGRAPH_DATA", raising=False)
    with pytest.raises(SystemExit, match="need a data root.*--data-root.*AFFGRAPH_DATA"):
        compare_hops.main(["--full", "--no-progress", "--no-plot"])


def test_full_with_missing_root_fails_clearly(tmp_path):
    with pytest.raises(SystemExit, match="not a directory"):
        compare_hops.main(["--full", "--data-root", str(tmp_path / "nowhere"), "--no-plot"])


def test_feature_selectors_include_the_label_aware_variant():
    import feature_ranking

    for selectors in (compare_hops.FEATURE_SELECTORS, compare_hops.FULL_FEATURE_SELECTORS):
        names = feature_ranking.expand_selectors(selectors)
        assert "inffs-rel-cv" in names and "anova" in names
    assert {"inffs-rel-h1", "inffs-rel-hinf", "inffs-rel-cv", "inffs-rel-affcv"} <= set(
        compare_hops.FEATURE_SELECTORS)


def test_label_aware_ranker_is_the_cv_estimator():
    """The benchmark's inffs-rel-cv order is InfFS(variant='relevance', hops='cv') on the
    training data, with the hop count its inner cross-validation chose."""
    import feature_ranking
    import numpy as np

    from affgraph.datasets import load_embedded
    from affgraph.selection import InfFS

    X, y = load_embedded("wine")
    order = feature_ranking.make_ranker("inffs-rel-cv", 3)(X, y)
    sel = InfFS(variant="relevance", hops="cv", knn=10, random_state=3).fit(X, y)
    np.testing.assert_array_equal(order, np.argsort(sel.ranking_, kind="stable"))
    assert sel.hops_ in sel.hop_grid and sel.cv_scores_.shape == (len(sel.hop_grid),)
