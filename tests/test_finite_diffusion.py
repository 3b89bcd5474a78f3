"""Diffusion stays finite and right at the edges of its parameters.

Heat kernel: large t (exp(-t) underflows from t ~ 104 in float32, 745 in float64) against
scipy.linalg.expm in float64. Katz: r at and near 1/rho(A) (rho of float32 weights is within
about 1e-7 of 1) is refused, a nearly singular r is solved right or fails naming tol/max_iter,
checked against the float64 dense solve.
"""
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from affgraph.attention import attention_diffusion
from affgraph.diffusion import RHO_MARGIN, diffuse, propagate, solve_linear, spectral_radius

F64 = torch.float64
N = 12
TIMES = [1.0, 50.0, 104.0, 200.0, 1000.0]


def graph(seed=0, n=N):
    """An undirected graph without isolated nodes: ``(edge_index, dense A)``."""
    g = torch.Generator().manual_seed(seed)
    a = (torch.rand(n, n, generator=g) < 0.4).double()
    a = ((a + a.T) > 0).double()
    a.fill_diagonal_(0)
    a[torch.arange(n), (torch.arange(n) + 1) % n] = 1.0  # a ring: every node has edges
    a[(torch.arange(n) + 1) % n, torch.arange(n)] = 1.0
    return a.nonzero().t().flip(0).contiguous(), a


def normalised(a, mode):
    deg = a.sum(1)
    if mode == "sym":
        return a / deg.sqrt()[:, None] / deg.sqrt()[None, :]
    return a / deg[:, None]


def heat_ref(m, x, t):
    """exp(-t (I - M)) x in float64 (scipy's Pade scaling-and-squaring)."""
    e = scipy.linalg.expm(-t * (np.eye(m.shape[0]) - m.numpy()))
    return torch.from_numpy(e) @ x.double()


def rel_err(out, ref):
    return ((out.double() - ref).norm() / ref.norm()).item()


# ----------------------------------------------------------------------------------------------
# heat kernel
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("mode", ["sym", "row"])
@pytest.mark.parametrize("dtype", [F64, torch.float32], ids=str)
def test_heat_kernel_large_t_against_expm(t, mode, dtype):
    ei, a = graph()
    x = torch.randn(N, 3, generator=torch.Generator().manual_seed(1), dtype=F64)
    tol = 1e-12 if dtype == F64 else 1e-6
    out = diffuse(x.to(dtype), ei, hops=math.inf, coeffs="heat", t=t, normalize=mode,
                  tol=tol, max_iter=2000)
    assert out.dtype == dtype and torch.isfinite(out).all()
    err = rel_err(out, heat_ref(normalised(a, mode), x, t))
    assert err <= (1e-10 if dtype == F64 else 3e-6), err


@pytest.mark.parametrize("t", [104.0, 200.0])
def test_heat_kernel_large_t_attention(t):
    """hops=inf heat over the row-stochastic attention matrix S, per head."""
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(N, 2, 4, generator=g) for _ in range(3))
    out = attention_diffusion(q, k, v, hops=math.inf, coeffs="heat", t=t)
    s = torch.softmax(torch.einsum("nhd,mhd->hnm", q.double(), k.double()) / 2.0, -1)
    for h in range(2):
        want = heat_ref(s[h], v[:, h], t)
        assert rel_err(out[:, h], want) <= 3e-6


def test_heat_kernel_of_an_unnormalised_graph():
    """rho(A) > 1: the series runs over A / rho(A) at time t rho(A), scaled back."""
    ei, a = graph(seed=4)
    x = torch.randn(N, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    for t in (0.5, 5.0, 20.0):
        out = diffuse(x, ei, hops=math.inf, coeffs="heat", t=t, tol=1e-12, max_iter=2000)
        assert rel_err(out, heat_ref(a, x, t)) <= 1e-10
        got = propagate(lambda v: a @ v, x, hops=math.inf, coeffs="heat", t=t, tol=1e-12,
                        max_iter=2000)
        assert rel_err(got, heat_ref(a, x, t)) <= 1e-10


def test_heat_kernel_overflow_is_a_clear_error():
    """e^(t (rho - 1)) beyond float32: no finite right answer exists."""
    ei, a = graph(seed=4)
    x = torch.ones(N, 1)
    with pytest.raises(ValueError, match="heat kernel .*overflows torch.float32"):
        diffuse(x, ei, hops=math.inf, coeffs="heat", t=40.0, max_iter=5000)


def test_heat_kernel_needs_more_terms_than_max_iter():
    """t = 1000 needs about t + 5 sqrt(t) applications of A: a clear error before the work."""
    ei, _ = graph()
    x = torch.ones(N, 1)
    with pytest.raises(RuntimeError, match=r"t=1000 needs at least 1\d\d\d .*max_iter=1000"):
        diffuse(x, ei, hops=math.inf, coeffs="heat", t=1000.0, normalize="sym")


@pytest.mark.parametrize("t,hops", [(104.0, 200), (200.0, 400), (200.0, 150)])
def test_heat_large_finite_hops(t, hops):
    """The K-term heat series sum_k Poisson(t)_k A^k x (truncated, not renormalised), float32,
    against the Poisson weights of scipy and dense float64 powers."""
    ei, a = graph()
    m = normalised(a, "sym")
    x = torch.randn(N, 2, generator=torch.Generator().manual_seed(6), dtype=F64)
    out = diffuse(x.float(), ei, hops=hops, coeffs="heat", t=t, normalize="sym")
    w = scipy.stats.poisson.pmf(np.arange(hops + 1), t)
    want, y = torch.zeros_like(x), x.clone()
    for k in range(hops + 1):
        want += float(w[k]) * y
        y = m @ y
    assert torch.isfinite(out).all() and want.norm() > 0.1 * x.norm() * w.sum()
    assert rel_err(out, want) <= 1e-5


# ----------------------------------------------------------------------------------------------
# Katz bound and near-singular solves
# ----------------------------------------------------------------------------------------------

def row_graph(dtype):
    ei, a = graph(seed=7)
    m = normalised(a, "row")
    return ei, m, m[ei[1], ei[0]].to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=str)
