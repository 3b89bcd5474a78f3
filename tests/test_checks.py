import pytest
import torch

from affgraph import _checks
from affgraph._checks import check_finite, check_finite_all, check_positive_int, check_tensor


def test_check_finite_names_the_argument_for_every_non_finite_value():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        for bad in (float("nan"), float("inf"), -float("inf")):
            x = torch.randn(5, 7).to(dtype)
            x[3, 2] = bad
            with pytest.raises(ValueError, match="^weights contains NaN or inf values$"):
                check_finite("weights", x)
            with pytest.raises(ValueError, match="^x contains NaN or inf values$"):
                check_tensor("x", x)
    x = torch.zeros(4)
    x[0], x[1] = float("inf"), -float("inf")  # the sum is NaN, still caught
    with pytest.raises(ValueError, match="y contains"):
        check_finite("y", x)


def test_check_finite_accepts_finite_input_whose_sum_overflows():
    # the oracle: the elementwise test says these are finite, although their sums overflow
    for x in (torch.full((10,), 6e4, dtype=torch.float16),
              torch.tensor([3e38, 3e38], dtype=torch.float32)):
        assert bool(torch.isfinite(x).all()) and not bool(torch.isfinite(x.sum()))
        check_finite("x", x)
        check_tensor("x", x)


def test_check_finite_skips_empty_and_integer_tensors():
    check_finite("x", torch.empty(0, 3))
    check_finite("x", torch.tensor([1, 2, 3]))
    check_tensor("edge_index", torch.tensor([[0, 1], [1, 0]]), ndim=2)
    with pytest.raises(ValueError, match="must have 2 dimensions"):
        check_tensor("a", torch.zeros(3), ndim=2)
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        check_tensor("a", [1.0])


def test_check_finite_is_the_one_implementation():
    import affgraph.attention as attention

    assert attention.check_finite_all is _checks.check_finite_all
    with pytest.raises(ValueError, match="^k contains NaN or inf values$"):
        attention.attention(torch.randn(3, 1, 2), torch.full((3, 1, 2), float("nan")),
                            torch.randn(3, 1, 2))


def test_check_finite_all_names_the_first_offender_and_passes_finite_input():
    good = torch.randn(4, 3)
    big = torch.full((4,), 3e38)  # finite float32 values whose sum overflows
    check_finite_all(("a", "b", "c"), (good, big, torch.arange(3)))  # no error
    bad = good.clone()
    bad[1, 2] = float("-inf")
    with pytest.raises(ValueError, match="^b contains NaN or inf values$"):
        check_finite_all(("a", "b", "c"), (good, bad, bad.clone().fill_(float("nan"))))
    check_finite_all((), ())
    check_finite_all(("e",), (torch.empty(0),))


def test_check_positive_int():
    check_positive_int("k", 3)
    for bad in (0, -1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=r"k must be a positive int, got"):
            check_positive_int("k", bad)
