"""PyG's own APPNP test (test/nn/conv/test_appnp.py) restated for AffinityDiffusion.

Each test below makes the assertions PyG makes of ``APPNP``, on the same inputs, against
``AffinityDiffusion``; where PyG only checks a property, the output is also compared with
``APPNP`` itself. The differences (one cache instead of two, ``torch.compile`` instead of
TorchScript, dropout drawn afresh at each hop) are stated where they occur.
"""
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import APPNP
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import to_torch_csc_tensor
from torch_sparse import SparseTensor

from affgraph.nn import AffinityDiffusion

# PyG's test graph: node 0 linked both ways to 1, 2 and 3
EDGES = torch.tensor([[0, 0, 0, 1, 2, 3], [1, 2, 3, 0, 0, 0]])
TOL = dict(rtol=1e-5, atol=1e-6)  # PyG's tolerances


def _inputs(seed=0):
    x = torch.randn(4, 16, generator=torch.Generator().manual_seed(seed))
    csc = to_torch_csc_tensor(EDGES, size=(4, 4))
    sp = SparseTensor.from_edge_index(EDGES, sparse_sizes=(4, 4))
    return x, {"edge_index": EDGES, "torch_sparse": csc.t(), "SparseTensor": sp.t()}


def test_appnp_port_forward_repr_and_cache():
    x, graphs = _inputs()
    conv = AffinityDiffusion(K=3, alpha=0.1, cached=True)
    assert str(conv) == "AffinityDiffusion(K=3, alpha=0.1)"
    out = conv(x, EDGES)
    assert out.size() == (4, 16)
    ref = APPNP(K=3, alpha=0.1)(x, EDGES)  # not in PyG's test: the values themselves
    torch.testing.assert_close(out, ref, **TOL)
    for name in ("torch_sparse", "SparseTensor"):
        assert torch.allclose(conv(x, graphs[name]), out, **TOL), name
        # the same from a fresh (uncached) layer, which has to read this graph form
        fresh = AffinityDiffusion(K=3, alpha=0.1)(x, graphs[name])
        torch.testing.assert_close(fresh, ref, **TOL)
    # cached: PyG keeps one cache per input kind (_cached_edge_index, _cached_adj_t); here one
    # normalised graph serves every form, so one cache is filled after the first call
    assert conv._cached_graph is not None
    for name in ("torch_sparse", "SparseTensor"):
        assert torch.allclose(conv(x, EDGES), conv(x, graphs[name]), **TOL)
    conv.reset_parameters()
    assert conv._cached_graph is None
    # PyG's TorchScript check (torch.jit.script(conv)) is replaced by torch.compile, see
    # tests/nn/test_affinity_diffusion.py::test_torch_compile_matches_eager


def test_appnp_port_full_dropout_leaves_alpha_x():
    x, graphs = _inputs(1)
    conv = AffinityDiffusion(K=2, alpha=0.1, dropout=1.0)  # training mode, as PyG's test
    for name, g in graphs.items():
        assert torch.allclose(0.1 * x, conv(x, g), **TOL), name
    torch.testing.assert_close(conv(x, EDGES), APPNP(K=2, alpha=0.1, dropout=1.0)(x, EDGES),
                               **TOL)


def _random_graph(num_nodes, num_edges, kind):
    torch.manual_seed(12345)
    x = torch.randn(num_nodes, 8)
    ei = torch.randint(0, num_nodes, (2, num_edges))
    if kind == "edge_index":
        return x, ei
    if kind == "torch_sparse":
        return x, to_torch_csc_tensor(ei, size=(num_nodes, num_nodes)).t()
    return x, SparseTensor.from_edge_index(ei, sparse_sizes=(num_nodes, num_nodes)).t()


