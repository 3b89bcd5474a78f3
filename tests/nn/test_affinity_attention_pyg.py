"""PyG's own ``TransformerConv`` test, its assertions restated for ``AffinityAttention``.

Each case builds a ``TransformerConv`` and an ``AffinityAttention`` with the same arguments,
copies the weights across, and checks what PyG's test checks of ``TransformerConv`` (sizes,
the same output from ``edge_index``, a ``torch.sparse`` ``adj_t`` and a ``SparseTensor``
``adj_t``, bipartite input, the returned attention weights, the repr), plus that the
outputs equal ``TransformerConv``'s. PyG's TorchScript (``torch.jit.script``) assertions have
no counterpart: ``AffinityAttention`` supports ``torch.compile`` instead (tested in
``test_affinity_attention.py``).
"""
import pytest
import torch
from torch_geometric.nn import TransformerConv
from torch_geometric.utils import to_torch_csc_tensor
from torch_sparse import SparseTensor

from affgraph.nn import AffinityAttention

HEADS, OUT = 2, 32


def inputs(edge_dim):
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(4, 8, generator=g), torch.randn(2, 16, generator=g)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    edge_attr = torch.randn(4, edge_dim, generator=g) if edge_dim else None
    return x1, x2, edge_index, edge_attr


def twins(in_channels, edge_dim, concat):
    """A TransformerConv and an AffinityAttention with the same arguments and weights."""
    args = dict(heads=HEADS, beta=True, edge_dim=edge_dim, concat=concat)
    tc = TransformerConv(in_channels, OUT, **args)
    aa = AffinityAttention(in_channels, OUT, **args)
    aa.load_state_dict(tc.state_dict())
    return tc, aa


@pytest.mark.parametrize("edge_dim", [None, 8])
@pytest.mark.parametrize("concat", [True, False])
def test_graph_inputs_and_repr(edge_dim, concat):
    x1, _, edge_index, edge_attr = inputs(edge_dim)
    tc, aa = twins(8, edge_dim, concat)
    assert str(aa) == f"AffinityAttention(8, {OUT}, heads={HEADS})"
    out = aa(x1, edge_index, edge_attr)
    assert out.shape == (4, OUT * (HEADS if concat else 1))
    torch.testing.assert_close(out, tc(x1, edge_index, edge_attr), atol=1e-6, rtol=1e-5)
    # the transposed torch.sparse adjacency, with the edge features given alongside
    adj_t = to_torch_csc_tensor(edge_index, size=(4, 4)).t()
    torch.testing.assert_close(aa(x1, adj_t, edge_attr), out, atol=1e-6, rtol=0)
    # a SparseTensor adj_t carries the edge features as its values
    st = SparseTensor.from_edge_index(edge_index, edge_attr, sparse_sizes=(4, 4))
    torch.testing.assert_close(aa(x1, st.t()), out, atol=1e-6, rtol=0)


@pytest.mark.parametrize("edge_dim", [None, 8])
@pytest.mark.parametrize("concat", [True, False])
def test_return_attention_weights(edge_dim, concat):
    x1, _, edge_index, edge_attr = inputs(edge_dim)
    tc, aa = twins(8, edge_dim, concat)
    out = aa(x1, edge_index, edge_attr)
    res, (ei, alpha) = aa(x1, edge_index, edge_attr, return_attention_weights=True)
    torch.testing.assert_close(res, out)
    assert ei.shape == (2, 4) and alpha.shape == (4, HEADS)
    assert bool(alpha.min() >= 0) and bool(alpha.max() <= 1)
    assert getattr(aa, "_alpha", None) is None  # no attention state kept on the layer
    _, (_, ref_alpha) = tc(x1, edge_index, edge_attr, return_attention_weights=True)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-6, rtol=1e-5)
    # any bool asks for the weights, False too, as in TransformerConv
    assert isinstance(aa(x1, edge_index, edge_attr, return_attention_weights=False), tuple)
    # a SparseTensor input gives back the adj_t with the weights as its values
    st = SparseTensor.from_edge_index(edge_index, edge_attr, sparse_sizes=(4, 4))
    res, adj = aa(x1, st.t(), return_attention_weights=True)
    torch.testing.assert_close(res, out, atol=1e-6, rtol=0)
    assert adj.sizes() == [4, 4, HEADS] and adj.nnz() == 4
    assert getattr(aa, "_alpha", None) is None


@pytest.mark.parametrize("edge_dim", [None, 8])
@pytest.mark.parametrize("concat", [True, False])
def test_bipartite(edge_dim, concat):
    x1, x2, edge_index, edge_attr = inputs(edge_dim)
    tc, aa = twins((8, 16), edge_dim, concat)
    assert str(aa) == f"AffinityAttention((8, 16), {OUT}, heads={HEADS})"
    out = aa((x1, x2), edge_index, edge_attr)
    assert out.shape == (2, OUT * (HEADS if concat else 1))
    torch.testing.assert_close(out, tc((x1, x2), edge_index, edge_attr), atol=1e-6, rtol=1e-5)
    adj_t = to_torch_csc_tensor(edge_index, size=(4, 2)).t()
    torch.testing.assert_close(aa((x1, x2), adj_t, edge_attr), out, atol=1e-6, rtol=0)
    st = SparseTensor.from_edge_index(edge_index, edge_attr, sparse_sizes=(4, 2))
    torch.testing.assert_close(aa((x1, x2), st.t()), out, atol=1e-6, rtol=0)


def test_sparse_tensor_without_values():
    """The older form of PyG's test: a SparseTensor built from row/col only."""
    x1, _, edge_index, _ = inputs(None)
    tc, aa = twins(8, None, True)
    adj = SparseTensor(row=edge_index[0], col=edge_index[1], sparse_sizes=(4, 4))
    out = aa(x1, edge_index)
    torch.testing.assert_close(aa(x1, adj.t()), out, atol=1e-6, rtol=0)
    torch.testing.assert_close(out, tc(x1, adj.t()), atol=1e-6, rtol=1e-5)
