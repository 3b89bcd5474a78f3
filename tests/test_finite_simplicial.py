"""2-simplicial attention stays finite and right when its trilinear logits overflow the dtype.

q, k1, k2 of magnitude 1e15 give logits of about 1e45 (beyond float32 and bfloat16); the
output is still a convex combination of v1_j * v2_l. Every path (blocked window kernel,
causal, dense all pairs, gathered all pairs of unequal graphs) is checked against the explicit
float64 softmax over the pairs (j, l), outputs and gradients.
"""
import math

import pytest
import torch

from affgraph.simplicial import simplicial_attention

F64 = torch.float64
N, H, D, DV = 9, 2, 16, 3  # sqrt(D) a power of two: exact scaling
MAG = 1e15
TOL = {torch.float32: 1e-6, torch.bfloat16: 1e-2}
BATCH = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1])


def inputs(dtype, tied=False, seed=0):
    """Positive q, k1, k2 of magnitude 1e15 (every logit overflows float32), O(1) values.
    ``tied``: powers of two about 2^50, every key the same, so every logit of a row is the
    same sum of powers of two, exact in any order (a uniform softmax)."""
    g = torch.Generator().manual_seed(seed)
    q, k1, k2 = ((torch.rand(N, H, D, generator=g, dtype=F64) + 1) * MAG for _ in range(3))
    if tied:
        q, k1, k2 = (2.0 ** (50 + torch.randint(0, 3, (m, H, D), generator=g)).to(F64)
                     for m in (N, 1, 1))
        k1, k2 = (k.expand(N, H, D).clone() for k in (k1, k2))
    v1, v2 = (torch.randn(N, H, DV, generator=g, dtype=F64) for _ in range(2))
    return [t.to(dtype) for t in (q, k1, k2, v1, v2)]


def pair_mask(window, causal, batch):
    """[N, N] masks of j and of l per query, built from the definition."""
    i = torch.arange(N)
    same = torch.ones(N, N, dtype=torch.bool) if batch is None else \
        batch[:, None] == batch[None, :]
    masks = []
    for w in (None, None) if window is None else window:
        m = same.clone()
        if w is not None:
            m &= (i[:, None] - i[None, :]).abs() <= w
        if causal:
            m &= i[None, :] <= i[:, None]
        masks.append(m)
    return masks


def reference(q, k1, k2, v1, v2, window=None, causal=False, batch=None):
    q, k1, k2, v1, v2 = (t.double() for t in (q, k1, k2, v1, v2))
    m1, m2 = pair_mask(window, causal, batch)
    a = torch.einsum("ihd,jhd,lhd->hijl", q, k1, k2) / math.sqrt(q.size(-1))
    mask = m1[:, :, None] & m2[:, None, :]
    a = a.masked_fill(~mask, -math.inf)
    s = torch.softmax(a.flatten(2), -1).view_as(a)
    return torch.einsum("hijl,jhc,lhc->ihc", s, v1, v2)


CASES = [dict(window=(2, 1)), dict(window=(1, 3), causal=True), dict(),
         dict(causal=True), dict(batch=BATCH), dict(window=(2, 2), batch=BATCH)]
IDS = ["window", "window-causal", "all-pairs", "causal", "batch", "window-batch"]


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_huge_logits_output(dtype, tied, kw):
    x = inputs(dtype, tied)
    out = simplicial_attention(*x, **kw)
    want = reference(*x, **kw)
    assert out.dtype == dtype and torch.isfinite(out).all()
    err = (out.double() - want).abs().max().item()
    assert err <= TOL[dtype] * max(1.0, want.abs().max().item()), err


@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
@pytest.mark.parametrize("kw", CASES, ids=IDS)
def test_huge_logits_gradients(tied, kw):
    """Gradients are finite and equal the float64 reference's: those of q, k1, k2 to the
    rounding of their 1e15 * 1e15-sized terms, those of v1, v2 to 1e-5."""
    x = [t.requires_grad_() for t in inputs(torch.float32, tied)]
    w = torch.randn(N, H, DV, generator=torch.Generator().manual_seed(1))
    (simplicial_attention(*x, **kw) * w).sum().backward()
    x64 = [t.detach().double().requires_grad_() for t in x]
    (reference(*x64, **kw) * w.double()).sum().backward()
    for idx, (got, want) in enumerate(zip(x, x64)):
        assert torch.isfinite(got.grad).all()
        atol = 1e-13 * MAG * MAG if idx < 3 else 1e-5
        err = (got.grad.double() - want.grad).abs().max().item()
        assert err <= atol + 1e-5 * want.grad.abs().max().item(), (idx, err)


def test_float64_overflow_is_a_clear_error():
    x = [torch.full((N, H, D), 1e110, dtype=F64) for _ in range(5)]
    with pytest.raises(ValueError, match="2-simplicial logits"):
        simplicial_attention(*x, window=(1, 1))


def test_output_overflow_is_a_clear_error():
    """v1 * v2 beyond float32: the right output is not representable."""
    x = inputs(torch.float32)
    x[3], x[4] = (torch.full((N, H, DV), 1e30) for _ in range(2))
    with pytest.raises(ValueError, match="overflows torch.float32"):
        simplicial_attention(*x, window=(1, 1))
