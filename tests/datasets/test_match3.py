import itertools

import pytest
import torch

from affgraph.datasets import make_match3, match3_labels
from affgraph.datasets.match3 import match3_pairwise_free


def brute_force(tokens, modulus):
    out = torch.zeros_like(tokens)
    for s, seq in enumerate(tokens.tolist()):
        for i, xi in enumerate(seq):
            out[s, i] = int(any((xi + xj + xl) % modulus == 0
                                for xj, xl in itertools.product(seq, seq)))
    return out


@pytest.mark.parametrize("seq_len,modulus", [(6, 7), (10, 16), (5, 5)])
def test_labels_match_brute_force(seq_len, modulus):
    tokens, labels = make_match3(40, seq_len, modulus, seed=3)
    assert tokens.shape == labels.shape == (40, seq_len)
    assert tokens.dtype == labels.dtype == torch.int64
    assert int(tokens.min()) >= 0 and int(tokens.max()) < modulus
    assert torch.equal(labels, brute_force(tokens, modulus))


def test_hand_cases():
    # M = 10: 1 + 4 + 5 = 10; 7 + 7 + 6 = 20; 2: 2 + a + b = 10 needs a + b = 8 -> 4 + 4
    tokens = torch.tensor([[1, 4, 5, 7], [2, 4, 3, 3], [1, 1, 1, 1]])
    labels = match3_labels(tokens, 10)
    assert labels.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]]
    assert torch.equal(labels, brute_force(tokens, 10))


def test_balanced_and_mixed_within_sequences():
    tokens, labels = make_match3(500, 24, 32, seed=0)
    assert abs(labels.float().mean().item() - 0.5) < 24 / 500  # within one sequence's worth
    per_seq = labels.float().mean(1)
    assert per_seq.min() >= 0.2 and per_seq.max() <= 0.8
    assert len(torch.unique(tokens, dim=0)) > 450  # not a handful of repeated sequences


def test_deterministic_under_seed():
    a = make_match3(50, 12, 11, seed=7)
    b = make_match3(50, 12, 11, seed=7)
    c = make_match3(50, 12, 11, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_bad_input():
    with pytest.raises(ValueError, match="modulus"):
        make_match3(10, 5, 1)
    with pytest.raises(TypeError, match="seq_len"):
        make_match3(10, 5.0, 7)
    with pytest.raises(ValueError, match="positive_fraction"):
        make_match3(10, 5, 7, positive_fraction=1.0)
    with pytest.raises(ValueError, match="tokens"):
        match3_labels(torch.tensor([[0, 9]]), 7)
    with pytest.raises(TypeError, match="integer"):
        match3_labels(torch.zeros(2, 3), 7)


def brute_force_pairwise_free(tokens, modulus):
    # no positions i, l (equal or not) with 2 x_i + x_l = 0 (mod M)
    return torch.tensor([not any((2 * a + b) % modulus == 0 for a, b in itertools.product(seq, seq))
                         for seq in tokens.tolist()])


def brute_force_distinct(tokens, modulus):
    # labels through three pairwise distinct positions holding three distinct values
    out = torch.zeros_like(tokens)
    for s, seq in enumerate(tokens.tolist()):
        n = len(seq)
        for i in range(n):
            out[s, i] = int(any((seq[i] + seq[j] + seq[l]) % modulus == 0
                                and len({i, j, l}) == 3 and len({seq[i], seq[j], seq[l]}) == 3
                                for j in range(n) for l in range(n)))
    return out


@pytest.mark.parametrize("seq_len,modulus", [(8, 16), (12, 13), (6, 10)])
def test_pairwise_free_option(seq_len, modulus):
    tokens, labels = make_match3(60, seq_len, modulus, seed=5, pairwise_free=True)
    assert brute_force_pairwise_free(tokens, modulus).all()
    assert match3_pairwise_free(tokens, modulus).all()
    assert torch.equal(labels, brute_force(tokens, modulus))  # still the Match3 labels
    # ... and every positive is a genuine triple: distinct positions, distinct values
    assert torch.equal(labels, brute_force_distinct(tokens, modulus))
    assert abs(labels.float().mean().item() - 0.5) < seq_len / 60
    per_seq = labels.float().mean(1)
    assert per_seq.min() >= 0.2 and per_seq.max() <= 0.8
    again = make_match3(60, seq_len, modulus, seed=5, pairwise_free=True)
    assert torch.equal(again[0], tokens)


def test_pairwise_free_mask_against_brute_force():
    gen = torch.Generator().manual_seed(0)
    for modulus in (7, 12, 16):
        tokens = torch.randint(0, modulus, (300, 5), generator=gen)
        assert torch.equal(match3_pairwise_free(tokens, modulus),
                           brute_force_pairwise_free(tokens, modulus))
    assert match3_pairwise_free(torch.tensor([[1, 3]]), 7).tolist() == [False]  # 2*3 + 1 = 7
    assert match3_pairwise_free(torch.tensor([[1, 2]]), 7).tolist() == [True]
    with pytest.raises(ValueError, match="tokens"):
        match3_pairwise_free(torch.tensor([[0, 9]]), 7)


def test_default_distribution_is_mostly_pairwise():
    # the documented reason for the option: at M = 16 most positives have a degenerate solution
    tokens, labels = make_match3(300, 16, 16, seed=0)
    pair = torch.zeros_like(labels)
    for s, seq in enumerate(tokens.tolist()):
        for i, a in enumerate(seq):
            pair[s, i] = int(any((2 * a + b) % 16 == 0 or (a + 2 * b) % 16 == 0 for b in seq))
    assert bool((pair <= labels).all())  # a degenerate solution is a solution
    assert (pair == labels).float().mean().item() > 0.85
