"""AffinityHopNet against a dense float64 reference written here with the model's own weights
(dense adjacency, masked softmax or normalised adjacency powers, LayerNorm and GELU by hand)."""
import math

import pytest
import torch

from affgraph.nn.models import AffinityHopNet

N, F_IN, C, HID = 7, 5, 3, 8
# node 5 has a self-loop besides its edges to 4, node 6 only a self-loop, 0 -> 3 one way only
EDGES = torch.tensor([[0, 1, 1, 2, 2, 3, 0, 4, 5, 5, 6],
                      [1, 0, 2, 1, 3, 2, 3, 5, 4, 5, 6]])


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, F_IN, generator=g, dtype=torch.double), EDGES


def _adjacency(sep, weight=None):
    """adj[i, j] = the weight of the edge j -> i, the given self-loops dropped; without sep
    one self-loop of weight 1 per node."""
    adj = torch.zeros(N, N, dtype=torch.double)
    w = torch.ones(EDGES.size(1), dtype=torch.double) if weight is None else weight
    for (j, i), wij in zip(EDGES.T.tolist(), w.tolist()):
        if i != j:
            adj[i, j] += wij
    return adj if sep else adj + torch.eye(N, dtype=torch.double)


def _gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _layer_norm(h, ln):
    if isinstance(ln, torch.nn.Identity):
        return h
    mu = h.mean(-1, keepdim=True)
    var = ((h - mu) ** 2).mean(-1, keepdim=True)
    return (h - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def _theta(model, conv, alpha=0.1):
    """The block's hop coefficients: the learnt ones, else the family by hand."""
    held = conv.coeffs if model.conv == "attention" else conv.theta
    if isinstance(held, torch.Tensor):
        return held.tolist()
    kind = held if model.conv == "attention" else conv.kind
    K = model.K
    if kind == "power":
        return [0.0] * K + [1.0]
    assert kind == "ppr"
    return [alpha * (1 - alpha) ** k for k in range(K)] + [(1 - alpha) ** K]


def _series(theta, s, v):
    return sum(t * torch.linalg.matrix_power(s, k) @ v for k, t in enumerate(theta))


def _attention(model, conv, u, adj, alpha):
    """Per head: S = row softmax of q k^T / sqrt(d_h) over adj's support (an empty row stays
    zero), sum_k theta_k S^k V; heads concatenated."""
    H = model.heads
    dh = HID // H
    q = (u @ conv.lin_query.weight.T + conv.lin_query.bias).view(N, H, dh)
    k = (u @ conv.lin_key.weight.T + conv.lin_key.bias).view(N, H, dh)
    v = (u @ conv.lin_value.weight.T + conv.lin_value.bias).view(N, H, dh)
    theta = _theta(model, conv, alpha)
    outs = []
    for hd in range(H):
        logits = q[:, hd] @ k[:, hd].T / math.sqrt(dh)
        w = adj * torch.exp(logits - logits.max(dim=1, keepdim=True).values)
        s = w / w.sum(dim=1, keepdim=True).clamp_min(1e-300)
        outs.append(_series(theta, s, v[:, hd]))
    return torch.cat(outs, dim=1)


def _diffusion(model, conv, u, adj, alpha):
    """sum_k theta_k A_hat^k U, A_hat = D^-1/2 adj D^-1/2 ("sym") or D^-1 adj ("row"), D the
    in-degrees (row sums), zero where a node has none."""
    d = adj.sum(1)
    inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    if model.normalize == "row":
        a_hat = inv[:, None] * adj
    else:
        a_hat = inv.sqrt()[:, None] * adj * inv.sqrt()[None, :]
    return _series(_theta(model, conv, alpha), a_hat, u)


def _reference(model, x, alpha=0.1, weight=None):
    adj = _adjacency(model.sep, weight)
    h = _gelu(x @ model.lin_in.weight.T + model.lin_in.bias)
    for ln, conv, lin in zip(model.norms, model.convs, model.lins):
        u = _layer_norm(h, ln)
        agg = (_attention if model.conv == "attention" else _diffusion)(model, conv, u, adj,
                                                                         alpha)
        c = torch.cat([u, agg], dim=1) if model.sep else agg
        out = _gelu(c @ lin.weight.T + lin.bias)
        h = h + out if model.residual else out
    return _layer_norm(h, model.norm_out) @ model.lin_out.weight.T + model.lin_out.bias


def _model(conv, K=1, seed=0, **kw):
    torch.manual_seed(seed)
    kw.setdefault("heads", 2 if conv == "attention" else 1)
    return AffinityHopNet(F_IN, C, K, hidden_channels=HID, conv=conv, **kw).double().eval()


def _random_coefficients(model, seed=1):
    """Learnt coefficients of any sign (theta_0 included), so the whole series counts."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for theta in model.hop_coefficients():
            theta.copy_(torch.randn(theta.shape, generator=g, dtype=torch.double))


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("norm", ["layer", None])
@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("conv", ["attention", "diffusion"])
def test_forward_equals_the_dense_reference(conv, sep, residual, norm, K):
    """K = 1: one hop S U (power); K = 3: learnt coefficients set to random values of both
    signs. The LayerNorms get random affine parameters so that they are not the identity."""
    x, ei = _inputs()
    model = _model(conv, K, sep=sep, residual=residual, norm=norm, learn_coeffs=K > 1)
    if K > 1:
        _random_coefficients(model)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for ln in [*model.norms, model.norm_out]:
            if isinstance(ln, torch.nn.LayerNorm):
                ln.weight.copy_(torch.randn(HID, generator=g, dtype=torch.double))
                ln.bias.copy_(torch.randn(HID, generator=g, dtype=torch.double))
        torch.testing.assert_close(model(x, ei), _reference(model, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sep", [True, False])
@pytest.mark.parametrize("conv", ["attention", "diffusion"])
def test_a_coefficient_family_and_its_alpha_reach_every_block(conv, sep):
    """coeffs="ppr", alpha=0.3, K=3: theta_k = 0.3 * 0.7^k with the tail 0.7^3."""
    x, ei = _inputs(1)
    model = _model(conv, 3, sep=sep, coeffs="ppr", alpha=0.3, num_layers=3)
    with torch.no_grad():
        out = model(x, ei)
        torch.testing.assert_close(out, _reference(model, x, alpha=0.3), rtol=1e-10,
                                   atol=1e-10)
        assert not torch.allclose(out, _reference(model, x, alpha=0.1))


def test_row_normalisation_and_edge_weights_of_the_diffusion():
    """normalize="row": D^-1 A (the neighbour mean); edge weights enter A, a self-loop's
    weight is dropped (sep) or replaced by 1 (no sep)."""
    x, ei = _inputs(2)
    w = torch.rand(ei.size(1), generator=torch.Generator().manual_seed(3),
                   dtype=torch.double) + 0.5
    for sep in (True, False):
        for normalize in ("row", "sym"):
            model = _model("diffusion", 2, sep=sep, normalize=normalize, coeffs="ppr")
            with torch.no_grad():
                torch.testing.assert_close(model(x, ei, w), _reference(model, x, weight=w),
                                           rtol=1e-10, atol=1e-10)
                assert not torch.allclose(model(x, ei, w), model(x, ei))


def _aggregates(model, x, ei):
    seen = []
    hooks = [conv.register_forward_hook(lambda m, i, o: seen.append(o)) for conv in model.convs]
    with torch.no_grad():
        model(x, ei)
    for hook in hooks:
        hook.remove()
    return seen, [_layer_norm(h, ln) for h, ln in zip(_block_inputs(model, x), model.norms)]


def _block_inputs(model, x):
    """H^(l-1) of each block, from the reference (the model is checked against it above)."""
    adj = _adjacency(model.sep)
    h = _gelu(x @ model.lin_in.weight.T + model.lin_in.bias)
    out = []
    with torch.no_grad():
        for ln, conv, lin in zip(model.norms, model.convs, model.lins):
            out.append(h)
            u = _layer_norm(h, ln)
            agg = (_attention if model.conv == "attention" else _diffusion)(model, conv, u,
                                                                             adj, 0.1)
            c = torch.cat([u, agg], dim=1) if model.sep else agg
            h = h + _gelu(c @ lin.weight.T + lin.bias)
    return out


@pytest.mark.parametrize("conv", ["attention", "diffusion"])
def test_sep_removes_self_loops_and_no_sep_adds_one(conv):
    """Node 6 has only a self-loop. With sep the loop is removed: its neighbour part is exactly
    zero in every block (node 5 keeps only its neighbour 4). Without sep it is its own only
    neighbour: the one-hop aggregate is its own value (attention: v_6 = u_6 W_V + b_V,
    weight 1; diffusion: A_hat_66 = 1, u_6)."""
    x, ei = _inputs(3)
    sep_model = _model(conv, 1, sep=True)
    aggs, _ = _aggregates(sep_model, x, ei)
    for agg in aggs:
        assert torch.equal(agg[6], torch.zeros(HID, dtype=torch.double))
        assert agg[5].abs().min() > 0
    plain = _model(conv, 1, sep=False)
    aggs, us = _aggregates(plain, x, ei)
    for agg, u, layer in zip(aggs, us, plain.convs):
        own = u[6] if conv == "diffusion" else \
            u[6] @ layer.lin_value.weight.T + layer.lin_value.bias
        torch.testing.assert_close(agg[6], own, rtol=1e-12, atol=1e-12)
    # the stored self-loop of node 5 does not count twice without sep either
    with torch.no_grad():
        torch.testing.assert_close(plain(x, ei), _reference(plain, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("conv", ["attention", "diffusion"])
def test_gradients_reach_the_hop_coefficients(conv):
    """d loss / d theta from autograd equals a central difference, in every block."""
    x, ei = _inputs(4)
    model = _model(conv, 3, learn_coeffs=True, coeffs="ppr")
    thetas = model.hop_coefficients()
    assert len(thetas) == 2 and all(isinstance(t, torch.nn.Parameter) for t in thetas)
    model(x, ei).square().sum().backward()
    eps = 1e-6
    for theta in thetas:
        assert theta.grad is not None and bool(torch.isfinite(theta.grad).all())
        for k in range(4):
            with torch.no_grad():
                theta[k] += eps
                up = model(x, ei).square().sum()
                theta[k] -= 2 * eps
                down = model(x, ei).square().sum()
                theta[k] += eps
            numeric = (up - down) / (2 * eps)
            torch.testing.assert_close(theta.grad[k], numeric, rtol=1e-5, atol=1e-7)
    fixed = _model(conv, 3, coeffs="ppr")
    assert fixed.hop_coefficients() == [None, None]


@pytest.mark.parametrize("conv", ["attention", "diffusion"])
def test_learnt_coefficients_become_negative_on_a_toy_problem(conv):
    """Targets from the same network whose first-hop coefficient is -1 in every block; only
    the coefficients are trained, from ppr's positive (0.1, 0.09, 0.81): a few Adam steps take
    theta_1 below zero and cut the loss."""
    x, ei = _inputs(5)
    model = _model(conv, 2, learn_coeffs=True, coeffs="ppr")
    for p in model.parameters():
        p.requires_grad_(False)
    thetas = model.hop_coefficients()
    init = [theta.detach().clone() for theta in thetas]
    assert all(float(t.min()) > 0 for t in init)
    with torch.no_grad():
        for theta in thetas:
            theta[1] = -1.0
        target = model(x, ei)
        for theta, start in zip(thetas, init):
            theta.copy_(start)
    for theta in thetas:
        theta.requires_grad_(True)
    opt = torch.optim.Adam(thetas, lr=0.05)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = (model(x, ei) - target).square().mean()
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(loss) < 0.1 * first
    assert all(float(theta[1]) < 0 for theta in thetas)


def test_training_mode_dropout_is_seeded_and_off_in_eval():
    x, ei = _inputs(6)
    model = _model("attention", 2, dropout=0.5).train()
    torch.manual_seed(1)
    a = model(x, ei)
    torch.manual_seed(1)
    torch.testing.assert_close(model(x, ei), a, rtol=0, atol=0)
    assert not torch.allclose(a, model.eval()(x, ei))
    no_drop = _model("diffusion", 2, dropout=0.0)
    torch.testing.assert_close(no_drop.train()(x, ei), no_drop.eval()(x, ei), rtol=0, atol=0)


def test_defaults_repr_and_reset():
    model = AffinityHopNet(F_IN, C)
    assert (model.K, model.hidden_channels, model.num_layers, model.conv, model.sep,
            model.residual, model.norm, model.heads, model.dropout) == \
        (1, 64, 2, "attention", True, True, "layer", 1, 0.2)
    assert model.lins[0].in_features == 128 and model.convs[0].hops == 1
    assert AffinityHopNet(F_IN, C, sep=False).lins[0].in_features == 64
    assert repr(model) == \
        "AffinityHopNet(5, 3, K=1, conv='attention', sep=True, num_layers=2)"
    assert repr(AffinityHopNet(F_IN, C, math.inf, conv="diffusion", coeffs="ppr")) == \
        "AffinityHopNet(5, 3, K=inf, conv='diffusion', sep=True, num_layers=2)"
    learnt = _model("diffusion", 2, learn_coeffs=True, coeffs="ppr")
    with torch.no_grad():
        learnt.hop_coefficients()[0].fill_(-2.0)
        learnt.lin_out.weight.fill_(0.0)
    learnt.reset_parameters()
    torch.testing.assert_close(learnt.hop_coefficients()[0].detach(),
                               torch.tensor([0.1, 0.09, 0.81], dtype=torch.double))
    assert learnt.lin_out.weight.abs().sum() > 0


@pytest.mark.parametrize("conv", ["attention", "diffusion"])
def test_infinite_hops_run_the_closed_form(conv):
    """K = inf with ppr: each block's aggregate alpha (I - (1 - alpha) S)^-1 U-values, the
    K = 200 series to within the solver's tolerance."""
    x, ei = _inputs(7)
    inf = _model(conv, math.inf, coeffs="ppr", alpha=0.3)
    many = _model(conv, 200, coeffs="ppr", alpha=0.3)
    many.load_state_dict(inf.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(inf(x, ei), many(x, ei), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw, exc, match", [
    (dict(K=0), ValueError, "K"),
    (dict(K=1.5), ValueError, "K"),
    (dict(hidden_channels=0), ValueError, "hidden_channels"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(conv="gcn"), ValueError, "conv"),
    (dict(sep=1), TypeError, "sep"),
    (dict(residual="yes"), TypeError, "residual"),
    (dict(learn_coeffs=1), TypeError, "learn_coeffs"),
    (dict(norm="batch"), ValueError, "norm"),
    (dict(heads=0), ValueError, "heads"),
    (dict(heads=3), ValueError, "heads"),
    (dict(conv="diffusion", heads=2), ValueError, "heads"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(normalize="row"), ValueError, "normalize"),
    (dict(conv="diffusion", normalize="softmax"), ValueError, "normalize"),
    (dict(K=math.inf, learn_coeffs=True, coeffs="ppr"), ValueError, "learn_coeffs"),
    (dict(K=math.inf), ValueError, "coeffs"),
    (dict(alpha=0.2), ValueError, "alpha"),
    (dict(conv="diffusion", alpha=0.2), ValueError, "alpha"),
    (dict(coeffs="nope"), ValueError, "coeffs"),
    (dict(conv="diffusion", coeffs=torch.ones(3)), ValueError, "needs 2 entries"),
])
def test_bad_arguments(kw, exc, match):
    args = {"hidden_channels": 8, **kw}
    K = args.pop("K", 1)
    with pytest.raises(exc, match=match):
        AffinityHopNet(F_IN, C, K, **args)


def test_bad_inputs():
    x, ei = _inputs()
    att = _model("attention")
    dif = _model("diffusion")
    with pytest.raises(ValueError, match=r"x must have shape \[N, 5\]"):
        att(x[:, :4], ei)
    with pytest.raises(TypeError, match="x must be a floating"):
        att(x.long(), ei)
    with pytest.raises(ValueError, match="edge_index must be an integer"):
        att(x, ei.double())
    with pytest.raises(ValueError, match="edge_index must have shape"):
        att(x, ei[0])
    with pytest.raises(ValueError, match="out of range"):
        att(x[:5], ei)
    w = torch.ones(ei.size(1), dtype=torch.double)
    with pytest.raises(ValueError, match="edge_weight applies to conv='diffusion'"):
        att(x, ei, w)
    with pytest.raises(ValueError, match="edge_weight must be"):
        dif(x, ei, w[:-1])
    with pytest.raises(TypeError):
        AffinityHopNet(F_IN, C, 1, 64)  # the options are keyword-only
