"""GRANDAttention: the learned-affinity propagation against a dense float64 softmax
reference, its random-walk start, the graph inputs it accepts, the frozen control, argument
errors and a gradient check of the temperature."""
import math

import pytest
import torch
from torch_geometric import EdgeIndex

from affgraph.nn.models import GRAND, GRANDAttention

N, F_IN, C = 7, 5, 3


def _graph():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(N, F_IN, generator=g, dtype=torch.double) + 0.05
    # a path 0-1-2-3 and a triangle 4-5-6, undirected
    src = torch.tensor([0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6, 4])
    dst = torch.tensor([1, 0, 2, 1, 3, 2, 5, 4, 6, 5, 4, 6])
    return x, torch.stack([src, dst])


def _net(K, **kwargs):
    model = GRANDAttention(F_IN, C, 4, K, **kwargs).double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim():
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.double))
    return model


def _dense_s(model, x, ei):
    """softmax over N(i) + {i} of gamma (W_q x_i + b_q)^T (W_k x_j + b_k) / sqrt(d)."""
    q = model.lin_query(x) * model.logit_scale
    k = model.lin_key(x)
    mask = torch.eye(N, dtype=torch.bool)
    mask[ei[1], ei[0]] = True  # row i (target) attends to j (source)
    logits = (q @ k.T / math.sqrt(model.key_channels)).masked_fill(~mask, -math.inf)
    return logits.softmax(1)


def _hop_average(s, x, K):
    return sum(torch.linalg.matrix_power(s, k) @ x for k in range(K + 1)) / (K + 1)


@pytest.mark.parametrize("K", [0, 1, 3, 8])
@pytest.mark.parametrize("delta", [0.0, 0.5])
def test_eval_is_the_dense_softmax_reference(K, delta):
    x, ei = _graph()
    model = _net(K, drop_node=delta, logit_scale=1.3).eval()
    with torch.no_grad():
        expected = _hop_average(_dense_s(model, x, ei), (1.0 - delta) * x, K)
        torch.testing.assert_close(model.propagate(x, ei), expected)
        h = torch.relu(expected @ model.lin1.weight.T + model.lin1.bias)
        logits = h @ model.lin2.weight.T + model.lin2.bias
        torch.testing.assert_close(model(x, ei), logits)
        torch.testing.assert_close(model(x.to_sparse(), ei), logits)


def test_accepts_edge_index_objects_and_sparse_adjacency():
    x, ei = _graph()
    model = _net(3, logit_scale=0.7).eval()
    with torch.no_grad():
        ref = model(x, ei)
        adj_t = torch.sparse_coo_tensor(ei.flip(0), torch.ones(ei.size(1)), (N, N))
        torch.testing.assert_close(model(x, EdgeIndex(ei, sparse_size=(N, N))), ref)
        torch.testing.assert_close(model(x, adj_t), ref)
        torch.testing.assert_close(model(x, adj_t.to_sparse_csr()), ref)
        torch.testing.assert_close(model(x, ei.int()), ref)


def test_starts_at_the_random_walk_of_the_graph_with_self_loops():
    """logit_scale 0: S = (D + I)^-1 (A + I), hand-computed: node 0 (degree 1) 1/2 each,
    node 1 (degree 2) 1/3 each, a stored self-loop (node 3) not counted twice."""
    x, ei = _graph()
    ei = torch.cat([ei, torch.tensor([[3], [3]])], 1)
    model = _net(2)
    support, alpha = model.attention_weights(x, ei)
    weight = {(int(j), int(i)): float(a) for (j, i), a in zip(support.T, alpha.detach())}
    assert weight[(1, 0)] == pytest.approx(0.5) and weight[(0, 0)] == pytest.approx(0.5)
    assert weight[(0, 1)] == weight[(2, 1)] == weight[(1, 1)] == pytest.approx(1 / 3)
    assert weight[(3, 3)] == pytest.approx(0.5) and weight[(2, 3)] == pytest.approx(0.5)
    assert support.size(1) == ei.size(1) + N - 1
    a = torch.zeros(N, N, dtype=torch.double)
    a[ei[1], ei[0]] = 1.0
    a = a + torch.diag((a.diagonal() == 0).double())
    rw = a / a.sum(1, keepdim=True)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.propagate(x, ei), _hop_average(rw, 0.5 * x, 2))


