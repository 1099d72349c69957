"""llmscratch.objectives and the bidirectional prefix: masks, corruption, targets, and the exact evaluations.

The hand-worked mask: four positions, a prefix of 2. Queries 0 and 1 see keys 0 and 1 (the
prefix, both ways); query 2 sees 0, 1, 2; query 3 sees all four. A prefix of 0 is the causal
mask, a prefix of 4 no mask at all.
"""

import itertools
import json
from dataclasses import replace

import pytest
import torch

from llmscratch import GPT, GPTConfig
from llmscratch.attention import causal_mask, prefix_lm_mask
from llmscratch.kv_cache import KVCache
from llmscratch.objectives import (
    IGNORE,
    NextTokenView,
    Objective,
    ObjectiveModel,
    bigram_blank_nlls,
    bigram_continuation_nlls,
    blank_nlls,
    continuation_nlls,
    mask_tokens,
    masked_nlls,
    prefix_targets,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = GPTConfig(vocab_size=9, context_length=8, d_model=16, n_layers=2, n_heads=2)
MASK = 8  # the last id of SMALL's vocabulary plays [MASK]


def small(position="learned", **changes):
    torch.manual_seed(0)
    return GPT(replace(SMALL, position=position, **changes)).eval()


def test_prefix_mask_by_hand():
    positions = torch.arange(4)
    assert prefix_lm_mask(positions, positions, torch.tensor([2])).int().tolist() == [
        [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]]
    both = prefix_lm_mask(positions, positions, torch.tensor([0, 4]))
    assert torch.equal(both[0], causal_mask(4)) and bool(both[1].all())
    # A window still limits the causal part; the prefix stays visible to every query.
    windowed = prefix_lm_mask(torch.arange(6), torch.arange(6), torch.tensor([1]), window=2)
    assert windowed[0, 5].int().tolist() == [1, 0, 0, 0, 1, 1]


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "rope", "alibi", "none"])
def test_prefix_zero_is_the_causal_model_and_the_prefix_is_read_both_ways(position):
    model = small(position)
    x = torch.randint(0, 8, (2, 8), generator=torch.Generator().manual_seed(1))
    causal, _ = model(x)
    assert torch.allclose(model(x, prefix_length=0)[0], causal, atol=1e-6)
    lengths = torch.tensor([5, 2])
    before, _ = model(x, prefix_length=lengths)
    for j in range(8):
        changed = x.clone()
        changed[:, j] = (changed[:, j] + 1) % 8
        after, _ = model(changed, prefix_length=lengths)
        for row, p in enumerate(lengths.tolist()):
            moved = (after[row] - before[row]).abs().amax(-1) > 1e-5  # (T,): which positions' logits changed
            if j < p:  # a prefix token reaches every position, the ones before it too
                assert bool(moved.all()), (position, j, row)
            else:  # after the prefix: only itself and later positions
                assert not bool(moved[:j].any()) and bool(moved[j:].all()), (position, j, row)


def test_prefix_with_a_cache_continues_the_prefix_model():
    model = small("rope")
    x = torch.randint(0, 8, (1, 8), generator=torch.Generator().manual_seed(2))
    whole, _ = model(x, prefix_length=4)
    cache = KVCache.for_model(model)
    first, _ = model(x[:, :4], cache=cache, prefix_length=4)
    steps = [model(x[:, t:t + 1], cache=cache)[0] for t in range(4, 8)]
    assert torch.allclose(torch.cat([first, *steps], dim=1), whole, atol=1e-5)
    with pytest.raises(ValueError, match="non-empty KV cache"):
        model(x[:, :1], cache=cache, prefix_length=1)


def test_bad_prefix_lengths_are_refused():
    model = small()
    x = torch.zeros(2, 6, dtype=torch.long)
    for bad, error, message in [(-1, ValueError, "between 0"), (7, ValueError, "between 0"),
                                (torch.tensor([1, 2, 3]), ValueError, "one per sequence"),
                                (torch.tensor([1.0, 2.0]), TypeError, "integers"), (True, TypeError, "int"),
                                ("3", TypeError, "int")]:
        with pytest.raises(error, match=message):
            model(x, prefix_length=bad)
    with pytest.raises(ValueError, match="left padding"):
        model(x, prefix_length=2, padding_mask=torch.ones(2, 6, dtype=torch.bool))


