import math

import pytest
import torch
from torch_geometric.nn import TransformerConv

from affgraph.nn import AffinityAttention


def graph(n=12, e=40, seed=0, isolated=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    ei = torch.randint(0, n - isolated, (2, e), generator=g)  # the last nodes are isolated
    return x, ei


def pair(**kw):
    tc = TransformerConv(kw.pop("in_channels", 6), 4, heads=3, **kw)
    aa = AffinityAttention(6 if "in_channels" not in kw else kw["in_channels"], 4, heads=3, **kw)
    # TransformerConv keeps an unused lin_skip when root_weight=False; ours has none
    missing, unexpected = aa.load_state_dict(tc.state_dict(), strict=False)
    assert not missing and all(k.startswith("lin_skip") for k in unexpected)
    return tc, aa


@pytest.mark.parametrize("kw", [dict(), dict(concat=False), dict(beta=True), dict(root_weight=False),
                                dict(bias=False)])
def test_matches_transformer_conv(kw):
    x, ei = graph()
    tc, aa = pair(**kw)
    ref, (ref_ei, ref_alpha) = tc(x, ei, return_attention_weights=True)
    out, (out_ei, alpha) = aa(x, ei, return_attention_weights=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert torch.equal(out_ei, ref_ei)
    torch.testing.assert_close(alpha, ref_alpha, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(aa(x, ei), ref, atol=1e-5, rtol=1e-5)


def test_bipartite_matches_transformer_conv():
    g = torch.Generator().manual_seed(1)
    xs, xd = torch.randn(9, 5, generator=g), torch.randn(7, 3, generator=g)
    ei = torch.stack([torch.randint(0, 9, (20,), generator=g), torch.randint(0, 5, (20,), generator=g)])
    tc = TransformerConv((5, 3), 4, heads=2)
    aa = AffinityAttention((5, 3), 4, heads=2)
    aa.load_state_dict(tc.state_dict())
    torch.testing.assert_close(aa((xs, xd), ei), tc((xs, xd), ei), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_implicit_support_matches_transformer_conv_on_materialised_edges(causal):
    x, _ = graph(n=10, isolated=0)
    batch = torch.tensor([0] * 6 + [1] * 4)
    pairs = [(j, i) for i in range(10) for j in range(10)
             if batch[i] == batch[j] and (not causal or j <= i)]
    ei = torch.tensor(pairs).T
    tc, aa = pair()
    torch.testing.assert_close(aa(x, batch=batch, causal=causal), tc(x, ei), atol=1e-5, rtol=1e-5)


def test_window_layer_matches_transformer_conv():
    x, _ = graph(n=16, isolated=0)
    ei = torch.tensor([(j, i) for i in range(16) for j in range(16) if abs(i - j) <= 3]).T
    tc = TransformerConv(6, 4, heads=3)
    aa = AffinityAttention(6, 4, heads=3, window=3)
    aa.load_state_dict(tc.state_dict())
    torch.testing.assert_close(aa(x), tc(x, ei), atol=1e-5, rtol=1e-5)


def dense_oracle(aa, x, mask, theta):
    """float64: skip + sum_k theta_k S^k V with S the explicit softmax matrix of the layer."""
    d = {k: v.double() for k, v in aa.state_dict().items() if torch.is_tensor(v)}
    xd = x.double()
    h, c, dk = aa.heads, aa.out_channels, aa.key_channels
    q = (xd @ d["lin_query.weight"].T + d["lin_query.bias"]).view(-1, h, dk)
    k = (xd @ d["lin_key.weight"].T + d["lin_key.bias"]).view(-1, h, dk)
    v = (xd @ d["lin_value.weight"].T + d["lin_value.bias"]).view(-1, h, c).transpose(0, 1)
    att = torch.einsum("nhd,mhd->hnm", q, k) / math.sqrt(dk)
    s = torch.softmax(att.masked_fill(~mask, -math.inf), -1).nan_to_num(0.0)
    out, p = torch.zeros_like(v), v
    for t in theta:
        out, p = out + t * p, s @ p
    return out.transpose(0, 1).reshape(-1, h * c) + xd @ d["lin_skip.weight"].T + d["lin_skip.bias"]


def test_k_hop_layer_matches_dense_series():
    x, ei = graph()
    ei = torch.unique(ei, dim=1)
    aa = AffinityAttention(6, 4, heads=3, hops=3, coeffs="ppr", alpha=0.2).double()
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    theta = [0.2, 0.16, 0.128, 0.8 ** 3]
    torch.testing.assert_close(aa(x.double(), ei), dense_oracle(aa, x, mask, theta))
    causal = torch.ones(12, 12, dtype=torch.bool).tril()
    torch.testing.assert_close(aa(x.double(), causal=True), dense_oracle(aa, x, causal, theta))


@pytest.mark.parametrize("hops", [1, 3])
def test_key_channels_set_the_affinity_width(hops):
    """Queries and keys 5 wide, values 4 wide: the scale is 1/sqrt(5), the output 3 x 4."""
    x, ei = graph()
    ei = torch.unique(ei, dim=1)
    aa = AffinityAttention(6, 4, heads=3, hops=hops, coeffs="ppr", alpha=0.2, key_channels=5).double()
    assert aa.lin_query.weight.shape == aa.lin_key.weight.shape == (15, 6)
    assert aa.lin_value.weight.shape == (12, 6)
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    theta = [0.2, 0.8] if hops == 1 else [0.2, 0.16, 0.128, 0.8 ** 3]
    torch.testing.assert_close(aa(x.double(), ei), dense_oracle(aa, x, mask, theta))


def test_logit_scale_zero_starts_as_the_random_walk():
    """gamma = 0: one hop is the mean of the in-neighbours' values (hand-computed with
    scatter); K hops match the dense series over D^-1 A; and gamma still gets a gradient."""
    x, ei = graph()
    ei = torch.unique(ei, dim=1)
    aa = AffinityAttention(6, 4, heads=3, root_weight=False, logit_scale=0.0).double()
    v = aa.lin_value(x.double())
    total = torch.zeros_like(v).index_add_(0, ei[1], v[ei[0]])
    deg = torch.zeros(12, dtype=torch.double).index_add_(0, ei[1], torch.ones(ei.size(1),
                                                                             dtype=torch.double))
    mean = total / deg.clamp(min=1).unsqueeze(1)  # isolated nodes get zeros
    out = aa(x.double(), ei)
    torch.testing.assert_close(out, mean)
    out.pow(2).sum().backward()
    assert aa.logit_scale.grad.abs().min() > 0 and aa.lin_query.weight.grad.abs().sum() == 0
    walk = torch.zeros(12, 12, dtype=torch.double)
    walk[ei[1], ei[0]] = 1.0
    walk = walk / walk.sum(1, keepdim=True).clamp(min=1)
    aa3 = AffinityAttention(6, 4, heads=3, hops=3, coeffs="ppr", alpha=0.2, root_weight=False,
                            logit_scale=0.0).double()
    acc, p = 0.0, aa3.lin_value(x.double()).view(12, 3, 4)
    for t in [0.2, 0.16, 0.128, 0.8 ** 3]:
        acc, p = acc + t * p, torch.einsum("nm,mhc->nhc", walk, p)
    torch.testing.assert_close(aa3(x.double(), ei), acc.reshape(12, 12))


def test_logit_scale_is_a_factor_on_the_queries():
    """gamma_h = c_h equals a layer without scale whose query map of head h is c_h times
    larger; reset_parameters restores the initial scale."""
    x, ei = graph()
    aa = AffinityAttention(6, 4, heads=3, hops=2, logit_scale=1.5)
    with torch.no_grad():
        aa.logit_scale.copy_(torch.tensor([0.5, -2.0, 3.0]))
    ref = AffinityAttention(6, 4, heads=3, hops=2)
    state = {k: v for k, v in aa.state_dict().items() if k != "logit_scale"}
    c = aa.logit_scale.detach().repeat_interleave(4)
    state["lin_query.weight"] = state["lin_query.weight"] * c[:, None]
    state["lin_query.bias"] = state["lin_query.bias"] * c
    ref.load_state_dict(state)
    torch.testing.assert_close(aa(x, ei), ref(x, ei), atol=1e-5, rtol=1e-5)
    aa.reset_parameters()
    assert torch.equal(aa.logit_scale.data, torch.full((3,), 1.5))


def test_infinite_hops_layer_matches_closed_form():
    x, ei = graph(isolated=0)
    aa = AffinityAttention(6, 4, heads=3, hops=math.inf, coeffs="ppr", alpha=0.3).double()
    # the geometric series truncated far out is the closed form to double precision
    theta = [0.3 * 0.7 ** k for k in range(120)]
    full = torch.ones(12, 12, dtype=torch.bool)
    torch.testing.assert_close(aa(x.double()), dense_oracle(aa, x, full, theta), atol=1e-7, rtol=1e-7)


@pytest.mark.parametrize("support", ["edges", "complete", "window"])
def test_infinite_hops_apply_no_attention_dropout(support):
    """hops=inf solves with the exact S: train mode with dropout > 0 is the float64 closed form."""
    x, ei = graph()
    ei = torch.unique(ei, dim=1)
    aa = AffinityAttention(6, 4, heads=3, hops=math.inf, coeffs="ppr", alpha=0.3, dropout=0.5,
                           window=2 if support == "window" else None).double()
    n = x.size(0)
    if support == "edges":
        mask = torch.zeros(n, n, dtype=torch.bool)
        mask[ei[1], ei[0]] = True
    else:
        idx = torch.arange(n)
        mask = (idx[:, None] - idx[None, :]).abs() <= (2 if support == "window" else n)
    theta = [0.3 * 0.7 ** k for k in range(150)]  # 0.7^150 ~ 5e-24: the closed form in float64
    ref = dense_oracle(aa, x, mask, theta)
    arg = ei if support == "edges" else None
    aa.train()
    torch.manual_seed(0)
    out = aa(x.double(), arg)
    # the layer's solve stops at a relative residual of 1e-6; dropout would move outputs by O(1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    aa.eval()
    assert torch.equal(out, aa(x.double(), arg))


def test_gradients_reach_all_parameters_and_learnable_coeffs():
    x, ei = graph()
    for hops in (2, math.inf):
        aa = AffinityAttention(6, 4, heads=2, hops=hops, coeffs="ppr",
                               learn_coeffs=hops != math.inf)
        aa(x, ei).square().sum().backward()
        for name, p in aa.named_parameters():
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    aa = AffinityAttention(6, 4, hops=2, coeffs="ppr", learn_coeffs=True)
    torch.testing.assert_close(aa.coeffs.detach().double(),
                               torch.tensor([0.1, 0.09, 0.81], dtype=torch.float64))
    with torch.no_grad():
        aa.coeffs.zero_()
    aa.reset_parameters()
    assert float(aa.coeffs.detach()[2]) == pytest.approx(0.81)


def test_dropout_train_vs_eval_and_seed():
    x, ei = graph()
    aa = AffinityAttention(6, 4, heads=2, dropout=0.5)
    aa.train()
    torch.manual_seed(3)
    a = aa(x, ei)
    torch.manual_seed(3)
    assert torch.equal(a, aa(x, ei))
    aa.eval()
    assert not torch.allclose(a, aa(x, ei))


def test_repr_and_bad_arguments():
    assert repr(AffinityAttention(6, 4, heads=2)) == "AffinityAttention(6, 4, heads=2, hops=1)"
    assert repr(AffinityAttention(6, 4, hops=math.inf)) == "AffinityAttention(6, 4, heads=1, hops=inf)"
    for kw in (dict(hops=0), dict(hops=1.5), dict(heads=0), dict(dropout=1.0),
               dict(hops=math.inf, learn_coeffs=True), dict(key_channels=0),
               dict(key_channels=2.0), dict(key_channels=True), dict(logit_scale=math.nan),
               dict(logit_scale=math.inf), dict(logit_scale="0"), dict(logit_scale=False)):
        with pytest.raises(ValueError):
            AffinityAttention(6, 4, **kw)
    aa = AffinityAttention(6, 4)
    with pytest.raises(ValueError):
        aa(torch.randn(5, 6), torch.tensor([[0], [7]]))
    with pytest.raises(ValueError):
        aa(torch.full((5, 6), float("nan")))
