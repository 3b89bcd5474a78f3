"""GRAND: dense float64 references of the reference implementation's forward pass (eval and
training), its initialisation, the settings table of its run scripts, the argument errors and
a training smoke."""
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from affgraph.nn.models import GRAND, GRANDLoss
from affgraph.nn.models.grand import GRAND_SETTINGS, GRANDSettings, grand_settings

N, F_IN, C = 7, 5, 3


def _graph():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, F_IN, generator=g, dtype=torch.double) + 0.05  # no zero row
    # a path 0-1-2-3, a triangle 4-5-6 (one direction stored twice), undirected
    src = torch.tensor([0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6, 4])
    dst = torch.tensor([1, 0, 2, 1, 3, 2, 5, 4, 6, 5, 4, 6])
    return x, torch.stack([src, dst])


def _a_hat(ei, n=N):
    """The reference's normalisation: adj + I, then D^-1/2 (adj + I) D^-1/2, dense float64."""
    adj = torch.zeros(n, n, dtype=torch.double)
    adj[ei[0], ei[1]] = 1.0
    adj = adj + torch.eye(n, dtype=torch.double)
    d = adj.sum(1).pow(-0.5)
    return d[:, None] * adj * d[None, :]


def _hop_average(a_hat, x, K):
    """(1 / (K + 1)) sum_{k=0}^{K} A^k x with explicit matrix powers."""
    return sum(torch.linalg.matrix_power(a_hat, k) @ x for k in range(K + 1)) / (K + 1)


def _bn_eval(h, bn):
    return (h - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _mlp_eval(model, xbar):
    """The MLP in evaluation with the model's weights, written out (no dropout)."""
    h = xbar
    if model.batch_norm:
        h = _bn_eval(h, model.bn1)
    h = torch.relu(h @ model.lin1.weight.T + model.lin1.bias)
    if model.batch_norm:
        h = _bn_eval(h, model.bn2)
    return h @ model.lin2.weight.T + model.lin2.bias


def _net(K, **kwargs):
    """A float64 GRAND(F_IN, C, hidden 4, K) with N(0, 1) weights (half the hidden units
    active, so that the first layer shows in the output)."""
    model = GRAND(F_IN, C, 4, K, **kwargs).double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in (model.lin1.weight, model.lin1.bias, model.lin2.weight, model.lin2.bias):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.double))
    return model


def _randomise_bn(model):
    g = torch.Generator().manual_seed(3)
    for bn in (model.bn1, model.bn2):
        with torch.no_grad():
            bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.weight.copy_(torch.randn(bn.num_features, generator=g))
            bn.bias.copy_(torch.randn(bn.num_features, generator=g))


@pytest.mark.parametrize("K", [0, 1, 3, 8])
@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_eval_is_the_dense_float64_reference(K, batch_norm, delta):
    """Eval: X_bar = (1/(K+1)) sum_k A_hat^k ((1 - delta) X), then the MLP (batch norm with
    its running statistics); dense and sparse input."""
    x, ei = _graph()
    model = _net(K, drop_node=delta, batch_norm=batch_norm).eval()
    if batch_norm:
        _randomise_bn(model)
    with torch.no_grad():
        xbar = _hop_average(_a_hat(ei), (1.0 - delta) * x, K)
        torch.testing.assert_close(model.propagate(x, ei), xbar)
        expected = _mlp_eval(model, xbar)
        torch.testing.assert_close(model(x, ei), expected)
        torch.testing.assert_close(model(x.to_sparse(), ei), expected)


def test_eval_scales_by_the_keep_probability_not_by_its_inverse():
    """The reference's inference input is (1 - delta) X: with a 0.5 rate X_bar halves."""
    x, ei = _graph()
    full = GRAND(F_IN, C, 4, 2, drop_node=0.0).double().eval().propagate(x, ei)
    half = GRAND(F_IN, C, 4, 2, drop_node=0.5).double().eval().propagate(x, ei)
    torch.testing.assert_close(half, 0.5 * full)