def test_mask_tokens_shares_targets_and_determinism():
    x = torch.randint(0, 8, (400, 50), generator=torch.Generator().manual_seed(3))
    objective = Objective("masked", mask_rate=0.15, mask_id=MASK)
    inputs, targets = mask_tokens(x, objective, torch.Generator().manual_seed(4))
    again = mask_tokens(x, objective, torch.Generator().manual_seed(4))
    assert torch.equal(inputs, again[0]) and torch.equal(targets, again[1])
    chosen = targets != IGNORE
    assert torch.equal(targets[chosen], x[chosen])  # targets are the original tokens
    assert torch.equal(inputs[~chosen], x[~chosen])  # unchosen positions are untouched
    assert abs(chosen.float().mean().item() - 0.15) < 0.01
    masked = (inputs == MASK) & chosen
    assert abs(masked.sum().item() / chosen.sum().item() - 0.8) < 0.03
    assert not bool((inputs[~masked] == MASK).any())  # a random replacement is never [MASK]
    # Every row has a target even at a tiny rate; everything is masked at rate 1 with no other shares.
    _, sparse = mask_tokens(x, replace(objective, mask_rate=0.001), torch.Generator().manual_seed(5))
    assert bool((sparse != IGNORE).any(dim=1).all())
    full, _ = mask_tokens(x, replace(objective, mask_rate=1.0, random_share=0.0, keep_share=0.0))
    assert bool((full == MASK).all())
    with pytest.raises(ValueError, match="already uses id"):
        mask_tokens(torch.full((1, 4), MASK), objective)


def test_prefix_targets_keep_only_what_the_prefix_cannot_see():
    y = torch.arange(40).view(4, 10)
    lengths, targets = prefix_targets(y, torch.Generator().manual_seed(6))
    assert bool(((lengths >= 1) & (lengths <= 9)).all())
    for row, p in enumerate(lengths.tolist()):
        assert (targets[row] == IGNORE).tolist() == [i < p - 1 for i in range(10)]
    kept, leaky = prefix_targets(y, torch.Generator().manual_seed(6), prefix_loss=True)
    assert torch.equal(kept, lengths) and torch.equal(leaky, y)


@pytest.mark.parametrize("prefix_loss", [False, True])
def test_a_kept_target_never_sees_its_own_token_unless_the_loss_leaks(prefix_loss):
    model = small()
    x = torch.randint(0, 8, (6, 8), generator=torch.Generator().manual_seed(7))
    y = torch.roll(x, -1, dims=1)
    lengths, targets = prefix_targets(y, torch.Generator().manual_seed(8), prefix_loss)
    logits, _ = model(x, prefix_length=lengths)
    leaks = 0
    for row, i in itertools.product(range(6), range(7)):  # position i predicts token i + 1
        if targets[row, i] == IGNORE:
            continue
        changed = x.clone()
        changed[row, i + 1] = (changed[row, i + 1] + 1) % 8
        moved = (model(changed, prefix_length=lengths)[0][row, i] - logits[row, i]).abs().max() > 1e-5
        leaks += int(moved)
    assert (leaks > 0) == prefix_loss


def test_objective_model_losses():
    model = small(vocab_size=9)
    x = torch.randint(0, 8, (3, 8), generator=torch.Generator().manual_seed(9))
    y = torch.roll(x, -1, dims=1)
    assert torch.equal(ObjectiveModel(model, Objective("causal", mask_id=MASK))(x, y)[1], model(x, y)[1])
    wrapped = ObjectiveModel(model, Objective("masked", mask_rate=0.5, mask_id=MASK), seed=3)
    _, loss = wrapped(x, y)
    inputs, targets = mask_tokens(x, wrapped.objective, torch.Generator().manual_seed(3))
    assert torch.allclose(loss, model(inputs, targets, prefix_length=8)[1])
    with pytest.raises(ValueError, match="needs vocab_size > 8"):
        ObjectiveModel(small(vocab_size=8), Objective("masked", mask_id=MASK))
    with pytest.raises(TypeError, match="must be a GPT"):
        ObjectiveModel(torch.nn.Linear(2, 2), Objective())
    for bad, message in [({"kind": "span"}, "unknown objective"), ({"mask_rate": 0.0}, "mask_rate"),
                         ({"random_share": 0.6, "keep_share": 0.6}, "sum to at most 1"), ({"mask_id": 0}, "mask_id")]:
        with pytest.raises(ValueError, match=message):
            Objective(**bad)


def _joint_log_prob(model, seqs, prefix_length=None):
    """log p(tokens 1..T-1 | token 0, and the prefix) of each row, summed: (N,)."""
    logits, _ = model(seqs, prefix_length=prefix_length)
    logp = logits[:, :-1].log_softmax(-1).gather(-1, seqs[:, 1:, None]).squeeze(-1)  # (N, T-1)
    if prefix_length:
        logp = logp[:, prefix_length - 1:]
    return logp.sum(-1)


@pytest.mark.parametrize("kind", ["causal", "prefix"])
def test_blank_by_enumeration_is_bayes_rule(kind):
    model = small(vocab_size=9)
    windows = torch.randint(0, 8, (3, 6), generator=torch.Generator().manual_seed(10))
    got = blank_nlls(model, kind, windows, 2, mask_id=MASK)
    for n, window in enumerate(windows):
        filled = window.repeat(8, 1)
        filled[:, 2] = torch.arange(8)  # every candidate but [MASK]
        with torch.no_grad():
            scores = _joint_log_prob(model, filled, 2 if kind == "prefix" else None)
        assert torch.allclose(got[n], -scores.log_softmax(0)[window[2]], atol=1e-5)


