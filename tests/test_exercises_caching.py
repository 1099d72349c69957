"""The fast-inference checkers accept the package's answers and reject the slips learners make."""

import pytest
import torch

from llmscratch.attention import scaled_dot_product_attention
from llmscratch.exercises import ExerciseError, check_cache_bytes, check_decode_step, check_pool_heads
from llmscratch.kv_cache import kv_cache_bytes


def decode_step(q, k_new, v_new, k_cache, v_cache, *, append=True, causal=False):
    k_all = torch.cat([k_cache, k_new], dim=2) if append else k_cache
    v_all = torch.cat([v_cache, v_new], dim=2) if append else v_cache
    out = scaled_dot_product_attention(q, k_all, v_all, is_causal=causal) if k_all.shape[2] else v_new
    return out, k_all, v_all


def package_bytes(config, batch, length):
    return kv_cache_bytes(config, batch_size=batch, length=length)


def pool(w, n_heads, n_kv_heads):
    hs = w.shape[0] // n_heads
    return w.view(n_kv_heads, n_heads // n_kv_heads, hs, -1).mean(1).reshape(n_kv_heads * hs, -1)


def test_the_packages_answers_pass(capsys):
    check_decode_step(decode_step)
    check_cache_bytes(package_bytes)
    check_pool_heads(pool)
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize("slip, message", [
    (dict(append=False), "appended"),
    (dict(causal=True), "corner"),
])
def test_decode_step_slips_are_named(slip, message):
    with pytest.raises(ExerciseError, match=message):
        check_decode_step(lambda *args: decode_step(*args, **slip))


@pytest.mark.parametrize("wrong, message", [
    (lambda c, b, n: kv_cache_bytes(c, batch_size=b, length=n) // 2, "besides the keys"),
    (lambda c, b, n: 2 * c.n_layers * b * c.n_heads * n * c.head_dim * 4, "n_kv_heads"),
    (lambda c, b, n: kv_cache_bytes(c, batch_size=b, length=n) // 4, "float32"),
])
def test_cache_bytes_slips_are_named(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_cache_bytes(wrong)


def test_pool_heads_slips_are_named():
    def strided(w, n_heads, n_kv_heads):
        hs = w.shape[0] // n_heads
        return w.view(n_heads // n_kv_heads, n_kv_heads, hs, -1).mean(0).reshape(n_kv_heads * hs, -1)

    with pytest.raises(ExerciseError, match="every"):
        check_pool_heads(strided)
    with pytest.raises(ExerciseError, match="mean, not the sum"):
        check_pool_heads(lambda w, h, kv: pool(w, h, kv) * (h // kv))
