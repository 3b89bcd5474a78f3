"""The tiled |Z^T Z| products of FeatureAffinity (stored, 16-bit, recomputed, across ranks)
against float64 dense references."""
import math
import socket

import numpy as np
import pytest
import scipy.stats
import torch

from affgraph.diffusion import katz_lanczos
from affgraph.inffs import FeatureAffinity, inffs_scores

W = 0.5
QERR = 0.5 / 65535  # the largest rounding error of a 16-bit fixed-point |rho|


def _data(m=30, n=41, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, n)) * rng.uniform(0.3, 3.0, size=n)
    X[:, 1] += 0.8 * X[:, 0]
    X[:, 5:12] += rng.normal(size=(m, 1))  # a correlated block
    return X


def _unit_ranks(X):
    R = scipy.stats.rankdata(X, axis=0)
    R = R - R.mean(0)
    return R / np.linalg.norm(R, axis=0)


def _paper(X, **kw):
    """The paper's affinity as a FeatureAffinity and as a float64 dense matrix (scipy)."""
    n = X.shape[1]
    s = X.std(0, ddof=1)
    s = (s - s.min()) / (s.max() - s.min())
    C = scipy.stats.spearmanr(X).correlation
    dense = W * np.maximum.outer(s, s) + (1 - W) * (1 - np.abs(C))
    A = FeatureAffinity(n, s=s, c_max=W, Z=_unit_ranks(X), c_abs=-(1 - W),
                        rank_one=[(1 - W, np.ones(n), np.ones(n))], **kw)
    return A, dense


def _katz(dense, r_frac=0.9):
    rho = np.linalg.eigvalsh(dense).max()
    eye = np.eye(len(dense))
    return (np.linalg.inv(eye - r_frac / rho * dense) - eye).sum(1)


