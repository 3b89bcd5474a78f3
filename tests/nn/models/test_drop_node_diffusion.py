"""DropNodeDiffusion: the dense float64 closed forms in eval, DropNode's whole-row masks."""
import math

import pytest
import torch

from affgraph.nn.models import DropNodeDiffusion


def _graph():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 5, generator=g, dtype=torch.double)
    x[x < 0.5] = 0.0  # sparse-ish, like bag-of-words
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])  # node 5 isolated
    return x, ei


def _a_hat(ei, n=6):
    """D^-1/2 (A + I) D^-1/2, dense float64."""
    adj = torch.eye(n, dtype=torch.double)
    adj[ei[1], ei[0]] = 1.0
    d = adj.sum(1).rsqrt()
    return d[:, None] * adj * d[None, :]


@pytest.mark.parametrize("alpha", [None, 0.3])
def test_eval_is_the_mlp_over_dense_float64_ppr(alpha):
    """Eval mode: W2 relu(sum_k theta_k A^k X W1 + b1) + b2, theta_k = a (1 - a)^k with the
    tail (1 - a)^K on the last hop (a = 0.1 by default); dense and sparse input."""
    x, ei = _graph()
    model = DropNodeDiffusion(5, 3, 3, hidden_channels=4, alpha=alpha).double().eval()
    torch.nn.init.normal_(model.bias1)
    a = 0.1 if alpha is None else alpha
    theta = [a, a * (1 - a), a * (1 - a) ** 2, (1 - a) ** 3]
    a_hat = _a_hat(ei)
    with torch.no_grad():
        xw = x @ model.lin1.weight.T
        h = sum(t * torch.linalg.matrix_power(a_hat, k) @ xw for k, t in enumerate(theta))
        expected = model.lin2(torch.relu(h + model.bias1))
        torch.testing.assert_close(model(x, ei), expected)
        torch.testing.assert_close(model(x.to_sparse(), ei), expected)  # the sparse path


def test_infinite_hops_are_the_ppr_closed_form():
    """K = inf: alpha (I - (1 - alpha) A_hat)^-1 X W1, then the MLP's second half."""
    x, ei = _graph()
    model = DropNodeDiffusion(5, 3, math.inf, hidden_channels=4).double().eval()
    with torch.no_grad():
        h = 0.1 * torch.linalg.solve(torch.eye(6, dtype=torch.double) - 0.9 * _a_hat(ei),
                                     x @ model.lin1.weight.T)
        expected = model.lin2(torch.relu(h + model.bias1))
        torch.testing.assert_close(model(x, ei), expected, rtol=1e-5, atol=1e-6)


def test_other_coefficient_families_reach_the_diffusion():
    """coeffs="uniform": the hop average (1/(K+1)) sum_k A^k (GRAND's own propagation)."""
    x, ei = _graph()
    model = DropNodeDiffusion(5, 3, 2, hidden_channels=4, coeffs="uniform").double().eval()
    a_hat = _a_hat(ei)
    with torch.no_grad():
        xw = x @ model.lin1.weight.T
        h = (xw + a_hat @ xw + a_hat @ a_hat @ xw) / 3
        torch.testing.assert_close(model(x, ei), model.lin2(torch.relu(h + model.bias1)))


def test_drop_node_keeps_whole_rows_scaled_by_the_keep_probability():
    """Training mode, no edges (A_hat = I), no other dropout: each row is the model of its
    features times 1/(1 - delta) (kept) or of zeros (dropped), on the dense and sparse paths."""
    x, _ = _graph()
    x = x + 0.1  # no zero row: a kept row must differ from a dropped one
    ei = torch.empty(2, 0, dtype=torch.long)
    model = DropNodeDiffusion(5, 3, 2, hidden_channels=4, drop_node=0.5, input_dropout=0.0,
                              dropout=0.0).double()
    with torch.no_grad():
        kept = model.lin2(torch.relu(2.0 * x @ model.lin1.weight.T + model.bias1))
        dropped = model.lin2(torch.relu(model.bias1)).expand_as(kept)
    seen = set()
    for sparse in (False, True):
        torch.manual_seed(1)
        for _ in range(5):
            out = model(x.to_sparse() if sparse else x, ei).detach()
            is_kept = torch.isclose(out, kept).all(1)
            assert (is_kept | torch.isclose(out, dropped).all(1)).all()
            seen.update(is_kept.tolist())
    assert seen == {True, False}


def test_defaults():
    model = DropNodeDiffusion(5, 3)
    assert model.sparse_input is True
    assert (model.drop_node, model.input_dropout, model.dropout) == (0.5, 0.5, 0.5)
    assert model.lin1.out_features == 64 and model.lin1.bias is None
    x, ei = _graph()
    torch.manual_seed(0)
    ref = DropNodeDiffusion(5, 3, 8).double().eval()  # K = 8 is the default
    torch.manual_seed(0)
    dflt = DropNodeDiffusion(5, 3).double().eval()
    torch.testing.assert_close(dflt(x, ei), ref(x, ei), rtol=0, atol=0)
    assert not torch.allclose(dflt(x, ei), DropNodeDiffusion(5, 3, 2).double().eval()(x, ei))


