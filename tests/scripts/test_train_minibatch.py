import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train_minibatch as tm  # noqa: E402
from node_classification import load_graph  # noqa: E402

from affgraph.nn import AffinityDiffusion  # noqa: E402
from affgraph.nn.models import MLPDiffusion  # noqa: E402

QUICK = ["--quick", "--no-progress", "--dataset", "csbm-0.9", "--epochs", "3"]


@pytest.fixture(autouse=True)
def _keep_threads():
    """The script sets torch's thread count; give the test session its own back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.usefixtures("neighbor_sampler")
@pytest.mark.parametrize("model", tm.MODELS)
def test_quick_run_learns_and_is_deterministic(model, tmp_path):
    out = tmp_path / "run.json"
    a = tm.main(QUICK + ["--model", model, "--json", str(out)])
    b = tm.main(QUICK + ["--model", model])
    # a homophilous 2-class graph: well above the 50% of chance after 3 short epochs
    assert a["test_acc"] >= 0.75 and a["val_acc"] >= 0.75
    assert a["nodes"] == 1000 and a["batch_size"] == 128 and a["epochs"] == 3
    assert len(a["epoch_rows"]) == 3 and a["num_neighbors"] == [10, 10]
    for ra, rb in zip(a["epoch_rows"], b["epoch_rows"]):          # the same seed, the same run
        for key in ("loss", "train_acc", "val_acc", "test_acc"):
            assert ra[key] == rb[key]
    assert a["epoch_rows"][-1]["loss"] < a["epoch_rows"][0]["loss"]
    assert json.loads(out.read_text())["test_acc"] == a["test_acc"]
    c = tm.main(QUICK + ["--model", model, "--seed", "1"])        # another seed, another run
    assert [r["loss"] for r in c["epoch_rows"]] != [r["loss"] for r in a["epoch_rows"]]


@pytest.mark.usefixtures("neighbor_sampler")
@pytest.mark.parametrize("model", tm.MODELS)
def test_evaluation_with_all_neighbours_is_the_full_graph_accuracy(model):
    """The script's evaluation batches (``--eval-neighbors -1``) give every node its
    full-batch logits, so the accuracy is the full-graph one; for ``diffusion`` the full graph
    is APPNP's network over ``AffinityDiffusion``'s own normalisation."""
    raw = load_graph("csbm-0.5", None, csbm_nodes=300, seed=0)
    data = tm.prepare_graph(raw, model, torch.float64)
    net = tm.build_model(model, data.num_features, 2, hops=2, hidden=8, heads=2).double().eval()
    if model == "diffusion":
        ref = MLPDiffusion(data.num_features, 2, AffinityDiffusion(2), hidden_channels=8)
        ref.load_state_dict(net.state_dict())
        full = ref.double().eval()(data.x, raw.edge_index)
    else:
        full = net(data.x, raw.edge_index)
    nodes = torch.arange(300)
    loader = tm.make_loader(data, nodes, [-1, -1], 64)
    err = max((tm.seed_logits(net, b, torch.device("cpu")) - full[b.n_id[:b.batch_size]])
              .abs().max().item() for b in loader)
    assert err < 1e-12
    correct, total = tm.evaluate(net, loader, torch.device("cpu"))
    assert total == 300 and correct == int((full.argmax(-1) == data.y).sum())


def test_bad_arguments_name_the_option():
    with pytest.raises(ValueError, match="num_neighbors needs one fan-out per hop"):
        tm.check_fanouts([10], 2)
    with pytest.raises(ValueError, match="num_neighbors must be -1"):
        tm.check_fanouts([10, 0], 2)
    with pytest.raises(ValueError, match="model: unknown"):
        tm.build_model("gcn", 4, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        tm.main(QUICK + ["--batch-size", "0"])
    with pytest.raises(ValueError, match="threads must be a positive int"):
        tm.main(QUICK + ["--threads", "-2"])


def test_quick_keeps_explicit_flags():
    args = tm.parse_args(["--quick", "--epochs", "7"])
    assert args.epochs == 7 and args.csbm_nodes == tm.QUICK["csbm_nodes"]
    assert tm.parse_args([]).csbm_nodes == 20000
