"""Feature ranking benchmark: Inf-FS at 1, 2, 3, 5 and infinitely many hops against the baselines.

Protocol (as in the Inf-FS papers): stratified 5-fold cross-validation; each selector ranks the
features on the training fold only; a linear SVM (features standardised on the training fold,
in the data's column order; one fit per distinct feature set and fold, shared by the selectors
that chose it) is trained on the top-k features for k in {10, 50, 100, 150, 200} (capped by
the feature count) and scored on the test fold. Prints accuracy mean ± std per dataset (over
folds and seeds), the average rank of each selector across datasets per k, and precision@k of
the planted features on the synthetic sets; writes ``--csv``/``--json`` rows and two plots
(accuracy against k per selector, accuracy against hops).

Selectors: ``inffs[-sup][-knn]-h{1,2,3,5,inf}`` (affgraph.selection.InfFS; ``-sup`` is the
supervised u2020 variant, ``-knn`` sparsifies the feature graph to ``--knn`` neighbours),
``inffs-rel-{h1,hinf,cv,affcv}`` (the label-aware ``variant="relevance"`` on the kNN graph;
``cv`` chooses the hop count, ``affcv`` the hop count and the graph form ``affinity``, by inner
cross-validation on the training fold), ``inffs-auto`` (the
unsupervised graph and hop count whose top k features best reconstruct the training data, no
labels: :func:`auto_choice`), ``anova`` (F statistic), ``mi`` (mutual information),
``variance`` (scikit-learn), ``mrmr`` (mrmr-selection's rule, affgraph.baselines.mrmr_order),
``relieff``, ``fisher``, ``laplacian`` (affgraph.baselines), ``lapscore``, ``spec``, ``mcfs``,
``ndfs``, ``udfs`` (scikit-feature), ``random``. The groups ``supervised`` and
``unsupervised`` are the two families, tabulated apart (random in both) with average ranks,
the Friedman test, the Nemenyi critical difference, Wilcoxon-Holm tests of the headline
(``inffs-rel-cv``, ``inffs-auto``) and a critical-difference diagram per family and k
(``cd_<family>_k<k>.png``); they leave out the rows equal to another by construction
(``fisher`` = ``anova``'s order, ``inffs-sup-h2`` ... ``hinf`` = ``inffs-sup-h1``).

``--workers N`` runs the (dataset, seed, fold) jobs in N processes of one thread each, with the
serial run's rows; ``--load`` tabulates one or more saved ``--json`` files together (a row
repeated in a later file replaces the earlier one, so a re-run chunk can be merged);
``--time-limit S`` stops a rival whose fit on one fold runs past S seconds and leaves it out
on that dataset, with the time in a "Did not run" table; ``--diagnose`` prints, per dataset,
the spectral gap of the Inf-FS feature graphs and how far the 1-hop and infinite-hop rankings
agree (why the hops change so little on the dense graph).

    python scripts/feature_ranking.py --quick                              # tiny smoke run
    python scripts/feature_ranking.py --data-root /path/to/data           # 22 .mat + embedded
    python scripts/feature_ranking.py --datasets breast_cancer planted --selectors baselines inffs
    python scripts/feature_ranking.py --selectors supervised unsupervised --seeds 3 --workers 2
    python scripts/feature_ranking.py --seeds 10 --workers 16 --json r.json --no-progress
    python scripts/feature_ranking.py --selectors ndfs udfs --seeds 3 --time-limit 60 --json n.json
    python scripts/feature_ranking.py --load r_a.json r_b.json            # merge saved runs
    python scripts/feature_ranking.py --diagnose --datasets lung_small planted
"""
from __future__ import annotations

import argparse
import math
import re
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, MutableMapping, Sequence

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import VarianceThreshold, f_classif, mutual_info_classif
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    add_output_args, load_rows, markdown_table, mean_std, resume_rows, single_thread_pool,
    write_rows,
)

from affgraph.baselines import (fisher_score, laplacian_score, mrmr_order,  # noqa: E402
                                relieff_score)
from affgraph.datasets import (list_datasets, load_embedded, load_featsel,  # noqa: E402
                               make_planted_features)

KS = (10, 50, 100, 150, 200)
HOPS = ("1", "2", "3", "5", "inf")
BASELINES = ("anova", "mi", "variance", "fisher", "relieff", "laplacian", "random")
# the hops matter on the kNN graph (see --diagnose); on the dense graph they barely change
# the ranking, and the supervised u2020 decay r / max row sum makes hops beyond 1 invisible
INFFS = tuple(f"inffs-h{h}" for h in HOPS) + tuple(f"inffs-knn-h{h}" for h in HOPS) + \
    tuple(f"inffs-sup-h{h}" for h in HOPS) + ("inffs-sup-knn-hinf",)
# the label-aware variant (affgraph.inffs variant="relevance": class relevance times
# non-redundancy on the kNN feature graph, or dense with -dense), at a hop count or with the
# hop count chosen by inner cross-validation on the training fold (-cv)
_REL_RE = re.compile(
    r"^inffs-rel(?P<dense>-dense)?-(?:h(?P<hops>\d+|inf)|(?P<cv>cv)|(?P<affcv>affcv))$")
REL = ("inffs-rel-cv", "inffs-rel-affcv", "inffs-rel-h1", "inffs-rel-hinf")
# the unsupervised Inf-FS graphs and hop counts that inffs-auto chooses from
AUTO_CANDIDATES = tuple(f"inffs-h{h}" for h in HOPS) + tuple(f"inffs-knn-h{h}" for h in HOPS)
# the two families, each judged on its own; rows equal to another by construction are left out:
# fisher (= anova's F up to the factor (C-1)/(n-C), the same order) and inffs-sup-h2 ... hinf
# (= inffs-sup-h1: the u2020 decay; a test checks both before they are dropped)
SUPERVISED = ("anova", "mi", "mrmr", "relieff", "inffs-sup-h1", "inffs-sup-knn-hinf", *REL,
              "random")
UNSUPERVISED = ("variance", "lapscore", "spec", "mcfs", "ndfs", "udfs", *AUTO_CANDIDATES,
                "inffs-auto", "random")
RIVALS = ("mrmr", "lapscore", "spec", "mcfs", "ndfs", "udfs", "inffs-auto")
SELECTORS = INFFS + BASELINES + tuple(s for s in RIVALS if s not in BASELINES) + REL
GROUPS = {"baselines": BASELINES, "inffs": INFFS, "rel": REL, "supervised": SUPERVISED,
          "unsupervised": UNSUPERVISED,
          "all": tuple(dict.fromkeys(SUPERVISED + UNSUPERVISED))}
# planted-feature sets: (n_samples, n_features, n_informative, n_classes, class_sep)
PLANTED = {"planted": (400, 500, 20, 3, 1.0), "planted-small": (150, 60, 6, 2, 1.0)}
_INFFS_RE = re.compile(r"^inffs(?P<sup>-sup)?(?P<knn>-knn)?-h(?P<hops>\d+|inf)$")
_UNSUP_NAMES = {"variance", "laplacian", "lapscore", "spec", "mcfs", "ndfs", "udfs",
                "inffs-auto"}
_EXTRA: dict[str, Callable[..., "Ranker"]] = {}  # selectors registered by register_selector

Ranker = Callable[[np.ndarray, np.ndarray], np.ndarray]


