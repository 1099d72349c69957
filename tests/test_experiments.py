"""llmscratch.experiments: the recipes are valid, run_recipe trains and scores what it says, load_trained reloads."""

import json
import math
from dataclasses import replace

import pytest
import torch

from llmscratch import GPTConfig, MLPConfig, TrainConfig, data
from llmscratch import experiments as ex
from llmscratch.evaluation import position_losses


def _need_corpora():
    if not (data.MIRROR_ENV in __import__("os").environ or (data.cache_dir() / "names.txt").exists()):
        pytest.skip("the corpora are neither cached nor mirrored here")


def test_every_recipe_pairs_a_model_with_data_it_can_score():
    for name, recipe in ex.RECIPES.items():
        assert recipe.data in ex.DATA, name
        assert isinstance(recipe.model, GPTConfig) == (recipe.data == "shakespeare-bpe"), name
        assert recipe.out.startswith("data/"), name
    with pytest.raises(ValueError, match="Recipe.data"):
        ex.Recipe(data="wikipedia", model=MLPConfig(), train=TrainConfig(), out="data/x")
    with pytest.raises(TypeError, match="Recipe.model"):
        ex.Recipe(data="names", model={"vocab_size": 27}, train=TrainConfig(), out="data/x")
    with pytest.raises(ValueError, match="'names' is scored with a MLPConfig, got a GPTConfig"):
        ex.Recipe(data="names", model=GPTConfig(), train=TrainConfig(), out="data/x")


def test_run_recipe_on_names_reports_the_exact_loss_of_the_model_it_returns():
    _need_corpora()
    recipe = replace(ex.RECIPES["names"], model=MLPConfig(hidden_dim=16),
                     train=TrainConfig(steps=3, eval_interval=3, eval_batches=1))
    model, result = ex.run_recipe(recipe, progress=False, sample_tokens=5)
    _, _, xy = ex.names_data(recipe.model.context_length)
    x, y = xy["val"]
    with torch.no_grad():
        exact = float(torch.nn.functional.cross_entropy(model(x)[0], y))
    assert result["loss"]["val"] == pytest.approx(exact, abs=1e-5)
    assert result["examples"] == {name: len(y) for name, (_, y) in xy.items()}
    assert len(result["samples"]) == 20 and all(len(s) <= 5 for s in result["samples"])
    assert not model.training


def test_run_recipe_on_bpe_scores_every_split_with_position_losses():
    _need_corpora()
    tiny = GPTConfig(context_length=16, d_model=16, n_layers=1, n_heads=2)
    recipe = replace(ex.RECIPES["shakespeare-small"], model=tiny,
                     train=TrainConfig(steps=2, eval_interval=2, eval_batches=1))
    model, result = ex.run_recipe(recipe, progress=False, eval_tokens=500, sample_tokens=3)
    _, parts, _ = ex.shakespeare_bpe_splits()
    exact = float(position_losses(model, parts["val"][:500], 16).mean())
    assert result["loss"]["val"] == pytest.approx(exact, abs=1e-5)
    assert abs(result["loss"]["train"] - math.log(512)) < 0.5  # two steps barely move it
    assert all(s.startswith(("ROMEO:\n", "JULIET:\n")) for s in result["samples"])


def test_a_recipe_whose_model_does_not_fit_its_data_is_refused():
    _need_corpora()
    recipe = replace(ex.RECIPES["names"], model=MLPConfig(vocab_size=30))
    with pytest.raises(ValueError, match="27 tokens"):
        ex.run_recipe(recipe, progress=False)


def test_load_trained_names_the_command_when_files_are_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(ex, "results_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m llmscratch.scripts.train_gpt shakespeare-small"):
        ex.load_trained("shakespeare-small")
    with pytest.raises(FileNotFoundError, match="python -m llmscratch.scripts.train_mlp names"):
        ex.load_trained("names")
    with pytest.raises(ValueError, match="unknown recipe"):
        ex.load_trained("gpt-5")


def test_committed_models_reload_with_their_recorded_loss():
    """The committed weights give the validation loss their JSON records (the chapters assert this too)."""
    _need_corpora()
    model, result = ex.load_trained("names")  # verify=True re-scores them
    _, _, xy = ex.names_data(model.context_length)
    assert ex.evaluate_loss(model, *xy["val"]) == pytest.approx(result["loss"]["val"], abs=1e-4)


def test_load_trained_refuses_weights_that_do_not_give_the_recorded_loss(monkeypatch, tmp_path):
    _need_corpora()
    for suffix in (".pt", ".json"):
        (tmp_path / f"names_mlp{suffix}").write_bytes((ex.results_dir() / f"names_mlp{suffix}").read_bytes())
    record = json.loads((tmp_path / "names_mlp.json").read_text())
    record["loss"]["val"] += 0.01
    (tmp_path / "names_mlp.json").write_text(json.dumps(record))
    monkeypatch.setattr(ex, "results_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="do not belong together"):
        ex.load_trained("names")
    model, _ = ex.load_trained("names", verify=False)
    assert not model.training
