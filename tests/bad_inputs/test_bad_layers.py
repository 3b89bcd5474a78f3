"""Bad inputs of the layers of affgraph.nn: AffinityAttention, AffinityDiffusion,
SimplicialAttention (references: PyG's TransformerConv and APPNP with the same weights in
float64, the dense 2-simplicial formula)."""
from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.nn import APPNP, TransformerConv

import _oracles as ref
from _catalogue import Equals, Raises, case, check, randn
from affgraph.nn import AffinityAttention, AffinityDiffusion, SimplicialAttention

N, F, C, H = 6, 4, 3, 2
# duplicate edge 3 -> 4, self-loop 0 -> 0, node 5 without incoming edges
EDGES = torch.tensor([[0, 1, 2, 3, 3, 0, 4], [1, 2, 3, 4, 4, 0, 2]])
BATCH = torch.tensor([0, 0, 0, 1, 1, 1])


def _twins(**kw):
    torch.manual_seed(0)
    tc = TransformerConv(F, C, heads=H, **kw).double()
    aa = AffinityAttention(F, C, heads=H, **kw).double()
    aa.load_state_dict(tc.state_dict())
    return aa, tc


def _attention_cases():
    out = []
    aa, tc = _twins()
    x = randn(N, F, seed=1)
    graphs = {
        "edges": EDGES,
        "uint8-edges": EDGES.to(torch.uint8),
        "int32-edges": EDGES.int(),
        "no-edges": torch.zeros(2, 0, dtype=torch.long),
        "self-loops-only": torch.arange(N).repeat(2, 1),
    }
    for label, ei in graphs.items():
        out.append(case("nn.AffinityAttention", label, lambda ei=ei: aa(x, ei),
                        Equals(lambda ei=ei: tc(x, ei.long()))))
    for label, scale in (("tiny", 1e-300), ("huge", 1e60)):
        xs = x * scale
        out.append(case("nn.AffinityAttention", f"{label}-x", lambda xs=xs: aa(xs, EDGES),
                        Equals(lambda xs=xs: tc(xs, EDGES))))
    complete = torch.cartesian_prod(torch.arange(N), torch.arange(N)).T.flip(0)
    out.append(case("nn.AffinityAttention", "implicit-complete", lambda: aa(x),
                    Equals(lambda: tc(x, complete))))
    within = complete[:, BATCH[complete[0]] == BATCH[complete[1]]]
    out.append(case("nn.AffinityAttention", "implicit-batch", lambda: aa(x, batch=BATCH),
                    Equals(lambda: tc(x, within))))
    torch.manual_seed(1)
    tcb = TransformerConv((F, 2), C, heads=H).double()
    aab = AffinityAttention((F, 2), C, heads=H).double()
    aab.load_state_dict(tcb.state_dict())
    xd = randn(3, 2, seed=8)
    bip = torch.tensor([[0, 5, 5, 1], [0, 1, 1, 2]])  # 6 sources -> 3 targets, a duplicate
    out.append(case("nn.AffinityAttention", "bipartite", lambda: aab((x, xd), bip),
                    Equals(lambda: tcb((x, xd), bip))))
    out.append(case("nn.AffinityAttention", "bipartite-target-range",
                    lambda: aab((x, xd), torch.tensor([[0], [3]])), Raises("edge_index")))
    lazy = AffinityAttention(-1, C, heads=H).double()
    with torch.no_grad():
        lazy(x, EDGES)  # initialises the lazy weights
    tcl = TransformerConv(F, C, heads=H).double()
    tcl.load_state_dict(lazy.state_dict())
    out.append(case("nn.AffinityAttention", "lazy-in_channels", lambda: lazy(x, EDGES),
                    Equals(lambda: tcl(x, EDGES))))
    out.append(case("nn.AffinityAttention", "single-node", lambda: aa(x[:1]),
                    Equals(lambda: tc(x[:1], torch.zeros(2, 1, dtype=torch.long)))))
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        dn = str(dtype).split(".")[1]
        low, _ = _twins()
        low = low.to(dtype)
        twin = TransformerConv(F, C, heads=H).double()  # the rounded weights, in float64
        twin.load_state_dict({k: v.double() for k, v in low.state_dict().items()})
        xl = x.to(dtype)
        for label, kw in (("edges", {"edge_index": EDGES}), ("implicit", {})):
            ei = EDGES if kw else complete
            out.append(case("nn.AffinityAttention", f"{label}-{dn}",
                            lambda low=low, xl=xl, kw=kw: low(xl, **kw),
                            Equals(lambda twin=twin, xl=xl, ei=ei: twin(xl.double(), ei),
                                   dtype)))
        nan = xl.clone()
        nan[1, 1] = math.nan
        out.append(case("nn.AffinityAttention", f"x-nan-{dn}",
                        lambda low=low, nan=nan: low(nan, EDGES), Raises("x")))
    mh = AffinityAttention(F, C, heads=H, hops=math.inf, coeffs="ppr", alpha=0.2,
                           root_weight=False, concat=False).double()
    out.append(case("nn.AffinityAttention", "ppr-inf-isolated", lambda: mh(x, EDGES),
                    Equals(lambda: _ppr_reference(mh, x), torch.float64, (1e-5, 1e-6))))
    ctor = {
        "in_channels-zero": ((0, C), {}, "in_channels"),
        "in_channels-float": ((4.0, C), {}, "in_channels"),
        "in_channels-triple": (((2, 2, 2), C), {}, "in_channels"),
        "out_channels-zero": ((F, 0), {}, "out_channels"),
        "heads-zero": ((F, C), {"heads": 0}, "heads"),
        "heads-float": ((F, C), {"heads": 2.0}, "heads"),
        "dropout-one": ((F, C), {"dropout": 1.0}, "dropout"),
        "dropout-nan": ((F, C), {"dropout": math.nan}, "dropout"),
        "concat-int": ((F, C), {"concat": 1}, "concat"),
        "edge_dim-zero": ((F, C), {"edge_dim": 0}, "edge_dim"),
        "key_channels-zero": ((F, C), {"key_channels": 0}, "key_channels"),
        "logit_scale-nan": ((F, C), {"logit_scale": math.nan}, "logit_scale"),
        "window-negative": ((F, C), {"window": -1}, "window"),
        "window-float": ((F, C), {"window": 2.0}, "window"),
        "hops-zero": ((F, C), {"hops": 0}, "hops"),
        "hops-float": ((F, C), {"hops": 1.5}, "hops"),
        "alpha-for-power": ((F, C), {"alpha": 0.1}, "alpha"),
        "r-one-inf": ((F, C), {"hops": math.inf, "coeffs": "katz", "r": 1.0}, "r"),
        "t-negative": ((F, C), {"hops": 2, "coeffs": "heat", "t": -1.0}, "t"),
        "power-inf": ((F, C), {"hops": math.inf}, "coeffs"),
        "learn_coeffs-inf": ((F, C), {"hops": math.inf, "coeffs": "ppr",
                                      "learn_coeffs": True}, "learn_coeffs"),
        "tol-zero": ((F, C), {"tol": 0.0}, "tol"),
        "tol-nan": ((F, C), {"tol": math.nan}, "tol"),
        "max_iter-zero": ((F, C), {"max_iter": 0}, "max_iter"),
        "max_iter-float": ((F, C), {"max_iter": 100.0}, "max_iter"),
    }
    for label, (args, kw, name) in ctor.items():
        out.append(case("nn.AffinityAttention", label,
                        lambda args=args, kw=kw: AffinityAttention(*args, **kw), Raises(name)))
    nan = x.clone()
    nan[0, 0] = math.nan
    ea, tce = _twins(edge_dim=2)
    e = randn(EDGES.size(1), 2, seed=9)
    out.append(case("nn.AffinityAttention", "edge_attr", lambda: ea(x, EDGES, e),
                    Equals(lambda: tce(x, EDGES, e))))
    fwd = {
        "x-width": (lambda: aa(randn(N, F + 1), EDGES), "x"),
        "x-dtype": (lambda: aa(x.float(), EDGES), "x"),
        "x-int": (lambda: aa(x.long(), EDGES), "x"),
        "x-1d": (lambda: aa(x[0]), "x"),
        "x-list": (lambda: aa(x.tolist(), EDGES), "x"),
        "x-nan": (lambda: aa(nan, EDGES), "x"),
        "x_dst-width": (lambda: aa((x, x[:, :2]), EDGES), "x_dst"),
        "edge_index-float": (lambda: aa(x, EDGES.double()), "edge_index"),
        "edge_index-negative": (lambda: aa(x, torch.tensor([[-1], [0]])), "edge_index"),
        "edge_index-range": (lambda: aa(x, torch.tensor([[N], [0]])), "edge_index"),
        "edge_index-1d": (lambda: aa(x, EDGES[0]), "edge_index"),
        "edge_attr-without-edge_dim": (lambda: aa(x, EDGES, torch.zeros(7, 2)), "edge_attr"),
        "edge_attr-dtype": (lambda: ea(x, EDGES, torch.zeros(7, 2)), "edge_attr"),
        "edge_attr-int": (lambda: ea(x, EDGES, torch.zeros(7, 2, dtype=torch.long)),
                          "edge_attr"),
        "edge_attr-shape": (lambda: ea(x, EDGES, torch.zeros(6, 2, dtype=torch.float64)),
                            "edge_attr"),
        "edge_attr-missing": (lambda: ea(x, EDGES), "edge_attr"),
        "edge_attr-nan": (lambda: ea(x, EDGES, torch.full((7, 2), math.nan,
                                                          dtype=torch.float64)), "edge_attr"),
        "batch-bool": (lambda: aa(x, batch=BATCH > 0), "batch"),
        "batch-uint8": (lambda: aa(x, batch=BATCH.to(torch.uint8)), "batch"),
        "batch-unsorted": (lambda: aa(x, batch=BATCH.flip(0)), "batch"),
    }
    out += [case("nn.AffinityAttention", label, call, Raises(name))
            for label, (call, name) in fwd.items()]
    return out


