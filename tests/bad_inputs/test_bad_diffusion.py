"""Bad inputs of affgraph.functional.diffuse, spectral_radius and spectral_radius_dense."""
from __future__ import annotations

import math

import pytest
import torch

import _oracles as ref
from _catalogue import Equals, Raises, case, check, randn
from affgraph.functional import diffuse, spectral_radius, spectral_radius_dense

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
N = 6
# duplicate edge 1 -> 2, self-loop 3 -> 3, node 5 isolated (no edges at all)
EDGES = torch.tensor([[0, 1, 1, 2, 3, 4, 0], [1, 2, 2, 3, 3, 0, 4]])
WEIGHTS = torch.tensor([0.5, 1.0, 0.25, 2.0, 0.7, 1.5, 0.3], dtype=torch.float64)
SYM = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])  # a path, symmetric
SOLVE = (1e-5, 1e-6)  # closed forms solve to the relative residual tol = 1e-6


def _rho(ei, w, n=N):
    return ref.spectral_radius(ref.dense_adjacency(ei, w, n))


def _series_cases():
    out = []
    x = randn(N, 3, seed=1)
    a = ref.dense_adjacency(EDGES, WEIGHTS, N)
    r = 0.5 / _rho(EDGES, WEIGHTS)
    finite = {
        "katz3": ({"hops": 3, "coeffs": "katz", "r": r}, lambda: ref.diffuse_series(
            a, x, ref.theta("katz", 3, r=r)), None),
        "ppr4": ({"hops": 4, "coeffs": "ppr"}, lambda: ref.diffuse_series(
            a, x, ref.theta("ppr", 4)), None),
        "heat5": ({"hops": 5, "coeffs": "heat", "t": 0.5}, lambda: ref.diffuse_series(
            a, x, ref.theta("heat", 5, t=0.5)), None),
        "power2": ({"hops": 2, "coeffs": "power"}, lambda: a @ a @ x, None),
        "hops0": ({"hops": 0, "coeffs": "ppr"}, lambda: x, None),
        "katz-inf": ({"hops": math.inf, "coeffs": "katz", "r": r}, lambda: ref.closed_form(
            a, x, "katz", r=r), SOLVE),
        "katz-inf-default-r": ({"hops": math.inf, "coeffs": "katz"}, lambda: ref.closed_form(
            a, x, "katz", r=0.9 / _rho(EDGES, WEIGHTS)), (1e-4, 1e-5)),
        "ppr-inf": ({"hops": math.inf, "coeffs": "ppr", "alpha": 0.3,
                     "normalize": "row"}, lambda: ref.closed_form(
            _row(a), x, "ppr", alpha=0.3), SOLVE),
        "heat-inf": ({"hops": math.inf, "coeffs": "heat", "t": 2.0, "normalize": "row"},
                     lambda: ref.closed_form(_row(a), x, "heat", t=2.0), SOLVE),
        "heat-inf-large-t": ({"hops": math.inf, "coeffs": "heat", "t": 150.0,
                              "normalize": "row"},
                             lambda: ref.closed_form(_row(a), x, "heat", t=150.0), SOLVE),
    }
    for label, (kw, reference, tol) in finite.items():
        out.append(case("functional.diffuse", label,
                        lambda kw=kw: diffuse(x, EDGES, WEIGHTS, **kw),
                        Equals(reference, torch.float64, tol)))
    a_sym = ref.dense_adjacency(SYM, None, N)
    out.append(case("functional.diffuse", "sym-ppr-inf-isolated",
                    lambda: diffuse(x, SYM, hops=math.inf, coeffs="ppr", normalize="sym"),
                    Equals(lambda: ref.closed_form(ref.sym_normalise(a_sym), x, "ppr"),
                           torch.float64, SOLVE)))
    out.append(case("functional.diffuse", "no-edges-ppr-inf",
                    lambda: diffuse(x, torch.zeros(2, 0, dtype=torch.long), hops=math.inf,
                                    coeffs="ppr", normalize="sym"),
                    Equals(lambda: 0.1 * x)))
    out.append(case("functional.diffuse", "empty",
                    lambda: diffuse(x[:0], torch.zeros(2, 0, dtype=torch.long), hops=3,
                                    coeffs="ppr"),
                    Equals(lambda: torch.zeros(0, 3))))
    out.append(case("functional.diffuse", "single-self-loop",
                    lambda: diffuse(x[:1], torch.zeros(2, 1, dtype=torch.long),
                                    torch.tensor([0.5], dtype=torch.float64), hops=math.inf,
                                    coeffs="katz", r=1.0),
                    Equals(lambda: x[:1] * (1 / (1 - 0.5) - 1), torch.float64, SOLVE)))
    for dt in (torch.uint8, torch.int8, torch.int16, torch.int32):
        out.append(case("functional.diffuse", f"edge_index-{str(dt).split('.')[1]}",
                        lambda dt=dt: diffuse(x, EDGES.to(dt), WEIGHTS, hops=3, coeffs="ppr"),
                        Equals(lambda: ref.diffuse_series(a, x, ref.theta("ppr", 3)))))
    for dtype in FLOATS:
        dn = str(dtype).split(".")[1]
        xd = randn(N, 3, dtype=dtype, seed=2)
        wd = WEIGHTS.to(dtype)
        ad = ref.dense_adjacency(EDGES, wd, N)
        out.append(case("functional.diffuse", f"ppr3-{dn}",
                        lambda xd=xd, wd=wd: diffuse(xd, EDGES, wd, hops=3, coeffs="ppr"),
                        Equals(lambda xd=xd, ad=ad: ref.diffuse_series(
                            ad, xd, ref.theta("ppr", 3)), dtype)))
        out.append(case("functional.diffuse", f"ppr-inf-row-{dn}",
                        lambda xd=xd, wd=wd: diffuse(xd, EDGES, wd, hops=math.inf,
                                                     coeffs="ppr", normalize="row"),
                        Equals(lambda xd=xd, ad=ad: ref.closed_form(_row(ad), xd, "ppr"),
                               dtype, SOLVE if dtype == torch.float64 else None)))
        tiny = torch.finfo(dtype).tiny
        xt = (xd.double() * tiny).to(dtype)
        out.append(case("functional.diffuse", f"tiny-x-{dn}",
                        lambda xt=xt, wd=wd: diffuse(xt, EDGES, wd, hops=2, coeffs="ppr"),
                        Equals(lambda xt=xt, ad=ad: ref.diffuse_series(
                            ad, xt, ref.theta("ppr", 2)) / tiny * tiny, dtype,
                            (5e-2, tiny * 4))))
        huge = torch.finfo(dtype).max / 16
        wh = torch.full((EDGES.size(1),), huge, dtype=dtype)
        out.append(case("functional.diffuse", f"huge-weights-row-{dn}",
                        lambda xd=xd, wh=wh: diffuse(xd, EDGES, wh, hops=2, coeffs="power",
                                                     normalize="row"),
                        Equals(lambda xd=xd: (lambda m: m @ m @ xd.double())(
                            _row(ref.dense_adjacency(EDGES, None, N))), dtype)))
        bad = xd.clone()
        bad[1, 1] = math.nan
        out.append(case("functional.diffuse", f"nan-x-{dn}",
                        lambda bad=bad: diffuse(bad, EDGES, hops=2, coeffs="ppr"), Raises("x")))
        wi = wd.clone()
        wi[0] = math.inf
        out.append(case("functional.diffuse", f"inf-edge_weight-{dn}",
                        lambda xd=xd, wi=wi: diffuse(xd, EDGES, wi, hops=2, coeffs="ppr"),
                        Raises("edge_weight")))
    # r at 1/rho(A) on a cycle (rho = 1 exactly): the series diverges
    cycle = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    xc = randn(4, 2, seed=4)
    for dtype in (torch.float32, torch.float64):
        out.append(case("functional.diffuse", f"katz-at-1-over-rho-{str(dtype)[6:]}",
                        lambda dtype=dtype: diffuse(xc.to(dtype), cycle,
                                                    torch.ones(4, dtype=dtype),
                                                    hops=math.inf, coeffs="katz", r=1.0),
                        Raises("r")))
    return out


