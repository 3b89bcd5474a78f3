"""The benchmark wiring of ``scripts/_models.py``: affgraph's models from the library with
their optimiser settings."""
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import node_classification as nc  # noqa: E402
from _models import SPECS, build_model  # noqa: E402

from affgraph.nn.models import (  # noqa: E402
    AffinityAttentionNet, DropNodeDiffusion, GRANDLoss, MLPDiffusion,
)


def _graph():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 5, generator=g)
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    return x, ei


def _same_model(a, b):
    x, ei = _graph()
    a.eval(), b.eval()
    sa, sb = a.state_dict(), b.state_dict()
    return (list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
            and torch.equal(a(x, ei), b(x, ei)))


@pytest.mark.parametrize("name, hops, reference", [
    ("AffinityAttention", None, lambda: AffinityAttentionNet(5, 3, 1)),
    ("AffinityAttention", 4, lambda: AffinityAttentionNet(5, 3, 4)),
    ("AffinityAttentionRW", math.inf, lambda: AffinityAttentionNet(5, 3, math.inf,
                                                                   logit_scale=0.0)),
    ("AffinityDiffusionCR", None, lambda: DropNodeDiffusion(5, 3, 8)),
    ("AffinityDiffusionCR", 2, lambda: DropNodeDiffusion(5, 3, 2)),
    ("AffinityDiffusion", None, lambda: MLPDiffusion(5, 3))])
def test_specs_build_the_library_models_with_their_defaults(name, hops, reference):
    """Same seed, same weights and outputs as the library model at its defaults; another
    hop count gives other outputs."""
    torch.manual_seed(3)
    model, _ = build_model(name, 5, 3, hops)
    torch.manual_seed(3)
    ref = reference()
    assert type(model) is type(ref) and _same_model(model, ref)
    if hops is not None:
        torch.manual_seed(3)
        assert not _same_model(model, build_model(name, 5, 3, 3)[0])


def test_optimiser_settings():
    _, opt = build_model("AffinityAttention", 5, 3, 2)
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.01, 5e-4)]
    model, opt = build_model("AffinityDiffusion", 5, 3)
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups] == [
        (0.01, 5e-3, 2), (0.01, 0.0, 2)]  # APPNP's decay on the first layer only
    assert opt.param_groups[0]["params"][0] is model.lin1.weight
    assert SPECS["AffinityDiffusionCR"].consistency == GRANDLoss(2, 1.0, 0.5)
    assert SPECS["AffinityAttention"].consistency is None


def test_affinity_diffusion_and_appnp_start_from_the_same_weights():
    """bench_training compares the two on one training run: same seed, same network."""
    torch.manual_seed(0)
    ours = build_model("AffinityDiffusion", 5, 3)[0]
    torch.manual_seed(0)
    theirs = build_model("APPNP", 5, 3)[0].eval()
    sa, sb = ours.state_dict(), theirs.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    x, ei = _graph()
    torch.testing.assert_close(ours.eval()(x, ei), theirs(x, ei))  # float32 rounding apart


def test_cr_model_is_a_hop_model_without_attention_dropout(monkeypatch):
    with pytest.raises(ValueError, match="not AffinityDiffusionCR"):
        build_model("AffinityDiffusionCR", 5, 2, 4, attn_dropout=0.3)
    calls = []
    forward = DropNodeDiffusion.forward

    def counted(self, x, edge_index, edge_weight=None):
        calls.append((self.training, x.is_sparse))
        return forward(self, x, edge_index, edge_weight)

    monkeypatch.setattr(DropNodeDiffusion, "forward", counted)
    rows = nc.run(["csbm-0.9"], ["AffinityDiffusionCR"], hops=[2, math.inf], seeds=1, epochs=1,
                  patience=1, csbm_nodes=40, progress=False, attn_dropout=[0.0, 0.3])
    assert [(r["model"], r["hops"], "attn_dropout" in r) for r in rows] == [
        ("AffinityDiffusionCR", "2", False), ("AffinityDiffusionCR", "inf", False)]
    # per epoch: the two stochastic passes of the consistency term, then one eval pass; the
    # features go in sparse
    assert calls == [(True, True), (True, True), (False, True)] * 2
    assert nc.format_table(rows).splitlines()[2].startswith("| AffinityDiffusionCR (K=2) |")


def test_bad_model_name_and_hops():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("MLP", 5, 2)
    with pytest.raises(ValueError, match="hops"):
        build_model("AffinityAttention", 5, 2, 0)


