import math

import pytest
import torch
import torch.nn.functional as F

from affgraph.attention import attention, attention_diffusion
from affgraph.functional import attention as public_attention

F64 = torch.float64


def qkv(n, h=2, d=4, dv=3, m=None, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = n if m is None else m
    return (torch.randn(n, h, d, generator=g, dtype=dtype),
            torch.randn(m, h, d, generator=g, dtype=dtype),
            torch.randn(m, h, dv, generator=g, dtype=dtype))


def loop_mask(n, batch=None, causal=False, window=None):
    """Oracle mask built pair by pair (independent of affgraph.supports)."""
    b = [0] * n if batch is None else batch.tolist()
    m = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            ok = b[i] == b[j]
            if causal:
                ok = ok and j <= i
            if window is not None:
                ok = ok and abs(i - j) <= window
            m[i, j] = ok
    return m


def explicit_softmax(q, k, mask):
    """nanoGPT-style explicit attention matrix in float64, (H, N, M); empty rows are 0."""
    att = torch.einsum("nhd,mhd->hnm", q.double(), k.double()) / math.sqrt(q.size(-1))
    att = att.masked_fill(~mask, -math.inf)
    return torch.softmax(att, dim=-1).nan_to_num(0.0)


def explicit(q, k, v, mask):
    return torch.einsum("hnm,mhd->nhd", explicit_softmax(q, k, mask), v.double())


def edge_mask(ei, n, m):
    mask = torch.zeros(n, m, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    return mask


def random_edges(n, m, e, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.stack([torch.randint(0, m, (e,), generator=g),
                      torch.randint(0, n, (e,), generator=g)])
    return torch.unique(ei, dim=1)  # the dense oracle cannot hold duplicate edges


BATCH = torch.tensor([0] * 9 + [1] * 2 + [2] * 14)


# -------------------------------------------------------------------------- implicit supports
@pytest.mark.parametrize("causal", [False, True])
def test_complete_and_causal_match_sdpa_float32(causal):
    q, k, v = qkv(64, h=4, d=16, dv=16, dtype=torch.float32)
    ref = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
                                         is_causal=causal).transpose(0, 1)
    torch.testing.assert_close(attention(q, k, v, causal=causal), ref, atol=1e-5, rtol=1e-5)
    assert public_attention is attention


@pytest.mark.parametrize("kw", [dict(), dict(causal=True), dict(window=2),
                                dict(window=3, causal=True),
                                dict(window=0), dict(window=40)])
@pytest.mark.parametrize("batch", [None, BATCH])
def test_implicit_supports_match_explicit_float64(kw, batch):
    q, k, v = qkv(25)
    out = attention(q, k, v, batch=batch, **kw)
    ref = explicit(q, k, v, loop_mask(25, batch, **kw))
    torch.testing.assert_close(out, ref)


def test_long_window_crosses_blocks():
    q, k, v = qkv(150, h=1, d=3, dv=2, seed=3)
    for causal in (False, True):
        ref = explicit(q, k, v, loop_mask(150, causal=causal, window=35))
        torch.testing.assert_close(attention(q, k, v, window=35, causal=causal), ref)


def test_padded_batch_matches_sdpa_per_graph():
    q, k, v = qkv(25, dtype=torch.float32)
    out = attention(q, k, v, batch=BATCH, causal=True)
    for g in range(3):
        idx = (BATCH == g).nonzero().view(-1)
        ref = F.scaled_dot_product_attention(q[idx].transpose(0, 1), k[idx].transpose(0, 1),
                                             v[idx].transpose(0, 1), is_causal=True)
        torch.testing.assert_close(out[idx], ref.transpose(0, 1), atol=1e-5, rtol=1e-5)


def test_complete_bipartite_without_batch():
    q, k, v = qkv(5, m=8)
    torch.testing.assert_close(attention(q, k, v),
                               explicit(q, k, v, torch.ones(5, 8, dtype=torch.bool)))


# -------------------------------------------------------------------------- explicit supports
@pytest.mark.parametrize("fixed_degree", [False, True])
def test_edges_match_explicit_with_isolated_nodes(fixed_degree):
    n = 12
    if fixed_degree:  # every target has exactly 3 distinct sources
        g = torch.Generator().manual_seed(1)
        src = torch.stack([torch.randperm(n, generator=g)[:3] for _ in range(n)]).view(-1)
        ei = torch.stack([src, torch.arange(n).repeat_interleave(3)])
        ei = ei[:, torch.randperm(ei.size(1), generator=g)]  # unsorted input order
    else:
        ei = random_edges(n, n, 30)
        ei = ei[:, ei[1] < 10]  # targets 10, 11 have no incoming edge
    q, k, v = qkv(n)
    out, (ei_out, alpha) = attention(q, k, v, ei, return_attention=True)
    mask = edge_mask(ei, n, n)
    torch.testing.assert_close(out, explicit(q, k, v, mask))
    assert torch.equal(ei_out, ei)
    torch.testing.assert_close(alpha, explicit_softmax(q, k, mask)[:, ei[1], ei[0]].T)
    if not fixed_degree:
        assert torch.equal(out[10:], torch.zeros_like(out[10:]))


def test_bipartite_edges():
    q, k, v = qkv(6, m=9)
    ei = random_edges(6, 9, 25, seed=2)
    torch.testing.assert_close(attention(q, k, v, ei), explicit(q, k, v, edge_mask(ei, 6, 9)))


def test_duplicate_edges_count_twice():
    q, k, v = qkv(3, h=1)
    ei = torch.tensor([[0, 0, 1], [2, 2, 2]])
    s = (q[2, 0] @ k[:2, 0].T).double() / 2.0
    w = torch.softmax(torch.stack([s[0], s[0], s[1]]), 0)
    ref = w[0] * v[0, 0] + w[1] * v[0, 0] + w[2] * v[1, 0]
    torch.testing.assert_close(attention(q, k, v, ei)[2, 0], ref)


def test_return_attention_for_implicit_support_materialises_edges():
    q, k, v = qkv(10)
    out, (ei, alpha) = attention(q, k, v, window=2, causal=True, return_attention=True)
    assert ei.size(1) == 10 * 3 - 3
    torch.testing.assert_close(out, attention(q, k, v, window=2, causal=True))
    mask = loop_mask(10, causal=True, window=2)
    torch.testing.assert_close(alpha, explicit_softmax(q, k, mask)[:, ei[1], ei[0]].T)


@pytest.mark.parametrize("kw", [dict(edge_index=torch.tensor([[0, 1, 2, 3, 3], [1, 1, 0, 2, 4]])),
                                dict(window=1),
                                dict(causal=True, batch=torch.tensor([0, 0, 0, 1, 1])),
                                dict()])
def test_gradcheck(kw):
    q, k, v = qkv(5, h=2, d=3, dv=2)
    q.requires_grad_(), k.requires_grad_(), v.requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: attention(a, b, c, **kw), (q, k, v),
                                    fast_mode=True)


def test_gradcheck_through_returned_weights():
    q, k, v = qkv(5, h=2, d=3, dv=2)
    q.requires_grad_(), k.requires_grad_()
    ei = torch.tensor([[0, 1, 2, 3, 3, 4], [1, 1, 0, 2, 4, 4]])
    assert torch.autograd.gradcheck(
        lambda a, b: attention(a, b, v, ei, return_attention=True)[1][1], (q, k), fast_mode=True)


def test_half_precision_edges_and_dropout_determinism():
    q, k, v = qkv(12, dtype=torch.bfloat16)
    ei = random_edges(12, 12, 40)
    out = attention(q, k, v, ei)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), explicit(q, k, v, edge_mask(ei, 12, 12)),
                               atol=2e-2, rtol=2e-2)
    q, k, v = qkv(12)
    torch.manual_seed(5)
    a = attention(q, k, v, ei, dropout_p=0.5)
    torch.manual_seed(5)
    b = attention(q, k, v, ei, dropout_p=0.5)
    assert torch.equal(a, b) and not torch.allclose(a, attention(q, k, v, ei))


