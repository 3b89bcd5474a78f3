"""AffinityDiffusion against PyG APPNP / SGConv with the same inputs and weights."""
import math

import pytest
import torch
from torch_geometric.nn import APPNP, SGConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm
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
    ours = AffinityDiffusion(K, alpha)(x, ei, w)
    ref = APPNP(K=K, alpha=alpha)(x, ei, w)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_float32_matches_appnp():
    x, ei, _ = _graph(dtype=torch.float32)
    torch.testing.assert_close(AffinityDiffusion()(x, ei), APPNP(10, 0.1)(x, ei),
                               rtol=1e-5, atol=1e-6)


def test_single_power_matches_sgconv():
    x, ei, w = _graph(seed=1)
    sg = SGConv(5, 4, K=3).double()
    ours = sg.lin(AffinityDiffusion(3, coeffs="power")(x, ei, w))
    torch.testing.assert_close(ours, sg(x, ei, w), rtol=1e-12, atol=1e-12)


def test_infinite_hops_is_appnp_limit():
    x, ei, _ = _graph(seed=2)
    inf = AffinityDiffusion(math.inf, 0.2, tol=1e-12)(x, ei)
    torch.testing.assert_close(inf, APPNP(K=200, alpha=0.2)(x, ei), rtol=1e-9, atol=1e-9)


def test_learnable_coefficients_get_gradients():
    x, ei, _ = _graph(seed=3)
    layer = AffinityDiffusion(4, 0.3, coeffs="ppr", learn_coeffs=True).double()
    layer.reset_parameters()  # float64 coefficients exactly
    assert isinstance(layer.theta, torch.nn.Parameter)
    torch.testing.assert_close(layer(x, ei), APPNP(4, 0.3)(x, ei), rtol=1e-12, atol=1e-12)
    target = torch.randn_like(x)
    loss = (layer(x, ei) - target).square().sum()
    loss.backward()
    # oracle: d loss / d theta_k = <2 (out - target), A^k x> with A from PyG's gcn_norm
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


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("add_self_loops", [True, False])
def test_positional_arguments_mean_what_appnp_means(normalize, add_self_loops):
    """APPNP(K, alpha, dropout, cached, add_self_loops, normalize) with the class name
    swapped; normalize=False uses the raw weights and adds no self-loops, as APPNP."""
    x, ei, w = _graph(seed=4)
    args = (4, 0.25, 0.0, False, add_self_loops, normalize)
    torch.testing.assert_close(AffinityDiffusion(*args)(x, ei, w), APPNP(*args)(x, ei, w),
                               rtol=1e-12, atol=1e-12)


def _dense(ei, w, n, self_loops):
    """Dense A[i, j] = w(j -> i); with self_loops, a weight-1 loop where a node has none."""
    A = torch.zeros(n, n, dtype=w.dtype).index_put((ei[1], ei[0]), w, accumulate=True)
    if self_loops:  # the weights are positive: a zero diagonal entry is a missing loop
        A = A + torch.diag((A.diagonal() == 0).to(w.dtype))
    return A


def test_row_normalisation_and_other_families_against_dense_series():
    x, ei, w = _graph(seed=5)
    A = _dense(ei, w, x.size(0), True)
    P = A / A.sum(1, keepdim=True)  # "row": D^-1 (A + I)
    heat = sum(math.exp(-2.0) * 2.0 ** k / math.factorial(k) * torch.linalg.matrix_power(P, k)
               for k in range(7)) @ x
    out = AffinityDiffusion(6, normalize="row", coeffs="heat", t=2.0)(x, ei, w)
    torch.testing.assert_close(out, heat, rtol=1e-12, atol=1e-12)
    katz = sum(0.5 ** k * torch.linalg.matrix_power(P, k) for k in range(1, 4)) @ x
    out = AffinityDiffusion(3, normalize="row", coeffs="katz", r=0.5)(x, ei, w)
    torch.testing.assert_close(out, katz, rtol=1e-12, atol=1e-12)
    # hops=1 with "power" is one application A x, whatever the family defaults
    torch.testing.assert_close(AffinityDiffusion(1, normalize="row", coeffs="power")(x, ei, w),
                               P @ x, rtol=1e-12, atol=1e-12)
    # the default Katz decay is 0.9 / rho(A); after "sym" normalisation rho = 1
    S = _dense(*gcn_norm(ei, w, x.size(0), add_self_loops=True, dtype=x.dtype), x.size(0),
               False)
    ref = sum(0.9 ** k * torch.linalg.matrix_power(S, k) for k in range(1, 3)) @ x
    torch.testing.assert_close(AffinityDiffusion(2, coeffs="katz")(x, ei, w), ref,
                               rtol=1e-7, atol=1e-7)


