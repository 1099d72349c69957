"""llmscratch.training: it learns, it is a function of its seed, and a checkpoint resumes exactly."""

import math
from dataclasses import replace

import pytest
import torch

from llmscratch import (
    CheckpointError,
    MLPConfig,
    MLPLanguageModel,
    PairBatches,
    TextBatches,
    TrainConfig,
    evaluate_loss,
    learning_rate_at,
    train,
)
from llmscratch.training import DivergenceError


def toy_data():
    """A learnable rule: the next token is (sum of the window) mod 7."""
    g = torch.Generator().manual_seed(0)
    X = torch.randint(7, (600, 3), generator=g)
    Y = X.sum(dim=1) % 7
    return PairBatches({"train": (X[:500], Y[:500]), "val": (X[500:], Y[500:])}), X, Y


def make_model(seed=0, dropout=0.2):
    torch.manual_seed(seed)
    return MLPLanguageModel(MLPConfig(vocab_size=7, context_length=3, embedding_dim=4, hidden_dim=32, dropout=dropout))


CFG = TrainConfig(steps=40, batch_size=16, learning_rate=1e-2, warmup_steps=5, eval_interval=10, eval_batches=2)


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_schedule_warms_up_peaks_and_decays():
    cfg = TrainConfig(steps=500, learning_rate=0.1, warmup_steps=50, min_lr_ratio=0.1)
    lrs = [learning_rate_at(s, cfg) for s in range(cfg.steps)]
    assert all(a < b for a, b in zip(lrs[:50], lrs[1:50]))
    assert max(lrs) == pytest.approx(0.1) and lrs[49] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[49:], lrs[50:]))
    assert lrs[-1] == pytest.approx(0.01)


def test_training_learns_the_rule():
    batches, X, Y = toy_data()
    model = make_model(dropout=0.0)
    before = evaluate_loss(model, X[:500], Y[:500])
    history = train(model, batches, TrainConfig(steps=400, batch_size=32, learning_rate=1e-2, eval_interval=100),
                    progress=False)
    after = evaluate_loss(model, X[:500], Y[:500])
    assert before == pytest.approx(math.log(7), abs=0.1)
    assert after < 0.5 * before
    assert history.eval_step == [0, 100, 200, 300, 400] and len(history.train_loss) == 400


def test_evaluate_loss_is_the_full_batch_loss():
    _, X, Y = toy_data()
    model = make_model()
    expected = model.eval()(X, Y)[1].item()
    assert evaluate_loss(model.train(), X, Y, batch_size=64) == pytest.approx(expected, rel=1e-5)
    assert model.training  # the mode is restored


def test_same_seed_same_run_other_seed_other_run():
    batches, _, _ = toy_data()
    a, b, c = make_model(), make_model(), make_model()
    ha = train(a, batches, CFG, progress=False)
    hb = train(b, batches, CFG, progress=False)
    train(c, batches, TrainConfig(**{**CFG.__dict__, "seed": 7}), progress=False)
    assert same_state(a, b) and ha == hb
    assert not same_state(a, c)


def test_evaluating_more_often_does_not_change_the_trajectory():
    batches, _, _ = toy_data()
    a, b = make_model(), make_model()
    ha = train(a, batches, CFG, progress=False)
    hb = train(b, batches, TrainConfig(**{**CFG.__dict__, "eval_interval": 3}), progress=False)
    assert same_state(a, b) and ha.train_loss == hb.train_loss


@pytest.mark.parametrize("stop", [1, 10, 23, 39])
def test_resume_is_bit_identical(tmp_path, stop):
    """Stop after `stop` steps, resume into a differently initialised model: same weights, same history."""
    batches, _, _ = toy_data()
    full = make_model()
    full_history = train(full, batches, CFG, progress=False)

    path = tmp_path / "ckpt.pt"
    first = make_model()
    partial = train(first, batches, CFG, checkpoint=path, stop_after=stop, progress=False)
    assert len(partial.step) == stop
    torch.manual_seed(123)  # disturb the global generator: the checkpoint must restore it
    second = make_model(seed=99)
    resumed = train(second, batches, CFG, checkpoint=path, resume=True, progress=False)
    assert same_state(second, full)
    assert resumed == full_history
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # atomic: no temporary files


def test_periodic_checkpoints_and_resuming_a_finished_run(tmp_path):
    batches, _, _ = toy_data()
    path = tmp_path / "ckpt.pt"
    model = make_model()
    history = train(model, batches, CFG, checkpoint=path, checkpoint_interval=7, progress=False)
    again = make_model(seed=5)
    assert train(again, batches, CFG, checkpoint=path, resume=True, progress=False) == history
    assert same_state(again, model)


def test_corrupt_checkpoint(tmp_path):
    batches, _, _ = toy_data()
    path = tmp_path / "ckpt.pt"
    train(make_model(), batches, CFG, checkpoint=path, stop_after=5, progress=False)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(make_model(), batches, CFG, checkpoint=path, resume=True, progress=False)
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(make_model(), batches, CFG, checkpoint=path, resume=True, progress=False)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not an llmscratch.checkpoint"):
        train(make_model(), batches, CFG, checkpoint=path, resume=True, progress=False)