# -------------------------------------------------------------------------- bad input / edge cases
@pytest.mark.parametrize("args,kw", [
    (qkv(4, d=4)[:2] + (torch.randn(5, 2, 3, dtype=F64),), {}),          # k/v length
    ((torch.randn(4, 2, 4), torch.randn(4, 3, 4), torch.randn(4, 3, 4)), {}),  # heads
    ((torch.randn(4, 2, 4), torch.randn(4, 2, 5), torch.randn(4, 2, 4)), {}),  # widths
    ((torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 8)), {}),     # not [N, H, D]
    ((torch.full((4, 1, 2), float("nan")), torch.randn(4, 1, 2), torch.randn(4, 1, 2)), {}),
    ((torch.randn(4, 1, 2), torch.randn(4, 1, 2), torch.tensor([[[float("inf")]]] * 4)), {}),
    (qkv(4), dict(edge_index=torch.tensor([[0, 4], [1, 1]]))),           # out of range
    (qkv(4), dict(edge_index=torch.tensor([[0, 1], [1, 1]]), causal=True)),
    (qkv(4, m=5), dict(causal=True)),                                    # bipartite + causal
    (qkv(4), dict(window=-2)),
    (qkv(4), dict(dropout_p=1.0)),
    (qkv(4), dict(batch=torch.tensor([1, 0, 0, 0]))),
])
def test_bad_input(args, kw):
    with pytest.raises(ValueError):
        attention(*args, **kw)


