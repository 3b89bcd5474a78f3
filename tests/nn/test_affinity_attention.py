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


@pytest.mark.parametrize("kw", [dict(), dict(concat=False), dict(beta=True),
                                dict(root_weight=False),
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
    ei = torch.stack([torch.randint(0, 9, (20,), generator=g),
                      torch.randint(0, 5, (20,), generator=g)])
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
    skip = xd @ d["lin_skip.weight"].T + d["lin_skip.bias"] if "lin_skip.weight" in d else 0.0
    return out.transpose(0, 1).reshape(-1, h * c) + skip


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
    aa = AffinityAttention(6, 4, heads=3, hops=hops, coeffs="ppr", alpha=0.2,
                           key_channels=5).double()
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
    torch.testing.assert_close(aa(x.double()), dense_oracle(aa, x, full, theta), atol=1e-7,
                               rtol=1e-7)


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
    assert repr(AffinityAttention(6, 4, heads=2)) == "AffinityAttention(6, 4, heads=2)"
    assert repr(AffinityAttention(6, 4, hops=math.inf, coeffs="ppr")) == \
        "AffinityAttention(6, 4, heads=1, hops=inf, coeffs='ppr')"
    assert repr(AffinityAttention(6, 4, hops=1, coeffs="ppr")) == \
        "AffinityAttention(6, 4, heads=1, hops=1, coeffs='ppr')"
    learned = AffinityAttention(6, 4, hops=2, coeffs="ppr", learn_coeffs=True)
    assert learned.learn_coeffs is True and AffinityAttention(6, 4).learn_coeffs is False
    assert repr(learned) == \
        "AffinityAttention(6, 4, heads=1, hops=2, coeffs='tensor', learn_coeffs=True)"
    for kw in (dict(hops=0), dict(hops=1.5), dict(heads=0), dict(dropout=1.0),
               dict(hops=math.inf, coeffs="ppr", learn_coeffs=True), dict(key_channels=0),
               dict(key_channels=2.0), dict(key_channels=True), dict(logit_scale=math.nan),
               dict(logit_scale=math.inf), dict(logit_scale="0"), dict(logit_scale=False),
               dict(hops=math.inf), dict(hops=math.inf, coeffs="uniform"),
               dict(hops=math.inf, coeffs="katz", r=1.0), dict(edge_dim=0),
               dict(edge_dim=3, key_channels=5), dict(coeffs="nope"),
               dict(hops=2, coeffs=torch.ones(2)), dict(dropout=True)):
        with pytest.raises(ValueError):
            AffinityAttention(6, 4, **kw)
    aa = AffinityAttention(6, 4)
    with pytest.raises(ValueError):
        aa(torch.randn(5, 6), torch.tensor([[0], [7]]))
    with pytest.raises(ValueError):
        aa(torch.full((5, 6), float("nan")))


# ------------------------------------------------------------ TransformerConv's signature
def test_positional_arguments_mean_what_transformer_conv_means():
    """(8, 4, 2, True, False, 0.5): heads=2, concat, beta=False, dropout=0.5; all nine
    positional arguments build the same parameters as TransformerConv and the same output."""
    aa = AffinityAttention(8, 4, 2, True, False, 0.5)
    assert (aa.heads, aa.concat, aa.beta, aa.dropout, aa.edge_dim) == (2, True, False, 0.5, None)
    assert aa.lin_key.bias is not None and aa.lin_skip is not None
    args = (8, 4, 2, False, True, 0.0, 3, False, True)  # ..., edge_dim=3, bias=False, root
    tc, aa = TransformerConv(*args), AffinityAttention(*args)
    assert aa.beta and aa.edge_dim == 3 and aa.lin_key.bias is None
    assert {k: v.shape for k, v in aa.state_dict().items()} == \
        {k: v.shape for k, v in tc.state_dict().items()}
    aa.load_state_dict(tc.state_dict())
    g = torch.Generator().manual_seed(0)
    x, ei = torch.randn(6, 8, generator=g), torch.randint(0, 6, (2, 15), generator=g)
    ea = torch.randn(15, 3, generator=g)
    torch.testing.assert_close(aa(x, ei, ea), tc(x, ei, ea), atol=1e-5, rtol=1e-5)


def test_family_parameters_are_refused_for_other_families():
    for kw, name in ((dict(alpha=0.2), "alpha"), (dict(coeffs="ppr", r=0.5), "r"),
                     (dict(coeffs="katz", t=2.0), "t"), (dict(coeffs="heat", alpha=0.1), "alpha"),
                     (dict(hops=2, coeffs=torch.ones(3), alpha=0.1), "alpha")):
        with pytest.raises(ValueError, match=f"^{name} does not apply"):
            AffinityAttention(6, 4, **kw)
    assert AffinityAttention(6, 4, coeffs="ppr").options == {"alpha": 0.1}
    assert AffinityAttention(6, 4, hops=2, coeffs="katz").options == {"r": 0.9}
    assert AffinityAttention(6, 4, hops=2, coeffs="heat", t=2.0).options == {"t": 2.0}


def test_tensor_coefficients_are_buffers_learned_ones_parameters():
    theta = torch.tensor([0.5, -0.2, 0.7], dtype=torch.float64)
    aa = AffinityAttention(6, 4, heads=2, hops=2, coeffs=theta, root_weight=False)
    assert "coeffs" in dict(aa.named_buffers()) and "coeffs" in aa.state_dict()
    assert aa.double().coeffs.dtype == torch.float64
    x, ei = graph()
    ei = torch.unique(ei, dim=1)
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    torch.testing.assert_close(aa(x.double(), ei), dense_oracle(aa, x, mask, theta.tolist()))
    learned = AffinityAttention(6, 4, hops=2, coeffs=theta, learn_coeffs=True)
    assert isinstance(learned.coeffs, torch.nn.Parameter)
    assert "coeffs_init" not in learned.state_dict()  # the initial value is not state
    with torch.no_grad():
        learned.coeffs.zero_()
    learned.reset_parameters()
    torch.testing.assert_close(learned.coeffs.detach().double(), theta)


def test_one_hop_honours_coeffs():
    """hops=1: power is S V (TransformerConv), ppr is alpha V + (1 - alpha) S V, katz r S V."""
    x, ei = graph()
    ei = torch.unique(ei, dim=1)
    mask = torch.zeros(12, 12, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    for kw, theta in ((dict(), [0.0, 1.0]), (dict(coeffs="ppr", alpha=0.3), [0.3, 0.7]),
                      (dict(coeffs="katz", r=0.5), [0.0, 0.5])):
        aa = AffinityAttention(6, 4, heads=3, **kw).double()
        torch.testing.assert_close(aa(x.double(), ei), dense_oracle(aa, x, mask, theta))


# ------------------------------------------------------------------------ edge features
def edge_oracle(aa, x, ei, ea, theta):
    """float64 dense: S with logits q_i.(k_j + e_ij)/sqrt(d), E_i = sum_j S_ij e_ij, and
    sum_k theta_k S^k V + sum_{k>=1} theta_k S^(k-1) E (no skip; unique edges)."""
    d = {k: v.double() for k, v in aa.state_dict().items() if torch.is_tensor(v)}
    n, h, c = x.size(0), aa.heads, aa.out_channels
    xd = x.double()
    q = (xd @ d["lin_query.weight"].T + d["lin_query.bias"]).view(n, h, c)
    k = (xd @ d["lin_key.weight"].T + d["lin_key.bias"]).view(n, h, c)
    v = (xd @ d["lin_value.weight"].T + d["lin_value.bias"]).view(n, h, c).transpose(0, 1)
    e = (ea.double() @ d["lin_edge.weight"].T).view(-1, h, c)
    dense_e = torch.zeros(n, n, h, c, dtype=torch.float64)
    dense_e[ei[1], ei[0]] = e
    logits = torch.einsum("ihc,jhc->hij", q, k) + torch.einsum("ihc,ijhc->hij", q, dense_e)
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[ei[1], ei[0]] = True
    s = torch.softmax((logits / math.sqrt(c)).masked_fill(~mask, -math.inf), -1).nan_to_num(0.0)
    agg = torch.einsum("hij,ijhc->hic", s, dense_e)
    out, p, pe = torch.zeros_like(v), v, agg
    for j, t in enumerate(theta):
        out = out + t * p + (t * pe if j >= 1 else 0.0)
        p = s @ p
        if j >= 1:
            pe = s @ pe
    return out.transpose(0, 1).reshape(n, h * c)


def edge_graph(n=10, e=40, dim=3, seed=2):
    g = torch.Generator().manual_seed(seed)
    ei = torch.unique(torch.randint(0, n, (2, e), generator=g), dim=1)
    ei = ei[:, torch.randperm(ei.size(1), generator=g)]  # not target-sorted
    return torch.randn(n, 6, generator=g, dtype=torch.float64), ei, \
        torch.randn(ei.size(1), dim, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kw", [dict(), dict(concat=False), dict(beta=True), dict(heads=1),
                                dict(root_weight=False, bias=False)])
def test_edge_features_match_transformer_conv(kw):
    x, ei, ea = edge_graph()
    kw = {"heads": 3, **kw}
    tc = TransformerConv(6, 4, edge_dim=3, **kw).double()
    aa = AffinityAttention(6, 4, edge_dim=3, **kw).double()
    aa.load_state_dict(tc.state_dict(), strict=False)
    ref, (_, ref_alpha) = tc(x, ei, ea, return_attention_weights=True)
    out, (out_ei, alpha) = aa(x, ei, ea, return_attention_weights=True)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(alpha, ref_alpha)
    assert out_ei is ei


@pytest.mark.parametrize("hops,kw,theta", [
    (1, dict(coeffs="ppr", alpha=0.3), [0.3, 0.7]),
    (3, dict(), [0.0, 0.0, 0.0, 1.0]),
    (3, dict(coeffs="ppr", alpha=0.2), [0.2, 0.16, 0.128, 0.8 ** 3]),
    (2, dict(coeffs=torch.tensor([0.5, -0.3, 0.8], dtype=torch.float64)), [0.5, -0.3, 0.8]),
    (math.inf, dict(coeffs="ppr", alpha=0.3), [0.3 * 0.7 ** j for j in range(160)]),
    (math.inf, dict(coeffs="katz", r=0.5), [0.0] + [0.5 ** j for j in range(1, 110)]),
])
def test_edge_features_at_k_hops_match_the_dense_series(hops, kw, theta):
    x, ei, ea = edge_graph()
    aa = AffinityAttention(6, 4, heads=2, edge_dim=3, root_weight=False, hops=hops,
                           tol=1e-12, **kw).double()
    tight = dict(atol=1e-9, rtol=1e-9) if hops == math.inf else {}
    torch.testing.assert_close(aa(x, ei, ea), edge_oracle(aa, x, ei, ea, theta), **tight)


def test_edge_features_need_a_graph_and_the_layer_needs_them():
    x, ei, ea = edge_graph()
    aa = AffinityAttention(6, 4, edge_dim=3).double()
    for args, match in (((x, None, ea), "explicit graph"), ((x, ei), "needs edge_attr"),
                        ((x, ei, ea[:-1]), "edge_attr must be"),
                        ((x, ei, ea[:, :2]), "edge_attr must be")):
        with pytest.raises(ValueError, match=match):
            aa(*args)
    with pytest.raises(ValueError, match="no edge_dim"):
        AffinityAttention(6, 4).double()(x, ei, ea)
    with pytest.raises(ValueError, match="'ppr' or 'katz'"):
        AffinityAttention(6, 4, edge_dim=3, hops=math.inf, coeffs="heat")


# ------------------------------------------------------------------------- graph inputs
def test_every_graph_input_gives_the_same_output():
    from torch_geometric import EdgeIndex
    from torch_sparse import SparseTensor

    x, ei, ea = edge_graph()
    n = x.size(0)
    aa = AffinityAttention(6, 4, heads=2).double()
    ref, (_, alpha) = aa(x, ei, return_attention_weights=True)
    for kind in (torch.int32, torch.int16, torch.uint8):
        torch.testing.assert_close(aa(x, ei.to(kind)), ref)
    torch.testing.assert_close(aa(x, EdgeIndex(ei, sparse_size=(n, n))), ref)
    adj = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (n, n))
    for a in (adj, adj.to_sparse_csr()):
        out, (got_ei, got_alpha) = aa(x, a, return_attention_weights=True)
        torch.testing.assert_close(out, ref)
        # the weights follow the [2, E] edges returned (the adj's coalesced order)
        order = torch.argsort(ei[1] * n + ei[0])
        assert torch.equal(got_ei, ei[:, order])
        torch.testing.assert_close(got_alpha, alpha[order])
    st = SparseTensor(row=ei[1], col=ei[0], value=torch.rand(ei.size(1)), sparse_sizes=(n, n))
    out, adj_alpha = aa(x, st, return_attention_weights=True)
    torch.testing.assert_close(out, ref)  # scalar edge values are not used by the attention
    row, col, val = adj_alpha.coo()
    order = torch.argsort(ei[1] * n + ei[0])
    assert torch.equal(torch.stack([col, row]), ei[:, order])
    torch.testing.assert_close(val, alpha[order])
    # with edge_dim, a SparseTensor's [E, edge_dim] values are the edge features
    ae = AffinityAttention(6, 4, heads=2, edge_dim=3).double()
    st = SparseTensor(row=ei[1], col=ei[0], value=ea, sparse_sizes=(n, n))
    torch.testing.assert_close(ae(x, st), ae(x, ei, ea))
    hybrid = torch.sparse_coo_tensor(ei.flip(0), ea, (n, n, 3)).coalesce()  # adj_t [N, N, F]
    for a in (hybrid, hybrid.to_sparse_csr()):
        torch.testing.assert_close(ae(x, a), ae(x, ei, ea))
    with pytest.raises(ValueError, match="integer"):
        aa(x, ei.double())
    with pytest.raises(ValueError, match="sparse adj_t of shape"):
        aa(x, torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (n + 1, n + 1)))


