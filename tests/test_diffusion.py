"""Diffusion core against float64 dense series, closed forms, networkx and scipy."""
import math

import networkx as nx
import numpy as np
import pytest
import scipy.linalg
import torch

from affgraph.diffusion import (coefficients, diffuse, family_params, propagate, solve_linear,
                                spectral_radius, spectral_radius_dense, spectral_radius_op)


def _rand_A(n, symmetric, seed=0, density=0.5):
    g = torch.Generator().manual_seed(seed)
    A = torch.rand(n, n, generator=g, dtype=torch.float64)
    A = A * (torch.rand(n, n, generator=g, dtype=torch.float64) < density)
    if symmetric:
        A = (A + A.T) / 2
    return A


def _rho(A):
    return float(np.abs(np.linalg.eigvals(A.numpy())).max())


def _dense_series(A, x, theta):
    out = torch.zeros_like(x)
    for k, th in enumerate(theta.tolist()):
        out = out + th * torch.linalg.matrix_power(A, k) @ x
    return out


# ---------------------------------------------------------------- coefficients

def test_coefficient_families_by_hand():
    K = 4
    k = np.arange(K + 1)
    torch.testing.assert_close(coefficients("katz", K, r=0.5),
                               torch.tensor([0.0, 0.5, 0.25, 0.125, 0.0625], dtype=torch.float64))
    torch.testing.assert_close(coefficients("inffs", K, r=0.5), coefficients("katz", K, r=0.5))
    ppr = coefficients("ppr", K, alpha=0.2).numpy()
    np.testing.assert_allclose(ppr[:-1], 0.2 * 0.8 ** k[:-1], rtol=1e-14)
    np.testing.assert_allclose(ppr[-1], 0.8 ** K, rtol=1e-14)
    assert ppr.sum() == pytest.approx(1.0, abs=1e-14)
    heat = coefficients("heat", K, t=2.0).numpy()
    np.testing.assert_allclose(heat, [math.exp(-2) * 2 ** i / math.factorial(i) for i in k],
                               rtol=1e-12)
    np.testing.assert_allclose(coefficients("uniform", K).numpy(), np.full(K + 1, 0.2))
    np.testing.assert_array_equal(coefficients("power", K).numpy(), [0, 0, 0, 0, 1])
    assert coefficients("ppr", 0, alpha=0.3).tolist() == [1.0]


def test_coefficient_tensor_passthrough_and_errors():
    theta = torch.randn(4, requires_grad=True)
    assert coefficients(theta, 3) is theta
    with pytest.raises(ValueError, match="needs 4 entries"):
        coefficients(torch.ones(3), 3)
    with pytest.raises(ValueError, match="unknown coefficient family"):
        coefficients("pagerank", 3)
    with pytest.raises(ValueError, match="needs the decay r"):
        coefficients("katz", 3)
    with pytest.raises(ValueError, match="alpha"):
        coefficients("ppr", 3, alpha=1.5)
    with pytest.raises(ValueError, match="hops must be >= 0"):
        coefficients("ppr", -1)
    with pytest.raises(TypeError, match="hops"):
        coefficients("ppr", 2.5)
    with pytest.raises(ValueError, match="infinite"):
        coefficients("ppr", math.inf)
    with pytest.raises(ValueError, match="NaN"):
        coefficients(torch.tensor([1.0, float("nan")]), 1)


# ---------------------------------------------------------------- finite hops

_PARAMS = {"katz": dict(r=0.3), "ppr": dict(alpha=0.2), "heat": dict(t=1.5), "uniform": {},
           "power": {}}