# ---------------------------------------------------------------------------------------------
# the baselines of Platonov et al. (ICLR 2023) in their residual framework
# ---------------------------------------------------------------------------------------------
from torch_geometric.nn import GATConv, GCNConv, SAGEConv, TransformerConv  # noqa: E402

from _models import (  # noqa: E402
    BUDGETS, MODELS, RESIDUAL_MODELS, Budget, EgoNeighbours, ResidualGNN,
)

#: name -> (conv, ego/neighbour separation, the conv's graph has self-loops)
LAYOUT = {"ResMLP": (None, False, False), "GCN-res": (GCNConv, False, True),
          "SAGE": (SAGEConv, False, False), "GAT-res": (GATConv, False, True),
          "GAT-sep": (GATConv, True, False), "GT": (TransformerConv, False, True),
          "GT-sep": (TransformerConv, True, False)}
TINY = Budget(hidden=8, layers=2, heads=2, dropout=0.2, lr=3e-5, steps=10)


def _tiny_graph():
    """7 nodes: a triangle 0-1-2 with 2-3, 3-5, 5-4 (node 4 has the one neighbour 5), node 6
    isolated, and a self-loop on node 2 in the input."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64)
    pairs = [(0, 1), (1, 2), (0, 2), (2, 3), (3, 5), (4, 5)]
    src = [a for a, b in pairs] + [b for a, b in pairs] + [2]
    dst = [b for a, b in pairs] + [a for a, b in pairs] + [2]
    return x, torch.tensor([src, dst])


def _adjacency(edge_index, n):
    """Dense float64 ``A[i, j] = 1`` for an edge ``j -> i``, the diagonal cleared."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[1], edge_index[0]] = 1.0
    a.fill_diagonal_(0.0)
    return a


def _ln(z, norm):
    """LayerNorm at PyTorch's default eps (the paper's)."""
    mu = z.mean(-1, keepdim=True)
    var = ((z - mu) ** 2).mean(-1, keepdim=True)
    return (z - mu) / torch.sqrt(var + 1e-5) * norm.weight + norm.bias


def _gelu(z):
    return 0.5 * z * (1.0 + torch.erf(z / math.sqrt(2.0)))


def _lin(z, lin):
    return z @ lin.weight.T + (0.0 if lin.bias is None else lin.bias)


def _masked_softmax(scores, mask):
    """Softmax over ``j`` of ``scores[i, j, h]`` where ``mask[i, j]``; a row without any
    neighbour gets zeros."""
    s = scores.masked_fill(~mask[:, :, None], -math.inf)
    p = torch.softmax(s, dim=1)
    return torch.where(mask.any(1)[:, None, None], p, torch.zeros_like(p))


def _dense_gat(z, conv, mask):
    n, heads = z.size(0), conv.heads
    wz = (z @ conv.lin.weight.T).view(n, heads, -1)
    s_src = (wz * conv.att_src).sum(-1)  # [N, H]
    s_dst = (wz * conv.att_dst).sum(-1)
    e = torch.nn.functional.leaky_relu(s_dst[:, None, :] + s_src[None, :, :], 0.2)
    alpha = _masked_softmax(e, mask)  # [N (i), N (j), H]
    return torch.einsum("ijh,jhc->ihc", alpha, wz).reshape(n, -1)


def _dense_transformer(z, conv, mask):
    n, heads = z.size(0), conv.heads
    q, k, v = (_lin(z, lin).view(n, heads, -1)
               for lin in (conv.lin_query, conv.lin_key, conv.lin_value))
    scores = torch.einsum("ihc,jhc->ijh", q, k) / math.sqrt(q.size(-1))
    return torch.einsum("ijh,jhc->ihc", _masked_softmax(scores, mask), v).reshape(n, -1)


def _mlp(z, seq):
    """Linear, (dropout), GELU, Linear, (dropout) in eval mode."""
    return _lin(_gelu(_lin(z, seq[0])), seq[3])


