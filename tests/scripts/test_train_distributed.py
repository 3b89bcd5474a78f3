"""Data parallelism of scripts/train_distributed.py: two gloo processes on this machine, each
with half of every batch, reach the parameters of one process with the whole batches (float64,
plain SGD, whose step is proportional to the gradient, so a wrongly scaled loss or an overlap of
the shares would show; Adam's first step is nearly the sign of the gradient and would not)."""
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train_distributed as td  # noqa: E402

# every neighbour (exact K-hop outputs), no dropout, two SGD steps on the first 2 x 64 seeds
EXACT = ["--quick", "--no-progress", "--dataset", "csbm-0.7", "--csbm-nodes", "300",
         "--num-neighbors", "-1", "-1", "--dropout", "0", "--dtype", "float64",
         "--optimizer", "sgd", "--lr", "0.5", "--epochs", "1", "--steps", "2"]


@pytest.fixture(autouse=True)
def _keep_threads():
    """The script sets torch's thread count; give the test session its own back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _params(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


@pytest.mark.usefixtures("neighbor_sampler")
def test_two_ranks_with_half_batches_step_like_one_process_with_whole_batches(tmp_path):
    td.spawn(2, EXACT + ["--batch-size", "32", "--save-params", str(tmp_path / "r{rank}.pt"),
                         "--json", str(tmp_path / "run.json")])
    ranks = [torch.load(tmp_path / f"r{r}.pt") for r in (0, 1)]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 2 and run["steps"] == 2
    whole = _params(td.train(td.parse_args(EXACT + ["--batch-size", "64"]))[1])
    init = _params(td.train(td.parse_args(EXACT + ["--batch-size", "64", "--lr", "0"]))[1])
    half = _params(td.train(td.parse_args(EXACT + ["--batch-size", "32"]))[1])
    assert _max_diff(ranks[0], ranks[1]) == 0.0      # DDP keeps the replicas identical
    assert _max_diff(ranks[0], whole) <= 1e-6
    assert _max_diff(whole, init) > 1e-3             # the steps moved the parameters
    assert _max_diff(half, whole) > 1e-6             # one process on half batches does not


def test_epoch_order_is_a_seeded_cut_permutation_and_one_process_takes_all():
    nodes = torch.arange(100, 110)
    order = td.epoch_order(nodes, 1, 0, 3)
    assert order.numel() == 9 and len(set(order.tolist())) == 9
    assert set(order.tolist()) <= set(nodes.tolist())
    assert torch.equal(order, td.epoch_order(nodes, 1, 0, 3))       # the same on every rank
    assert not torch.equal(order, td.epoch_order(nodes, 2, 0, 3))   # reshuffled per epoch
    assert torch.equal(td.rank_share(order), order)                 # no process group: all


def test_bad_arguments_name_the_option():
    with pytest.raises(ValueError, match="steps must be a non-negative int"):
        td.train(td.parse_args(["--quick", "--steps", "-1"]))
    with pytest.raises(ValueError, match="spawn must be a positive int"):
        td.spawn(0, [])
