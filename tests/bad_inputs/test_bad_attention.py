"""Bad inputs of affgraph.functional.attention and attention_diffusion."""
from __future__ import annotations

import math

import pytest
import torch

import _oracles as ref
from _catalogue import Equals, Raises, case, check, randn
from affgraph.functional import attention, attention_diffusion

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
N, H, D = 6, 2, 4
BATCH = torch.tensor([0, 0, 0, 1, 1, 1])
# duplicate edge 3 -> 4, self-loop 0 -> 0, node 5 without keys (a fully masked row)
EDGES = torch.tensor([[0, 1, 2, 3, 3, 0, 4], [1, 2, 3, 4, 4, 0, 2]])


def qkv(dtype=torch.float64, scale=1.0, seed=0, n=N):
    return tuple(randn(n, H, D, dtype=dtype, seed=seed + i, scale=scale) for i in range(3))


SUPPORTS = {  # name: (keyword arguments, count matrix of the support)
    "complete": ({}, ref.mask_counts(N)),
    "causal": ({"causal": True}, ref.mask_counts(N, causal=True)),
    "window1": ({"window": 1}, ref.mask_counts(N, window=1)),
    "causal_window2": ({"window": 2, "causal": True}, ref.mask_counts(N, window=2, causal=True)),
    "batch": ({"batch": BATCH}, ref.mask_counts(N, batch=BATCH)),
    "edges": ({"edge_index": EDGES}, ref.counts_from_edges(EDGES, N, N)),
}


def _equal(dtype, support, scale=1.0, seed=0):
    kw, c = SUPPORTS[support]
    q, k, v = qkv(dtype, scale, seed)
    ei = kw.get("edge_index")
    rest = {a: b for a, b in kw.items() if a != "edge_index"}
    return (lambda: attention(q, k, v, ei, **rest)), Equals(lambda: ref.attention(q, k, v, c),
                                                          dtype)


