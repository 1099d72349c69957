"""llmscratch.comparisons: the position comparison on a tiny model and a random stream (structure, and no
invented numbers), and the ladder's rungs."""

import math
from dataclasses import replace

import pytest
import torch

from llmscratch import GPTConfig, TrainConfig, parameter_formula
from llmscratch import comparisons as cp

TINY = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2)
QUICK = TrainConfig(steps=2, batch_size=4, warmup_steps=1, eval_interval=2, eval_batches=1)


@pytest.fixture(scope="module")
def splits():
    g = torch.Generator().manual_seed(0)
    return {name: torch.randint(0, TINY.vocab_size, (n,), generator=g)
            for name, n in [("train", 400), ("val", 300), ("test", 300)]}


@pytest.fixture(scope="module")
def comparison(splits):
    return cp.compare_positions(splits, seeds=(1, 2), cfg=QUICK, base=TINY, progress=False)


def test_every_scheme_and_seed_scored_at_one_two_and_four_times_the_length(comparison):
    assert comparison["lengths"] == [8, 16, 32]
    assert [(r["scheme"], r["seed"]) for r in comparison["runs"]] == [
        (s, seed) for seed in (1, 2) for s in cp.SCHEMES]
    assert set(comparison["summary"]) == set(cp.SCHEMES)


def test_learned_positions_have_no_value_past_their_table(comparison):
    for row in comparison["runs"]:
        defined = ["8"] if row["scheme"] == "learned" else ["8", "16", "32"]
        for L in ("8", "16", "32"):
            if L in defined:
                # Two steps from a near-uniform start: close to ln(vocab_size), and finite.
                assert math.isfinite(row["loss"][L]) and abs(row["loss"][L] - math.log(20)) < 0.5
                assert len(row["position_losses"][L]) == int(L)
                assert row["loss"][L] == pytest.approx(sum(row["position_losses"][L]) / int(L), abs=1e-3)
                assert L not in row["errors"]
            else:
                assert row["loss"][L] is None and row["position_losses"][L] is None
                assert "learned position table" in row["errors"][L]
    assert comparison["summary"]["learned"]["16"] is None and comparison["summary"]["learned"]["32"] is None


def test_summary_is_over_seeds(comparison):
    for scheme, by_length in comparison["summary"].items():
        for L, cell in by_length.items():
            if cell is None:
                continue
            values = [r["loss"][L] for r in comparison["runs"] if r["scheme"] == scheme]
            assert cell["n"] == 2 and cell["min"] <= cell["mean"] <= cell["max"]
            assert cell["mean"] == pytest.approx(sum(values) / 2, abs=1e-5)


def test_same_seed_same_result(splits, comparison):
    _, row = cp.run_scheme("rope", splits, replace(QUICK, seed=1), [8], TINY, False)
    first = next(r for r in comparison["runs"] if r["scheme"] == "rope" and r["seed"] == 1)
    assert row["loss"]["8"] == first["loss"]["8"]


def test_bad_scheme_and_lengths_are_refused(splits):
    with pytest.raises(ValueError, match="unknown position scheme"):
        cp.run_scheme("absolute", splits, QUICK, [8], TINY, False)
    with pytest.raises(ValueError, match="lengths"):
        cp.run_scheme("rope", splits, QUICK, [0], TINY, False)


def test_rows_record_the_last_token_losses(comparison):
    for row in comparison["runs"]:
        assert set(row["last_token_loss"]) == {"intact", "shuffled"}
        assert all(math.isfinite(v) for v in row["last_token_loss"].values())


def test_ladder_rungs_add_one_piece_each():
    names = [name for name, _ in cp.RUNGS]
    assert names == ["bigram", "one head", "four heads", "one block", "two blocks", "four blocks"]
    configs = dict(cp.RUNGS)
    assert configs["bigram"].n_layers == 0
    assert configs["one head"].n_heads == 1 and configs["one head"].ff_dim == 0
    # Splitting into heads costs no parameters.
    assert parameter_formula(configs["one head"]) == parameter_formula(configs["four heads"])
    assert configs["one block"].ff_dim == 4 * configs["one block"].d_model
    assert not any(c.tie_weights for c in configs.values())  # each rung adds one piece, nothing else


def test_each_variant_changes_one_thing_about_a_rung():
    rungs = dict(cp.RUNGS)
    names = [name for name, _, _ in cp.VARIANTS]
    assert len(set(names)) == len(names) and not set(names) & set(rungs)
    fields = ("n_heads", "tie_weights", "norm_placement", "residual")
    for name, config, changes in cp.VARIANTS:
        assert set(changes) <= {"warmup_steps"}
        # the rung it varies: one with the same feed-forward network, at the variant's depth
        differs = min(({f for f in fields if getattr(replace(c, n_layers=config.n_layers), f) != getattr(config, f)}
                       for c in rungs.values() if c.ff_dim == config.ff_dim and c.n_layers > 0), key=len)
        assert len(differs) <= 1 and len(differs) + len(changes) + (config.n_layers not in (1, 2)) >= 1, name


def test_train_rung_is_a_function_of_its_seed(splits):
    config = replace(TINY, position="rope")
    first, loss_1 = cp.train_rung(config, splits, QUICK, progress=False)
    second, loss_2 = cp.train_rung(config, splits, QUICK, progress=False)
    assert loss_1 == loss_2
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
    _, loss_3 = cp.train_rung(config, splits, replace(QUICK, seed=QUICK.seed + 1), progress=False)
    assert loss_3 != loss_1


def test_train_rung_scores_with_the_books_protocol(splits):
    from llmscratch.evaluation import protocol_stride, sliding_nlls

    model, loss = cp.train_rung(TINY, splits, QUICK, progress=False)
    stride = protocol_stride(TINY.context_length)
    assert stride == max(1, TINY.context_length // 16)
    expected = sliding_nlls(model, splits["val"], splits["train"], stride=stride).double().mean()
    assert loss == pytest.approx(float(expected), abs=1e-9)