def _row(a):
    s = a.sum(1, keepdim=True)
    return torch.where(s > 0, a / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(a))


def _error_cases():
    x = randn(N, 3, seed=1)
    errors = {
        "x-int": (lambda: diffuse(x.long(), EDGES, hops=2), "x"),
        "x-0d": (lambda: diffuse(x[0, 0], EDGES, hops=2), "x"),
        "x-list": (lambda: diffuse(x.tolist(), EDGES, hops=2), "x"),
        "x-rows": (lambda: diffuse(x[:4], EDGES, hops=2), "edge_index"),
        "edge_index-float": (lambda: diffuse(x, EDGES.double(), hops=2), "edge_index"),
        "edge_index-bool": (lambda: diffuse(x, EDGES > 0, hops=2), "edge_index"),
        "edge_index-1d": (lambda: diffuse(x, EDGES[0], hops=2), "edge_index"),
        "edge_index-list": (lambda: diffuse(x, EDGES.tolist(), hops=2), "edge_index"),
        "edge_index-none": (lambda: diffuse(x, None, hops=2), "edge_index"),
        "edge_index-negative": (lambda: diffuse(x, torch.tensor([[-1], [0]]), hops=2),
                                "edge_index"),
        "edge_index-range": (lambda: diffuse(x, torch.tensor([[0], [N]]), hops=2),
                             "edge_index"),
        "edge_index-int8-negative": (lambda: diffuse(x, torch.tensor(
            [[0], [-1]], dtype=torch.int8), hops=2), "edge_index"),
        "adj-size": (lambda: diffuse(x, torch.sparse_coo_tensor(
            EDGES.flip(0), WEIGHTS, (N + 1, N + 1)), hops=2), "edge_index"),
        "adj-and-weight": (lambda: diffuse(x, torch.sparse_coo_tensor(
            EDGES.flip(0), WEIGHTS, (N, N)), WEIGHTS, hops=2), "edge_weight"),
        "edge_weight-length": (lambda: diffuse(x, EDGES, WEIGHTS[:3], hops=2), "edge_weight"),
        "edge_weight-2d": (lambda: diffuse(x, EDGES, WEIGHTS[:, None].repeat(1, 2), hops=2),
                           "edge_weight"),
        "edge_weight-nan": (lambda: diffuse(x, EDGES, WEIGHTS * math.nan, hops=2),
                            "edge_weight"),
        "hops-negative": (lambda: diffuse(x, EDGES, hops=-1), "hops"),
        "hops-float": (lambda: diffuse(x, EDGES, hops=1.5), "hops"),
        "hops-bool": (lambda: diffuse(x, EDGES, hops=True), "hops"),
        "hops-none": (lambda: diffuse(x, EDGES, hops=None), "hops"),
        "coeffs-unknown": (lambda: diffuse(x, EDGES, hops=2, coeffs="gpr"), "coeffs"),
        "coeffs-length": (lambda: diffuse(x, EDGES, hops=2, coeffs=torch.ones(5)), "coeffs"),
        "power-inf": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="power"), "coeffs"),
        "alpha-zero": (lambda: diffuse(x, EDGES, hops=2, coeffs="ppr", alpha=0.0), "alpha"),
        "alpha-nan": (lambda: diffuse(x, EDGES, hops=2, coeffs="ppr", alpha=math.nan),
                      "alpha"),
        "alpha-for-katz": (lambda: diffuse(x, EDGES, hops=2, coeffs="katz", alpha=0.1),
                           "alpha"),
        "r-negative": (lambda: diffuse(x, EDGES, hops=2, coeffs="katz", r=-1.0), "r"),
        "r-inf": (lambda: diffuse(x, EDGES, hops=2, coeffs="katz", r=math.inf), "r"),
        "r-above-1-over-rho": (lambda: diffuse(x, EDGES, WEIGHTS, hops=math.inf, coeffs="katz",
                                               r=1.5 / _rho(EDGES, WEIGHTS)), "r"),
        "r-for-heat": (lambda: diffuse(x, EDGES, hops=2, coeffs="heat", r=0.5), "r"),
        "t-negative": (lambda: diffuse(x, EDGES, hops=2, coeffs="heat", t=-1.0), "t"),
        "t-nan": (lambda: diffuse(x, EDGES, hops=2, coeffs="heat", t=math.nan), "t"),
        "t-for-ppr": (lambda: diffuse(x, EDGES, hops=2, coeffs="ppr", t=1.0), "t"),
        "normalize-unknown": (lambda: diffuse(x, EDGES, hops=2, normalize="l1"), "normalize"),
        "dropout-above-one": (lambda: diffuse(x, EDGES, hops=2, dropout=1.5), "dropout"),
        "dropout-inf-hops": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr",
                                             dropout=0.5), "dropout"),
        "tol-zero": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr", tol=0.0), "tol"),
        "tol-nan": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr", tol=math.nan),
                    "tol"),
        "tol-negative": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr", tol=-1.0),
                         "tol"),
        "max_iter-zero": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr", max_iter=0),
                          "max_iter"),
        "max_iter-float": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr",
                                           max_iter=1e9), "max_iter"),
        "max_iter-bool": (lambda: diffuse(x, EDGES, hops=math.inf, coeffs="ppr",
                                          max_iter=True), "max_iter"),
    }
    return [case("functional.diffuse", label, call, Raises(name))
            for label, (call, name) in errors.items()]


