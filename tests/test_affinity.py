import math

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity, rbf_kernel
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from affgraph.affinity import (cosine, dot_product, normalize_edge_weight, rbf,
                               segment_softmax)


def random_graph(n=7, e=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    w = torch.rand(e, generator=g, dtype=torch.float64) + 0.1
    return ei, w


def dense(ei, w, n):
    """Dense A with A[i, j] = sum of the weights of the edges j -> i (float64)."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a.index_put_((ei[1], ei[0]), w.double(), accumulate=True)
    return a


# ---------------------------------------------------------------- normalize_edge_weight
@pytest.mark.parametrize("self_loops", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_sym_matches_gcn_norm(self_loops, weighted):
    ei, w = random_graph()
    w = w if weighted else None
    ref_ei, ref_w = gcn_norm(ei, w, 7, add_self_loops=self_loops, dtype=torch.float64)
    out_ei, out_w = normalize_edge_weight(ei, w, 7, "sym", add_self_loops=self_loops)
    assert torch.equal(out_ei, ref_ei)
    torch.testing.assert_close(out_w.double(), ref_w.double())


def test_sym_matches_dense_float64_with_isolated_node():
    ei, w = random_graph(n=6, e=12, seed=3)
    ei = ei.clone()
    ei[ei == 5] = 4  # node 5 isolated
    a = dense(ei, w, 6)
    d = a.sum(1)
    dinv = torch.where(d > 0, d.pow(-0.5), torch.zeros_like(d))
    ref = dinv[:, None] * a * dinv[None, :]
    out_ei, out_w = normalize_edge_weight(ei, w, 6, "sym")
    torch.testing.assert_close(dense(out_ei, out_w, 6), ref)
    assert torch.isfinite(out_w).all()


def test_row_is_row_stochastic_and_matches_dense():
    ei, w = random_graph(seed=1)
    a = dense(ei, w, 7)
    d = a.sum(1, keepdim=True)
    ref = torch.where(d > 0, a / d.clamp_min(1e-300), torch.zeros_like(a))
    out_ei, out_w = normalize_edge_weight(ei, w, 7, "row")
    torch.testing.assert_close(dense(out_ei, out_w, 7), ref)


def test_softmax_per_target_row_float64():
    ei = torch.tensor([[0, 1, 2, 0, 3], [1, 1, 1, 2, 2]])
    w = torch.tensor([0.5, -1.0, 2.0, 3.0, 3.0], dtype=torch.float64)
    _, out = normalize_edge_weight(ei, w, 4, "softmax")
    e = np.exp([0.5, -1.0, 2.0])
    ref = np.concatenate([e / e.sum(), [0.5, 0.5]])
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


def test_softmax_none_weight_is_uniform_and_self_loops_fill():
    ei = torch.tensor([[0, 2], [1, 1]])
    out_ei, out = normalize_edge_weight(ei, None, 3, "softmax", add_self_loops=True, fill_value=0.0)
    a = dense(out_ei, out, 3)
    torch.testing.assert_close(a.sum(1), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(a[1], torch.full((3,), 1 / 3, dtype=torch.float64))


def test_multi_head_weights_and_none_mode():
    ei, _ = random_graph(seed=2)
    w = torch.rand(20, 3, dtype=torch.float64)
    _, out = normalize_edge_weight(ei, w, 7, "row")
    for h in range(3):
        _, ref = normalize_edge_weight(ei, w[:, h].contiguous(), 7, "row")
        torch.testing.assert_close(out[:, h], ref)
    assert torch.equal(normalize_edge_weight(ei, w, 7, "none")[1], w)


def test_segment_softmax_matches_dense_masked_softmax():
    ei, w = random_graph(n=5, e=10, seed=4)
    ei = torch.unique(ei, dim=1)
    w = torch.randn(ei.size(1), dtype=torch.float64)
    logits = torch.full((5, 5), -math.inf, dtype=torch.float64)
    logits[ei[1], ei[0]] = w
    ref = torch.softmax(logits, 1).nan_to_num(0.0)[ei[1], ei[0]]
    torch.testing.assert_close(segment_softmax(w, ei[1], 5), ref)


@pytest.mark.parametrize("bad", [
    dict(mode="unknown"),
    dict(edge_weight=torch.tensor([1.0, float("nan")])),
    dict(edge_weight=torch.ones(3)),
    dict(edge_index=torch.tensor([[0, 5], [1, 1]])),
    dict(edge_weight=torch.tensor([-1.0, -1.0]), mode="sym"),
    dict(edge_weight=torch.tensor([1, 2])),
])
def test_bad_input(bad):
    args = dict(edge_index=torch.tensor([[0, 2], [1, 1]]), edge_weight=None, num_nodes=3,
                mode="sym")
    args.update(bad)
    with pytest.raises(ValueError):
        normalize_edge_weight(**args)


# ---------------------------------------------------------------- kernels
def test_dot_product_dense_matches_explicit_and_edge_form():
    q = torch.randn(5, 3, 4, dtype=torch.float64)
    k = torch.randn(6, 3, 4, dtype=torch.float64)
    d = dot_product(q, k)
    ref = torch.einsum("nhd,mhd->nmh", q, k) / 2.0
    torch.testing.assert_close(d, ref)
    ei = torch.tensor([[0, 5, 3, 2], [4, 0, 0, 1]])
    torch.testing.assert_close(dot_product(q, k, ei), d[ei[1], ei[0]])


def test_low_rank_bilinear_equals_full_form():
    q, k = torch.randn(5, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    wq, wk = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    low = dot_product(q, k, bilinear=(wq, wk), scale=1.0)
    full = dot_product(q, k, bilinear=wq @ wk.T, scale=1.0)
    torch.testing.assert_close(low, full)
    torch.testing.assert_close(full, q @ wq @ wk.T @ k.T)


def test_cosine_and_rbf_match_sklearn():
    q, k = torch.randn(5, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    np.testing.assert_allclose(cosine(q, k).numpy(), cosine_similarity(q.numpy(), k.numpy()),
                               rtol=1e-10)
    np.testing.assert_allclose(rbf(q, k, gamma=0.3).numpy(),
                               rbf_kernel(q.numpy(), k.numpy(), gamma=0.3), rtol=1e-10)
    ei = torch.tensor([[0, 5, 3], [4, 0, 0]])
    torch.testing.assert_close(rbf(q, k, ei), rbf(q, k)[ei[1], ei[0]])
    torch.testing.assert_close(cosine(q, k, ei), cosine(q, k)[ei[1], ei[0]])
    zero = torch.zeros(1, 4, dtype=torch.float64)
    assert torch.equal(cosine(zero, k), torch.zeros(1, 6, dtype=torch.float64))


def test_kernel_bad_input():
    with pytest.raises(ValueError):
        dot_product(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError):
        dot_product(torch.randn(3, 2, 4), torch.randn(3, 3, 4))
    with pytest.raises(ValueError):
        rbf(torch.randn(3, 4), torch.randn(3, 4), gamma=0.0)
    with pytest.raises(ValueError):
        cosine(torch.tensor([[float("inf")]]), torch.ones(1, 1))
    with pytest.raises(ValueError):
        dot_product(torch.randn(3, 4), torch.randn(3, 4), torch.tensor([[0], [3]]))