def _dense_reference(name, model, x, edge_index):
    """The model's logits from its parameters alone, with dense float64 matrices."""
    conv_type, sep, loops = LAYOUT[name]
    n = x.size(0)
    a = _adjacency(edge_index, n)
    a_loops = a + torch.eye(n, dtype=torch.float64)
    mask = (a_loops if loops else a) > 0
    gcn_norm = a_loops.sum(1).rsqrt()
    a_hat = gcn_norm[:, None] * a_loops * gcn_norm[None, :]
    a_mean = a / a.sum(1, keepdim=True).clamp(min=1.0)
    h = _gelu(_lin(x, model.lin_in))
    blocks = list(model.blocks)
    per_layer = 2 if conv_type is TransformerConv else 1
    assert len(blocks) == per_layer * TINY.layers
    for i, block in enumerate(blocks):
        z = _ln(h, block.norm)
        mix = block.mix.conv if isinstance(block.mix, EgoNeighbours) else block.mix
        if conv_type is None or (per_layer == 2 and i % 2 == 1):  # an MLP block
            assert mix is None
            h = h + _mlp(z, block.tail)
            continue
        assert type(mix) is conv_type and isinstance(block.mix, EgoNeighbours) == sep
        if conv_type is GCNConv:  # the conv is the MLP's first map
            out = a_hat @ z @ mix.lin.weight.T + mix.bias
            h = h + _lin(_gelu(out), block.tail[2])
        elif conv_type is SAGEConv:
            out = z @ mix.lin_r.weight.T + _lin(a_mean @ z, mix.lin_l)
            h = h + _lin(_gelu(out), block.tail[2])
        elif conv_type is GATConv:
            agg = _dense_gat(z, mix, mask)
            h = h + _mlp(torch.cat([z, agg], 1) if sep else agg, block.tail)
        else:
            agg = _dense_transformer(z, mix, mask)
            h = h + _lin(torch.cat([z, agg], 1) if sep else agg, block.tail[0])
    return _lin(_ln(h, model.norm_out), model.lin_out)


@pytest.mark.parametrize("name", RESIDUAL_MODELS)
def test_residual_models_equal_a_dense_reference(name):
    """Same weights, float64: the logits equal a dense computation of the paper's blocks
    (GCN's normalised adjacency with self-loops, SAGE's row mean without, GAT's and GT's
    attention as masked dense softmaxes), a self-loop in the input left out."""
    torch.manual_seed(0)
    model, _ = build_model(name, 5, 3, budget=TINY)
    assert isinstance(model, ResidualGNN)
    model = model.double().eval()
    with torch.no_grad():  # non-zero biases and attention vectors, so that all of them count
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, ei = _tiny_graph()
    with torch.no_grad():
        out = model(x, ei)
        ref = _dense_reference(name, model, x, ei)
    assert out.shape == (7, 3)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    # the explicit self-loop on node 2 changes nothing; an extra edge does
    no_loop = ei[:, ei[0] != ei[1]]
    with torch.no_grad():
        torch.testing.assert_close(model(x, no_loop), out, rtol=0, atol=0)
        more = torch.cat([ei, torch.tensor([[6, 0], [0, 6]])], 1)
        changed = not torch.allclose(model(x, more), out)
    assert changed == (name != "ResMLP")


def _conv_outputs(model, x, edge_index):
    """Each conv's input and output in a forward pass, in block order."""
    seen = []
    convs = [m for m in model.modules() if isinstance(m, (GATConv, SAGEConv, TransformerConv,
                                                          GCNConv))]
    hooks = [c.register_forward_hook(lambda m, inp, out: seen.append((m, inp[0], out)))
             for c in convs]
    with torch.no_grad():
        model(x, edge_index)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("name", ["SAGE", "GAT-sep", "GT-sep", "GAT-res", "GT"])
def test_separation_convs_see_no_self_loops(name):
    """The -sep convs (and SAGE's neighbour mean) aggregate the neighbours only: the isolated
    node 6 gets exactly zero (SAGE: its root term alone) and node 4, whose one neighbour is 5,
    gets 5's message alone; with self-loops (GAT-res, GT) node 6 gets its own message."""
    torch.manual_seed(0)
    model = build_model(name, 5, 3, budget=TINY)[0].double().eval()
    x, ei = _tiny_graph()
    seen = _conv_outputs(model, x, ei)
    assert len(seen) == TINY.layers
    for conv, z, out in seen:
        if isinstance(conv, GATConv):
            assert conv.add_self_loops == (name == "GAT-res")
            message = z @ conv.lin.weight.T
        elif isinstance(conv, TransformerConv):
            message = _lin(z, conv.lin_value)
        else:  # SAGE: lin_l(mean of neighbours) + lin_r(z)
            root = z @ conv.lin_r.weight.T
            torch.testing.assert_close(out[6], root[6] + conv.lin_l.bias, rtol=1e-12,
                                       atol=1e-12)
            torch.testing.assert_close(out[4], root[4] + _lin(z[5], conv.lin_l), rtol=1e-12,
                                       atol=1e-12)
            continue
        if name.endswith("-sep"):
            assert torch.equal(out[6], torch.zeros_like(out[6]))
            torch.testing.assert_close(out[4], message[5], rtol=1e-12, atol=1e-12)
        else:
            torch.testing.assert_close(out[6], message[6], rtol=1e-12, atol=1e-12)
            assert not torch.allclose(out[4], message[5])