def _attention_cases():
    out = []
    for dtype in FLOATS:
        dn = str(dtype).split(".")[1]
        tiny = torch.finfo(dtype).tiny
        for support in SUPPORTS:
            out.append(case("functional.attention", f"{support}-{dn}", *_equal(dtype, support)))
        # tiny and subnormal values: logits underflow to 0, uniform weights, exact values
        out.append(case("functional.attention", f"tiny-{dn}",
                        *_equal(dtype, "complete", scale=tiny)))
        out.append(case("functional.attention", f"tiny-edges-{dn}",
                        *_equal(dtype, "edges", scale=tiny * 4)))
        # logits that overflow the dtype (|q||k| beyond its max): still a convex combination
        big = 1e150 if dtype == torch.float64 else math.sqrt(torch.finfo(dtype).max) * 4
        for support in ("complete", "window1", "edges", "batch"):
            q, k, v = qkv(dtype, 1.0)
            qb = (q.double() * big).to(dtype)
            kb = (k.double() * big).to(dtype)
            kw, c = SUPPORTS[support]
            ei = kw.get("edge_index")
            rest = {a: b for a, b in kw.items() if a != "edge_index"}
            out.append(case("functional.attention", f"huge-{support}-{dn}",
                            lambda qb=qb, kb=kb, v=v, ei=ei, rest=rest: attention(qb, kb, v, ei,
                                                                                  **rest),
                            Equals(lambda qb=qb, kb=kb, v=v, c=c: ref.attention(qb, kb, v, c),
                                   dtype)))
        if dtype == torch.float64:  # logits beyond float64 itself: a clear error
            q, k, v = qkv(dtype)
            out.append(case("functional.attention", "beyond-float64",
                            lambda q=q, k=k, v=v: attention(q * 1e200, k * 1e200, v),
                            Raises("q")))
        for bad in ("nan", "inf", "-inf"):
            for pos, name in enumerate("qkv"):
                t = list(qkv(dtype))
                t[pos] = t[pos].clone()
                t[pos][2, 1, 0] = float(bad)
                out.append(case("functional.attention", f"{bad}-in-{name}-{dn}",
                                lambda t=t: attention(*t), Raises(name)))
    q, k, v = qkv()
    out += [
        case("functional.attention", "empty", lambda: attention(q[:0], k[:0], v[:0]),
             Equals(lambda: torch.zeros(0, H, D))),
        case("functional.attention", "empty-edges",
             lambda: attention(q, k, v, torch.zeros(2, 0, dtype=torch.long)),
             Equals(lambda: torch.zeros(N, H, D))),
        case("functional.attention", "single", lambda: attention(q[:1], k[:1], v[:1]),
             Equals(lambda: v[:1])),
        case("functional.attention", "window0", lambda: attention(q, k, v, window=0),
             Equals(lambda: v)),
        case("functional.attention", "window-huge", lambda: attention(q, k, v, window=10 ** 12),
             Equals(lambda: ref.attention(q, k, v, ref.mask_counts(N)))),
        case("functional.attention", "causal-window-huge",
             lambda: attention(q, k, v, window=10 ** 12, causal=True),
             Equals(lambda: ref.attention(q, k, v, ref.mask_counts(N, causal=True)))),
        case("functional.attention", "batch-int32",
             lambda: attention(q, k, v, batch=BATCH.int()),
             Equals(lambda: ref.attention(q, k, v, ref.mask_counts(N, batch=BATCH)))),
        case("functional.attention", "batch-singletons",
             lambda: attention(q, k, v, batch=torch.arange(N)), Equals(lambda: v)),
    ]
    for dt in (torch.uint8, torch.int8, torch.int16, torch.int32):
        name = str(dt).split(".")[1]
        out.append(case("functional.attention", f"edge_index-{name}",
                        lambda dt=dt: attention(q, k, v, EDGES.to(dt)),
                        Equals(lambda: ref.attention(q, k, v, SUPPORTS["edges"][1]))))
    errors = {
        "q-2d": (lambda: attention(q[:, 0], k[:, 0], v[:, 0]), "q"),
        "q-list": (lambda: attention(q.tolist(), k, v), "q"),
        "q-int": (lambda: attention(q.long(), k.long(), v.long()), "q"),
        "heads-mismatch": (lambda: attention(q, k[:, :1], v[:, :1]), "heads"),
        "width-mismatch": (lambda: attention(q, k[..., :3], v), "q"),
        "kv-length": (lambda: attention(q, k, v[:5]), "k"),
        "dtype-mismatch": (lambda: attention(q, k.float(), v), "dtypes"),
        "qk-length-implicit": (lambda: attention(q, k[:5], v[:5], causal=True), "q"),
        "edge_index-float": (lambda: attention(q, k, v, EDGES.double()), "edge_index"),
        "edge_index-bool": (lambda: attention(q, k, v, EDGES > 0), "edge_index"),
        "edge_index-1d": (lambda: attention(q, k, v, EDGES[0]), "edge_index"),
        "edge_index-3rows": (lambda: attention(q, k, v, torch.zeros(3, 2, dtype=torch.long)),
                             "edge_index"),
        "edge_index-negative": (lambda: attention(q, k, v, torch.tensor([[-1], [0]])),
                                "edge_index"),
        "edge_index-source-range": (lambda: attention(q, k, v, torch.tensor([[N], [0]])),
                                    "edge_index"),
        "edge_index-target-range": (lambda: attention(q, k, v, torch.tensor([[0], [N]])),
                                    "edge_index"),
        "edge_index-int8-negative": (lambda: attention(q, k, v, torch.tensor(
            [[-3], [0]], dtype=torch.int8)), "edge_index"),
        "edge_index-with-causal": (lambda: attention(q, k, v, EDGES, causal=True),
                                   "edge_index"),
        "batch-bool": (lambda: attention(q, k, v, batch=BATCH > 0), "batch"),
        "batch-float": (lambda: attention(q, k, v, batch=BATCH.double()), "batch"),
        "batch-uint8": (lambda: attention(q, k, v, batch=BATCH.to(torch.uint8)), "batch"),
        "batch-unsorted": (lambda: attention(q, k, v, batch=BATCH.flip(0)), "batch"),
        "batch-length": (lambda: attention(q, k, v, batch=BATCH[:5]), "batch"),
        "batch-negative": (lambda: attention(q, k, v, batch=BATCH - 1), "batch"),
        "batch-list": (lambda: attention(q, k, v, batch=BATCH.tolist()), "batch"),
        "window-negative": (lambda: attention(q, k, v, window=-1), "window"),
        "window-float": (lambda: attention(q, k, v, window=1.5), "window"),
        "window-bool": (lambda: attention(q, k, v, window=True), "window"),
        "window-str": (lambda: attention(q, k, v, window="2"), "window"),
        "dropout-negative": (lambda: attention(q, k, v, dropout_p=-0.1), "dropout_p"),
        "dropout-one": (lambda: attention(q, k, v, dropout_p=1.0), "dropout_p"),
        "dropout-nan": (lambda: attention(q, k, v, dropout_p=math.nan), "dropout_p"),
        "edge_attr-without-edges": (lambda: attention(q, k, v, edge_attr=torch.zeros(3, H, D)),
                                    "edge_attr"),
        "edge_attr-shape": (lambda: attention(q, k, v, EDGES, edge_attr=torch.zeros(2, H, D)),
                            "edge_attr"),
        "edge_attr-nan": (lambda: attention(q, k, v, EDGES, edge_attr=torch.full(
            (EDGES.size(1), H, D), math.nan, dtype=torch.float64)), "edge_attr"),
    }
    out += [case("functional.attention", label, call, Raises(name))
            for label, (call, name) in errors.items()]
    return out