def test_katz_r_at_one_over_rho_is_refused(dtype):
    """r = 1/rho(A) with rho of the (float32-rounded) weights, and r = 1 (rho 1 in exact
    arithmetic), are refused however rho rounds; so is r within the margin."""
    ei, m, w = row_graph(dtype)
    rho = spectral_radius(ei, w, N)
    assert abs(rho - 1.0) < 1e-6
    x = torch.ones(N, 1, dtype=dtype)
    for r in (1.0 / rho, 1.0, (1.0 - RHO_MARGIN / 2) / rho):
        with pytest.raises(ValueError, match=r"r \* rho\(A\) = .* > 1 - 1e-06"):
            diffuse(x, ei, w, hops=math.inf, coeffs="katz", r=r)
    with pytest.raises(ValueError, match="r = 1.0 > 1 - 1e-06"):
        attention_diffusion(*(torch.randn(N, 1, 4, dtype=dtype) for _ in range(3)),
                            hops=math.inf, coeffs="katz", r=1.0)


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=str)
@pytest.mark.parametrize("gap", [1e-3, 1e-2, 0.1])
def test_katz_r_just_below_the_bound(dtype, gap):
    """r = (1 - gap)/rho against the float64 dense solve (I - rA)^-1 rA x."""
    ei, m, w = row_graph(dtype)
    r = (1.0 - gap) / spectral_radius(ei, w, N)
    x = torch.randn(N, 2, generator=torch.Generator().manual_seed(8), dtype=F64)
    out = diffuse(x.to(dtype), ei, w, hops=math.inf, coeffs="katz", r=r,
                  tol=1e-12 if dtype == F64 else 1e-6)
    a = m.to(dtype).double()
    want = torch.linalg.solve(torch.eye(N, dtype=F64) - r * a, r * a @ x)
    # forward error <= condition number (about 2 / gap) x (tol or float32's rounding)
    bound = (2.0 / gap) * (1e-12 if dtype == F64 else 1e-6)
    assert rel_err(out, want) <= bound


def test_katz_near_singular_float64_is_right():
    """r rho = 1 - 1e-5 (condition ~2e5): the true residual is checked, the answer is the
    dense solve's to 1e-6."""
    ei, m, w = row_graph(F64)
    r = (1.0 - 1e-5) / spectral_radius(ei, w, N)
    x = torch.randn(N, 2, generator=torch.Generator().manual_seed(9), dtype=F64)
    out = diffuse(x, ei, w, hops=math.inf, coeffs="katz", r=r, tol=1e-12, max_iter=5000)
    want = torch.linalg.solve(torch.eye(N, dtype=F64) - r * m, r * m @ x)
    assert rel_err(out, want) <= 1e-6


def test_katz_near_singular_float32_fails_clearly():
    """r rho = 1 - 1e-5 in float32: rounding is amplified ~1e5-fold, so tol=1e-6 cannot be
    reached: a RuntimeError naming tol and max_iter, not a silently wrong answer."""
    ei, m, w = row_graph(torch.float32)
    r = (1.0 - 1e-5) / spectral_radius(ei, w, N)
    x = torch.ones(N, 1)
    with pytest.raises(RuntimeError, match=r"tol=1e-06 in max_iter=1000 .*true relative"):
        diffuse(x, ei, w, hops=math.inf, coeffs="katz", r=r)


def test_solve_linear_checks_the_true_residual():
    """An operator whose first applications are 0.1 % off (so the recursive residual drifts
    from the true one by about 1e-3): the true residual, checked once the iterations stop,
    restarts them from y, and the answer is the exact solve's, not 1e-3 off."""
    g = torch.Generator().manual_seed(10)
    a = torch.rand(8, 8, generator=g, dtype=F64)
    m = torch.eye(8, dtype=F64) * 8 + a + a.T
    b = torch.randn(8, 1, generator=g, dtype=F64)
    for symmetric in (True, False):
        calls = {"n": 0}

        def drifting(v):
            calls["n"] += 1
            return m @ v * (1.0 + (1e-3 if calls["n"] <= 3 else 0.0))

        y = solve_linear(drifting, b, symmetric=symmetric, tol=1e-12)
        assert rel_err(y, torch.linalg.solve(m, b)) <= 1e-10