def _expected_parameters(name, in_channels, num_classes, d, layers):
    """Parameter count from the layout: LayerNorm 2d, Linear(a, b) a*b + b, GCNConv d*d + d,
    SAGEConv 2*d*d + d, GATConv (no bias) d*d + 2d, TransformerConv (no root weight)
    3 * (d*d + d)."""
    lin = lambda a, b: a * b + b  # noqa: E731
    mlp = lin(d, d) + lin(d, d)
    block = {"ResMLP": 2 * d + mlp,
             "GCN-res": 2 * d + (d * d + d) + lin(d, d),
             "SAGE": 2 * d + (2 * d * d + d) + lin(d, d),
             "GAT-res": 2 * d + (d * d + 2 * d) + mlp,
             "GAT-sep": 2 * d + (d * d + 2 * d) + lin(2 * d, d) + lin(d, d),
             "GT": 2 * d + 3 * lin(d, d) + lin(d, d) + 2 * d + mlp,
             "GT-sep": 2 * d + 3 * lin(d, d) + lin(2 * d, d) + 2 * d + mlp}[name]
    return lin(in_channels, d) + layers * block + 2 * d + lin(d, num_classes)


@pytest.mark.parametrize("name", RESIDUAL_MODELS)
@pytest.mark.parametrize("budget", ["cpu", "paper", TINY])
def test_parameter_counts_and_settings_per_budget(name, budget):
    b = BUDGETS[budget] if isinstance(budget, str) else budget
    with torch.device("meta"):  # shapes only: the paper's models are large to initialise
        model, opt = build_model(name, 5, 3, budget=budget)
    assert sum(p.numel() for p in model.parameters()) == _expected_parameters(
        name, 5, 3, b.hidden, b.layers)
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(b.lr, 0.0)]
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {b.dropout}
    heads = {m.heads for m in model.modules() if isinstance(m, (GATConv, TransformerConv))}
    assert heads == ({b.heads} if "GAT" in name or "GT" in name else set())


def test_budgets():
    assert BUDGETS["paper"] == Budget(hidden=512, layers=5, heads=8, dropout=0.2, lr=3e-5,
                                      steps=1000, coeff_lr=1e-2)
    assert BUDGETS["cpu"] == Budget(hidden=128, layers=2, heads=8, dropout=0.2, lr=3e-5,
                                    steps=1000, coeff_lr=1e-2)
    with torch.device("meta"):  # the default is the paper's
        model, opt = build_model("GT-sep", 5, 3)
    assert sum(p.numel() for p in model.parameters()) == _expected_parameters(
        "GT-sep", 5, 3, 512, 5)
    assert opt.param_groups[0]["lr"] == 3e-5
    assert SPECS["SAGE"].budgeted and not SPECS["GCN"].budgeted


@pytest.mark.parametrize("kwargs, match", [
    (dict(hidden=100), "multiple of heads"), (dict(hidden=0), "hidden"),
    (dict(layers=0), "layers"), (dict(heads=True), "heads"), (dict(dropout=1.0), "dropout"),
    (dict(lr=0.0), "lr"), (dict(lr=math.nan), "lr"), (dict(steps=2.5), "steps"),
    (dict(coeff_lr=-1e-2), "coeff_lr"), (dict(coeff_lr=math.inf), "coeff_lr"),
    (dict(coeff_lr=True), "coeff_lr")])
