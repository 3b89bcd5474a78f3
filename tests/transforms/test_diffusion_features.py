"""DiffusionFeatures against diffuse per hop (float64), PyG's SIGN, block sizes, bad arguments
and two gloo processes."""
import math
import socket

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.transforms import SIGN

from affgraph.diffusion import DiffusionGraph, diffuse
from affgraph.transforms import DiffusionFeatures


def _graph(n=40, m=160, seed=0, symmetric=True):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    if symmetric:
        ei = torch.cat([ei, ei.flip(0)], 1)
    w = torch.rand(ei.size(1), generator=g, dtype=torch.float64) + 0.5
    x = torch.randn(n, 11, generator=g, dtype=torch.float64)
    return x, ei, w


FAMILIES = [("ppr", dict(alpha=0.15)), ("katz", dict(r=0.4)), ("heat", dict(t=2.0)),
            ("uniform", {}), ("power", {})]


@pytest.mark.parametrize("coeffs,params", FAMILIES)
@pytest.mark.parametrize("normalize", ["sym", "row"])
def test_each_hop_equals_diffuse(coeffs, params, normalize):
    x, ei, w = _graph(symmetric=normalize == "sym")
    hops = (0, 1, 2, 5) + ((math.inf,) if coeffs in ("ppr", "katz", "heat") else ())
    tf = DiffusionFeatures(hops, coeffs, normalize=normalize, tol=1e-12, block_size=4,
                           **params)
    data = tf(Data(x=x, edge_index=ei, edge_weight=w))
    for h, name in zip(hops, tf.names()):
        ref = diffuse(x, ei, w, hops=h, coeffs=coeffs, normalize=normalize,
                      add_self_loops=True, tol=1e-12, **params)
        assert data[name].dtype == torch.float64
        torch.testing.assert_close(data[name], ref, rtol=1e-9, atol=1e-11)
    assert torch.equal(data.x, x)
    assert tf.names()[:2] == ["x0", "x1"] and (len(hops) == 4 or tf.names()[-1] == "x_inf")


def test_ppr_closed_form_is_the_dense_inverse():
    x, ei, w = _graph()
    data = DiffusionFeatures((math.inf,), alpha=0.2, tol=1e-12)(
        Data(x=x, edge_index=ei, edge_weight=w))
    g = DiffusionGraph.from_graph(ei, w, x.size(0), dtype=torch.float64, normalize="sym",
                                  add_self_loops=True)
    A = torch.zeros(x.size(0), x.size(0), dtype=torch.float64)
    A.index_put_((g.edge_index[1], g.edge_index[0]), g.edge_weight, accumulate=True)
    ref = 0.2 * torch.linalg.solve(torch.eye(x.size(0), dtype=torch.float64) - 0.8 * A, x)
    torch.testing.assert_close(data.x_inf, ref, rtol=1e-9, atol=1e-10)


def test_power_equals_pyg_sign():
    x, ei, w = _graph(n=60, m=300, seed=3)
    x = x.float()
    ref = SIGN(3)(Data(x=x, edge_index=ei))
    ours = DiffusionFeatures(3, coeffs="power", normalize="sym", add_self_loops=False)(
        Data(x=x, edge_index=ei))
    for k in (1, 2, 3):
        torch.testing.assert_close(ours[f"x{k}"], ref[f"x{k}"], rtol=1e-5, atol=1e-6)
    assert "x4" not in ours and "x0" not in ours


def test_block_sizes_agree_and_directed_graph():
    x, ei, w = _graph(symmetric=False)
    outs = []
    for bs in (1, 3, 11, 64):
        tf = DiffusionFeatures((1, 3, math.inf), normalize="row", tol=1e-12, block_size=bs)
        outs.append(tf(Data(x=x, edge_index=ei, edge_weight=w)))
    for d in outs[1:]:
        for name in ("x1", "x3", "x_inf"):
            torch.testing.assert_close(d[name], outs[0][name], rtol=1e-10, atol=1e-12)


def test_adj_t_and_key():
    from torch_geometric.utils import to_torch_coo_tensor

    x, ei, w = _graph()
    adj_t = to_torch_coo_tensor(ei.flip(0), w, size=x.size(0))  # row = target
    a = DiffusionFeatures((2,), key="h")(Data(h=x, adj_t=adj_t))
    b = DiffusionFeatures((2,))(Data(x=x, edge_index=ei, edge_weight=w))
    torch.testing.assert_close(a.h2, b.x2)


@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(hops=()), ValueError, "hops"),
    (dict(hops=(1, 1)), ValueError, "hops"),
    (dict(hops=(-1,)), ValueError, "hops"),
    (dict(hops=(1.5,)), TypeError, "hops"),
    (dict(hops="12"), TypeError, "hops"),
    (dict(hops=0), ValueError, "hops"),
    (dict(coeffs="power"), ValueError, "hops"),  # math.inf in the default hops
    (dict(coeffs="bogus"), ValueError, "coeffs"),
    (dict(coeffs=torch.ones(3)), TypeError, "coeffs"),
    (dict(alpha=1.5), ValueError, "alpha"),
    (dict(t=1.0), ValueError, "t"),
    (dict(normalize="l2"), ValueError, "normalize"),
    (dict(add_self_loops=1), TypeError, "add_self_loops"),
    (dict(tol=0.0), ValueError, "tol"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(block_size=0), ValueError, "block_size"),
    (dict(block_size=2.0), ValueError, "block_size"),
    (dict(key=""), TypeError, "key"),
])
def test_bad_arguments_named(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        DiffusionFeatures(**kwargs)


def test_bad_data_named():
    x, ei, _ = _graph()
    tf = DiffusionFeatures((1,))
    with pytest.raises(ValueError, match="data.x"):
        tf(Data(x=x[:, 0], edge_index=ei))
    with pytest.raises(ValueError, match="data.x"):
        tf(Data(x=torch.ones(x.size(0), 2, dtype=torch.long), edge_index=ei))
    with pytest.raises(TypeError, match="data.x"):
        tf(Data(edge_index=ei, num_nodes=x.size(0)))
    with pytest.raises(ValueError, match="edge_index"):
        tf(Data(x=x))
    bad = x.clone()
    bad[3, 2] = math.nan
    with pytest.raises(ValueError, match="x"):
        tf(Data(x=bad, edge_index=ei))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank, world, port, x, ei, w, folder):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        tf = DiffusionFeatures((1, 3, math.inf), tol=1e-12, block_size=2)
        data = tf(Data(x=x, edge_index=ei, edge_weight=w))
        torch.save({k: data[k] for k in tf.names()}, f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one(tmp_path):
    import torch.multiprocessing as mp

    x, ei, w = _graph()
    tf = DiffusionFeatures((1, 3, math.inf), tol=1e-12, block_size=2)
    ref = tf(Data(x=x, edge_index=ei, edge_weight=w))
    mp.spawn(_rank_worker, args=(2, _free_port(), x, ei, w, str(tmp_path)), nprocs=2,
             join=True)
    got = {rank: torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)}
    for rank in (0, 1):  # 6 blocks (five of 2, one of 1), 3 per rank: both end with all
        for k in tf.names():
            torch.testing.assert_close(got[rank][k], ref[k], rtol=1e-12, atol=1e-14)
