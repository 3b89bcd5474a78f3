"""Every public operator on every device this machine has, against float64 CPU oracles.

The device list is ``cpu`` plus ``cuda`` when a GPU is present, so on a CPU-only machine these
tests check the float32 CPU path and nothing is skipped; on a GPU machine the same assertions
run on CUDA (float32, and bfloat16 where the kernels support it). The oracles are dense float64
computations written out here, not the library's own code paths.
"""
from __future__ import annotations

import math

import pytest
import torch

from affgraph.functional import attention, attention_diffusion, diffuse, simplicial_attention
from affgraph.nn import AffinityAttention, SimplicialAttention

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _dense_attention(q, k, v, mask):
    """float64 masked softmax attention; rows without any key give zeros."""
    q, k, v = q.double(), k.double(), v.double()
    logits = torch.einsum("nhd,mhd->hnm", q, k) / math.sqrt(q.size(-1))
    logits = logits.masked_fill(~mask, -math.inf)
    w = torch.softmax(logits, dim=-1).nan_to_num(0.0)
    return torch.einsum("hnm,mhd->nhd", w, v), w


def _qkv(n, h, d, device, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, h, d, generator=g).to(device=device, dtype=dtype) for _ in range(3)]


def _random_graph(n, e, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n - 1, (2, e), generator=g)  # node n-1 has no edges at all
    return torch.unique(ei, dim=1)


@pytest.mark.parametrize("device", DEVICES)
def test_attention_edge_index_matches_dense_oracle(device):
    n, h, d = 40, 2, 8
    q, k, v = _qkv(n, h, d, device)
    ei = _random_graph(n, 200)
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    out = attention(q, k, v, ei.to(device))
    ref, _ = _dense_attention(q.cpu(), k.cpu(), v.cpu(), mask)
    assert out.device.type == device
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-5, rtol=1e-5)
    assert torch.all(out[-1] == 0)  # the isolated node


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("support", ["complete", "causal", "window"])
def test_attention_structured_supports_match_dense_oracle(device, support):
    n, h, d, w = 64, 2, 16, 5
    q, k, v = _qkv(n, h, d, device, seed=1)
    i = torch.arange(n)
    mask = {"complete": torch.ones(n, n, dtype=torch.bool),
            "causal": i[None, :] <= i[:, None],
            "window": (i[None, :] - i[:, None]).abs() <= w}[support]
    kwargs = {"complete": {}, "causal": {"causal": True}, "window": {"window": w}}[support]
    out = attention(q, k, v, **kwargs)
    ref, _ = _dense_attention(q.cpu(), k.cpu(), v.cpu(), mask)
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_attention_gradients_match_dense_oracle(device):
    n, h, d = 24, 2, 4
    q, k, v = _qkv(n, h, d, device, seed=2)
    ei = _random_graph(n, 90, seed=2)
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    xs = [t.clone().requires_grad_() for t in (q, k, v)]
    attention(*xs, ei.to(device)).pow(2).sum().backward()
    ys = [t.detach().cpu().double().requires_grad_() for t in (q, k, v)]
    _dense_attention(*ys, mask)[0].pow(2).sum().backward()
    for x, y in zip(xs, ys):
        torch.testing.assert_close(x.grad.cpu().double(), y.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_attention_diffusion_closed_form(device):
    """hops=inf with ppr coefficients: alpha (I - (1 - alpha) S)^-1 V."""
    n, h, d, alpha = 30, 2, 4, 0.15
    q, k, v = _qkv(n, h, d, device, seed=3)
    ei = _random_graph(n, 150, seed=3)
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    out = attention_diffusion(q, k, v, ei.to(device), hops=math.inf, coeffs="ppr", alpha=alpha,
                              tol=1e-8)
    _, S = _dense_attention(q.cpu(), k.cpu(), v.cpu(), mask)  # [H, N, N]
    eye = torch.eye(n, dtype=torch.float64)
    ref = torch.stack([alpha * torch.linalg.solve(eye - (1 - alpha) * S[hh], v.cpu()[:, hh].double())
                       for hh in range(h)], dim=1)
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("hops", [3, math.inf])
def test_diffuse_katz_matches_dense_series(device, hops):
    n, r = 50, 0.05
    ei = _random_graph(n, 300, seed=4)
    w = torch.rand(ei.size(1), generator=torch.Generator().manual_seed(4))
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(5))
    out = diffuse(x.to(device), ei.to(device), w.to(device), hops=hops, coeffs="katz", r=r,
                  tol=1e-10)
    A = torch.zeros(n, n, dtype=torch.float64)
    A.index_put_((ei[1], ei[0]), w.double(), accumulate=True)
    eye = torch.eye(n, dtype=torch.float64)
    if hops == math.inf:
        ref = (torch.linalg.inv(eye - r * A) - eye) @ x.double()
    else:
        ref = sum(torch.linalg.matrix_power(r * A, kk) for kk in range(1, hops + 1)) @ x.double()
    assert out.device.type == device
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-5, rtol=1e-5)