def test_bad_budget(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Budget(**kwargs)


def test_build_model_errors_for_the_residual_models():
    with pytest.raises(ValueError, match="unknown model 'GAT-SEP'"):
        build_model("GAT-SEP", 5, 2)
    with pytest.raises(ValueError, match="unknown budget 'gpu'"):
        build_model("GT", 5, 2, budget="gpu")
    with pytest.raises(TypeError, match="budget must be"):
        build_model("GT", 5, 2, budget=128)
    with pytest.raises(ValueError, match="budget applies to .*, not GCN"):
        build_model("GCN", 5, 2, budget="cpu")
    with pytest.raises(ValueError, match="not GAT-sep"):
        build_model("GAT-sep", 5, 2, attn_dropout=0.1)
    with pytest.raises(ValueError, match="kind"):
        ResidualGNN(5, 2, "gin")
    with pytest.raises(ValueError, match="in_channels"):
        ResidualGNN(0, 2, "gcn")
    model = build_model("SAGE", 5, 2, budget=TINY)[0]
    with pytest.raises(ValueError, match=r"x must have shape \[N, 5\]"):
        model(torch.randn(4, 6), torch.tensor([[0], [1]]))


def test_the_existing_models_keep_their_names_and_order():
    assert MODELS == ("GCN", "GAT", "APPNP", "TransformerConv", "AffinityAttention",
                      "AffinityAttentionRW", "AffinityDiffusion", "AffinityDiffusionCR",
                      "ResMLP", "GCN-res", "SAGE", "GAT-res", "GAT-sep", "GT", "GT-sep",
                      "AffinityHopAttention", "AffinityHopDiffusion")
    model, opt = build_model("GCN", 5, 3, None)  # positional hops as before
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.01, 5e-4), (0.01, 0.0)]


def _one_adam_step(model, opt):
    """The training loss of a toy problem (labels from the sign of a feature) before and after
    one step of ``opt``, in float64 with dropout off (both losses of one function)."""
    x, ei = _tiny_graph()
    y = (x[:, 0] > 0).long()
    model.double().eval()

    def loss():
        return torch.nn.functional.cross_entropy(model(x, ei), y)

    before = loss()
    before.backward()
    opt.step()
    with torch.no_grad():
        return before.item(), loss().item()


@pytest.mark.parametrize("name", RESIDUAL_MODELS)
def test_one_optimiser_step_decreases_the_loss(name):
    """One Adam step at the budget's lr lowers the training loss."""
    torch.manual_seed(0)
    before, after = _one_adam_step(*build_model(name, 5, 2, budget=TINY))
    assert after < before - 1e-6


def test_residual_models_are_deterministic_under_a_seed():
    torch.manual_seed(5)
    a = build_model("GAT-sep", 5, 3, budget=TINY)[0]
    torch.manual_seed(5)
    b = build_model("GAT-sep", 5, 3, budget=TINY)[0]
    assert _same_model(a, b)


def test_node_classification_runs_a_residual_model(monkeypatch):
    monkeypatch.setitem(BUDGETS, "paper", TINY)  # the script's default budget, made tiny
    rows = nc.run(["csbm-0.9"], ["GAT-sep", "ResMLP"], seeds=1, epochs=2, patience=20,
                  csbm_nodes=40, progress=False)
    # the budget's 10 steps, not epochs=2, bound their training
    assert [(r["model"], r["hops"], r["epochs_run"]) for r in rows] == [
        ("GAT-sep", "", 10), ("ResMLP", "", 10)]


def test_the_scripts_default_to_the_original_models():
    # the residual baselines run when named: the defaults of the scripts stay the 8 models
    import inspect

    import _models as M
    import bench_training
    import compare_hops

    assert M.DEFAULT_MODELS == ("GCN", "GAT", "APPNP", "TransformerConv", "AffinityAttention",
                                "AffinityAttentionRW", "AffinityDiffusion",
                                "AffinityDiffusionCR")
    assert set(M.MODELS) == set(M.DEFAULT_MODELS) | set(M.BUDGETED_MODELS)
    assert set(M.BUDGETED_MODELS) == set(M.RESIDUAL_MODELS) | set(M.HOP_NET_MODELS)
    assert nc.build_parser().parse_args([]).models == list(M.DEFAULT_MODELS)
    assert compare_hops.FULL_NODE_MODELS == M.DEFAULT_MODELS
    assert "default=list(DEFAULT_MODELS)" in inspect.getsource(bench_training.main)
    assert nc.build_parser().parse_args(["--models", "GAT-sep"]).models == ["GAT-sep"]


# ---------------------------------------------------------------------------------------------
# affgraph's hop nets in the same framework (AffinityHopNet, budgeted, one run per hop count)
# ---------------------------------------------------------------------------------------------
from affgraph.nn.models import AffinityHopNet  # noqa: E402
from _models import HOP_MODELS, HOP_NET_MODELS  # noqa: E402


@pytest.mark.parametrize("name, conv", [("AffinityHopAttention", "attention"),
                                        ("AffinityHopDiffusion", "diffusion")])