def test_graph_inputs_edge_index_sparse_and_dtypes():
    from torch_geometric import EdgeIndex
    from torch_sparse import SparseTensor

    x, ei, w = _graph(seed=6)
    n = x.size(0)
    ref = APPNP(5, 0.1)(x, ei, w)
    layer = AffinityDiffusion(5, 0.1)
    adj = torch.sparse_coo_tensor(ei.flip(0), w, (n, n))  # adj_t: row = target
    sp = SparseTensor(row=ei[1], col=ei[0], value=w, sparse_sizes=(n, n))
    for g, gw in [(ei, w), (EdgeIndex(ei, sparse_size=(n, n)), w), (ei.int(), w),
                  (ei.to(torch.uint8), w), (adj, None), (adj.to_sparse_csr(), None), (sp, None)]:
        torch.testing.assert_close(layer(x, g, gw), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="integer"):
        layer(x, ei.double())
    with pytest.raises(ValueError, match="edge_weight must be None"):
        layer(x, adj, w)
    with pytest.raises(ValueError, match=r"\[30, 30\]"):
        layer(x, torch.sparse_coo_tensor(ei.flip(0), w, (n + 1, n + 1)))


def test_cached_graph_is_reused_until_reset():
    x, ei, w = _graph(seed=7)
    layer = AffinityDiffusion(4, 0.1, cached=True)
    first = layer(x, ei, w)
    assert layer._cached_graph is not None
    # the cached normalised graph is used whatever graph comes next (as APPNP(cached=True))
    torch.testing.assert_close(layer(x, ei[:, :4]), first, rtol=0, atol=0)
    layer.reset_parameters()
    assert layer._cached_graph is None
    torch.testing.assert_close(layer(x, ei[:, :4]), APPNP(4, 0.1)(x, ei[:, :4]),
                               rtol=1e-12, atol=1e-12)
    uncached = AffinityDiffusion(4, 0.1)
    uncached(x, ei, w)
    assert uncached._cached_graph is None


def test_coefficient_tensors_are_buffers():
    theta = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    layer = AffinityDiffusion(2, coeffs=theta)
    assert "theta" in dict(layer.named_buffers()) and "theta" in layer.state_dict()
    learn = AffinityDiffusion(2, coeffs=theta, learn_coeffs=True).double()
    assert isinstance(learn.theta, torch.nn.Parameter)
    assert "theta_init" in dict(learn.named_buffers())
    with torch.no_grad():
        learn.theta.zero_()
    learn.reset_parameters()
    torch.testing.assert_close(learn.theta.detach(), theta, rtol=0, atol=0)
    x, ei, w = _graph(seed=8)
    torch.testing.assert_close(layer(x, ei, w), learn(x, ei, w), rtol=1e-12, atol=1e-12)


def test_torch_compile_matches_eager():
    """torch.compile runs the layer (with graph breaks at the host-side checks and, for
    K = inf, around the iterative solve) and gives the eager output and input gradient."""
    x, ei, w = _graph(n=12, e=30, seed=9, dtype=torch.float32)
    for layer in (AffinityDiffusion(3, 0.2), AffinityDiffusion(math.inf, 0.2, tol=1e-7),
                  AffinityDiffusion(3, coeffs="heat", learn_coeffs=True)):
        xe = x.clone().requires_grad_(True)
        eager = layer(xe, ei, w)
        eager.square().sum().backward()
        xc = x.clone().requires_grad_(True)
        compiled = torch.compile(layer)(xc, ei, w)
        torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)
        if layer.K != math.inf:
            compiled.square().sum().backward()
            torch.testing.assert_close(xc.grad, xe.grad, rtol=1e-6, atol=1e-6)