def test_masked_model_evaluations():
    model = small(vocab_size=9)
    windows = torch.randint(0, 8, (3, 6), generator=torch.Generator().manual_seed(11))
    inputs = windows.clone()
    inputs[:, 3] = MASK
    with torch.no_grad():
        logits, _ = model(inputs, prefix_length=6)
    assert torch.allclose(blank_nlls(model, "masked", windows, 3, MASK), -logits[:, 3].log_softmax(-1)
                          .gather(-1, windows[:, 3:4]).squeeze(1), atol=1e-6)
    cont = continuation_nlls(model, "masked", windows, 4, MASK)  # tokens 4 and 5
    with torch.no_grad():
        logits, _ = model(torch.cat([windows[:, :5], torch.full((3, 1), MASK)], 1), prefix_length=6)
    assert torch.allclose(cont[:, 1], -logits[:, 5].log_softmax(-1).gather(-1, windows[:, 5:6]).squeeze(1), atol=1e-6)
    losses = masked_nlls(model, windows, 0.5, MASK, torch.Generator().manual_seed(0))
    assert losses.ndim == 1 and len(losses) >= 3  # at least one target per window
    with pytest.raises(ValueError, match="needs mask_id"):
        blank_nlls(model, "masked", windows, 3)


def test_continuation_of_left_to_right_models():
    model = small(vocab_size=9)
    windows = torch.randint(0, 8, (2, 7), generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        logits, _ = model(windows)
        prefixed, _ = model(windows, prefix_length=3)
    want = -logits[:, 2:-1].log_softmax(-1).gather(-1, windows[:, 3:, None]).squeeze(-1)
    assert torch.allclose(continuation_nlls(model, "causal", windows, 3), want, atol=1e-6)
    want = -prefixed[:, 2:-1].log_softmax(-1).gather(-1, windows[:, 3:, None]).squeeze(-1)
    assert torch.allclose(continuation_nlls(model, "prefix", windows, 3), want, atol=1e-6)
    with pytest.raises(ValueError, match="start"):
        continuation_nlls(model, "causal", windows, 7)


def test_bigram_baselines_by_hand():
    log_probs = torch.tensor([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0.3, 0.3, 0.4]]).clamp(min=1e-9).log()
    windows = torch.tensor([[0, 1, 2]])
    assert torch.allclose(bigram_continuation_nlls(log_probs, windows, 1), -torch.tensor([[0.5, 0.7]]).log())
    # Blank at 1 between 0 and 2: p(v | 0) p(2 | v) = 0.5*0, 0.5*0.7, 0*0.4 -> v = 1 has all the mass.
    assert torch.allclose(bigram_blank_nlls(log_probs, windows, 1), torch.zeros(1), atol=1e-6)
    with pytest.raises(ValueError, match="each side"):
        bigram_blank_nlls(log_probs, windows, 2)


def _tiny_sweep(sweep, monkeypatch):
    """Shrink the sweep script to a two-step run on a random 8-token stream; return the stream's splits."""
    from llmscratch.training import TrainConfig

    monkeypatch.setattr(sweep, "LADDER_TRAIN", TrainConfig(steps=2, batch_size=4, warmup_steps=1, eval_interval=2,
                                                           eval_batches=1))
    g = torch.Generator().manual_seed(0)
    splits = {name: torch.randint(0, 8, (400,), generator=g) for name in ("train", "val", "test")}
    chars = {"train": 800, "val": 800, "test": 800}
    monkeypatch.setattr(sweep, "shakespeare_bpe_splits", lambda: (None, splits, chars))
    return splits