def test_training_mask_is_the_seeded_bernoulli_draw_unscaled():
    """Training, no dropout: X_bar = hop average of diag(m) X with m the torch.bernoulli draw
    of a vector of 1 - delta (the kept rows not rescaled), then the MLP; deterministic under
    a seed, a fresh mask at each call."""
    x, ei = _graph()
    delta = 0.4
    model = _net(3, drop_node=delta, input_dropout=0.0, dropout=0.0)
    model.train()
    a_hat = _a_hat(ei)
    outs = []
    for seed in (11, 12):
        torch.manual_seed(seed)
        m = torch.bernoulli(torch.full((N,), 1.0 - delta, dtype=torch.double))
        torch.manual_seed(seed)
        out = model(x, ei)
        with torch.no_grad():
            expected = _mlp_eval(model, _hop_average(a_hat, m[:, None] * x, 3))
        torch.testing.assert_close(out, expected)
        outs.append(out)
    assert not torch.allclose(outs[0], outs[1])  # the two seeds' masks differ here


def test_training_drop_node_keeps_whole_rows_unscaled():
    """Training, K = 0 (no propagation): each row of X_bar is exactly its feature row or zero,
    and about 1 - delta of the rows are kept."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4000, 3, generator=g, dtype=torch.double) + 0.1
    model = GRAND(3, 2, 4, 0, drop_node=0.3).double().train()
    xbar = model.propagate(x, torch.empty(2, 0, dtype=torch.long))
    kept = (xbar == x).all(1)
    assert (kept | (xbar == 0).all(1)).all()
    assert abs(kept.double().mean().item() - 0.7) < 0.03  # 4 sigma of a binomial(4000, 0.7)


def test_training_batch_norm_uses_batch_statistics():
    """Training with batch norm and no dropout or DropNode: BN normalises X_bar and the hidden
    layer with the biased batch variance."""
    x, ei = _graph()
    model = _net(2, drop_node=0.0, input_dropout=0.0, dropout=0.0, batch_norm=True).train()

    def bn(h, mod):
        mu, var = h.mean(0), h.var(0, unbiased=False)
        return (h - mu) / torch.sqrt(var + mod.eps) * mod.weight + mod.bias

    with torch.no_grad():
        h = bn(_hop_average(_a_hat(ei), x, 2), model.bn1)
        h = bn(torch.relu(h @ model.lin1.weight.T + model.lin1.bias), model.bn2)
        expected = h @ model.lin2.weight.T + model.lin2.bias
    torch.testing.assert_close(model(x, ei), expected)


def test_edge_weight_reaches_the_normalisation():
    """A self-loop passed with weight 2 gives the reference's A + I diagonal of 2 (where the
    stored graph has a self-loop)."""
    x, ei = _graph()
    loop = torch.tensor([[2], [2]])
    ei2 = torch.cat([ei, loop], 1)
    w = torch.cat([torch.ones(ei.size(1), dtype=torch.double), torch.tensor([2.0]).double()])
    adj = torch.zeros(N, N, dtype=torch.double)
    adj[ei[0], ei[1]] = 1.0
    adj = adj + torch.eye(N, dtype=torch.double)
    adj[2, 2] = 2.0
    d = adj.sum(1).rsqrt()
    a_hat = d[:, None] * adj * d[None, :]
    model = GRAND(F_IN, C, 4, 2, drop_node=0.0).double().eval()
    torch.testing.assert_close(model.propagate(x, ei2, w), _hop_average(a_hat, x, 2))


def test_reference_initialisation_is_normal_with_mean_minus_its_std():
    """init="reference": weights and biases from N(-s, s^2), s = 1 / sqrt(fan-out), as
    ``normal_(-stdv, stdv)``; init="torch": nn.Linear's uniform(-1/sqrt(fan-in), ...)."""
    torch.manual_seed(0)
    model = GRAND(400, 50, 200, 1)
    for lin in (model.lin1, model.lin2):
        s = 1.0 / math.sqrt(lin.out_features)
        w = lin.weight.detach().double()
        assert abs(w.mean().item() + s) < 5 * s / math.sqrt(w.numel())
        assert abs(w.std().item() - s) < 0.05 * s
    torch.manual_seed(0)
    lin1 = GRAND(400, 50, 200, 1, init="torch").lin1.weight.detach()
    bound = 1.0 / math.sqrt(400)
    assert lin1.abs().max() <= bound and abs(lin1.mean().item()) < 1e-3
    # reset_parameters redraws with the same rule, deterministic under a seed
    m = GRAND(400, 50, 200, 1)
    torch.manual_seed(5)
    m.reset_parameters()
    first = m.lin2.weight.detach().clone()
    s = 1.0 / math.sqrt(50)
    assert abs(first.double().mean().item() + s) < 5 * s / math.sqrt(first.numel())
    torch.manual_seed(5)
    m.reset_parameters()
    torch.testing.assert_close(m.lin2.weight.detach(), first, rtol=0, atol=0)