@pytest.mark.parametrize("kind", ["katz", "ppr", "heat", "uniform", "power"])
def test_finite_hops_equal_dense_series(kind):
    A = _rand_A(7, symmetric=False)
    x = torch.randn(7, 2, 3, dtype=torch.float64)  # any trailing dims
    theta = coefficients(kind, 5, **_PARAMS[kind])
    out = propagate(lambda v: torch.einsum("ij,j...->i...", A, v), x, hops=5, coeffs=kind,
                    **_PARAMS[kind])
    ref = _dense_series(A, x.reshape(7, 6), theta).reshape(7, 2, 3)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_learnable_coefficients_gradient():
    A = _rand_A(6, symmetric=False, seed=1)
    x = torch.randn(6, 3, dtype=torch.float64)
    w = torch.randn(6, 3, dtype=torch.float64)
    theta = torch.randn(4, dtype=torch.float64, requires_grad=True)
    out = propagate(lambda v: A @ v, x, hops=3, coeffs=theta)
    (out * w).sum().backward()
    # d/dtheta_k sum(w * sum_j theta_j A^j x) = <w, A^k x>
    ref = torch.stack([(w * (torch.linalg.matrix_power(A, k) @ x)).sum() for k in range(4)])
    torch.testing.assert_close(theta.grad, ref, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- infinite hops

@pytest.mark.parametrize("symmetric", [True, False])
def test_katz_closed_form_and_truncation_converges(symmetric):
    A = _rand_A(12, symmetric=symmetric, seed=2)
    rho = _rho(A)
    r = 0.8 / rho
    x = torch.randn(12, 4, dtype=torch.float64)
    I = torch.eye(12, dtype=torch.float64)
    ref = torch.linalg.solve(I - r * A, x) - x  # ((I - rA)^-1 - I) x
    out = propagate(lambda v: A @ v, x, hops=math.inf, coeffs="katz", r=r, symmetric=symmetric,
                    tol=1e-12)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    errs = [float((propagate(lambda v: A @ v, x, hops=K, coeffs="katz", r=r) - ref).norm())
            for K in (5, 20, 80)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-6 * float(ref.norm())


def test_inf_with_zero_columns_nonsymmetric():
    A = _rand_A(15, symmetric=False, seed=12)
    r = 0.6 / _rho(A)
    x = torch.randn(15, 3, dtype=torch.float64)
    x[:, 1] = 0.0  # an all-zero feature converges at once; the others must still converge
    out = propagate(lambda v: A @ v, x, hops=math.inf, coeffs="katz", r=r, tol=1e-12)
    I = torch.eye(15, dtype=torch.float64)
    torch.testing.assert_close(out, torch.linalg.solve(I - r * A, r * A @ x), rtol=1e-9,
                               atol=1e-9)


def test_katz_inf_matches_networkx():
    g = nx.DiGraph()
    rng = np.random.default_rng(0)
    for i in range(8):
        for j in range(8):
            if i != j and rng.random() < 0.4:
                g.add_edge(i, j, weight=float(rng.uniform(0.5, 2.0)))
    g.add_nodes_from(range(8))
    Aij = nx.to_numpy_array(g, nodelist=range(8), weight="weight")  # Aij = weight of i -> j
    r = 0.5 / float(np.abs(np.linalg.eigvals(Aij)).max())
    # networkx: x_i = alpha sum_j A_ji x_j + beta, normalised to unit 2-norm -> messages j -> i
    ref = nx.katz_centrality_numpy(g, alpha=r, beta=1.0, weight="weight")
    ref = np.array([ref[i] for i in range(8)])
    A = torch.from_numpy(Aij.T.copy())  # row i = incoming edges of i
    ones = torch.ones(8, dtype=torch.float64)
    s = propagate(lambda v: A @ v, ones, hops=math.inf, coeffs="katz", r=r, tol=1e-12) + ones
    np.testing.assert_allclose(s.numpy() / np.linalg.norm(s.numpy()), ref, rtol=1e-9)


def test_ppr_and_heat_closed_forms():
    A = _rand_A(9, symmetric=True, seed=3)
    A = A / _rho(A)  # rho = 1
    x = torch.randn(9, 2, dtype=torch.float64)
    I = torch.eye(9, dtype=torch.float64)
    ppr = propagate(lambda v: A @ v, x, hops=math.inf, coeffs="ppr", alpha=0.15, rho=1.0,
                    symmetric=True, tol=1e-12)
    torch.testing.assert_close(ppr, 0.15 * torch.linalg.solve(I - 0.85 * A, x), rtol=1e-9,
                               atol=1e-9)
    heat = propagate(lambda v: A @ v, x, hops=math.inf, coeffs="heat", t=2.0, tol=1e-14)
    ref = torch.from_numpy(scipy.linalg.expm(-2.0 * (I - A).numpy())) @ x
    torch.testing.assert_close(heat, ref, rtol=1e-10, atol=1e-10)
    # the APPNP convention (tail mass on the last power) converges to the same limit
    torch.testing.assert_close(propagate(lambda v: A @ v, x, hops=300, coeffs="ppr",
                                         alpha=0.15), ppr, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("symmetric", [True, False])
def test_inf_gradients_match_dense_solve(symmetric):
    A0 = _rand_A(8, symmetric=symmetric, seed=4)
    r = 0.7 / _rho(A0)
    I = torch.eye(8, dtype=torch.float64)
    w = torch.randn(8, 3, dtype=torch.float64)

    def run(ours):
        A = A0.clone().requires_grad_(True)
        x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
        x.requires_grad_(True)
        Ause = (A + A.T) / 2 if symmetric else A
        if ours:
            out = propagate(lambda v: Ause @ v, x, hops=math.inf, coeffs="katz", r=r,
                            symmetric=symmetric, tol=1e-13)
        else:
            out = torch.linalg.solve(I - r * Ause, r * Ause @ x)
        (out * w).sum().backward()
        return out.detach(), A.grad, x.grad

    for a, b in zip(run(True), run(False)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)


class _NoGrad(torch.autograd.Function):
    """Identity whose backward gives its input an undefined (None) gradient."""

    @staticmethod
    def forward(ctx, y):
        return y.clone()

    @staticmethod
    def backward(ctx, grad):
        return None


def test_inf_backward_with_undefined_and_partial_gradients():
    A0 = _rand_A(7, symmetric=False, seed=6)
    c = 0.6 / _rho(A0)
    I = torch.eye(7, dtype=torch.float64)
    x0 = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    rho = _rho(A0)

    def ours(A, x):
        return propagate(lambda v: A @ v, x, hops=math.inf, coeffs="katz", r=c, rho=rho,
                         tol=1e-13)

    def dense(A, x):
        return torch.linalg.solve(I - c * A, c * A @ x)

    # 1. the solve's output gets an undefined gradient: nothing flows to A, x keeps its own
    A, x = A0.clone().requires_grad_(), x0.clone().requires_grad_()
    loss = _NoGrad.apply(ours(A, x)).sum() + (3 * x).sum()
    gx, gA = torch.autograd.grad(loss, (x, A), allow_unused=True)
    torch.testing.assert_close(gx, torch.full_like(x0, 3.0))
    assert gA is None or not bool(gA.any())
    # 2. only some inputs require a gradient, only one output column is used
    for need_A, need_x in ((True, False), (False, True)):
        grads = []
        for f in (ours, dense):
            A = A0.clone().requires_grad_(need_A)
            x = x0.clone().requires_grad_(need_x)
            (g,) = torch.autograd.grad(f(A, x)[:, 1].square().sum(), A if need_A else x)
            grads.append(g)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-8, atol=1e-9)
    # 3. an operator that ignores its input (A = 0): y = alpha x, dy/dx = alpha
    x = x0.clone().requires_grad_()
    y = propagate(lambda v: torch.zeros_like(v), x, hops=math.inf, coeffs="ppr", alpha=0.3,
                  rho=0.0)
    (gx,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(gx, torch.full_like(x0, 0.3))


def test_divergent_decay_is_an_error():
    A = _rand_A(6, symmetric=False, seed=6)
    rho = _rho(A)
    x = torch.ones(6, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="diverges"):
        propagate(lambda v: A @ v, x, hops=math.inf, coeffs="katz", r=1.0 / rho)
    with pytest.raises(ValueError, match="diverges"):
        propagate(lambda v: A @ v, x, hops=math.inf, coeffs="ppr", alpha=0.1, rho=2.0)
    # without r, katz uses 0.9 / rho(A) (estimated)
    I = torch.eye(6, dtype=torch.float64)
    out = propagate(lambda v: A @ v, x, hops=math.inf, coeffs="katz", tol=1e-12)
    torch.testing.assert_close(out, torch.linalg.solve(I - 0.9 / rho * A, x) - x, rtol=1e-8,
                               atol=1e-8)


def test_propagate_input_errors():
    A = torch.eye(3)
    x = torch.ones(3, 2)
    with pytest.raises(TypeError, match="callable"):
        propagate(A, x, hops=2)
    with pytest.raises(ValueError, match="NaN"):
        propagate(lambda v: v, torch.tensor([[1.0], [float("nan")], [0.0]]), hops=2)
    with pytest.raises(ValueError, match="finite number of hops"):
        propagate(lambda v: v, x, hops=math.inf, coeffs=torch.ones(3))
    with pytest.raises(ValueError, match="no infinite-hop limit"):
        propagate(lambda v: v, x, hops=math.inf, coeffs="uniform")
    with pytest.raises(ValueError, match="unknown coefficient family"):
        propagate(lambda v: v, x, hops=2, coeffs="nope")
    with pytest.raises(RuntimeError, match="did not reach"):
        B = _rand_A(30, symmetric=False, seed=7)
        propagate(lambda v: B @ v, torch.randn(30, 1, dtype=torch.float64), hops=math.inf,
                  coeffs="katz", r=0.99 / _rho(B), tol=1e-14, max_iter=2)


@pytest.mark.parametrize("symmetric", [True, False])
def test_solve_linear_on_float32_slices_near_underflow_and_overflow(symmetric):
    """Slices of b scaled by 1e-20 (squared norms below float32's smallest normal number:
    CG made no progress and raised after max_iter; a gradient of AffinityDiffusion(K=inf)
    on Cora had such a column) and by 1e20 (squared norms overflow to inf: the stopping test
    passed at once and returned b) against the float64 dense solve."""
    A = _rand_A(40, symmetric=symmetric, seed=3, density=0.2)
    M = torch.eye(40, dtype=torch.float64) - 0.9 / _rho(A) * A
    g = torch.Generator().manual_seed(0)
    b = torch.randn(40, 3, generator=g, dtype=torch.float64)
    b[:, 1] *= 1e-20
    b[:, 2] *= 1e20
    M32 = M.float()
    y = solve_linear(lambda v: M32 @ v, b.float(), symmetric=symmetric, tol=1e-6)
    expected = torch.linalg.solve(M, b)
    for c in range(3):
        err = (y[:, c].double() - expected[:, c]).norm() / expected[:, c].norm()
        assert err < 1e-4, (c, err)
    zero = solve_linear(lambda v: M32 @ v, torch.zeros(40, 2), symmetric=symmetric)
    assert torch.equal(zero, torch.zeros(40, 2))


# ---------------------------------------------------------------- spectral radius

@pytest.mark.parametrize("symmetric", [True, False])
def test_spectral_radius_matches_eigvals(symmetric):
    A = _rand_A(40, symmetric=symmetric, seed=8, density=0.2)
    ref = _rho(A)
    assert spectral_radius_dense(A) == pytest.approx(ref, rel=1e-8)
    assert spectral_radius_op(lambda v: A @ v, torch.zeros(40, 5, dtype=torch.float64),
                              symmetric=symmetric) == pytest.approx(ref, rel=1e-8)
    idx = A.nonzero().T  # (i, j) -> edge j -> i
    edge_index = torch.stack([idx[1], idx[0]])
    assert spectral_radius(edge_index, A[idx[0], idx[1]], 40) == pytest.approx(ref, rel=1e-8)


def test_spectral_radius_bipartite_and_tiny():
    # a path graph is bipartite: eigenvalues +-rho, which plain power iteration cannot separate
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4], [1, 0, 2, 1, 3, 2, 4, 3]])
    assert spectral_radius(edge_index, num_nodes=5) == pytest.approx(2 * math.cos(math.pi / 6),
                                                                     rel=1e-10)
    assert spectral_radius(torch.tensor([[0], [1]]), torch.tensor([2.0]), 2) == 0.0  # nilpotent
    assert spectral_radius(torch.empty(2, 0, dtype=torch.long), num_nodes=3) == 0.0
    with pytest.raises(ValueError, match="out of range"):
        spectral_radius(torch.tensor([[0], [5]]), num_nodes=3)
    with pytest.raises(ValueError, match="square"):
        spectral_radius_dense(torch.ones(2, 3))


