"""AffinityDiffusion against PyG APPNP / SGConv with the same inputs and weights."""
import math

import pytest
import torch
from torch_geometric.nn import APPNP, SGConv
from torch_geometric.utils import to_undirected

from affgraph.nn import AffinityDiffusion


def _graph(n=30, e=80, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    ei = to_undirected(torch.randint(0, n, (2, e), generator=g), num_nodes=n)
    w = torch.rand(ei.size(1), generator=g, dtype=dtype) + 0.1
    x = torch.randn(n, 5, generator=g, dtype=dtype)
    return x, ei, w


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("K,alpha", [(10, 0.1), (3, 0.25), (0, 0.1)])
def test_defaults_match_appnp(K, alpha, weighted):
    x, ei, w = _graph()
    w = w if weighted else None
    ours = AffinityDiffusion(hops=K, alpha=alpha)(x, ei, w)
    ref = APPNP(K=K, alpha=alpha)(x, ei, w)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_float32_matches_appnp():
    x, ei, _ = _graph(dtype=torch.float32)
    torch.testing.assert_close(AffinityDiffusion()(x, ei), APPNP(10, 0.1)(x, ei),
                               rtol=1e-5, atol=1e-6)


def test_single_power_matches_sgconv():
    x, ei, w = _graph(seed=1)
    sg = SGConv(5, 4, K=3).double()
    ours = sg.lin(AffinityDiffusion(hops=3, coeffs="power")(x, ei, w))
    torch.testing.assert_close(ours, sg(x, ei, w), rtol=1e-12, atol=1e-12)


def test_infinite_hops_is_appnp_limit():
    x, ei, _ = _graph(seed=2)
    inf = AffinityDiffusion(hops=math.inf, alpha=0.2, tol=1e-12)(x, ei)
    torch.testing.assert_close(inf, APPNP(K=200, alpha=0.2)(x, ei), rtol=1e-9, atol=1e-9)


def test_learnable_coefficients_get_gradients():
    x, ei, _ = _graph(seed=3)
    layer = AffinityDiffusion(hops=4, coeffs="ppr", alpha=0.3, learnable=True).double()
    layer.reset_parameters()  # float64 coefficients exactly
    assert isinstance(layer.theta, torch.nn.Parameter)
    torch.testing.assert_close(layer(x, ei), APPNP(4, 0.3)(x, ei), rtol=1e-12, atol=1e-12)
    target = torch.randn_like(x)
    loss = (layer(x, ei) - target).square().sum()
    loss.backward()
    # oracle: d loss / d theta_k = <2 (out - target), A^k x> with A from PyG's gcn_norm
    from torch_geometric.nn.conv.gcn_conv import gcn_norm
    ei2, w2 = gcn_norm(ei, None, x.size(0), add_self_loops=True, dtype=x.dtype)
    A = torch.zeros(x.size(0), x.size(0), dtype=x.dtype).index_put((ei2[1], ei2[0]), w2,
                                                                  accumulate=True)
    out = APPNP(4, 0.3)(x, ei)
    ref = torch.stack([(2 * (out - target) * (torch.linalg.matrix_power(A, k) @ x)).sum()
                       for k in range(5)])
    torch.testing.assert_close(layer.theta.grad, ref, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        layer.theta.zero_()
    layer.reset_parameters()
    torch.testing.assert_close(layer(x, ei), APPNP(4, 0.3)(x, ei), rtol=1e-12, atol=1e-12)


def test_repr_and_errors():
    assert repr(AffinityDiffusion()) == "AffinityDiffusion(hops=10, coeffs='ppr', alpha=0.1)"
    assert repr(AffinityDiffusion(3, "heat")) == "AffinityDiffusion(hops=3, coeffs='heat')"
    with pytest.raises(ValueError, match="finite number of hops"):
        AffinityDiffusion(hops=math.inf, learnable=True)
    with pytest.raises(ValueError, match="no infinite-hop limit"):
        AffinityDiffusion(hops=math.inf, coeffs="uniform")
    with pytest.raises(ValueError, match="unknown coefficient family"):
        AffinityDiffusion(coeffs="gpr")
    x, ei, _ = _graph()
    with pytest.raises(ValueError, match="out of range"):
        AffinityDiffusion()(x[:5], ei)
