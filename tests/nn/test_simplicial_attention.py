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


def _loop_reference(layer, x, window, causal, batch=None):
    """float64 loops over the pairs of each query: same graph, |i - j| <= w1, |i - l| <= w2,
    and j, l <= i if causal; root_weight=False."""
    n, h, c = x.size(0), layer.heads, layer.out_channels
    graph = [0] * n if batch is None else batch.tolist()
    q, k1, k2, v1, v2 = (lin(x).view(n, h, c) for lin in (
        layer.lin_query, layer.lin_key1, layer.lin_key2, layer.lin_value1, layer.lin_value2))

    def keys(i, w):
        return [j for j in range(n) if graph[j] == graph[i] and abs(i - j) <= w
                and (j <= i or not causal)]

    expected = torch.zeros(n, h, c, dtype=torch.float64)
    for i in range(n):
        pairs = [(j, l) for j in keys(i, window[0]) for l in keys(i, window[1])]
        logits = torch.stack([(q[i] * k1[j] * k2[l]).sum(-1) for j, l in pairs]) / math.sqrt(c)
        w = logits.softmax(0)  # (P, H)
        expected[i] = sum(w[p, :, None] * v1[j] * v2[l] for p, (j, l) in enumerate(pairs))
    return expected.reshape(n, h * c)


@pytest.mark.parametrize("window", [(3, 2), (0, 1), (2, 0), (6, 6), (10**6, 1)])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_float64_loops_with_window_and_causal(window, causal):
    # window (w1, w2): i - w1 <= j <= i + w1 (j <= i if causal), likewise l with w2; 7 items,
    # so (6, 6) and (10**6, .) cover the sequence (the clamp)
    torch.manual_seed(1)
    layer = SimplicialAttention(4, 2, heads=2, window=window, causal=causal,
                                root_weight=False).double()
    x = torch.randn(7, 4, dtype=torch.float64)
    torch.testing.assert_close(layer(x), _loop_reference(layer, x, window, causal))
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    torch.testing.assert_close(layer(x, batch), _loop_reference(layer, x, window, causal, batch))


def test_window_zero_is_the_item_itself():
    # window (0, 0): the only pair of i is (i, i), so x'_i = W_r x_i + (W_v1 x_i) * (W_v2 x_i)
    torch.manual_seed(2)
    layer = SimplicialAttention(3, 2, heads=2, window=(0, 0)).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    expected = layer.lin_skip(x) + layer.lin_value1(x) * layer.lin_value2(x)
    torch.testing.assert_close(layer(x), expected)


def test_reset_parameters_repr_and_grad():
    layer = SimplicialAttention(3, 4, heads=2, window=(5, 3))
    assert repr(layer) == "SimplicialAttention(3, 4, heads=2, window=(5, 3))"
    assert repr(SimplicialAttention(3, 4, causal=True)) == \
        "SimplicialAttention(3, 4, heads=1, causal=True)"
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
    with pytest.raises(ValueError, match="w1 must be >= 0"):
        SimplicialAttention(3, 2, window=(-1, 1))
    with pytest.raises(TypeError, match="pair"):
        SimplicialAttention(3, 2, window=2)