def test_type_error_and_empty_graphs():
    with pytest.raises(TypeError):
        attention([[1.0]], torch.randn(1, 1, 1), torch.randn(1, 1, 1))
    q, k, v = qkv(0)
    assert attention(q, k, v).shape == (0, 2, 3)
    assert attention(q, k, v, torch.empty(2, 0, dtype=torch.long)).shape == (0, 2, 3)
    q, k, v = qkv(4)
    out = attention(q, k, v, torch.empty(2, 0, dtype=torch.long))
    assert torch.equal(out, torch.zeros(4, 2, 3, dtype=F64))


# ---------------------------------------------------------------------- empty rows: finite zeros
GAP = torch.tensor([0, 0, 0, 2, 2, 2, 2])  # graph 1 of the batch has no node


@pytest.mark.parametrize("kw", [dict(), dict(causal=True), dict(window=1)])
def test_batch_with_an_empty_graph_is_finite_with_finite_gradients(kw):
    q, k, v = (t.requires_grad_() for t in qkv(7))
    out = attention(q, k, v, batch=GAP, **kw)
    ref = explicit(q.detach(), k.detach(), v.detach(), loop_mask(7, GAP, kw.get("causal", False),
                                                                 kw.get("window")))
    torch.testing.assert_close(out, ref)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    assert all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, F64])
def test_nodes_without_in_edges_give_zeros_and_finite_gradients(dtype):
    n = 6
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])  # nodes 4, 5 have no incoming edge
    for edges in (ei, torch.empty(2, 0, dtype=torch.long)):
        q, k, v = (t.requires_grad_() for t in qkv(n, dtype=dtype))
        out, (_, alpha) = attention(q, k, v, edges, return_attention=True)
        empty = torch.ones(n, dtype=torch.bool)
        empty[edges[1]] = False
        assert torch.equal(out[empty], torch.zeros_like(out[empty]))
        assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(alpha).all())
        dq, dk, dv = torch.autograd.grad(out.float().square().sum() + out.float().sum(), (q, k, v),
                                         allow_unused=True)
        for g in (dq, dk, dv):
            assert g is None or bool(torch.isfinite(g).all())
        if dq is not None:  # an empty row depends on nothing: zero gradient to its query
            assert not bool(dq[empty].any())


@pytest.mark.parametrize("hops", [3, math.inf])
def test_multi_hop_on_a_graph_without_edges(hops):
    # S = 0: sum_k theta_k S^k V = theta_0 V; ppr: theta_0 = alpha, katz: theta_0 = 0
    q, k, v = qkv(5)
    empty = torch.empty(2, 0, dtype=torch.long)
    torch.testing.assert_close(attention_diffusion(q, k, v, empty, hops=hops, coeffs="ppr",
                                                   alpha=0.3), 0.3 * v)
    assert torch.equal(attention_diffusion(q, k, v, empty, hops=hops, coeffs="katz", r=0.5),
                       torch.zeros_like(v))
    assert attention_diffusion(*qkv(0), empty, hops=hops, coeffs="ppr").shape == (0, 2, 3)