DIFFUSION = (  # label, keyword arguments, reference family
    ("power2", {"hops": 2}, ("power", 2, {})),
    ("ppr3", {"hops": 3, "coeffs": "ppr"}, ("ppr", 3, {})),
    ("katz3", {"hops": 3, "coeffs": "katz", "r": 0.5}, ("katz", 3, {"r": 0.5})),
    ("heat4", {"hops": 4, "coeffs": "heat", "t": 2.0}, ("heat", 4, {"t": 2.0})),
    ("uniform2", {"hops": 2, "coeffs": "uniform"}, ("uniform", 2, {})),
    ("ppr-inf", {"hops": math.inf, "coeffs": "ppr", "alpha": 0.2}, ("ppr", None, {"alpha": 0.2})),
    ("katz-inf", {"hops": math.inf, "coeffs": "katz", "r": 0.5}, ("katz", None, {"r": 0.5})),
    ("heat-inf", {"hops": math.inf, "coeffs": "heat", "t": 1.5}, ("heat", None, {"t": 1.5})),
)


def _diffusion_reference(q, k, v, c, family):
    kind, K, kw = family
    if K is None:
        return ref.attention_closed_form(q, k, v, c, kind, **kw)
    return ref.series(ref.attention_matrix(q, k, c), v, ref.theta(kind, K, **kw))