def test_rejects_bad_rates():
    with pytest.raises(ValueError, match="drop_node"):
        DropNodeDiffusion(5, 3, 2, drop_node=1.0)
    with pytest.raises(ValueError, match="input_dropout"):
        DropNodeDiffusion(5, 3, 2, input_dropout=-0.1)
    with pytest.raises(ValueError, match="dropout"):
        DropNodeDiffusion(5, 3, 2, dropout=-0.1)
    with pytest.raises(ValueError, match="hidden_channels"):
        DropNodeDiffusion(5, 3, 2, hidden_channels=0)


def _manual_batch_norm(x, mean, var, weight, bias, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias, column-wise."""
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _randomise_batch_norms(model, seed=3):
    g = torch.Generator().manual_seed(seed)
    for bn in (model.bn1, model.bn2):
        c = bn.num_features
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(c, generator=g, dtype=torch.double))
            bn.running_var.copy_(torch.rand(c, generator=g, dtype=torch.double) + 0.5)
            bn.weight.copy_(torch.randn(c, generator=g, dtype=torch.double))
            bn.bias.copy_(torch.randn(c, generator=g, dtype=torch.double))


def test_batch_norm_eval_is_grand_mlp_with_the_running_statistics():
    """batch_norm=True, eval: W2 BN2(relu(BN1(sum_k theta_k A^k X) W1 + b1)) + b2 with
    BN(x) = (x - running_mean) / sqrt(running_var + eps) * gamma + beta; dense and sparse."""
    x, ei = _graph()
    model = DropNodeDiffusion(5, 3, 3, hidden_channels=4, batch_norm=True).double().eval()
    torch.nn.init.normal_(model.bias1)
    _randomise_batch_norms(model)
    a = 0.1
    theta = [a, a * (1 - a), a * (1 - a) ** 2, (1 - a) ** 3]
    a_hat = _a_hat(ei)
    with torch.no_grad():
        xbar = sum(t * torch.linalg.matrix_power(a_hat, k) @ x for k, t in enumerate(theta))
        b1, b2 = model.bn1, model.bn2
        z = _manual_batch_norm(xbar, b1.running_mean, b1.running_var, b1.weight, b1.bias)
        h = torch.relu(z @ model.lin1.weight.T + model.bias1)
        h = _manual_batch_norm(h, b2.running_mean, b2.running_var, b2.weight, b2.bias)
        expected = h @ model.lin2.weight.T + model.lin2.bias
        torch.testing.assert_close(model(x, ei), expected)
        torch.testing.assert_close(model(x.to_sparse(), ei), expected)
        # the normalisation is of the diffused features: BN1 before the diffusion differs
        z_wrong = _manual_batch_norm(x, b1.running_mean, b1.running_var, b1.weight, b1.bias)
        wrong = sum(t * torch.linalg.matrix_power(a_hat, k) @ z_wrong
                    for k, t in enumerate(theta))
        h = torch.relu(wrong @ model.lin1.weight.T + model.bias1)
        h = _manual_batch_norm(h, b2.running_mean, b2.running_var, b2.weight, b2.bias)
        assert not torch.allclose(model(x, ei), h @ model.lin2.weight.T + model.lin2.bias)


def test_batch_norm_training_uses_the_batch_statistics_over_the_nodes():
    """Training mode without DropNode and dropout: BN uses the mean and the biased variance
    of each column over the N nodes, and updates the running statistics (momentum 0.1,
    unbiased variance)."""
    x, ei = _graph()
    model = DropNodeDiffusion(5, 3, 2, hidden_channels=4, drop_node=0.0, input_dropout=0.0,
                              dropout=0.0, batch_norm=True).double().train()
    a_hat = _a_hat(ei)
    theta = [0.1, 0.09, 0.81]
    with torch.no_grad():
        xbar = sum(t * torch.linalg.matrix_power(a_hat, k) @ x for k, t in enumerate(theta))
        z = (xbar - xbar.mean(0)) / torch.sqrt(xbar.var(0, unbiased=False) + 1e-5)
        h = torch.relu(z @ model.lin1.weight.T + model.bias1)
        h = (h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5)
        expected = h @ model.lin2.weight.T + model.lin2.bias
        torch.testing.assert_close(model(x, ei), expected)
        torch.testing.assert_close(model.bn1.running_mean, 0.1 * xbar.mean(0))
        torch.testing.assert_close(model.bn1.running_var, 0.9 + 0.1 * xbar.var(0))


def test_batch_norm_flag_builds_and_resets_the_norms():
    model = DropNodeDiffusion(5, 3, 2, hidden_channels=4, batch_norm=True)
    assert model.bn1.num_features == 5 and model.bn2.num_features == 4
    assert repr(model).endswith(", batch_norm=True)")
    plain = DropNodeDiffusion(5, 3, 2, hidden_channels=4)
    assert plain.bn1 is None and plain.bn2 is None and plain.batch_norm is False
    assert "batch_norm" not in repr(plain)
    with torch.no_grad():
        model.bn1.weight.fill_(3.0)
        model.bn1.running_mean.fill_(2.0)
    model.reset_parameters()
    assert torch.equal(model.bn1.weight, torch.ones(5))
    assert torch.equal(model.bn1.running_mean, torch.zeros(5))
    with pytest.raises(TypeError, match="batch_norm"):
        DropNodeDiffusion(5, 3, 2, batch_norm=1)
    with pytest.raises(TypeError):
        DropNodeDiffusion(5, 3, 2, 64)  # hidden_channels and the rest are keyword-only
