"""Mini-batches: K-hop attention and diffusion on the K-hop neighbourhood of a batch of seed nodes
(seeds first, as ``NeighborLoader`` arranges them) give the seeds exactly their full-batch
outputs, in float64; for symmetric normalisation only with the weights normalised on the full
graph. Checked on PyG's pure-torch subgraph utilities (``k_hop_subgraph`` + ``subgraph``, no
extension needed) and on ``NeighborLoader`` with all neighbours sampled (``neighbor_sampler``
fixture: skips without pyg-lib or torch-sparse, fails with ``AFFGRAPH_REQUIRE_SAMPLER=1``)."""
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import coalesce, k_hop_subgraph, subgraph, to_undirected

from affgraph.nn import AffinityAttention, AffinityDiffusion
from affgraph.nn.models import AffinityAttentionNet, MLPDiffusion

pytestmark = pytest.mark.filterwarnings(
    "ignore:Using 'NeighborSampler' without a 'pyg-lib' installation:UserWarning")

N, F, BATCH = 240, 6, 64
ATOL = 1e-12
#: (hops, coeffs) of the attention cases: one to three plain hops and a ppr series
ATTENTION = [(1, "power"), (2, "power"), (3, "power"), (4, "ppr")]


def _graph(directed: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x [N, F] float64, edge_index)``: random edges ``j -> i`` without self-loops, mean
    in-degree about 3 (undirected: both directions of each)."""
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, N, (2, 3 * N if directed else 3 * N // 2), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    ei = coalesce(ei, num_nodes=N) if directed else to_undirected(ei, num_nodes=N)
    return torch.randn(N, F, generator=g, dtype=torch.float64), ei


def _seed_batches(seed: int = 1) -> list[torch.Tensor]:
    """Every node once, shuffled, in batches of ``BATCH`` (the last one smaller)."""
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
    return list(perm.split(BATCH))


def _khop_batches(x, edge_index, hops, edge_weight=None):
    """``(seeds, x_sub, edge_index_sub, edge_weight_sub)`` per batch from PyG's pure-torch
    utilities: the seeds' ``hops``-hop in-neighbourhood, seeds first, induced edges."""
    for seeds in _seed_batches():
        subset = k_hop_subgraph(seeds, hops, edge_index, num_nodes=N,
                                flow="source_to_target")[0]
        n_id = torch.cat([seeds, subset[~torch.isin(subset, seeds)]])
        sub_ei, sub_w = subgraph(n_id, edge_index, edge_weight, relabel_nodes=True,
                                 num_nodes=N)
        yield seeds, x[n_id], sub_ei, sub_w


def _loader_batches(x, edge_index, hops, edge_weight=None, num_neighbors=None):
    """The same from ``NeighborLoader`` with all neighbours sampled (``-1`` per hop)."""
    from torch_geometric.loader import NeighborLoader

    data = Data(x=x, edge_index=edge_index, num_nodes=N)
    if edge_weight is not None:
        data.edge_weight = edge_weight
    loader = NeighborLoader(data, num_neighbors=num_neighbors or [-1] * hops,
                            batch_size=BATCH, input_nodes=torch.cat(_seed_batches()))
    for batch in loader:
        seeds = batch.n_id[:batch.batch_size]
        yield seeds, batch.x, batch.edge_index, getattr(batch, "edge_weight", None)


def _max_seed_error(full, batches, fn):
    """Max |fn(batch)[:seeds] - full[seeds]| over the batches; checks every node was a seed."""
    seen, err = torch.zeros(N, dtype=torch.bool), 0.0
    for seeds, xb, eib, wb in batches:
        out = fn(xb, eib, wb)[:seeds.numel()]
        err = max(err, (out - full[seeds]).abs().max().item())
        seen[seeds] = True
    assert seen.all()
    return err


def _attention(hops, coeffs):
    return AffinityAttention(F, 4, heads=2, hops=hops, coeffs=coeffs).double().eval()


@pytest.fixture(params=["subgraph", "loader"])
def batches(request):
    """The batch source: PyG's pure-torch utilities, or NeighborLoader (needs the sampler)."""
    if request.param == "loader":
        request.getfixturevalue("neighbor_sampler")
        return _loader_batches
    return _khop_batches


@pytest.mark.parametrize("directed", [True, False], ids=["directed", "undirected"])
@pytest.mark.parametrize("hops,coeffs", ATTENTION)
def test_attention_seed_outputs_equal_full_batch(batches, directed, hops, coeffs):
    x, ei = _graph(directed)
    layer = _attention(hops, coeffs)
    full = layer(x, ei)
    err = _max_seed_error(full, batches(x, ei, hops), lambda xb, eib, _: layer(xb, eib))
    assert err <= ATOL


