"""The scripts end to end on a few steps: files written with provenance, losses finite, models reload."""

import json
import math
import os
from dataclasses import asdict

import pytest
import torch

from llmscratch import GPT, GPTConfig, TrainConfig, data, parameter_formula, resolve_device


def _need_shakespeare():
    if not (os.environ.get(data.MIRROR_ENV) or (data.cache_dir() / "tinyshakespeare.txt").exists()):
        pytest.skip("Tiny Shakespeare is neither cached nor mirrored here")


def test_train_gpt_writes_a_reloadable_result(tmp_path):
    _need_shakespeare()
    from llmscratch.scripts.train_gpt import main

    out = tmp_path / "gpt"
    assert main(["shakespeare-small", "--steps", "2", "--out", str(out), "--no-progress",
                 "--eval-tokens", "3000", "--sample-tokens", "5", "--eval-batches", "1", "--device", "auto"]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert set(result["loss"]) == set(result["bits_per_char"]) == {"train", "val", "test"}
    # Two steps barely move a model that starts at ln(512) nats per token.
    assert all(abs(v - math.log(512)) < 1.0 for v in result["loss"].values())
    assert result["provenance"]["seed"] == 42 and result["train_config"]["steps"] == 2
    assert result["provenance"]["device"] == str(resolve_device("auto"))
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    model = GPT(GPTConfig(**saved["model_config"]))
    model.load_state_dict(saved["model"])
    assert model.num_parameters() == result["num_parameters"]


def test_ladder_script_on_two_steps(tmp_path):
    _need_shakespeare()
    from llmscratch.scripts.ablation_ladder import main

    out = tmp_path / "ladder.json"
    assert main(["--steps", "2", "--seeds", "3", "--only", "bigram", "two blocks, no warm-up",
                 "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["rungs"]] == ["bigram"]
    assert [r["name"] for r in result["variants"]] == ["two blocks, no warm-up"]
    for row in result["rungs"] + result["variants"]:
        assert row["seeds"] == [3] and len(row["val_losses"]) == 1
        assert math.isfinite(row["val_loss"]) and row["val_min"] == row["val_loss"] == row["val_max"]
        assert row["num_parameters"] == parameter_formula(GPTConfig(**row["config"]))["total"]
    assert result["variants"][0]["train_changes"] == {"warmup_steps": 0}
    with pytest.raises(SystemExit, match="no rung or variant named"):
        main(["--only", "three blocks", "--out", str(out)])


def test_ladder_runs_side_by_side_give_what_one_after_another_gives(tmp_path):
    """Each run is a function of its config and seed alone, whichever process trains it."""
    _need_shakespeare()
    from llmscratch.scripts.ablation_ladder import main

    rows = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"ladder_{jobs}.json"
        main(["--steps", "1", "--seeds", "3", "5", "--only", "bigram", "one head", "--jobs", jobs,
              "--out", str(out), "--no-progress"])
        rows[jobs] = json.loads(out.read_text())["rungs"]
    assert [r["name"] for r in rows["1"]] == ["bigram", "one head"]
    assert [r["val_losses"] for r in rows["1"]] == [r["val_losses"] for r in rows["2"]]
    assert all(r["val_losses"][0] != r["val_losses"][1] for r in rows["1"])  # the seed matters
    for row in rows["1"]:
        assert row["val_min"] <= row["val_loss"] <= row["val_max"]


def test_norms_script_writes_curves_on_two_steps(tmp_path):
    _need_shakespeare()
    from llmscratch.modern_block import NORM_GRID
    from llmscratch.scripts.norms_activations import main

    out = tmp_path / "norms.json"
    assert main(["--steps", "2", "--seeds", "3", "4", "--only", "LayerNorm, GELU", "RMSNorm, GELU",
                 "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    reference, row = result["rows"]
    assert reference["name"] == "LayerNorm, GELU" and reference["seeds"] == [3] == result["reference"]["seeds"]
    assert len(reference["val_losses"]) == len(reference["curves"]) == 1  # its other seeds are Part 2's
    assert row["name"] == "RMSNorm, GELU" and row["config"] == asdict(dict(NORM_GRID)["RMSNorm, GELU"])
    assert [c["seed"] for c in row["curves"]] == [3, 4] and result["provenance"]["command"].endswith("--no-progress")
    for curve in row["curves"]:
        assert curve["step"] == [1, 2] and len(curve["train_loss_block_mean"]) == 2
        assert curve["eval_step"] == [0, 2] and all(math.isfinite(v) for v in curve["eval_val"])
    with pytest.raises(SystemExit, match="no entry named"):
        main(["--only", "BatchNorm, GELU", "--out", str(out)])


TINY = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=1, n_heads=2)
QUICK = TrainConfig(steps=2, batch_size=4, warmup_steps=1, eval_interval=2, eval_batches=1)


def test_compare_positions_writes_json_with_provenance(tmp_path, monkeypatch):
    from llmscratch.scripts import compare_positions as script

    g = torch.Generator().manual_seed(0)
    splits = {name: torch.randint(0, TINY.vocab_size, (n,), generator=g) for name, n in [("train", 400), ("val", 300)]}
    monkeypatch.setattr(script, "POSITIONS_BASE", TINY)
    monkeypatch.setattr(script, "POSITIONS_TRAIN", QUICK)
    monkeypatch.setattr(script, "shakespeare_bpe_splits", lambda: (None, splits, {"val": 600}))
    out = tmp_path / "positions.json"
    assert script.main(["--seeds", "3", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert result["seeds"] == [3] and "seed" not in result["train_config"]
    assert result["model_config"]["context_length"] == 8 and result["lengths"] == [8, 16, 32]
    assert {r["scheme"] for r in result["runs"]} == set(script.SCHEMES)
    assert result["provenance"]["command"].startswith("python -m llmscratch.scripts.compare_positions")
    assert result["provenance"]["device"] == "cpu"
    assert len(result["provenance"]["code_sha256"]) == 64


def test_chars_vs_tokens_matches_parameters(tmp_path):
    _need_shakespeare()
    from llmscratch.scripts.chars_vs_tokens import main, mlp_parameters

    out = tmp_path / "cvt.json"
    assert main(["--steps", "2", "--seeds", "3", "--out", str(out), "--no-progress"]) == 0
    rows = {r["name"]: r for r in json.loads(out.read_text())["rows"]}
    chars, bpe = rows["characters"], rows["BPE-512"]
    narrow = rows["BPE-512, narrowed to the character model's parameters"]
    wide = rows["characters, widened to the BPE model's parameters"]
    assert chars["num_parameters"] == mlp_parameters(65, 512) and bpe["num_parameters"] == mlp_parameters(512, 512)
    assert abs(narrow["num_parameters"] - chars["num_parameters"]) / chars["num_parameters"] < 0.005
    assert abs(wide["num_parameters"] - bpe["num_parameters"]) / bpe["num_parameters"] < 0.005
    for row in rows.values():
        (run,) = row["runs"]
        assert run["seed"] == 3 and run["num_parameters"] == row["num_parameters"]
        assert row["bits_per_char"]["min"] == row["bits_per_char"]["max"] == run["bits_per_char"]
        assert 2.0 < run["bits_per_char"] < 10.0  # barely trained, but a real score
