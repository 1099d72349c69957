"""llmscratch.lora: adapters start as the identity, merge to the same outputs, train alone, and refuse bad ranks."""

import pytest
import torch
import torch.nn as nn
from chartok import Chars

from llmscratch import GPT, GPTConfig
from llmscratch.lora import LoRALinear, add_lora, lora_parameters, merge_lora, trainable_share, unmerge_lora

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = GPTConfig(vocab_size=20, context_length=8, d_model=16, n_layers=2, n_heads=2)


def model_with_adapters(rank=4, seed=0):
    torch.manual_seed(seed)
    model = GPT(CONFIG).eval()
    names = add_lora(model, rank)
    for p in lora_parameters(model):  # a trained-looking, non-zero update
        nn.init.normal_(p, std=0.1)
    return model, names


def test_a_fresh_adapter_changes_nothing():
    torch.manual_seed(0)
    model = GPT(CONFIG).eval()
    x = torch.randint(0, 20, (2, 8))
    before = model(x)[0]
    add_lora(model, rank=2)
    assert torch.equal(model(x)[0], before)  # B starts at zero


def test_merged_weights_give_the_adapter_form_outputs_and_unmerge_restores():
    model, names = model_with_adapters()
    assert len(names) == CONFIG.n_layers * 4  # qkv, proj, up, down in each block
    x = torch.randint(0, 20, (2, 8))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        adapter_form = model(x)[0]
        merge_lora(model)
        merged = model(x)[0]
        unmerge_lora(model)
        again = model(x)[0]
    assert torch.allclose(merged, adapter_form, atol=1e-5)
    assert torch.allclose(again, adapter_form, atol=1e-5)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, weights[k], atol=1e-6), k
    layer = model.blocks[0].attention.qkv
    merge_lora(model)
    merge_lora(model)  # merging twice adds the update once
    assert torch.allclose(layer.base.weight, weights["blocks.0.attention.qkv.base.weight"] + layer.delta(), atol=1e-6)


def test_only_adapter_parameters_change_in_training():
    from llmscratch.datasets import TextBatches
    from llmscratch.training import TrainConfig, train

    model, _ = model_with_adapters()
    frozen = {k: v.clone() for k, v in model.named_parameters() if "lora_" not in k}
    adapters = {k: v.clone() for k, v in model.named_parameters() if "lora_" in k}
    stream = torch.randint(0, 20, (400,), generator=torch.Generator().manual_seed(1))
    batches = TextBatches({"train": stream[:300], "val": stream[300:]}, 8, every_position=True)
    train(model, batches, TrainConfig(steps=3, batch_size=4, warmup_steps=1, eval_interval=3, eval_batches=1),
          progress=False)
    for k, v in model.named_parameters():
        if k in frozen:
            assert torch.equal(v, frozen[k]), k
        else:
            assert not torch.equal(v, adapters[k]), k


def test_trainable_share_is_the_adapters_count():
    model, _ = model_with_adapters(rank=2)
    d, f, r = CONFIG.d_model, CONFIG.ff_dim, 2
    per_block = (d + 3 * d) * r + (d + d) * r + (d + f) * r + (f + d) * r  # qkv, proj, up, down: (in + out) * rank
    adapters = CONFIG.n_layers * per_block
    assert sum(p.numel() for p in lora_parameters(model)) == adapters
    assert abs(trainable_share(model) - adapters / sum(p.numel() for p in model.parameters())) < 1e-12


@pytest.mark.parametrize("rank", [0, -1, 17, 2.0, True])
def test_bad_ranks_are_refused(rank):
    with pytest.raises(ValueError, match="rank must be an integer from 1 to min"):
        LoRALinear(nn.Linear(16, 48), rank)


def test_other_bad_inputs():
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Conv1d(2, 2, 1), 1)
    with pytest.raises(ValueError, match="no nn.Linear named"):
        add_lora(GPT(CONFIG), 2, targets=("nothing",))