@pytest.mark.parametrize("kind", ["edge_index", "torch_sparse", "SparseTensor"])
def test_dropout_is_drawn_afresh_each_hop(kind, monkeypatch):
    """The assertions of PyG's fix for its cumulative APPNP dropout (pytorch_geometric
    issue #10783, an open pull request's test): each hop keeps about half of the edges, and
    every later hop keeps edges an earlier one dropped (the masks are not nested)."""
    x, g = _random_graph(64, 512, kind)
    per_hop = []
    dropout = F.dropout

    def spy(w, *args, **kwargs):
        out = dropout(w, *args, **kwargs)
        per_hop.append(out.detach().clone())
        return out

    monkeypatch.setattr(torch.nn.functional, "dropout", spy)
    AffinityDiffusion(K=4, alpha=0.1, dropout=0.5)(x, g)
    assert len(per_hop) == 4
    kept = [w != 0 for w in per_hop]
    for prev, cur in zip(kept, kept[1:]):
        assert int((cur & ~prev).sum()) > 0  # an edge dropped earlier is back
    for mask in kept:
        assert 0.3 < mask.float().mean() < 0.7


def test_dropout_leaves_the_given_weights_untouched():
    torch.manual_seed(12345)
    x = torch.randn(32, 8)
    ei = torch.randint(0, 32, (2, 256))
    w = torch.rand(256)
    before = w.clone()
    AffinityDiffusion(K=4, alpha=0.1, dropout=0.5, normalize=False)(x, ei, w)
    assert torch.equal(w, before)


def test_dropout_draws_line_up_with_appnp_under_one_seed():
    """Same seed, same draws: one hop equals APPNP's (its first hop drops the normalised
    weights as ours does); K hops equal the APPNP iteration with a mask drawn afresh from the
    normalised weights at every hop, in gcn_norm's edge order (the oracle below). PyG's own
    K > 1 output differs: it drops the previous hop's dropped weights again."""
    torch.manual_seed(3)
    x = torch.randn(20, 5, dtype=torch.float64)
    ei = torch.randint(0, 20, (2, 70))
    w = torch.rand(70, dtype=torch.float64) + 0.1
    torch.manual_seed(7)
    ours = AffinityDiffusion(1, 0.2, 0.4)(x, ei, w)
    torch.manual_seed(7)
    torch.testing.assert_close(ours, APPNP(1, 0.2, 0.4)(x, ei, w), rtol=1e-12, atol=1e-12)

    ei2, w2 = gcn_norm(ei, w, 20, add_self_loops=True, dtype=x.dtype)
    torch.manual_seed(11)
    ours = AffinityDiffusion(5, 0.2, 0.4)(x, ei, w)
    torch.manual_seed(11)
    h = x
    for _ in range(5):
        wk = F.dropout(w2, p=0.4)
        A = torch.zeros(20, 20, dtype=x.dtype).index_put((ei2[1], ei2[0]), wk, accumulate=True)
        h = 0.8 * A @ h + 0.2 * x
    torch.testing.assert_close(ours, h, rtol=1e-12, atol=1e-12)
    # in evaluation mode there is no dropout: APPNP's output exactly
    layer = AffinityDiffusion(5, 0.2, 0.4).eval()
    torch.testing.assert_close(layer(x, ei, w), APPNP(5, 0.2, 0.4).eval()(x, ei, w),
                               rtol=1e-12, atol=1e-12)


def test_weighted_self_loops_mean_the_same_in_every_graph_form():
    """A documented difference: PyG's gcn_norm keeps a weighted self-loop of an edge_index
    (add_remaining_self_loops), adds a second loop to a torch.sparse adj_t (add_self_loops)
    and overwrites it with 1 in a SparseTensor (fill_diag), so APPNP gives three outputs for
    one graph. Every form here means the edge_index one, APPNP's output on edge_index."""
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ei = torch.tensor([[0, 1, 1, 2, 3, 4, 2], [1, 0, 1, 3, 2, 2, 2]])  # loops at 1 and 2
    w = torch.tensor([1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 5.0], dtype=torch.float64)
    ref = APPNP(3, 0.1)(x, ei, w)
    adj_t = torch.sparse_coo_tensor(ei.flip(0), w, (5, 5))
    sp = SparseTensor(row=ei[1], col=ei[0], value=w, sparse_sizes=(5, 5))
    layer = AffinityDiffusion(3, 0.1)
    for g, gw in [(ei, w), (adj_t, None), (adj_t.to_sparse_csr(), None), (sp, None)]:
        torch.testing.assert_close(layer(x, g, gw), ref, rtol=1e-12, atol=1e-12)