def family(name: str) -> str:
    """``"supervised"``, ``"unsupervised"`` or ``"both"`` (random) for a selector name."""
    if name == "random":
        return "both"
    if _REL_RE.match(name):
        return "supervised"
    m = _INFFS_RE.match(name)
    if m:
        return "supervised" if m["sup"] else "unsupervised"
    if name in _EXTRA:
        return getattr(_EXTRA[name], "family", "supervised")
    return "unsupervised" if name in _UNSUP_NAMES else "supervised"


def register_selector(name: str, factory: Callable[[int, int], "Ranker"], *,
                      family: str = "supervised") -> None:
    """Add a selector: ``factory(seed, k_max)`` returns its ranker ``(X, y) -> order``."""
    if family not in ("supervised", "unsupervised"):
        raise ValueError(f"family must be 'supervised' or 'unsupervised', got {family!r}")
    factory.family = family  # type: ignore[attr-defined]
    _EXTRA[name] = factory


# ---- selectors: each returns the feature order, best first ---------------------------------

def _order(scores: np.ndarray) -> np.ndarray:
    """Feature indices by decreasing score; NaN last; ties keep the lower index first."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    return np.argsort(-s, kind="stable")


def _complete(head: np.ndarray, d: int) -> np.ndarray:
    """``head`` (distinct feature indices, best first) followed by the other features in
    column order: a full order of which only the first ``len(head)`` are ever used."""
    head = np.asarray(head, dtype=np.int64)
    rest = np.setdiff1d(np.arange(d), head)
    return np.concatenate([head, rest])


def _n_clusters(y: np.ndarray) -> int:
    """The cluster count of MCFS, NDFS and UDFS: the number of classes (as in the
    scikit-feature benchmark; the labels themselves are not used)."""
    return int(np.unique(y).size)


def _skfeature(name: str, k_max: int) -> Ranker:
    """scikit-feature's (``skfeature-chappers``) unsupervised selectors, their default graphs
    (cosine 5-NN, binary weights) and settings; SPEC's RBF kernel gets the width
    ``gamma = 1 / (d var(X))`` (scikit-learn's ``"scale"``; the package's ``gamma=1`` on raw
    features is nearly the identity)."""
    def rank(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        d = X.shape[1]
        if name == "lapscore":
            from skfeature.function.similarity_based.lap_score import lap_score
            return np.asarray(lap_score(X, mode="index")).ravel()
        if name == "spec":
            from sklearn.metrics.pairwise import rbf_kernel
            from skfeature.function.similarity_based.SPEC import spec
            var = X.var()
            W = rbf_kernel(X, gamma=1.0 / (d * var) if var > 0 else 1.0)
            return np.asarray(spec(X, mode="index", style=0, W=W)).ravel()
        if name == "mcfs":
            from skfeature.function.sparse_learning_based.MCFS import mcfs
            return np.asarray(mcfs(X, n_selected_features=min(k_max, d), mode="index",
                                   n_clusters=_n_clusters(y))).ravel()
        if name == "ndfs":
            from skfeature.function.sparse_learning_based.NDFS import ndfs
            return np.asarray(ndfs(X, mode="index", n_clusters=_n_clusters(y))).ravel()
        from skfeature.function.sparse_learning_based.UDFS import udfs
        return np.asarray(udfs(X, mode="index", n_clusters=_n_clusters(y))).ravel()
    return rank


def make_ranker(name: str, seed: int, knn: int = 10, k_max: int = max(KS)) -> Ranker:
    """The ranking function ``(X_train, y_train) -> order`` of selector ``name``; ``k_max``
    is the largest k the order is used at (mRMR and MCFS pick that many, the rest follow
    in column order). ``inffs-auto`` needs all the training fold's candidate orders and is
    run by :func:`inffs_orders` instead."""
    if name in _EXTRA:
        return _EXTRA[name](seed, k_max)
    r = _REL_RE.match(name)
    if r:
        from affgraph.selection import InfFS

        def inffs_rel(X: np.ndarray, y: np.ndarray) -> np.ndarray:
            cv = r["cv"] or r["affcv"]
            hops = "cv" if cv else math.inf if r["hops"] == "inf" else int(r["hops"])
            extra = {"affinity": "cv"} if r["affcv"] else {}
            sel = InfFS(variant="relevance", supervised=True, hops=hops,
                        knn=None if r["dense"] else knn, random_state=seed, **extra)
            sel.fit(X, y)
            return np.argsort(np.asarray(sel.ranking_), kind="stable")
        return inffs_rel
    m = _INFFS_RE.match(name)
    if m:
        from affgraph.selection import InfFS

        hops = math.inf if m["hops"] == "inf" else int(m["hops"])
        sup = bool(m["sup"])

        def inffs(X: np.ndarray, y: np.ndarray) -> np.ndarray:
            sel = InfFS(hops=hops, knn=knn if m["knn"] else None,
                        variant="u2020" if sup else "paper", supervised=sup)
            sel.fit(X, y if sup else None)
            return np.argsort(np.asarray(sel.ranking_), kind="stable")
        return inffs
    if name == "anova":
        return lambda X, y: _order(f_classif(X, y)[0])
    if name == "mi":
        return lambda X, y: _order(mutual_info_classif(X, y, random_state=seed))
    if name == "mrmr":
        return lambda X, y: _complete(mrmr_order(X, y, min(k_max, X.shape[1])), X.shape[1])
    if name == "variance":
        return lambda X, y: _order(VarianceThreshold().fit(X).variances_)
    if name == "fisher":
        return lambda X, y: _order(fisher_score(X, y))
    if name == "relieff":
        return lambda X, y: _order(relieff_score(X, y, n_neighbors=10))
    if name == "laplacian":
        return lambda X, y: _order(-laplacian_score(X, n_neighbors=5))
    if name in ("lapscore", "spec", "mcfs", "ndfs", "udfs"):
        return _skfeature(name, k_max)
    if name == "random":
        rng = np.random.default_rng(seed)
        return lambda X, y: rng.permutation(X.shape[1])
    raise ValueError(f"unknown selector {name!r}; known: {', '.join(_known())} "
                     "(or inffs[-sup][-knn]-h<N|inf>)")


def _known() -> list[str]:
    return list(SELECTORS) + list(_EXTRA)


def expand_selectors(names: Sequence[str]) -> list[str]:
    """Expand the groups ``baselines``, ``inffs``, ``supervised``, ``unsupervised`` and
    ``all``; check the names."""
    out: list[str] = []
    for n in names:
        group = GROUPS.get(n)
        if n in ("supervised", "all"):
            group = tuple(dict.fromkeys(
                [*(s for s in group if s != "random"),
                 *(e for e in _EXTRA if family(e) == "supervised"), *group]))
        if n in ("unsupervised", "all"):
            group = tuple(dict.fromkeys(
                [*group, *(e for e in _EXTRA if family(e) == "unsupervised")]))
        for s in group or (n,):
            if s not in SELECTORS and s not in _EXTRA and not _INFFS_RE.match(s) \
                    and not _REL_RE.match(s):
                raise ValueError(f"unknown selector {s!r}; known: {', '.join(_known())}, "
                                 "groups " + ", ".join(GROUPS))
            if s not in out:
                out.append(s)
    return out


# ---- datasets ----------------------------------------------------------------------------

def expand_datasets(names: Sequence[str]) -> list[str]:
    """Expand the groups ``featsel``, ``embedded`` and ``all``; check the names."""
    featsel, embedded = list_datasets("featsel"), list_datasets("embedded")
    groups = {"featsel": featsel, "embedded": embedded,
              "all": featsel + embedded + ["planted"]}
    known = {n.lower(): n for n in featsel + embedded + list(PLANTED)}
    out: list[str] = []
    for n in names:
        for d in groups.get(n, [n]):
            canonical = known.get(d.lower().replace("_", "-")) or known.get(d.lower())
            if canonical is None:
                raise ValueError(f"unknown dataset {d!r}; known: {', '.join(known.values())}, "
                                 "groups featsel, embedded, all")
            if canonical not in out:
                out.append(canonical)
    return out


def load_dataset(name: str, root: str | None, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(X, y, informative_idx or None)`` of a featsel, embedded or planted set."""
    if name in PLANTED:
        n, d, k, c, sep = PLANTED[name]
        return make_planted_features(n, d, k, n_classes=c, class_sep=sep, seed=seed)
    if name in list_datasets("embedded"):
        return (*load_embedded(name), None)
    return (*load_featsel(name, root), None)