def test_stored_float32_tiles_equal_recomputed_ones_and_the_dense_matrix():
    X = _data()
    A, D = _paper(X, block=8)  # 6 x 6 tiles of side 8 (the last of 1), all stored in float32
    R, _ = _paper(X, block=8, store_bytes=0)  # every tile recomputed at every product
    v = torch.randn(41, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    first = A.matvec(v)
    assert A._store_dtype == torch.float32 and len(A._stored) == 21
    assert all(q is not None and q.dtype == torch.float32 for q in A._stored)
    torch.testing.assert_close(A.matvec(v), first, rtol=0, atol=0)  # the store, reused
    torch.testing.assert_close(R.matvec(v), first, rtol=0, atol=0)  # = the recomputed tiles
    assert all(q is None for q in R._stored)
    np.testing.assert_allclose(first.numpy(), D @ v.numpy(), rtol=1e-6)


def test_sixteen_bit_tiles_within_the_rounding_bound():
    X = _data(seed=2)
    A, D = _paper(X, block=8, store_dtype=torch.uint16)
    v = torch.rand(41, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = A.matvec(v).numpy()
    assert all(q.dtype == torch.uint16 for q in A._stored)
    err = np.abs(got - D @ v.numpy())
    bound = (1 - W) * QERR * float(v.abs().sum()) + 1e-9 * np.abs(D @ v.numpy())
    assert (err <= bound).all()
    assert err.max() > 1e-3 * bound.max()  # it is the quantised matrix, not float32's
    # the stored integers are round(65535 |rho|) of float64 Spearman
    C = np.abs(scipy.stats.spearmanr(X).correlation)
    np.testing.assert_array_equal(A._stored[0].numpy().astype(np.int64),
                                  np.round(65535 * C[:8, :8]).astype(np.int64))
    # and its Katz scores: the float64 closed form to 1e-5, the same leading features
    y, _ = katz_lanczos(A.matvec, torch.ones(41, dtype=torch.float64), r_frac=0.9)
    ref = _katz(D)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5)
    np.testing.assert_array_equal(np.argsort(-y.numpy())[:10], np.argsort(-ref)[:10])


def test_budget_stores_some_tiles_and_recomputes_the_rest():
    X = _data(seed=4)
    tile_bytes = 8 * 8 * 2
    A, D = _paper(X, block=8, store_bytes=5 * tile_bytes + 10)  # 5 full tiles in 16 bits
    B, _ = _paper(X, block=8, store_bytes=5 * tile_bytes + 10, store_dtype=torch.uint16)
    v = torch.randn(41, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for op in (A, B):
        got = op.matvec(v).numpy()
        assert op._store_dtype == torch.uint16  # float32 would not fit
        # row-major upper triangle: five 8 x 8 tiles fill it, then the 1 x 1 corner fits
        assert [k for k, q in enumerate(op._stored) if q is not None] == [0, 1, 2, 3, 4, 20]
        err = np.abs(got - D @ v.numpy())
        assert (err <= (1 - W) * QERR * float(v.abs().sum()) + 1e-9).all()
        torch.testing.assert_close(op.matvec(v), torch.as_tensor(got), rtol=0, atol=0)


def test_columns_of_any_norm_and_zero_columns():
    """|Z^T Z| = D |Zhat^T Zhat| D: columns of norm != 1 (and 0) in 16 bits and float32."""
    rng = np.random.default_rng(6)
    Z = rng.normal(size=(12, 30)) * rng.uniform(0.1, 4.0, size=30)
    Z[:, 3] = 0.0
    D = np.abs(Z.T @ Z)
    v = torch.randn(30, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    for dt, rtol in ((None, 1e-6), (torch.uint16, 2e-4)):
        A = FeatureAffinity(30, Z=Z, c_abs=1.0, block=7, store_dtype=dt)
        got = A.matvec(v).numpy()
        d = np.linalg.norm(Z, axis=0)
        bound = d * QERR * (d @ np.abs(v.numpy())) if dt else np.abs(D) @ np.abs(v.numpy())
        assert (np.abs(got - D @ v.numpy()) <= rtol * np.abs(D) @ np.abs(v.numpy())
                + (bound if dt else 0)).all()
        assert got[3] == 0.0


def test_default_path_scores_unchanged_in_ranking():
    X = _data(n=60, seed=8)
    _, D = _paper(X)
    ours = inffs_scores(X, max_dense_bytes=0, block=16).numpy()
    np.testing.assert_allclose(ours, _katz(D), rtol=1e-6)
    np.testing.assert_array_equal(np.argsort(-ours), np.argsort(-_katz(D)))


def test_bad_store_arguments():
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="store_bytes"):
            FeatureAffinity(3, store_bytes=bad)
    with pytest.raises(ValueError, match="store_dtype"):
        FeatureAffinity(3, store_dtype=torch.float16)
    with pytest.raises(ValueError, match="store_dtype"):
        FeatureAffinity(3, gemm_dtype=torch.float64, store_dtype=torch.float32)


# ---------------------------------------------------------------- torch.distributed

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runs(X):
    """Scores of the default tiled path (float32 tiles), of 16-bit tiles and of recomputed
    ones (the budget is per process: a partial one would store other tiles on two ranks)."""
    out = [inffs_scores(X, max_dense_bytes=0, block=8)]
    A, _ = _paper(X, block=8, store_dtype=torch.uint16)
    out.append(katz_lanczos(A.matvec, torch.ones(X.shape[1], dtype=torch.float64),
                            r_frac=0.9)[0])
    A, _ = _paper(X, block=8, store_bytes=0)
    out.append(katz_lanczos(A.matvec, torch.ones(X.shape[1], dtype=torch.float64),
                            r_frac=0.9)[0])
    return out, len(A._abs_plan)


def _rank_worker(rank, world, port, X, folder):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        torch.save(_runs(X), f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one(tmp_path):
    import torch.multiprocessing as mp

    X = _data(seed=9)
    ref, tiles = _runs(X)  # 21 tiles on one process
    mp.spawn(_rank_worker, args=(2, _free_port(), X, str(tmp_path)), nprocs=2, join=True)
    got = {r: torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)}
    assert tiles == 21 and [got[r][1] for r in (0, 1)] == [11, 10]  # the tiles split
    for r in (0, 1):
        for a, b in zip(got[r][0], ref):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=0)
    for k in range(3):  # the ranks agree exactly
        torch.testing.assert_close(got[0][0][k], got[1][0][k], rtol=0, atol=0)
    _, D = _paper(X)
    np.testing.assert_allclose(got[0][0][0].numpy(), _katz(D), rtol=1e-6)
    assert math.isfinite(float(got[0][0][1].sum()))
