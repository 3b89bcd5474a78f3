"""The CSR attention primitives: the head-batched (block-diagonal) path against the per-head
loop and a dense float64 oracle, values and gradients."""
import math

import pytest
import torch

import affgraph._csr as csr_mod
from affgraph._csr import CSR, csr_attention, spmm


def _graph(n=13, e=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    loops = torch.arange(n).repeat(2, 1)  # every row has an edge
    return torch.cat([ei, loops], 1)


def _dense_attention(q, k, v, ei, scale):
    """float64 oracle: softmax over each target's in-edges (duplicates counted twice)."""
    n, h = q.size(0), q.size(1)
    logits = torch.einsum("ehd,ehd->eh", q[ei[1]], k[ei[0]]) * scale
    out = torch.zeros(n, h, v.size(2), dtype=torch.float64)
    for i in range(n):
        m = ei[1] == i
        w = torch.softmax(logits[m], 0)
        out[i] = torch.einsum("eh,ehc->hc", w, v[ei[0][m]])
    return out


@pytest.mark.parametrize("batched", [True, False])
def test_csr_attention_matches_the_dense_oracle(monkeypatch, batched):
    monkeypatch.setattr(csr_mod, "BATCH_HEADS_MAX", 1 << 21 if batched else 0)
    ei = _graph()
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(13, 3, 4, generator=g, dtype=torch.float64) for _ in range(3))
    out, alpha = csr_attention(q, k, v, CSR(ei, 13, 13), 0.5)
    torch.testing.assert_close(out, _dense_attention(q, k, v, ei, 0.5), rtol=1e-10, atol=1e-12)
    assert alpha.shape == (ei.size(1), 3)


def test_batched_heads_equal_the_per_head_loop_with_gradients(monkeypatch):
    ei = _graph(n=17, e=60, seed=2)
    g = torch.Generator().manual_seed(3)
    base = [torch.randn(17, 4, 5, generator=g) for _ in range(3)]
    w = torch.randn(17, 4, 5, generator=g)

    def run(limit):
        monkeypatch.setattr(csr_mod, "BATCH_HEADS_MAX", limit)
        q, k, v = (t.clone().requires_grad_() for t in base)
        csr = CSR(ei, 17, 17)
        out, alpha = csr_attention(q, k, v, csr, 1 / math.sqrt(5))
        two_hops = spmm(csr, alpha, out)  # a second hop through the same weights
        (two_hops * w).sum().backward()
        return two_hops, alpha, q.grad, k.grad, v.grad

    for a, b in zip(run(1 << 21), run(0)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_batched_structure_is_block_diagonal_and_cached():
    ei = torch.tensor([[1, 0, 2], [0, 1, 1]])  # edges 1->0, 0->1, 2->1 on 3 sources, 2 targets
    csr = CSR(ei, num_src=3, num_dst=2)
    big = csr.batched(2)
    assert big is csr.batched(2) and csr.batched(1) is csr
    assert (big.num_dst, big.num_src) == (4, 6)
    assert big.ptr.tolist() == [0, 1, 3, 4, 6]
    assert big.col.tolist() == [1, 0, 2, 4, 3, 5]
    assert big.row.tolist() == [0, 1, 1, 2, 3, 3]
    dense = big.matrix(torch.arange(1.0, 7.0)).to_dense()
    assert dense[:2, 3:].abs().sum() == 0 and dense[2:, :3].abs().sum() == 0  # no cross-head
    assert torch.equal(dense[2:, 3:], csr.matrix(torch.arange(4.0, 7.0)).to_dense())


def test_large_supports_loop_over_heads(monkeypatch):
    monkeypatch.setattr(csr_mod, "BATCH_HEADS_MAX", 10)
    csr = CSR(_graph(), 13, 13)
    q = torch.randn(13, 2, 3)
    csr_attention(q, q, q, csr, 1.0)
    assert csr._batched == {}  # 2 heads x 53 edges > 10: no block-diagonal copy was made


@pytest.mark.parametrize("width", [1, 3, 7, 8, 11])
def test_sddmm_any_width_matches_the_edge_dot_products(width):
    """Widths below 8 are padded on the CPU; the values are the plain dot products."""
    ei = _graph(n=15, e=50, seed=4)
    csr = CSR(ei, 15, 15)
    g = torch.Generator().manual_seed(width)
    a, b = torch.randn(15, width, generator=g), torch.randn(15, width, generator=g)
    ref = (a[csr.row] * b[csr.col]).sum(1) * 0.25
    torch.testing.assert_close(csr.sddmm(a, b, 0.25), ref, rtol=1e-5, atol=1e-6)


def test_sddmm_on_a_multigraph_with_more_edges_than_entries():
    """nnz > N * M (torch's sampled product refuses it): the per-edge products, in order."""
    g = torch.Generator().manual_seed(3)
    ei = torch.randint(0, 2, (2, 9), generator=g)  # 9 edges on a 2 x 2 matrix
    a, b = torch.randn(2, 5, generator=g, dtype=torch.float64), torch.randn(2, 5, generator=g,
                                                                          dtype=torch.float64)
    csr = CSR(ei, 2, 2)
    ref = (a[csr.row] * b[csr.col]).sum(-1) * 0.5
    torch.testing.assert_close(csr.sddmm(a, b, 0.5), ref)
    assert torch.equal(ei[:, csr.perm] if csr.perm is not None else ei,
                       torch.stack([csr.col, csr.row]))
