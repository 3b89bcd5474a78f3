"""The node-classification models of ``scripts/_models.py`` that have no PyG twin."""
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import node_classification as nc  # noqa: E402
from _models import Consistency, DropNodeDiffusion, build_model, consistency_loss  # noqa: E402


def test_consistency_loss_hand_computed():
    """Two passes, one node: p = (1/2, 1/2) and (3/4, 1/4); their mean (5/8, 3/8) sharpened at
    T = 1/2 is (25/34, 9/34); the loss is the mean squared distance, 257/4624."""
    a = torch.tensor([[0.0, 0.0]], dtype=torch.double)
    b = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.double)
    loss = consistency_loss([a, b], temperature=0.5)
    assert loss.item() == pytest.approx(257 / 4624, rel=1e-12)
    # identical passes at T = 1 agree with their own mean: no loss
    assert consistency_loss([b, b.clone()], temperature=1.0).item() == pytest.approx(0, abs=1e-15)


def test_consistency_target_carries_no_gradient():
    """d/da of (1/2) sum_s ||q - p_s||^2 with q constant: only the pass's own term."""
    a = torch.tensor([[0.3, -0.2, 0.5]], dtype=torch.double, requires_grad=True)
    b = torch.tensor([[0.1, 0.4, -0.7]], dtype=torch.double)
    consistency_loss([a, b], temperature=0.5).backward()
    pa, pb = torch.softmax(a.detach(), -1), torch.softmax(b, -1)
    m = (pa + pb) / 2
    q = m ** 2 / (m ** 2).sum()
    g_p = -(q - pa) / 1.0  # d/dp_a of (1/2)||q - p_a||^2 summed over the node (N = 1)
    jac = torch.diag(pa[0]) - pa[0, :, None] * pa[0, None, :]  # softmax Jacobian
    torch.testing.assert_close(a.grad[0], jac @ g_p[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(samples=0), "samples"), (dict(samples=2.0), "samples"), (dict(weight=-1.0), "weight"),
    (dict(weight=math.nan), "weight"), (dict(temperature=0.0), "temperature")])
def test_consistency_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Consistency(**kwargs)


def _graph():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 5, generator=g, dtype=torch.double)
    x[x < 0.5] = 0.0  # sparse-ish, like bag-of-words
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])  # node 5 isolated
    return x, ei


def test_drop_node_diffusion_eval_is_the_dense_float64_closed_form():
    """Eval mode: W2 relu(sum_k theta_k A^k X W1 + b1) + b2, A = D^-1/2 (A + I) D^-1/2, ppr."""
    x, ei = _graph()
    torch.manual_seed(0)
    model = DropNodeDiffusion(5, 3, 3, hidden=4).double().eval()
    torch.nn.init.normal_(model.bias1)
    adj = torch.eye(6, dtype=torch.double)
    adj[ei[1], ei[0]] = 1.0
    d = adj.sum(1).rsqrt()
    a_hat = d[:, None] * adj * d[None, :]
    theta = [0.1, 0.09, 0.081, 0.729]  # alpha (1 - alpha)^k, the tail on the last hop
    xw = x @ model.lin1.weight.T
    h = sum(t * torch.linalg.matrix_power(a_hat, k) @ xw for k, t in enumerate(theta))
    expected = model.lin2(torch.relu(h + model.bias1))
    torch.testing.assert_close(model(x, ei), expected)
    torch.testing.assert_close(model(x.to_sparse(), ei), expected)  # the sparse path


def test_drop_node_keeps_whole_rows_scaled_by_the_keep_probability():
    """Training mode, no edges (A_hat = I), no other dropout: each row is the model of its
    features times 1/(1 - delta) (kept) or of zeros (dropped), on the dense and sparse paths."""
    x, _ = _graph()
    x = x + 0.1  # no zero row: a kept row must differ from a dropped one
    ei = torch.empty(2, 0, dtype=torch.long)
    model = DropNodeDiffusion(5, 3, 2, hidden=4, drop_node=0.5, input_dropout=0.0,
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


def test_drop_node_diffusion_rejects_bad_rates():
    with pytest.raises(ValueError, match="drop_node"):
        DropNodeDiffusion(5, 3, 2, drop_node=1.0)
    with pytest.raises(ValueError, match="dropout"):
        DropNodeDiffusion(5, 3, 2, dropout=-0.1)


def test_cr_model_is_a_hop_model_without_attention_dropout(monkeypatch):
    assert build_model("AffinityDiffusionCR", 5, 2, 4)[0].prop.hops == 4
    assert build_model("AffinityDiffusionCR", 5, 2)[0].prop.hops == 8  # the default
    with pytest.raises(ValueError, match="not AffinityDiffusionCR"):
        build_model("AffinityDiffusionCR", 5, 2, 4, attn_dropout=0.3)
    calls = []
    forward = DropNodeDiffusion.forward

    def counted(self, x, edge_index):
        calls.append((self.training, x.is_sparse))
        return forward(self, x, edge_index)

    monkeypatch.setattr(DropNodeDiffusion, "forward", counted)
    rows = nc.run(["csbm-0.9"], ["AffinityDiffusionCR"], hops=[2, math.inf], seeds=1, epochs=1,
                  patience=1, csbm_nodes=40, progress=False, attn_dropout=[0.0, 0.3])
    assert [(r["model"], r["hops"], "attn_dropout" in r) for r in rows] == [
        ("AffinityDiffusionCR", "2", False), ("AffinityDiffusionCR", "inf", False)]
    # per epoch: the two stochastic passes of the consistency term, then one eval pass; the
    # features go in sparse
    assert calls == [(True, True), (True, True), (False, True)] * 2
    assert nc.format_table(rows).splitlines()[2].startswith("| AffinityDiffusionCR (K=2) |")