# -------------------------------------------------------------------------- multi-hop
def dense_series(s, v, theta):
    """sum_k theta_k S^k V in float64 with the explicit (H, N, N) matrix S."""
    x = v.double().transpose(0, 1)  # (H, N, Dv)
    out, p = torch.zeros_like(x), x
    for t in theta:
        out = out + t * p
        p = s @ p
    return out.transpose(0, 1)


@pytest.mark.parametrize("hops,coeffs", [(2, "ppr"), (4, "heat"), (3, "uniform"),
                                         (3, torch.tensor([0.5, -0.2, 0.1, 0.3], dtype=F64))])
@pytest.mark.parametrize("support", ["edges", "causal", "window", "batch"])
def test_k_hop_matches_dense_series(hops, coeffs, support):
    n = 14
    q, k, v = qkv(n)
    ei = random_edges(n, n, 40)
    kw, mask = {
        "edges": (dict(edge_index=ei), edge_mask(ei, n, n)),
        "causal": (dict(causal=True), loop_mask(n, causal=True)),
        "window": (dict(window=2), loop_mask(n, window=2)),
        "batch": (dict(batch=BATCH[-n:] - 1), loop_mask(n, BATCH[-n:] - 1)),
    }[support]
    s = explicit_softmax(q, k, mask)
    if isinstance(coeffs, str):
        theta = {"ppr": [0.1, 0.09, 0.81], "uniform": [0.25] * 4,
                 "heat": [math.exp(-1) / math.factorial(j) for j in range(5)]}[coeffs]
    else:
        theta = coeffs.tolist()
    out = attention_diffusion(q, k, v, hops=hops, coeffs=coeffs, **kw)
    torch.testing.assert_close(out, dense_series(s, v, theta))


@pytest.mark.parametrize("support", ["edges", "complete"])
def test_infinite_hops_match_closed_form(support):
    n = 10
    q, k, v = qkv(n)
    ei = random_edges(n, n, 35, seed=4)
    kw, mask = (dict(edge_index=ei), edge_mask(ei, n, n)) if support == "edges" else \
        (dict(), torch.ones(n, n, dtype=torch.bool))
    s = explicit_softmax(q, k, mask)
    eye = torch.eye(n, dtype=F64)
    vt = v.transpose(0, 1)
    ppr = 0.2 * torch.linalg.solve(eye - 0.8 * s, vt)
    out = attention_diffusion(q, k, v, hops=math.inf, coeffs="ppr", alpha=0.2, tol=1e-10,
                              **kw)
    torch.testing.assert_close(out, ppr.transpose(0, 1), atol=1e-7, rtol=1e-7)
    katz = torch.linalg.solve(eye - 0.5 * s, vt) - vt  # sum_{k>=1} r^k S^k V
    out = attention_diffusion(q, k, v, hops=math.inf, coeffs="katz", r=0.5, tol=1e-10, **kw)
    torch.testing.assert_close(out, katz.transpose(0, 1), atol=1e-7, rtol=1e-7)


@pytest.mark.parametrize("support", ["edges", "complete"])
def test_infinite_hops_ignore_dropout_finite_hops_apply_it(support):
    """The closed form solves with the exact row-stochastic S on every support."""
    n = 8
    q, k, v = qkv(n)
    kw = dict(edge_index=random_edges(n, n, 30, seed=2)) if support == "edges" else dict()
    exact = attention_diffusion(q, k, v, hops=math.inf, coeffs="ppr", alpha=0.2, tol=1e-10,
                                **kw)
    torch.manual_seed(0)
    dropped = attention_diffusion(q, k, v, hops=math.inf, coeffs="ppr", alpha=0.2, tol=1e-10,
                                  dropout_p=0.5, **kw)
    assert torch.equal(dropped, exact)
    torch.manual_seed(0)  # finite K does apply it (the argument is not silently ignored)
    assert not torch.allclose(attention_diffusion(q, k, v, hops=3, dropout_p=0.5, **kw),
                              attention_diffusion(q, k, v, hops=3, **kw))