def _forest(n_trees, seed):
    """Undirected edges of ``n_trees`` random trees of 2-8 nodes each, and the node count."""
    g = torch.Generator().manual_seed(seed)
    edges, off = [], 0
    for _ in range(n_trees):
        size = int(torch.randint(2, 9, (1,), generator=g))
        for v in range(1, size):
            u = int(torch.randint(0, v, (1,), generator=g))
            edges += [(off + u, off + v), (off + v, off + u)]
        off += size
    return torch.tensor(edges).T, off


def test_spectral_radius_of_float32_weights_on_many_components():
    # CiteSeer's failure: D^-1/2 (A + I) D^-1/2 has eigenvalue 1 once per component; float32
    # weights split those copies into a cluster ~1e-7 wide that ARPACK cannot resolve to 1e-10
    # (it raised ArpackNoConvergence), so the tolerance is floored at the weights' epsilon.
    from affgraph.affinity import normalize_edge_weight

    edge_index, n = _forest(50, seed=0)
    ei, w = normalize_edge_weight(edge_index, torch.ones(edge_index.size(1)), n, mode="sym",
                                  add_self_loops=True)
    assert w.dtype == torch.float32
    A = torch.zeros(n, n, dtype=torch.float64)
    A[ei[1], ei[0]] = w.double()
    ref = float(np.linalg.eigvalsh(A.numpy()).max())  # 1 up to float32 rounding
    assert ref == pytest.approx(1.0, abs=1e-6)
    eps = torch.finfo(torch.float32).eps
    assert spectral_radius(ei, w, n, symmetric=True) == pytest.approx(ref, rel=10 * eps)
    assert spectral_radius_dense(A.float()) == pytest.approx(ref, rel=10 * eps)
    assert spectral_radius_op(lambda v: A.float() @ v, torch.zeros(n, 3)) == \
        pytest.approx(ref, rel=10 * eps)
    # float64 weights keep the fine tolerance
    ei64, w64 = normalize_edge_weight(edge_index, torch.ones(edge_index.size(1),
                                                             dtype=torch.float64), n,
                                      mode="sym", add_self_loops=True)
    assert spectral_radius(ei64, w64, n) == pytest.approx(1.0, rel=1e-10)
    # and the infinite-hop ppr diffusion that needs it matches the float64 closed form
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    out = diffuse(x, edge_index, hops=math.inf, coeffs="ppr", alpha=0.1, normalize="sym",
                  add_self_loops=True)
    closed = 0.1 * torch.linalg.solve(torch.eye(n, dtype=torch.float64) - 0.9 * A, x.double())
    torch.testing.assert_close(out.double(), closed, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- diffuse (sparse graphs)

def _nx_graph(n=10, p=0.35, seed=0):
    rng = np.random.default_rng(seed)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for i in range(n):
        for j in range(n):
            if i != j and rng.random() < p:
                g.add_edge(i, j, weight=float(rng.uniform(0.2, 3.0)))
    return g


def _edges(g):
    e = list(g.edges(data="weight"))
    edge_index = torch.tensor([[a for a, _, _ in e], [b for _, b, _ in e]])
    return edge_index, torch.tensor([w for _, _, w in e], dtype=torch.float64)


def test_diffuse_katz_matches_networkx_weighted():
    g = _nx_graph()
    edge_index, w = _edges(g)
    Aij = nx.to_numpy_array(g, nodelist=range(10), weight="weight")
    r = 0.85 / float(np.abs(np.linalg.eigvals(Aij)).max())
    ones = torch.ones(10, dtype=torch.float64)
    s = diffuse(ones, edge_index, w, hops=math.inf, coeffs="katz", r=r, tol=1e-12) + 1.0
    ref = nx.katz_centrality_numpy(g, alpha=r, beta=1.0, weight="weight")
    np.testing.assert_allclose(s.numpy() / np.linalg.norm(s.numpy()),
                               [ref[i] for i in range(10)], rtol=1e-9)
    # default r = 0.9 / rho(A)
    A = torch.from_numpy(Aij.T.copy())
    r9 = 0.9 / _rho(A)
    ref9 = torch.linalg.solve(torch.eye(10, dtype=torch.float64) - r9 * A, ones) - ones
    torch.testing.assert_close(diffuse(ones, edge_index, w, hops=math.inf, tol=1e-12), ref9,
                               rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("normalize", ["sym", "row", "none"])
def test_diffuse_normalisations_match_dense(normalize):
    g = _nx_graph(seed=1).to_undirected() if normalize == "sym" else _nx_graph(seed=1)
    g = nx.DiGraph(g)
    edge_index, w = _edges(g)
    A = torch.from_numpy(nx.to_numpy_array(g, nodelist=range(10), weight="weight").T.copy())
    A = A + torch.eye(10, dtype=torch.float64)
    d = A.sum(1)
    if normalize == "sym":
        A = A / d.sqrt()[:, None] / d.sqrt()[None, :]
    elif normalize == "row":
        A = A / d[:, None]
    x = torch.randn(10, 3, dtype=torch.float64)
    for coeffs, hops in [("ppr", 6), ("heat", 4), ("power", 3), ("ppr", math.inf)]:
        if hops == math.inf and normalize == "none":  # rho(A) > 1/(1-alpha): checked below
            continue
        kw = dict(ppr=dict(alpha=0.2), heat=dict(t=1.0)).get(coeffs, {})
        out = diffuse(x, edge_index, w, hops=hops, coeffs=coeffs, normalize=normalize,
                      add_self_loops=True, tol=1e-12, **kw)
        if hops == math.inf:
            ref = 0.2 * torch.linalg.solve(torch.eye(10, dtype=torch.float64) - 0.8 * A, x)
        else:
            ref = _dense_series(A, x, coefficients(coeffs, hops, **kw))
        torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
    if normalize == "none":
        with pytest.raises(ValueError, match="diverges"):
            diffuse(x, edge_index, w, hops=math.inf, coeffs="ppr", add_self_loops=True)


def test_diffuse_gradient_to_edge_weights():
    g = _nx_graph(n=6, seed=2)
    edge_index, w = _edges(g)
    w.requires_grad_(True)
    x = torch.randn(6, 2, dtype=torch.float64)
    out = diffuse(x, edge_index, w, hops=3, coeffs="katz", r=0.2)
    out.square().sum().backward()
    wd = w.detach().clone().requires_grad_(True)
    A = torch.zeros(6, 6, dtype=torch.float64).index_put((edge_index[1], edge_index[0]), wd)
    ref = sum(0.2 ** k * torch.linalg.matrix_power(A, k) @ x for k in range(1, 4))
    ref.square().sum().backward()
    torch.testing.assert_close(w.grad, wd.grad, rtol=1e-10, atol=1e-12)


def test_diffuse_empty_disconnected_and_bad_input():
    x = torch.randn(4, 2, dtype=torch.float64)
    empty = torch.empty(2, 0, dtype=torch.long)
    torch.testing.assert_close(diffuse(x, empty, hops=3, coeffs="ppr", alpha=0.3),
                               0.3 * x)  # only the 0-hop term
    torch.testing.assert_close(diffuse(x, empty, hops=math.inf, coeffs="katz", r=0.5),
                               torch.zeros_like(x))
    # two components: each diffuses on its own
    ei = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    out = diffuse(x, ei, hops=math.inf, coeffs="katz", r=0.5, tol=1e-12)
    A = torch.tensor([[0, 1.0], [1.0, 0]], dtype=torch.float64)
    blk = torch.linalg.solve(torch.eye(2, dtype=torch.float64) - 0.5 * A, 0.5 * A)
    torch.testing.assert_close(out[:2], blk @ x[:2], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out[2:], blk @ x[2:], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="out of range"):
        diffuse(x, torch.tensor([[0], [7]]), hops=2)
    with pytest.raises(ValueError, match="NaN"):
        diffuse(x, ei, torch.tensor([1.0, float("inf"), 1.0, 1.0]), hops=2)
    with pytest.raises(ValueError, match="normalisation mode"):
        diffuse(x, ei, hops=2, normalize="bogus")
    with pytest.raises(ValueError, match="diverges"):
        diffuse(x, ei, hops=math.inf, coeffs="katz", r=1.0)
    with pytest.raises(ValueError, match="give r explicitly"):
        diffuse(x, torch.tensor([[0], [1]]), hops=2)  # nilpotent: rho = 0


@pytest.mark.parametrize("normalize", ["none", "sym", "row", "softmax"])
def test_diffuse_without_nodes_and_with_zero_weights(normalize):
    # no nodes: an empty, differentiable output for every hop count
    x0 = torch.empty(0, 2, dtype=torch.float64, requires_grad=True)
    empty = torch.empty(2, 0, dtype=torch.long)
    for hops in (2, math.inf):
        out = diffuse(x0, empty, hops=hops, coeffs="ppr", normalize=normalize)
        assert out.shape == (0, 2)
        out.sum().backward()
    # edges whose weights are all zero: A = 0 (rho = 0), so the ppr series is alpha x
    x = torch.randn(6, 2, dtype=torch.float64)
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    if normalize != "softmax":  # softmax of equal logits is uniform, not zero
        out = diffuse(x, ei, torch.zeros(4, dtype=torch.float64), hops=math.inf, coeffs="ppr",
                      alpha=0.3, normalize=normalize)
        torch.testing.assert_close(out, 0.3 * x)


def _dense_normalised(edge_index, w, n, mode, add_self_loops):
    from affgraph.affinity import normalize_edge_weight

    ei, wn = normalize_edge_weight(edge_index, w, n, mode=mode, add_self_loops=add_self_loops)
    A = torch.zeros(n, n, dtype=torch.float64)
    return A.index_put_((ei[1], ei[0]), wn.double(), accumulate=True)


@pytest.mark.parametrize("mode", ["sym", "row", "softmax"])
def test_normalised_non_negative_graphs_have_rho_at_most_one(mode):
    """The bound diffuse uses instead of an eigen-solve, against numpy's eigenvalues: directed
    graphs with isolated nodes, zero weights and no self-loops (rho <= 1), and with self-loops
    (rho = 1: every row is then non-empty)."""
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        n = 12
        ei = torch.unique(torch.randint(0, n - 2, (2, 30), generator=g), dim=1)  # 2 isolated
        w = torch.rand(ei.size(1), generator=g, dtype=torch.float64)
        w[::5] = 0.0
        assert _rho(_dense_normalised(ei, w, n, mode, False)) <= 1.0 + 1e-10
        assert _rho(_dense_normalised(ei, w, n, mode, True)) == pytest.approx(1.0, abs=1e-10)


def test_diffuse_closed_forms_skip_the_eigen_solve_only_when_the_bound_settles_it(monkeypatch):
    import affgraph.diffusion as D

    calls = []
    real = D.spectral_radius

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(D, "spectral_radius", counting)
    n = 9
    g = torch.Generator().manual_seed(3)
    ei = torch.unique(torch.randint(0, n, (2, 30), generator=g), dim=1)
    w = torch.rand(ei.size(1), generator=g, dtype=torch.float64) + 0.1
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    I = torch.eye(n, dtype=torch.float64)
    for mode in ("sym", "row", "softmax"):
        A = _dense_normalised(ei, w, n, mode, True)
        out = diffuse(x, ei, w, hops=math.inf, coeffs="ppr", alpha=0.2, normalize=mode,
                      add_self_loops=True, tol=1e-12)
        torch.testing.assert_close(out, 0.2 * torch.linalg.solve(I - 0.8 * A, x),
                                   rtol=1e-9, atol=1e-9)
        out = diffuse(x, ei, w, hops=math.inf, coeffs="katz", r=0.5, normalize=mode,
                      add_self_loops=True, tol=1e-12)
        torch.testing.assert_close(out, torch.linalg.solve(I - 0.5 * A, 0.5 * A @ x),
                                   rtol=1e-9, atol=1e-9)
    assert calls == []
    # the default Katz decay 0.9 / rho(A) needs rho itself
    diffuse(x, ei, w, hops=math.inf, coeffs="katz", normalize="row", tol=1e-12)
    assert len(calls) == 1
    # signed weights: row normalisation gives no bound, and rho(A) > 1 / (1 - alpha) here
    ws = w.clone()
    ws[::2] *= -1.0
    A = _dense_normalised(ei, ws, n, "row", False)
    assert _rho(A) > 1 / 0.9
    with pytest.raises(ValueError, match="diverges"):
        diffuse(x, ei, ws, hops=math.inf, coeffs="ppr", alpha=0.1, normalize="row")
    assert len(calls) == 2


def test_symmetry_check_adds_duplicate_edges_and_ignores_zero_entries():
    from affgraph.diffusion import _is_symmetric

    ei = torch.tensor([[0, 0, 1, 2, 3], [1, 1, 0, 3, 2]])  # 0->1 twice, 1->0 once
    assert _is_symmetric(ei, torch.tensor([0.5, 0.5, 1.0, 2.0, 2.0]), 4)
    assert not _is_symmetric(ei, torch.tensor([0.5, 0.6, 1.0, 2.0, 2.0]), 4)
    one_sided_zero = torch.tensor([[0, 1, 2], [1, 0, 3]])
    assert _is_symmetric(one_sided_zero, torch.tensor([1.0, 1.0, 0.0]), 4)
    assert not _is_symmetric(one_sided_zero, torch.tensor([1.0, 1.0, 1e-3]), 4)
    assert _is_symmetric(torch.empty(2, 0, dtype=torch.long), torch.empty(0), 4)
    for seed in range(10):  # against the dense test
        A = _rand_A(15, symmetric=seed % 2 == 0, seed=seed, density=0.3)
        dst, src = A.nonzero(as_tuple=True)
        assert _is_symmetric(torch.stack([src, dst]), A[dst, src], 15) == bool(
            torch.equal(A, A.T))


def test_spectral_radius_of_operators_that_annihilate_the_ones_vector():
    # ARPACK starts from A 1; A 1 = 0 must not be an error (zero matrix, or rows summing to 0)
    from affgraph.diffusion import spectral_radius_op

    zero = torch.zeros(6, 6, dtype=torch.float64)
    assert spectral_radius_dense(zero) == 0.0
    assert spectral_radius_op(lambda v: zero @ v, torch.ones(6, 2, dtype=torch.float64)) == 0.0
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    assert spectral_radius(ei, torch.zeros(4), num_nodes=6) == 0.0
    A = torch.zeros(6, 6, dtype=torch.float64)
    A[0, 0], A[0, 1], A[2, 3], A[3, 2], A[2, 2], A[3, 3] = 2.0, -2.0, 1.0, 1.0, -1.0, -1.0
    assert not bool((A @ torch.ones(6, dtype=torch.float64)).any())
    ref = float(np.abs(np.linalg.eigvals(A.numpy())).max())  # 2
    for symmetric in (None, False):
        assert spectral_radius_dense(A, symmetric=symmetric) == pytest.approx(ref, rel=1e-8)
    src, dst = A.T.nonzero(as_tuple=True)  # A_ij = w_{j -> i}
    assert spectral_radius(torch.stack([src, dst]), A.T[src, dst], 6) == \
        pytest.approx(ref, rel=1e-8)


# ---------------------------------------------------------------- Lanczos Katz

def test_katz_lanczos_eigenvalue_and_series():
    from affgraph.diffusion import katz_lanczos

    A = _rand_A(40, symmetric=True, seed=9, density=0.3) - 0.2  # signed, symmetric
    lam = float(torch.linalg.eigvalsh(A)[-1])
    b = torch.randn(40, dtype=torch.float64)
    y, lam_ours = katz_lanczos(lambda v: A @ v, b, r_frac=0.8)
    assert lam_ours == pytest.approx(lam, rel=1e-12)
    r = 0.8 / lam
    I = torch.eye(40, dtype=torch.float64)
    torch.testing.assert_close(y, torch.linalg.solve(I - r * A, r * A @ b), rtol=1e-9, atol=1e-9)
    y3, _ = katz_lanczos(lambda v: A @ v, b, r_frac=0.8, hops=3)
    ref3 = sum(r ** k * torch.linalg.matrix_power(A, k) @ b for k in (1, 2, 3))
    torch.testing.assert_close(y3, ref3, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="diverges"):
        katz_lanczos(lambda v: A @ v, b, r_frac=1.0)
    with pytest.raises(ValueError, match="not positive"):
        katz_lanczos(lambda v: -torch.eye(40, dtype=torch.float64) @ v, b, r_frac=0.5)


# ---------------------------------------------------------------- one meaning per parameter

def test_family_parameters_are_refused_for_other_families():
    A = _rand_A(5, symmetric=True, seed=3)
    x = torch.randn(5, 2, dtype=torch.float64)
    ei = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    for call in (lambda **kw: coefficients(kw.pop("coeffs"), 3, **kw),
                 lambda **kw: propagate(lambda v: A @ v, x, hops=3, **kw),
                 lambda **kw: diffuse(x, ei, hops=3, **kw)):
        with pytest.raises(ValueError, match=r"alpha=0.2 applies to coeffs='ppr' only"):
            call(coeffs="katz", r=0.3, alpha=0.2)
        with pytest.raises(ValueError, match=r"r=0.3 applies to coeffs='katz' or 'inffs'"):
            call(coeffs="ppr", r=0.3)
        with pytest.raises(ValueError, match=r"t=1.0 applies to coeffs='heat' only"):
            call(coeffs="power", t=1.0)
        with pytest.raises(ValueError, match="not to a coefficient tensor"):
            call(coeffs=torch.ones(4, dtype=torch.float64), alpha=0.5)
    # None is the family default: ppr alpha 0.1, heat t 1.0
    torch.testing.assert_close(coefficients("ppr", 3), coefficients("ppr", 3, alpha=0.1))
    torch.testing.assert_close(coefficients("heat", 3), coefficients("heat", 3, t=1.0))
    assert family_params("katz") == (None, None, None)
    # hops=1 with "power" is exactly one application A x
    torch.testing.assert_close(propagate(lambda v: A @ v, x, hops=1, coeffs="power"), A @ x,
                               rtol=0, atol=0)


def test_diffuse_accepts_sparse_adjacencies_and_narrow_indices():
    from torch_sparse import SparseTensor

    g = _nx_graph(seed=4)
    edge_index, w = _edges(g)
    x = torch.randn(10, 3, dtype=torch.float64)
    ref = diffuse(x, edge_index, w, hops=4, coeffs="ppr", normalize="sym", add_self_loops=True)
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), w, (10, 10))
    sp = SparseTensor(row=edge_index[1], col=edge_index[0], value=w, sparse_sizes=(10, 10))
    for graph, weight in [(adj_t, None), (adj_t.to_sparse_csr(), None), (sp, None),
                          (edge_index.int(), w)]:
        out = diffuse(x, graph, weight, hops=4, coeffs="ppr", normalize="sym",
                      add_self_loops=True)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