def test_sweep_script_on_two_steps(tmp_path, monkeypatch):
    from llmscratch.scripts import objectives_sweep as sweep

    monkeypatch.setattr(sweep, "CONFIG", replace(SMALL, vocab_size=9, context_length=16))
    monkeypatch.setattr(sweep, "MASK_ID", MASK)
    monkeypatch.setattr(sweep, "ENTRIES", [(name, replace(o, mask_id=MASK)) for name, o in sweep.ENTRIES[::3]])
    monkeypatch.setattr(sweep, "SAVED", ("causal", "masked 15%"))
    monkeypatch.setattr(sweep, "WINDOW", 16)
    monkeypatch.setattr(sweep, "START", 8)
    monkeypatch.setattr(sweep, "BLANK", 8)
    monkeypatch.setattr(sweep, "N_BLANK", 2)
    monkeypatch.setattr(sweep, "N_CONTINUATION", 4)
    splits = _tiny_sweep(sweep, monkeypatch)
    monkeypatch.setattr("llmscratch.comparisons.protocol_stride", lambda length: length)
    out = tmp_path / "objectives.json"
    assert sweep.main(["--seeds", "42", "43", "--out", str(out), "--no-progress"]) == 0
    assert "train_changes" not in json.loads(out.read_text())["rows"][0]
    result = json.loads(out.read_text())
    causal, masked = result["rows"]
    assert [causal["name"], masked["name"]] == ["causal", "masked 15%"]
    assert len(causal["continuation"]["values"]) == 2 and "masked_15" in masked and "protocol" not in masked
    assert len(causal["blank_per_window"]) == 2 and causal["curves"][0]["step"] == [0, 2]
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict(saved["models"]["causal"])
    w = sweep.windows(splits["val"])
    assert abs(float(continuation_nlls(model, "causal", w[:4], sweep.START, MASK).double().mean())
               - causal["continuation"]["values"][0]) < 1e-4


def test_next_token_views_generate_from_the_objectives_own_reading():
    from llmscratch.sampling import generate

    model = small(vocab_size=9)
    w = torch.randint(0, 8, (2, 4), generator=torch.Generator().manual_seed(13))
    with torch.no_grad():
        wants = {"causal": model(w)[0][:, -1], "prefix": model(w, prefix_length=4)[0][:, -1],
                 "masked": model(torch.cat([w, torch.full((2, 1), MASK)], 1), prefix_length=5)[0][:, -1]}
    for kind, want in wants.items():
        view = NextTokenView(model, kind, prefix=4, mask_id=MASK)
        with torch.no_grad():
            logits, _ = view(w)
        assert logits.shape == (2, 4, 9) and logits[:, :, MASK].isinf().all()  # [MASK] is never a prediction
        assert torch.allclose(logits[:, -1, :MASK], want[:, :MASK], atol=1e-6)
        new = generate(view, w, 3, temperature=0)
        assert all(len(row) == 3 and MASK not in row for row in new)
    assert NextTokenView(model, "masked", mask_id=MASK).context_length == SMALL.context_length - 1


def test_windows_cut_the_stream_in_order():
    from llmscratch.objectives import windows

    assert windows(torch.arange(10), 3).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(ValueError, match="at least 2"):
        windows(torch.arange(10), 1)


def test_sweep_script_trains_a_named_extra_row_with_its_own_steps(tmp_path, monkeypatch):
    from llmscratch.scripts import objectives_sweep as sweep

    monkeypatch.setattr(sweep, "CONFIG", replace(SMALL, vocab_size=9, context_length=16))
    monkeypatch.setattr(sweep, "MASK_ID", MASK)
    monkeypatch.setattr(sweep, "EXTRA_ENTRIES", [("masked, longer", Objective("masked", mask_id=MASK), {"steps": 3})])
    for name, value in [("WINDOW", 16), ("START", 8), ("BLANK", 8), ("N_BLANK", 2), ("N_CONTINUATION", 4)]:
        monkeypatch.setattr(sweep, name, value)
    _tiny_sweep(sweep, monkeypatch)
    out = tmp_path / "longer.json"
    assert sweep.main(["--seeds", "1", "--only", "masked, longer", "--out", str(out), "--no-progress"]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["name"] == "masked, longer" and row["train_changes"] == {"steps": 3}
    assert row["curves"][0]["step"] == [0, 2, 3]
    with pytest.raises(SystemExit, match="no row named"):
        sweep.main(["--only", "span corruption", "--out", str(out)])


def test_an_interrupted_objective_run_resumes_exactly(tmp_path):
    from llmscratch.datasets import TextBatches
    from llmscratch.training import TrainConfig, train

    stream = torch.randint(0, 8, (600,), generator=torch.Generator().manual_seed(14))
    batches = TextBatches({"train": stream[:500], "val": stream[500:]}, 8, every_position=True)
    cfg = TrainConfig(steps=6, batch_size=4, warmup_steps=1, eval_interval=3, eval_batches=1)

    def run(stop_after=None, resume=False, model=None):
        if model is None:
            torch.manual_seed(0)
            model = ObjectiveModel(GPT(replace(SMALL, vocab_size=9)), Objective("masked", mask_id=MASK), seed=5)
        train(model, batches, cfg, checkpoint=tmp_path / "run.pt", stop_after=stop_after, resume=resume,
              progress=False)
        return model

    whole = run()
    (tmp_path / "run.pt").unlink()
    run(stop_after=3)
    torch.manual_seed(0)
    fresh = ObjectiveModel(GPT(replace(SMALL, vocab_size=9)), Objective("masked", mask_id=MASK), seed=99)
    resumed = run(resume=True, model=fresh)  # its generator's state comes from the checkpoint, not its seed
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