# ---- the benchmark -----------------------------------------------------------------------

def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or min(out) < 0:
        raise ValueError(f"seeds must be a non-empty list of non-negative ints, got {seeds!r}")
    return out


def _svm_accuracy(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray) -> float:
    scaler = StandardScaler().fit(Xtr)
    clf = LinearSVC(C=1.0, max_iter=2000, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(Xtr), ytr)
    return float((clf.predict(scaler.transform(Xte)) == yte).mean())


_LOADED: dict[tuple, tuple] = {}


def _fold_data(dname: str, seed: int, n_folds: int, root: str | None) -> tuple:
    """``(X, y, informative, splits)`` of a (dataset, seed), kept for the next fold's job."""
    key = (dname, seed, n_folds, root)
    if key not in _LOADED:
        _LOADED.clear()
        X, y, informative = load_dataset(dname, root, seed)
        folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # classes smaller than n_folds
            splits = list(folds.split(X, y))
        _LOADED[key] = (X, y, informative, splits)
    return _LOADED[key]


def inffs_orders(selectors: Sequence[str], X: np.ndarray, y: np.ndarray, knn: int = 10
                 ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, str]]:
    """The feature orders of the Inf-FS selectors among ``selectors``, with one affinity build
    per graph (dense or kNN, unsupervised or supervised) for all its hop counts; each order
    equals ``make_ranker(name)(X, y)``. Returns ``(orders, fit seconds, errors)``: a graph's
    build time is shared equally by its selectors; a graph that raises fails them all."""
    from affgraph.inffs import inffs_scores

    fams: dict[tuple[bool, bool], list[tuple[str, float]]] = {}
    if "inffs-auto" in selectors:  # its candidates come with it, built once with the others
        selectors = list(dict.fromkeys([*selectors, *AUTO_CANDIDATES]))
    for name in selectors:
        m, r = _INFFS_RE.match(name), _REL_RE.match(name)
        if m:
            hops = math.inf if m["hops"] == "inf" else int(m["hops"])
            fams.setdefault(("u2020" if m["sup"] else "paper", bool(m["knn"])), []).append(
                (name, hops))
        elif r and not (r["cv"] or r["affcv"]):
            hops = math.inf if r["hops"] == "inf" else int(r["hops"])
            fams.setdefault(("relevance", not r["dense"]), []).append((name, hops))
    orders: dict[str, np.ndarray] = {}
    fit: dict[str, float] = {}
    errors: dict[str, str] = {}
    for (variant, use_knn), members in fams.items():
        sup = variant != "paper"
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", UserWarning)
                S = inffs_scores(np.asarray(X, dtype=np.float64), y if sup else None,
                                 hops=[h for _, h in members], knn=knn if use_knn else None,
                                 variant=variant).numpy()
        except Exception as err:
            errors.update({name: f"{type(err).__name__}: {err}" for name, _ in members})
            continue
        share = (time.perf_counter() - t0) / len(members)
        for (name, _), scores in zip(members, S):
            orders[name] = np.argsort(-scores, kind="stable")  # InfFS.ranking_ order
            fit[name] = share
    return orders, fit, errors


def auto_choice(orders: dict[str, np.ndarray], X: np.ndarray, k: int, *, sketch: int = 256,
                seed: int = 0) -> str:
    r"""The unsupervised Inf-FS candidate (graph and hop count, :data:`AUTO_CANDIDATES`) whose
    top ``k`` features best reconstruct the training data, chosen without labels: with the
    standardised training data :math:`Z` (:math:`m \times n`), a Gaussian sketch
    :math:`Y = Z G` (:math:`G` of ``sketch`` columns, seeded) and :math:`Q` an orthonormal
    basis of the selected columns of :math:`Z`,

    .. math::
        \text{explained}(S) = \lVert Q Q^\top Y \rVert_F^2 \,/\, \lVert Y \rVert_F^2 ,

    the candidate with the largest value wins (ties: the first in :data:`AUTO_CANDIDATES`)."""
    Z = StandardScaler().fit_transform(np.asarray(X, dtype=np.float64))
    G = np.random.default_rng(seed).standard_normal((Z.shape[1], sketch))
    Y = Z @ G
    total = float((Y * Y).sum())
    best, best_val = None, -math.inf
    for name in AUTO_CANDIDATES:
        if name not in orders:
            continue
        Q, _ = np.linalg.qr(Z[:, np.sort(orders[name][:k])])
        val = float(np.square(Q.T @ Y).sum()) / total if total > 0 else 0.0
        if val > best_val + 1e-12:
            best, best_val = name, val
    if best is None:
        raise ValueError("inffs-auto: no candidate order")
    return best