def test_repr_and_errors():
    assert repr(AffinityDiffusion()) == "AffinityDiffusion(K=10, alpha=0.1)"
    assert repr(AffinityDiffusion(3, coeffs="heat")) == \
        "AffinityDiffusion(K=3, coeffs='heat', t=1.0)"
    assert repr(AffinityDiffusion(math.inf, 0.2)) == "AffinityDiffusion(K=inf, alpha=0.2)"
    assert repr(AffinityDiffusion(2, coeffs="katz", r=0.5, learn_coeffs=True)) == \
        "AffinityDiffusion(K=2, coeffs='katz', r=0.5, learn_coeffs=True)"
    assert repr(AffinityDiffusion(2, coeffs="power")) == "AffinityDiffusion(K=2, coeffs='power')"
    with pytest.raises(ValueError, match="alpha=0.2 applies to coeffs='ppr' only"):
        AffinityDiffusion(3, 0.2, coeffs="heat")
    with pytest.raises(ValueError, match="r=0.5 applies"):
        AffinityDiffusion(3, r=0.5)
    with pytest.raises(ValueError, match="t=2.0 applies"):
        AffinityDiffusion(3, coeffs="katz", t=2.0)
    with pytest.raises(ValueError, match="finite number of hops"):
        AffinityDiffusion(math.inf, learn_coeffs=True)
    with pytest.raises(ValueError, match="dropout > 0 needs a finite number of hops"):
        AffinityDiffusion(math.inf, 0.1, 0.5)
    with pytest.raises(ValueError, match="dropout must lie in"):
        AffinityDiffusion(3, 0.1, 1.5)
    with pytest.raises(ValueError, match="no infinite-hop limit"):
        AffinityDiffusion(math.inf, coeffs="uniform")
    with pytest.raises(ValueError, match="unknown coefficient family"):
        AffinityDiffusion(coeffs="gpr")
    with pytest.raises(ValueError, match="normalize must be"):
        AffinityDiffusion(normalize="gcn")
    with pytest.raises(ValueError, match="learn_coeffs with katz"):
        AffinityDiffusion(3, coeffs="katz", learn_coeffs=True)
    with pytest.raises(ValueError, match="needs 4 entries"):
        AffinityDiffusion(3, coeffs=torch.ones(3))
    x, ei, _ = _graph()
    with pytest.raises(ValueError, match="out of range"):
        AffinityDiffusion()(x[:5], ei)


def test_learnable_is_a_deprecated_alias_of_learn_coeffs():
    """learnable=... still builds the same layer (a FutureWarning); both names: TypeError;
    learn_coeffs is keyword-only, after APPNP's positional arguments."""
    import inspect

    x, ei, w = _graph(seed=10)
    with pytest.warns(FutureWarning, match="learn_coeffs"):
        old = AffinityDiffusion(3, 0.2, learnable=True).double()
    new = AffinityDiffusion(3, 0.2, learn_coeffs=True).double()
    assert old.learn_coeffs is True and isinstance(old.theta, torch.nn.Parameter)
    old.reset_parameters()
    new.reset_parameters()
    torch.testing.assert_close(old.theta.detach(), new.theta.detach(), rtol=0, atol=0)
    torch.testing.assert_close(old(x, ei, w), APPNP(3, 0.2)(x, ei, w), rtol=1e-12, atol=1e-12)
    with pytest.warns(FutureWarning):
        fixed = AffinityDiffusion(3, 0.2, learnable=False)
    assert fixed.learn_coeffs is False and not isinstance(fixed.theta, torch.nn.Parameter)
    with pytest.warns(FutureWarning, match="learn_coeffs"):
        assert old.learnable is True
    with pytest.raises(TypeError, match="both"):
        AffinityDiffusion(3, learnable=True, learn_coeffs=True)
    with pytest.raises(TypeError, match="both"):
        AffinityDiffusion(3, learnable=False, learn_coeffs=False)
    with pytest.raises(TypeError, match="learn_coeffs must be a bool"):
        AffinityDiffusion(3, learn_coeffs=1)
    param = inspect.signature(AffinityDiffusion).parameters["learn_coeffs"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is False
    assert "learnable" not in inspect.signature(AffinityDiffusion).parameters
    with pytest.raises(TypeError):
        AffinityDiffusion(3, 0.1, 0.0, False, True, True, True)  # no 7th positional argument
