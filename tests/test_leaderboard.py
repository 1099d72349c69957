"""llmscratch.leaderboard: the counting baselines against hand-worked numbers, and the summary."""

import math
from dataclasses import asdict

import pytest
import torch

from llmscratch.leaderboard import additive_smoothing, counting_nlls, merge_rows, row_summary


def test_counting_bigram_matches_hand_worked_probabilities():
    train = torch.tensor([0, 1, 0, 1, 1, 0])  # pairs: 01 10 01 11 10 -> from 0: {1: 2}; from 1: {0: 2, 1: 1}
    val = torch.tensor([1, 0])  # predicted from the last training token 0, then from 1
    nlls, k = counting_nlls(train, val, vocab_size=2, order=2, k=0.5)
    assert k == 0.5
    p_1_after_0 = (2 + 0.5) / (2 + 1.0)
    p_0_after_1 = (2 + 0.5) / (3 + 1.0)
    expected = -torch.tensor([p_1_after_0, p_0_after_1], dtype=torch.float64).log()
    assert torch.allclose(nlls.double(), expected, atol=1e-6)


def test_counting_unigram_and_chosen_smoothing():
    train = torch.tensor([2, 2, 2, 0] * 50)
    nlls, k = counting_nlls(train, torch.tensor([2, 0]), vocab_size=3, order=1)
    assert k in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
    expected = -additive_smoothing(torch.tensor([50, 0, 150]), k)[torch.tensor([2, 0])]
    assert torch.allclose(nlls.double(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="order"):
        counting_nlls(train, train, 3, order=3)


def test_row_summary_mean_and_sample_std():
    runs = [{"bits_per_char": v, "nats_per_token": 2 * v} for v in (1.0, 2.0, 3.0)]
    s = row_summary(runs)
    assert s["n"] == 3 and s["bits_per_char"]["mean"] == 2.0 and s["bits_per_char"]["std"] == 1.0
    assert s["nats_per_token"]["min"] == 2.0 and s["nats_per_token"]["max"] == 6.0
    assert math.isclose(row_summary(runs[:1])["bits_per_char"]["std"], 0.0)


def test_merge_rows_replaces_by_name_and_tokenization_and_appends_the_rest():
    board = {"seeds": [1], "rows": [{"name": "a", "tokenization": "chars", "v": 1},
                                    {"name": "a", "tokenization": "BPE-512", "v": 2}]}
    merged = merge_rows(board, [{"name": "a", "tokenization": "BPE-512", "v": 3},
                                {"name": "b", "tokenization": "BPE-512", "v": 4}])
    assert [(r["name"], r["v"]) for r in merged["rows"]] == [("a", 1), ("a", 3), ("b", 4)]
    assert merged["seeds"] == [1] and [r["v"] for r in board["rows"]] == [1, 2]  # the input is not changed


def test_the_committed_leaderboard_is_complete_and_its_counted_rows_reproduce():
    from llmscratch.leaderboard import COMMITTED, LN2, PART4_ROWS, RUNGS, load_leaderboard, protocol

    board = load_leaderboard()
    assert board["provenance"]["git_dirty"] is False and len(board["seeds"]) >= 3
    names = [r["name"] for r in board["rows"]]
    assert names[5:12] == [name for name, _ in RUNGS] and names[12:14] == [name for name, _ in COMMITTED]
    assert names[14:] == [name for name, _ in PART4_ROWS]
    for row in board["rows"][14:]:  # merged in later by --only: each with its own clean provenance
        assert row["part"] == "4" and row["provenance"]["git_dirty"] is False
        assert row["model_config"] == asdict(dict(PART4_ROWS)[row["name"]])
    for row in board["rows"]:
        if row.get("counted") or row.get("committed"):
            assert row["summary"]["n"] == 1
        else:  # trained here: one run per seed, and the summary is of those runs
            assert [r["seed"] for r in row["runs"]] == board["seeds"]
            assert row["summary"] == row_summary(row["runs"])
    p = protocol()
    assert board["val_chars"] == p.n_val_chars and board["val_tokens"] == len(p.bpe_val)
    for row in board["rows"][:3]:
        ids = (p.char_train, p.char_val, p.chars.vocab_size) if row["tokenization"] == "chars" else \
            (p.bpe_train, p.bpe_val, 512)
        order = 1 if row["name"] == "unigram" else 2
        nlls, k = counting_nlls(*ids, order=order)
        assert k == row["smoothing"]
        assert math.isclose(float(nlls.double().sum()) / LN2 / p.n_val_chars, row["runs"][0]["bits_per_char"],
                            abs_tol=1e-5)