def _ppr_reference(layer, x):
    h, c = layer.heads, layer.out_channels
    q = layer.lin_query(x).view(-1, h, c)
    k = layer.lin_key(x).view(-1, h, c)
    v = layer.lin_value(x).view(-1, h, c)
    cm = ref.counts_from_edges(EDGES, N, N)
    return ref.attention_closed_form(q, k, v, cm, "ppr", alpha=0.2).mean(1)


def _diffusion_cases():
    out = []
    x = randn(N, C, seed=2)
    w = torch.rand(EDGES.size(1), generator=torch.Generator().manual_seed(3),
                   dtype=torch.float64) + 0.1
    for K in (0, 1, 5):
        out.append(case("nn.AffinityDiffusion", f"appnp-K{K}",
                        lambda K=K: AffinityDiffusion(K, 0.1)(x, EDGES, w),
                        Equals(lambda K=K: APPNP(K, 0.1)(x, EDGES, w))))
    for label, ei in (("uint8-edges", EDGES.to(torch.uint8)), ("no-edges", EDGES[:, :0]),
                      ("self-loops", torch.arange(N).repeat(2, 1))):
        out.append(case("nn.AffinityDiffusion", label,
                        lambda ei=ei: AffinityDiffusion(4, 0.2)(x, ei),
                        Equals(lambda ei=ei: APPNP(4, 0.2)(x, ei.long()))))
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        xl, wl = x.to(dtype), w.to(dtype)
        out.append(case("nn.AffinityDiffusion", str(dtype).split(".")[1],
                        lambda xl=xl, wl=wl: AffinityDiffusion(4, 0.2)(xl, EDGES, wl),
                        Equals(lambda xl=xl, wl=wl: APPNP(4, 0.2)(xl.double(), EDGES,
                                                                 wl.double()), dtype)))
    # without self-loops the symmetric normalisation is scale-invariant: 1e-300 weights give
    # the graph of the unscaled ones (degrees 1e-300, D^-1/2 = 1e150)
    out.append(case("nn.AffinityDiffusion", "tiny-weights",
                    lambda: AffinityDiffusion(3, 0.1, add_self_loops=False)(x, EDGES,
                                                                             w * 1e-300),
                    Equals(lambda: APPNP(3, 0.1, add_self_loops=False)(x, EDGES, w))))
    out.append(case("nn.AffinityDiffusion", "huge-weights",
                    lambda: AffinityDiffusion(3, 0.1, add_self_loops=False)(x, EDGES,
                                                                             w * 1e300),
                    Equals(lambda: APPNP(3, 0.1, add_self_loops=False)(x, EDGES, w))))
    out.append(case("nn.AffinityDiffusion", "ppr-inf",
                    lambda: AffinityDiffusion(math.inf, 0.1)(x, EDGES, w),
                    Equals(lambda: ref.closed_form(ref.gcn_adjacency(EDGES, w, N), x, "ppr"),
                           torch.float64, (1e-5, 1e-6))))
    out.append(case("nn.AffinityDiffusion", "single-node",
                    lambda: AffinityDiffusion(3, 0.1)(x[:1], EDGES[:, :0]),
                    Equals(lambda: x[:1])))
    ctor = {
        "K-negative": ((-1,), {}, "hops"),
        "K-float": ((2.5,), {}, "hops"),
        "alpha-zero": ((3, 0.0), {}, "alpha"),
        "alpha-for-heat": ((3, 0.1), {"coeffs": "heat"}, "alpha"),
        "dropout-above-one": ((3,), {"dropout": 2.0}, "dropout"),
        "cached-int": ((3,), {"cached": 1}, "cached"),
        "normalize-unknown": ((3,), {"normalize": "l2"}, "normalize"),
        "coeffs-unknown": ((3,), {"coeffs": "gpr"}, "coeffs"),
        "power-inf": ((math.inf,), {"coeffs": "power"}, "coeffs"),
        "learn_coeffs-inf": ((math.inf,), {"learn_coeffs": True}, "learn_coeffs"),
        "tol-zero": ((math.inf,), {"tol": 0.0}, "tol"),
        "tol-nan": ((math.inf,), {"tol": math.nan}, "tol"),
        "max_iter-zero": ((math.inf,), {"max_iter": 0}, "max_iter"),
        "max_iter-float": ((math.inf,), {"max_iter": 50.0}, "max_iter"),
    }
    for label, (args, kw, name) in ctor.items():
        out.append(case("nn.AffinityDiffusion", label,
                        lambda args=args, kw=kw: AffinityDiffusion(*args, **kw), Raises(name)))
    layer = AffinityDiffusion(3)
    nan = x.clone()
    nan[1, 1] = math.inf
    fwd = {
        "x-nan": (lambda: layer(nan, EDGES), "x"),
        "x-int": (lambda: layer(x.long(), EDGES), "x"),
        "x-list": (lambda: layer(x.tolist(), EDGES), "x"),
        "edge_index-none": (lambda: layer(x, None), "edge_index"),
        "edge_index-float": (lambda: layer(x, EDGES.float()), "edge_index"),
        "edge_index-range": (lambda: layer(x[:3], EDGES), "edge_index"),
        "edge_weight-length": (lambda: layer(x, EDGES, w[:2]), "edge_weight"),
        "edge_weight-nan": (lambda: layer(x, EDGES, w * math.nan), "edge_weight"),
    }
    out += [case("nn.AffinityDiffusion", label, call, Raises(name))
            for label, (call, name) in fwd.items()]
    return out