def test_rows_of_s_sum_to_one_and_the_temperature_gets_a_gradient():
    x, ei = _graph()
    model = _net(4)
    support, alpha = model.attention_weights(x, ei)
    rows = torch.zeros(N, dtype=torch.double).index_add_(0, support[1], alpha.detach())
    torch.testing.assert_close(rows, torch.ones(N, dtype=torch.double))
    torch.manual_seed(0)
    model(x, ei).square().sum().backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs() > 0
    assert model.lin_query.weight.grad.abs().sum() == 0  # gamma = 0: no gradient to W_q yet


def test_frozen_affinity_is_a_buffer_and_stays_the_random_walk():
    x, ei = _graph()
    model = _net(2, learn_affinity=False)
    assert "logit_scale" in dict(model.named_buffers())
    assert "logit_scale" not in dict(model.named_parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    torch.manual_seed(0)
    model(x, ei).square().sum().backward()
    opt.step()
    assert float(model.logit_scale) == 0.0
    _, alpha = model.attention_weights(x, ei)
    assert alpha[0].item() == pytest.approx(1 / 3)  # edge 0 -> 1: node 1 has degree 2


def test_training_pass_is_the_seeded_drop_node_on_the_values_only():
    """Training: X_bar = hop average of S (from the clean X) applied to diag(m) X with the
    seeded Bernoulli mask, as GRAND.drop_nodes draws it."""
    x, ei = _graph()
    model = _net(3, logit_scale=0.9).train()
    torch.manual_seed(5)
    got = model.propagate(x, ei)
    torch.manual_seed(5)
    mx = GRAND.drop_nodes(model, x)
    with torch.no_grad():
        torch.testing.assert_close(got, _hop_average(_dense_s(model, x, ei), mx, 3))


def test_cached_support_and_reset():
    x, ei = _graph()
    model = _net(2, logit_scale=0.4, cached=True)
    model(x, ei)
    first = model._support
    model(x, ei[:, :2])  # the cached support is reused
    assert model._support is first
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    model.reset_parameters()
    assert model._support is None and float(model.logit_scale) == 0.4


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(key_channels=0), ValueError, "key_channels"),
    (dict(logit_scale=math.nan), ValueError, "logit_scale"),
    (dict(logit_scale="1"), ValueError, "logit_scale"),
    (dict(learn_affinity=1), TypeError, "learn_affinity"),
    (dict(K=-1), ValueError, "K"),
    (dict(drop_node=1.0), ValueError, "drop_node"),
])
def test_rejects_bad_arguments(kwargs, err, match):
    args = dict(in_channels=F_IN, out_channels=C, hidden_channels=4, K=2)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        GRANDAttention(**args)


def test_rejects_bad_input():
    x, ei = _graph()
    model = GRANDAttention(F_IN, C, 4, 2).double()
    with pytest.raises(ValueError, match="edge_weight must be None"):
        model(x, ei, torch.ones(ei.size(1), dtype=torch.double))
    with pytest.raises(ValueError, match="edge_index must hold node ids"):
        model(x, torch.tensor([[0, N], [1, 0]]))
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.rand(N, F_IN + 1, dtype=torch.double), ei)
    with pytest.raises(TypeError, match="edge_index"):
        model(x, [[0, 1], [1, 0]])


def test_from_settings_and_repr():
    model = GRANDAttention.from_settings("PubMed", 10, 3, key_channels=8)
    assert (model.K, model.batch_norm, model.dropout, model.key_channels) == (5, True, 0.8, 8)
    assert "key_channels=8" in repr(model) and repr(model).startswith("GRANDAttention(10, 3")