@pytest.mark.parametrize("hops,coeffs", [ATTENTION[1], ATTENTION[3]])
def test_attention_needs_all_k_hops(batches, hops, coeffs):
    """One hop fewer than the layer's leaves some seeds' outputs wrong (the equality above is
    not automatic)."""
    x, ei = _graph(True)
    layer = _attention(hops, coeffs)
    full = layer(x, ei)
    err = _max_seed_error(full, batches(x, ei, hops - 1), lambda xb, eib, _: layer(xb, eib))
    assert err > 1e-3


def _full_graph_weights(edge_index):
    """``gcn_norm`` with self-loops on the full graph: the edges and weights to sample from."""
    return gcn_norm(edge_index, None, N, add_self_loops=True, dtype=torch.float64)


@pytest.mark.parametrize("directed", [True, False], ids=["directed", "undirected"])
@pytest.mark.parametrize("K", [3])
def test_diffusion_with_full_graph_weights_equals_full_batch(batches, directed, K):
    x, ei = _graph(directed)
    full = AffinityDiffusion(K)(x, ei)            # normalises with self-loops on the full graph
    norm_ei, norm_w = _full_graph_weights(ei)
    prop = AffinityDiffusion(K, normalize=False, add_self_loops=False)
    err = _max_seed_error(full, batches(x, norm_ei, K, norm_w), prop)
    assert err <= ATOL


@pytest.mark.parametrize("directed", [True, False], ids=["directed", "undirected"])
def test_diffusion_normalised_on_the_subgraph_differs(batches, directed):
    """Normalising on the sampled subgraph gives the outermost nodes too small a degree, so the
    seeds' outputs are wrong: the weights must be normalised on the full graph."""
    x, ei = _graph(directed)
    K = 2
    prop = AffinityDiffusion(K)                   # gcn_norm on whatever graph it is given
    full = prop(x, ei)
    err = _max_seed_error(full, batches(x, ei, K), lambda xb, eib, _: prop(xb, eib))
    assert err > 1e-2


def test_models_on_batches_equal_full_batch(batches):
    """The networks of ``scripts/train_minibatch.py`` in evaluation mode: the attention network
    (self-loops added on each subgraph, which is exact) and APPNP's network over full-graph
    weights."""
    x, ei = _graph(False)
    net = AffinityAttentionNet(F, 3, K=2, hidden_channels=8, heads=2).double().eval()
    full = net(x, ei)
    err = _max_seed_error(full, batches(x, ei, 2), lambda xb, eib, _: net(xb, eib))
    assert err <= ATOL
    mlp = MLPDiffusion(F, 3, AffinityDiffusion(3, normalize=False, add_self_loops=False),
                       hidden_channels=8).double().eval()
    norm_ei, norm_w = _full_graph_weights(ei)
    full = mlp(x, norm_ei, norm_w)
    ref = MLPDiffusion(F, 3, AffinityDiffusion(3), hidden_channels=8).double().eval()
    ref.load_state_dict(mlp.state_dict())
    assert torch.allclose(full, ref(x, ei), atol=ATOL, rtol=0)
    err = _max_seed_error(full, batches(x, norm_ei, 3, norm_w), mlp)
    assert err <= ATOL


def test_neighbor_loader_samples_at_most_the_fanout(neighbor_sampler):
    """With a fan-out of 2 per hop, each node at depth < K keeps at most 2 in-edges in its
    batch (the loader really samples; the equality tests use -1, all of them)."""
    x, ei = _graph(False)
    for seeds, xb, eib, _ in _loader_batches(x, ei, 2, num_neighbors=[2, 2]):
        indeg = torch.bincount(eib[1], minlength=xb.size(0))
        assert indeg[:seeds.numel()].max() <= 2 and indeg.max() <= 2


# --- the neighbor_sampler fixture of tests/conftest.py -------------------------------------
CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture
def suite(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_needs_sampler="def test_it(neighbor_sampler):\n"
                                           "    assert neighbor_sampler in ('pyg_lib', "
                                           "'torch_sparse')\n")
    monkeypatch.delenv("AFFGRAPH_REQUIRE_SAMPLER", raising=False)
    return pytester


def test_sampler_fixture_skips_without_an_extension_and_fails_when_required(suite,
                                                                           monkeypatch):
    import torch_geometric.typing as pyg_typing

    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(pyg_typing, "WITH_TORCH_SPARSE", False)
    run = suite.runpytest("-rs", "-p", "no:cacheprovider")
    run.assert_outcomes(skipped=1)
    run.stdout.fnmatch_lines(["*NeighborLoader needs pyg-lib or torch-sparse*"])
    monkeypatch.setenv("AFFGRAPH_REQUIRE_SAMPLER", "1")
    run = suite.runpytest("-p", "no:cacheprovider")
    run.assert_outcomes(errors=1)
    run.stdout.fnmatch_lines(["*AFFGRAPH_REQUIRE_SAMPLER is set, so this is an error, not a "
                              "skip*"])
