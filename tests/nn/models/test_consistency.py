"""consistency_loss (GRAND eq. 7) and the GRAND objective, hand-computed."""
import math

import pytest
import torch

from affgraph.nn.models import GRANDLoss, consistency_loss


def test_consistency_loss_hand_computed():
    """Two passes, one node: p = (1/2, 1/2) and (3/4, 1/4); their mean (5/8, 3/8) sharpened at
    T = 1/2 is (25/34, 9/34); the loss is the mean squared distance, 257/4624."""
    a = torch.tensor([[0.0, 0.0]], dtype=torch.double)
    b = torch.tensor([[math.log(3.0), 0.0]], dtype=torch.double)
    loss = consistency_loss([a, b], temperature=0.5)
    assert loss.item() == pytest.approx(257 / 4624, rel=1e-12)
    assert consistency_loss([a, b]).item() == pytest.approx(257 / 4624, rel=1e-12)  # T = 0.5
    # identical passes at T = 1 agree with their own mean: no loss
    assert consistency_loss([b, b.clone()], temperature=1.0).item() == pytest.approx(0, abs=1e-15)


def test_consistency_loss_averages_over_nodes():
    """Node 0 as above (257/4624); node 1 with identical passes at T = 1/2: its target is
    the sharpened p, (9/10, 1/10) from p = (3/4, 1/4), at squared distance 2 (3/20)^2."""
    a = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.double)
    b = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]], dtype=torch.double)
    expected = (257 / 4624 + 2 * 0.15 ** 2) / 2
    assert consistency_loss([a, b], 0.5).item() == pytest.approx(expected, rel=1e-12)


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


def test_consistency_loss_rejects_bad_input():
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="temperature"):
        consistency_loss([z, z], temperature=0.0)
    with pytest.raises(ValueError, match="logits"):
        consistency_loss([])
    with pytest.raises(ValueError, match="logits"):
        consistency_loss([z, torch.zeros(2, 4)])


class _Passes:
    """A stand-in model: returns the given logits in turn, recording its inputs."""

    def __init__(self, *logits):
        self.logits, self.calls = list(logits), []

    def __call__(self, x, edge_index):
        self.calls.append((x, edge_index))
        return self.logits[len(self.calls) - 1]


def test_grand_loss_is_mean_cross_entropy_plus_weighted_consistency():
    """Two passes over two nodes, node 0 labelled 0 and the only one in the mask: the
    cross-entropies -log(1/2) and -log(3/4) averaged, plus 0.5 times the consistency over
    both nodes (as in the test above)."""
    a = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], dtype=torch.double)
    b = torch.tensor([[math.log(3.0), 0.0], [math.log(3.0), 0.0]], dtype=torch.double)
    y, mask = torch.tensor([0, 1]), torch.tensor([True, False])
    model, x, ei = _Passes(a, b), object(), object()
    loss = GRANDLoss(samples=2, weight=0.5, temperature=0.5)(model, x, ei, y, mask)
    ce = (math.log(2.0) + math.log(4 / 3)) / 2
    cons = (257 / 4624 + 2 * 0.15 ** 2) / 2
    assert loss.item() == pytest.approx(ce + 0.5 * cons, rel=1e-12)
    assert [c[0] is x and c[1] is ei for c in model.calls] == [True, True]
    # no mask: every node labelled; node 1's cross-entropies are -log(1/4) twice
    loss = GRANDLoss(weight=0.0)(_Passes(a, b), x, ei, y)
    assert loss.item() == pytest.approx((ce + math.log(4.0)) / 2, rel=1e-12)


def test_grand_loss_runs_as_many_passes_as_samples():
    z = torch.zeros(2, 2)
    model = _Passes(z, z, z)
    GRANDLoss(samples=3)(model, None, None, torch.tensor([0, 1]))
    assert len(model.calls) == 3
    assert GRANDLoss() == GRANDLoss(samples=2, weight=1.0, temperature=0.5)  # the defaults


@pytest.mark.parametrize("kwargs, match", [
    (dict(samples=0), "samples"), (dict(samples=2.0), "samples"), (dict(weight=-1.0), "weight"),
    (dict(weight=math.nan), "weight"), (dict(temperature=0.0), "temperature"),
    (dict(temperature=math.inf), "temperature")])
def test_grand_loss_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GRANDLoss(**kwargs)