def _simplicial_reference(layer, x, jm, lm):
    h, c = layer.heads, layer.out_channels
    t = [lin(x).view(-1, h, c) for lin in (layer.lin_query, layer.lin_key1, layer.lin_key2,
                                            layer.lin_value1, layer.lin_value2)]
    return ref.simplicial(*t, jm, lm).reshape(-1, h * c) + layer.lin_skip(x)


def _copy(layer, dtype):
    low = SimplicialAttention(F, C, heads=H).to(dtype)
    low.load_state_dict({k: v.to(dtype) for k, v in layer.state_dict().items()})
    return low


def _double(low):
    twin = SimplicialAttention(F, C, heads=H).double()
    twin.load_state_dict({k: v.double() for k, v in low.state_dict().items()})
    return twin


def _simplicial_cases():
    out = []
    torch.manual_seed(0)
    layer = SimplicialAttention(F, C, heads=H).double()
    win = SimplicialAttention(F, C, heads=H, window=(1, 0), causal=True).double()
    x = randn(N, F, seed=4)
    full = ref.mask_counts(N)
    with torch.no_grad():
        out += [
            case("nn.SimplicialAttention", "all-pairs", lambda: layer(x),
                 Equals(lambda: _simplicial_reference(layer, x, full, full))),
            case("nn.SimplicialAttention", "batch", lambda: layer(x, BATCH),
                 Equals(lambda: _simplicial_reference(layer, x, ref.mask_counts(N, batch=BATCH),
                                                      ref.mask_counts(N, batch=BATCH)))),
            case("nn.SimplicialAttention", "causal-window", lambda: win(x),
                 Equals(lambda: _simplicial_reference(
                     win, x, ref.mask_counts(N, window=1, causal=True),
                     ref.mask_counts(N, window=0, causal=True)))),
            *[case("nn.SimplicialAttention", str(dt).split(".")[1],
                   lambda low=low, dt=dt: low(x.to(dt)),
                   Equals(lambda low=low, dt=dt: _simplicial_reference(
                       _double(low), x.to(dt).double(), full, full), dt))
              for dt, low in ((dt, _copy(layer, dt)) for dt in (torch.float16, torch.bfloat16,
                                                               torch.float32))],
            case("nn.SimplicialAttention", "single", lambda: layer(x[:1]),
                 Equals(lambda: _simplicial_reference(layer, x[:1], full[:1, :1],
                                                      full[:1, :1]))),
        ]
    ctor = {
        "in_channels-zero": ((0, C), {}, "in_channels"),
        "out_channels-float": ((F, 2.0), {}, "out_channels"),
        "heads-zero": ((F, C), {"heads": 0}, "heads"),
        "window-negative": ((F, C), {"window": (-1, 0)}, "w1"),
        "window-int": ((F, C), {"window": 3}, "window"),
    }
    for label, (args, kw, name) in ctor.items():
        out.append(case("nn.SimplicialAttention", label,
                        lambda args=args, kw=kw: SimplicialAttention(*args, **kw), Raises(name)))
    nan = x.clone()
    nan[0, 1] = math.nan
    fwd = {
        "x-width": (lambda: layer(randn(N, F + 2)), "x"),
        "x-dtype": (lambda: layer(x.float()), "x"),
        "x-int": (lambda: layer(x.long()), "x"),
        "x-3d": (lambda: layer(x[None]), "x"),
        "x-nan": (lambda: layer(nan), "x"),
        "x-empty": (lambda: layer(x[:0]), "N"),
        "batch-bool": (lambda: layer(x, BATCH > 0), "batch"),
        "batch-length": (lambda: layer(x, BATCH[:2]), "batch"),
    }
    out += [case("nn.SimplicialAttention", label, call, Raises(name))
            for label, (call, name) in fwd.items()]
    return out


CASES = _attention_cases() + _diffusion_cases() + _simplicial_cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_layers(c):
    with torch.no_grad():
        check(c)