@pytest.mark.parametrize("support", ["edges", "complete", "window"])
def test_multi_hop_dropout_keeps_every_power_row_stochastic(support):
    """Dropped-out S' stays row-stochastic, so sum_k theta_k S'^k 1 = sum_k theta_k = 1 for
    ppr (the rescaled dropout of one-hop attention would give random row sums)."""
    n = 40
    q, k, _ = qkv(n, h=3)
    ones = torch.ones(n, 3, 1, dtype=F64)
    kw = dict(edge_index=torch.cartesian_prod(torch.arange(n), torch.arange(n)).t()) \
        if support == "edges" else dict(window=12) if support == "window" else dict()
    torch.manual_seed(0)
    out = attention_diffusion(q, k, ones, hops=6, coeffs="ppr", alpha=0.2, dropout_p=0.5, **kw)
    torch.testing.assert_close(out, ones, atol=1e-12, rtol=0)
    # and dropout is applied: other values move, reproducibly under a seed
    v = qkv(n, h=3, seed=1)[2]
    torch.manual_seed(1)
    a = attention_diffusion(q, k, v, hops=6, coeffs="ppr", alpha=0.2, dropout_p=0.5, **kw)
    torch.manual_seed(1)
    ppr = dict(hops=6, coeffs="ppr", alpha=0.2)
    assert torch.equal(a, attention_diffusion(q, k, v, dropout_p=0.5, **ppr, **kw))
    assert not torch.allclose(a, attention_diffusion(q, k, v, **ppr, **kw))


def test_multi_hop_dropout_is_the_softmax_over_the_kept_edges():
    """Hand-checked on an explicit support: S' is the softmax over each row's kept edges; a
    row that loses every edge is 0; logits far apart (weights that underflow) give no NaN, in
    values or gradients; the kept edges are one [E, H] draw of torch.rand >= p."""
    from affgraph._csr import CSR, edge_softmax

    n, h = 6, 2
    q, k, _ = qkv(n, h=h)
    q = q * torch.tensor([1.0, 300.0], dtype=F64).view(1, 2, 1)  # head 1: extreme logits
    ei = torch.cartesian_prod(torch.arange(n), torch.arange(n)).t()
    csr = CSR(ei, n, n)
    logits = (torch.einsum("ehd,ehd->eh", q[csr.row], k[csr.col]) / 2.0).requires_grad_()
    keep = torch.rand(ei.size(1), h, generator=torch.Generator().manual_seed(5)) >= 0.7
    keep[csr.row == 2, 0] = False  # row 2 of head 0 loses every edge
    ref = torch.zeros_like(logits)
    for i in range(n):
        for j in range(h):
            m = (csr.row == i) & keep[:, j]
            if m.any():
                ref[m, j] = torch.softmax(logits.detach()[m, j], 0)
    got = torch.stack([csr.softmax(logits[:, j], keep[:, j]) for j in range(h)], 1)
    torch.testing.assert_close(got.detach(), ref, atol=1e-12, rtol=0)
    assert bool((got[csr.row == 2, 0] == 0).all())
    got.square().sum().backward()
    assert bool(torch.isfinite(logits.grad).all())
    # edge_softmax draws its mask as documented (both head layouts give the same weights)
    torch.manual_seed(5)
    drawn = torch.rand(ei.size(1), h, dtype=F64) >= 0.7
    torch.manual_seed(5)
    out = edge_softmax(q, k, csr, 0.5, drop=0.7)
    expect = torch.stack([csr.softmax(logits.detach()[:, j], drawn[:, j]) for j in range(h)], 1)
    torch.testing.assert_close(out, expect, atol=1e-12, rtol=0)


def test_one_hop_is_plain_attention_and_bad_hops():
    q, k, v = qkv(6)
    assert torch.equal(attention_diffusion(q, k, v, hops=1), attention(q, k, v))
    assert torch.equal(attention_diffusion(q, k, v, hops=1, coeffs="power"), attention(q, k, v))
    for bad in (0, 2.5, True, -1):
        with pytest.raises(ValueError):
            attention_diffusion(q, k, v, hops=bad)
    with pytest.raises(ValueError):
        attention_diffusion(*qkv(4, m=5), torch.tensor([[0], [1]]), hops=2)
    with pytest.raises(ValueError):  # Katz diverges for r >= 1/rho(S) = 1
        attention_diffusion(q, k, v, hops=math.inf, coeffs="katz", r=1.0)