def _dense_simplicial(q, k1, k2, v1, v2, w1, w2):
    """float64 einsum over all (i, j, l) with the causal window mask."""
    q, k1, k2, v1, v2 = (t.double() for t in (q, k1, k2, v1, v2))
    n = q.size(0)
    i = torch.arange(n)
    m1 = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] <= w1)  # [i, j]: i - w1 <= j <= i
    m2 = (i[None, :] <= i[:, None]) & (i[:, None] - i[None, :] <= w2)  # [i, l]
    a = torch.einsum("ihd,jhd,lhd->hijl", q, k1, k2) / math.sqrt(q.size(-1))
    a = a.masked_fill(~(m1[:, :, None] & m2[:, None, :]), -math.inf)
    s = torch.softmax(a.flatten(2), dim=-1).view_as(a)
    return torch.einsum("hijl,jhd,lhd->ihd", s, v1, v2)


@pytest.mark.parametrize("device", DEVICES)
def test_simplicial_window_matches_einsum_oracle(device):
    n, h, d, w1, w2 = 48, 2, 8, 7, 3
    g = torch.Generator().manual_seed(6)
    xs = [torch.randn(n, h, d, generator=g) for _ in range(5)]
    out = simplicial_attention(*(x.to(device) for x in xs), window=(w1, w2), causal=True)
    ref = _dense_simplicial(*xs, w1, w2)
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-5, rtol=1e-5)
    # gradients against the oracle's
    ts = [x.clone().to(device).requires_grad_() for x in xs]
    simplicial_attention(*ts, window=(w1, w2), causal=True).pow(2).sum().backward()
    rs = [x.detach().double().requires_grad_() for x in xs]
    _dense_simplicial(*rs, w1, w2).pow(2).sum().backward()
    for t, r in zip(ts, rs):
        torch.testing.assert_close(t.grad.cpu().double(), r.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_bfloat16_kernels_stay_close_to_float64(device):
    """bf16 inputs, fp32 accumulation: within bf16 rounding of the float64 oracle."""
    n, h, d = 128, 2, 32
    q, k, v = _qkv(n, h, d, device, dtype=torch.bfloat16, seed=7)
    i = torch.arange(n)
    out = attention(q, k, v, window=8)
    ref, _ = _dense_attention(q.cpu(), k.cpu(), v.cpu(), (i[None, :] - i[:, None]).abs() <= 8)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.cpu().double(), ref, atol=3e-2, rtol=3e-2)
    xs = [t.to(torch.bfloat16) for t in _qkv(n, h, d, device, seed=8) + _qkv(n, h, d, device, seed=9)[:2]]
    out = simplicial_attention(*xs, window=(8, 4), causal=True)
    ref = _dense_simplicial(*(x.cpu() for x in xs), 8, 4)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.cpu().double(), ref, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_layers_agree_across_devices(device):
    """The layers on ``device`` reproduce the same layers (same weights) in float64 on the CPU."""
    torch.manual_seed(0)
    n = 50
    x = torch.randn(n, 12)
    ei = _random_graph(n, 250, seed=10)
    for layer in (AffinityAttention(12, 8, heads=2, hops=4),
                  AffinityAttention(12, 8, heads=2, hops=math.inf, coeffs="ppr", alpha=0.2)):
        layer.eval()
        ref = layer.double()(x.double(), ei)
        out = layer.float().to(device)(x.to(device), ei.to(device))
        torch.testing.assert_close(out.cpu().double(), ref, atol=1e-4, rtol=1e-4)
    layer = SimplicialAttention(12, 8, heads=2, window=(5, 3), causal=True).eval()
    ref = layer.double()(x.double())
    out = layer.float().to(device)(x.to(device))
    torch.testing.assert_close(out.cpu().double(), ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_attention_with_edge_features_and_a_multigraph(device):
    """AffinityAttention with edge features (one hop and 3 ppr hops) on an unsorted graph, and
    one head on a multigraph with more edges than matrix entries, on ``device`` against the
    same layers in float64 on the CPU, outputs and input gradients."""
    g = torch.Generator().manual_seed(12)
    n = 40
    x = torch.randn(n, 12, generator=g)
    ei = _random_graph(n, 200, seed=12)
    ei = ei[:, torch.randperm(ei.size(1), generator=g)]
    ea = torch.randn(ei.size(1), 5, generator=g)
    multi = torch.randint(0, 3, (2, 30), generator=g)
    cases = [(AffinityAttention(12, 8, heads=2, edge_dim=5), (ei, ea), n),
             (AffinityAttention(12, 8, heads=2, edge_dim=5, hops=3, coeffs="ppr"), (ei, ea), n),
             (AffinityAttention(12, 8), (multi,), 3)]
    for layer, graph, m in cases:
        layer.eval()
        xd = x[:m].double().requires_grad_()
        ref = layer.double()(xd, *(t.double() if t.is_floating_point() else t for t in graph))
        (ref_grad,) = torch.autograd.grad(ref.square().sum(), xd)
        xf = x[:m].to(device).requires_grad_()
        out = layer.float().to(device)(xf, *(t.to(device) for t in graph))
        (grad,) = torch.autograd.grad(out.square().sum(), xf)
        torch.testing.assert_close(out.cpu().double(), ref.detach(), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(grad.cpu().double(), ref_grad, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_ppr_closed_form_gradients_on_tiny_and_huge_columns(device):
    r"""``AffinityDiffusion(K=inf)`` (PPR, ``sym`` normalisation with self-loops) in float32:
    the output :math:`\alpha(I-(1-\alpha)\hat A)^{-1}x` and the input gradient
    :math:`\alpha(I-(1-\alpha)\hat A)^{-\top}g` against float64 dense solves, with upstream
    gradient columns scaled by 1e-20 and 1e20 (the float32 CG underflow/overflow cases that
    ``solve_linear`` scales away) on each device."""
    from torch_geometric.utils import to_undirected

    from affgraph.nn import AffinityDiffusion

    n, alpha = 60, 0.1
    ei = to_undirected(_random_graph(n, 200, seed=11), num_nodes=n)
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(n, 3, generator=gen)
    g = torch.randn(n, 3, generator=gen)
    g[:, 1] *= 1e-20
    g[:, 2] *= 1e20
    A = torch.eye(n, dtype=torch.float64)  # self-loops
    A[ei[1], ei[0]] = 1.0
    dinv = A.sum(1).rsqrt()
    M = torch.eye(n, dtype=torch.float64) - (1 - alpha) * dinv[:, None] * A * dinv[None, :]
    ref = alpha * torch.linalg.solve(M, x.double())
    ref_grad = alpha * torch.linalg.solve(M.T, g.double())

    xd = x.to(device).requires_grad_()
    out = AffinityDiffusion(math.inf, alpha, coeffs="ppr")(xd, ei.to(device))
    out.backward(g.to(device))
    assert out.device.type == device
    torch.testing.assert_close(out.detach().cpu().double(), ref, atol=1e-5, rtol=1e-5)
    for c in range(3):
        err = (xd.grad[:, c].cpu().double() - ref_grad[:, c]).norm() / ref_grad[:, c].norm()
        assert err < 1e-4, (c, err)
