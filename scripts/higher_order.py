"""Match3: one layer of 2-simplicial attention against one layer of standard attention.

Match3 (Sanford et al. 2023; :func:`affgraph.datasets.make_match3`): position ``i`` is positive
iff ``x_i + x_j + x_l = 0 (mod M)`` for some positions ``j, l``. Every model is an embedding of
width ``w``, ONE attention layer over all positions of its sequence (with the skip term), and a
per-position MLP readout:

- ``attention``: :class:`affgraph.nn.AffinityAttention`, one hop (standard softmax attention,
  ``S V``);
- ``attention-K``: the same layer diffused over ``K`` hops (``--hops``), MAGNA's PPR series
  ``sum_k theta_k S^k V`` (``coeffs="ppr"``, alpha 0.1; ``K = 1`` is the one hop ``S V``);
- ``simplicial``: :class:`affgraph.nn.SimplicialAttention` (trilinear logits over pairs).

The widths are equal; the simplicial layer has two more projections, so the standard models get
a wider readout to the same parameter budget (the table prints the counts). Adam with a
one-cycle schedule on fresh balanced training sequences, test accuracy over all positions of
held-out sequences; mean ± std over seeds. Prints a Markdown table, writes a plot (``--plot``)
and CSV/JSON rows (one per run).

By default the sequences are *pairwise-free* (``make_match3(..., pairwise_free=True)``; turn it
off with ``--no-pairwise-free``): no position is positive through a degenerate triple with two
equal positions (``3 x_i = 0``, ``2 x_i + x_l = 0``, ``x_i + 2 x_j = 0``). Those are pair
relations that one standard attention layer can detect; on the unfiltered distribution at
``M = 16`` they alone decide about 90% of the positions, which is where one-layer standard
attention ends up (about 90%), so that setting cannot separate the two mechanisms.

    # M = 32, N = 6 7 8 10, 5 seeds (about 75 min on one core)
    python scripts/higher_order.py --plot match3.png
    python scripts/higher_order.py --quick
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    load_rows, markdown_table, mean_std, resolve_device, resume_rows, set_seed, write_rows,
)

from affgraph.datasets import make_match3  # noqa: E402
from affgraph.nn import AffinityAttention, SimplicialAttention  # noqa: E402

MODELS = ("attention", "attention-K", "simplicial")

match3_data = functools.lru_cache(maxsize=16)(make_match3)  # shared by the models of a seed


class Match3Net(nn.Module):
    """Embedding -> one attention layer (+ skip) -> per-position MLP readout -> logit."""

    def __init__(self, kind: str, modulus: int, width: int, hidden: int, hops: int = 1) -> None:
        super().__init__()
        self.kind = kind
        self.embed = nn.Embedding(modulus, width)
        if kind == "simplicial":
            self.layer = SimplicialAttention(width, width)
        elif kind in ("attention", "attention-K"):
            k = 1 if kind == "attention" else hops
            self.layer = AffinityAttention(width, width, hops=k,
                                           coeffs="ppr" if k > 1 else "power")
        else:
            raise ValueError(f"unknown model {kind!r}; choose from {MODELS}")
        self.readout = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, tokens: Tensor) -> Tensor:
        b, n = tokens.shape
        x = self.embed(tokens.reshape(-1))  # (B * N, w)
        batch = torch.arange(b, device=tokens.device).repeat_interleave(n)
        return self.readout(self.layer(x, batch=batch)).view(b, n)


def readout_hidden(kind: str, width: int, hidden: int) -> int:
    """Readout width giving every model the parameter count of the simplicial one: the
    standard layer lacks two ``w x w`` projections (with biases), the readout has
    ``h (w + 2) + 1`` parameters."""
    if kind == "simplicial":
        return hidden
    return hidden + round(2 * width * (width + 1) / (width + 2))


def train_one(kind: str, seq_len: int, modulus: int, seed: int, *, width: int, hidden: int,
              hops: int, steps: int, batch_size: int, lr: float, n_train: int,
              n_test: int, pairwise_free: bool = False,
              device: torch.device | str = "cpu") -> dict:
    """Train one model on one seed on ``device``; return its row.

    The data, the initial weights and the order of the minibatches depend on ``seed`` only
    (the data are drawn and the weights initialised on the CPU), so the runs of one seed on
    two devices differ only by floating-point rounding."""
    device = torch.device(device)
    x_tr, y_tr = match3_data(n_train, seq_len, modulus, seed=10_000 + seed,
                             pairwise_free=pairwise_free)
    x_te, y_te = match3_data(n_test, seq_len, modulus, seed=20_000 + seed,
                             pairwise_free=pairwise_free)
    x_tr, y_tr, x_te, y_te = (t.to(device) for t in (x_tr, y_tr, x_te, y_te))
    set_seed(seed)
    model = Match3Net(kind, modulus, width, readout_hidden(kind, width, hidden), hops).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n_train, (batch_size,), generator=gen).to(device)
        loss = F.binary_cross_entropy_with_logits(model(x_tr[idx]), y_tr[idx].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = sum(int(((model(x) > 0).long() == y).sum())
                      for x, y in zip(x_te.split(500), y_te.split(500)))
    return {"model": kind if kind != "attention-K" else f"attention-{hops}", "seq_len": seq_len,
            "modulus": modulus, "pairwise_free": pairwise_free, "width": width,
            "params": sum(p.numel() for p in model.parameters()), "seed": seed,
            "steps": steps, "batch_size": batch_size, "lr": lr,
            "test_acc": correct / y_te.numel(), "final_loss": loss.item(), "train_s": train_s,
            "device": device.type}


def summarize(rows: list[dict]) -> str:
    models = list(dict.fromkeys(r["model"] for r in rows))
    lengths = sorted({r["seq_len"] for r in rows})
    table = []
    for m in models:
        mine = [r for r in rows if r["model"] == m]
        cells = [mine[0]["params"]]
        for n in lengths:
            accs = [r["test_acc"] for r in mine if r["seq_len"] == n]
            cells.append(mean_std(accs, scale=100) if accs else "-")
        table.append([m, *cells])
    return markdown_table(["model", "params", *[f"N={n}" for n in lengths]], table)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for m in dict.fromkeys(r["model"] for r in rows):
        lengths = sorted({r["seq_len"] for r in rows if r["model"] == m})
        accs = [[100 * r["test_acc"] for r in rows if r["model"] == m and r["seq_len"] == n]
                for n in lengths]
        ax.errorbar(lengths, [statistics.fmean(a) for a in accs],
                    yerr=[statistics.stdev(a) if len(a) > 1 else 0.0 for a in accs],
                    marker="o", capsize=3, label=m)
    ax.axhline(95, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("Match3 test accuracy (%)")
    free = ", pairwise-free" if rows[0].get("pairwise_free") else ""
    ax.set_title(f"one layer, width {rows[0]['width']}, M = {rows[0]['modulus']}{free}")
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--lengths", type=int, nargs="+", default=[6, 7, 8, 10])
    parser.add_argument("--modulus", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64,
                        help="readout width of the simplicial model")
    parser.add_argument("--hops", type=int, default=4, help="K of the attention-K model")
    parser.add_argument("--pairwise-free", action=argparse.BooleanOptionalAction, default=True,
                        help="keep only sequences without degenerate (pairwise) solutions "
                             "(default: on)")
    parser.add_argument("--steps", type=int, nargs="+", default=[12_000, 12_000, 12_000, 24_000],
                        help="training steps: one number, or one per length (default: 12000 "
                             "at N = 6, 7, 8 and 24000 at N = 10)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--from-json", nargs="+", metavar="FILE",
                        help="no training: summarise (and plot) the rows of earlier --json runs")
    parser.add_argument("--plot", help="write the accuracy-vs-length plot here")
    parser.add_argument("--json", help="write the rows as JSON (rewritten after every run)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in the --json file; "
                             "train only the missing runs")
    parser.add_argument("--csv", help="write the rows as CSV")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.modulus, args.width, args.hidden = [6, 8], 16, 4, 8
        args.steps, args.n_train, args.n_test, args.seeds = [5], 64, 32, [0, 1]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if len(args.steps) not in (1, len(args.lengths)):
        raise SystemExit(f"error: give one --steps value or one per length ({len(args.lengths)}), "
                         f"got {len(args.steps)}")
    if min(args.steps) < 1:
        raise SystemExit(f"error: --steps must be >= 1, got {args.steps}")
    steps = dict(zip(args.lengths, args.steps * len(args.lengths) if len(args.steps) == 1
                     else args.steps))
    runs = [(m, n, s) for n in args.lengths for m in args.models for s in args.seeds]
    rows = load_rows(args.from_json) if args.from_json else []
    if args.resume:
        rows = resume_rows(args.json)
        label = {"attention-K": f"attention-{args.hops}"}
        done = {(r["model"], r["seq_len"], r["seed"]) for r in rows
                if r["modulus"] == args.modulus and r.get("steps") == steps.get(r["seq_len"])}
        runs = [(m, n, s) for m, n, s in runs if (label.get(m, m), n, s) not in done]
    for m, n, s in tqdm([] if args.from_json else runs, desc="higher_order"):
        rows.append(train_one(m, n, args.modulus, s, width=args.width, hidden=args.hidden,
                              hops=args.hops, steps=steps[n], batch_size=args.batch_size,
                              lr=args.lr, n_train=args.n_train, n_test=args.n_test,
                              pairwise_free=args.pairwise_free, device=device))
        if args.json:
            write_rows(rows, json_path=args.json)
    if not rows:
        raise SystemExit("error: no runs to summarise")
    seeds = sorted({r["seed"] for r in rows})
    r0 = rows[0]
    free = "pairwise-free, " if r0.get("pairwise_free") else ""
    by_len = {r["seq_len"]: r.get("steps") for r in rows}
    steps_text = (f"{r0.get('steps')} steps" if len(set(by_len.values())) == 1 else
                  "steps " + ", ".join(f"{v} at N={n}" for n, v in sorted(by_len.items())))
    print(f"Match3 ({free}modulus {rows[0]['modulus']}), width {rows[0]['width']}, "
          f"{steps_text} x {r0.get('batch_size', args.batch_size)}, "
          f"lr {r0.get('lr', args.lr)}, seeds {seeds}: "
          "test accuracy (%), mean ± std")
    print(summarize(rows))
    if args.plot:
        plot(rows, args.plot)
    write_rows(rows, csv_path=args.csv, json_path=args.json)
    return rows


if __name__ == "__main__":
    main()