@pytest.mark.parametrize("hops", [3, math.inf])
def test_multi_hop_gradients(hops):
    q, k, v = qkv(5, h=1, d=2, dv=2)
    ei = torch.tensor([[0, 1, 2, 3, 3, 4, 0], [1, 1, 0, 2, 4, 4, 3]])
    for t in (q, k, v):
        t.requires_grad_()
    for kw in (dict(edge_index=ei), dict(window=1)):
        assert torch.autograd.gradcheck(
            lambda a, b, c: attention_diffusion(a, b, c, hops=hops, coeffs="ppr", tol=1e-12,
                                                **kw), (q, k, v),
            atol=1e-6, fast_mode=True, check_undefined_grad=True)


# ------------------------------------------------------ hop semantics, edges, edge features
def test_hops_one_honours_coeffs_and_foreign_parameters_are_refused():
    """hops=1: power is S V, ppr alpha V + (1 - alpha) S V; alpha/r/t only for their family."""
    n = 9
    q, k, v = qkv(n)
    ei = random_edges(n, n, 30, seed=5)
    s = explicit_softmax(q, k, edge_mask(ei, n, n))
    sv = torch.einsum("hnm,mhd->nhd", s, v)
    torch.testing.assert_close(attention_diffusion(q, k, v, ei), sv)
    torch.testing.assert_close(attention_diffusion(q, k, v, ei, coeffs="ppr", alpha=0.3),
                               0.3 * v + 0.7 * sv)
    torch.testing.assert_close(attention_diffusion(q, k, v, ei, hops=2),
                               torch.einsum("hnm,mhd->nhd", s, sv))  # power: S^2 V
    for kw, name in ((dict(alpha=0.1), "alpha"), (dict(coeffs="ppr", r=0.5), "r"),
                     (dict(coeffs="katz", t=1.0), "t"), (dict(coeffs="uniform", r=0.5), "r")):
        with pytest.raises(ValueError, match=f"^{name} does not apply"):
            attention_diffusion(q, k, v, ei, hops=2, **kw)
    with pytest.raises(ValueError, match="no infinite-hop limit"):
        attention_diffusion(q, k, v, ei, hops=math.inf)


def test_katz_default_decay_is_nine_tenths():
    q, k, v = qkv(6)
    ei = random_edges(6, 6, 20, seed=1)
    torch.testing.assert_close(attention_diffusion(q, k, v, ei, hops=3, coeffs="katz"),
                               attention_diffusion(q, k, v, ei, hops=3, coeffs="katz", r=0.9))


def edge_oracle(q, k, v, ei, e, theta):
    """float64 dense: logits q_i.(k_j + e_ij)/sqrt(d), S, E_i = sum_j S_ij e_ij, and
    sum_k theta_k S^k V + sum_{k>=1} theta_k S^(k-1) E (unique edges)."""
    n, h, d = q.shape
    dense_e = torch.zeros(n, n, h, d, dtype=F64)
    dense_e[ei[1], ei[0]] = e
    logits = torch.einsum("ihd,jhd->hij", q, k) + torch.einsum("ihd,ijhd->hij", q, dense_e)
    mask = edge_mask(ei, n, n)
    s = torch.softmax((logits / math.sqrt(d)).masked_fill(~mask, -math.inf), -1).nan_to_num(0.0)
    agg = torch.einsum("hij,ijhd->hid", s, dense_e)
    vt, out, pe = v.transpose(0, 1), 0.0, agg
    for j, t in enumerate(theta):
        out = out + t * vt + (t * pe if j >= 1 else 0.0)
        vt = s @ vt
        if j >= 1:
            pe = s @ pe
    return out.transpose(0, 1)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("hops,kw,theta", [(1, dict(), [0.0, 1.0]),
                                           (3, dict(coeffs="ppr", alpha=0.2),
                                            [0.2, 0.16, 0.128, 0.8 ** 3])])