class SelectorTimeout(Exception):
    """A selector's fit ran past the time limit of :func:`run`."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`SelectorTimeout` in the body once ``seconds`` of wall time have passed
    (``SIGALRM``; in the main thread of a Unix process, as the ``--workers`` processes run
    their jobs). The signal is handled between Python bytecodes, so a single long BLAS call
    finishes first. ``None``, or a thread or platform without the signal: no limit."""
    if (seconds is None or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise SelectorTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _run_job(dname: str, seed: int, fold: int, selectors: Sequence[str], ks: Sequence[int],
             n_folds: int, root: str | None, knn: int,
             tick: Callable[[str], None] | None = None, *, limit_s: float | None = None,
             slow: MutableMapping[tuple[str, str], str] | None = None,
             ) -> tuple[list[dict], dict[str, str]]:
    """One (dataset, seed, fold) job of :func:`run`: its rows, and ``{selector: error}`` for
    the selectors that raised. With ``limit_s``, a rival's fit (the rankers of
    :func:`make_ranker`; the Inf-FS orders are not limited) that runs past it is stopped and
    recorded in ``slow`` (shared by the jobs of a run), and the later jobs of the dataset skip
    that selector."""
    X, y, informative, splits = _fold_data(dname, seed, n_folds, root)
    tr, te = splits[fold]
    Xtr, ytr = X[tr], y[tr]  # the selectors see the training fold only
    d = X.shape[1]
    k_pairs = sorted({(min(k, d), k) for k in ks})
    pre_orders, pre_fit, failed = inffs_orders(selectors, Xtr, ytr, knn)
    rows: list[dict] = []
    acc_of: dict[bytes, float] = {}  # feature set -> accuracy: selectors often pick equal sets
    for sname in selectors:
        if tick is not None:
            tick(f"{dname} seed {seed} fold {fold} {sname}")
        if sname in failed:
            continue
        choice: dict[int, str] = {}
        if sname == "inffs-auto":
            t0 = time.perf_counter()
            choice = {k_eff: auto_choice(pre_orders, Xtr, k_eff, seed=seed * 1000 + fold)
                      for k_eff, _ in k_pairs}
            order = None
            fit_s = time.perf_counter() - t0 + sum(pre_fit.get(c, 0.0) for c in AUTO_CANDIDATES)
        elif sname in pre_orders:
            order, fit_s = pre_orders[sname], pre_fit[sname]
        else:
            if slow is not None and (dname, sname) in slow:
                failed[sname] = slow[(dname, sname)]
                continue
            ranker = make_ranker(sname, seed * 1000 + fold, knn, max(ks))
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings(), time_limit(limit_s):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    warnings.simplefilter("ignore", UserWarning)
                    # a copy: some rivals (scikit-feature's lap_score, MCFS) write into X,
                    # which would corrupt the SVM data of this and every later selector
                    order = np.asarray(ranker(Xtr.copy(), ytr.copy()))
            except SelectorTimeout:
                failed[sname] = (f"too slow: stopped after {time.perf_counter() - t0:.0f} s "
                                 f"(limit {limit_s:g} s) on seed {seed} fold {fold}")
                if slow is not None:
                    slow[(dname, sname)] = failed[sname]
                continue
            except Exception as err:  # keep the long run going; say what failed
                failed[sname] = f"{type(err).__name__}: {err}"
                continue
            fit_s = time.perf_counter() - t0
        for k_eff, k in k_pairs:
            o = pre_orders[choice[k_eff]] if choice else order
            cols = np.sort(o[:k_eff])  # the SVM sees the set, in the data's column order
            prec = None
            if informative is not None:
                hits = np.intersect1d(cols, informative).size
                prec = hits / min(k_eff, informative.size)
            key = cols.astype(np.int64).tobytes()
            if key not in acc_of:
                acc_of[key] = _svm_accuracy(Xtr[:, cols], ytr, X[te][:, cols], y[te])
            rows.append(dict(
                dataset=dname, selector=sname, seed=seed, fold=fold, k=k,
                k_eff=k_eff, n_features=d, accuracy=acc_of[key],
                precision=prec, fit_s=fit_s))
            if choice:
                rows[-1]["choice"] = choice[k_eff]
    return rows, failed


def _job_cost(dname: str, root: str | None) -> float:
    """A rough relative cost of one job, to start the big ones first: the Inf-FS affinities
    cost ~n^2 m, ReliefF ~m^2 n."""
    if dname in PLANTED:
        m, n = PLANTED[dname][:2]
    else:
        X = load_dataset(dname, root)[0]
        m, n = X.shape
    return float(m) * n * (n + m)


def run(datasets: Sequence[str], selectors: Sequence[str], *, ks: Sequence[int] = KS,
        seeds: int | Sequence[int] = 1, n_folds: int = 5, root: str | None = None,
        knn: int = 10, progress: bool = True, workers: int = 1,
        on_dataset_done: Callable[[list[dict]], None] | None = None,
        limit_s: float | None = None, on_job_done: Callable[[list[dict]], None] | None = None,
        done_rows: Sequence[dict] = ()) -> list[dict]:
    """Run the protocol; one row per (dataset, selector, seed, fold, k).

    Row keys: ``dataset, selector, seed, fold, k, k_eff, n_features, accuracy, precision``
    (planted sets only, else ``None``), ``fit_s`` (the selector's fit time on the fold; the
    Inf-FS selectors of one graph share one affinity build, see :func:`inffs_orders`).
    A selector that raises on a dataset, or whose fit on one fold runs past ``limit_s``
    seconds (the rivals only; see :func:`time_limit`), is reported on stderr and gives no
    result rows there (for any seed or fold), but one row ``{dataset, selector, error}``
    at the end saying why (:func:`split_errors` separates them). Each selector ranks the
    features of the training fold only.

    ``workers > 1`` runs the (dataset, seed, fold) jobs in a pool of that many fresh
    (spawned) processes, one torch / BLAS thread each, the largest datasets first; the rows
    come back in the serial order and, but for ``fit_s``, equal the serial run's (every
    random choice is seeded by the job; bit for bit when the serial run also uses one thread,
    ``--threads 1``). ``on_dataset_done(rows so far)`` is called when all seeds and folds of
    a dataset are done, ``on_job_done(rows so far)`` after every (dataset, seed, fold) job.

    ``done_rows`` are the rows (and error rows) of an earlier run of the same protocol that
    was cut short: a job whose rows there cover every selector and k is not run again, its
    rows are returned as saved, and a selector with an error row there stays left out on
    that dataset.
    """
    datasets, selectors = expand_datasets(datasets), expand_selectors(selectors)
    seed_list = _seed_list(seeds)
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive ints, got {list(ks)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if limit_s is not None and (isinstance(limit_s, bool) or not limit_s > 0):
        raise ValueError(f"limit_s must be a positive number of seconds, got {limit_s!r}")
    jobs = [(d, s, f) for d in datasets for s in seed_list for f in range(n_folds)]
    per_job = len(selectors)
    bar = tqdm(total=len(jobs) * per_job, disable=not progress, desc="feature ranking",
               dynamic_ncols=True)
    done: dict[tuple[str, int, int], list[dict]] = {}
    failed: dict[tuple[str, str], str] = {}
    _take_done_rows(done_rows, jobs, selectors, ks, done, failed)

    def collect() -> list[dict]:
        rows = [r for job in jobs if job in done for r in done[job]
                if (r["dataset"], r["selector"]) not in failed]
        return rows + [dict(dataset=d, selector=sname, error=msg)
                       for (d, sname), msg in failed.items()]

    def finish(job: tuple[str, int, int], rows: list[dict], errors: dict[str, str]) -> None:
        done[job] = rows
        for sname, msg in errors.items():
            if (job[0], sname) not in failed:
                failed[(job[0], sname)] = msg
                print(f"\n{sname} failed on {job[0]}: {msg}", file=sys.stderr)
        if on_job_done is not None:
            on_job_done(collect())
        if on_dataset_done is not None and all(j in done for j in jobs if j[0] == job[0]):
            on_dataset_done(collect())

    todo_jobs = [job for job in jobs if job not in done]
    bar.update(per_job * (len(jobs) - len(todo_jobs)))

    def tick(msg: str) -> None:
        bar.set_postfix_str(msg)
        bar.update(1)

    if workers == 1:
        for job in todo_jobs:
            skip = [s for s in selectors if (job[0], s) in failed]
            todo = [s for s in selectors if s not in skip]
            bar.update(len(skip))
            finish(job, *_run_job(*job, todo, ks, n_folds, root, knn, tick, limit_s=limit_s))
    else:
        import multiprocessing
        from concurrent.futures import as_completed

        cost = {d: _job_cost(d, root) for d in {j[0] for j in todo_jobs}}
        order = sorted(todo_jobs, key=lambda j: -cost[j[0]])  # stable: a dataset's folds together
        manager = multiprocessing.get_context("spawn").Manager() if limit_s else None
        slow = manager.dict() if manager is not None else None  # seen by every worker
        with single_thread_pool(workers) as pool:
            futures = {pool.submit(_run_job, *job, list(selectors), list(ks), n_folds,
                                   root, knn, limit_s=limit_s, slow=slow): job
                       for job in order}
            for fut in as_completed(futures):
                job = futures[fut]
                finish(job, *fut.result())
                bar.set_postfix_str(f"{job[0]} seed {job[1]} fold {job[2]}")
                bar.update(per_job)
        if manager is not None:
            manager.shutdown()
    bar.close()
    return collect()


def _take_done_rows(rows: Sequence[dict], jobs: Sequence[tuple[str, int, int]],
                    selectors: Sequence[str], ks: Sequence[int],
                    done: dict[tuple[str, int, int], list[dict]],
                    failed: dict[tuple[str, str], str]) -> None:
    """Fill ``done`` and ``failed`` of :func:`run` from the rows of an earlier cut run: the
    error rows of the requested selectors, and each job whose saved rows hold every k of
    every requested selector that has not failed on its dataset."""
    results, errors = split_errors(list(rows))
    wanted = set(selectors)
    for e in errors:
        if e["selector"] in wanted:
            failed.setdefault((e["dataset"], e["selector"]), e["error"])
    by_job: dict[tuple[str, int, int], list[dict]] = {}
    for r in results:
        if r["selector"] in wanted and r["k"] in ks:
            by_job.setdefault((r["dataset"], r["seed"], r["fold"]), []).append(r)
    order = {s: i for i, s in enumerate(selectors)}
    for job in jobs:
        have = {(r["selector"], r["k"]) for r in by_job.get(job, [])}
        need = {(s, k) for s in selectors if (job[0], s) not in failed for k in ks}
        if by_job.get(job) and need <= have:
            done[job] = sorted(dedupe_rows(by_job[job]),
                               key=lambda r: (order[r["selector"]], r["k"]))


def split_errors(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(result rows, error rows)``: the rows with an ``error`` (a selector that raised or
    ran past the time limit on a dataset, :func:`run`) apart from the others."""
    return ([r for r in rows if "error" not in r], [r for r in rows if "error" in r])


def format_errors(errors: list[dict]) -> str:
    """A markdown table of the selectors that did not run on a dataset, and why."""
    if not errors:
        return ""
    seen = {(e["dataset"], e["selector"]): e["error"] for e in errors}
    return ("### Did not run\n\n" + markdown_table(
        ["dataset", "selector", "why"], [[d, f"`{s}`", msg] for (d, s), msg in seen.items()]))


# ---- tables and plots --------------------------------------------------------------------

def _group(rows: list[dict], keys: Sequence[str], value: str) -> dict[tuple, list[float]]:
    out: dict[tuple, list[float]] = {}
    for r in rows:
        if r.get(value) is not None:
            out.setdefault(tuple(r[k] for k in keys), []).append(r[value])
    return out


def _ordered(values: list) -> list:
    return list(dict.fromkeys(values))


def average_ranks(rows: list[dict]) -> dict[int, dict[str, float]]:
    """Average rank (1 = best, ties averaged) of each selector across datasets, per k.

    At each k, only datasets with more than k features count (with k >= d every selector
    keeps all features and ties), and only selectors with results on every one of them.
    """
    acc = _group(rows, ("dataset", "k", "selector"), "accuracy")
    out: dict[int, dict[str, float]] = {}
    sels = _ordered([r["selector"] for r in rows])
    for k in sorted({r["k"] for r in rows}):
        dsets = _ordered([r["dataset"] for r in rows if r["k"] == k and r["n_features"] > k])
        have = [s for s in sels if all((d, k, s) in acc for d in dsets)]
        if not dsets or len(have) < 2:
            continue
        ranks = np.array([rankdata([-np.mean(acc[(d, k, s)]) for s in have]) for d in dsets])
        out[k] = dict(zip(have, ranks.mean(0).tolist()))
        out[k]["_n"] = len(dsets)
    return out


# the pre-declared headline of each family (the claim the tables test), and the rivals the
# supervised headline is tested against (Wilcoxon signed-rank, Holm over these pairs)
HEADLINE = {"supervised": "inffs-rel-cv", "unsupervised": "inffs-auto"}
PLANNED_RIVALS = {"supervised": ("anova", "mrmr"), "unsupervised": ("lapscore", "variance")}


def dedupe_rows(rows: list[dict]) -> list[dict]:
    """One row per ``(dataset, selector, seed, fold, k)``, the last one given winning (a
    re-run chunk replaces the rows it repeats); first-seen order kept."""
    out: dict[tuple, dict] = {}
    for r in rows:
        key = (r["dataset"], r["selector"], r["seed"], r["fold"], r["k"])
        out.pop(key, None)
        out[key] = r
    return list(out.values())


def score_table(rows: list[dict], selectors: Sequence[str], k: int, *,
                require: str | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """``(datasets, selectors, table)``: the mean accuracy over seeds and folds of each
    selector (columns) on each dataset with more than ``k`` features (rows), for the
    selectors among ``selectors`` with results on every such dataset; with ``require``, only
    the datasets where that selector has results count."""
    acc = _group(rows, ("dataset", "k", "selector"), "accuracy")
    dsets = _ordered([r["dataset"] for r in rows if r["k"] == k and r["n_features"] > k
                      and (require is None or (r["dataset"], k, require) in acc)])
    have = [s for s in selectors if dsets and all((d, k, s) in acc for d in dsets)]
    table = np.array([[np.mean(acc[(d, k, s)]) for s in have] for d in dsets])
    return dsets, have, table.reshape(len(dsets), len(have))


def family_stats(rows: list[dict], fam: str, k: int, alpha: float = 0.05) -> dict | None:
    """The statistics of one family at one k over the datasets with more than k features
    where its headline ran (:func:`score_table`; the selectors that ran on all of them):
    average ranks, the Friedman test, the
    Nemenyi CD, and Wilcoxon signed-rank tests of the headline (:data:`HEADLINE`, else the
    best-ranked Inf-FS selector) against :data:`PLANNED_RIVALS` (Holm over those pairs) and
    against the second-ranked selector (Holm over all pairs of the family). ``None`` when
    fewer than 3 selectors or 2 datasets have results."""
    from _stats import average_ranks as avg_ranks, friedman, nemenyi_cd, wilcoxon_holm

    sels = [s for s in _ordered([r["selector"] for r in rows]) if family(s) in (fam, "both")]
    dsets, have, table = score_table(rows, sels, k,
                                     require=HEADLINE[fam] if HEADLINE[fam] in sels else None)
    missing = [s for s in sels if s not in have]
    if len(have) < 3 or len(dsets) < 2:
        return None
    R = avg_ranks(table)
    chi, p = friedman(table)
    cd = nemenyi_cd(len(have), len(dsets), alpha)
    order = list(np.argsort(R, kind="stable"))
    head = HEADLINE[fam] if HEADLINE[fam] in have else next(
        (have[i] for i in order if have[i].startswith("inffs")), None)
    out = dict(family=fam, k=k, datasets=dsets, selectors=have, missing=missing, table=table,
               ranks=dict(zip(have, R.tolist())), friedman=(chi, p), cd=cd, alpha=alpha,
               headline=head, planned={}, first=have[order[0]], second=have[order[1]])
    if head is not None:
        h = have.index(head)
        rivals = [have.index(r) for r in PLANNED_RIVALS[fam] if r in have and r != head]
        planned = wilcoxon_holm(table, [(h, j) for j in rivals])
        out["planned"] = {have[j]: planned[(h, j)] for j in rivals}
        allp = wilcoxon_holm(table)
        out["all_pairs"] = {have[j]: allp[(min(h, j), max(h, j))]
                            for j in range(len(have)) if j != h}
        out["diff_mean"] = {have[j]: float(np.mean(table[:, h] - table[:, j]))
                            for j in range(len(have)) if j != h}
        out["partial"] = _partial_pairs(rows, head, missing, k)
    return out


def _partial_pairs(rows: list[dict], head: str, others: Sequence[str], k: int
                   ) -> dict[str, tuple[int, float, float]]:
    """``{selector: (sets, mean accuracy difference, Wilcoxon p)}`` of ``head`` against each
    of ``others`` on the datasets with more than ``k`` features where both have results (a
    selector left out on some sets, e.g. stopped by the time limit, is compared where it ran;
    the p-value is uncorrected, outside the Holm families). Fewer than 2 common sets: left
    out."""
    from _stats import wilcoxon_p

    acc = _group(rows, ("dataset", "k", "selector"), "accuracy")
    out = {}
    for other in others:
        common = _ordered([r["dataset"] for r in rows if r["k"] == k and r["n_features"] > k
                           and (r["dataset"], k, head) in acc
                           and (r["dataset"], k, other) in acc])
        if len(common) < 2:
            continue
        a = np.array([np.mean(acc[(d, k, head)]) for d in common])
        b = np.array([np.mean(acc[(d, k, other)]) for d in common])
        out[other] = (len(common), float(np.mean(a - b)), wilcoxon_p(a, b))
    return out


def _sig_sentence(st: dict) -> str:
    first, second = st["first"], st["second"]
    gap = st["ranks"][second] - st["ranks"][first]
    nem = "significant" if gap >= st["cd"] else "not significant"
    text = (f"`{first}` ranks first ({st['ranks'][first]:.2f}); its lead over `{second}` "
            f"({st['ranks'][second]:.2f}) is {gap:.2f} rank places against a Nemenyi CD of "
            f"{st['cd']:.2f}: {nem} (Friedman p = {st['friedman'][1]:.2g})")
    if st["headline"] and st["headline"] == first and "all_pairs" in st:
        q = st["all_pairs"][second][1]
        text += (f"; Wilcoxon vs `{second}`, Holm over all pairs: p = {q:.2g} "
                 f"({'significant' if q < st['alpha'] else 'not significant'})")
    return text + "."


def format_family_tables(rows: list[dict], alpha: float = 0.05) -> str:
    """Per family (supervised, unsupervised; random in both): the average ranks per k
    with the Friedman p, the Nemenyi CD and the number of sets, the headline's Wilcoxon-Holm
    tests, one sentence per k saying who ranks first and whether that is significant, and a
    text critical-difference diagram per k (:func:`_stats.cd_text`)."""
    from _stats import cd_text

    parts = []
    ks = sorted({r["k"] for r in rows})
    for fam in ("supervised", "unsupervised"):
        stats = {k: st for k in ks if (st := family_stats(rows, fam, k, alpha)) is not None}
        if not stats:
            continue
        sels = _ordered([s for st in stats.values() for s in st["selectors"]])
        table = [[s, *[f"{stats[k]['ranks'][s]:.2f}" if s in stats[k]["ranks"] else "—"
                       for k in stats]] for s in sels]
        table.sort(key=lambda r: np.mean([float(c) for c in r[1:] if c != "—"] or [math.inf]))
        table.append(["*Friedman p*", *[f"{stats[k]['friedman'][1]:.2g}" for k in stats]])
        table.append([f"*Nemenyi CD ({alpha})*", *[f"{stats[k]['cd']:.2f}" for k in stats]])
        header = ["selector", *[f"k={k} ({len(stats[k]['datasets'])} sets)" for k in stats]]
        text = [f"### {fam.capitalize()} family: average rank (1 = best; sets with more "
                f"than k features)\n\n" + markdown_table(header, table)]
        heads = {stats[k]["headline"] for k in stats} - {None}
        for head in sorted(heads):
            trows = []
            for rival in _ordered([r for k in stats for r in stats[k].get("all_pairs", {})
                                   if stats[k]["headline"] == head]):
                cells = []
                for k in stats:
                    st = stats[k]
                    if st["headline"] != head or rival not in st.get("all_pairs", {}):
                        cells.append("—")
                        continue
                    p_all = st["all_pairs"][rival][1]
                    cell = f"{100 * st['diff_mean'][rival]:+.2f} / {p_all:.2g}"
                    if rival in st["planned"]:
                        cell += f" / {st['planned'][rival][1]:.2g}"
                    cells.append(cell)
                trows.append([rival, *cells])
            text.append(f"`{head}` against each selector: mean accuracy difference (points) / "
                        "Wilcoxon p, Holm over all pairs of the family / (planned rivals "
                        f"{', '.join(PLANNED_RIVALS[fam])}) Holm over those pairs\n\n"
                        + markdown_table(["rival", *[f"k={k}" for k in stats]], trows))
        missing = _ordered([s for k in stats for s in stats[k]["missing"]])
        if missing:
            text.append("Not in the table (no results on every set with more than k "
                        f"features): {', '.join(f'`{m}`' for m in missing)}; see the "
                        "per-dataset tables for where they ran.")
            prow = []
            for m in missing:
                cells = []
                for k, st in stats.items():
                    n, diff, pv = st.get("partial", {}).get(m, (0, math.nan, math.nan))
                    cells.append(f"{100 * diff:+.2f} / {pv:.2g} ({n} sets)" if n else "—")
                prow.append([m, *cells])
            if any(c != "—" for r in prow for c in r[1:]):
                text.append("The headline against them on the sets where both ran: mean "
                            "accuracy difference (points) / Wilcoxon p, uncorrected (sets)\n\n"
                            + markdown_table(["selector", *[f"k={k}" for k in stats]], prow))
        text.append("\n".join(f"- k={k}: {_sig_sentence(st)}" for k, st in stats.items()))
        for k, st in stats.items():
            text.append(f"Critical-difference diagram, {fam}, k={k}:\n\n```text\n"
                        + cd_text(st["selectors"], st["table"], alpha=alpha) + "\n```")
        parts.append("\n\n".join(text))
    return "\n\n".join(parts)


def cd_plots(rows: list[dict], out: str | Path, alpha: float = 0.05) -> list[Path]:
    """A critical-difference diagram per family and k: ``cd_<family>_k<k>.png``."""
    from _stats import cd_diagram

    paths = []
    for fam in ("supervised", "unsupervised"):
        for k in sorted({r["k"] for r in rows}):
            st = family_stats(rows, fam, k, alpha)
            if st is not None:
                paths.append(cd_diagram(st["selectors"], st["table"],
                                        Path(out) / f"cd_{fam}_k{k}.png",
                                        title=f"{fam}, k={k}", alpha=alpha))
    return paths


def format_tables(rows: list[dict]) -> str:
    """Markdown tables: accuracy (%) per dataset (selector x k, best per k in bold), the
    average rank per k, and precision@k on the planted sets."""
    if not rows:
        return "(no results)"
    acc = _group(rows, ("dataset", "selector", "k"), "accuracy")
    fit = _group(rows, ("dataset", "selector"), "fit_s")
    sels = _ordered([r["selector"] for r in rows])
    parts = []
    for dname in _ordered([r["dataset"] for r in rows]):
        drows = [r for r in rows if r["dataset"] == dname]
        ks = sorted({r["k"] for r in drows})
        keff = {r["k"]: r["k_eff"] for r in drows}
        n_seeds = len({r["seed"] for r in drows})
        n_folds = len({r["fold"] for r in drows})
        best = {k: max((np.mean(acc[(dname, s, k)]) for s in sels if (dname, s, k) in acc),
                       default=None) for k in ks}
        table = []
        for s in sels:
            if not any((dname, s, k) in acc for k in ks):
                continue
            cells = []
            for k in ks:
                v = acc.get((dname, s, k))
                cell = mean_std(v, 100) if v else "—"
                cells.append(f"**{cell}**" if v and np.isclose(np.mean(v), best[k]) else cell)
            table.append([s, *cells, f"{np.mean(fit[(dname, s)]):.2f}"])
        header = ["selector", *[f"k={k}" if keff[k] == k else f"k={k}→{keff[k]}" for k in ks],
                  "fit s"]
        d = drows[0]["n_features"]
        parts.append(f"### {dname} (d={d}; accuracy % over {n_folds} folds x {n_seeds} seeds)\n\n"
                     + markdown_table(header, table))
    ranks = average_ranks(rows)
    if ranks:
        ks = sorted(ranks)
        table = [[s, *[f"{ranks[k][s]:.2f}" if s in ranks[k] else "—" for k in ks]] for s in sels]
        table.sort(key=lambda r: float(r[1]) if r[1] != "—" else math.inf)
        header = ["selector", *[f"k={k} ({ranks[k]['_n']} sets)" for k in ks]]
        parts.append("### Average rank across datasets (1 = best; sets with more than k features)"
                     "\n\n" + markdown_table(header, table))
    fam_text = format_family_tables(rows)
    if fam_text:
        parts.append(fam_text)
    prec = _group(rows, ("dataset", "selector", "k"), "precision")
    if prec:
        for dname in _ordered([key[0] for key in prec]):
            ks = sorted({key[2] for key in prec if key[0] == dname})
            table = [[s, *[mean_std(prec[(dname, s, k)], 100) if (dname, s, k) in prec else "—"
                           for k in ks]] for s in sels if (dname, s, ks[0]) in prec]
            parts.append(f"### {dname}: precision@k of the planted features "
                         "(% of min(k, #informative) found)\n\n"
                         + markdown_table(["selector", *[f"k={k}" for k in ks]], table))
    return "\n\n".join(parts)


def _hop_value(h: str) -> float:
    return math.inf if h == "inf" else float(h)


def plot(rows: list[dict], out: str | Path) -> list[Path]:
    """Write ``feature_ranking_k.png`` (accuracy vs k per selector, one panel per dataset) and
    ``feature_ranking_hops.png`` (Inf-FS accuracy vs hops, mean over datasets, one line per k)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    acc = _group(rows, ("dataset", "selector", "k"), "accuracy")
    dsets = _ordered([r["dataset"] for r in rows])
    sels = _ordered([r["selector"] for r in rows])
    paths = []
    cols = min(4, len(dsets))
    nrows = math.ceil(len(dsets) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3 * nrows), squeeze=False)
    for ax, dname in zip(axes.flat, dsets):
        for s in sels:
            pts = sorted({(r["k_eff"], r["k"]) for r in rows if r["dataset"] == dname})
            xs = [ke for ke, k in pts if (dname, s, k) in acc]
            ys = [100 * np.mean(acc[(dname, s, k)]) for ke, k in pts if (dname, s, k) in acc]
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, lw=1, label=s,
                        ls="-" if s.startswith("inffs") else "--")
        ax.set_title(dname, fontsize=9)
        ax.set_xlabel("k")
        ax.set_ylabel("accuracy %")
    for ax in list(axes.flat)[len(dsets):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=7)
    fig.tight_layout(rect=(0, 0.04 + 0.015 * math.ceil(len(labels) / 6), 1, 1))
    paths.append(out / "feature_ranking_k.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fams: dict[str, dict[str, str]] = {}
    for s in sels:
        m = _INFFS_RE.match(s)
        if m:
            fams.setdefault(f"Inf-FS{m['sup'] or ''}{m['knn'] or ''}", {})[m["hops"]] = s
    fams = {f: h for f, h in fams.items() if len(h) > 1}
    if fams:
        fig, axes = plt.subplots(1, len(fams), figsize=(4.5 * len(fams), 3.5), squeeze=False)
        ks = sorted({r["k"] for r in rows})
        for ax, (fam, hops) in zip(axes.flat, fams.items()):
            hs = sorted(hops, key=_hop_value)
            xs = list(range(len(hs)))
            for k in ks:
                ys = [np.mean([np.mean(acc[(d, hops[h], k)]) for d in dsets
                               if (d, hops[h], k) in acc]) * 100 for h in hs]
                ax.plot(xs, ys, marker="o", label=f"k={k}")
            ax.set_xticks(xs, ["∞" if h == "inf" else h for h in hs])
            ax.set_xlabel("hops")
            ax.set_ylabel("accuracy % (mean over datasets)")
            ax.set_title(fam)
            ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / "feature_ranking_hops.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


# ---- why the hops change (little) ------------------------------------------------------

def _top_eigs(apply, n: int, dense: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The two eigenvalues of largest magnitude of a symmetric matrix (largest first) and the
    Perron vector: dense ``eigh`` up to n = 2000, else ARPACK from the all-ones vector."""
    if n <= 2000:
        lam, vec = np.linalg.eigh(dense())
        idx = np.argsort(-np.abs(lam))[:2]
        return lam[idx], vec[:, idx[0]]
    from scipy.sparse.linalg import LinearOperator, eigsh
    op = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    lam, vec = eigsh(op, k=2, which="LM", v0=np.ones(n), tol=1e-8)
    idx = np.argsort(-np.abs(lam))
    return lam[idx], vec[:, idx[0]]


def _agreement(a: np.ndarray, b: np.ndarray, ks: Sequence[int]) -> tuple[float, list[float]]:
    """Kendall's tau of two score vectors and the overlap |top-k(a) ∩ top-k(b)| / k."""
    from scipy.stats import kendalltau
    oa, ob = _order(a), _order(b)
    over = [len(np.intersect1d(oa[:k], ob[:k])) / k if k < a.size else math.nan for k in ks]
    return float(kendalltau(a, b).statistic), over


def diagnose(datasets: Sequence[str], *, root: str | None = None, knn: int = 10,
             std_weight: float = 0.5, r_frac: float = 0.9, ks: Sequence[int] = (10, 50),
             progress: bool = True) -> list[dict]:
    r"""Why Inf-FS ranks alike at 1, 2, ... and infinitely many hops, per dataset (all samples).

    For a symmetric affinity :math:`A = \sum_i \lambda_i v_i v_i^\top` (:math:`\lambda_1` the
    Perron root) and :math:`\mathbf{1} = \sum_i c_i v_i`, the K-hop score is

    .. math::
        \mathbf{s}_K = \sum_{k=1}^{K} \Big(\frac{r_{\text{frac}}}{\lambda_1}\Big)^k A^k \mathbf{1}
        = \sum_i c_i v_i \sum_{k=1}^{K} \Big(\frac{r_{\text{frac}} \lambda_i}{\lambda_1}\Big)^k ,

    so each hop shrinks the non-Perron parts by :math:`\lambda_i / \lambda_1` against the
    Perron part. When :math:`|\lambda_2| / \lambda_1` is small and :math:`\mathbf{1}` is
    nearly :math:`v_1` (an affinity close to a constant matrix), the degree
    :math:`A\mathbf{1}` (one hop) already ranks like :math:`v_1` (infinitely many): more hops
    cannot change the ranking but for near ties.

    Row keys: ``dataset, m, n``; for the dense ``paper`` graph ``gap`` (:math:`|\lambda_2| /
    \lambda_1`), ``cos1`` (cosine of :math:`\mathbf{1}` and :math:`v_1`), ``tau`` (Kendall's
    tau of the 1-hop and infinite-hop scores), ``top{k}`` (their top-k overlap), ``rho_std``
    (Spearman correlation of the infinite-hop score with the features' standard deviation:
    how much the variance term decides); the same ``knn_gap``, ``knn_tau``, ``knn_top{k}``
    for the ``knn``-sparsified graph, and ``sup_tau`` for the supervised u2020 graph.
    """
    from scipy.stats import spearmanr

    from affgraph.inffs import feature_affinity, inffs_scores

    out = []
    for dname in tqdm(expand_datasets(datasets), disable=not progress, desc="diagnose"):
        X, y, _ = load_dataset(dname, root)
        m, n = X.shape
        row: dict = dict(dataset=dname, m=m, n=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            A = feature_affinity(X, std_weight=std_weight)
            if 8 * n * n <= 2 ** 30:
                A.dense()
            def apply(v: np.ndarray) -> np.ndarray:
                return A.matvec(torch.as_tensor(v, dtype=torch.float64)).numpy()
            lam, v1 = _top_eigs(apply, n, lambda: A.dense().numpy())
            row["gap"] = abs(lam[1]) / lam[0]
            row["cos1"] = abs(v1.sum()) / math.sqrt(n)
            h1, hinf = inffs_scores(X, std_weight=std_weight, r_frac=r_frac,
                                     hops=[1, math.inf]).numpy()
            row["tau"], over = _agreement(h1, hinf, ks)
            row.update({f"top{k}": o for k, o in zip(ks, over)})
            row["rho_std"] = float(spearmanr(hinf, X.std(0, ddof=1)).statistic)
            ei, w = A.knn_graph(knn)
            from scipy.sparse import coo_matrix
            K = coo_matrix((w.numpy(), (ei[1].numpy(), ei[0].numpy())), shape=(n, n)).tocsr()
            lam, _ = _top_eigs(lambda v: K @ v, n, lambda: K.toarray())
            row["knn_gap"] = abs(lam[1]) / lam[0]
            k1, kinf = inffs_scores(X, std_weight=std_weight, r_frac=r_frac, hops=[1, math.inf],
                                    knn=knn).numpy()
            row["knn_tau"], over = _agreement(k1, kinf, ks)
            row.update({f"knn_top{k}": o for k, o in zip(ks, over)})
            s1, sinf = inffs_scores(X, y, variant="u2020", hops=[1, math.inf]).numpy()
            row["sup_tau"] = _agreement(s1, sinf, ks)[0]
        out.append(row)
    return out


def format_diagnosis(rows: list[dict]) -> str:
    """The rows of :func:`diagnose` as a Markdown table."""
    if not rows:
        return "(no datasets)"
    ks = [int(k[3:]) for k in rows[0] if re.fullmatch(r"top\d+", k)]
    f = lambda v, pct=False: "—" if v is None or (isinstance(v, float) and math.isnan(v)) \
        else (f"{100 * v:.0f}%" if pct else f"{v:.3f}")  # noqa: E731
    header = ["dataset", "m", "n", "λ2/λ1", "cos(1,v1)", "τ h1:h∞",
              *[f"top{k} h1:h∞" for k in ks], "ρ(score,std)", "kNN λ2/λ1", "kNN τ",
              *[f"kNN top{k}" for k in ks], "sup τ"]
    table = [[r["dataset"], r["m"], r["n"], f(r["gap"]), f(r["cos1"]), f(r["tau"]),
              *[f(r[f"top{k}"], True) for k in ks], f(r["rho_std"]), f(r["knn_gap"]),
              f(r["knn_tau"]), *[f(r[f"knn_top{k}"], True) for k in ks], f(r["sup_tau"])]
             for r in rows]
    return ("### Inf-FS: one hop against infinitely many (all samples; τ = Kendall's tau of "
            "the scores, topk = overlap of the top-k sets)\n\n" + markdown_table(header, table))


# ---- command line ------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--datasets", nargs="+", default=["all"],
                   help="names, or the groups featsel, embedded, all (the 22 .mat sets, "
                        "breast_cancer, digits, wine and planted); also planted-small")
    p.add_argument("--selectors", nargs="+", default=["all"],
                   help="names, or the groups supervised, unsupervised, all (both families), "
                        "baselines, inffs, rel (default: all)")
    p.add_argument("--k", nargs="+", type=int, default=list(KS), dest="ks",
                   help="numbers of selected features (default: 10 50 100 150 200)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1],
                   help="one number n (seeds 0..n-1) or a list of seeds (default: 1)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--knn", type=int, default=10, help="neighbours of the -knn Inf-FS variants")
    p.add_argument("--data-root", default=None,
                   help="folder with featsel/ (default: $AFFGRAPH_DATA, then the per-user "
                        "data folder)")
    p.add_argument("--quick", action="store_true",
                   help="tiny smoke run: breast_cancer, wine, planted-small; k 5 10 20; 3 folds")
    add_output_args(p, row="fold and k", plot="plots", threads=None, device=False)
    p.add_argument("--workers", type=int, default=1,
                   help="processes running (dataset, seed, fold) jobs in parallel, one thread each "
                        "(default: 1, in this process)")
    p.add_argument("--resume", action="store_true",
                   help="continue the cut run saved in --json: the (dataset, seed, fold) jobs "
                        "it finished are not run again")
    p.add_argument("--time-limit", type=float, default=None, metavar="S",
                   help="stop a rival's fit that runs past S seconds on a fold and leave "
                        "that selector out on that dataset, with the reason in the tables "
                        "(default: no limit)")
    p.add_argument("--diagnose", action="store_true",
                   help="print, per dataset (all samples), why Inf-FS hops change little: the "
                        "spectral gap of the dense and kNN feature graphs and the agreement of "
                        "the 1-hop and infinite-hop rankings; run nothing else")
    return p


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workers < 1:
        raise SystemExit(f"error: --workers must be >= 1, got {args.workers}")
    if args.load:
        rows, errors = split_errors(load_rows(args.load))
        rows = dedupe_rows(rows)
        print(format_tables(rows))
        print(format_errors(errors))
        if not args.no_plot and rows:
            for path in plot(rows, args.out) + cd_plots(rows, args.out):
                print(f"plot: {path}")
        return rows
    if args.quick:
        if args.datasets == ["all"]:
            args.datasets = ["breast_cancer", "wine", "planted-small"]
        if args.ks == list(KS):
            args.ks = [5, 10, 20]
        args.folds = 3
    seeds = args.seeds[0] if len(args.seeds) == 1 else args.seeds
    try:
        datasets = expand_datasets(args.datasets)
        selectors = expand_selectors(args.selectors)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None

    def checkpoint(rows: list[dict]) -> None:
        write_rows(rows, json_path=args.json)

    done_rows = resume_rows(args.json) if args.resume else []

    if args.diagnose:
        print(format_diagnosis(diagnose(datasets, root=args.data_root, knn=args.knn,
                                        progress=not args.no_progress)))
        return []
    rows = run(datasets, selectors, ks=args.ks, seeds=seeds, n_folds=args.folds,
               root=args.data_root, knn=args.knn, progress=not args.no_progress,
               workers=args.workers, on_job_done=checkpoint if args.json else None,
               limit_s=args.time_limit, done_rows=done_rows)
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    rows, errors = split_errors(rows)
    print(format_tables(rows))
    print(format_errors(errors))
    if not args.no_plot and rows:
        for path in plot(rows, args.out) + cd_plots(rows, args.out):
            print(f"plot: {path}")
    return rows


if __name__ == "__main__":
    main()
