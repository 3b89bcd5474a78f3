"""Bad inputs of affgraph.functional.simplicial_attention."""
from __future__ import annotations

import math

import pytest
import torch

import _oracles as ref
from _catalogue import Equals, Raises, case, check, randn
from affgraph.functional import simplicial_attention

FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
N, H, D = 6, 2, 3
BATCH = torch.tensor([0, 0, 1, 1, 1, 1])


def inputs(dtype=torch.float64, scale=1.0, seed=0, n=N):
    return tuple(randn(n, H, D, dtype=dtype, seed=seed + i, scale=scale) for i in range(5))


SUPPORTS = {  # name: (keyword arguments, J mask, L mask)
    "all-pairs": ({}, ref.mask_counts(N), ref.mask_counts(N)),
    "causal": ({"causal": True}, ref.mask_counts(N, causal=True),
               ref.mask_counts(N, causal=True)),
    "window-1-2": ({"window": (1, 2)}, ref.mask_counts(N, window=1),
                   ref.mask_counts(N, window=2)),
    "causal-window-2-0": ({"window": (2, 0), "causal": True},
                          ref.mask_counts(N, window=2, causal=True),
                          ref.mask_counts(N, window=0, causal=True)),
    "batch": ({"batch": BATCH}, ref.mask_counts(N, batch=BATCH), ref.mask_counts(N, batch=BATCH)),
    "batch-window-0-1": ({"batch": BATCH, "window": (0, 1)},
                         ref.mask_counts(N, batch=BATCH, window=0),
                         ref.mask_counts(N, batch=BATCH, window=1)),
    "window-huge": ({"window": (10 ** 9, 10 ** 12)}, ref.mask_counts(N), ref.mask_counts(N)),
}


def _cases():
    out = []
    for dtype in FLOATS:
        dn = str(dtype).split(".")[1]
        for support, (kw, jm, lm) in SUPPORTS.items():
            t = inputs(dtype)
            out.append(case("functional.simplicial_attention", f"{support}-{dn}",
                            lambda t=t, kw=kw: simplicial_attention(*t, **kw),
                            Equals(lambda t=t, jm=jm, lm=lm: ref.simplicial(*t, jm, lm), dtype)))
        tiny = inputs(dtype, scale=torch.finfo(dtype).tiny)
        out.append(case("functional.simplicial_attention", f"tiny-{dn}",
                        lambda t=tiny, dtype=dtype: simplicial_attention(*t[:3],
                                                                         *inputs(dtype)[3:]),
                        Equals(lambda t=tiny, dtype=dtype: ref.simplicial(
                            *t[:3], *inputs(dtype)[3:], ref.mask_counts(N), ref.mask_counts(N)),
                            dtype)))
        # trilinear logits beyond the dtype's range: still a convex combination of v1 * v2
        big = 1e100 if dtype == torch.float64 else torch.finfo(dtype).max ** (1 / 3) * 4
        for support in ("all-pairs", "window-1-2"):
            kw, jm, lm = SUPPORTS[support]
            t = inputs(dtype)
            qb = tuple((x.double() * big).to(dtype) for x in t[:3]) + t[3:]
            out.append(case("functional.simplicial_attention", f"huge-{support}-{dn}",
                            lambda qb=qb, kw=kw: simplicial_attention(*qb, **kw),
                            Equals(lambda qb=qb, jm=jm, lm=lm: ref.simplicial(*qb, jm, lm),
                                   dtype)))
        for pos, name in enumerate(("q", "k1", "k2", "v1", "v2")):
            t = list(inputs(dtype))
            t[pos] = t[pos].clone()
            t[pos][1, 0, 0] = math.nan if pos % 2 else math.inf
            out.append(case("functional.simplicial_attention", f"nonfinite-{name}-{dn}",
                            lambda t=t: simplicial_attention(*t), Raises(name)))
    t = inputs()
    two_d = tuple(x[:, 0] for x in t)
    out += [
        case("functional.simplicial_attention", "one-head-2d",
             lambda: simplicial_attention(*two_d),
             Equals(lambda: ref.simplicial(*(x[:, None] for x in two_d), ref.mask_counts(N),
                                           ref.mask_counts(N))[:, 0])),
        case("functional.simplicial_attention", "single",
             lambda: simplicial_attention(*(x[:1] for x in t)),
             Equals(lambda: t[3][:1] * t[4][:1])),
        case("functional.simplicial_attention", "batch-singletons",
             lambda: simplicial_attention(*t, batch=torch.arange(N)),
             Equals(lambda: t[3] * t[4])),
        case("functional.simplicial_attention", "block_elements-small",
             lambda: simplicial_attention(*t, window=(1, 1), block_elements=H * 3),
             Equals(lambda: ref.simplicial(*t, ref.mask_counts(N, window=1),
                                           ref.mask_counts(N, window=1)))),
    ]
    errors = {
        "empty": (lambda: simplicial_attention(*(x[:0] for x in t)), "N"),
        "zero-width": (lambda: simplicial_attention(*(x[..., :0] for x in t[:3]), *t[3:]), "q"),
        "q-4d": (lambda: simplicial_attention(t[0][None], *t[1:]), "q"),
        "q-list": (lambda: simplicial_attention(t[0].tolist(), *t[1:]), "q"),
        "k1-shape": (lambda: simplicial_attention(t[0], t[1][:5], *t[2:]), "k1"),
        "v2-shape": (lambda: simplicial_attention(*t[:4], t[4][:, :, :2]), "v2"),
        "k2-dtype": (lambda: simplicial_attention(t[0], t[1], t[2].float(), *t[3:]), "k2"),
        "v1-int": (lambda: simplicial_attention(*t[:3], t[3].long(), t[4]), "v1"),
        "window-negative": (lambda: simplicial_attention(*t, window=(-1, 1)), "w1"),
        "window-float": (lambda: simplicial_attention(*t, window=(1, 1.5)), "w2"),
        "window-int": (lambda: simplicial_attention(*t, window=2), "window"),
        "window-triple": (lambda: simplicial_attention(*t, window=(1, 1, 1)), "window"),
        "batch-bool": (lambda: simplicial_attention(*t, batch=BATCH > 0), "batch"),
        "batch-float": (lambda: simplicial_attention(*t, batch=BATCH.double()), "batch"),
        "batch-unsorted": (lambda: simplicial_attention(*t, batch=BATCH.flip(0)), "batch"),
        "batch-length": (lambda: simplicial_attention(*t, batch=BATCH[:4]), "batch"),
        "batch-list": (lambda: simplicial_attention(*t, batch=BATCH.tolist()), "batch"),
        "block_elements-zero": (lambda: simplicial_attention(*t, block_elements=0),
                                "block_elements"),
        "block_elements-bool": (lambda: simplicial_attention(*t, block_elements=True),
                                "block_elements"),
        "block_elements-row": (lambda: simplicial_attention(*t, window=(2, 2), block_elements=3),
                               "block_elements"),
    }
    out += [case("functional.simplicial_attention", label, call, Raises(name))
            for label, (call, name) in errors.items()]
    return out


CASES = _cases()


@pytest.mark.parametrize("c", CASES)
def test_bad_simplicial(c):
    check(c)