def test_incomplete_checkpoint(tmp_path):
    batches, _, _ = toy_data()
    path = tmp_path / "ckpt.pt"
    train(make_model(), batches, CFG, checkpoint=path, stop_after=5, progress=False)
    state = torch.load(path, weights_only=True)
    del state["optimizer"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"incomplete or malformed \(KeyError"):
        train(make_model(), batches, CFG, checkpoint=path, resume=True, progress=False)


def test_mismatched_checkpoint(tmp_path):
    batches, _, _ = toy_data()
    path = tmp_path / "ckpt.pt"
    train(make_model(), batches, CFG, checkpoint=path, stop_after=5, progress=False)
    other = TrainConfig(**{**CFG.__dict__, "learning_rate": 0.5})
    with pytest.raises(CheckpointError, match=r"different TrainConfig \(learning_rate: 0.01 there, 0.5 here\)"):
        train(make_model(), batches, other, checkpoint=path, resume=True, progress=False)
    torch.manual_seed(0)
    wider = MLPLanguageModel(MLPConfig(vocab_size=7, context_length=3, embedding_dim=4, hidden_dim=64))
    with pytest.raises(CheckpointError, match="weights for a different model"):
        train(wider, batches, CFG, checkpoint=path, resume=True, progress=False)


def test_missing_checkpoint_and_resume_without_a_path(tmp_path):
    batches, _, _ = toy_data()
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        train(make_model(), batches, CFG, checkpoint=tmp_path / "absent.pt", resume=True, progress=False)
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        train(make_model(), batches, CFG, resume=True, progress=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"steps": 0}, "steps"), ({"batch_size": -1}, "batch_size"), ({"learning_rate": 0.0}, "learning_rate"),
     ({"min_lr_ratio": 2.0}, "min_lr_ratio"), ({"grad_clip": -1.0}, "grad_clip")],
)
def test_bad_train_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_divergence_is_reported():
    batches, _, _ = toy_data()
    model = make_model(dropout=0.0)
    with torch.no_grad():
        model.output.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss became nan at step 1") as caught:
        train(model, batches, CFG, progress=False)
    assert isinstance(caught.value, DivergenceError) and caught.value.history.step == [1]


def test_the_history_records_gradient_norms_and_on_update_sees_every_step():
    """grad_norm is the norm before clipping (as clip_grad_norm_ measures it), with clipping on or off."""
    batches, _, _ = toy_data()
    seen = []
    model = make_model(dropout=0.0)
    history = train(model, batches, replace(CFG, steps=5), progress=False,
                    on_update=lambda step, m: seen.append((step, m is model)))
    assert seen == [(s, True) for s in range(1, 6)]
    assert len(history.grad_norm) == 5 and all(g > 0 for g in history.grad_norm)
    unclipped = train(make_model(dropout=0.0), batches, replace(CFG, steps=5, grad_clip=0.0), progress=False)
    assert unclipped.grad_norm[0] == pytest.approx(history.grad_norm[0])  # the first step is the same
    x, y = batches("train", CFG.batch_size, torch.Generator().manual_seed(CFG.seed))
    fresh = make_model(dropout=0.0)
    fresh(x, y)[1].backward()
    by_hand = torch.sqrt(sum((p.grad**2).sum() for p in fresh.parameters()))
    assert history.grad_norm[0] == pytest.approx(float(by_hand), rel=1e-5)


def test_the_training_script_records_what_it_did(tmp_path):
    """A three-step run of the names recipe: the JSON has losses and provenance, the weights reload."""
    import json
    import os

    from llmscratch import data
    from llmscratch.scripts.train_mlp import main

    if not (os.environ.get(data.MIRROR_ENV) or (data.cache_dir() / "names.txt").exists()):
        pytest.skip("the names corpus is neither cached nor mirrored here")
    out = tmp_path / "run"
    assert main(["names", "--steps", "3", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert set(result["loss"]) == {"train", "val", "test"}
    assert all(math.isfinite(v) for v in result["loss"].values())
    assert result["train_config"]["steps"] == 3 and result["curve"]["eval_step"] == [0, 3]
    prov = result["provenance"]
    assert prov["command"].endswith("names --steps 3 --out " + str(out) + " --no-progress")
    assert prov["seed"] == 42 and len(prov["code_sha256"]) == 64
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    model = MLPLanguageModel(MLPConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    assert model.num_parameters() == result["num_parameters"]


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 10.0}, "TrainConfig.steps must be a positive integer, got 10.0"),
    ({"batch_size": True}, "TrainConfig.batch_size must be a positive integer, got True"),
    ({"seed": "42"}, "TrainConfig.seed must be a non-negative integer"),
    ({"learning_rate": "3e-3"}, "TrainConfig.learning_rate must be a number"),
])
def test_wrong_types_are_type_errors(kwargs, message):
    with pytest.raises(TypeError, match=message):
        TrainConfig(**kwargs)