def test_edge_features_match_the_dense_formula(monkeypatch, batched, hops, kw, theta):
    import affgraph._csr as csr_mod

    monkeypatch.setattr(csr_mod, "BATCH_HEADS_MAX", 1 << 21 if batched else 0)
    n = 8
    q, k, v = qkv(n, d=3, dv=3)
    ei = random_edges(n, n, 30, seed=3)
    ei = ei[:, torch.randperm(ei.size(1), generator=torch.Generator().manual_seed(0))]
    e = torch.randn(ei.size(1), 2, 3, dtype=F64)
    out = attention_diffusion(q, k, v, ei, edge_attr=e, hops=hops, **kw)
    torch.testing.assert_close(out, edge_oracle(q, k, v, ei, e, theta))
    if hops == 1:
        torch.testing.assert_close(attention(q, k, v, ei, edge_attr=e), out)


@pytest.mark.parametrize("hops", [1, 2])
def test_edge_features_gradcheck(hops):
    q, k, v = qkv(5, h=2, d=2, dv=2)
    ei = torch.tensor([[0, 1, 2, 3, 3, 4, 0, 0], [1, 1, 0, 2, 4, 4, 3, 3]])  # a duplicate edge
    e = torch.randn(ei.size(1), 2, 2, dtype=F64)
    args = tuple(t.requires_grad_() for t in (q, k, v, e))
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: attention_diffusion(a, b, c, ei, edge_attr=d, hops=hops,
                                               coeffs="ppr"), args, fast_mode=True)
    assert torch.autograd.gradcheck(lambda a, b, c, d: attention(a, b, c, ei, edge_attr=d),
                                    args, fast_mode=True)


def test_edge_features_bad_input():
    q, k, v = qkv(5, d=3, dv=3)
    ei = torch.tensor([[0, 1], [1, 2]])
    e = torch.randn(2, 2, 3, dtype=F64)
    with pytest.raises(ValueError, match="explicit support"):
        attention(q, k, v, edge_attr=e)
    with pytest.raises(ValueError, match="edge_attr must be"):
        attention(q, k, v, ei, edge_attr=e[:1])
    with pytest.raises(ValueError, match="same width"):
        attention(*qkv(5, d=3, dv=2), ei, edge_attr=e)
    with pytest.raises(ValueError, match="'ppr' or 'katz'"):
        attention_diffusion(q, k, v, ei, edge_attr=e, hops=math.inf, coeffs="heat")


def test_multigraph_with_more_edges_than_matrix_entries():
    """40 edges between 3 nodes (> 3 x 3): every duplicate its own weight, gradients too."""
    g = torch.Generator().manual_seed(2)
    ei = torch.randint(0, 3, (2, 40), generator=g)
    for h in (1, 2):
        q, k, v = qkv(3, h=h)
        logits = torch.einsum("ehd,ehd->eh", q[ei[1]], k[ei[0]]) / 2.0
        ref = torch.zeros(3, h, 3, dtype=F64)
        for i in range(3):
            m = ei[1] == i
            ref[i] = torch.einsum("eh,ehc->hc", torch.softmax(logits[m], 0), v[ei[0][m]])
        torch.testing.assert_close(attention(q, k, v, ei), ref)
        args = tuple(t.requires_grad_() for t in (q, k, v))
        assert torch.autograd.gradcheck(lambda a, b, c: attention(a, b, c, ei), args,
                                        fast_mode=True)


def test_narrow_integer_edge_index_is_widened():
    q, k, v = qkv(6)
    ei = random_edges(6, 6, 20)
    ref = attention(q, k, v, ei)
    for dtype in (torch.uint8, torch.int8, torch.int32):
        torch.testing.assert_close(attention(q, k, v, ei.to(dtype)), ref)
        torch.testing.assert_close(attention_diffusion(q, k, v, ei.to(dtype), hops=2),
                                   attention_diffusion(q, k, v, ei, hops=2))


def test_window_wider_than_the_sequence_is_clamped():
    q, k, v = qkv(8)
    for causal in (False, True):
        ref = attention(q, k, v, causal=causal)
        torch.testing.assert_close(attention(q, k, v, window=1_000_000, causal=causal), ref)
        torch.testing.assert_close(attention(q, k, v, window=7, causal=causal), ref)
        torch.testing.assert_close(
            attention_diffusion(q, k, v, window=10 ** 9, causal=causal, hops=2),
            attention_diffusion(q, k, v, causal=causal, hops=2))
    mask = loop_mask(8, window=6)  # w = N - 2 stays a window
    torch.testing.assert_close(attention(q, k, v, window=6), explicit(q, k, v, mask))