def test_lora_script_on_two_steps(tmp_path, monkeypatch):
    import json

    from llmscratch.instructions import Example
    from llmscratch.scripts import lora_course
    from llmscratch.training import TrainConfig

    config = GPTConfig(vocab_size=128, context_length=96, d_model=16, n_layers=1, n_heads=2, position="rope")

    def tiny_course_model(verify=True):
        torch.manual_seed(0)
        return GPT(config).eval(), Chars()

    examples = [Example("arithmetic", "What is 2 + 2?", "4"), Example("copy", "Copy exactly: a b", "a b")]
    g = torch.Generator().manual_seed(0)
    splits = {name: torch.randint(0, 127, (300,), generator=g) for name in ("train", "val", "test")}
    monkeypatch.setattr(lora_course, "load_course_model", tiny_course_model)
    monkeypatch.setattr(lora_course, "make_instructions", lambda text: {"train": examples * 3, "val": examples})
    monkeypatch.setattr(lora_course, "load_text", lambda name: "")
    monkeypatch.setattr(lora_course, "shakespeare_bpe_splits", lambda: (None, splits, {}))
    monkeypatch.setattr("llmscratch.scripts.sft_course.rung_loss", lambda model, splits: 1.5)
    monkeypatch.setattr("llmscratch.scripts.sft_course.MAX_NEW_TOKENS", 4)
    monkeypatch.setattr(lora_course, "SFT_TRAIN", TrainConfig(steps=2, batch_size=2, warmup_steps=1, eval_interval=2,
                                                              eval_batches=1))
    monkeypatch.setattr(lora_course, "MAIN_RANK", 2)
    out = tmp_path / "lora.json"
    assert lora_course.main(["--seeds", "1", "2", "--ranks", "1", "2", "--out", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    assert [(r["rank"], r["seed"]) for r in result["runs"]] == [(1, 1), (2, 1), (2, 2)]
    one, two, _ = result["runs"]
    assert two["trainable"] == 2 * one["trainable"]  # (in + out) x rank per adapted layer
    # AdamW keeps two float32 moments per trainable number, plus a step counter per tensor.
    assert 8 * one["trainable"] <= one["optimizer_bytes"] < 8 * one["trainable"] + 1000
    assert result["full_fine_tuning"]["optimizer_bytes_model"] > 10 * one["optimizer_bytes"]
    saved = torch.load(out.with_suffix(".pt"), weights_only=True)
    assert saved["rank"] == 2 and all("lora_" in k for k in saved["adapters"])


def test_adamw_state_is_the_memory_models_for_full_training_and_eight_bytes_per_adapter_number():
    from llmscratch.memory import adamw_state_bytes, memory_estimate

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=40, context_length=16, d_model=16, n_layers=2, n_heads=2, position="rope")
    model = GPT(config)
    x = torch.randint(40, (2, 16), generator=torch.Generator().manual_seed(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert adamw_state_bytes(model, x, x) == memory_estimate(config, 2).adam
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the step was undone
    assert all(p.grad is None for p in model.parameters())
    add_lora(model, rank=2)
    adapters = lora_parameters(model)
    assert adamw_state_bytes(model, x, x) == 8 * sum(p.numel() for p in adapters) + 4 * len(adapters)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable"):
        adamw_state_bytes(model, x, x)


def test_the_committed_lora_run_and_adapters():
    import json

    from llmscratch.course import load_course_model
    from llmscratch.data import results_dir

    record = json.loads((results_dir() / "part5_lora.json").read_text())
    assert record["provenance"]["git_dirty"] is False
    main = [r for r in record["runs"] if r["rank"] == record["main_rank"]]
    assert len(main) == 3 and len({r["seed"] for r in main}) == 3
    saved = torch.load(results_dir() / "part5_lora.pt", map_location="cpu", weights_only=True)
    model, _ = load_course_model(verify=False)
    add_lora(model, rank=saved["rank"])
    result = model.load_state_dict({k: v.float() for k, v in saved["adapters"].items()}, strict=False)
    assert not result.unexpected_keys and all("lora_" not in k for k in result.missing_keys)
    assert sum(v.numel() for v in saved["adapters"].values()) == main[0]["trainable"]
