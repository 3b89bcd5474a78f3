import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from affgraph import supports as S

BATCH = torch.tensor([0] * 4 + [1] * 1 + [2] * 6)


def loop_mask(n, batch, rule):
    """Oracle: mask[i, j] from an explicit double loop over the pairs."""
    b = [0] * n if batch is None else batch.tolist()
    pos = {}
    local = []
    for g in b:
        local.append(pos.get(g, 0))
        pos[g] = pos.get(g, 0) + 1
    m = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(n):
            m[i, j] = b[i] == b[j] and rule(local[i], local[j])
    return m


RULES = [
    (S.complete(), lambda i, j: True),
    (S.causal(), lambda i, j: j <= i),
    (S.window(2), lambda i, j: abs(i - j) <= 2),
    (S.window(2, causal=True), lambda i, j: 0 <= i - j <= 2),
    (S.window(0), lambda i, j: i == j),
]


@pytest.mark.parametrize("support,rule", RULES)
@pytest.mark.parametrize("batch", [None, BATCH])
def test_implicit_supports_match_loops(support, rule, batch):
    n = 11
    ref = loop_mask(n, batch, rule)
    assert torch.equal(support.dense_mask(n, batch), ref)
    ei = support.to_edge_index(n, batch)
    assert ei.size(1) == int(ref.sum())
    m = torch.zeros(n, n, dtype=torch.bool)
    m[ei[1], ei[0]] = True
    assert torch.equal(m, ref)
    assert bool((ei[1][1:] >= ei[1][:-1]).all())  # sorted by target


def test_window_edges_are_linear_in_n():
    ei = S.window(3).to_edge_index(1000)
    assert ei.size(1) == 1000 * 7 - 2 * (3 + 2 + 1)


def test_resolve_and_properties():
    assert S.resolve().kind == "complete"
    assert S.resolve(causal=True).is_causal
    w = S.resolve(window=4, causal=True)
    assert (w.kind, w.window, w.is_causal, w.implicit) == ("window", 4, True, True)
    e = S.resolve(torch.tensor([[0], [1]]))
    assert not e.implicit and torch.equal(e.to_edge_index(2), torch.tensor([[0], [1]]))
    assert torch.equal(e.dense_mask(2), torch.tensor([[False, False], [True, False]]))


@pytest.mark.parametrize("kwargs", [dict(), dict(loop=True), dict(cosine=True)])
def test_knn_matches_sklearn(kwargs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    k = 4
    sup = S.knn(x, k, block_size=7, **kwargs)
    ei = sup.edge_index
    assert ei.size(1) == 40 * k
    metric = "cosine" if kwargs.get("cosine") else "euclidean"
    extra = 0 if kwargs.get("loop") else 1
    nn = NearestNeighbors(n_neighbors=k + extra, metric=metric).fit(x.numpy())
    _, idx = nn.kneighbors(x.numpy())
    for i in range(40):
        ref = set(idx[i].tolist())
        if not kwargs.get("loop"):
            ref.discard(i)
            if len(ref) > k:
                ref = set(sorted(ref, key=lambda j: np.linalg.norm(x[i] - x[j]))[:k])
        got = set(ei[0][ei[1] == i].tolist())
        assert got == ref


def test_knn_respects_batch_and_small_graphs():
    x = torch.randn(7, 3)
    batch = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    ei = S.knn(x, 3, batch).edge_index
    assert bool((batch[ei[0]] == batch[ei[1]]).all())
    deg = torch.bincount(ei[1], minlength=7)
    assert deg.tolist() == [3, 3, 3, 3, 3, 1, 1]  # the 2-node graph has 1 candidate each
    assert bool((ei[0] != ei[1]).all())


@pytest.mark.parametrize("make", [
    lambda: S.window(-1),
    lambda: S.window(1.5),
    lambda: S.Support("ring"),
    lambda: S.Support("edges"),
    lambda: S.resolve(torch.tensor([[0], [1]]), causal=True),
    lambda: S.knn(torch.randn(5, 2), 0),
    lambda: S.knn(torch.tensor([[float("nan"), 0.0]]), 1),
    lambda: S.complete().to_edge_index(3, torch.tensor([1, 0, 0])),
    lambda: S.edges(torch.tensor([[0], [5]])).to_edge_index(3),
])
def test_bad_input(make):
    with pytest.raises(ValueError):
        make()


def test_empty():
    assert S.complete().to_edge_index(0).shape == (2, 0)
    assert S.knn(torch.empty(0, 3), 2).edge_index.shape == (2, 0)


def test_clamp_turns_a_window_as_wide_as_the_graph_into_the_whole_graph():
    assert S.window(7).clamp(8) == S.complete()
    assert S.window(10 ** 6, causal=True).clamp(8) == S.causal()
    assert S.window(6).clamp(8) == S.window(6)
    assert S.complete().clamp(3) == S.complete()
    for w in (3, 10 ** 6):  # the rule |i - j| <= w, clamped or not
        i = torch.arange(8)
        ref = (i[:, None] - i[None, :]).abs() <= w
        assert torch.equal(S.window(w).clamp(8).dense_mask(8), ref)
        assert torch.equal(S.window(w).dense_mask(8), ref)