def _radius_cases():
    out = []
    graphs = {
        "weighted-dup-loop": (EDGES, WEIGHTS, N),
        "symmetric-path": (SYM, None, N),
        "three-nodes": (torch.tensor([[0, 1, 2], [1, 2, 0]]), None, 3),
        "single-loop": (torch.zeros(2, 1, dtype=torch.long), torch.tensor([2.5]), 1),
        "float32-weights": (EDGES, WEIGHTS.float(), N),
        "uint8-edges": (EDGES.to(torch.uint8), WEIGHTS, N),
        "tiny-weights": (EDGES, WEIGHTS * 1e-300, N),
    }
    for label, (ei, w, n) in graphs.items():
        out.append(case("functional.spectral_radius", label,
                        lambda ei=ei, w=w, n=n: spectral_radius(ei, w, n),
                        Equals(lambda ei=ei, w=w, n=n: _rho(ei, w, n), torch.float64,
                               (1e-6, 1e-300) if label == "tiny-weights" else (1e-6, 1e-9))))
    out.append(case("functional.spectral_radius", "no-edges",
                    lambda: spectral_radius(torch.zeros(2, 0, dtype=torch.long), num_nodes=4),
                    Equals(lambda: 0.0)))
    errors = {
        "num_nodes-negative": (lambda: spectral_radius(EDGES, num_nodes=-1), "num_nodes"),
        "num_nodes-float": (lambda: spectral_radius(EDGES, num_nodes=6.0), "num_nodes"),
        "num_nodes-small": (lambda: spectral_radius(EDGES, num_nodes=3), "edge_index"),
        "tol-zero": (lambda: spectral_radius(EDGES, tol=0.0), "tol"),
        "tol-nan": (lambda: spectral_radius(EDGES, tol=math.nan), "tol"),
        "edge_weight-nan": (lambda: spectral_radius(EDGES, WEIGHTS * math.nan), "edge_weight"),
        "edge_weight-length": (lambda: spectral_radius(EDGES, WEIGHTS[:2]), "edge_weight"),
        "edge_index-float": (lambda: spectral_radius(EDGES.float(), num_nodes=N), "edge_index"),
        "edge_index-negative": (lambda: spectral_radius(torch.tensor([[-1], [0]]),
                                                        num_nodes=2), "edge_index"),
    }
    out += [case("functional.spectral_radius", label, call, Raises(name))
            for label, (call, name) in errors.items()]
    dense = {
        "nonsymmetric": ref.dense_adjacency(EDGES, WEIGHTS, N),
        "symmetric": ref.dense_adjacency(SYM, None, N),
        "one-by-one": torch.tensor([[-3.0]], dtype=torch.float64),
        "zero": torch.zeros(5, 5, dtype=torch.float64),
        "float32": ref.dense_adjacency(EDGES, WEIGHTS, N).float(),
    }
    for label, a in dense.items():
        out.append(case("functional.spectral_radius_dense", label,
                        lambda a=a: spectral_radius_dense(a),
                        Equals(lambda a=a: ref.spectral_radius(a.double()), torch.float64,
                               (1e-6, 1e-9))))
    out.append(case("functional.spectral_radius_dense", "empty",
                    lambda: spectral_radius_dense(torch.zeros(0, 0)), Equals(lambda: 0.0)))
    a = ref.dense_adjacency(EDGES, WEIGHTS, N)
    bad = a.clone()
    bad[0, 0] = math.inf
    out += [
        case("functional.spectral_radius_dense", "1d", lambda: spectral_radius_dense(a[0]),
             Raises("A")),
        case("functional.spectral_radius_dense", "not-square",
             lambda: spectral_radius_dense(a[:3]), Raises("A")),
        case("functional.spectral_radius_dense", "inf", lambda: spectral_radius_dense(bad),
             Raises("A")),
        case("functional.spectral_radius_dense", "list",
             lambda: spectral_radius_dense(a.tolist()), Raises("A")),
        case("functional.spectral_radius_dense", "tol-negative",
             lambda: spectral_radius_dense(a, tol=-1.0), Raises("tol")),
    ]
    return out


CASES = _series_cases() + _error_cases() + _radius_cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_diffusion(c):
    check(c)