def test_settings_table_is_the_reference_run_scripts():
    """run_cora.sh, run_citeseer.sh, run_pubmed.sh of THUDM/GRAND (hidden 32, weight decay
    5e-4 and 5000 epochs by the defaults of train_grand.py)."""
    assert list(GRAND_SETTINGS) == ["Cora", "CiteSeer", "PubMed"]
    rows = {  # K, in drop, hid drop, dropnode, lam, tem, sample, lr, patience, bn
        "Cora": (8, 0.5, 0.5, 0.5, 1.0, 0.5, 4, 0.01, 200, False),
        "CiteSeer": (2, 0.0, 0.2, 0.5, 0.7, 0.3, 2, 0.01, 200, False),
        "PubMed": (5, 0.6, 0.8, 0.5, 1.0, 0.2, 4, 0.2, 100, True),
    }
    for name, row in rows.items():
        s = GRAND_SETTINGS[name]
        assert (s.K, s.input_dropout, s.dropout, s.drop_node, s.weight, s.temperature,
                s.samples, s.lr, s.patience, s.batch_norm) == row
        assert (s.hidden_channels, s.weight_decay, s.epochs) == (32, 5e-4, 5000)
        assert grand_settings(name.upper()) is s
        fields = {f.name for f in dataclasses.fields(s)}
        assert all(getattr(s, f) is not None for f in fields)


def test_settings_build_the_model_loss_and_optimiser():
    s = grand_settings("pubmed")
    model = GRAND.from_settings("PubMed", 6, 3, init="torch")
    assert (model.K, model.lin1.out_features, model.drop_node, model.input_dropout,
            model.dropout, model.batch_norm, model.init) == (5, 32, 0.5, 0.6, 0.8, True, "torch")
    assert s.loss() == GRANDLoss(samples=4, weight=1.0, temperature=0.2)
    opt = s.optimizer(model.parameters())
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 0.2 and opt.defaults["weight_decay"] == 5e-4
    assert s.replace(epochs=3).epochs == 3 and s.epochs == 5000
    with pytest.raises(ValueError, match="unknown settings"):
        s.replace(order=3)


