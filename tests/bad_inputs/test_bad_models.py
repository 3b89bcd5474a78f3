"""Bad inputs of affgraph.nn.models (references: the models' formulas written with PyG's
TransformerConv and APPNP in float64, evaluation mode)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import APPNP, TransformerConv
from torch_geometric.utils import add_self_loops, remove_self_loops

from _catalogue import Equals, Raises, case, check, randn
from affgraph.nn.models import (GRAND, AffinityAttentionNet, AffinityHopNet,
                                DropNodeDiffusion, GRANDAttention, GRANDLoss, MLPDiffusion,
                                consistency_loss)

N, FIN, OUT = 6, 4, 3
EDGES = torch.tensor([[0, 1, 2, 3, 3, 0], [1, 2, 3, 4, 4, 0]])  # duplicate, self-loop, 5 alone


def _models():
    torch.manual_seed(0)
    net = AffinityAttentionNet(FIN, OUT, hidden_channels=5, heads=2).double().eval()
    tc = TransformerConv(5, OUT, heads=2, concat=False, root_weight=False).double()
    tc.load_state_dict(net.attn.state_dict(), strict=False)  # (its lin_skip is unused)
    grand = DropNodeDiffusion(FIN, OUT, K=4, hidden_channels=5).double().eval()
    mlp = MLPDiffusion(FIN, OUT, hidden_channels=5).double().eval()
    return net, tc, grand, mlp


def _net_reference(net, tc, x, ei):
    ei, _ = remove_self_loops(ei.long())
    ei, _ = add_self_loops(ei, num_nodes=x.size(0))
    return tc(F.elu(net.lin(x)), ei)


def _grand_reference(model, x, ei):
    h = APPNP(4, 0.1)(model.lin1(x), ei.long())
    return model.lin2(F.relu(h + model.bias1))


def _mlp_reference(model, x, ei):
    h = model.lin2(F.relu(model.lin1(x)))
    return APPNP(model.prop.K, model.prop.alpha)(h, ei.long())


def _constructor_cases(ctor):
    """``{model name: (class, {label: (args, kwargs, argument named)})}`` as error cases."""
    return [case(f"nn.models.{name}", label,
                 lambda cls=cls, args=args, kw=kw: cls(*args, **kw), Raises(arg))
            for name, (cls, table) in ctor.items() for label, (args, kw, arg) in table.items()]


def _cases():
    net, tc, grand, mlp = _models()
    x = randn(N, FIN, seed=1)
    out = []
    for label, ei in (("edges", EDGES), ("uint8-edges", EDGES.to(torch.uint8)),
                      ("no-edges", EDGES[:, :0])):
        out += [
            case("nn.models.AffinityAttentionNet", label, lambda ei=ei: net(x, ei),
                 Equals(lambda ei=ei: _net_reference(net, tc, x, ei))),
            case("nn.models.DropNodeDiffusion", label, lambda ei=ei: grand(x, ei),
                 Equals(lambda ei=ei: _grand_reference(grand, x, ei))),
            case("nn.models.MLPDiffusion", label, lambda ei=ei: mlp(x, ei),
                 Equals(lambda ei=ei: _mlp_reference(mlp, x, ei))),
        ]
    out.append(case("nn.models.DropNodeDiffusion", "sparse-x",
                    lambda: grand(x.to_sparse(), EDGES),
                    Equals(lambda: _grand_reference(grand, x, EDGES))))
    nan = x.clone()
    nan[2, 2] = math.nan
    for name, model in (("AffinityAttentionNet", net), ("DropNodeDiffusion", grand),
                        ("MLPDiffusion", mlp)):
        entry = f"nn.models.{name}"
        out += [
            case(entry, "x-nan", lambda model=model: model(nan, EDGES), Raises("x")),
            case(entry, "edge_index-range", lambda model=model: model(x[:3], EDGES),
                 Raises("edge_index")),
            case(entry, "x-width", lambda model=model: model(randn(N, FIN + 1), EDGES),
                 Raises("x")),
        ]
    ctor = {
        "AffinityAttentionNet": (AffinityAttentionNet, {
            "in_channels-zero": ((0, OUT), {}, "in_channels"),
            "K-zero": ((FIN, OUT, 0), {}, "K"),
            "K-float": ((FIN, OUT, 2.5), {}, "K"),
            "heads-zero": ((FIN, OUT), {"heads": 0}, "heads"),
            "dropout-one": ((FIN, OUT), {"dropout": 1.0}, "dropout"),
            "alpha-with-one-hop": ((FIN, OUT, 1), {"alpha": 0.1}, "alpha"),
            "alpha-above-one": ((FIN, OUT, 3), {"alpha": 1.5}, "alpha"),
        }),
        "DropNodeDiffusion": (DropNodeDiffusion, {
            "out_channels-zero": ((FIN, 0), {}, "out_channels"),
            "hidden_channels-float": ((FIN, OUT), {"hidden_channels": 8.0}, "hidden_channels"),
            "drop_node-one": ((FIN, OUT), {"drop_node": 1.0}, "drop_node"),
            "K-negative": ((FIN, OUT, -1), {}, "hops"),
            "coeffs-unknown": ((FIN, OUT), {"coeffs": "gpr"}, "coeffs"),
        }),
        "MLPDiffusion": (MLPDiffusion, {
            "in_channels-bool": ((True, OUT), {}, "in_channels"),
            "dropout-negative": ((FIN, OUT), {"dropout": -0.5}, "dropout"),
        }),
    }
    out += _constructor_cases(ctor)
    logits = [randn(N, OUT, seed=s) for s in (5, 6)]

    def loss_reference(zs, t=0.5):
        ps = [torch.softmax(z.double(), -1) for z in zs]
        mean = sum(ps) / len(ps)
        sharp = mean ** (1 / t)
        q = sharp / sharp.sum(-1, keepdim=True)
        return sum(((q - p) ** 2).sum(-1).mean() for p in ps) / len(ps)

    out += [
        case("nn.models.consistency_loss", "two-passes", lambda: consistency_loss(logits),
             Equals(lambda: loss_reference(logits))),
        case("nn.models.consistency_loss", "one-pass", lambda: consistency_loss(logits[:1]),
             Equals(lambda: loss_reference(logits[:1]))),
        case("nn.models.consistency_loss", "large-logits",
             lambda: consistency_loss([z * 1e3 for z in logits], temperature=2.0),
             Equals(lambda: loss_reference([z * 1e3 for z in logits], 2.0))),
        case("nn.models.consistency_loss", "temperature-zero",
             lambda: consistency_loss(logits, temperature=0.0), Raises("temperature")),
        case("nn.models.consistency_loss", "temperature-nan",
             lambda: consistency_loss(logits, temperature=math.nan), Raises("temperature")),
        case("nn.models.consistency_loss", "empty", lambda: consistency_loss([]),
             Raises("logits")),
        case("nn.models.consistency_loss", "shapes",
             lambda: consistency_loss([logits[0], logits[1][:3]]), Raises("logits")),
        case("nn.models.consistency_loss", "tensor", lambda: consistency_loss(logits[0]),
             Raises("logits")),
    ]
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    mask = torch.tensor([True, True, False, True, False, False])

    def grand_reference(weight):  # evaluation mode: every pass is the same
        z = _grand_reference(grand, x, EDGES)
        ce = F.cross_entropy(z[mask], y[mask])
        return ce + weight * loss_reference([z, z, z])

    out += [
        case("nn.models.GRANDLoss", "eval-passes",
             lambda: GRANDLoss(samples=3, weight=0.7)(grand, x, EDGES, y, mask),
             Equals(lambda: grand_reference(0.7))),
        case("nn.models.GRANDLoss", "no-mask",
             lambda: GRANDLoss(samples=1, weight=0.0)(grand, x, EDGES, y),
             Equals(lambda: F.cross_entropy(_grand_reference(grand, x, EDGES), y))),
        case("nn.models.GRANDLoss", "samples-zero", lambda: GRANDLoss(samples=0),
             Raises("samples")),
        case("nn.models.GRANDLoss", "samples-float", lambda: GRANDLoss(samples=2.0),
             Raises("samples")),
        case("nn.models.GRANDLoss", "weight-negative", lambda: GRANDLoss(weight=-1.0),
             Raises("weight")),
        case("nn.models.GRANDLoss", "weight-nan", lambda: GRANDLoss(weight=math.nan),
             Raises("weight")),
        case("nn.models.GRANDLoss", "temperature-inf", lambda: GRANDLoss(temperature=math.inf),
             Raises("temperature")),
        case("nn.models.GRANDLoss", "x-nan",
             lambda: GRANDLoss()(grand, nan, EDGES, y, mask), Raises("x")),
    ]
    return out + _new_model_cases()


# a clean undirected graph (no duplicates, no self-loops, every node linked) for the dense
# references of GRAND and AffinityHopNet
RING = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 0],
                     [1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 0, 5]])


def _sym(A):
    d = A.sum(1)
    inv = torch.where(d > 0, d.rsqrt(), torch.zeros_like(d))
    return inv[:, None] * A * inv[None, :]


def _dense(ei):
    A = torch.zeros(N, N, dtype=torch.float64)
    A[ei[1], ei[0]] = 1.0
    return A


def _new_model_cases():
    torch.manual_seed(0)
    grand = GRAND(FIN, OUT, 5, 2, drop_node=0.5).double().eval()
    hop = AffinityHopNet(FIN, OUT, 1, hidden_channels=6, num_layers=1, conv="diffusion",
                         sep=True, norm=None).double().eval()
    att = GRANDAttention(FIN, OUT, 5, 2, drop_node=0.5, key_channels=3,
                         logit_scale=0.8).double().eval()
    x = randn(N, FIN, seed=3)

    def attention_reference(ei):  # eval: the hop average over softmax(gamma q k^T / sqrt(d))
        mask = (_dense(ei) + torch.eye(N, dtype=torch.float64)) > 0
        logits = (att.logit_scale * att.lin_query(x)) @ att.lin_key(x).T / math.sqrt(3)
        S = logits.masked_fill(~mask, -math.inf).softmax(1)
        xb = 0.5 * x
        xbar = (xb + S @ xb + S @ S @ xb) / 3
        return att.lin2(F.relu(att.lin1(xbar)))

    def grand_reference(ei):  # eval: (1 - rate) x, the hop average over D^-1/2 (A + I) D^-1/2
        S = _sym(_dense(ei) + torch.eye(N, dtype=torch.float64))
        xb = 0.5 * x
        xbar = (xb + S @ xb + S @ S @ xb) / 3
        return grand.lin2(F.relu(grand.lin1(xbar)))

    def hop_reference(ei):  # one block, ego and neighbour apart, no self-loops, no norm
        h = F.gelu(hop.lin_in(x))
        agg = _sym(_dense(ei)) @ h
        h = h + F.gelu(hop.lins[0](torch.cat([h, agg], -1)))
        return hop.lin_out(h)

    nan = x.clone()
    nan[1, 3] = math.nan
    out = []
    for label, ei in (("ring", RING), ("no-edges", RING[:, :0])):
        out += [case("nn.models.GRAND", label, lambda ei=ei: grand(x, ei),
                     Equals(lambda ei=ei: grand_reference(ei))),
                case("nn.models.GRANDAttention", label, lambda ei=ei: att(x, ei),
                     Equals(lambda ei=ei: attention_reference(ei))),
                case("nn.models.AffinityHopNet", label, lambda ei=ei: hop(x, ei),
                     Equals(lambda ei=ei: hop_reference(ei)))]
    out.append(case("nn.models.GRANDAttention", "edge_weight",
                    lambda: att(x, RING, torch.ones(RING.size(1), dtype=torch.float64)),
                    Raises("edge_weight")))
    for name, model in (("GRAND", grand), ("GRANDAttention", att), ("AffinityHopNet", hop)):
        entry = f"nn.models.{name}"
        out += [
            case(entry, "x-nan", lambda model=model: model(nan, RING), Raises("x")),
            case(entry, "edge_index-range", lambda model=model: model(x[:3], RING),
                 Raises("edge_index")),
            case(entry, "x-width", lambda model=model: model(randn(N, FIN + 1), RING),
                 Raises("x")),
        ]
    ctor = {
        "GRAND": (GRAND, {
            "drop_node-one": ((FIN, OUT), {"drop_node": 1.0}, "drop_node"),
            "hidden_channels-zero": ((FIN, OUT, 0), {}, "hidden_channels"),
        }),
        "GRANDAttention": (GRANDAttention, {
            "key_channels-zero": ((FIN, OUT), {"key_channels": 0}, "key_channels"),
            "logit_scale-inf": ((FIN, OUT), {"logit_scale": math.inf}, "logit_scale"),
            "learn_affinity-int": ((FIN, OUT), {"learn_affinity": 1}, "learn_affinity"),
        }),
        "AffinityHopNet": (AffinityHopNet, {
            "conv-unknown": ((FIN, OUT), {"conv": "gcn"}, "conv"),
            "num_layers-zero": ((FIN, OUT), {"num_layers": 0}, "num_layers"),
            "norm-unknown": ((FIN, OUT), {"norm": "batch"}, "norm"),
        }),
    }
    out += _constructor_cases(ctor)
    return out


CASES = _cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_models(c):
    with torch.no_grad():
        check(c)
