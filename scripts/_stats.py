"""Statistics for comparing several methods over several datasets (Demšar, "Statistical
Comparisons of Classifiers over Multiple Data Sets", JMLR 7, 2006): average ranks, the Friedman
test, the Nemenyi critical difference and p-values, Wilcoxon signed-rank tests with Holm's
step-down correction, and critical-difference diagrams.

A score table is an array :math:`(N, k)`: one row per dataset (block), one column per method,
higher is better (accuracy). Rank 1 is the best; ties get the average rank.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.stats import friedmanchisquare, rankdata, studentized_range, wilcoxon

__all__ = ["average_ranks", "cd_diagram", "cd_text", "friedman", "holm", "nemenyi_cd",
           "nemenyi_groups", "nemenyi_pvalues", "q_alpha", "rank_table", "wilcoxon_holm",
           "wilcoxon_p"]

# Demšar (2006), Table 5(a): critical values q_alpha of the two-tailed Nemenyi test
# (the studentized range statistic divided by sqrt(2)), k = 2 .. 10 methods
Q_ALPHA = {
    0.05: (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164),
    0.10: (1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920),
}


def _check_table(scores: np.ndarray, min_methods: int = 2) -> np.ndarray:
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < min_methods:
        raise ValueError(f"scores must be a (datasets, methods) table with at least "
                         f"{min_methods} methods, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("scores must be finite")
    return a


def rank_table(scores: np.ndarray) -> np.ndarray:
    """Ranks within each dataset, :math:`(N, k)`: 1 = the highest score, ties averaged."""
    a = _check_table(scores, 1)
    return np.vstack([rankdata(-row) for row in a])


def average_ranks(scores: np.ndarray) -> np.ndarray:
    r"""Average rank of each method, :math:`R_j = \frac{1}{N}\sum_i r_{ij}`, shape :math:`(k)`."""
    return rank_table(scores).mean(0)


def friedman(scores: np.ndarray) -> tuple[float, float]:
    r"""The Friedman test that all methods rank alike: ``(chi2, p)`` of
    ``scipy.stats.friedmanchisquare`` (ties corrected),

    .. math::
        \chi^2_F = \frac{12N}{k(k+1)}\Big[\sum_j R_j^2 - \frac{k(k+1)^2}{4}\Big] ,

    :math:`k - 1` degrees of freedom. Needs :math:`k \ge 3`; a table whose rows are all ties
    gives ``(0.0, 1.0)``."""
    a = _check_table(scores, 3)
    if all(np.unique(row).size == 1 for row in a):
        return 0.0, 1.0
    stat, p = friedmanchisquare(*a.T)
    return float(stat), float(p)


def q_alpha(k: int, alpha: float = 0.05) -> float:
    r"""The Nemenyi critical value for ``k`` methods: Demšar's Table 5(a) for
    :math:`k \le 10` and :math:`\alpha \in \{0.05, 0.10\}`, else the studentized range
    quantile :math:`q_{1-\alpha}(k, \infty) / \sqrt{2}` (which the table gives to three
    decimals)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an int >= 2, got {k!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if alpha in Q_ALPHA and k <= 10:
        return Q_ALPHA[alpha][k - 2]
    return float(studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    r"""The Nemenyi critical difference of average ranks for ``k`` methods on ``n`` datasets,

    .. math:: CD = q_\alpha \sqrt{\frac{k(k+1)}{6N}} ;

    two methods whose average ranks differ by at least :math:`CD` differ significantly."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return q_alpha(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n))


def nemenyi_pvalues(scores: np.ndarray) -> np.ndarray:
    r"""Pairwise Nemenyi p-values after the Friedman test, :math:`(k, k)`:
    :math:`p_{ij} = P\big(q > |R_i - R_j| \sqrt{2} / \sqrt{k(k+1)/(6N)}\big)` for the
    studentized range with :math:`k` groups and infinite degrees of freedom (diagonal 1)."""
    a = _check_table(scores)
    n, k = a.shape
    R = average_ranks(a)
    z = np.abs(R[:, None] - R[None, :]) / math.sqrt(k * (k + 1) / (6.0 * n))
    p = studentized_range.sf(z * math.sqrt(2.0), k, np.inf)
    p = np.clip(p, 0.0, 1.0)
    np.fill_diagonal(p, 1.0)
    return p


def holm(pvalues: Sequence[float]) -> np.ndarray:
    r"""Holm's step-down adjustment: with the :math:`m` p-values sorted,
    :math:`p_{(1)} \le \dots \le p_{(m)}`, the adjusted
    :math:`\tilde p_{(i)} = \min\big(1, \max_{j \le i} (m - j + 1) p_{(j)}\big)`, returned in
    the input order."""
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.empty(m)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, (m - i) * p[j])
        adj[j] = min(1.0, running)
    return adj


def wilcoxon_p(x: np.ndarray, y: np.ndarray) -> float:
    """The two-sided Wilcoxon signed-rank p of paired samples ``x``, ``y`` (zero differences
    dropped, no continuity correction); 1 when all pairs are equal."""
    if np.all(x == y):
        return 1.0
    return float(wilcoxon(x, y, zero_method="wilcox", correction=False,
                          alternative="two-sided").pvalue)


def wilcoxon_holm(scores: np.ndarray, pairs: Sequence[tuple[int, int]] | None = None
                  ) -> dict[tuple[int, int], tuple[float, float]]:
    r"""Two-sided Wilcoxon signed-rank tests of paired columns across datasets
    (``scipy.stats.wilcoxon``, zero differences dropped), Holm-adjusted over the tested pairs.

    Args:
        scores (np.ndarray): :math:`(N, k)` table.
        pairs (list of (int, int), optional): column pairs to test; the family the Holm
            correction runs over. (default: all :math:`k(k-1)/2` pairs)

    Returns:
        ``{(i, j): (p, p_holm)}``; a pair with no non-zero difference has ``p = 1``.
    """
    a = _check_table(scores)
    k = a.shape[1]
    if pairs is None:
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    pairs = [(int(i), int(j)) for i, j in pairs]
    for i, j in pairs:
        if not (0 <= i < k and 0 <= j < k) or i == j:
            raise ValueError(f"pairs must name two different columns in [0, {k}), got {(i, j)}")
    raw = [wilcoxon_p(a[:, i], a[:, j]) for i, j in pairs]
    adj = holm(raw)
    return {pair: (p, float(q)) for pair, p, q in zip(pairs, raw, adj)}


def cd_diagram(names: Sequence[str], scores: np.ndarray, path: str | Path, *,
               title: str = "", alpha: float = 0.05) -> Path:
    """A critical-difference diagram (``scikit_posthocs.critical_difference_diagram``): the
    average ranks on an axis, methods joined by a bar where Nemenyi finds no significant
    difference, and the Nemenyi CD marked; written as a PNG to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import scikit_posthocs as sp

    a = _check_table(scores)
    names = list(names)
    if len(names) != a.shape[1] or len(set(names)) != len(names):
        raise ValueError(f"names must be {a.shape[1]} distinct labels, got {names!r}")
    ranks = pd.Series(average_ranks(a), index=names)
    sig = pd.DataFrame(nemenyi_pvalues(a), index=names, columns=names)
    cd = nemenyi_cd(a.shape[1], a.shape[0], alpha)
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.28 * len(names)))
    sp.critical_difference_diagram(ranks, sig, ax=ax, alpha=alpha, cd=cd)
    ax.set_title(f"{title} (N={a.shape[0]} sets, Nemenyi CD={cd:.2f} at alpha={alpha})",
                 fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def nemenyi_groups(ranks: Sequence[float], cd: float) -> list[list[int]]:
    r"""The groups of a critical-difference diagram: with the methods sorted by average rank,
    every maximal run :math:`i..j` of consecutive methods with :math:`R_j - R_i < CD` (no two
    of them differ significantly by Nemenyi), as lists of method indices, best first; a method
    that differs from all others forms a group alone."""
    R = np.asarray(ranks, dtype=np.float64)
    if R.ndim != 1 or R.size == 0 or not np.isfinite(R).all():
        raise ValueError(f"ranks must be a non-empty 1-D array of finite values, got {ranks!r}")
    if not (isinstance(cd, (int, float)) and math.isfinite(cd) and cd > 0):
        raise ValueError(f"cd must be a positive finite number, got {cd!r}")
    order = np.argsort(R, kind="stable")
    groups: list[list[int]] = []
    last_end = -1
    for i in range(order.size):
        j = i
        while j + 1 < order.size and R[order[j + 1]] - R[order[i]] < cd:
            j += 1
        if j > last_end:  # not inside the previous run
            groups.append([int(m) for m in order[i:j + 1]])
            last_end = j
    return groups


def cd_text(names: Sequence[str], scores: np.ndarray, *, alpha: float = 0.05,
            width: int = 50) -> str:
    """A critical-difference diagram as text (for a Markdown code block): the rank axis, the
    Nemenyi CD as a bar to scale, and one line per method, best first, with its average rank,
    its place on the axis (``*``) and the letters of its :func:`nemenyi_groups` (methods
    sharing a letter do not differ significantly)."""
    a = _check_table(scores)
    names = list(names)
    if len(names) != a.shape[1]:
        raise ValueError(f"names must be {a.shape[1]} labels, got {len(names)}")
    n, k = a.shape
    R = average_ranks(a)
    cd = nemenyi_cd(k, n, alpha)
    groups = nemenyi_groups(R, cd)
    letters = {m: "".join(chr(ord("a") + g) if g < 26 else "?" for g, grp in enumerate(groups)
                          if m in grp) for m in range(k)}
    scale = (width - 1) / max(k - 1, 1)

    def col(rank: float) -> int:
        return int(round((rank - 1) * scale))

    pad = max(len(s) for s in names) + 8
    axis = [" "] * width
    ticks = [" "] * (width + 4)
    for r in range(1, k + 1):
        axis[col(r)] = "+"
        label = str(r)
        c = col(r)
        if all(ch == " " for ch in ticks[c:c + len(label) + 1]):
            ticks[c:c + len(label)] = label
    lines = [" " * pad + "".join(ticks).rstrip(),
             " " * pad + "".join(a if a == "+" else "-" for a in axis),
             f"{'CD = %.2f' % cd:<{pad}}" + "|" + "=" * max(col(1 + cd) - 1, 0) + "|"]
    for m in np.argsort(R, kind="stable"):
        row = [" "] * width
        row[col(R[m])] = "*"
        lines.append(f"{names[m]:<{pad - 8}} {R[m]:5.2f}  " + "".join(row) + "  " + letters[m])
    lines.append(f"(N = {n} sets, {k} methods, alpha = {alpha}; a shared letter: no "
                 "significant difference)")
    return "\n".join(lines)
