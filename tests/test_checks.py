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


def test_check_solver_refuses_unreachable_or_unbounded_settings():
    from affgraph._checks import check_solver

    check_solver(1e-6, 1)
    check_solver(0.5, 10 ** 9)  # large but bounded
    for tol in (0.0, -1e-6, float("nan"), float("inf"), True, "1e-6", None):
        with pytest.raises(ValueError, match=r"^tol must be a finite number > 0, got"):
            check_solver(tol, 10)
    for max_iter in (0, -1, 10.0, True, None, "10"):
        with pytest.raises(ValueError, match=r"^max_iter must be a positive int, got"):
            check_solver(1e-6, max_iter)


def test_check_features_names_width_dtype_and_shape():
    from affgraph._checks import check_features

    x = torch.randn(5, 3)
    check_features("x", x, 3, torch.float32)
    check_features("x", x)  # width and dtype unchecked
    with pytest.raises(ValueError, match=r"x must have shape \[N, 4\]"):
        check_features("x", x, 4)
    with pytest.raises(TypeError, match="x has dtype torch.float32 but the layer's parameters "
                                        "are torch.float64"):
        check_features("x", x, 3, torch.float64)
    with pytest.raises(TypeError, match="x must be a floating tensor, got torch.int64"):
        check_features("x", x.long(), 3)
    with pytest.raises(ValueError, match=r"x_dst must have shape \[N, F\], got \(3,\)"):
        check_features("x_dst", x[0])
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        check_features("x", x.tolist())
    with pytest.raises(ValueError, match="x contains NaN or inf values"):
        check_features("x", torch.full((2, 3), float("nan")), 3)


def test_check_batch_takes_int64_and_int32_ids_only():
    from affgraph._checks import check_batch

    for dtype in (torch.int64, torch.int32):
        check_batch(torch.tensor([0, 0, 1], dtype=dtype), 3)
    for dtype in (torch.bool, torch.uint8, torch.int8, torch.int16, torch.float32):
        with pytest.raises(ValueError, match=rf"batch must be an int64 \(or int32\) tensor of "
                                             rf"graph ids, got {dtype}"):
            check_batch(torch.tensor([0, 0, 1]).to(dtype), 3)
    with pytest.raises(TypeError, match="batch must be a torch.Tensor, got list"):
        check_batch([0, 0, 1], 3)


def test_check_number_and_choice_helpers():
    from affgraph._checks import check_choice, check_nonnegative_int, check_positive_real

    check_nonnegative_int("n", 0)
    check_positive_real("t", 1e-300)
    check_choice("normalize", "sym", ("sym", "row"))
    for bad in (-1, 1.0, True, None):
        with pytest.raises(ValueError, match="^n must be a non-negative int, got"):
            check_nonnegative_int("n", bad)
    for bad in (0, -2.0, float("nan"), float("inf"), False, "1"):
        with pytest.raises(ValueError, match="^t must be a finite number > 0, got"):
            check_positive_real("t", bad)
    for bad in ("l1", None, 1):
        with pytest.raises(ValueError, match=r"^normalize: unknown value .*; choose one of "
                                             r"\('sym', 'row'\)"):
            check_choice("normalize", bad, ("sym", "row"))
