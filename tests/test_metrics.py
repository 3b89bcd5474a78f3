import pytest
import torch

from affgraph.metrics import accuracy, check_binary_target, roc_auc, roc_auc_unchecked

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def _pairwise_auc(scores: torch.Tensor, target: torch.Tensor) -> float:
    """Dense reference: every (positive, negative) pair, 1 if the positive scores higher, 1/2
    on a tie, in float64."""
    s = scores.double()
    pos, neg = s[target == 1], s[target == 0]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


def test_hand_computed_small_case():
    # positives 0.35, 0.8; negatives 0.1, 0.4. Pairs (pos, neg):
    #   (0.35, 0.1) 1   (0.35, 0.4) 0   (0.8, 0.1) 1   (0.8, 0.4) 1   -> 3 / 4
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    target = torch.tensor([0, 0, 1, 1])
    assert roc_auc(scores, target) == 0.75
    # the labels flipped: the complement; a monotone map of the scores: the same
    assert roc_auc(scores, 1 - target) == 0.25
    assert roc_auc(torch.exp(5 * scores), target) == 0.75


def test_ties_get_half_credit():
    # positives 0.5 (a), 0.9, 0.5 (b); negatives 0.5 (c), 0.2. Pairs (pos, neg):
    #   (0.5a, 0.5c) 1/2  (0.5a, 0.2) 1  (0.9, 0.5c) 1  (0.9, 0.2) 1
    #   (0.5b, 0.5c) 1/2  (0.5b, 0.2) 1                         -> 5 / 6
    scores = torch.tensor([0.5, 0.5, 0.2, 0.9, 0.5], dtype=torch.float64)
    target = torch.tensor([1, 0, 0, 1, 1])
    assert roc_auc(scores, target) == pytest.approx(5 / 6, abs=1e-15)
    # all scores equal: every pair is a tie
    assert roc_auc(torch.zeros(6), torch.tensor([0, 1, 1, 0, 1, 1])) == 0.5
    # perfect separation, and its reverse
    assert roc_auc(torch.arange(6.0), torch.tensor([0, 0, 0, 1, 1, 1])) == 1.0
    assert roc_auc(-torch.arange(6.0), torch.tensor([0, 0, 0, 1, 1, 1])) == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_and_the_pairwise_count(dtype, ties, seed):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(2, 400, (1,), generator=g))
    target = torch.randint(0, 2, (n,), generator=g)
    target[0], target[1] = 0, 1  # both classes present
    scores = torch.randn(n, generator=g, dtype=torch.float64).to(dtype)
    if ties:  # a few distinct values: most pairs tie
        scores = torch.round(scores * 2) / 2
        assert scores.unique().numel() < n // 2 + 2
    ref = sklearn_metrics.roc_auc_score(target.numpy(), scores.numpy())
    got = roc_auc(scores, target)
    assert isinstance(got, float)
    assert got == pytest.approx(ref, abs=1e-12)
    assert got == pytest.approx(_pairwise_auc(scores, target), abs=1e-12)
    # bool and float targets mean the same
    assert roc_auc(scores, target.bool()) == got == roc_auc(scores, target.to(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_other_dtypes_rank_in_their_own_precision(dtype):
    g = torch.Generator().manual_seed(7)
    target = torch.randint(0, 2, (300,), generator=g)
    scores = (torch.randn(300, generator=g) * 4).to(dtype)
    # ties are equal values in the given dtype (bfloat16 has many): the float64 copy holds
    # exactly those values
    assert roc_auc(scores, target) == pytest.approx(_pairwise_auc(scores, target), abs=1e-12)
    assert roc_auc(scores, target) == pytest.approx(
        sklearn_metrics.roc_auc_score(target.numpy(), scores.double().numpy()), abs=1e-12)


def test_unchecked_form_is_a_float64_tensor_with_the_same_value():
    scores = torch.tensor([0.5, 0.5, 0.2, 0.9, 0.5])
    target = torch.tensor([True, False, False, True, True])
    out = roc_auc_unchecked(scores, target)
    assert out.dtype == torch.float64 and out.dim() == 0
    assert float(out) == roc_auc(scores, target)


def test_bad_inputs_name_the_argument():
    s, t = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match="same shape.*scores \\(3,\\).*target \\(2,\\)"):
        roc_auc(s, t[:2])
    with pytest.raises(ValueError, match=r"scores must have shape \[N\]"):
        roc_auc(s[:, None], t[:, None])
    with pytest.raises(ValueError, match="target must hold only 0 and 1.*2"):
        roc_auc(s, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="target must hold only 0 and 1.*0.5"):
        roc_auc(s, torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(ValueError, match=r"target must hold both classes.*class 1 \(positive\)"):
        roc_auc(s, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must hold both classes.*class 0 \(negative\)"):
        roc_auc(s, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="class 1"):
        roc_auc(torch.empty(0), torch.empty(0, dtype=torch.long))
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="scores must be finite"):
            roc_auc(torch.tensor([0.1, bad, 0.3]), t)
    with pytest.raises(TypeError, match="scores must be a torch.Tensor"):
        roc_auc([0.1, 0.2, 0.3], t)
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        roc_auc(s, [0, 1, 1])
    with pytest.raises(TypeError, match="scores must be a real"):
        roc_auc(torch.tensor([True, False, True]), t)
    with pytest.raises(ValueError, match="my_mask must hold both"):
        check_binary_target(torch.zeros(4), name="my_mask")


def test_accuracy_hand_computed_and_bad_inputs():
    logits = torch.tensor([[2.0, 1.0, 0.0],   # -> 0, true 0: right
                           [0.0, 3.0, 1.0],   # -> 1, true 2: wrong
                           [1.0, 1.0, 0.0],   # tie -> 0 (lowest index), true 1: wrong
                           [0.0, 0.0, 5.0]])  # -> 2, true 2: right
    target = torch.tensor([0, 2, 1, 2])
    assert accuracy(logits, target) == 0.5
    assert accuracy(logits.double(), target.int()) == 0.5
    with pytest.raises(ValueError, match=r"target must have shape \[N\] = \[4\]"):
        accuracy(logits, target[:3])
    with pytest.raises(ValueError, match=r"logits must have shape \[N, C\]"):
        accuracy(logits[0], target)
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\).*\[0, 3\]"):
        accuracy(logits, torch.tensor([0, 3, 1, 2]))
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\)"):
        accuracy(logits, torch.tensor([0, -1, 1, 2]))
    with pytest.raises(ValueError, match="no nodes"):
        accuracy(torch.empty(0, 3), torch.empty(0, dtype=torch.long))
    with pytest.raises(ValueError, match="logits must be finite"):
        accuracy(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]))
    with pytest.raises(TypeError, match="target must hold integer"):
        accuracy(logits, target.float())
    with pytest.raises(TypeError, match="logits must be a floating"):
        accuracy(logits.long(), target)