def test_gradient_accumulation_equals_the_large_batch():
    """Four micro-batches of 8 with accumulation give the update of one batch of 32 (in float64, to 1e-10)."""
    from llmscratch import GPT, GPTConfig

    data = torch.randint(50, (4096,), generator=torch.Generator().manual_seed(0))
    # TextBatches draws 32 windows exactly as it draws four times 8 from the same generator.
    batches = TextBatches({"train": data, "val": data}, 8, every_position=True)
    g = torch.Generator().manual_seed(1)
    first = batches("train", 32, g)[0]
    g = torch.Generator().manual_seed(1)
    assert torch.equal(first, torch.cat([batches("train", 8, g)[0] for _ in range(4)]))

    config = GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layers=1, n_heads=2)
    results = []
    for batch_size, accumulation in [(32, 1), (8, 4)]:
        torch.manual_seed(0)
        model = GPT(config).double()
        cfg = TrainConfig(steps=5, batch_size=batch_size, accumulation_steps=accumulation, warmup_steps=1,
                          eval_interval=100, eval_batches=1)
        history = train(model, batches, cfg, progress=False)
        results.append((model, history))
    (big, big_history), (small, small_history) = results
    for p, q in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10)
    assert big_history.train_loss == pytest.approx(small_history.train_loss, abs=1e-10)
    # And it is not trivially so: one micro-batch of 8 alone gives a different update.
    torch.manual_seed(0)
    alone = GPT(config).double()
    train(alone, batches, TrainConfig(steps=5, batch_size=8, warmup_steps=1, eval_interval=100,
                                            eval_batches=1), progress=False)
    assert not torch.allclose(alone.lm_head.weight, big.lm_head.weight)


def test_a_checkpoint_from_before_accumulation_resumes(tmp_path):
    """A checkpoint written before TrainConfig had accumulation_steps (one micro-batch per update) resumes
    exactly under accumulation_steps=1, and is refused under any other value."""
    batches, _, _ = toy_data()
    full = make_model()
    full_history = train(full, batches, CFG, progress=False)
    path = tmp_path / "ckpt.pt"
    train(make_model(), batches, CFG, checkpoint=path, stop_after=15, progress=False)
    state = torch.load(path, weights_only=True)
    for name in ("accumulation_steps", "precision", "keep_best"):  # as an older checkpoint has it
        del state["train_config"][name]
    del state["extras"]
    torch.save(state, path)
    resumed = make_model(seed=5)
    assert train(resumed, batches, CFG, checkpoint=path, resume=True, progress=False) == full_history
    assert same_state(full, resumed)
    with pytest.raises(CheckpointError, match="accumulation_steps: 1 there, 2 here"):
        train(make_model(), batches, replace(CFG, accumulation_steps=2), checkpoint=path, resume=True,
              progress=False)


def test_keep_best_ends_with_the_weights_of_the_lowest_estimate():
    """On a model that overfits, keep_best returns the weights it had at its best validation estimate."""
    batches, _, _ = toy_data()
    cfg = replace(CFG, steps=60, eval_interval=5, learning_rate=3e-2, keep_best=True)
    model = make_model(dropout=0.0)
    history = train(model, batches, cfg, progress=False)
    best = min(range(len(history.eval_val)), key=history.eval_val.__getitem__)
    assert history.best_step == history.eval_step[best]
    assert history.curve()["best_step"] == history.best_step
    again = make_model(dropout=0.0)  # the same run, stopped at the best step
    train(again, batches, replace(cfg, keep_best=False), stop_after=history.best_step, progress=False)
    assert same_state(again, model)
    plain = make_model(dropout=0.0)
    plain_history = train(plain, batches, replace(cfg, keep_best=False), progress=False)
    assert plain_history.train_loss == history.train_loss  # keeping the best never changes the run
    assert plain_history.best_step is None
    assert same_state(plain, model) == (history.best_step == cfg.steps)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_and_resumes_exactly(tmp_path, precision):
    """Autocast changes the arithmetic, not the outcome's quality; keep_best and (for fp16) the loss
    scaler travel in the checkpoint, so a resumed run is still bit-identical."""
    batches, X, Y = toy_data()
    cfg = replace(CFG, precision=precision, keep_best=True)
    full, reference = make_model(), make_model()
    full_history = train(full, batches, cfg, progress=False)
    reference_history = train(reference, batches, replace(cfg, precision="fp32"), progress=False)
    assert full_history.train_loss != reference_history.train_loss  # it did run in another format
    assert all(math.isfinite(v) for v in full_history.train_loss)
    assert abs(evaluate_loss(full, X, Y) - evaluate_loss(reference, X, Y)) < 0.2
    path = tmp_path / "ckpt.pt"
    train(make_model(), batches, cfg, checkpoint=path, stop_after=23, progress=False)
    resumed = make_model(seed=3)
    assert train(resumed, batches, cfg, checkpoint=path, resume=True, progress=False) == full_history
    assert same_state(resumed, full)


@pytest.mark.parametrize("kwargs, error", [({"precision": "fp8"}, ValueError), ({"keep_best": 1}, TypeError)])
def test_bad_precision_or_keep_best(kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        TrainConfig(**kwargs)
