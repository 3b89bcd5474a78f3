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