def test_grand_loss_on_grand_is_the_reference_objective():
    """settings.loss() on a training-mode GRAND: the mean NLL of log_softmax over the samples
    on the labelled nodes plus lam times the mean squared distance to the sharpened average,
    as train_grand.py's train() and consis_loss() compute it (same seed, same masks)."""
    x, ei = _graph()
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    train = torch.tensor([0, 3, 5])
    s = grand_settings("CiteSeer")
    model = s.model(F_IN, C, init="torch").double().train()
    torch.manual_seed(7)
    loss = s.loss()(model, x, ei, y, train)
    torch.manual_seed(7)
    logps = [torch.log_softmax(model(x, ei), -1) for _ in range(s.samples)]
    nll = sum(F.nll_loss(lp[train], y[train]) for lp in logps) / s.samples
    ps = [lp.exp() for lp in logps]
    avg = sum(ps) / len(ps)
    sharp = avg.pow(1 / s.temperature) / avg.pow(1 / s.temperature).sum(1, keepdim=True)
    consis = sum(((p - sharp) ** 2).sum(1).mean() for p in ps) / len(ps)
    torch.testing.assert_close(loss, nll + s.weight * consis)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(in_channels=0), ValueError, "in_channels"),
    (dict(out_channels=0), ValueError, "out_channels"),
    (dict(hidden_channels=0), ValueError, "hidden_channels"),
    (dict(K=-1), ValueError, "K"),
    (dict(K=2.5), ValueError, "K"),
    (dict(K=math.inf), ValueError, "K"),
    (dict(drop_node=1.0), ValueError, "drop_node"),
    (dict(input_dropout=-0.1), ValueError, "input_dropout"),
    (dict(dropout=1.5), ValueError, "dropout"),
    (dict(batch_norm=1), TypeError, "batch_norm"),
    (dict(cached="yes"), TypeError, "cached"),
    (dict(init="xavier"), ValueError, "init"),
])
def test_rejects_bad_arguments(kwargs, err, match):
    args = dict(in_channels=F_IN, out_channels=C, hidden_channels=4, K=2)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        GRAND(**args)


def test_rejects_bad_input():
    _, ei = _graph()
    model = GRAND(F_IN, C, 4, 2)
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.rand(N, F_IN + 1), ei)
    with pytest.raises(TypeError, match="x must be a floating"):
        model(torch.ones(N, F_IN, dtype=torch.long), ei)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model([[0.0] * F_IN] * N, ei)


def test_settings_and_lookup_errors():
    with pytest.raises(ValueError, match="no GRAND settings"):
        grand_settings("Cornell")
    with pytest.raises(TypeError, match="dataset"):
        grand_settings(3)
    with pytest.raises(ValueError, match="no GRAND settings"):
        GRAND.from_settings("ogbn-arxiv", 4, 2)
    good = dataclasses.asdict(GRAND_SETTINGS["Cora"])
    for field, bad, err in [("samples", 0, ValueError), ("temperature", 0.0, ValueError),
                            ("weight", -1.0, ValueError), ("lr", math.nan, ValueError),
                            ("drop_node", 1.0, ValueError), ("K", -1, ValueError),
                            ("batch_norm", "no", TypeError), ("patience", 0, ValueError)]:
        with pytest.raises(err, match=field):
            GRANDSettings(**{**good, field: bad})


def test_few_epoch_training_reduces_the_loss():
    """A 40-node two-community graph with Cora's settings (the reference initialisation): 60
    steps of GRANDLoss lower the evaluation-mode cross-entropy of the labelled nodes and
    fit them."""
    g = torch.Generator().manual_seed(0)
    n = 40
    y = torch.arange(n) % 2
    x = torch.rand(n, 8, generator=g)
    x[:, 0] += 1.5 * y  # one informative feature
    x = x / x.sum(1, keepdim=True)
    same = (y[:, None] == y[None, :]) & (torch.rand(n, n, generator=g) < 0.25)
    adj = torch.triu(same, 1)
    ei = torch.cat([adj.nonzero().T, adj.nonzero().T.flip(0)], 1)
    train = torch.arange(10)
    torch.manual_seed(0)
    s = grand_settings("Cora")
    model = s.model(8, 2, cached=True)
    loss_fn, opt = s.loss(), s.optimizer(model.parameters())

    def eval_ce():
        model.eval()
        with torch.no_grad():
            return F.cross_entropy(model(x, ei)[train], y[train]).item()

    before = eval_ce()
    for _ in range(60):
        model.train()
        opt.zero_grad()
        loss = loss_fn(model, x, ei, y, train)
        assert math.isfinite(loss.item())
        loss.backward()
        opt.step()
    after = eval_ce()
    assert after < 0.85 * before
    model.eval()
    with torch.no_grad():
        assert (model(x, ei).argmax(1)[train] == y[train]).float().mean() >= 0.9
