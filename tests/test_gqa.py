"""llmscratch.gqa: pooling a multi-head model's key/value heads into groups (Ainslie et al.'s conversion)."""

import pytest
import torch

from llmscratch import GPT, GPTConfig, MLPConfig, MLPLanguageModel, generate
from llmscratch.gqa import kv_head_counts, pool_kv_heads
from llmscratch.kv_cache import KVCache
from llmscratch.scripts.gqa_sweep import SWEEP_BASE, sweep_entries

pytestmark = pytest.mark.usefixtures("one_thread")


def mha(position: str = "rope", bias: bool = True) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=30, context_length=16, d_model=32, n_layers=2, n_heads=4, position=position,
                       bias=bias)
    model = GPT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # biases and gains away from 0 and 1, so pooling them is tested
    return model


def test_kv_head_counts_halve_down_to_one():
    assert kv_head_counts(8) == [8, 4, 2, 1]
    assert kv_head_counts(12) == [12, 6, 3, 1]
    assert all(12 % kv == 0 for kv in kv_head_counts(12))
    with pytest.raises(ValueError, match="n_heads"):
        kv_head_counts(0)


@pytest.mark.parametrize("position", ["rope", "learned", "alibi"])
def test_groups_of_one_are_the_identity(position):
    model = mha(position)
    same = pool_kv_heads(model, 4)
    assert same.config == model.config and not same.training
    idx = torch.randint(0, 30, (2, 16), generator=torch.Generator().manual_seed(1))
    assert torch.equal(same(idx)[0], model(idx)[0])


@pytest.mark.parametrize("bias", [True, False])
def test_pooled_rows_are_the_mean_of_their_group(bias):
    """4 heads of 8 features into 2: key head 1 of the copy is the mean of key heads 2 and 3 of the original."""
    model = mha(bias=bias)
    pooled = pool_kv_heads(model, 2)
    hs, H = 8, 4
    for name in ("weight", "bias") if bias else ("weight",):
        w = getattr(model.blocks[1].attention.qkv, name)  # ((4 + 8)·8, ...)
        p = getattr(pooled.blocks[1].attention.qkv, name)  # ((4 + 4)·8, ...)
        assert p.shape[0] == (H + 2 * 2) * hs
        torch.testing.assert_close(p[: H * hs], w[: H * hs])  # queries untouched
        k, v = w[H * hs : 2 * H * hs], w[2 * H * hs :]  # (4·8, ...) each
        torch.testing.assert_close(p[H * hs + hs : H * hs + 2 * hs], (k[2 * hs : 3 * hs] + k[3 * hs :]) / 2)
        torch.testing.assert_close(p[H * hs + 2 * hs : H * hs + 3 * hs], (v[: hs] + v[hs : 2 * hs]) / 2)
    assert torch.equal(pooled.blocks[0].attention.proj.weight, model.blocks[0].attention.proj.weight)
    assert torch.equal(pooled.token_embedding.weight, model.token_embedding.weight)


def test_pooled_keys_are_the_mean_of_rotated_keys():
    """RoPE is linear and the same for every head: layer 0's cached (rotated) keys pool like the weights."""
    model = mha("rope")
    pooled = pool_kv_heads(model, 1)
    idx = torch.randint(0, 30, (1, 10), generator=torch.Generator().manual_seed(2))
    full, one = KVCache.for_model(model), KVCache.for_model(pooled)
    model(idx, cache=full)
    pooled(idx, cache=one)
    torch.testing.assert_close(one.keys[0], full.keys[0].mean(dim=1, keepdim=True))  # (1, 1, 10, 8)
    torch.testing.assert_close(one.values[0], full.values[0].mean(dim=1, keepdim=True))


def test_the_converted_model_caches_fewer_bytes_and_generates_the_same_with_a_cache():
    model = mha("rope")
    idx = torch.randint(0, 30, (2, 5), generator=torch.Generator().manual_seed(3))
    sizes = {}
    for kv in kv_head_counts(4):
        converted = pool_kv_heads(model, kv)
        cache = KVCache.for_model(converted)
        converted(idx, cache=cache)
        sizes[kv] = cache.nbytes
        assert generate(converted, idx, 12, temperature=0, use_cache=True) == generate(converted, idx, 12,
                                                                                       temperature=0)
    assert sizes == {4: sizes[4], 2: sizes[4] // 2, 1: sizes[4] // 4}


def test_pooling_twice_is_pooling_once():
    model = mha()
    idx = torch.randint(0, 30, (1, 8), generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(pool_kv_heads(pool_kv_heads(model, 2), 1)(idx)[0], pool_kv_heads(model, 1)(idx)[0])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="divisor"):
        pool_kv_heads(mha(), 3)
    with pytest.raises(ValueError, match="divisor"):
        pool_kv_heads(pool_kv_heads(mha(), 2), 4)  # cannot un-pool
    with pytest.raises(TypeError, match="integer"):
        pool_kv_heads(mha(), 2.0)
    with pytest.raises(TypeError, match="GPT"):
        pool_kv_heads(MLPLanguageModel(MLPConfig(vocab_size=5, context_length=2)), 1)


def test_the_sweep_changes_only_n_kv_heads():
    entries = sweep_entries()
    assert [config.kv_heads for _, config, _, _ in entries] == [8, 4, 2, 1]
    for _, config, changes, group in entries:
        assert changes == {} and group == "sweep"
        assert config == GPTConfig(**{**SWEEP_BASE.__dict__, "n_kv_heads": config.n_kv_heads})