def test_multigraph_with_more_edges_than_entries_matches_transformer_conv():
    """Duplicate edges are separate edges: 40 edges on 3 nodes (more than 3 x 3 entries)."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 6, generator=g, dtype=torch.float64, requires_grad=True)
    ei = torch.randint(0, 3, (2, 40), generator=g)
    for heads in (1, 2):
        tc = TransformerConv(6, 4, heads=heads).double()
        aa = AffinityAttention(6, 4, heads=heads).double()
        aa.load_state_dict(tc.state_dict())
        ref = tc(x, ei)
        out = aa(x, ei)
        torch.testing.assert_close(out, ref)
        (gr,) = torch.autograd.grad(ref.square().sum(), x)
        (go,) = torch.autograd.grad(out.square().sum(), x)
        torch.testing.assert_close(go, gr)


def test_window_wider_than_the_sequence_is_the_complete_support():
    x, _ = graph(n=8, isolated=0)
    aa = AffinityAttention(6, 4, heads=3, window=1_000_000)
    full = AffinityAttention(6, 4, heads=3)
    full.load_state_dict(aa.state_dict())
    torch.testing.assert_close(aa(x), full(x), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(aa(x, causal=True), full(x, causal=True), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kw,implicit", [(dict(edge_dim=3), False),
                                         (dict(hops=3, coeffs="ppr"), False),
                                         (dict(hops=2), True)])
def test_torch_compile_equals_eager(kw, implicit):
    """torch.compile(layer): outputs and gradients equal eager (the CSR kernels and the
    infinite-hop solve run eagerly inside the compiled graph)."""
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    x, ei = torch.randn(10, 6, generator=g), torch.randint(0, 10, (2, 30), generator=g)
    ea = torch.randn(30, 3, generator=g) if "edge_dim" in kw else None
    aa = AffinityAttention(6, 4, heads=2, **kw)
    args = (x,) if implicit else (x, ei, ea)
    out = torch.compile(aa)(*args)
    out.square().sum().backward()
    grads = [p.grad.clone() for p in aa.parameters()]
    aa.zero_grad()
    ref = aa(*args)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)
    for got, p in zip(grads, aa.parameters()):
        torch.testing.assert_close(got, p.grad, atol=1e-5, rtol=1e-5)