def test_diffuse_dropout_draws_one_mask_per_hop():
    """dropout=p: hop k uses F.dropout(w, p) drawn afresh from the (normalised) weights; the
    oracle replays the same draws (same seed, same order) on a dense matrix."""
    g = _nx_graph(seed=5)
    edge_index, w = _edges(g)
    x = torch.randn(10, 2, dtype=torch.float64)
    torch.manual_seed(0)
    out = diffuse(x, edge_index, w, hops=3, coeffs="katz", r=0.4, dropout=0.3)
    torch.manual_seed(0)
    y = (0.4 ** 3) * x
    for k in (2, 1, 0):  # Horner: y = A_k y + theta_k x, the first A applied first
        wk = torch.nn.functional.dropout(w, p=0.3)
        A = torch.zeros(10, 10, dtype=x.dtype).index_put((edge_index[1], edge_index[0]), wk,
                                                         accumulate=True)
        y = A @ y + (0.4 ** k if k else 0.0) * x
    torch.testing.assert_close(out, y, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="finite number of hops"):
        diffuse(x, edge_index, w, hops=math.inf, coeffs="katz", r=0.1, dropout=0.3)
    with pytest.raises(ValueError, match="dropout must lie in"):
        diffuse(x, edge_index, w, hops=2, dropout=-0.1)