def _diffusion_cases():
    out = []
    solve_tol = (1e-5, 1e-6)  # the closed forms solve to the relative residual tol = 1e-6
    for label, kw, family in DIFFUSION:
        for support in ("complete", "causal", "window1", "batch", "edges"):
            skw, c = SUPPORTS[support]
            q, k, v = qkv(torch.float64, seed=3)
            ei = skw.get("edge_index")
            rest = {a: b for a, b in skw.items() if a != "edge_index"}
            exact = family[1] is not None
            out.append(case(
                "functional.attention_diffusion", f"{label}-{support}",
                lambda q=q, k=k, v=v, ei=ei, rest=rest, kw=kw: attention_diffusion(
                    q, k, v, ei, **kw, **rest),
                Equals(lambda q=q, k=k, v=v, c=c, f=family: _diffusion_reference(q, k, v, c, f),
                       torch.float64, None if exact else solve_tol)))
    for dtype in FLOATS[:3]:
        dn = str(dtype).split(".")[1]
        q, k, v = qkv(dtype, seed=5)
        c = SUPPORTS["edges"][1]
        for label, kw, family in (DIFFUSION[1], DIFFUSION[5]):
            for support in ("complete", "edges"):
                skw, c = SUPPORTS[support]
                ei = skw.get("edge_index")
                out.append(case(
                    "functional.attention_diffusion", f"{label}-{support}-{dn}",
                    lambda q=q, k=k, v=v, ei=ei, kw=kw: attention_diffusion(q, k, v, ei, **kw),
                    Equals(lambda q=q, k=k, v=v, c=c, f=family:
                           _diffusion_reference(q, k, v, c, f), dtype)))
    q, k, v = qkv(torch.float64, seed=7)
    c = SUPPORTS["complete"][1]
    out.append(case("functional.attention_diffusion", "heat-inf-large-t",
                    lambda: attention_diffusion(q, k, v, hops=math.inf, coeffs="heat", t=300.0),
                    Equals(lambda: ref.attention_closed_form(q, k, v, c, "heat", t=300.0),
                           torch.float64, (1e-5, 1e-6))))
    out.append(case("functional.attention_diffusion", "katz-inf-r-near-1",
                    lambda: attention_diffusion(q, k, v, hops=math.inf, coeffs="katz", r=0.99),
                    Equals(lambda: ref.attention_closed_form(q, k, v, c, "katz", r=0.99),
                           torch.float64, (1e-4, 1e-5))))
    out.append(case("functional.attention_diffusion", "empty",
                    lambda: attention_diffusion(q[:0], k[:0], v[:0], hops=3, coeffs="ppr"),
                    Equals(lambda: torch.zeros(0, H, D))))
    out.append(case("functional.attention_diffusion", "single-ppr-inf",
                    lambda: attention_diffusion(q[:1], k[:1], v[:1], hops=math.inf,
                                                coeffs="ppr"),
                    Equals(lambda: v[:1], torch.float64, (1e-6, 1e-7))))
    out.append(case("functional.attention_diffusion", "isolated-katz-inf",
                    lambda: attention_diffusion(q, k, v, torch.tensor([[0], [1]]),
                                                hops=math.inf, coeffs="katz", r=0.5),
                    Equals(lambda: ref.attention_closed_form(
                        q, k, v, ref.counts_from_edges(torch.tensor([[0], [1]]), N, N), "katz",
                        r=0.5), torch.float64, (1e-5, 1e-6))))
    errors = {
        "hops-zero": ({"hops": 0}, "hops"),
        "hops-negative": ({"hops": -2}, "hops"),
        "hops-float": ({"hops": 2.5}, "hops"),
        "hops-bool": ({"hops": True}, "hops"),
        "hops-str": ({"hops": "2"}, "hops"),
        "hops-nan": ({"hops": math.nan}, "hops"),
        "coeffs-unknown": ({"hops": 2, "coeffs": "pagerank"}, "coeffs"),
        "coeffs-int": ({"hops": 2, "coeffs": 3}, "coeffs"),
        "coeffs-tensor-length": ({"hops": 2, "coeffs": torch.ones(2)}, "coeffs"),
        "coeffs-tensor-nan": ({"hops": 1, "coeffs": torch.tensor([0.5, math.nan])}, "coeffs"),
        "power-inf": ({"hops": math.inf}, "coeffs"),
        "uniform-inf": ({"hops": math.inf, "coeffs": "uniform"}, "coeffs"),
        "alpha-zero": ({"hops": 2, "coeffs": "ppr", "alpha": 0.0}, "alpha"),
        "alpha-above-one": ({"hops": 2, "coeffs": "ppr", "alpha": 1.5}, "alpha"),
        "alpha-nan": ({"hops": 2, "coeffs": "ppr", "alpha": math.nan}, "alpha"),
        "alpha-for-katz": ({"hops": 2, "coeffs": "katz", "alpha": 0.1}, "alpha"),
        "alpha-for-power": ({"hops": 1, "alpha": 0.1}, "alpha"),
        "r-zero": ({"hops": 2, "coeffs": "katz", "r": 0.0}, "r"),
        "r-negative": ({"hops": 2, "coeffs": "katz", "r": -0.5}, "r"),
        "r-nan": ({"hops": 2, "coeffs": "katz", "r": math.nan}, "r"),
        "r-one-inf": ({"hops": math.inf, "coeffs": "katz", "r": 1.0}, "r"),
        "r-for-ppr": ({"hops": 2, "coeffs": "ppr", "r": 0.5}, "r"),
        "t-zero": ({"hops": 2, "coeffs": "heat", "t": 0.0}, "t"),
        "t-inf": ({"hops": 2, "coeffs": "heat", "t": math.inf}, "t"),
        "t-for-ppr": ({"hops": 2, "coeffs": "ppr", "t": 1.0}, "t"),
        "tol-zero": ({"hops": math.inf, "coeffs": "ppr", "tol": 0.0}, "tol"),
        "tol-negative": ({"hops": math.inf, "coeffs": "ppr", "tol": -1e-6}, "tol"),
        "tol-nan": ({"hops": math.inf, "coeffs": "ppr", "tol": math.nan}, "tol"),
        "tol-inf": ({"hops": math.inf, "coeffs": "ppr", "tol": math.inf}, "tol"),
        "tol-str": ({"hops": math.inf, "coeffs": "ppr", "tol": "1e-6"}, "tol"),
        "max_iter-zero": ({"hops": math.inf, "coeffs": "ppr", "max_iter": 0}, "max_iter"),
        "max_iter-float": ({"hops": math.inf, "coeffs": "ppr", "max_iter": 10.0}, "max_iter"),
        "max_iter-bool": ({"hops": math.inf, "coeffs": "ppr", "max_iter": True}, "max_iter"),
        "max_iter-none": ({"hops": math.inf, "coeffs": "ppr", "max_iter": None}, "max_iter"),
        "window-negative": ({"hops": 2, "window": -1}, "window"),
        "batch-bool": ({"hops": 2, "batch": BATCH > 0}, "batch"),
        "dropout-one": ({"hops": 2, "dropout_p": 1.0}, "dropout_p"),
        "heat-inf-edge-features": ({"hops": math.inf, "coeffs": "heat", "edge_index": EDGES,
                                    "edge_attr": torch.zeros(EDGES.size(1), H, D,
                                                             dtype=torch.float64)}, "coeffs"),
    }
    for label, (kw, name) in errors.items():
        out.append(case("functional.attention_diffusion", label,
                        lambda kw=kw: attention_diffusion(q, k, v, **kw), Raises(name)))
    out.append(case("functional.attention_diffusion", "bipartite-multi-hop",
                    lambda: attention_diffusion(q, k[:5], v[:5], torch.tensor([[0], [1]]),
                                                hops=2),
                    Raises("q")))
    out.append(case("functional.attention_diffusion", "nan-in-v",
                    lambda: attention_diffusion(q, k, torch.full_like(v, math.nan), hops=2),
                    Raises("v")))
    return out


CASES = _attention_cases() + _diffusion_cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_attention(c):
    check(c)
