"""Smoke test of an installed affgraph (a built wheel in a fresh virtual environment).

Run from a folder outside the checkout, with the environment's python:

    AFFGRAPH_DATA=ROOT AFFGRAPH_CACHE=EMPTY_DIR python wheel_smoke.py CHECKOUT

It checks that affgraph is imported from the environment (not the checkout), that the
manifest is found (package data), that an embedded and a real set load, that processed files
go to ``$AFFGRAPH_CACHE`` (and, without it, to the user's cache folder), and that an
``AffinityAttention`` and an ``AffinityDiffusion`` forward equal PyG's ``TransformerConv``
(copied weights) and ``APPNP`` on Cora, and that the library's GRAND-style model
(``affgraph.nn.models.DropNodeDiffusion`` with ``GRANDLoss``) trains on Cora.
"""
import os
import sys
from pathlib import Path

import torch


def main(checkout: Path) -> None:
    import affgraph
    from affgraph.datasets import list_datasets, load_embedded, load_planetoid
    from affgraph.datasets._root import cache_dir, user_cache_dir
    from affgraph.nn import AffinityAttention, AffinityDiffusion
    from torch_geometric.nn import APPNP, TransformerConv

    here = Path(affgraph.__file__).resolve()
    assert Path(sys.prefix).resolve() in here.parents, f"affgraph from {here}, not {sys.prefix}"
    assert checkout not in here.parents and checkout not in Path.cwd().resolve().parents
    names = list_datasets()
    for name in ("Cora", "Texas", "colon", "wine", "Minesweeper", "cSBM"):
        assert name in names, f"{name} missing from the installed manifest"
    X, y = load_embedded("wine")
    assert X.shape == (178, 13) and int(y.max()) == 2

    cache = Path(os.environ["AFFGRAPH_CACHE"]).resolve()
    assert cache_dir().resolve() == cache and not any(cache.rglob("*"))
    data = load_planetoid("Cora")
    assert (data.num_nodes, data.num_edges, data.num_features) == (2708, 10556, 1433)
    written = [p for p in cache.rglob("data.pt")]
    assert written and all("planetoid" in p.parts for p in written), written
    os.environ.pop("AFFGRAPH_CACHE")
    os.environ["XDG_CACHE_HOME"] = str(cache.parent / "xdg-cache")
    if sys.platform.startswith("linux"):
        assert cache_dir() == user_cache_dir() == cache.parent / "xdg-cache" / "affgraph"

    torch.manual_seed(0)
    x, edge_index = data.x, data.edge_index
    tc = TransformerConv(1433, 8, heads=2).eval()
    aa = AffinityAttention(1433, 8, heads=2).eval()
    missing, _ = aa.load_state_dict(tc.state_dict(), strict=False)
    assert not missing, missing
    with torch.no_grad():
        out, ref = aa(x, edge_index), tc(x, edge_index)
    assert out.shape == (2708, 16)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        out, ref = AffinityDiffusion(10, 0.1)(x, edge_index), APPNP(10, 0.1)(x, edge_index)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    acc = train_grand(data)
    assert acc >= 0.7, f"DropNodeDiffusion reached {acc:.3f} validation accuracy on Cora"
    print(f"wheel smoke OK: affgraph {affgraph.__version__} from {here.parent}, "
          f"{len(names)} datasets, Cora processed into {written[0].parent}, "
          f"DropNodeDiffusion trained to {100 * acc:.1f}% validation accuracy")


def train_grand(data, epochs: int = 60) -> float:
    """Train the library's GRAND-style model on Cora (public split) with its objective; return
    the best validation accuracy."""
    from affgraph.nn.models import DropNodeDiffusion, GRANDLoss

    torch.manual_seed(0)
    model = DropNodeDiffusion(data.num_features, int(data.y.max()) + 1, K=4)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    loss_fn, best = GRANDLoss(), 0.0
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        loss_fn(model, data.x, data.edge_index, data.y, data.train_mask).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        best = max(best, float((pred[data.val_mask] == data.y[data.val_mask]).float().mean()))
    return best


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
