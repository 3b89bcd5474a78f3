"""MLPDiffusion: APPNP's network, against the dense ppr series and PyG's APPNP model."""
import pytest
import torch
from torch_geometric.nn import APPNP

from affgraph.nn import AffinityDiffusion
from affgraph.nn.models import MLPDiffusion


def _graph():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, generator=g, dtype=torch.double)
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])  # node 5 isolated
    return x, ei


def test_default_is_the_mlp_then_ten_ppr_hops_dense_float64():
    x, ei = _graph()
    model = MLPDiffusion(5, 3).double().eval()
    adj = torch.eye(6, dtype=torch.double)
    adj[ei[1], ei[0]] = 1.0
    d = adj.sum(1).rsqrt()
    a_hat = d[:, None] * adj * d[None, :]
    theta = [0.1 * 0.9 ** k for k in range(10)] + [0.9 ** 10]
    with torch.no_grad():
        z = model.lin2(torch.relu(model.lin1(x)))
        expected = sum(t * torch.linalg.matrix_power(a_hat, k) @ z for k, t in enumerate(theta))
        torch.testing.assert_close(model(x, ei), expected)
    assert (model.lin1.out_features, model.dropout) == (64, 0.5)


def test_equals_pyg_appnp_with_the_same_weights_and_weighted_edges():
    x, ei = _graph()
    w = torch.rand(ei.size(1), dtype=torch.double)
    ours = MLPDiffusion(5, 3, AffinityDiffusion(4), hidden_channels=8).double().eval()
    theirs = MLPDiffusion(5, 3, APPNP(K=4, alpha=0.1), hidden_channels=8).double().eval()
    theirs.load_state_dict(ours.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(ours(x, ei), theirs(x, ei))
        torch.testing.assert_close(ours(x, ei, w), theirs(x, ei, w))
        assert not torch.allclose(ours(x, ei, w), ours(x, ei))


def test_training_applies_dropout():
    x, ei = _graph()
    model = MLPDiffusion(5, 3).double()
    assert not torch.allclose(model(x, ei), model(x, ei))


def test_rejects_bad_arguments():
    with pytest.raises(TypeError, match="prop"):
        MLPDiffusion(5, 3, lambda h, ei: h)
    with pytest.raises(ValueError, match="dropout"):
        MLPDiffusion(5, 3, dropout=1.0)
    with pytest.raises(ValueError, match="out_channels"):
        MLPDiffusion(5, 0)
