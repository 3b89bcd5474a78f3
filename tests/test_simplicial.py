import math

import pytest
import torch
import torch.nn.functional as F

from affgraph.functional import simplicial_attention


def pair_mask(n, w=None, causal=False, batch=None):
    """[i, j] True iff j may pair with i: same graph, |i - j| <= w, and j <= i if causal."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    b = torch.zeros(n, dtype=torch.long) if batch is None else batch
    m = b[:, None] == b[None, :]
    if w is not None:
        m = m & ((i - j).abs() <= w)
    if causal:
        m = m & (j <= i)
    return m


def reference(q, k1, k2, v1, v2, window=None, causal=False, batch=None):
    """Full float64 trilinear form with an explicit [N, N, N] support mask (the oracle)."""
    n, h, d = q.shape

    w1, w2 = (None, None) if window is None else window
    mask = (pair_mask(n, w1, causal, batch)[:, :, None]
            & pair_mask(n, w2, causal, batch)[:, None, :])  # (i, j, l)
    logits = torch.einsum("ihd,jhd,lhd->hijl", q, k1, k2) / math.sqrt(d)
    logits = logits.masked_fill(~mask, -math.inf)
    s = logits.reshape(h, n, -1).softmax(-1).reshape(logits.shape)
    return torch.einsum("hijl,jhe,lhe->ihe", s, v1, v2)


def inputs(n=11, h=2, d=4, dv=3, dtype=torch.float64, grad=False):
    g = torch.Generator().manual_seed(1)
    shapes = [(n, h, d)] * 3 + [(n, h, dv)] * 2
    return [torch.randn(*s, generator=g, dtype=dtype).requires_grad_(grad) for s in shapes]


BATCH = torch.tensor([0] * 4 + [1] * 7)
CASES = [
    dict(),
    dict(causal=True),
    dict(window=(3, 2)),
    dict(window=(3, 2), causal=True),
    dict(window=(2, 5)),
    dict(window=(0, 2)),
    dict(window=(2, 0), causal=True),
    dict(batch=BATCH),
    dict(batch=BATCH, causal=True),
    dict(batch=BATCH, window=(4, 2)),
    dict(batch=BATCH, window=(3, 3), causal=True),
]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("block_elements", [1 << 21, 22])
def test_matches_float64_einsum(kw, block_elements):
    xs = inputs()
    out = simplicial_attention(*xs, block_elements=block_elements, **kw)
    torch.testing.assert_close(out, reference(*xs, **kw), atol=1e-12, rtol=1e-12)



# w = 0 (the item itself), 1, N - 1 and N for the whole sequence (N = 11), 10**6 (clamped);
# BATCH's graphs have 4 and 7 items, so N - 1 already covers both
WIDTHS = [0, 1, 10, 11, 10**6]


@pytest.mark.parametrize("w", WIDTHS)
@pytest.mark.parametrize("form", ["both", "first", "second"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batch", [None, BATCH])
def test_window_convention_matches_dense_mask(w, form, causal, batch):
    # window=(w1, w2) means |i - j| <= w1 and |i - l| <= w2 (causal: i - w <= j, l <= i), as
    # attention's window=w; the oracle is the float64 [N, N, N] form with that mask built by hand
    window = {"both": (w, w), "first": (w, 2), "second": (1, w)}[form]
    xs = inputs()
    out = simplicial_attention(*xs, window=window, causal=causal, batch=batch)
    ref = reference(*xs, window=window, causal=causal, batch=batch)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("w1,w2", [(0, 0), (1, 3), (2, 1), (4, 10**6)])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("batch", [None, BATCH])
def test_uniform_logits_average_over_the_window(w1, w2, causal, batch):
    # q = 0: every pair of the support has weight 1 / (|J(i)| |L(i)|), so with v1_j = j and
    # v2 = 1 the output is the mean position of J(i), with v1 = 1 and v2_l = l that of L(i);
    # the ranges are written out by hand from the graph bounds
    n = 11
    graph = [0] * n if batch is None else batch.tolist()
    pos = torch.arange(n, dtype=torch.float64).view(n, 1, 1)
    z, one = torch.zeros(n, 1, 1, dtype=torch.float64), torch.ones(n, 1, 1, dtype=torch.float64)
    out1 = simplicial_attention(z, z, z, pos, one, window=(w1, w2), causal=causal, batch=batch)
    out2 = simplicial_attention(z, z, z, one, pos, window=(w1, w2), causal=causal, batch=batch)
    for i in range(n):
        first = graph.index(graph[i])
        last = n - 1 - graph[::-1].index(graph[i])
        for w, out in ((w1, out1), (w2, out2)):
            keys = range(max(first, i - w), (i if causal else min(last, i + w)) + 1)
            assert out[i, 0, 0].item() == pytest.approx(sum(keys) / len(keys), abs=1e-12)


def test_wide_windows_are_clamped_to_the_sequence():
    # a window of 10**9 is all pairs: the same output as window=None (and as w = N - 1), computed
    # with the padding of w = N - 1 -- block_elements of one query row of that clamped window
    # (2 heads x 21 keys) is enough; unclamped, one row would need 2 x (2 * 10**9 + 1) logits
    xs = inputs()
    for causal in (False, True):
        ref = simplicial_attention(*xs, causal=causal)
        for window in ((10**9, 10**9), (10, 10**9)):
            out = simplicial_attention(*xs, window=window, causal=causal, block_elements=2 * 21)
            torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    out = simplicial_attention(*xs, window=(10**9, 3), batch=BATCH, block_elements=2 * 13)
    torch.testing.assert_close(out, reference(*xs, window=(6, 3), batch=BATCH),
                               atol=1e-12, rtol=1e-12)  # clamped to the longest graph, 7 items


@pytest.mark.parametrize("w1", [0, 1, 3, 10])
@pytest.mark.parametrize("causal", [False, True])
def test_window_one_hop_reduction_is_attention_with_the_same_window(w1, causal):
    # k2 = 1, v2 = c: the l-sum is uniform, so window (w1, w2) gives c * attention over
    # |i - j| <= w1 -- the same window convention as affgraph's attention and SDPA with that mask
    from affgraph.functional import attention

    q, k1, _, v1, _ = inputs()
    k2, v2 = torch.ones_like(q), torch.full_like(v1, 2.5)
    out = simplicial_attention(q, k1, k2, v1, v2, window=(w1, 2), causal=causal)
    mask = pair_mask(11, w1, causal)
    sdpa = F.scaled_dot_product_attention(q.transpose(0, 1), k1.transpose(0, 1),
                                          v1.transpose(0, 1), attn_mask=mask)
    torch.testing.assert_close(out, 2.5 * sdpa.transpose(0, 1), atol=1e-12, rtol=1e-12)
    ours = attention(q, k1, v1, window=w1, causal=causal)
    torch.testing.assert_close(out, 2.5 * ours, atol=1e-12, rtol=1e-12)

def test_single_head_2d_and_float32():
    xs = inputs(h=1, dtype=torch.float32)
    out = simplicial_attention(*(x[:, 0] for x in xs), window=(3, 2))
    assert out.shape == (11, 3)
    ref = reference(*(x.double() for x in xs), window=(3, 2))[:, 0].float()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_one_hop_reduction_to_standard_attention():
    # k2 = 0 and v2 = c: logits reduce to nothing on l, softmax over (j, l) = softmax over j
    # times uniform over l, so the output is c * attention(q, k1, v1) -- here with k2 = 1 so the
    # trilinear form is the dot product <q_i, k1_j>.
    q, k1, _, v1, _ = inputs()
    k2 = torch.ones_like(q)
    v2 = torch.full_like(v1, 2.5)
    out = simplicial_attention(q, k1, k2, v1, v2)
    sdpa = F.scaled_dot_product_attention(q.transpose(0, 1), k1.transpose(0, 1), v1.transpose(0, 1))
    torch.testing.assert_close(out, 2.5 * sdpa.transpose(0, 1))
    out_c = simplicial_attention(q, k1, k2, v1, v2, causal=True)
    sdpa_c = F.scaled_dot_product_attention(q.transpose(0, 1), k1.transpose(0, 1),
                                            v1.transpose(0, 1), is_causal=True)
    torch.testing.assert_close(out_c, 2.5 * sdpa_c.transpose(0, 1))


def test_hand_computed_two_tokens():
    # N = 2, D = 1: logits a_ijl = q_i k1_j k2_l; query 0 with causal sees only (0, 0)
    q = torch.tensor([[[1.0]], [[2.0]]], dtype=torch.float64)
    k1 = torch.tensor([[[1.0]], [[0.5]]], dtype=torch.float64)
    k2 = torch.tensor([[[1.0]], [[-1.0]]], dtype=torch.float64)
    v1 = torch.tensor([[[3.0]], [[5.0]]], dtype=torch.float64)
    v2 = torch.tensor([[[2.0]], [[7.0]]], dtype=torch.float64)
    out = simplicial_attention(q, k1, k2, v1, v2, causal=True)
    # query 1: pairs (0,0),(0,1),(1,0),(1,1) with logits 2, -2, 1, -1
    w = torch.tensor([2.0, -2.0, 1.0, -1.0], dtype=torch.float64).exp()
    vals = torch.tensor([3 * 2, 3 * 7, 5 * 2, 5 * 7], dtype=torch.float64)
    assert out[0, 0, 0].item() == pytest.approx(6.0)
    assert out[1, 0, 0].item() == pytest.approx(float((w * vals).sum() / w.sum()))


@pytest.mark.parametrize("kw", [dict(), dict(causal=True), dict(window=(3, 2), causal=True),
                                dict(batch=BATCH, window=(2, 3))])
@pytest.mark.parametrize("block_elements", [8, 1 << 21])  # blocked kernel / dense path
def test_gradcheck(kw, block_elements):
    xs = inputs(n=7 if "batch" not in kw else 11, h=1, d=3, dv=2, grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: simplicial_attention(*t, block_elements=block_elements, **kw), xs)


def test_gradients_match_reference_autograd():
    xs = inputs(grad=True)
    out = simplicial_attention(*xs, window=(3, 4), batch=BATCH, block_elements=16)
    grads = torch.autograd.grad(out.pow(2).sum(), xs)
    xr = [x.detach().clone().requires_grad_() for x in xs]
    ref = reference(*xr, window=(3, 4), batch=BATCH)
    grads_ref = torch.autograd.grad(ref.pow(2).sum(), xr)
    for g, gr in zip(grads, grads_ref):
        torch.testing.assert_close(g, gr, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("block_elements", [1 << 21, 22])
def test_smallest_supports_and_empty_graphs_are_finite(block_elements):
    # window (0, 0), or a graph of one node: the only pair of i is (i, i), so o_i = v1_i * v2_i
    xs = inputs(grad=True)
    single = torch.arange(11)
    for kw in (dict(window=(0, 0)), dict(window=(0, 0), causal=True), dict(batch=single),
               dict(batch=single, causal=True)):
        out = simplicial_attention(*xs, block_elements=block_elements, **kw)
        torch.testing.assert_close(out, xs[3] * xs[4], atol=1e-12, rtol=1e-12)
    # graph ids with gaps (graphs without nodes) and single-node graphs
    gap = torch.tensor([0, 0, 0, 2, 4, 4, 4, 4, 4, 7, 7])
    for kw in (dict(batch=gap), dict(batch=gap, causal=True), dict(batch=gap, window=(2, 3))):
        out = simplicial_attention(*xs, block_elements=block_elements, **kw)
        torch.testing.assert_close(out, reference(*(x.detach() for x in xs), **kw),
                                   atol=1e-12, rtol=1e-12)
        grads = torch.autograd.grad(out.square().sum(), xs)
        assert all(bool(torch.isfinite(g).all()) for g in grads)


def test_deterministic_and_no_nan_for_large_logits():
    xs = inputs(dtype=torch.float32)
    xs[0] = xs[0] * 1e3  # huge logits: the online softmax must not overflow
    a = simplicial_attention(*xs, window=(2, 2), block_elements=12)
    b = simplicial_attention(*xs, window=(2, 2), block_elements=12)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)


def test_matches_simplicial_attention_package():
    # lucidrains' simplicial-attention, its PyTorch path: [b, h, n, d], scale D^-1/2,
    # all pairs or causal j, l <= i -- the same conventions as ours.
    from simplicial_attention import naive_two_simplicial_attend

    xs = inputs(dtype=torch.float32)
    for causal in (False, True):
        ours = simplicial_attention(*xs, causal=causal)
        q, k1, k2, v1, v2 = (x.permute(1, 0, 2)[None] for x in xs)
        theirs = naive_two_simplicial_attend(q, (k1, k2), (v1, v2), causal=causal)
        torch.testing.assert_close(ours, theirs[0].permute(1, 0, 2), atol=1e-5, rtol=1e-5)


def test_bad_input():
    xs = inputs()
    with pytest.raises(ValueError, match="shape"):
        simplicial_attention(xs[0], xs[1][:5], *xs[2:])
    with pytest.raises(ValueError, match="v1 and v2"):
        simplicial_attention(*xs[:4], xs[4][..., :2])
    bad = xs[0].clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        simplicial_attention(bad, *xs[1:])
    with pytest.raises(ValueError, match="empty"):
        simplicial_attention(*(x[:0] for x in xs))
    with pytest.raises(ValueError, match="w1 must be >= 0"):
        simplicial_attention(*xs, window=(-1, 2))
    with pytest.raises(TypeError, match="w2 must be an int"):
        simplicial_attention(*xs, window=(1, 2.0))
    with pytest.raises(TypeError, match="pair"):
        simplicial_attention(*xs, window=3)
    with pytest.raises(ValueError, match="sorted"):
        simplicial_attention(*xs, batch=BATCH.flip(0))
    with pytest.raises(TypeError, match="dtype"):
        simplicial_attention(xs[0].float(), *xs[1:])
    with pytest.raises(ValueError, match="cannot fit"):
        simplicial_attention(*xs, block_elements=10)  # one row of all pairs: 2 heads x 11 keys


@pytest.mark.parametrize("kw", [dict(window=(9, 4), causal=True), dict(window=(4, 9)),
                                dict(window=(6, 3), batch=torch.tensor([0] * 13 + [1] * 27)),
                                dict(window=(5, 5), causal=True,
                                     batch=torch.tensor([0] * 30 + [1] * 10))])
@pytest.mark.parametrize("block_elements", [40, 400, None])
def test_windows_many_blocks_and_chunks(kw, block_elements):
    # 40 queries: with small blocks most blocks are interior (no mask) and the keys j come in
    # several chunks (online softmax); both the forward and the gradients against the oracle
    xs = inputs(n=40, h=2, d=5, dv=3, grad=True)
    out = simplicial_attention(*xs, block_elements=block_elements, **kw)
    xr = [x.detach().clone().requires_grad_() for x in xs]
    ref = reference(*xr, **kw)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=out.dtype)
    grads = torch.autograd.grad(out, xs, g)
    for a, b in zip(grads, torch.autograd.grad(ref, xr, g)):
        torch.testing.assert_close(a, b, atol=1e-11, rtol=1e-10)
    assert all(torch.equal(a, b) for a, b in zip(grads, torch.autograd.grad(
        simplicial_attention(*xs, block_elements=block_elements, **kw), xs, g)))  # deterministic


@pytest.mark.parametrize("kw", [dict(window=(32, 8), causal=True), dict(window=(8, 16)), dict()])
def test_bfloat16_is_computed_in_float32(kw):
    # half-precision inputs: matmuls, softmax and accumulators in float32, so the output is the
    # float64 result of the same (rounded) inputs up to the final bfloat16 rounding (half an ulp,
    # <= 2^-8 relative); bfloat16 accumulation misses this by about 2x
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(96, 2, 16, generator=g).bfloat16() for _ in range(5)]
    out = simplicial_attention(*xs, **kw)
    assert out.dtype == torch.bfloat16
    ref = reference(*(x.double() for x in xs), **kw)
    err = (out.double() - ref).abs()
    assert bool((err <= 2.0 ** -8 * ref.abs() + 1e-5).all()), float(err.max())
    xg = [x.detach().requires_grad_() for x in xs]
    grads = torch.autograd.grad(simplicial_attention(*xg, **kw).float().sum(), xg)
    xr = [x.double().requires_grad_() for x in xs]
    grads_ref = torch.autograd.grad(reference(*xr, **kw).sum(), xr)
    for a, b in zip(grads, grads_ref):
        assert a.dtype == torch.bfloat16
        torch.testing.assert_close(a.double(), b, atol=2e-2, rtol=1e-2)
