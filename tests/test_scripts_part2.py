"""The Part 2 scripts end to end on a few steps: files written, losses finite, models reload."""

import json
import math
import os

import pytest
import torch

from llmscratch import GPT, GPTConfig, data, parameter_formula


def _need_shakespeare():
    if not (os.environ.get(data.MIRROR_ENV) or (data.cache_dir() / "tinyshakespeare.txt").exists()):
        pytest.skip("Tiny Shakespeare is neither cached nor mirrored here")


def test_train_gpt_writes_a_reloadable_result(tmp_path):
    _need_shakespeare()
    from llmscratch.scripts.train_gpt import main

    out = tmp_path / "gpt"
    assert main(["shakespeare-small", "--steps", "2", "--out", str(out), "--no-progress",
                 "--eval-tokens", "3000", "--sample-tokens", "5", "--eval-batches", "1"]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert set(result["loss"]) == set(result["bits_per_char"]) == {"train", "val", "test"}
    # Two steps barely move a model that starts at ln(512) nats per token.
    assert all(abs(v - math.log(512)) < 1.0 for v in result["loss"].values())
    assert result["provenance"]["seed"] == 42 and result["train_config"]["steps"] == 2
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    assert model.num_parameters() == result["num_parameters"]


def test_load_trained_names_the_command_when_files_are_missing(monkeypatch, tmp_path):
    from llmscratch.scripts import train_gpt

    monkeypatch.setattr(train_gpt, "REPO", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m llmscratch.scripts.train_gpt shakespeare-small"):
        train_gpt.load_trained()


def test_ladder_rungs_add_one_piece_each():
    from llmscratch.scripts.ablation_ladder import RUNGS

    names = [name for name, _ in RUNGS]
    assert names == ["bigram", "one head", "four heads", "one block", "two blocks", "four blocks"]
    configs = dict(RUNGS)
    assert configs["bigram"].n_layers == 0
    assert configs["one head"].n_heads == 1 and configs["one head"].ff_dim == 0
    # Splitting into heads costs no parameters.
    assert parameter_formula(configs["one head"]) == parameter_formula(configs["four heads"])
    assert configs["one block"].ff_dim == 4 * configs["one block"].d_model
    assert not any(c.tie_weights for c in configs.values())  # each rung adds one piece, nothing else


def test_ladder_script_on_two_steps(tmp_path):
    _need_shakespeare()
    from llmscratch.scripts.ablation_ladder import main

    out = tmp_path / "ladder.json"
    assert main(["--steps", "2", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["rungs"]][0] == "bigram" and len(result["rungs"]) == 6
    for row in result["rungs"]:
        assert math.isfinite(row["val_loss"])
        assert row["num_parameters"] == parameter_formula(GPTConfig(**row["config"]))["total"]
