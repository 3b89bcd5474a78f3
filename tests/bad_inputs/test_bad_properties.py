"""Property-based bad inputs (hypothesis, derandomised: the same examples on every run).

Random shapes, supports, dtypes and magnitudes for attention and diffusion, each result
finite and equal to the float64 reference of ``_oracles``; random invalid solver settings,
each a clear error naming the argument."""
from __future__ import annotations

import math

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import _oracles as ref  # noqa: E402
from _catalogue import Case, Equals, Raises, check  # noqa: E402
from affgraph.functional import attention, attention_diffusion, diffuse  # noqa: E402

SETTINGS = settings(max_examples=40, derandomize=True, deadline=None, database=None)
DTYPES = st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64])


@st.composite
def graphs(draw, n):
    """Random edges ``j -> i`` with duplicates, self-loops and isolated nodes."""
    e = draw(st.integers(0, 3 * n))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          min_size=e, max_size=e))
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).T.contiguous()


@st.composite
def attention_inputs(draw):
    n = draw(st.integers(1, 7))
    h, d = draw(st.integers(1, 2)), draw(st.integers(1, 4))
    dtype = draw(DTYPES)
    lo = -4 if dtype == torch.float16 else -30
    scale = 10.0 ** draw(st.integers(lo, 4))
    seed = draw(st.integers(0, 2 ** 16))
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(n, h, d, generator=g, dtype=torch.float64) for _ in range(3))
    q, k = (q * scale).to(dtype), (k * scale).to(dtype)
    v = v.to(dtype)
    kind = draw(st.sampled_from(["complete", "causal", "window", "batch", "edges"]))
    if kind == "edges":
        ei = draw(graphs(n))
        return (q, k, v), {"edge_index": ei}, ref.counts_from_edges(ei, n, n), dtype
    if kind == "window":
        w = draw(st.integers(0, 10))
        causal = draw(st.booleans())
        return (q, k, v), {"window": w, "causal": causal}, \
            ref.mask_counts(n, window=w, causal=causal), dtype
    if kind == "batch":
        sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=n))
        batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))[:n]
        batch = torch.cat([batch, batch.new_full((n - batch.numel(),), int(batch[-1]))])
        return (q, k, v), {"batch": batch}, ref.mask_counts(n, batch=batch), dtype
    causal = kind == "causal"
    return (q, k, v), {"causal": causal}, ref.mask_counts(n, causal=causal), dtype


@SETTINGS
@given(attention_inputs())
def test_attention_is_the_reference_for_any_support_dtype_and_scale(args):
    (q, k, v), kw, c, dtype = args
    check(Case("functional.attention", lambda: attention(q, k, v, **kw),
               Equals(lambda: ref.attention(q, k, v, c), dtype)))


@SETTINGS
@given(attention_inputs(), st.sampled_from(["ppr", "power"]), st.integers(1, 3))
def test_attention_diffusion_is_the_reference(args, coeffs, hops):
    (q, k, v), kw, c, dtype = args
    theta = ref.theta(coeffs, hops)
    check(Case("functional.attention_diffusion",
               lambda: attention_diffusion(q, k, v, **kw, hops=hops, coeffs=coeffs),
               Equals(lambda: ref.series(ref.attention_matrix(q, k, c), v, theta), dtype)))


@SETTINGS
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), graphs(n))), DTYPES,
       st.integers(-150, 150), st.integers(0, 2 ** 16))
def test_diffuse_is_the_reference(graph, dtype, exponent, seed):
    n, ei = graph
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64).to(dtype)
    e = min(max(exponent, -30), 30) if dtype != torch.float64 else exponent
    e = min(max(e, -4), 4) if dtype == torch.float16 else e
    w = ((torch.rand(ei.size(1), generator=g, dtype=torch.float64) + 0.1) * 10.0 ** e).to(dtype)
    a = ref.dense_adjacency(ei, w, n)
    s = a.sum(1, keepdim=True)
    row = torch.where(s > 0, a / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(a))
    check(Case("functional.diffuse",
               lambda: diffuse(x, ei, w, hops=3, coeffs="ppr", normalize="row"),
               Equals(lambda: ref.diffuse_series(row, x, ref.theta("ppr", 3)), dtype)))


BAD_TOL = st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.just(math.inf),
                    st.booleans(), st.text(max_size=3), st.none())
BAD_MAX_ITER = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(),
                         st.text(max_size=3), st.none())


@SETTINGS
@given(st.one_of(st.tuples(st.just("tol"), BAD_TOL), st.tuples(st.just("max_iter"),
                                                                 BAD_MAX_ITER)),
       st.sampled_from(["attention_diffusion", "diffuse"]))
def test_bad_solver_settings_are_refused_by_name(bad, entry):
    name, value = bad
    q = torch.randn(4, 1, 2, dtype=torch.float64)
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    kw = {name: value, "hops": math.inf, "coeffs": "ppr"}
    call = (lambda: attention_diffusion(q, q, q, **kw)) if entry == "attention_diffusion" \
        else (lambda: diffuse(q[:, 0], ei, **kw))
    check(Case(f"functional.{entry}", call, Raises(name)))
