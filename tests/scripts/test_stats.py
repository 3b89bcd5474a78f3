import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scikit_posthocs as sp
from scipy.stats import chi2, studentized_range, wilcoxon

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import _stats as st  # noqa: E402


def _table(seed=0, n=12, k=5):
    rng = np.random.default_rng(seed)
    # method j is better by 0.02 j on average; per-dataset offsets keep the blocks apart
    return rng.normal(size=(n, 1)) + 0.02 * np.arange(k) + 0.03 * rng.normal(size=(n, k))


def test_ranks_hand_computed():
    a = np.array([[0.9, 0.8, 0.8], [0.5, 0.7, 0.6]])
    assert np.array_equal(st.rank_table(a), [[1, 2.5, 2.5], [3, 1, 2]])
    assert np.allclose(st.average_ranks(a), [2.0, 1.75, 2.25])


def test_friedman_matches_the_closed_form_without_ties():
    a = _table(1)
    n, k = a.shape
    R = st.average_ranks(a)
    stat = 12 * n / (k * (k + 1)) * (np.sum(R ** 2) - k * (k + 1) ** 2 / 4)
    got, p = st.friedman(a)
    assert got == pytest.approx(stat, rel=1e-12)
    assert p == pytest.approx(chi2.sf(stat, k - 1), rel=1e-10)
    assert st.friedman(np.ones((4, 3))) == (0.0, 1.0)


def test_cd_hand_computed_and_the_table_from_the_studentized_range():
    # Demšar (2006) section 3.2.2: k = 4 methods, N = 14 datasets, CD = 1.25
    assert st.nemenyi_cd(4, 14) == pytest.approx(2.569 * math.sqrt(4 * 5 / (6 * 14)), abs=1e-12)
    assert round(st.nemenyi_cd(4, 14), 2) == 1.25
    for alpha in (0.05, 0.10):
        for k in range(2, 11):
            ref = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
            assert st.q_alpha(k, alpha) == pytest.approx(ref, abs=1e-3)
    assert st.q_alpha(22) == pytest.approx(studentized_range.ppf(0.95, 22, np.inf) / 2 ** 0.5)


def test_nemenyi_pvalues_match_scikit_posthocs():
    a = _table(2, n=15, k=6)
    ref = sp.posthoc_nemenyi_friedman(a).to_numpy()
    assert np.allclose(st.nemenyi_pvalues(a), ref, atol=1e-9)


def test_holm_hand_computed():
    assert np.allclose(st.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.allclose(st.holm([0.5, 0.001]), [0.5, 0.002])
    with pytest.raises(ValueError, match="p-values"):
        st.holm([0.1, 1.5])


def test_wilcoxon_holm_matches_scikit_posthocs():
    a = _table(3, n=14, k=4)
    ref = sp.posthoc_wilcoxon(pd.DataFrame(a).melt(var_name="g", value_name="v"),
                              val_col="v", group_col="g", p_adjust="holm").to_numpy()
    got = st.wilcoxon_holm(a)
    assert len(got) == 6
    for (i, j), (p, q) in got.items():
        assert p == pytest.approx(wilcoxon(a[:, i], a[:, j]).pvalue, rel=1e-12)
        assert q == pytest.approx(ref[i, j], rel=1e-9)
    # a planned family of two pairs: Holm over those two only
    two = st.wilcoxon_holm(a, pairs=[(3, 0), (3, 1)])
    raw = [two[(3, 0)][0], two[(3, 1)][0]]
    assert [two[(3, 0)][1], two[(3, 1)][1]] == pytest.approx(list(st.holm(raw)))
    with pytest.raises(ValueError, match="pairs"):
        st.wilcoxon_holm(a, pairs=[(0, 0)])


def test_bad_tables_and_the_diagram(tmp_path):
    with pytest.raises(ValueError, match="scores"):
        st.friedman(np.ones((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        st.average_ranks(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="n must"):
        st.nemenyi_cd(3, 0)
    path = st.cd_diagram(["a", "b", "c", "d"], _table(4, k=4), tmp_path / "cd.png", title="t")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="names"):
        st.cd_diagram(["a", "a", "c", "d"], _table(4, k=4), tmp_path / "x.png")


def test_nemenyi_groups_hand_computed():
    # sorted ranks 1.0 1.5 | 3.0 3.2 with CD 1: two groups
    assert st.nemenyi_groups([1.0, 1.5, 3.0, 3.2], 1.0) == [[0, 1], [2, 3]]
    # 1.0 - 1.8 < 1 and 1.8 - 2.6 < 1 but 2.6 - 1.0 >= 1: overlapping groups
    assert st.nemenyi_groups([1.0, 1.8, 2.6], 1.0) == [[0, 1], [1, 2]]
    # the method order follows the ranks; a method far from all others is a group alone
    assert st.nemenyi_groups([2.0, 1.0, 9.0], 1.5) == [[1, 0], [2]]
    # a run inside the previous one is not repeated: 1, 1.2, 1.4 within CD 0.5
    assert st.nemenyi_groups([1.0, 1.2, 1.4], 0.5) == [[0, 1, 2]]
    with pytest.raises(ValueError, match="cd"):
        st.nemenyi_groups([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="ranks"):
        st.nemenyi_groups([1.0, np.nan], 1.0)


def test_cd_text_lines_and_letters():
    # method 0 wins every set, methods 1 and 2 split: ranks 1, 2.5, 2.5 over 10 sets
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 1.0, 2.0]] * 5)
    text = st.cd_text(["best", "b", "c"], scores, width=21)
    lines = text.splitlines()
    cd = st.nemenyi_cd(3, 10)  # 2.343 * sqrt(12 / 60) = 1.048
    assert f"CD = {cd:.2f}" in lines[2] and abs(cd - 1.048) < 1e-3
    # ranks 1 and 2.5 differ by 1.5 >= CD: 'best' alone in group a, b and c share b
    assert lines[3].split()[:2] == ["best", "1.00"] and lines[3].endswith("a")
    assert lines[4].endswith("  b") and lines[5].endswith("  b")
    # the star sits at (rank - 1) * (width - 1) / (k - 1) on the axis: 0 and 15
    start = lines[1].index("+")
    assert lines[3].index("*") - start == 0 and lines[4].index("*") - start == 15
    assert lines[2].index("|") == start and lines[2].rindex("|") - start == round(cd * 10)
