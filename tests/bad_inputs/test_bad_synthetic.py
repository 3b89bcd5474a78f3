"""Bad inputs of the synthetic data generators (make_csbm, make_planted_features,
make_match3); references: edge homophily counted directly, column moments in float64, the
Match3 labels by brute force over all pairs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _catalogue import Equals, Raises, case, check
from affgraph.datasets import make_csbm, make_match3, make_planted_features


def _homophily(data):
    src, dst = data.edge_index
    return float((data.y[src] == data.y[dst]).double().mean())


def _brute_match3(tokens, modulus):
    t = tokens.numpy()
    out = np.zeros_like(t)
    for s in range(t.shape[0]):
        x = t[s]
        pair = (x[:, None] + x[None, :]) % modulus
        sums = set(pair.ravel().tolist())
        out[s] = [int((-v) % modulus in sums) for v in x]
    return out


def _cases():
    out = []
    for h in (0.0, 1.0):
        out.append(case("datasets.make_csbm", f"homophily-{h:g}",
                        lambda h=h: _homophily(make_csbm(40, h, num_features=4)),
                        Equals(lambda h=h: h)))
    out.append(case("datasets.make_csbm", "no-self-loops-symmetric",
                    lambda: (lambda ei: torch.stack([(ei[0] == ei[1]).sum(),
                                                     (ei.flip(0)[:, None] != ei[:, :, None])
                                                     .any(0).all(0).sum()]))(
                        make_csbm(30, 0.5, num_features=4).edge_index),
                    Equals(lambda: torch.zeros(2))))
    out.append(case("datasets.make_csbm", "smallest", lambda: make_csbm(4, 0.5, num_features=2,
                                                                        avg_degree=3.0).x.shape,
                    Equals(lambda: (4, 2))))
    csbm_errors = {
        "n-small": ((3, 0.5), {}, "n"),
        "n-float": ((10.0, 0.5), {}, "n"),
        "homophily-above": ((10, 1.5), {}, "homophily"),
        "homophily-nan": ((10, math.nan), {}, "homophily"),
        "num_classes-one": ((10, 0.5), {"num_classes": 1}, "num_classes"),
        "num_features-small": ((10, 0.5), {"num_classes": 3, "num_features": 2},
                               "num_features"),
        "avg_degree-zero": ((10, 0.5), {"avg_degree": 0.0}, "avg_degree"),
        "avg_degree-inf": ((10, 0.5), {"avg_degree": math.inf}, "avg_degree"),
        "feature_snr-negative": ((10, 0.5), {"feature_snr": -1.0}, "feature_snr"),
        "train_ratio-zero": ((10, 0.5), {"train_ratio": 0.0}, "train_ratio"),
        "ratios-sum": ((10, 0.5), {"train_ratio": 0.7, "val_ratio": 0.3}, "train_ratio"),
        "seed-negative": ((10, 0.5), {"seed": -1}, "seed"),
        "seed-bool": ((10, 0.5), {"seed": True}, "seed"),
    }
    for label, (args, kw, name) in csbm_errors.items():
        out.append(case("datasets.make_csbm", label,
                        lambda args=args, kw=kw: make_csbm(*args, **kw), Raises(name)))
    X, y, idx = make_planted_features(30, 8, 3, n_redundant=2, n_classes=3)
    out += [
        case("datasets.make_planted_features", "standardised-columns",
             lambda: np.stack([X.mean(0), X.std(0)]),
             Equals(lambda: np.stack([np.zeros(8), np.ones(8)]), torch.float64, (1e-9, 1e-12))),
        case("datasets.make_planted_features", "labels-and-indices",
             lambda: (np.bincount(y, minlength=3), idx.shape),
             Equals(lambda: (np.full(3, 10), (3,)))),
        case("datasets.make_planted_features", "zero-separation",
             lambda: np.isfinite(make_planted_features(8, 3, 1, class_sep=0.0)[0]).all(),
             Equals(lambda: True)),
    ]
    planted_errors = {
        "too-many-informative": ((10, 5, 6), {}, "n_informative"),
        "redundant": ((10, 5, 3), {"n_redundant": 3}, "n_informative"),
        "n_samples-small": ((3, 5, 2), {}, "n_samples"),
        "n_features-zero": ((10, 0, 1), {}, "n_features"),
        "n_informative-zero": ((10, 5, 0), {}, "n_informative"),
        "n_classes-one": ((10, 5, 2), {"n_classes": 1}, "n_classes"),
        "class_sep-nan": ((10, 5, 2), {"class_sep": math.nan}, "class_sep"),
        "flip_y-above": ((10, 5, 2), {"flip_y": 1.5}, "flip_y"),
        "n_samples-str": (("10", 5, 2), {}, "n_samples"),
    }
    for label, (args, kw, name) in planted_errors.items():
        out.append(case("datasets.make_planted_features", label,
                        lambda args=args, kw=kw: make_planted_features(*args, **kw),
                        Raises(name)))
    for label, args in (("small", (4, 6, 7)), ("single-position", (3, 1, 5)),
                        ("long", (2, 12, 11))):
        tokens, labels = make_match3(*args, seed=1)
        out.append(case("datasets.make_match3", label, lambda labels=labels: labels,
                        Equals(lambda tokens=tokens, m=args[2]: _brute_match3(tokens, m))))
    match3_errors = {
        "n_samples-zero": ((0, 4, 5), {}, "n_samples"),
        "seq_len-zero": ((2, 0, 5), {}, "seq_len"),
        "modulus-one": ((2, 4, 1), {}, "modulus"),
        "modulus-float": ((2, 4, 5.0), {}, "modulus"),
        "positive_fraction-above": ((2, 4, 5), {"positive_fraction": 2.0}, "positive_fraction"),
        "positive_fraction-nan": ((2, 4, 5), {"positive_fraction": math.nan},
                                  "positive_fraction"),
        "min_share-negative": ((2, 4, 5), {"min_share": -0.1}, "min_share"),
    }
    for label, (args, kw, name) in match3_errors.items():
        out.append(case("datasets.make_match3", label,
                        lambda args=args, kw=kw: make_match3(*args, **kw), Raises(name)))
    out.append(case("datasets.make_match3", "seed-float",
                    lambda: make_match3(2, 4, 5, seed=1.5), Raises("seed")))
    return out


CASES = _cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_synthetic(c):
    check(c)