@pytest.mark.parametrize("hops", [None, 1, 3, math.inf])
def test_hop_nets_are_the_documented_affinity_hop_net(name, conv, hops):
    """The spec builds the AffinityHopNet the module docstring names (sep, residual, layer
    norm, the budget's width, depth, heads and dropout, PageRank hop coefficients learnt at
    finite K, the neighbour mean for diffusion): with the same weights, the same logits as one
    built here; the hop coefficients start at alpha (1 - alpha)^k, (1 - alpha)^K last."""
    torch.manual_seed(0)
    model, opt = build_model(name, 5, 3, hops, budget=TINY)
    K = 1 if hops is None else hops
    finite = K != math.inf
    ref = AffinityHopNet(5, 3, K, hidden_channels=TINY.hidden, num_layers=TINY.layers,
                         conv=conv, sep=True, residual=True, norm="layer",
                         heads=TINY.heads if conv == "attention" else 1, dropout=TINY.dropout,
                         coeffs="ppr", alpha=0.1, learn_coeffs=finite,
                         normalize="row" if conv == "diffusion" else None)
    ref.load_state_dict(model.state_dict())
    model, ref = model.double().eval(), ref.double().eval()
    x, ei = _tiny_graph()
    with torch.no_grad():
        torch.testing.assert_close(model(x, ei), ref(x, ei), rtol=0, atol=0)
    theta = model.hop_coefficients()
    assert len(theta) == TINY.layers
    if not finite:
        assert theta == [None, None]
        assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(TINY.lr, 0.0)]
        return
    # the hop coefficients, and only they, train at the budget's coeff_lr
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [
        (TINY.lr, 0.0), (TINY.coeff_lr, 0.0)]
    assert [id(p) for p in opt.param_groups[1]["params"]] == [id(t) for t in theta]
    assert len(opt.param_groups[0]["params"]) + len(theta) == len(list(model.parameters()))
    expected = [0.1 * 0.9 ** k for k in range(K)] + [0.9 ** K]
    for t in theta:
        assert t.requires_grad
        torch.testing.assert_close(t.detach(), torch.tensor(expected, dtype=t.dtype),
                                   rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", HOP_NET_MODELS)
def test_hop_net_trains_its_hop_coefficients_and_its_loss_decreases(name):
    """One Adam step at the budget's lr lowers the training loss and moves every block's
    hop coefficients (they are trained, not fixed)."""
    torch.manual_seed(0)
    model, opt = build_model(name, 5, 2, 3, budget=TINY)
    before_theta = [t.detach().clone() for t in model.hop_coefficients()]
    before, after = _one_adam_step(model, opt)
    assert after < before - 1e-6
    for old, new in zip(before_theta, model.hop_coefficients()):
        # Adam's first step moves each coefficient with a gradient by its lr, coeff_lr
        step = (new.detach() - old).abs()
        torch.testing.assert_close(step[step > 0], torch.full_like(step[step > 0], TINY.coeff_lr),
                                   rtol=1e-3, atol=0)
        assert (step > 0).any()


def test_node_classification_runs_the_hop_nets_per_hop_count(monkeypatch):
    monkeypatch.setitem(BUDGETS, "paper", TINY)
    assert set(HOP_NET_MODELS) <= set(HOP_MODELS)
    rows = nc.run(["csbm-0.2"], list(HOP_NET_MODELS), hops=[1, math.inf], seeds=1, epochs=50,
                  patience=50, csbm_nodes=40, progress=False)
    # the budget's 10 steps bound every run, and each hop count is a row
    assert [(r["model"], r["hops"], r["epochs_run"], r["budget"]) for r in rows] == [
        ("AffinityHopAttention", "1", 10, "paper"), ("AffinityHopAttention", "inf", 10, "paper"),
        ("AffinityHopDiffusion", "1", 10, "paper"), ("AffinityHopDiffusion", "inf", 10, "paper")]
    # the finite hop counts learn their coefficients, at the budget's coeff_lr, and say so
    assert [r.get("coeff_lr") for r in rows] == [TINY.coeff_lr, None, TINY.coeff_lr, None]
    nc.check_kept_rows(rows, [0.0], budget="paper")
    old = [{k: v for k, v in r.items() if k != "coeff_lr"} for r in rows]
    with pytest.raises(ValueError, match=r"AffinityHopAttention K=1 seed 0\) trained its hop "
                                         r"coefficients at coeff_lr=None"):
        nc.check_kept_rows(old, [0.0], budget="paper")
    nc.check_kept_rows([r for r in old if r["hops"] == "inf"], [0.0], budget="paper")
