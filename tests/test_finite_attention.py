"""Finite input gives a finite, right attention output, however large q and k are.

Logits of q, k of magnitude 1e19 (float32, bfloat16) or 300 (float16) overflow the input
dtype; the softmax is still a convex combination of v. Every path (SDPA complete / causal /
batched / window, CSR, multi-hop, edge features, return_attention) is checked against the
explicit float64 softmax and its float64 gradients.
"""
import math

import pytest
import torch

from affgraph.affinity import finite_dtype
from affgraph.attention import attention, attention_diffusion, compute_dtype

F64 = torch.float64
N, H, D, DV = 7, 2, 16, 3
#: magnitude of q and k whose logits overflow each dtype (and whose products do not)
HUGE = {torch.float32: 1e19, torch.bfloat16: 1e19, torch.float16: 300.0}
#: tolerance of an output rounded to the dtype (values are O(1))
TOL = {torch.float32: 1e-6, torch.bfloat16: 1e-2, torch.float16: 2e-3}
DTYPES = list(HUGE)
BATCH = torch.tensor([0, 0, 0, 1, 1, 1, 1])


def huge_qkv(dtype, tied=False, seed=0):
    """Positive q, k (every logit overflows) of the dtype's huge magnitude, O(1) v. ``tied``:
    powers of two, every key the same, so every logit of a row is the same sum of powers of
    two, exact in any order, and the softmax is uniform."""
    g = torch.Generator().manual_seed(seed)
    mag = HUGE[dtype]
    q = (torch.rand(N, H, D, generator=g, dtype=F64) + 1) * mag
    k = (torch.rand(N, H, D, generator=g, dtype=F64) + 1) * mag
    if tied:
        e = round(math.log2(mag))
        q, k = (2.0 ** (e + torch.randint(0, 2, (m, H, D), generator=g)).to(F64)
                for m in (N, 1))
        k = k.expand(N, H, D).clone()
    v = torch.randn(N, H, DV, generator=g, dtype=F64)
    return tuple(t.to(dtype) for t in (q, k, v))


def mask_of(batch=None, causal=False, window=None, edge_index=None):
    if edge_index is not None:
        m = torch.zeros(N, N, dtype=torch.bool)
        m[edge_index[1], edge_index[0]] = True
        return m
    i = torch.arange(N)
    m = torch.ones(N, N, dtype=torch.bool)
    if batch is not None:
        m &= batch[:, None] == batch[None, :]
    if causal:
        m &= i[None, :] <= i[:, None]
    if window is not None:
        m &= (i[:, None] - i[None, :]).abs() <= window
    return m


def ref_weights(q, k, mask, e=None):
    """Float64 softmax weights (H, N, M); ``e`` dense edge features [N, M, H, D]."""
    qd, kd = q.double(), k.double()
    if e is None:
        att = torch.einsum("nhd,mhd->hnm", qd, kd)
    else:
        att = torch.einsum("nhd,nmhd->hnm", qd, kd[None] + e.double())
    att = (att / math.sqrt(q.size(-1))).masked_fill(~mask, -math.inf)
    return torch.softmax(att, dim=-1).nan_to_num(0.0)


def ref_attention(q, k, v, mask, e=None):
    s = ref_weights(q, k, mask, e)
    out = torch.einsum("hnm,mhc->nhc", s, v.double())
    if e is not None:
        out = out + torch.einsum("hnm,nmhc->nhc", s, e.double())
    return out


def graph():
    """Unique edges with a self-loop at every node, in no particular order."""
    g = torch.Generator().manual_seed(3)
    keep = torch.rand(N, N, generator=g) < 0.5
    keep |= torch.eye(N, dtype=torch.bool)
    dst, src = keep.nonzero(as_tuple=True)
    perm = torch.randperm(dst.numel(), generator=g)
    return torch.stack([src[perm], dst[perm]])


def check_close(out, ref, dtype, factor=1.0):
    assert out.dtype == dtype
    assert torch.isfinite(out).all()
    err = (out.double() - ref).abs().max().item()
    assert err <= factor * TOL[dtype] * max(1.0, ref.abs().max().item()), err
    return err


