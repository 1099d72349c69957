"""The course model: it loads through one function, its weights give the recorded loss, and the record is complete."""

import json
from dataclasses import asdict

import pytest
import torch

from llmscratch import GPT, BPETokenizer, data
from llmscratch import experiments as ex
from llmscratch.course import COURSE_RECIPE, course_model_record, load_course_model
from llmscratch.evaluation import position_losses


def _need_corpora():
    if not (data.MIRROR_ENV in __import__("os").environ or (data.cache_dir() / "tinyshakespeare.txt").exists()):
        pytest.skip("the corpora are neither cached nor mirrored here")


def test_the_course_model_loads_and_scores_what_it_records():
    _need_corpora()
    model, tokenizer = load_course_model()  # verify=True: re-scores the validation split, raises on a mismatch
    record = course_model_record()
    assert isinstance(model, GPT) and isinstance(tokenizer, BPETokenizer) and not model.training
    assert model.config.context_length >= 256 and tokenizer.vocab_size == model.config.vocab_size == 512
    _, parts, _ = ex.shakespeare_bpe_splits()
    test_loss = float(position_losses(model, parts["test"], model.config.context_length).mean())
    assert test_loss == pytest.approx(record["loss"]["test"], abs=1e-4)
    assert record["loss"]["val"] <= 2.70  # the course's bar
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_the_course_record_says_how_it_was_made():
    record = course_model_record()
    prov = record["provenance"]
    assert prov["git_dirty"] is False and prov["command"].startswith("python -m llmscratch.scripts.train_gpt course")
    recipe = ex.RECIPES[COURSE_RECIPE]
    assert type(recipe.model)(**record["model_config"]) == recipe.model
    assert record["train_config"] == json.loads(json.dumps(asdict(recipe.train)))
    training = record["training"]
    assert 0 < training["mfu"] < 1 and training["tokens_seen"] == 1800 * 16 * 256
    assert record["curve"]["best_step"] in record["curve"]["eval_step"]
    weights = (data.results_dir() / "course_model.pt").stat().st_size
    assert weights < 25 * 2**20  # float16 weights: small enough to commit


def test_half_weights_are_stored_in_float16_and_scored_after_rounding(tmp_path):
    from llmscratch import GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2))
    ex.save_run(tmp_path / "m", {"loss": {}}, model, half=True)
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state["model"].values() if v.is_floating_point())
    again = GPT(GPTConfig(**state["model_config"]))
    again.load_state_dict(state["model"])
    assert torch.equal(again.token_embedding.weight, model.token_embedding.weight.half().float())
