import math

import pytest
import torch
from torch_geometric.nn import TransformerConv

from affgraph.nn import SimplicialAttention


def complete_edges(sizes):
    """All ordered pairs (self-loops included) inside each consecutive block of nodes."""
    edges, start = [], 0
    for n in sizes:
        idx = torch.arange(start, start + n)
        edges.append(torch.cartesian_prod(idx, idx).t())
        start += n
    return torch.cat(edges, dim=1)


@pytest.mark.parametrize("heads,concat", [(1, True), (2, True), (2, False)])
def test_reduces_to_transformer_conv(heads, concat):
    # with k2 = 1 and v2 = 1 the trilinear form is <q_i, k1_j> and v1_j * v2_l = v1_j: one hop of
    # softmax attention over the complete graph, i.e. PyG's TransformerConv with the same weights.
    torch.manual_seed(0)
    sizes = [4, 6]
    x = torch.randn(sum(sizes), 5)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor(sizes))
    layer = SimplicialAttention(5, 3, heads=heads, concat=concat)
    conv = TransformerConv(5, 3, heads=heads, concat=concat, root_weight=True)
    with torch.no_grad():
        for lin in (layer.lin_key2, layer.lin_value2):
            lin.weight.zero_()
            lin.bias.fill_(1.0)
        for ours, theirs in ((layer.lin_query, conv.lin_query), (layer.lin_key1, conv.lin_key),
                             (layer.lin_value1, conv.lin_value), (layer.lin_skip, conv.lin_skip)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    out = layer(x, batch)
    expected = conv(x, complete_edges(sizes))
    assert out.shape == (10, 3 * heads if concat else 3)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_matches_float64_formula_with_window_and_causal():
    torch.manual_seed(1)
    layer = SimplicialAttention(4, 2, heads=2, window=(3, 2), causal=True, root_weight=False).double()
    x = torch.randn(7, 4, dtype=torch.float64)
    q, k1, k2, v1, v2 = (lin(x).view(7, 2, 2) for lin in (
        layer.lin_query, layer.lin_key1, layer.lin_key2, layer.lin_value1, layer.lin_value2))
    expected = torch.zeros(7, 2, 2, dtype=torch.float64)
    for i in range(7):  # explicit loops over the window: i - 3 < j <= i, i - 2 < l <= i
        pairs = [(j, l) for j in range(max(0, i - 2), i + 1) for l in range(max(0, i - 1), i + 1)]
        logits = torch.stack([(q[i] * k1[j] * k2[l]).sum(-1) for j, l in pairs]) / math.sqrt(2)
        w = logits.softmax(0)  # (P, H)
        expected[i] = sum(w[p, :, None] * v1[j] * v2[l] for p, (j, l) in enumerate(pairs))
    torch.testing.assert_close(layer(x), expected.reshape(7, 4))


def test_reset_parameters_repr_and_grad():
    layer = SimplicialAttention(3, 4, heads=2, window=(5, 3))
    assert repr(layer) == "SimplicialAttention(3, 4, heads=2, window=(5, 3))"
    assert repr(SimplicialAttention(3, 4, causal=True)) == "SimplicialAttention(3, 4, heads=1, causal=True)"
    before = layer.lin_key2.weight.clone()
    layer.reset_parameters()
    assert not torch.equal(before, layer.lin_key2.weight)
    x = torch.randn(6, 3)
    layer(x).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # five projections of in x heads*out plus the skip
    n = sum(p.numel() for p in layer.parameters())
    assert n == 5 * (3 * 8 + 8) + (3 * 8 + 8)


def test_deterministic_under_seed():
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        layer = SimplicialAttention(3, 2)
        outs.append(layer(torch.randn(5, 3)))
    assert torch.equal(outs[0], outs[1])


def test_bad_input():
    layer = SimplicialAttention(3, 2)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        layer(torch.randn(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((5, 3), float("nan")))
    with pytest.raises(ValueError, match="heads"):
        SimplicialAttention(3, 2, heads=0)
    with pytest.raises(ValueError, match=">= 1"):
        SimplicialAttention(3, 2, window=(0, 1))