IMPLICIT = [dict(), dict(causal=True), dict(batch=BATCH), dict(batch=BATCH, causal=True),
            dict(window=2), dict(window=1, causal=True)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
@pytest.mark.parametrize("kw", IMPLICIT + [dict(edge_index=graph())],
                         ids=["complete", "causal", "batch", "batch-causal", "window",
                              "window-causal", "csr"])
def test_huge_logits_one_hop(dtype, tied, kw):
    q, k, v = huge_qkv(dtype, tied)
    ref = ref_attention(q, k, v, mask_of(**kw))
    check_close(attention(q, k, v, **kw), ref, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kw", [dict(), dict(window=2), dict(edge_index=graph())],
                         ids=["complete", "window", "csr"])
def test_huge_logits_return_attention(dtype, kw):
    q, k, v = huge_qkv(dtype, tied=True)
    mask = mask_of(**kw)
    out, (ei, alpha) = attention(q, k, v, return_attention=True, **kw)
    check_close(out, ref_attention(q, k, v, mask), dtype)
    s = ref_weights(q, k, mask)  # (H, N, M)
    check_close(alpha, s[:, ei[1], ei[0]].t(), dtype)


@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
@pytest.mark.parametrize("kw", [dict(), dict(window=2), dict(batch=BATCH),
                                dict(edge_index=graph())],
                         ids=["complete", "window", "batch", "csr"])
def test_huge_logits_gradients(tied, kw):
    """Gradients of q, k, v are finite and equal the float64 reference's: the gradients of
    q and k to the rounding of their 1e19-sized terms (tied keys make dq a sum of such terms
    that cancels to 0 exactly only in exact arithmetic), that of v to 1e-5."""
    q, k, v = (t.requires_grad_() for t in huge_qkv(torch.float32, tied))
    w = torch.randn(N, H, DV, generator=torch.Generator().manual_seed(1))
    (attention(q, k, v, **kw) * w).sum().backward()
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    (ref_attention(q64, k64, v64, mask_of(**kw)) * w.double()).sum().backward()
    for got, want, atol in ((q.grad, q64.grad, 1e-13 * HUGE[torch.float32]),
                            (k.grad, k64.grad, 1e-13 * HUGE[torch.float32]),
                            (v.grad, v64.grad, 1e-5)):
        assert torch.isfinite(got).all()
        err = (got.double() - want).abs().max().item()
        assert err <= atol + 1e-6 * want.abs().max().item(), err


def ppr_series(s, v, hops, alpha=0.1):
    """Float64 MAGNA series sum_k theta_k S^k V per head (tail mass on k = K), or the closed
    form alpha (I - (1 - alpha) S)^-1 V for hops = inf."""
    v = v.double().transpose(0, 1)  # (H, N, C)
    if hops == math.inf:
        eye = torch.eye(s.size(-1), dtype=F64)
        out = alpha * torch.linalg.solve(eye - (1 - alpha) * s, v)
    else:
        out, x = torch.zeros_like(v), v
        for k in range(hops + 1):
            theta = alpha * (1 - alpha) ** k if k < hops else (1 - alpha) ** hops
            out = out + theta * x
            x = s @ x
    return out.transpose(0, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("hops", [3, math.inf], ids=["K3", "inf"])
@pytest.mark.parametrize("kw", [dict(), dict(causal=True), dict(window=2),
                                dict(edge_index=graph())],
                         ids=["complete", "causal", "window", "csr"])
def test_huge_logits_multi_hop(dtype, hops, kw):
    q, k, v = huge_qkv(dtype, tied=True)
    s = ref_weights(q, k, mask_of(**kw))
    out = attention_diffusion(q, k, v, hops=hops, coeffs="ppr", **kw)
    # the closed form is solved to a residual of tol = 1e-6 (or the dtype's rounding) in a
    # system of condition number up to (1 + 0.9) / (1 - 0.9) = 19
    check_close(out, ppr_series(s, v, hops), dtype, factor=1.0 if hops == 3 else 20.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_huge_logits_power_hops_and_attention_weights(dtype):
    """hops=2 of 'power' is S^2 V; its returned weights are S."""
    ei = graph()
    q, k, v = huge_qkv(dtype, tied=True)
    s = ref_weights(q, k, mask_of(edge_index=ei))
    out, (ei2, alpha) = attention_diffusion(q, k, v, ei, hops=2, return_attention=True)
    want = torch.einsum("hnm,hmk,khc->nhc", s, s, v.double())
    check_close(out, want, dtype)
    check_close(alpha, s[:, ei2[1], ei2[0]].t(), dtype)


@pytest.mark.parametrize("hops", [1, 2], ids=["K1", "K2"])
def test_huge_logits_edge_features(hops):
    """Edge features of magnitude 1e19 enter the logits (and values) of the CSR path."""
    ei = graph()
    q, k, v = huge_qkv(torch.float32, tied=True)
    v = torch.randn(N, H, D, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(4)
    e = torch.rand(ei.size(1), H, D, generator=g) * 1e19  # logits of q.(k + e) overflow
    dense = torch.zeros(N, N, H, D, dtype=F64)
    mask = mask_of(edge_index=ei)
    dense[ei[1], ei[0]] = e.double()
    s = ref_weights(q, k, mask, dense)
    got = attention_diffusion(q, k, v, ei, edge_attr=e, hops=hops, coeffs="power")
    first = torch.einsum("hnm,mhc->nhc", s, v.double()) + \
        torch.einsum("hnm,nmhc->nhc", s, dense)
    want = first if hops == 1 else torch.einsum("hnm,mhc->nhc", s, first)
    assert torch.isfinite(got).all()
    rel = ((got.double() - want).abs().max() / want.abs().max()).item()
    assert rel <= 1e-6, rel


def test_compute_dtype_is_the_input_dtype_for_ordinary_inputs():
    """Only logits that could overflow change the dtype (no cost for ordinary inputs)."""
    for dtype in DTYPES:
        q, k, v = (torch.randn(N, H, D).to(dtype) for _ in range(3))
        assert compute_dtype(q, k, v) == dtype
    q, k, v = huge_qkv(torch.float32)
    assert compute_dtype(q, k, v) == F64
    q, k, v = huge_qkv(torch.float16)
    assert compute_dtype(q, k, v) == torch.float32


def test_float64_overflow_is_a_clear_error():
    q = torch.full((N, H, D), 1e160, dtype=F64)
    with pytest.raises(ValueError, match="logits .*overflows float64"):
        attention(q, q, q)
    with pytest.raises(ValueError, match="overflows float64"):
        finite_dtype(F64, math.inf, "x")
