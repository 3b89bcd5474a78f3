"""Match3 (Sanford, Hsu and Telgarsky 2023): a token task that needs triples of positions."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from affgraph.datasets.synthetic import _int

__all__ = ["make_match3", "match3_labels", "match3_pairwise_free"]


def _token_sets(tokens: Tensor, modulus: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Checked ``modulus``, the tokens as an ``int64`` array ``[S, N]`` and which of the
    ``modulus`` values each sequence holds (``bool [S, M]``)."""
    modulus = _int("modulus", modulus, 2)
    if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.is_floating_point():
        raise TypeError("tokens must be an integer tensor of shape [n_samples, seq_len]")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= modulus):
        raise ValueError(f"tokens must lie in 0..{modulus - 1}")
    tok = tokens.long().cpu().numpy()
    present = np.zeros((tok.shape[0], modulus), dtype=bool)
    np.put_along_axis(present, tok, True, axis=1)
    return modulus, tok, present


def match3_labels(tokens: Tensor, modulus: int) -> Tensor:
    r"""Match3 labels of token sequences: position :math:`i` is positive iff

    .. math::
        \exists\, j, l \in \{1..N\}:\quad x_i + x_j + x_l \equiv 0 \pmod M

    (``j``, ``l`` arbitrary, equal to each other or to ``i`` included). Computed through the
    sumset of the tokens present, :math:`O(S M^2)`, not :math:`O(S N^2)`.

    Args:
        tokens (Tensor): integer tokens in ``0..modulus-1``, shape ``[S, N]``.
        modulus (int): :math:`M`.

    Shapes:
        - **input:** :math:`(S, N)` -> **output:** :math:`(S, N)` (``int64`` 0/1)
    """
    modulus, tok, present = _token_sets(tokens, modulus)
    ar = np.arange(modulus)
    partner = (ar[:, None] - ar[None, :]) % modulus  # partner[t, a] = t - a (mod M)
    sums = np.empty_like(present)  # sums[s, t]: some a + b = t (mod M), a and b present
    step = max(1, (1 << 24) // (modulus * modulus))
    for s0 in range(0, tok.shape[0], step):
        p = present[s0:s0 + step]
        sums[s0:s0 + step] = (p[:, None, :] & p[:, partner]).any(-1)
    need = (-tok) % modulus
    labels = np.take_along_axis(sums, need, axis=1)
    return torch.from_numpy(labels.astype(np.int64)).to(tokens.device)


def match3_pairwise_free(tokens: Tensor, modulus: int) -> Tensor:
    r"""Whether each sequence is free of *degenerate* Match3 solutions, those in which two of
    the three positions coincide:

    .. math::
        \nexists\, i, l:\quad 2 x_i + x_l \equiv 0 \pmod M

    (``l = i`` included, i.e. :math:`3 x_i \equiv 0`). A degenerate solution is a *pairwise*
    relation, which one layer of standard attention can detect (position :math:`i` queries for a
    key with :math:`x_l \equiv -2 x_i`, or the reverse). In a pairwise-free sequence every
    positive position :math:`i` is positive through three pairwise distinct positions holding
    three distinct token values, so its label is a genuine three-way relation.

    Args:
        tokens (Tensor): integer tokens in ``0..modulus-1``, shape ``[S, N]``.
        modulus (int): :math:`M`.

    Shapes:
        - **input:** :math:`(S, N)` -> **output:** :math:`(S,)` (``bool``)
    """
    modulus, tok, present = _token_sets(tokens, modulus)
    minus_twice = (-2 * np.arange(modulus)) % modulus
    clash = (present & present[:, minus_twice]).any(1)  # a and -2a both present
    return torch.from_numpy(~clash).to(tokens.device)


def _pairwise_free_alphabets(ranks: np.ndarray, size: np.ndarray,
                             modulus: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy pairwise-free alphabets: walk each row of ``ranks`` (a permutation of Z_M) and keep
    an element ``e`` unless ``3e = 0``, ``-2e`` is kept already or ``e = -2a`` for a kept ``a``,
    until ``size`` elements are kept. Returns the kept elements first in each row (the rest of
    the row in walk order) and the number kept (``<= size``)."""
    m = ranks.shape[0]
    ar = np.arange(modulus)
    minus_twice = (-2 * ar) % modulus
    halves = minus_twice[None, :] == ar[:, None]  # halves[e, a]: -2a = e
    kept = np.zeros((m, modulus), dtype=bool)
    count = np.zeros(m, dtype=np.int64)
    order = np.empty_like(ranks)
    rows = np.arange(m)
    for t in range(modulus):
        e = ranks[:, t]
        ok = ((3 * e) % modulus != 0) & ~kept[rows, minus_twice[e]] \
            & ~(kept & halves[e]).any(1) & (count < size)
        kept[rows[ok], e[ok]] = True
        count += ok
        order[:, t] = np.where(ok, 0, 1)  # kept elements sort first, stably
    idx = np.argsort(order, axis=1, kind="stable")
    return np.take_along_axis(ranks, idx, axis=1), np.maximum(count, 1)


def make_match3(n_samples: int, seq_len: int, modulus: int, *, seed: int = 0,
                positive_fraction: float = 0.5, min_share: float = 0.2,
                pairwise_free: bool = False) -> tuple[Tensor, Tensor]:
    r"""Match3 sequences with (about) balanced labels (`"Representational Strengths and
    Limitations of Transformers" <https://arxiv.org/abs/2306.02896>`_, Sanford et al. 2023).

    Tokens :math:`x_1..x_N \in \mathbb{Z}_M`; label :math:`y_i = 1` iff some positions
    :math:`j, l` satisfy :math:`x_i + x_j + x_l \equiv 0 \pmod M` (see :func:`match3_labels`).
    Uniform tokens make almost every position positive once :math:`N^2 \gtrsim M`, so each
    sequence draws its tokens from a random alphabet :math:`A \subset \mathbb{Z}_M` whose size
    varies from sample to sample, and candidate sequences are accepted greedily so that the
    running fraction of positive positions stays at ``positive_fraction`` (within one sequence's
    worth of positions overall). Each kept sequence has at least a ``min_share`` of either label
    (at least one of each for ``seq_len >= 2``), so labels differ between positions of one
    sequence and the task cannot be solved per sequence.

    With ``pairwise_free=True`` only sequences without degenerate solutions are kept (see
    :func:`match3_pairwise_free`): the labels are still those of :func:`match3_labels`, but no
    position is positive through a pair relation (:math:`3 x_i \equiv 0`, :math:`2 x_i + x_l
    \equiv 0` or :math:`x_i + 2 x_j \equiv 0`). Without it, such positions make up most
    positives at small :math:`M` (about 80% at :math:`M = 16`), and deciding "some pair
    relation holds" alone is right on about 90% of the positions: the part of Match3 that
    one-layer standard attention can represent.
    The alphabets are then grown greedily along the random permutation, skipping elements that
    would create a degenerate solution, up to the drawn size (so pairwise-free alphabets are
    smaller: at most 8 distinct tokens at :math:`M = 16`).

    Args:
        n_samples (int): number of sequences :math:`S`.
        seq_len (int): :math:`N`.
        modulus (int): :math:`M \ge 2`.
        seed (int, optional): seed of the generator (default: ``0``).
        positive_fraction (float, optional): target share of positive positions (default: 0.5).
        min_share (float, optional): least share of each label within a sequence, in
            ``[0, 0.5]`` (default: ``0.2``).
        pairwise_free (bool, optional): keep only sequences without degenerate solutions
            (default: ``False``).

    Returns:
        ``(tokens, labels)``, both ``int64`` of shape :math:`(S, N)`.
    """
    n_samples = _int("n_samples", n_samples, 1)
    seq_len = _int("seq_len", seq_len, 1)
    modulus = _int("modulus", modulus, 2)
    if not 0.0 < float(positive_fraction) < 1.0:
        raise ValueError(f"positive_fraction must be in (0, 1), got {positive_fraction}")
    if not 0.0 <= float(min_share) <= 0.5:
        raise ValueError(f"min_share must be in [0, 0.5], got {min_share}")
    least = max(1, int(np.ceil(min_share * seq_len))) if seq_len >= 2 and min_share > 0 else 0
    rng = np.random.default_rng(_int("seed", seed, 0))
    target = float(positive_fraction)
    kept_tokens, kept_pos = [], 0
    kept = 0
    for _ in range(200):  # rounds of candidates; each round offers 4x what is missing
        missing = n_samples - kept
        if missing == 0:
            break
        m = max(64, 4 * missing)
        size = rng.integers(1, min(modulus, seq_len) + 1, size=m)  # alphabet sizes
        keys = rng.random((m, modulus))
        ranks = keys.argsort(axis=1)  # a random permutation of Z_M per candidate
        if pairwise_free:
            ranks, size = _pairwise_free_alphabets(ranks, size, modulus)
        pick = rng.integers(0, 1 << 30, size=(m, seq_len)) % size[:, None]
        cand = torch.from_numpy(np.take_along_axis(ranks, pick, axis=1))
        pos = match3_labels(cand, modulus).sum(1)
        mixed = torch.minimum(pos, seq_len - pos) >= least
        if pairwise_free:
            mixed &= match3_pairwise_free(cand, modulus)
        cand, pos = cand[mixed], pos[mixed].tolist()
        chosen = []
        for c, p in enumerate(pos):
            if kept == n_samples:
                break
            total = (kept + 1) * seq_len
            new_err = abs(kept_pos + p - target * total)
            if new_err <= max(abs(kept_pos - target * kept * seq_len), seq_len / 2):
                chosen.append(c)
                kept_pos += p
                kept += 1
        kept_tokens.append(cand[chosen])
    if kept < n_samples:
        raise ValueError(f"could not balance Match3 labels at positive_fraction={target}, "
                         f"min_share={min_share}, pairwise_free={pairwise_free} for "
                         f"seq_len={seq_len}, modulus={modulus}")
    tokens = torch.cat(kept_tokens)
    perm = torch.from_numpy(rng.permutation(n_samples))
    tokens = tokens[perm].long()
    return tokens, match3_labels(tokens, modulus)
