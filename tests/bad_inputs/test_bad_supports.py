"""Bad inputs of affgraph.supports (window, knn, edges and their materialisations)."""
from __future__ import annotations

import math

import pytest
import torch

import _oracles as ref
from _catalogue import Equals, Raises, case, check, randn
from affgraph import supports

N = 7
BATCH = torch.tensor([0, 0, 0, 1, 1, 1, 1])
EDGES = torch.tensor([[0, 1, 1, 6], [1, 2, 2, 6]])


def _knn_reference(x, k, batch=None, loop=False, cosine=False):
    """``[N, N]`` 0/1 adjacency of the k nearest (float64 brute force; ties never occur)."""
    x = x.double()
    if cosine:
        x = x / x.norm(dim=1, keepdim=True)
    d = torch.cdist(x, x)
    n = x.size(0)
    if batch is not None:
        d = d.masked_fill(batch[:, None] != batch[None, :], math.inf)
    if not loop:
        d = d.masked_fill(torch.eye(n, dtype=torch.bool), math.inf)
    a = torch.zeros(n, n, dtype=torch.float64)
    for i in range(n):
        order = torch.argsort(d[i])
        for j in order[:k]:
            if math.isfinite(float(d[i, j])):
                a[i, j] = 1.0
    return a


def _adjacency(support, n=N):
    return ref.dense_adjacency(support.edge_index, None, n)


def _cases():
    out = []
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        dn = str(dtype).split(".")[1]
        x = randn(N, 3, dtype=dtype, seed=1)
        out.append(case("supports.knn", f"k2-{dn}", lambda x=x: _adjacency(supports.knn(x, 2)),
                        Equals(lambda x=x: _knn_reference(x, 2))))
        bad = x.clone()
        bad[2, 1] = math.nan
        out.append(case("supports.knn", f"nan-{dn}", lambda bad=bad: supports.knn(bad, 2),
                        Raises("x")))
    x = randn(N, 3, seed=2)
    out += [
        case("supports.knn", "batch", lambda: _adjacency(supports.knn(x, 2, BATCH)),
             Equals(lambda: _knn_reference(x, 2, BATCH))),
        case("supports.knn", "k-above-n", lambda: _adjacency(supports.knn(x, 50, BATCH)),
             Equals(lambda: _knn_reference(x, 50, BATCH))),
        case("supports.knn", "loop-cosine",
             lambda: _adjacency(supports.knn(x, 3, loop=True, cosine=True)),
             Equals(lambda: _knn_reference(x, 3, loop=True, cosine=True))),
        case("supports.knn", "block_size-1", lambda: _adjacency(supports.knn(x, 2,
                                                                             block_size=1)),
             Equals(lambda: _knn_reference(x, 2))),
        case("supports.knn", "huge-values",
             lambda: _adjacency(supports.knn(x.float() * 1e18, 2)),
             Equals(lambda: _knn_reference(x.float() * 1e18, 2))),
        case("supports.knn", "overflowing-squares",
             lambda: _adjacency(supports.knn(x.float() * 1e30, 2)),
             Equals(lambda: _knn_reference(x.float() * 1e30, 2))),
        case("supports.knn", "underflowing-squares",
             lambda: _adjacency(supports.knn(x.float() * 1e-30, 2)),
             Equals(lambda: _knn_reference(x.float() * 1e-30, 2))),
        case("supports.knn", "single", lambda: _adjacency(supports.knn(x[:1], 2), 1),
             Equals(lambda: torch.zeros(1, 1))),
        case("supports.knn", "empty", lambda: supports.knn(x[:0], 2).edge_index,
             Equals(lambda: torch.zeros(2, 0))),
    ]
    errors = {
        "k-zero": (lambda: supports.knn(x, 0), "k"),
        "k-float": (lambda: supports.knn(x, 2.0), "k"),
        "k-bool": (lambda: supports.knn(x, True), "k"),
        "block_size-zero": (lambda: supports.knn(x, 2, block_size=0), "block_size"),
        "block_size-float": (lambda: supports.knn(x, 2, block_size=8.0), "block_size"),
        "x-1d": (lambda: supports.knn(x[:, 0], 2), "x"),
        "x-list": (lambda: supports.knn(x.tolist(), 2), "x"),
        "batch-bool": (lambda: supports.knn(x, 2, BATCH > 0), "batch"),
        "batch-unsorted": (lambda: supports.knn(x, 2, BATCH.flip(0)), "batch"),
        "batch-length": (lambda: supports.knn(x, 2, BATCH[:3]), "batch"),
    }
    out += [case("supports.knn", label, call, Raises(name))
            for label, (call, name) in errors.items()]
    window = {
        "w0": (supports.window(0), ref.mask_counts(N, window=0)),
        "w2-causal": (supports.window(2, causal=True), ref.mask_counts(N, window=2, causal=True)),
        "w-huge": (supports.window(10 ** 15), ref.mask_counts(N)),
        "w-huge-clamped": (supports.window(10 ** 15).clamp(N), ref.mask_counts(N)),
        "causal": (supports.causal(), ref.mask_counts(N, causal=True)),
        "complete": (supports.complete(), ref.mask_counts(N)),
    }
    for label, (sup, want) in window.items():
        out.append(case("supports.window", f"dense_mask-{label}",
                        lambda sup=sup: sup.dense_mask(N), Equals(lambda want=want: want)))
        out.append(case("supports.window", f"to_edge_index-{label}",
                        lambda sup=sup: _adjacency(supports.edges(sup.to_edge_index(N))),
                        Equals(lambda want=want: want)))
    out.append(case("supports.window", "batch-w1",
                    lambda: supports.window(1).dense_mask(N, BATCH),
                    Equals(lambda: ref.mask_counts(N, window=1, batch=BATCH))))
    out += [
        case("supports.window", "negative", lambda: supports.window(-1), Raises("window")),
        case("supports.window", "float", lambda: supports.window(2.0), Raises("window")),
        case("supports.window", "bool", lambda: supports.window(True), Raises("window")),
        case("supports.window", "batch-bool",
             lambda: supports.window(1).dense_mask(N, BATCH > 0), Raises("batch")),
        case("supports.window", "kind-unknown", lambda: supports.Support("ring"),
             Raises("support")),
    ]
    for dt in (torch.uint8, torch.int8, torch.int16, torch.int32):
        name = str(dt).split(".")[1]
        want = ref.counts_from_edges(EDGES, N, N).clamp(max=1)
        out.append(case("supports.edges", f"dense_mask-{name}",
                        lambda dt=dt: supports.edges(EDGES.to(dt)).dense_mask(N),
                        Equals(lambda want=want: want)))
        out.append(case("supports.edges", f"to_edge_index-{name}",
                        lambda dt=dt: supports.edges(EDGES.to(dt)).to_edge_index(N),
                        Equals(lambda: EDGES)))
    out += [
        case("supports.edges", "float", lambda: supports.edges(EDGES.float()),
             Raises("edge_index")),
        case("supports.edges", "bool", lambda: supports.edges(EDGES > 0), Raises("edge_index")),
        case("supports.edges", "list", lambda: supports.edges(EDGES.tolist()),
             Raises("edge_index")),
        case("supports.edges", "out-of-range", lambda: supports.edges(EDGES).dense_mask(5),
             Raises("edge_index")),
        case("supports.edges", "negative",
             lambda: supports.edges(torch.tensor([[-1], [0]])).to_edge_index(N),
             Raises("edge_index")),
        case("supports.edges", "with-window",
             lambda: supports.resolve(EDGES, window=2), Raises("edge_index")),
    ]
    return out


CASES = _cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_supports(c):
    check(c)
